/* libFuzzer harness for the GGUF parser: any input must parse or fail cleanly, never crash,
 * leak or read outside the buffer. Accepted tables are re-checked against the input size,
 * and the metadata must serialise to JSON. */
#include <stdint.h>
#include <stdlib.h>

#include "format/format.h"
#include "format/gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mg_parse_result res = {0};
    mg_error err;
    (void)mg_format_gguf.probe(data, size);
    if (mg_format_gguf.parse(data, size, &res, &err) == MG_OK) {
        for (size_t i = 0; i < res.count; i++) {
            const mg_tensor_entry *t = &res.tensors[i];
            if (mg_tensor_entry_check(t, size, NULL) != MG_OK)
                __builtin_trap();
            if (t->dtype == MG_DTYPE_GGML_BLOCK && mg_gguf_type_name(t->ggml_type) == NULL)
                __builtin_trap();
        }
        char *dump = json_dumps(res.metadata, JSON_COMPACT);
        if (dump == NULL)
            __builtin_trap();
        free(dump);
    }
    mg_parse_result_free(&res);
    return 0;
}
