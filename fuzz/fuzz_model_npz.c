/* libFuzzer harness: whole-model loads of npz files: an MXNet 2.x checkpoint (.params as npz
 * beside its symbol) and a plain .npz,
 * split from one input (fuzz_model_common.h). */
#include "fuzz_model_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"model-symbol.json", "model-0000.params", "weights.npz", NULL};
    return mg_fuzz_model(names, data, size);
}
