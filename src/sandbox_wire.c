#include "sandbox_wire.h"

#include <stdlib.h>
#include <string.h>

#include "util/checked.h"

/* ---- writing ------------------------------------------------------------------------- */

static bool put(const mg_wire_out *out, const void *p, size_t n)
{
    return n == 0 || out->write(out->ctx, p, n);
}

static bool put_u32(const mg_wire_out *out, uint32_t v)
{
    uint8_t b[4];
    for (int i = 0; i < 4; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    return put(out, b, sizeof b);
}

static bool put_u64(const mg_wire_out *out, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    return put(out, b, sizeof b);
}

bool mg_wire_put_error(const mg_wire_out *out, mg_status status, const char *message)
{
    size_t n = strnlen(message, MG_ERROR_MESSAGE_MAX - 1);
    return put_u32(out, MG_WIRE_MAGIC) && put_u32(out, (uint32_t)status) &&
           put_u32(out, (uint32_t)n) && put(out, message, n) && put_u32(out, MG_WIRE_END);
}

static bool put_tensor(const mg_wire_out *out, const mg_tensor_entry *t)
{
    size_t n = strlen(t->name);
    if (n > UINT32_MAX || t->ndim > MG_MAX_NDIM)
        return false;
    bool ok = put_u32(out, (uint32_t)n) && put(out, t->name, n) &&
              put_u32(out, (uint32_t)t->dtype) && put_u32(out, t->ggml_type) &&
              put_u32(out, t->ndim) && put_u32(out, t->flags);
    for (uint32_t d = 0; ok && d < t->ndim; d++)
        ok = put_u64(out, t->shape[d]);
    return ok && put_u64(out, t->nbytes) && put_u64(out, t->offset) && put_u32(out, t->blob) &&
           put_u64(out, t->data_offset);
}

bool mg_wire_put_result(const mg_wire_out *out, const mg_parse_result *res)
{
    char *meta = NULL;
    size_t meta_len = 0;
    if (res->metadata != NULL) {
        meta = json_dumps(res->metadata, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (meta == NULL)
            return false;
        meta_len = strlen(meta);
    }
    bool ok = res->blob_count <= UINT32_MAX && put_u32(out, MG_WIRE_MAGIC) &&
              put_u32(out, MG_OK) && put_u64(out, res->count) &&
              put_u32(out, (uint32_t)res->blob_count) && put_u64(out, meta_len) &&
              put(out, meta, meta_len);
    free(meta);
    for (size_t i = 0; ok && i < res->blob_count; i++)
        ok = put_u64(out, res->blobs[i].len) && put(out, res->blobs[i].data, res->blobs[i].len);
    for (size_t i = 0; ok && i < res->count; i++)
        ok = put_tensor(out, &res->tensors[i]);
    return ok && put_u32(out, MG_WIRE_END);
}

/* ---- reading ------------------------------------------------------------------------- */

static mg_status short_record(mg_error *err)
{
    return mg_fail(err, MG_E_FORMAT, "the confined parser's table ended early");
}

static mg_status get(const mg_wire_in *in, void *p, size_t n, mg_error *err)
{
    if (n != 0 && !in->read(in->ctx, p, n))
        return short_record(err);
    return MG_OK;
}

static mg_status get_u32(const mg_wire_in *in, uint32_t *v, mg_error *err)
{
    uint8_t b[4];
    mg_status s = get(in, b, sizeof b, err);
    *v = 0;
    for (int i = 3; s == MG_OK && i >= 0; i--)
        *v = (*v << 8) | b[i];
    return s;
}

static mg_status get_u64(const mg_wire_in *in, uint64_t *v, mg_error *err)
{
    uint8_t b[8];
    mg_status s = get(in, b, sizeof b, err);
    *v = 0;
    for (int i = 7; s == MG_OK && i >= 0; i--)
        *v = (*v << 8) | b[i];
    return s;
}

static mg_status bad(mg_error *err, const char *what)
{
    return mg_fail(err, MG_E_FORMAT, "the confined parser sent a malformed table: %s", what);
}

static mg_status get_error(const mg_wire_in *in, uint32_t status, mg_error *err)
{
    uint32_t n;
    char msg[MG_ERROR_MESSAGE_MAX];
    mg_status s = get_u32(in, &n, err);
    if (s != MG_OK)
        return s;
    if (n >= sizeof msg)
        return bad(err, "error message too long");
    s = get(in, msg, n, err);
    if (s != MG_OK)
        return s;
    msg[n] = '\0';
    uint32_t end;
    s = get_u32(in, &end, err);
    if (s != MG_OK)
        return s;
    if (end != MG_WIRE_END)
        return bad(err, "no end mark");
    /* A parser fails with one of these two; anything else is not a parser's answer. */
    if (status != MG_E_FORMAT && status != MG_E_LIMIT)
        return bad(err, "unknown status");
    for (uint32_t i = 0; i < n; i++) {
        if (msg[i] == '\0' || msg[i] == '\n')
            msg[i] = ' ';
    }
    return mg_fail(err, (mg_status)status, "%s", msg);
}

static mg_status get_metadata(const mg_wire_in *in, mg_parse_result *res, mg_error *err)
{
    uint64_t len;
    mg_status s = get_u64(in, &len, err);
    if (s != MG_OK || len == 0)
        return s;
    if (len > MG_WIRE_MAX_METADATA)
        return bad(err, "metadata too long");
    char *text = malloc((size_t)len);
    if (text == NULL)
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    s = get(in, text, (size_t)len, err);
    if (s == MG_OK) {
        json_error_t jerr;
        res->metadata = json_loadb(text, (size_t)len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
                                   &jerr);
        if (res->metadata == NULL || !json_is_object(res->metadata))
            s = bad(err, "metadata is not a JSON object");
    }
    free(text);
    return s;
}

static mg_status get_blob(const mg_wire_in *in, mg_parse_result *res, mg_error *err)
{
    uint64_t len;
    mg_status s = get_u64(in, &len, err);
    if (s != MG_OK)
        return s;
    if (len > MG_MAX_MODEL_FILE_BYTES || len > SIZE_MAX)
        return bad(err, "buffer too large");
    uint32_t index;
    uint8_t *data;
    s = mg_parse_add_blob(res, (size_t)len, &index, &data, err);
    if (s != MG_OK)
        return s;
    /* In slices, so that a stream that ends early has not made us touch all of `len`. */
    for (uint64_t off = 0; s == MG_OK && off < len;) {
        size_t n = len - off < (1u << 20) ? (size_t)(len - off) : (1u << 20);
        s = get(in, data + off, n, err);
        off += n;
    }
    return s;
}

static bool dtype_known(uint32_t d)
{
    return d > MG_DTYPE_INVALID && d <= MG_DTYPE_GGML_BLOCK;
}

static mg_status get_tensor(const mg_wire_in *in, uint64_t file_len, mg_parse_result *res,
                            char *name, mg_error *err)
{
    uint32_t name_len, dtype;
    mg_tensor_entry t;
    memset(&t, 0, sizeof t);
    mg_status s = get_u32(in, &name_len, err);
    if (s != MG_OK)
        return s;
    if (name_len > MG_MAX_NAME_LEN)
        return bad(err, "name too long");
    s = get(in, name, name_len, err);
    if (s == MG_OK)
        s = get_u32(in, &dtype, err);
    if (s == MG_OK)
        s = get_u32(in, &t.ggml_type, err);
    if (s == MG_OK)
        s = get_u32(in, &t.ndim, err);
    if (s == MG_OK)
        s = get_u32(in, &t.flags, err);
    if (s != MG_OK)
        return s;
    if (!dtype_known(dtype))
        return bad(err, "unknown dtype");
    t.dtype = (mg_dtype)dtype;
    if (t.ndim > MG_MAX_NDIM)
        return bad(err, "too many dimensions");
    if ((t.flags & ~(MG_TENSOR_BIG_ENDIAN | MG_TENSOR_FORTRAN)) != 0)
        return bad(err, "unknown flags");
    for (uint32_t d = 0; s == MG_OK && d < t.ndim; d++)
        s = get_u64(in, &t.shape[d], err);
    if (s == MG_OK)
        s = get_u64(in, &t.nbytes, err);
    if (s == MG_OK)
        s = get_u64(in, &t.offset, err);
    if (s == MG_OK)
        s = get_u32(in, &t.blob, err);
    if (s == MG_OK)
        s = get_u64(in, &t.data_offset, err);
    if (s != MG_OK)
        return s;
    /* The bound that matters: the range lies inside the file or the buffer it names. */
    uint64_t container = file_len;
    if (t.blob != 0) {
        if (t.blob > res->blob_count)
            return bad(err, "tensor names a missing buffer");
        container = res->blobs[t.blob - 1].len;
    }
    name[name_len] = '\0';
    t.name = name;
    s = mg_tensor_entry_check(&t, container, err);
    if (s != MG_OK)
        return s;
    return mg_parse_add_tensor(res, &t, name, name_len, err);
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static mg_status check_unique(const mg_parse_result *res, mg_error *err)
{
    if (res->count < 2)
        return MG_OK;
    char **names = mg_calloc(res->count, sizeof *names);
    if (names == NULL)
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    for (size_t i = 0; i < res->count; i++)
        names[i] = res->tensors[i].name;
    qsort(names, res->count, sizeof *names, cmp_name);
    mg_status s = MG_OK;
    for (size_t i = 1; i < res->count && s == MG_OK; i++) {
        if (strcmp(names[i - 1], names[i]) == 0)
            s = bad(err, "duplicate tensor name");
    }
    free(names);
    return s;
}

mg_status mg_wire_get_result(const mg_wire_in *in, uint64_t file_len, mg_parse_result *res,
                             mg_error *err)
{
    uint32_t magic, status, blobs;
    uint64_t count;
    mg_status s = get_u32(in, &magic, err);
    if (s == MG_OK && magic != MG_WIRE_MAGIC)
        return bad(err, "no record mark");
    if (s == MG_OK)
        s = get_u32(in, &status, err);
    if (s != MG_OK)
        return s;
    if (status != MG_OK)
        return get_error(in, status, err);
    s = get_u64(in, &count, err);
    if (s == MG_OK)
        s = get_u32(in, &blobs, err);
    if (s != MG_OK)
        return s;
    if (count > MG_MAX_TENSORS)
        return bad(err, "too many tensors");
    if (blobs > MG_WIRE_MAX_BLOBS)
        return bad(err, "too many buffers");
    s = get_metadata(in, res, err);
    for (uint32_t i = 0; s == MG_OK && i < blobs; i++)
        s = get_blob(in, res, err);
    if (s != MG_OK)
        return s;
    char *name = malloc(MG_MAX_NAME_LEN + 1);
    if (name == NULL)
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    for (uint64_t i = 0; s == MG_OK && i < count; i++)
        s = get_tensor(in, file_len, res, name, err);
    free(name);
    uint32_t end;
    if (s == MG_OK)
        s = get_u32(in, &end, err);
    if (s == MG_OK && end != MG_WIRE_END)
        s = bad(err, "no end mark");
    if (s == MG_OK)
        s = check_unique(res, err);
    return s;
}

/* ---- in-memory streams --------------------------------------------------------------- */

bool mg_wire_buf_write(void *ctx, const void *p, size_t n)
{
    mg_wire_buf *b = ctx;
    size_t need;
    if (__builtin_add_overflow(b->len, n, &need))
        return false;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < need) {
            if (__builtin_mul_overflow(cap, 2, &cap))
                return false;
        }
        uint8_t *d = realloc(b->data, cap);
        if (d == NULL)
            return false;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len = need;
    return true;
}

bool mg_wire_buf_read(void *ctx, void *p, size_t n)
{
    mg_wire_buf *b = ctx;
    if (n > b->len - b->pos)
        return false;
    memcpy(p, b->data + b->pos, n);
    b->pos += n;
    return true;
}
