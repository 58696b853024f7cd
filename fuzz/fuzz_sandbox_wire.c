/*
 * libFuzzer harness for the confined parser's wire format as the parent reads it: the first
 * 8 bytes give the file's length, the rest is what a (compromised) child sent. Any input must
 * decode or fail with MG_E_FORMAT or MG_E_LIMIT; an accepted table must keep every tensor
 * inside its file or buffer (both ends are read, for ASan), and encoding it again must give a
 * table that decodes to the same. A violation traps.
 */
#include <stdlib.h>
#include <string.h>

#include "sandbox_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_table(const mg_parse_result *res, uint64_t file_len)
{
    volatile uint8_t sink = 0;
    mg_error err;
    for (size_t i = 0; i < res->count; i++) {
        const mg_tensor_entry *t = &res->tensors[i];
        uint64_t container = file_len;
        if (t->blob != 0) {
            if (t->blob > res->blob_count)
                __builtin_trap();
            container = res->blobs[t->blob - 1].len;
            if (t->nbytes > 0)
                sink ^= res->blobs[t->blob - 1].data[t->data_offset] ^
                        res->blobs[t->blob - 1].data[t->data_offset + t->nbytes - 1];
        }
        if (t->name == NULL || t->ndim > MG_MAX_NDIM ||
            mg_tensor_entry_check(t, container, &err) != MG_OK)
            __builtin_trap();
    }
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 8)
        return 0;
    uint64_t file_len = 0;
    for (int i = 7; i >= 0; i--)
        file_len = (file_len << 8) | data[i];
    mg_wire_buf b = {(uint8_t *)data + 8, size - 8, size - 8, 0};
    mg_wire_in in = {mg_wire_buf_read, &b};
    /* Up to three records, as for three files of one model. */
    for (int rec = 0; rec < 3; rec++) {
        mg_parse_result res;
        mg_error err;
        memset(&res, 0, sizeof res);
        mg_error_clear(&err);
        mg_status st = mg_wire_get_result(&in, file_len, &res, &err);
        if (st == MG_OK) {
            check_table(&res, file_len);
            mg_wire_buf again = {0};
            mg_wire_out out = {mg_wire_buf_write, &again};
            if (mg_wire_put_result(&out, &res)) {
                mg_wire_in in2 = {mg_wire_buf_read, &again};
                mg_parse_result res2;
                memset(&res2, 0, sizeof res2);
                if (mg_wire_get_result(&in2, file_len, &res2, &err) != MG_OK ||
                    res2.count != res.count || res2.blob_count != res.blob_count)
                    __builtin_trap();
                for (size_t i = 0; i < res.count; i++) {
                    if (strcmp(res.tensors[i].name, res2.tensors[i].name) != 0 ||
                        res.tensors[i].data_offset != res2.tensors[i].data_offset ||
                        res.tensors[i].nbytes != res2.tensors[i].nbytes)
                        __builtin_trap();
                }
                mg_parse_result_free(&res2);
            }
            free(again.data);
        } else if (st != MG_E_FORMAT && st != MG_E_LIMIT) {
            __builtin_trap();
        }
        mg_parse_result_free(&res);
        if (st != MG_OK)
            break;
    }
    return 0;
}
