/*
 * GGUF v2 and v3 (formats.md §3): the rules of ggml's reference reader (§3.2), plus our own
 * checked arithmetic and caps.
 *
 * Choices this parser makes where the references leave room:
 *
 * - Versions: 2 and 3 only. v1 (u32 counts and lengths) is refused as "GGUF v1 is not
 *   supported"; a byte-swapped version (big-endian writer) and versions 0 and >= 4 are refused.
 * - Keys: non-empty, unique, at most 65535 bytes (the spec's bound; ggml allows 1 GiB), valid
 *   UTF-8 without NUL (so that a key is a JSON key without any escaping ambiguity).
 * - Values: types 0..12. An ARRAY of ARRAY and BOOL bytes other than 0/1 are refused. Strings
 *   <= 1 GiB and arrays <= 2^30 elements (ggml's caps; over them: MG_E_LIMIT); both are
 *   checked against the bytes that remain first (past the end: MG_E_FORMAT).
 * - general.alignment must be UINT32, a non-zero power of two and at most 1 MiB (bigger:
 *   MG_E_LIMIT; ggml has no bound, see llama.cpp#24997). Default 32.
 * - Tensors: name < 64 bytes, unique; n_dims <= 4 (0 is a scalar, as in ggml); dims read as
 *   int64 and >= 0 (0 gives an empty tensor); element count <= INT64_MAX unless a dim is 0;
 *   ne[0] a multiple of the block size; nbytes = (ne[0]/blck)*bytes*ne[1]*ne[2]*ne[3], checked.
 *   Shapes are exposed outermost first (the reverse of ggml's ne).
 * - Layout: the data section starts at the padded end of the tensor infos; in file order, every
 *   tensor's offset equals the running total of padded sizes (ggml >= 2025-01). Every padding
 *   byte must be zero (the reference writers write zeros; non-zero padding would be a place to
 *   hide a second payload). After the last tensor the file ends either exactly at the end of
 *   its data (the final pad missing, as written by gguflib/MLX, accepted by llama.cpp's mmap
 *   loader) or after its complete zero pad (ggml, gguf-py). The real llama-2-tiny-random.gguf
 *   ends at the end of its last tensor, which is 32-aligned there, so both rules agree on it.
 *   With n_tensors = 0 the file ends after the KV section (the real vocab files) or after the
 *   zero pad to the alignment. Any other trailing byte is refused.
 * - Metadata JSON (mg_parse_result.metadata): an object key -> value, in file order.
 *     integers: JSON integers; a UINT64 above INT64_MAX becomes a decimal string;
 *     FLOAT32/FLOAT64: JSON reals, NaN and infinities as the strings "NaN", "Infinity",
 *       "-Infinity"; BOOL: true/false;
 *     STRING: a JSON string when valid UTF-8 and at most 64 KiB, else
 *       {"type":"string","length":N} (plus "utf8":false when invalid);
 *     ARRAY: a JSON array when it has at most 1024 elements, else
 *       {"type":"array","element_type":"<type>","count":N}.
 *   Once about 16 MiB of string bytes, or 262144 array elements, went into the JSON, further
 *   strings and arrays are summarised too, so the metadata stays bounded whatever the file.
 *   n_kv is capped at 65536 (MG_E_LIMIT).
 * - Names in messages are cut at 200 bytes on a UTF-8 boundary, control characters shown as
 *   '?', so that every message is one printable line. Tensor names must be valid UTF-8 (they
 *   are shown as JSON strings); ggml does not check this, no real file needs otherwise.
 */
#include "format/gguf.h"
#include "util/utf8.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/format.h"
#include "util/checked.h"
#include "util/reader.h"

#define GGUF_MAX_STRING (UINT64_C(1) << 30)
#define GGUF_MAX_ARRAY (UINT64_C(1) << 30)
#define GGUF_MAX_KEY_LEN 65535u
#define GGUF_MAX_KV 65536u
#define GGUF_NAME_LIMIT 64u /* a tensor name must be shorter than this (GGML_MAX_NAME) */
#define GGUF_MAX_DIMS 4u
#define GGUF_DEFAULT_ALIGNMENT 32u
#define GGUF_MAX_ALIGNMENT (1u << 20)
#define GGUF_KV_MIN_BYTES 14u     /* u64 key length, 1 key byte, u32 type, 1 value byte */
#define GGUF_TENSOR_MIN_BYTES 24u /* u64 name length, u32 n_dims, u32 type, u64 offset */
#define META_ARRAY_INLINE_MAX 1024u
#define META_STRING_INLINE_MAX 65536u
#define META_STRING_BUDGET (16u << 20)
#define META_ELEMENT_BUDGET (256u << 10) /* array elements put into the JSON, all keys together */

