/*
 * MXNet NDArray-list `.params` files (mx.nd.save, save_checkpoint, Gluon export 1.x):
 * formats.md §4.1-4.3. The rules this parser enforces are listed in format/mxnet.h.
 *
 * The names come after all the records, so the file is walked twice: the first walk
 * validates every record and finds the names, the second (which cannot fail on the same
 * bytes) adds the tensors with their names. Nothing is allocated per record.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/format.h"
#include "format/mxnet.h"
#include "util/utf8.h"
#include "util/checked.h"
#include "util/reader.h"

#define LIST_MAGIC UINT64_C(0x112)
#define V1_MAGIC UINT32_C(0xF993FAC8)
#define V2_MAGIC UINT32_C(0xF993FAC9)
#define V3_MAGIC UINT32_C(0xF993FACA)
#define HEADER_BYTES 24u
#define MIN_RECORD_BYTES 4u /* a legacy "none" record: u32 ndim = 0 */
#define MIN_NAME_BYTES 8u   /* u64 length */

enum record_version { REC_LEGACY = 0, REC_V1 = 1, REC_V2 = 2, REC_V3 = 3 };

static const char *const version_names[] = {"legacy", "v1", "v2", "v3"};

typedef struct record {
    enum record_version version;
    bool none; /* an empty-handle array: no data, no tensor */
    mg_tensor_entry t;
} record;

typedef struct name_ref {
    const uint8_t *p;
    size_t len;
} name_ref;

/* mshadow TypeFlag (formats.md §4.3) -> dtype. */
static mg_dtype dtype_from_flag(int32_t flag)
{
    static const mg_dtype table[] = {
        MG_DTYPE_F32, MG_DTYPE_F64, MG_DTYPE_F16, MG_DTYPE_U8,  MG_DTYPE_I32,
        MG_DTYPE_I8,  MG_DTYPE_I64, MG_DTYPE_BOOL, MG_DTYPE_I16, MG_DTYPE_U16,
        MG_DTYPE_U32, MG_DTYPE_U64, MG_DTYPE_BF16,
    };
    if (flag < 0 || (size_t)flag >= sizeof table / sizeof table[0])
        return MG_DTYPE_INVALID;
    return table[flag];
}

static bool known_dev_type(int32_t dev_type)
{
    return dev_type == 1 || dev_type == 2 || dev_type == 3 || dev_type == 5;
}

static mg_status truncated(mg_error *err, uint64_t index, const char *what)
{
    return mg_fail(err, MG_E_FORMAT, "mxnet-params: record %llu: file ends inside the %s",
                   (unsigned long long)index, what);
}

/* TShape of a V1/V2/V3 record: i32 ndim, ndim x i64 dims. Sets rec->none for the "none"
 * encodings of that version. */
static mg_status read_shape_i64(mg_reader *r, uint64_t index, record *rec, mg_error *err)
{
    int32_t ndim;
    if (!mg_reader_i32(r, &ndim))
        return truncated(err, index, "shape");
    if (ndim < -1 || (ndim == -1 && rec->version == REC_V1))
        return mg_fail(err, MG_E_FORMAT, "mxnet-params: record %llu: invalid ndim %d",
                       (unsigned long long)index, ndim);
    if (ndim == -1 || (ndim == 0 && rec->version != REC_V3)) {
        rec->none = true;
        return MG_OK;
    }
    if (ndim > MG_MAX_NDIM)
        return mg_fail(err, MG_E_FORMAT, "mxnet-params: record %llu: ndim %d exceeds %d",
                       (unsigned long long)index, ndim, MG_MAX_NDIM);
    rec->t.ndim = (uint32_t)ndim;
    for (uint32_t d = 0; d < rec->t.ndim; d++) {
        int64_t dim;
        if (!mg_reader_i64(r, &dim))
            return truncated(err, index, "shape");
        if (dim == -1 && rec->version == REC_V3) {
            rec->none = true; /* np semantics: a shape not known yet */
            dim = 0;
        } else if (dim < 0) {
            return mg_fail(err, MG_E_FORMAT, "mxnet-params: record %llu: negative dimension %lld",
                           (unsigned long long)index, (long long)dim);
        }
        rec->t.shape[d] = (uint64_t)dim;
    }
    return MG_OK;
}

