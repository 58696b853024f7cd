/*
 * safetensors (reference/formats.md §1): u64 LE header length N, N bytes of JSON, then the
 * data buffer, which the tensors must tile exactly from 0 to the end of the file.
 *
 * Rules, following the reference reader (§1.3) and stricter where noted:
 *  - N <= 100,000,000 and 8 + N <= file size;
 *  - the header is strict JSON (UTF-8, no NUL, JSON whitespace around it accepted), an object;
 *  - duplicate keys are refused everywhere (the reference keeps the last one);
 *  - "__metadata__" is null or an object of strings;
 *  - a tensor is an object with exactly dtype, shape, data_offsets (the reference ignores
 *    extra fields; the schema forbids them, and so do we);
 *  - dtype is one of SPEC §4's names; shape items and offsets are non-negative integers;
 *  - sorted by (begin, end), the tensors tile [0, end) with no gap or overlap, each exactly
 *    elements * dtype size bytes (checked products), and 8 + N + end == file size.
 * Tensors are returned in data order.
 */
#include <stdlib.h>
#include <string.h>

#include "format/format.h"
#include "util/checked.h"
#include "util/json.h"
#include "util/reader.h"

#define ST_MAX_HEADER 100000000u

static bool probe(const uint8_t *data, size_t len)
{
    if (len < 9)
        return false;
    uint64_t n = mg_load_u64le(data);
    if (n == 0 || n > ST_MAX_HEADER)
        return false;
    /* The JSON header opens with '{', possibly after JSON whitespace. */
    for (size_t i = 8; i < len && i < 8 + n; i++) {
        uint8_t c = data[i];
        if (c == '{')
            return true;
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            return false;
    }
    return false;
}

static int cmp_entry(const void *a, const void *b)
{
    const mg_tensor_entry *x = a, *y = b;
    if (x->data_offset != y->data_offset)
        return x->data_offset < y->data_offset ? -1 : 1;
    uint64_t ex = x->data_offset + x->nbytes, ey = y->data_offset + y->nbytes;
    return ex < ey ? -1 : ex > ey ? 1 : 0;
}

static mg_status parse_tensor(const char *name, json_t *v, mg_tensor_entry *t, uint64_t *begin,
                              uint64_t *end, mg_error *err)
{
    if (!json_is_object(v))
        return mg_fail(err, MG_E_FORMAT, "tensor '%.200s': not a JSON object", name);
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x) {
        if (strcmp(k, "dtype") != 0 && strcmp(k, "shape") != 0 && strcmp(k, "data_offsets") != 0)
            return mg_fail(err, MG_E_FORMAT, "tensor '%.200s': unknown field '%.100s'", name, k);
    }
    json_t *dtype = json_object_get(v, "dtype");
    json_t *shape = json_object_get(v, "shape");
    json_t *offs = json_object_get(v, "data_offsets");
    if (dtype == NULL || shape == NULL || offs == NULL)
        return mg_fail(err, MG_E_FORMAT, "tensor '%.200s': missing %s", name,
                       dtype == NULL ? "dtype" : shape == NULL ? "shape" : "data_offsets");
    if (!json_is_string(dtype))
        return mg_fail(err, MG_E_FORMAT, "tensor '%.200s': dtype is not a string", name);
    t->dtype = mg_dtype_from_name(json_string_value(dtype));
    if (t->dtype == MG_DTYPE_INVALID)
        return mg_fail(err, MG_E_FORMAT, "tensor '%.200s': unsupported dtype '%.32s'", name,
                       json_string_value(dtype));
    if (!json_is_array(shape))
        return mg_fail(err, MG_E_FORMAT, "tensor '%.200s': shape is not an array", name);
    if (json_array_size(shape) > MG_MAX_NDIM)
        return mg_fail(err, MG_E_FORMAT, "tensor '%.200s': %zu dimensions, more than %d", name,
                       json_array_size(shape), MG_MAX_NDIM);
    t->ndim = (uint32_t)json_array_size(shape);
    for (uint32_t i = 0; i < t->ndim; i++) {
        if (!mg_json_u64(json_array_get(shape, i), &t->shape[i]))
            return mg_fail(err, MG_E_FORMAT, "tensor '%.200s': shape[%u] is not a non-negative "
                           "integer", name, i);
    }
    if (!json_is_array(offs) || json_array_size(offs) != 2 ||
        !mg_json_u64(json_array_get(offs, 0), begin) || !mg_json_u64(json_array_get(offs, 1), end))
        return mg_fail(err, MG_E_FORMAT, "tensor '%.200s': data_offsets must be two "
                       "non-negative integers", name);
    if (*end < *begin)
        return mg_fail(err, MG_E_FORMAT, "tensor '%.200s': data_offsets end before they begin",
                       name);
    uint64_t elements, bytes;
    if (!mg_shape_elements(t->shape, t->ndim, &elements) ||
        !mg_mul_u64(elements, mg_dtype_size(t->dtype), &bytes))
        return mg_fail(err, MG_E_FORMAT, "tensor '%.200s': shape size overflows", name);
    if (bytes != *end - *begin)
        return mg_fail(err, MG_E_FORMAT, "tensor '%.200s': data_offsets span %llu bytes, the "
                       "shape needs %llu", name, (unsigned long long)(*end - *begin),
                       (unsigned long long)bytes);
    t->nbytes = bytes;
    return MG_OK;
}