enum gguf_value_type {
    GGUF_UINT8 = 0,
    GGUF_INT8,
    GGUF_UINT16,
    GGUF_INT16,
    GGUF_UINT32,
    GGUF_INT32,
    GGUF_FLOAT32,
    GGUF_BOOL,
    GGUF_STRING,
    GGUF_ARRAY,
    GGUF_UINT64,
    GGUF_INT64,
    GGUF_FLOAT64,
    GGUF_TYPE_COUNT
};

static const struct {
    const char *name;
    uint32_t size; /* 0: variable (string, array) */
} value_types[GGUF_TYPE_COUNT] = {
    {"uint8", 1},  {"int8", 1},   {"uint16", 2}, {"int16", 2},  {"uint32", 4},
    {"int32", 4},  {"float32", 4}, {"bool", 1},  {"string", 0}, {"array", 0},
    {"uint64", 8}, {"int64", 8},  {"float64", 8},
};

/* ggml types (formats.md §3.3, from sizeof(block_*) in ggml-common.h @ d99724f). A NULL name
 * marks an id ggml removed. */
typedef struct {
    const char *name;
    uint32_t blck;
    uint32_t bytes;
    mg_dtype plain; /* MG_DTYPE_GGML_BLOCK for block-quantized types */
} ggml_type_info;

#define GGML_TYPE_COUNT 43u
static const ggml_type_info ggml_types[GGML_TYPE_COUNT] = {
    [0] = {"F32", 1, 4, MG_DTYPE_F32},
    [1] = {"F16", 1, 2, MG_DTYPE_F16},
    [2] = {"Q4_0", 32, 18, MG_DTYPE_GGML_BLOCK},
    [3] = {"Q4_1", 32, 20, MG_DTYPE_GGML_BLOCK},
    [6] = {"Q5_0", 32, 22, MG_DTYPE_GGML_BLOCK},
    [7] = {"Q5_1", 32, 24, MG_DTYPE_GGML_BLOCK},
    [8] = {"Q8_0", 32, 34, MG_DTYPE_GGML_BLOCK},
    [9] = {"Q8_1", 32, 36, MG_DTYPE_GGML_BLOCK},
    [10] = {"Q2_K", 256, 84, MG_DTYPE_GGML_BLOCK},
    [11] = {"Q3_K", 256, 110, MG_DTYPE_GGML_BLOCK},
    [12] = {"Q4_K", 256, 144, MG_DTYPE_GGML_BLOCK},
    [13] = {"Q5_K", 256, 176, MG_DTYPE_GGML_BLOCK},
    [14] = {"Q6_K", 256, 210, MG_DTYPE_GGML_BLOCK},
    [15] = {"Q8_K", 256, 292, MG_DTYPE_GGML_BLOCK},
    [16] = {"IQ2_XXS", 256, 66, MG_DTYPE_GGML_BLOCK},
    [17] = {"IQ2_XS", 256, 74, MG_DTYPE_GGML_BLOCK},
    [18] = {"IQ3_XXS", 256, 98, MG_DTYPE_GGML_BLOCK},
    [19] = {"IQ1_S", 256, 50, MG_DTYPE_GGML_BLOCK},
    [20] = {"IQ4_NL", 32, 18, MG_DTYPE_GGML_BLOCK},
    [21] = {"IQ3_S", 256, 110, MG_DTYPE_GGML_BLOCK},
    [22] = {"IQ2_S", 256, 82, MG_DTYPE_GGML_BLOCK},
    [23] = {"IQ4_XS", 256, 136, MG_DTYPE_GGML_BLOCK},
    [24] = {"I8", 1, 1, MG_DTYPE_I8},
    [25] = {"I16", 1, 2, MG_DTYPE_I16},
    [26] = {"I32", 1, 4, MG_DTYPE_I32},
    [27] = {"I64", 1, 8, MG_DTYPE_I64},
    [28] = {"F64", 1, 8, MG_DTYPE_F64},
    [29] = {"IQ1_M", 256, 56, MG_DTYPE_GGML_BLOCK},
    [30] = {"BF16", 1, 2, MG_DTYPE_BF16},
    [34] = {"TQ1_0", 256, 54, MG_DTYPE_GGML_BLOCK},
    [35] = {"TQ2_0", 256, 66, MG_DTYPE_GGML_BLOCK},
    [39] = {"MXFP4", 32, 17, MG_DTYPE_GGML_BLOCK},
    [40] = {"NVFP4", 64, 36, MG_DTYPE_GGML_BLOCK},
    [41] = {"Q1_0", 128, 18, MG_DTYPE_GGML_BLOCK},
    [42] = {"Q2_0", 64, 18, MG_DTYPE_GGML_BLOCK},
};