/* Legacy TShape: the u32 already read as `ndim`, then ndim x u32 dims. */
static mg_status read_shape_legacy(mg_reader *r, uint64_t index, uint32_t ndim, record *rec,
                                   mg_error *err)
{
    if (ndim == 0) {
        rec->none = true;
        return MG_OK;
    }
    if (ndim > MG_MAX_NDIM)
        return mg_fail(err, MG_E_FORMAT,
                       "mxnet-params: record %llu: unknown record magic 0x%08x (as a legacy "
                       "ndim it exceeds %d)",
                       (unsigned long long)index, ndim, MG_MAX_NDIM);
    rec->t.ndim = ndim;
    for (uint32_t d = 0; d < ndim; d++) {
        uint32_t dim;
        if (!mg_reader_u32(r, &dim))
            return truncated(err, index, "shape");
        rec->t.shape[d] = dim;
    }
    return MG_OK;
}

/* One NDArray record (formats.md §4.2); on success the reader is past it. */
static mg_status read_record(mg_reader *r, uint64_t index, record *rec, mg_error *err)
{
    memset(rec, 0, sizeof *rec);
    uint32_t magic;
    if (!mg_reader_u32(r, &magic))
        return truncated(err, index, "record magic");
    mg_status st;
    if (magic == V1_MAGIC || magic == V2_MAGIC || magic == V3_MAGIC) {
        rec->version = magic == V1_MAGIC ? REC_V1 : magic == V2_MAGIC ? REC_V2 : REC_V3;
        if (rec->version != REC_V1) {
            int32_t stype;
            if (!mg_reader_i32(r, &stype))
                return truncated(err, index, "storage type");
            if (stype == 1 || stype == 2)
                return mg_fail(err, MG_E_FORMAT,
                               "mxnet-params: record %llu: sparse storage is not supported "
                               "(%s)",
                               (unsigned long long)index, stype == 1 ? "row_sparse" : "csr");
            if (stype != 0)
                return mg_fail(err, MG_E_FORMAT, "mxnet-params: record %llu: unknown storage "
                               "type %d", (unsigned long long)index, stype);
        }
        st = read_shape_i64(r, index, rec, err);
    } else {
        rec->version = REC_LEGACY;
        st = read_shape_legacy(r, index, magic, rec, err);
    }
    if (st != MG_OK || rec->none)
        return st;

    int32_t dev_type, dev_id, type_flag;
    if (!mg_reader_i32(r, &dev_type) || !mg_reader_i32(r, &dev_id))
        return truncated(err, index, "device context");
    if (!known_dev_type(dev_type))
        return mg_fail(err, MG_E_FORMAT, "mxnet-params: record %llu: unknown device type %d",
                       (unsigned long long)index, dev_type);
    if (!mg_reader_i32(r, &type_flag))
        return truncated(err, index, "type flag");
    rec->t.dtype = dtype_from_flag(type_flag);
    if (rec->t.dtype == MG_DTYPE_INVALID)
        return mg_fail(err, MG_E_FORMAT, "mxnet-params: record %llu: unknown type flag %d",
                       (unsigned long long)index, type_flag);
    uint64_t elements;
    if (!mg_shape_elements(rec->t.shape, rec->t.ndim, &elements) ||
        !mg_mul_u64(elements, mg_dtype_size(rec->t.dtype), &rec->t.nbytes))
        return mg_fail(err, MG_E_FORMAT, "mxnet-params: record %llu: shape size overflows",
                       (unsigned long long)index);
    rec->t.offset = r->pos;
    rec->t.data_offset = r->pos;
    rec->t.blob = 0;
    if (!mg_reader_skip(r, rec->t.nbytes))
        return mg_fail(err, MG_E_FORMAT,
                       "mxnet-params: record %llu: %llu bytes of data run past the end of the "
                       "file",
                       (unsigned long long)index, (unsigned long long)rec->t.nbytes);
    return MG_OK;
}

static int name_cmp(const void *a, const void *b)
{
    const name_ref *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = n == 0 ? 0 : memcmp(x->p, y->p, n);
    if (c != 0)
        return c;
    return x->len < y->len ? -1 : x->len > y->len ? 1 : 0;
}

