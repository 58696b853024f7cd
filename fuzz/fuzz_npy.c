/* libFuzzer harness for the .npy parser (checks in fuzz_common.h). */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return mg_fuzz_format(&mg_format_npy, data, size);
}