static const char *const removed_type_names[GGML_TYPE_COUNT] = {
    [4] = "Q4_2",        [5] = "Q4_3",        [31] = "Q4_0_4_4",   [32] = "Q4_0_4_8",
    [33] = "Q4_0_8_8",   [36] = "IQ4_NL_4_4", [37] = "IQ4_NL_4_8", [38] = "IQ4_NL_8_8",
};

const char *mg_gguf_type_name(uint32_t ggml_type)
{
    return ggml_type < GGML_TYPE_COUNT ? ggml_types[ggml_type].name : NULL;
}

bool mg_gguf_type_layout(uint32_t ggml_type, uint32_t *block_elements, uint32_t *block_bytes)
{
    if (mg_gguf_type_name(ggml_type) == NULL)
        return false;
    *block_elements = ggml_types[ggml_type].blck;
    *block_bytes = ggml_types[ggml_type].bytes;
    return true;
}

/* ---- parser state ------------------------------------------------------------------- */

typedef struct gguf_parser {
    mg_reader r;
    uint32_t version;
    uint32_t alignment;
    uint64_t json_string_bytes; /* string bytes put into the metadata JSON so far */
    uint64_t json_elements;     /* array elements put into the metadata JSON so far */
    json_t *meta;
    mg_error *err;
} gguf_parser;

static mg_status truncated(gguf_parser *p, const char *what)
{
    return mg_fail(p->err, MG_E_FORMAT, "gguf: %s runs past the end of the file (at byte %zu)",
                   what, p->r.pos);
}

static mg_status out_of_memory(gguf_parser *p)
{
    return mg_fail(p->err, MG_E_LIMIT, "gguf: out of memory for the metadata");
}

/* A gguf_string_t: bounded by what remains, then by the 1 GiB cap. */
static mg_status read_string(gguf_parser *p, const char *what, const uint8_t **s, uint64_t *len)
{
    uint64_t n;
    if (!mg_reader_u64(&p->r, &n))
        return truncated(p, what);
    if (n > mg_reader_remaining(&p->r))
        return mg_fail(p->err, MG_E_FORMAT,
                       "gguf: %s of %" PRIu64 " bytes runs past the end of the file (at byte %zu)",
                       what, n, p->r.pos);
    if (n > GGUF_MAX_STRING)
        return mg_fail(p->err, MG_E_LIMIT, "gguf: %s of %" PRIu64 " bytes exceeds the 1 GiB cap",
                       what, n);
    if (!mg_reader_bytes(&p->r, n, s))
        return truncated(p, what);
    *len = n;
    return MG_OK;
}

#define SHOWN_MAX 208 /* 200 bytes of a name, "...", NUL */

/* A name as shown in a message: at most 200 bytes cut on a UTF-8 boundary, control bytes
 * and DEL as '?', "..." when cut. */
static const char *shown(const char *s, char out[SHOWN_MAX])
{
    size_t n = strlen(s), cut = n;
    if (cut > 200) {
        cut = 200;
        while (cut > 0 && ((uint8_t)s[cut] & 0xC0u) == 0x80u)
            cut--;
    }
    for (size_t i = 0; i < cut; i++)
        out[i] = ((uint8_t)s[i] < 0x20u || (uint8_t)s[i] == 0x7Fu) ? '?' : s[i];
    if (cut < n) {
        memcpy(out + cut, "...", 4);
    } else {
        out[cut] = '\0';
    }
    return out;
}

