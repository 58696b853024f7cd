/* libFuzzer harness for the safetensors parser: parse, then check that every tensor of an
 * accepted file lies inside the file, matches its shape, and that the tensors tile the data
 * buffer exactly (a violation traps). */
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
    (void)mg_format_safetensors.probe(data, size);
    mg_status st = mg_format_safetensors.parse(data, size, &res, &err);
    if (st == MG_OK) {
        uint64_t end = 0;
        for (size_t i = 0; i < res.count; i++) {
            const mg_tensor_entry *t = &res.tensors[i];
            if (t->blob != 0 || mg_tensor_entry_check(t, size, &err) != MG_OK)
                __builtin_trap();
            if (i > 0 && t->data_offset != end)
                __builtin_trap();
            end = t->data_offset + t->nbytes;
        }
        if (res.count > 0 && end != size)
            __builtin_trap();
    } else if (st != MG_E_FORMAT && st != MG_E_LIMIT) {
        __builtin_trap();
    }
    mg_parse_result_free(&res);
    return 0;
}
