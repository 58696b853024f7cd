/*
 * The wire format between the confined parser (child) and the loader (parent): one record
 * per parsed file, every field length-prefixed, little-endian.
 *
 *   record  = u32 'MGT1' u32 status (0 = ok, else the parser's mg_status)
 *             status != 0:  u32 msg_len, msg bytes (< MG_ERROR_MESSAGE_MAX)
 *             status == 0:  u64 tensor_count, u32 blob_count, u64 meta_len, meta bytes (JSON)
 *                           blob_count x (u64 len, len bytes)
 *                           tensor_count x tensor
 *             u32 'MGTE'
 *   tensor  = u32 name_len, name bytes, u32 dtype, u32 ggml_type, u32 ndim, u32 flags,
 *             ndim x u64 shape, u64 nbytes, u64 offset, u32 blob, u64 data_offset
 *
 * The reader trusts nothing it receives: every count and length is capped before anything is
 * allocated, names go through mg_parse_add_tensor (no NUL, length cap, no duplicates), dtypes
 * and flags must be known, and every tensor's byte range is checked against the file (or the
 * buffer) it points into before the loader ever forms a pointer.
 */
#ifndef MG_SANDBOX_WIRE_H
#define MG_SANDBOX_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format/format.h"

#define MG_WIRE_MAGIC 0x3154474du     /* "MGT1" */
#define MG_WIRE_END 0x4554474du       /* "MGTE" */
#define MG_WIRE_MAX_METADATA (256u << 20) /* JSON text of one file's metadata */
#define MG_WIRE_MAX_BLOBS 1000000u

/* Where a record goes: `write` sends all `n` bytes or returns false. */
typedef struct mg_wire_out {
    bool (*write)(void *ctx, const void *p, size_t n);
    void *ctx;
} mg_wire_out;

/* Where a record comes from: `read` fills all `n` bytes or returns false (the stream ended
 * or failed; the callback's context says which). */
typedef struct mg_wire_in {
    bool (*read)(void *ctx, void *p, size_t n);
    void *ctx;
} mg_wire_in;

/* Send a parse result (status MG_OK) or a parser failure (`status` with `message`). False
 * when the stream refused the bytes. */
bool mg_wire_put_result(const mg_wire_out *out, const mg_parse_result *res);
bool mg_wire_put_error(const mg_wire_out *out, mg_status status, const char *message);

/*
 * Receive one record for a file of `file_len` bytes into `res` (empty on entry; the caller
 * frees it either way). Returns MG_OK for a checked table; the parser's own status and
 * message (MG_E_FORMAT or MG_E_LIMIT) when it reported a failure; MG_E_FORMAT when the
 * record is malformed, breaks a bound or ends early (the caller then asks how the child
 * ended); MG_E_LIMIT when out of memory.
 */
MG_NODISCARD mg_status mg_wire_get_result(const mg_wire_in *in, uint64_t file_len,
                                          mg_parse_result *res, mg_error *err);

/* An in-memory stream, for tests and the fuzz harness. */
typedef struct mg_wire_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    size_t pos; /* reading */
} mg_wire_buf;
bool mg_wire_buf_write(void *ctx, const void *p, size_t n);
bool mg_wire_buf_read(void *ctx, void *p, size_t n);

#endif