/* The name list: u64 n_names (0 or n_arrays), then each name; nothing may follow. */
static mg_status read_names(mg_reader *r, uint64_t n_arrays, name_ref **out, mg_error *err)
{
    *out = NULL;
    uint64_t n_names;
    if (!mg_reader_u64(r, &n_names))
        return mg_fail(err, MG_E_FORMAT, "mxnet-params: file ends before the name count");
    if (n_names != 0 && n_names != n_arrays)
        return mg_fail(err, MG_E_FORMAT, "mxnet-params: %llu names for %llu arrays",
                       (unsigned long long)n_names, (unsigned long long)n_arrays);
    if (n_names > mg_reader_remaining(r) / MIN_NAME_BYTES)
        return mg_fail(err, MG_E_FORMAT,
                       "mxnet-params: %llu names cannot fit in the remaining %zu bytes",
                       (unsigned long long)n_names, mg_reader_remaining(r));
    if (n_names == 0) {
        if (mg_reader_remaining(r) != 0)
            return mg_fail(err, MG_E_FORMAT, "mxnet-params: %zu trailing bytes after the names",
                           mg_reader_remaining(r));
        return MG_OK;
    }
    name_ref *names = mg_calloc((size_t)n_names, sizeof *names);
    if (names == NULL)
        return mg_fail(err, MG_E_LIMIT, "mxnet-params: out of memory for %llu names",
                       (unsigned long long)n_names);
    mg_status st = MG_OK;
    for (uint64_t i = 0; i < n_names && st == MG_OK; i++) {
        uint64_t len;
        const uint8_t *p;
        if (!mg_reader_u64(r, &len) || !mg_reader_bytes(r, len, &p))
            st = mg_fail(err, MG_E_FORMAT, "mxnet-params: name %llu runs past the end of the "
                         "file", (unsigned long long)i);
        else if (len == 0)
            st = mg_fail(err, MG_E_FORMAT, "mxnet-params: name %llu is empty",
                         (unsigned long long)i);
        else if (len > MG_MAX_NAME_LEN)
            st = mg_fail(err, MG_E_LIMIT, "mxnet-params: name %llu of %llu bytes exceeds the "
                         "cap of %u", (unsigned long long)i, (unsigned long long)len,
                         MG_MAX_NAME_LEN);
        else if (memchr(p, '\0', (size_t)len) != NULL)
            st = mg_fail(err, MG_E_FORMAT, "mxnet-params: name %llu contains a NUL byte",
                         (unsigned long long)i);
        else if (!mg_utf8_valid(p, (size_t)len))
            st = mg_fail(err, MG_E_FORMAT, "mxnet-params: name %llu is not valid UTF-8",
                         (unsigned long long)i);
        else
            names[i] = (name_ref){p, (size_t)len};
    }
    if (st == MG_OK && mg_reader_remaining(r) != 0)
        st = mg_fail(err, MG_E_FORMAT, "mxnet-params: %zu trailing bytes after the names",
                     mg_reader_remaining(r));
    if (st == MG_OK) {
        name_ref *sorted = mg_calloc((size_t)n_names, sizeof *sorted);
        if (sorted == NULL) {
            st = mg_fail(err, MG_E_LIMIT, "mxnet-params: out of memory for %llu names",
                         (unsigned long long)n_names);
        } else {
            memcpy(sorted, names, (size_t)n_names * sizeof *sorted);
            if (n_names > 1)
                qsort(sorted, (size_t)n_names, sizeof *sorted, name_cmp);
            for (size_t i = 1; i < (size_t)n_names && st == MG_OK; i++) {
                if (name_cmp(&sorted[i - 1], &sorted[i]) == 0)
                    st = mg_fail(err, MG_E_FORMAT, "mxnet-params: duplicate name '%.*s'",
                                 (int)(sorted[i].len > 200 ? 200 : sorted[i].len),
                                 (const char *)sorted[i].p);
            }
            free(sorted);
        }
    }
    if (st != MG_OK) {
        free(names);
        return st;
    }
    *out = names;
    return MG_OK;
}

static mg_status set_new(json_t *obj, const char *key, json_t *value, mg_error *err)
{
    if (value == NULL || json_object_set_new(obj, key, value) != 0)
        return mg_fail(err, MG_E_LIMIT, "mxnet-params: out of memory for metadata");
    return MG_OK;
}

static mg_status append_new(json_t *arr, json_t *value, mg_error *err)
{
    if (value == NULL || json_array_append_new(arr, value) != 0)
        return mg_fail(err, MG_E_LIMIT, "mxnet-params: out of memory for metadata");
    return MG_OK;
}

/* The list magic alone is not enough: a safetensors file whose JSON header is 0x112 bytes
 * long starts with the same 8 bytes, followed by '{'. MXNet always writes reserved = 0. */
