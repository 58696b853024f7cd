/* libFuzzer harness for the .npz parser: parse, then check that every tensor of an accepted
 * file lies inside its container and matches its shape (a violation traps). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "format/format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mg_parse_result res;
    mg_error err;
    memset(&res, 0, sizeof res);
    mg_error_clear(&err);
    mg_status st = mg_format_npz.parse(data, size, &res, &err);
    if (st == MG_OK) {
        for (size_t i = 0; i < res.count; i++) {
            const mg_tensor_entry *t = &res.tensors[i];
            uint64_t container = size;
            if (t->blob != 0) {
                if (t->blob > res.blob_count)
                    __builtin_trap();
                container = res.blobs[t->blob - 1].len;
            }
            if (mg_tensor_entry_check(t, container, &err) != MG_OK)
                __builtin_trap();
        }
    } else if (st != MG_E_FORMAT && st != MG_E_LIMIT) {
        __builtin_trap();
    }
    mg_parse_result_free(&res);
    return 0;
}