/* The JSON form of a string value (see the top of the file). NULL only when out of memory. */
static json_t *string_json(gguf_parser *p, const uint8_t *s, uint64_t len)
{
    bool valid = mg_utf8_valid(s, (size_t)len);
    if (valid && len <= META_STRING_INLINE_MAX && p->json_string_bytes <= META_STRING_BUDGET) {
        p->json_string_bytes += len;
        return json_stringn((const char *)s, (size_t)len);
    }
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    if (json_object_set_new(o, "type", json_string("string")) != 0 ||
        json_object_set_new(o, "length", json_integer((json_int_t)len)) != 0 ||
        (!valid && json_object_set_new(o, "utf8", json_false()) != 0)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *real_json(double v)
{
    if (isnan(v))
        return json_string("NaN");
    if (isinf(v))
        return json_string(v > 0 ? "Infinity" : "-Infinity");
    return json_real(v);
}

/* Decode one fixed-size scalar of `type` from `b` (its size was proven available). Sets
 * `*bad_bool` for a BOOL byte other than 0/1. Returns NULL when out of memory or when
 * `want_json` is false. */
static json_t *scalar_json(uint32_t type, const uint8_t *b, bool want_json, bool *bad_bool)
{
    switch (type) {
    case GGUF_UINT8:
        return want_json ? json_integer(b[0]) : NULL;
    case GGUF_INT8: {
        int8_t v;
        memcpy(&v, b, 1);
        return want_json ? json_integer(v) : NULL;
    }
    case GGUF_UINT16:
        return want_json ? json_integer(mg_load_u16le(b)) : NULL;
    case GGUF_INT16: {
        uint16_t u = mg_load_u16le(b);
        int16_t v;
        memcpy(&v, &u, sizeof v);
        return want_json ? json_integer(v) : NULL;
    }
    case GGUF_UINT32:
        return want_json ? json_integer(mg_load_u32le(b)) : NULL;
    case GGUF_INT32: {
        uint32_t u = mg_load_u32le(b);
        int32_t v;
        memcpy(&v, &u, sizeof v);
        return want_json ? json_integer(v) : NULL;
    }
    case GGUF_FLOAT32: {
        uint32_t u = mg_load_u32le(b);
        float v;
        memcpy(&v, &u, sizeof v);
        return want_json ? real_json((double)v) : NULL;
    }
    case GGUF_BOOL:
        if (b[0] > 1) {
            *bad_bool = true;
            return NULL;
        }
        return want_json ? json_boolean(b[0]) : NULL;
    case GGUF_UINT64: {
        uint64_t v = mg_load_u64le(b);
        if (!want_json)
            return NULL;
        if (v <= (uint64_t)INT64_MAX)
            return json_integer((json_int_t)v);
        char buf[24];
        snprintf(buf, sizeof buf, "%" PRIu64, v);
        return json_string(buf);
    }
    case GGUF_INT64: {
        uint64_t u = mg_load_u64le(b);
        int64_t v;
        memcpy(&v, &u, sizeof v);
        return want_json ? json_integer((json_int_t)v) : NULL;
    }
    case GGUF_FLOAT64: {
        uint64_t u = mg_load_u64le(b);
        double v;
        memcpy(&v, &u, sizeof v);
        return want_json ? real_json(v) : NULL;
    }
    default:
        return NULL;
    }
}

static mg_status bad_bool_value(gguf_parser *p, const char *key)
{
    char q[SHOWN_MAX];
    return mg_fail(p->err, MG_E_FORMAT, "gguf: key '%s' has a BOOL value other than 0 or 1",
                   shown(key, q));
}

/* An ARRAY value: element type, count, elements. `*out` gets its JSON. */
static mg_status read_array(gguf_parser *p, const char *key, json_t **out)
{
    char q[SHOWN_MAX];
    uint32_t etype;
    uint64_t count;
    if (!mg_reader_u32(&p->r, &etype) || !mg_reader_u64(&p->r, &count))
        return truncated(p, "array header");
    if (etype == GGUF_ARRAY)
        return mg_fail(p->err, MG_E_FORMAT, "gguf: key '%s' holds a nested array",
                       shown(key, q));
    if (etype >= GGUF_TYPE_COUNT)
        return mg_fail(p->err, MG_E_FORMAT, "gguf: key '%s' has arrays of unknown type %" PRIu32,
                       shown(key, q), etype);
    /* Strings need at least their 8-byte length prefix each. */
    uint64_t min_size = etype == GGUF_STRING ? 8 : value_types[etype].size;
    uint64_t min_bytes;
    if (!mg_mul_u64(count, min_size, &min_bytes) || min_bytes > mg_reader_remaining(&p->r))
        return mg_fail(p->err, MG_E_FORMAT,
                       "gguf: array of %" PRIu64 " elements in key '%s' runs past the end of "
                       "the file",
                       count, shown(key, q));
    if (count > GGUF_MAX_ARRAY)
        return mg_fail(p->err, MG_E_LIMIT,
                       "gguf: array of %" PRIu64 " elements in key '%s' exceeds the cap of 2^30",
                       count, shown(key, q));

    bool inline_json = count <= META_ARRAY_INLINE_MAX &&
                       count <= META_ELEMENT_BUDGET - p->json_elements;
    if (inline_json)
        p->json_elements += count;
    json_t *arr = inline_json ? json_array() : json_object();
    if (arr == NULL)
        return out_of_memory(p);
    mg_status st = MG_OK;
    if (etype == GGUF_STRING) {
        for (uint64_t i = 0; i < count; i++) {
            const uint8_t *s;
            uint64_t len;
            st = read_string(p, "array string", &s, &len);
            if (st != MG_OK)
                break;
            if (inline_json) {
                json_t *v = string_json(p, s, len);
                if (v == NULL || json_array_append_new(arr, v) != 0) {
                    st = out_of_memory(p);
                    break;
                }
            }
        }
    } else if (!inline_json && etype != GGUF_BOOL) {
        /* Summarised fixed-size elements: nothing to validate, skip them (size proven above). */
        if (!mg_reader_skip(&p->r, min_bytes))
            st = truncated(p, "array");
    } else {
        for (uint64_t i = 0; i < count; i++) {
            const uint8_t *b;
            bool bad_bool = false;
            if (!mg_reader_bytes(&p->r, min_size, &b)) {
                st = truncated(p, "array");
                break;
            }
            json_t *v = scalar_json(etype, b, inline_json, &bad_bool);
            if (bad_bool) {
                st = bad_bool_value(p, key);
                break;
            }
            if (inline_json && (v == NULL || json_array_append_new(arr, v) != 0)) {
                st = out_of_memory(p);
                break;
            }
        }
    }
    if (st == MG_OK && !inline_json) {
        if (json_object_set_new(arr, "type", json_string("array")) != 0 ||
            json_object_set_new(arr, "element_type", json_string(value_types[etype].name)) != 0 ||
            json_object_set_new(arr, "count", json_integer((json_int_t)count)) != 0)
            st = out_of_memory(p);
    }
    if (st != MG_OK) {
        json_decref(arr);
        return st;
    }
    *out = arr;
    return MG_OK;
}

static mg_status check_alignment(gguf_parser *p, uint32_t type, const uint8_t *value)
{
    if (type != GGUF_UINT32 || value == NULL)
        return mg_fail(p->err, MG_E_FORMAT,
                       "gguf: general.alignment has type %s, it must be uint32",
                       type < GGUF_TYPE_COUNT ? value_types[type].name : "?");
    uint32_t a = mg_load_u32le(value);
    if (a == 0 || (a & (a - 1)) != 0)
        return mg_fail(p->err, MG_E_FORMAT,
                       "gguf: general.alignment %" PRIu32 " is not a power of two", a);
    if (a > GGUF_MAX_ALIGNMENT)
        return mg_fail(p->err, MG_E_LIMIT,
                       "gguf: general.alignment %" PRIu32 " exceeds the cap of %u bytes", a,
                       GGUF_MAX_ALIGNMENT);
    p->alignment = a;
    return MG_OK;
}

/* One value of `type` for `key`; `*out` gets its JSON. */
static mg_status read_value(gguf_parser *p, const char *key, uint32_t type, json_t **out)
{
    char q[SHOWN_MAX];
    if (type >= GGUF_TYPE_COUNT)
        return mg_fail(p->err, MG_E_FORMAT, "gguf: key '%s' has unknown value type %" PRIu32,
                       shown(key, q), type);
    if (type == GGUF_ARRAY)
        return read_array(p, key, out);
    if (type == GGUF_STRING) {
        const uint8_t *s;
        uint64_t len;
        mg_status st = read_string(p, "string value", &s, &len);
        if (st != MG_OK)
            return st;
        *out = string_json(p, s, len);
        return *out == NULL ? out_of_memory(p) : MG_OK;
    }
    const uint8_t *b;
    bool bad_bool = false;
    if (!mg_reader_bytes(&p->r, value_types[type].size, &b))
        return truncated(p, "value");
    if (strcmp(key, "general.alignment") == 0) {
        mg_status st = check_alignment(p, type, b);
        if (st != MG_OK)
            return st;
    }
    *out = scalar_json(type, b, true, &bad_bool);
    if (bad_bool)
        return bad_bool_value(p, key);
    return *out == NULL ? out_of_memory(p) : MG_OK;
}

static mg_status read_kv(gguf_parser *p)
{
    char q[SHOWN_MAX];
    const uint8_t *key;
    uint64_t key_len;
    mg_status st = read_string(p, "key", &key, &key_len);
    if (st != MG_OK)
        return st;
    if (key_len == 0)
        return mg_fail(p->err, MG_E_FORMAT, "gguf: empty key");
    if (key_len > GGUF_MAX_KEY_LEN)
        return mg_fail(p->err, MG_E_FORMAT,
                       "gguf: key of %" PRIu64 " bytes (GGUF keys have at most 65535)", key_len);
    if (memchr(key, '\0', (size_t)key_len) != NULL || !mg_utf8_valid(key, (size_t)key_len))
        return mg_fail(p->err, MG_E_FORMAT, "gguf: a key is not valid UTF-8 or holds a NUL byte");
    /* NUL-free UTF-8 from here on, so a C string to quote and a JSON key as is. */
    char *k = mg_strndup((const char *)key, (size_t)key_len);
    if (k == NULL)
        return out_of_memory(p);
    uint32_t type;
    json_t *value = NULL;
    if (json_object_getn(p->meta, k, (size_t)key_len) != NULL)
        st = mg_fail(p->err, MG_E_FORMAT, "gguf: duplicate key '%s'", shown(k, q));
    else if (!mg_reader_u32(&p->r, &type))
        st = truncated(p, "value type");
    else if (strcmp(k, "general.alignment") == 0 && type != GGUF_UINT32)
        st = check_alignment(p, type, NULL);
    else
        st = read_value(p, k, type, &value);
    if (st == MG_OK && json_object_setn_new(p->meta, k, (size_t)key_len, value) != 0)
        st = out_of_memory(p);
    free(k);
    return st;
}

/* ---- tensors ------------------------------------------------------------------------ */

static mg_status read_tensor_info(gguf_parser *p, mg_parse_result *out)
{
    char q[SHOWN_MAX];
    const uint8_t *name;
    uint64_t name_len;
    mg_status st = read_string(p, "tensor name", &name, &name_len);
    if (st != MG_OK)
        return st;
    if (name_len >= GGUF_NAME_LIMIT)
        return mg_fail(p->err, MG_E_FORMAT,
                       "gguf: tensor name of %" PRIu64 " bytes (GGUF allows at most %u)", name_len,
                       GGUF_NAME_LIMIT - 1);
    char nbuf[GGUF_NAME_LIMIT];
    memcpy(nbuf, name, (size_t)name_len);
    nbuf[name_len] = '\0';
    if (memchr(name, '\0', (size_t)name_len) != NULL)
        return mg_fail(p->err, MG_E_FORMAT, "gguf: a tensor name contains a NUL byte");
    if (!mg_utf8_valid(name, (size_t)name_len))
        return mg_fail(p->err, MG_E_FORMAT, "gguf: a tensor name is not valid UTF-8");

    uint32_t n_dims;
    if (!mg_reader_u32(&p->r, &n_dims))
        return truncated(p, "tensor info");
    if (n_dims > GGUF_MAX_DIMS)
        return mg_fail(p->err, MG_E_FORMAT,
                       "gguf: tensor '%s' has %" PRIu32 " dimensions (at most %u)", shown(nbuf, q),
                       n_dims, GGUF_MAX_DIMS);
    uint64_t ne[GGUF_MAX_DIMS] = {1, 1, 1, 1};
    for (uint32_t i = 0; i < n_dims; i++) {
        int64_t d;
        if (!mg_reader_i64(&p->r, &d))
            return truncated(p, "tensor dimensions");
        if (d < 0)
            return mg_fail(p->err, MG_E_FORMAT,
                           "gguf: tensor '%s' has a negative dimension %" PRId64, shown(nbuf, q), d);
        ne[i] = (uint64_t)d;
    }
    uint32_t type;
    uint64_t rel_offset;
    if (!mg_reader_u32(&p->r, &type) || !mg_reader_u64(&p->r, &rel_offset))
        return truncated(p, "tensor info");
    if (type >= GGML_TYPE_COUNT)
        return mg_fail(p->err, MG_E_FORMAT, "gguf: tensor '%s' has unknown ggml type %" PRIu32,
                       shown(nbuf, q), type);
    if (ggml_types[type].name == NULL)
        return mg_fail(p->err, MG_E_FORMAT,
                       "gguf: tensor '%s' has ggml type %" PRIu32 " (%s), removed from ggml",
                       shown(nbuf, q), type, removed_type_names[type]);
    const ggml_type_info *ti = &ggml_types[type];

    /* Element count: 0 when a dim is 0, else a product that must stay <= INT64_MAX. */
    uint64_t elements = 1;
    bool empty = false;
    for (uint32_t i = 0; i < GGUF_MAX_DIMS; i++)
        empty = empty || ne[i] == 0;
    if (!empty) {
        for (uint32_t i = 0; i < GGUF_MAX_DIMS; i++) {
            if (!mg_mul_u64(elements, ne[i], &elements) || elements > (uint64_t)INT64_MAX)
                return mg_fail(p->err, MG_E_FORMAT,
                               "gguf: tensor '%s' element count overflows int64", shown(nbuf, q));
        }
    } else {
        elements = 0;
    }
    if (ne[0] % ti->blck != 0)
        return mg_fail(p->err, MG_E_FORMAT,
                       "gguf: tensor '%s': first dimension %" PRIu64
                       " is not a multiple of the %s block size %" PRIu32,
                       shown(nbuf, q), ne[0], ti->name, ti->blck);
    uint64_t nbytes = 0;
    if (!empty) {
        bool ok = mg_mul_u64(ne[0] / ti->blck, ti->bytes, &nbytes);
        for (uint32_t i = 1; ok && i < GGUF_MAX_DIMS; i++)
            ok = mg_mul_u64(nbytes, ne[i], &nbytes);
        if (!ok || nbytes > (uint64_t)INT64_MAX)
            return mg_fail(p->err, MG_E_FORMAT, "gguf: tensor '%s' byte size overflows",
                           shown(nbuf, q));
    }

    mg_tensor_entry e;
    memset(&e, 0, sizeof e);
    e.dtype = ti->plain;
    e.ggml_type = type;
    e.ndim = n_dims;
    for (uint32_t i = 0; i < n_dims; i++)
        e.shape[i] = ne[n_dims - 1 - i];
    e.nbytes = nbytes;
    e.offset = rel_offset; /* relative for now; made absolute once the data start is known */
    return mg_parse_add_tensor(out, &e, nbuf, (size_t)name_len, p->err);
}

static int compare_names(const void *a, const void *b)
{
    const char *const *x = a;
    const char *const *y = b;
    return strcmp(*x, *y);
}

static mg_status check_unique_names(gguf_parser *p, const mg_parse_result *out)
{
    char q[SHOWN_MAX];
    if (out->count < 2)
        return MG_OK;
    const char **names = mg_calloc(out->count, sizeof *names);
    if (names == NULL)
        return mg_fail(p->err, MG_E_LIMIT, "gguf: out of memory for the tensor names");
    for (size_t i = 0; i < out->count; i++)
        names[i] = out->tensors[i].name;
    if (out->count > 1)
        qsort(names, out->count, sizeof *names, compare_names);
    mg_status st = MG_OK;
    for (size_t i = 1; i < out->count; i++) {
        if (strcmp(names[i - 1], names[i]) == 0) {
            st = mg_fail(p->err, MG_E_FORMAT, "gguf: duplicate tensor name '%s'", shown(names[i], q));
            break;
        }
    }
    free(names);
    return st;
}

static bool all_zero(const uint8_t *b, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        if (b[i] != 0)
            return false;
    }
    return true;
}

/* x rounded up to the alignment; false on overflow. */
static bool pad_up(uint64_t x, uint32_t alignment, uint64_t *out)
{
    uint64_t rem = x % alignment;
    return mg_add_u64(x, rem == 0 ? 0 : alignment - rem, out);
}

/* The bytes after the last data (or after the KV section when there are no tensors): nothing,
 * or exactly the zero padding up to `padded_end`. */
static mg_status check_tail(gguf_parser *p, const uint8_t *data, size_t len, uint64_t end,
                            uint64_t padded_end)
{
    uint64_t tail = len - end;
    if (tail == 0)
        return MG_OK;
    if (tail != padded_end - end)
        return mg_fail(p->err, MG_E_FORMAT,
                       "gguf: %" PRIu64 " bytes after the end of the data, expected 0 or the %" PRIu64
                       " bytes of padding",
                       tail, padded_end - end);
    if (!all_zero(data + end, tail))
        return mg_fail(p->err, MG_E_FORMAT, "gguf: non-zero padding at the end of the file");
    return MG_OK;
}

static mg_status place_tensors(gguf_parser *p, const uint8_t *data, size_t len,
                               mg_parse_result *out)
{
    char q[SHOWN_MAX];
    uint64_t info_end = p->r.pos;
    uint64_t data_start;
    if (!pad_up(info_end, p->alignment, &data_start))
        return mg_fail(p->err, MG_E_FORMAT, "gguf: data section offset overflows");
    if (out->count == 0)
        return check_tail(p, data, len, info_end, data_start);
    if (data_start > len)
        return mg_fail(p->err, MG_E_FORMAT,
                       "gguf: the data section starts at byte %" PRIu64 ", past the end of the file",
                       data_start);
    if (!all_zero(data + info_end, data_start - info_end))
        return mg_fail(p->err, MG_E_FORMAT, "gguf: non-zero padding before the data section");

    uint64_t running = 0; /* padded size of the tensors before this one */
    for (size_t i = 0; i < out->count; i++) {
        mg_tensor_entry *e = &out->tensors[i];
        if (e->offset != running)
            return mg_fail(p->err, MG_E_FORMAT,
                           "gguf: tensor '%s' has offset %" PRIu64 ", expected %" PRIu64
                           " (tensors must be contiguous, in order, aligned to %" PRIu32 ")",
                           shown(e->name, q), e->offset, running, p->alignment);
        uint64_t start, end, padded_end, padded;
        if (!mg_add_u64(data_start, running, &start) || !mg_range_ok(start, e->nbytes, len))
            return mg_fail(p->err, MG_E_FORMAT,
                           "gguf: tensor '%s' data (%" PRIu64 " bytes at offset %" PRIu64
                           ") is not within the file",
                           shown(e->name, q), e->nbytes, e->offset);
        end = start + e->nbytes;
        if (!pad_up(e->nbytes, p->alignment, &padded) || !mg_add_u64(running, padded, &running) ||
            !mg_add_u64(start, padded, &padded_end))
            return mg_fail(p->err, MG_E_FORMAT, "gguf: padded data size overflows");
        if (i + 1 < out->count) {
            if (padded_end > len)
                return mg_fail(p->err, MG_E_FORMAT,
                               "gguf: padding after tensor '%s' runs past the end of the file",
                               shown(e->name, q));
            if (!all_zero(data + end, padded_end - end))
                return mg_fail(p->err, MG_E_FORMAT, "gguf: non-zero padding after tensor '%s'",
                               shown(e->name, q));
        } else {
            mg_status st = check_tail(p, data, len, end, padded_end);
            if (st != MG_OK)
                return st;
        }
        e->offset = start;
        e->data_offset = start;
        e->blob = 0;
        mg_status st = mg_tensor_entry_check(e, len, p->err);
        if (st != MG_OK)
            return st;
    }
    return MG_OK;
}

/* ---- entry points ------------------------------------------------------------------- */

/* The magic, then a version below 65536 (its two high bytes zero), so that a text file
 * that starts with the word "GGUF" stays an asset; a file too short to hold the version is
 * claimed, to be refused as truncated. */
static bool probe(const uint8_t *data, size_t len)
{
    return len >= 4 && memcmp(data, "GGUF", 4) == 0 &&
           (len < 8 || (data[6] == 0 && data[7] == 0));
}

static mg_status read_header(gguf_parser *p, uint64_t *n_tensors, uint64_t *n_kv)
{
    const uint8_t *magic;
    if (!mg_reader_bytes(&p->r, 4, &magic) || memcmp(magic, "GGUF", 4) != 0)
        return mg_fail(p->err, MG_E_FORMAT, "gguf: not a GGUF file (bad magic)");
    if (!mg_reader_u32(&p->r, &p->version))
        return mg_fail(p->err, MG_E_FORMAT, "gguf: header truncated (%zu bytes)", p->r.size);
    if (p->version == 1)
        return mg_fail(p->err, MG_E_FORMAT, "gguf: GGUF v1 is not supported");
    if (p->version != 0 && (p->version & 0xFFFFu) == 0)
        return mg_fail(p->err, MG_E_FORMAT,
                       "gguf: byte-swapped version 0x%08" PRIx32
                       " (a big-endian GGUF file is not supported)",
                       p->version);
    if (p->version != 2 && p->version != 3)
        return mg_fail(p->err, MG_E_FORMAT, "gguf: GGUF version %" PRIu32 " is not supported",
                       p->version);
    int64_t nt, nkv;
    if (!mg_reader_i64(&p->r, &nt) || !mg_reader_i64(&p->r, &nkv))
        return mg_fail(p->err, MG_E_FORMAT, "gguf: header truncated (%zu bytes)", p->r.size);
    if (nt < 0 || nkv < 0)
        return mg_fail(p->err, MG_E_FORMAT, "gguf: negative tensor or key count");
    uint64_t kv_min, t_min, min_total;
    if (!mg_mul_u64((uint64_t)nkv, GGUF_KV_MIN_BYTES, &kv_min) ||
        !mg_mul_u64((uint64_t)nt, GGUF_TENSOR_MIN_BYTES, &t_min) ||
        !mg_add_u64(kv_min, t_min, &min_total) || min_total > mg_reader_remaining(&p->r))
        return mg_fail(p->err, MG_E_FORMAT,
                       "gguf: %" PRId64 " tensors and %" PRId64 " keys cannot fit in the file", nt,
                       nkv);
    if ((uint64_t)nkv > GGUF_MAX_KV)
        return mg_fail(p->err, MG_E_LIMIT, "gguf: %" PRId64 " keys exceed the cap of %u", nkv,
                       GGUF_MAX_KV);
    if ((uint64_t)nt > MG_MAX_TENSORS)
        return mg_fail(p->err, MG_E_LIMIT, "gguf: %" PRId64 " tensors exceed the cap of %u", nt,
                       MG_MAX_TENSORS);
    *n_tensors = (uint64_t)nt;
    *n_kv = (uint64_t)nkv;
    return MG_OK;
}

static mg_status parse(const uint8_t *data, size_t len, mg_parse_result *out, mg_error *err)
{
    gguf_parser p;
    memset(&p, 0, sizeof p);
    mg_reader_init(&p.r, data, len);
    p.alignment = GGUF_DEFAULT_ALIGNMENT;
    p.err = err;
    uint64_t n_tensors = 0, n_kv = 0;
    mg_status st = read_header(&p, &n_tensors, &n_kv);
    if (st != MG_OK)
        return st;
    p.meta = json_object();
    if (p.meta == NULL)
        return out_of_memory(&p);
    for (uint64_t i = 0; i < n_kv && st == MG_OK; i++)
        st = read_kv(&p);
    if (st != MG_OK) {
        json_decref(p.meta);
        return st;
    }
    json_decref(out->metadata);
    out->metadata = p.meta;
    for (uint64_t i = 0; i < n_tensors; i++) {
        st = read_tensor_info(&p, out);
        if (st != MG_OK)
            return st;
    }
    st = check_unique_names(&p, out);
    if (st != MG_OK)
        return st;
    return place_tensors(&p, data, len, out);
}

const mg_format mg_format_gguf = {"gguf", probe, parse};