static mg_status check_metadata(json_t *v, mg_error *err)
{
    if (json_is_null(v))
        return MG_OK;
    if (!json_is_object(v))
        return mg_fail(err, MG_E_FORMAT, "__metadata__ must be an object of strings or null");
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x) {
        if (!json_is_string(x))
            return mg_fail(err, MG_E_FORMAT, "__metadata__ value of '%.100s' is not a string", k);
    }
    return MG_OK;
}

/* Parse a safetensors file of `size` bytes of which the first `len` are at `data` (len == size
 * for a whole file; less when only the head is at hand, as for detection while streaming: the
 * header must then lie within the head, and the tensors must tile exactly `size` bytes). */
static mg_status parse_sized(const uint8_t *data, size_t len, uint64_t size, mg_parse_result *out,
                             mg_error *err)
{
    mg_reader r;
    mg_reader_init(&r, data, len);
    uint64_t n;
    if (!mg_reader_u64(&r, &n))
        return mg_fail(err, MG_E_FORMAT, "safetensors: file shorter than 8 bytes");
    if (n > ST_MAX_HEADER)
        return mg_fail(err, MG_E_FORMAT, "safetensors: header length %llu exceeds 100000000",
                       (unsigned long long)n);
    const uint8_t *hdr;
    if (!mg_reader_bytes(&r, n, &hdr))
        return mg_fail(err, MG_E_FORMAT, "safetensors: header length %llu runs past the end of "
                       "the file", (unsigned long long)n);
    if (n == 0)
        return mg_fail(err, MG_E_FORMAT, "safetensors: empty header");
    json_t *root = mg_parse_json(out, hdr, (size_t)n, "safetensors header",
                                 &mg_json_caps_st_header, err);
    if (root == NULL)
        return err->status;
    mg_status s = MG_OK;
    if (!json_is_object(root)) {
        s = mg_fail(err, MG_E_FORMAT, "safetensors: header is not a JSON object");
        goto out;
    }
    const uint64_t base = 8 + n;
    const char *name;
    json_t *v;
    json_object_foreach(root, name, v) {
        if (strcmp(name, "__metadata__") == 0) {
            s = check_metadata(v, err);
            if (s != MG_OK)
                goto out;
            continue;
        }
        mg_tensor_entry t;
        memset(&t, 0, sizeof t);
        uint64_t begin, end;
        s = parse_tensor(name, v, &t, &begin, &end, err);
        if (s != MG_OK)
            goto out;
        if (!mg_add_u64(base, begin, &t.data_offset)) {
            s = mg_fail(err, MG_E_FORMAT, "tensor '%.200s': offset overflows", name);
            goto out;
        }
        t.offset = t.data_offset;
        s = mg_parse_add_tensor(out, &t, name, strlen(name), err);
        if (s != MG_OK)
            goto out;
    }
    /* Exact tiling: sorted by (begin, end), each begins where the previous ended. */
    if (out->count > 1)
        qsort(out->tensors, out->count, sizeof *out->tensors, cmp_entry);
    uint64_t pos = base;
    for (size_t i = 0; i < out->count; i++) {
        const mg_tensor_entry *t = &out->tensors[i];
        if (t->data_offset != pos) {
            s = mg_fail(err, MG_E_FORMAT, "tensor '%.200s': data %s the previous tensor's end "
                        "(gap or overlap)", t->name, t->data_offset > pos ? "starts after"
                                                                            : "overlaps");
            goto out;
        }
        pos += t->nbytes; /* cannot wrap: data_offset + nbytes was computed from begin/end */
    }
    if (pos != size) {
        s = mg_fail(err, MG_E_FORMAT, "safetensors: tensor data ends at byte %llu but the file "
                    "has %llu bytes (%s)", (unsigned long long)pos, (unsigned long long)size,
                    pos < size ? "trailing bytes" : "truncated");
        goto out;
    }
out:
    json_decref(root);
    return s;
}

static mg_status parse(const uint8_t *data, size_t len, mg_parse_result *out, mg_error *err)
{
    return parse_sized(data, len, (uint64_t)len, out, err);
}

bool mg_safetensors_head_parses(const uint8_t *head, size_t head_len, uint64_t size)
{
    if (head_len > size)
        return false;
    mg_parse_result res;
    mg_error err;
    memset(&res, 0, sizeof res);
    memset(&err, 0, sizeof err);
    mg_status st = parse_sized(head, head_len, size, &res, &err);
    mg_parse_result_free(&res);
    return st == MG_OK;
}

const mg_format mg_format_safetensors = {"safetensors", probe, parse};