static bool probe(const uint8_t *data, size_t len)
{
    return len >= 16 && mg_load_u64le(data) == LIST_MAGIC && mg_load_u64le(data + 8) == 0;
}

static mg_status parse(const uint8_t *data, size_t len, mg_parse_result *out, mg_error *err)
{
    if (len < HEADER_BYTES)
        return mg_fail(err, MG_E_FORMAT,
                       "mxnet-params: file of %zu bytes is shorter than the %u-byte header", len,
                       HEADER_BYTES);
    mg_reader r;
    mg_reader_init(&r, data, len);
    uint64_t magic, reserved, n_arrays;
    if (!mg_reader_u64(&r, &magic) || !mg_reader_u64(&r, &reserved) ||
        !mg_reader_u64(&r, &n_arrays))
        return mg_fail(err, MG_E_FORMAT, "mxnet-params: truncated header");
    if (magic != LIST_MAGIC)
        return mg_fail(err, MG_E_FORMAT, "mxnet-params: not an MXNet NDArray list (magic "
                       "0x%llx, expected 0x112)", (unsigned long long)magic);
    if (reserved != 0) /* MXNet always writes 0; anything else is another format */
        return mg_fail(err, MG_E_FORMAT, "mxnet-params: reserved header word is not 0");
    if (n_arrays > mg_reader_remaining(&r) / MIN_RECORD_BYTES)
        return mg_fail(err, MG_E_FORMAT,
                       "mxnet-params: %llu arrays cannot fit in the remaining %zu bytes",
                       (unsigned long long)n_arrays, mg_reader_remaining(&r));
    if (n_arrays > MG_MAX_TENSORS)
        return mg_fail(err, MG_E_LIMIT, "mxnet-params: %llu arrays exceed the cap of %u",
                       (unsigned long long)n_arrays, MG_MAX_TENSORS);

    /* Walk 1: validate every record. */
    size_t records_start = r.pos;
    unsigned versions = 0;
    record rec;
    for (uint64_t i = 0; i < n_arrays; i++) {
        mg_status st = read_record(&r, i, &rec, err);
        if (st != MG_OK)
            return st;
        versions |= 1u << rec.version;
    }
    if ((versions & (1u << REC_V3)) != 0 && versions != (1u << REC_V3))
        return mg_fail(err, MG_E_FORMAT, "mxnet-params: np-shape (V3) records mixed with "
                       "older records");
    name_ref *names;
    mg_status st = read_names(&r, n_arrays, &names, err);
    if (st != MG_OK)
        return st;

    json_t *meta = json_object();
    json_t *none = json_array();
    json_t *vers = json_array();
    if (meta == NULL || none == NULL || vers == NULL) {
        json_decref(meta);
        json_decref(none);
        json_decref(vers);
        free(names);
        return mg_fail(err, MG_E_LIMIT, "mxnet-params: out of memory for metadata");
    }
    out->metadata = meta;
    st = set_new(meta, "arrays", json_integer((json_int_t)n_arrays), err);
    if (st == MG_OK)
        st = set_new(meta, "record_versions", vers, err);
    else
        json_decref(vers);
    if (st == MG_OK)
        st = set_new(meta, "none", none, err);
    else
        json_decref(none);
    for (unsigned v = REC_LEGACY; v <= REC_V3 && st == MG_OK; v++) {
        if (versions & (1u << v))
            st = append_new(vers, json_string(version_names[v]), err);
    }

    /* Walk 2: the same bytes again, now adding tensors under their names. */
    r.pos = records_start;
    for (uint64_t i = 0; i < n_arrays && st == MG_OK; i++) {
        st = read_record(&r, i, &rec, err);
        if (st != MG_OK)
            break;
        char index_name[24];
        const char *name = index_name;
        size_t name_len;
        if (names != NULL) {
            name = (const char *)names[i].p;
            name_len = names[i].len;
        } else {
            int n = snprintf(index_name, sizeof index_name, "%llu", (unsigned long long)i);
            name_len = n > 0 ? (size_t)n : 0;
        }
        if (rec.none)
            st = append_new(none, json_stringn(name, name_len), err);
        else
            st = mg_parse_add_tensor(out, &rec.t, name, name_len, err);
    }
    free(names);
    return st;
}

const mg_format mg_format_mxnet_params = {"mxnet-params", probe, parse};
