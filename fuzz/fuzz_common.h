/* Shared body of the format harnesses: any input must parse or fail with MG_E_FORMAT or
 * MG_E_LIMIT; an accepted table must keep every tensor inside its container (the file, or
 * the buffer the parser made) and match its shape; both ends of each tensor are read so that
 * ASan sees a range outside its buffer. A violation traps. */
#ifndef MG_FUZZ_COMMON_H
#define MG_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "format/format.h"

static inline int mg_fuzz_format(const mg_format *fmt, const uint8_t *data, size_t size)
{
    mg_parse_result res;
    mg_error err;
    memset(&res, 0, sizeof res);
    mg_error_clear(&err);
    (void)fmt->probe(data, size);
    mg_status st = fmt->parse(data, size, &res, &err);
    if (st == MG_OK) {
        volatile uint8_t sink = 0;
        for (size_t i = 0; i < res.count; i++) {
            const mg_tensor_entry *t = &res.tensors[i];
            const uint8_t *base = data;
            uint64_t container = size;
            if (t->blob != 0) {
                if (t->blob > res.blob_count)
                    __builtin_trap();
                base = res.blobs[t->blob - 1].data;
                container = res.blobs[t->blob - 1].len;
            }
            if (mg_tensor_entry_check(t, container, &err) != MG_OK)
                __builtin_trap();
            if (t->nbytes > 0)
                sink ^= base[t->data_offset] ^ base[t->data_offset + t->nbytes - 1];
        }
        (void)sink;
    } else if (st != MG_E_FORMAT && st != MG_E_LIMIT) {
        __builtin_trap();
    }
    mg_parse_result_free(&res);
    return 0;
}

#endif
