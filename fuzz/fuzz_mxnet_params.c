/* libFuzzer harness for the MXNet .params parser: any input must parse or fail cleanly,
 * never crash, leak or read outside the buffer. Every accepted tensor is re-checked against
 * the input size and its first and last bytes are read (ASan catches a range outside the
 * buffer); the metadata must serialise to JSON. */
#include <stdint.h>
#include <stdlib.h>

#include "format/format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mg_parse_result res = {0};
    mg_error err;
    (void)mg_format_mxnet_params.probe(data, size);
    if (mg_format_mxnet_params.parse(data, size, &res, &err) == MG_OK) {
        volatile uint8_t sink = 0;
        for (size_t i = 0; i < res.count; i++) {
            const mg_tensor_entry *t = &res.tensors[i];
            if (mg_tensor_entry_check(t, size, NULL) != MG_OK || t->blob != 0 ||
                t->offset != t->data_offset)
                __builtin_trap();
            if (t->nbytes > 0)
                sink ^= data[t->data_offset] ^ data[t->data_offset + t->nbytes - 1];
        }
        (void)sink;
        char *dump = json_dumps(res.metadata, JSON_COMPACT);
        if (dump == NULL)
            __builtin_trap();
        free(dump);
    }
    mg_parse_result_free(&res);
    return 0;
}
