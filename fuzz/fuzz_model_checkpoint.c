/* libFuzzer harness: whole-model loads of an MXNet checkpoint (symbol + two epochs of .params),
 * split from one input (fuzz_model_common.h). */
#include "fuzz_model_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"ckpt-symbol.json", "ckpt-0000.params", "ckpt-0001.params", NULL};
    return mg_fuzz_model(names, data, size);
}
