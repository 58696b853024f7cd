/* libFuzzer harness: whole-model loads of a sharded safetensors set (index + two shards),
 * split from one input (fuzz_model_common.h). */
#include "fuzz_model_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"model.safetensors.index.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", NULL};
    return mg_fuzz_model(names, data, size);
}
