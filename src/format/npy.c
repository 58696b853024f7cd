/*
 * NumPy .npy v1.0, v2.0 and v3.0 (reference/formats.md §2.1).
 *
 *   "\x93NUMPY" major minor  u16 (v1) | u32 (v2, v3) HEADER_LEN  header  data
 *
 * The header is a Python literal dict. We parse it as one (a small literal parser: strings,
 * True/False, non-negative integers, tuples and lists, with a nesting cap), never by position,
 * and require exactly the keys 'descr', 'fortran_order' and 'shape', in any order, each once.
 *
 * Decisions, where numpy or real files leave room:
 *  - Header cap 64 KiB (MG_NPY_MAX_HEADER_BYTES) -> MG_E_LIMIT. numpy caps at 10000 chars.
 *  - The header must end with '\n' (every writer puts one there) and hold no NUL byte
 *    (CVE-2025-62608); v3 headers must be valid UTF-8. Alignment is not required: 64-aligned,
 *    16-aligned (numpy < 1.14) and MLX's unaligned headers are all read.
 *  - String literals: '...' or "..." without escapes or control characters (no writer uses
 *    them; a backslash is refused rather than interpreted).
 *  - The Python-2 long suffix ('shape': (2L,)) is accepted in v1 and v2 headers, as numpy's
 *    _filter_header does for those versions only; v3 never had it and refuses it.
 *  - 'shape': (16, ) and trailing commas are plain Python and accepted; (16) is an int, not a
 *    tuple, and is refused as numpy does. Negative, float or oversized (> INT64_MAX) dims are
 *    refused. More than MG_MAX_NDIM (8) dims -> MG_E_LIMIT: it is our cap, not malformed.
 *  - descr: every SPEC §4 typestr: b1 i1 i2 i4 i8 u1 u2 u4 u8 f2 f4 f8 c8, and V2 read as
 *    bfloat16 (the MLX convention). A byte-order character (< > | =) is required; '>' on a
 *    multi-byte type sets MG_TENSOR_BIG_ENDIAN; '<', '|' and '=' are read as little-endian
 *    (numpy always writes '<' or '>' for multi-byte types, and '|' or '=' mean "native" to it,
 *    which is little-endian on every platform modelgate runs on).
 *  - Object dtypes ('|O', '|O8', or an 'O' anywhere in a structured/subarray descr) are
 *    refused with a message saying the data is a pickle, which is never loaded. Other
 *    dtypes ('<U3', 'S5', 'M8[s]', 'f16', 'c16', structured, subarray) -> MG_E_FORMAT
 *    "unsupported dtype".
 *  - fortran_order True sets MG_TENSOR_FORTRAN only when it changes the byte layout, i.e.
 *    when more than one dimension is larger than 1 (MLX marks 1-D and (1,1,1,N) arrays
 *    Fortran; those bytes are identical in C order). Shapes are stored as written.
 *  - Data length: exactly elements * itemsize bytes must follow the header. Shorter is
 *    truncated (MG_E_FORMAT); longer is refused too (numpy ignores trailing bytes, but a
 *    verified weight file has no reason to carry unparsed bytes after its array).
 */
#include "format/npy.h"
#include "util/utf8.h"

#include <string.h>

#include "format/format.h"
#include "util/checked.h"
#include "util/reader.h"

static const uint8_t npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

/* ---- a small Python-literal parser ---------------------------------------------------- */

typedef enum lit_kind { LIT_STR, LIT_BOOL, LIT_INT, LIT_TUPLE, LIT_LIST } lit_kind;

typedef struct lit_value {
    lit_kind kind;
    const uint8_t *str; /* LIT_STR: points into the header; not NUL-terminated */
    size_t str_len;
    bool boolean;
    uint64_t integer;
    /* LIT_TUPLE / LIT_LIST */
    uint32_t count;
    bool all_ints;               /* every element is a LIT_INT */
    uint64_t ints[MG_MAX_NDIM]; /* the first MG_MAX_NDIM integer elements */
    bool has_object;             /* some nested string is an object typestr ('|O'...) */
} lit_value;

typedef struct lit_parser {
    const uint8_t *p;
    size_t n;
    size_t pos;
    bool allow_long_suffix;
    mg_error *err;
} lit_parser;

static mg_status lit_fail(lit_parser *lp, const char *what)
{
    return mg_fail(lp->err, MG_E_FORMAT, "npy: malformed header: %s at byte %zu", what, lp->pos);
}

static void lit_skip_ws(lit_parser *lp)
{
    while (lp->pos < lp->n) {
        uint8_t c = lp->p[lp->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        lp->pos++;
    }
}

static bool lit_peek(const lit_parser *lp, uint8_t *c)
{
    if (lp->pos >= lp->n)
        return false;
    *c = lp->p[lp->pos];
    return true;
}

static bool is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

static bool is_ident_start(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_ident_char(uint8_t c)
{
    return is_ident_start(c) || is_digit(c);
}

static bool is_object_typestr(const uint8_t *s, size_t n)
{
    if (n > 0 && (s[0] == '<' || s[0] == '>' || s[0] == '|' || s[0] == '='))
        s++, n--;
    return n > 0 && s[0] == 'O';
}

static mg_status lit_string(lit_parser *lp, lit_value *v)
{
    uint8_t quote = lp->p[lp->pos++];
    size_t start = lp->pos;
    while (lp->pos < lp->n) {
        uint8_t c = lp->p[lp->pos];
        if (c == quote) {
            v->kind = LIT_STR;
            v->str = lp->p + start;
            v->str_len = lp->pos - start;
            lp->pos++;
            return MG_OK;
        }
        if (c == '\\')
            return lit_fail(lp, "escape sequences in strings are not supported");
        if (c < 0x20 || c == 0x7f)
            return lit_fail(lp, "control character in a string");
        lp->pos++;
    }
    return lit_fail(lp, "unterminated string");
}

static mg_status lit_integer(lit_parser *lp, lit_value *v)
{
    size_t start = lp->pos;
    uint64_t value = 0;
    while (lp->pos < lp->n && is_digit(lp->p[lp->pos])) {
        uint64_t digit = (uint64_t)(lp->p[lp->pos] - '0');
        if (!mg_mul_u64(value, 10, &value) || !mg_add_u64(value, digit, &value))
            return lit_fail(lp, "integer too large");
        lp->pos++;
    }
    if (lp->pos - start > 1 && lp->p[start] == '0')
        return lit_fail(lp, "integer with a leading zero");
    uint8_t c;
    if (lit_peek(lp, &c) && (c == 'L' || c == 'l')) {
        if (!lp->allow_long_suffix)
            return lit_fail(lp, "Python-2 long suffix in a v3 header");
        lp->pos++;
    }
    if (lit_peek(lp, &c) && (is_ident_char(c) || c == '.'))
        return lit_fail(lp, "not an integer");
    v->kind = LIT_INT;
    v->integer = value;
    return MG_OK;
}

static mg_status lit_value_parse(lit_parser *lp, lit_value *v, unsigned depth);

/* A tuple or list; `close` is ')' or ']'. A one-element tuple needs its comma, as in Python. */
static mg_status lit_sequence(lit_parser *lp, lit_value *v, uint8_t close, unsigned depth)
{
    bool is_tuple = close == ')';
    if (depth >= MG_NPY_MAX_NESTING)
        return mg_fail(lp->err, MG_E_LIMIT, "npy: header nests deeper than %u levels",
                       MG_NPY_MAX_NESTING);
    lp->pos++; /* the opening bracket */
    memset(v, 0, sizeof *v);
    v->kind = is_tuple ? LIT_TUPLE : LIT_LIST;
    v->all_ints = true;
    bool saw_comma = false;
    for (;;) {
        uint8_t c;
        lit_skip_ws(lp);
        if (!lit_peek(lp, &c))
            return lit_fail(lp, "unterminated tuple or list");
        if (c == close)
            break;
        lit_value item;
        mg_status st = lit_value_parse(lp, &item, depth + 1);
        if (st != MG_OK)
            return st;
        if (item.kind == LIT_INT) {
            if (v->count < MG_MAX_NDIM)
                v->ints[v->count] = item.integer;
        } else {
            v->all_ints = false;
        }
        if ((item.kind == LIT_STR && is_object_typestr(item.str, item.str_len)) ||
            ((item.kind == LIT_TUPLE || item.kind == LIT_LIST) && item.has_object))
            v->has_object = true;
        if (v->count == UINT32_MAX)
            return lit_fail(lp, "too many elements");
        v->count++;
        lit_skip_ws(lp);
        if (!lit_peek(lp, &c))
            return lit_fail(lp, "unterminated tuple or list");
        if (c == ',') {
            lp->pos++;
            saw_comma = true;
            continue;
        }
        if (c != close)
            return lit_fail(lp, "expected ',' or a closing bracket");
        saw_comma = false;
        break;
    }
    lp->pos++; /* the closing bracket */
    if (is_tuple && v->count == 1 && !saw_comma) {
        /* "(16)" is the integer 16 in Python, not a tuple. */
        lit_value inner = *v;
        memset(v, 0, sizeof *v);
        if (!inner.all_ints)
            return lit_fail(lp, "parenthesised expression is not a literal tuple");
        v->kind = LIT_INT;
        v->integer = inner.ints[0];
    }
    return MG_OK;
}

static mg_status lit_value_parse(lit_parser *lp, lit_value *v, unsigned depth)
{
    uint8_t c;
    lit_skip_ws(lp);
    memset(v, 0, sizeof *v);
    if (!lit_peek(lp, &c))
        return lit_fail(lp, "value expected");
    if (c == '\'' || c == '"')
        return lit_string(lp, v);
    if (is_digit(c))
        return lit_integer(lp, v);
    if (c == '(')
        return lit_sequence(lp, v, ')', depth);
    if (c == '[')
        return lit_sequence(lp, v, ']', depth);
    if (c == '-')
        return lit_fail(lp, "negative number");
    if (is_ident_start(c)) {
        size_t start = lp->pos;
        while (lp->pos < lp->n && is_ident_char(lp->p[lp->pos]))
            lp->pos++;
        size_t len = lp->pos - start;
        if (len == 4 && memcmp(lp->p + start, "True", 4) == 0) {
            v->kind = LIT_BOOL;
            v->boolean = true;
            return MG_OK;
        }
        if (len == 5 && memcmp(lp->p + start, "False", 5) == 0) {
            v->kind = LIT_BOOL;
            v->boolean = false;
            return MG_OK;
        }
        lp->pos = start;
        return lit_fail(lp, "unexpected name (only True and False are literals here)");
    }
    return lit_fail(lp, "unexpected character");
}

/* ---- header semantics ----------------------------------------------------------------- */

typedef struct npy_header {
    lit_value descr, fortran_order, shape;
    bool has_descr, has_fortran_order, has_shape;
} npy_header;

static mg_status parse_header_dict(lit_parser *lp, npy_header *h)
{
    uint8_t c;
    memset(h, 0, sizeof *h);
    lit_skip_ws(lp);
    if (!lit_peek(lp, &c) || c != '{')
        return lit_fail(lp, "the header is not a dict");
    lp->pos++;
    for (;;) {
        lit_skip_ws(lp);
        if (!lit_peek(lp, &c))
            return lit_fail(lp, "unterminated dict");
        if (c == '}')
            break;
        lit_value key;
        mg_status st = lit_value_parse(lp, &key, 1);
        if (st != MG_OK)
            return st;
        if (key.kind != LIT_STR)
            return lit_fail(lp, "dict key is not a string");
        lit_value *slot;
        bool *seen;
        if (key.str_len == 5 && memcmp(key.str, "descr", 5) == 0) {
            slot = &h->descr;
            seen = &h->has_descr;
        } else if (key.str_len == 13 && memcmp(key.str, "fortran_order", 13) == 0) {
            slot = &h->fortran_order;
            seen = &h->has_fortran_order;
        } else if (key.str_len == 5 && memcmp(key.str, "shape", 5) == 0) {
            slot = &h->shape;
            seen = &h->has_shape;
        } else {
            return lit_fail(lp, "unexpected key (only 'descr', 'fortran_order' and 'shape')");
        }
        if (*seen)
            return lit_fail(lp, "duplicate key");
        lit_skip_ws(lp);
        if (!lit_peek(lp, &c) || c != ':')
            return lit_fail(lp, "expected ':'");
        lp->pos++;
        st = lit_value_parse(lp, slot, 1);
        if (st != MG_OK)
            return st;
        *seen = true;
        lit_skip_ws(lp);
        if (!lit_peek(lp, &c))
            return lit_fail(lp, "unterminated dict");
        if (c == ',') {
            lp->pos++;
            continue;
        }
        if (c != '}')
            return lit_fail(lp, "expected ',' or '}'");
        break;
    }
    lp->pos++;
    lit_skip_ws(lp);
    if (lp->pos != lp->n)
        return lit_fail(lp, "bytes after the dict");
    if (!h->has_descr || !h->has_fortran_order || !h->has_shape)
        return mg_fail(lp->err, MG_E_FORMAT,
                       "npy: header misses key '%s'",
                       !h->has_descr ? "descr" : !h->has_fortran_order ? "fortran_order" : "shape");
    return MG_OK;
}

static bool printable_ascii(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x20 || s[i] > 0x7e)
            return false;
    }
    return true;
}

static const struct {
    const char *code;
    mg_dtype dtype;
} typestr_table[] = {
    {"b1", MG_DTYPE_BOOL}, {"i1", MG_DTYPE_I8},  {"i2", MG_DTYPE_I16}, {"i4", MG_DTYPE_I32},
    {"i8", MG_DTYPE_I64},  {"u1", MG_DTYPE_U8},  {"u2", MG_DTYPE_U16}, {"u4", MG_DTYPE_U32},
    {"u8", MG_DTYPE_U64},  {"f2", MG_DTYPE_F16}, {"f4", MG_DTYPE_F32}, {"f8", MG_DTYPE_F64},
    {"c8", MG_DTYPE_C64},  {"V2", MG_DTYPE_BF16}, /* MLX writes bfloat16 as '<V2' */
};

static mg_status unsupported_descr(mg_error *err, const uint8_t *s, size_t n)
{
    if (n <= 32 && printable_ascii(s, n))
        return mg_fail(err, MG_E_FORMAT, "npy: unsupported dtype '%.*s'", (int)n, (const char *)s);
    return mg_fail(err, MG_E_FORMAT, "npy: unsupported dtype");
}

static mg_status pickle_refused(mg_error *err)
{
    return mg_fail(err, MG_E_FORMAT,
                   "npy: object dtype: the array data is a Python pickle, which is never loaded "
                   "(unsafe)");
}

static mg_status parse_descr(const lit_value *v, mg_npy_array *out, mg_error *err)
{
    if (v->kind == LIT_LIST || v->kind == LIT_TUPLE) {
        if (v->has_object)
            return pickle_refused(err);
        return mg_fail(err, MG_E_FORMAT, "npy: unsupported dtype (%s dtypes are not supported)",
                       v->kind == LIT_LIST ? "structured" : "subarray");
    }
    if (v->kind != LIT_STR)
        return mg_fail(err, MG_E_FORMAT, "npy: 'descr' is not a dtype string");
    const uint8_t *s = v->str;
    size_t n = v->str_len;
    if (n == 0)
        return mg_fail(err, MG_E_FORMAT, "npy: empty 'descr'");
    if (is_object_typestr(s, n))
        return pickle_refused(err);
    uint8_t order = s[0];
    if (order != '<' && order != '>' && order != '|' && order != '=')
        return unsupported_descr(err, s, n);
    for (size_t i = 0; i < sizeof typestr_table / sizeof typestr_table[0]; i++) {
        if (n == 3 && memcmp(s + 1, typestr_table[i].code, 2) == 0) {
            out->dtype = typestr_table[i].dtype;
            if (order == '>' && mg_dtype_size(out->dtype) > 1)
                out->flags |= MG_TENSOR_BIG_ENDIAN;
            return MG_OK;
        }
    }
    return unsupported_descr(err, s, n);
}

static mg_status parse_shape(const lit_value *v, mg_npy_array *out, mg_error *err)
{
    if (v->kind != LIT_TUPLE || !v->all_ints)
        return mg_fail(err, MG_E_FORMAT, "npy: 'shape' is not a tuple of integers");
    if (v->count > MG_MAX_NDIM)
        return mg_fail(err, MG_E_LIMIT, "npy: %u dimensions exceed the cap of %d", v->count,
                       MG_MAX_NDIM);
    out->ndim = v->count;
    for (uint32_t i = 0; i < v->count; i++) {
        if (v->ints[i] > (uint64_t)INT64_MAX)
            return mg_fail(err, MG_E_FORMAT, "npy: dimension %u is too large", i);
        out->shape[i] = v->ints[i];
    }
    return MG_OK;
}

mg_status mg_npy_parse_array(const uint8_t *data, size_t len, mg_npy_array *out, mg_error *err)
{
    mg_reader r;
    const uint8_t *magic, *header;
    uint8_t major, minor;
    uint64_t header_len;

    memset(out, 0, sizeof *out);
    mg_reader_init(&r, data, len);
    if (!mg_reader_bytes(&r, sizeof npy_magic, &magic) ||
        memcmp(magic, npy_magic, sizeof npy_magic) != 0)
        return mg_fail(err, MG_E_FORMAT, "npy: bad magic (not a .npy file)");
    if (!mg_reader_u8(&r, &major) || !mg_reader_u8(&r, &minor))
        return mg_fail(err, MG_E_FORMAT, "npy: file ends inside the preamble");
    if (major < 1 || major > 3 || minor != 0)
        return mg_fail(err, MG_E_FORMAT, "npy: unsupported format version %u.%u (1.0, 2.0, 3.0)",
                       major, minor);
    if (major == 1) {
        uint16_t v;
        if (!mg_reader_u16(&r, &v))
            return mg_fail(err, MG_E_FORMAT, "npy: file ends inside the preamble");
        header_len = v;
    } else {
        uint32_t v;
        if (!mg_reader_u32(&r, &v))
            return mg_fail(err, MG_E_FORMAT, "npy: file ends inside the preamble");
        header_len = v;
    }
    if (header_len > mg_reader_remaining(&r))
        return mg_fail(err, MG_E_FORMAT,
                       "npy: header of %llu bytes runs past the end of the file (%zu left)",
                       (unsigned long long)header_len, mg_reader_remaining(&r));
    if (header_len > MG_NPY_MAX_HEADER_BYTES)
        return mg_fail(err, MG_E_LIMIT, "npy: header of %llu bytes exceeds the cap of %u",
                       (unsigned long long)header_len, MG_NPY_MAX_HEADER_BYTES);
    if (!mg_reader_bytes(&r, header_len, &header))
        return mg_fail(err, MG_E_FORMAT, "npy: truncated header");
    size_t hlen = (size_t)header_len;
    if (memchr(header, '\0', hlen) != NULL)
        return mg_fail(err, MG_E_FORMAT, "npy: header contains a NUL byte");
    if (major == 3 && !mg_utf8_valid(header, hlen))
        return mg_fail(err, MG_E_FORMAT, "npy: v3 header is not valid UTF-8");
    if (hlen == 0 || header[hlen - 1] != '\n')
        return mg_fail(err, MG_E_FORMAT, "npy: header does not end with a newline");

    lit_parser lp = {header, hlen, 0, major != 3, err};
    npy_header h;
    mg_status st = parse_header_dict(&lp, &h);
    if (st != MG_OK)
        return st;
    if ((st = parse_descr(&h.descr, out, err)) != MG_OK)
        return st;
    if (h.fortran_order.kind != LIT_BOOL)
        return mg_fail(err, MG_E_FORMAT, "npy: 'fortran_order' is not True or False");
    if ((st = parse_shape(&h.shape, out, err)) != MG_OK)
        return st;

    uint64_t elements, nbytes;
    if (!mg_shape_elements(out->shape, out->ndim, &elements) ||
        !mg_mul_u64(elements, mg_dtype_size(out->dtype), &nbytes))
        return mg_fail(err, MG_E_FORMAT, "npy: array size overflows");
    unsigned long long have = mg_reader_remaining(&r);
    if (nbytes > have)
        return mg_fail(err, MG_E_FORMAT, "npy: array data truncated (%llu bytes needed, %llu present)",
                       (unsigned long long)nbytes, have);
    if (nbytes < have)
        return mg_fail(err, MG_E_FORMAT, "npy: %llu trailing bytes after the array data",
                       have - (unsigned long long)nbytes);

    if (h.fortran_order.boolean) {
        uint32_t non_unit = 0;
        for (uint32_t i = 0; i < out->ndim; i++)
            non_unit += out->shape[i] > 1;
        if (non_unit > 1 && elements > 0)
            out->flags |= MG_TENSOR_FORTRAN;
    }
    out->data_offset = r.pos;
    out->nbytes = nbytes;
    return MG_OK;
}

/* ---- the format ---------------------------------------------------------------------- */

static bool probe(const uint8_t *data, size_t len)
{
    return len >= sizeof npy_magic && memcmp(data, npy_magic, sizeof npy_magic) == 0;
}

static mg_status parse(const uint8_t *data, size_t len, mg_parse_result *out, mg_error *err)
{
    mg_npy_array a;
    mg_status st = mg_npy_parse_array(data, len, &a, err);
    if (st != MG_OK)
        return st;
    mg_tensor_entry t;
    memset(&t, 0, sizeof t);
    t.dtype = a.dtype;
    t.ndim = a.ndim;
    t.flags = a.flags;
    memcpy(t.shape, a.shape, sizeof t.shape);
    t.nbytes = a.nbytes;
    t.offset = a.data_offset;
    t.blob = 0;
    t.data_offset = a.data_offset;
    /* A lone .npy holds one unnamed array: its tensor is named "" (SPEC §4). */
    return mg_parse_add_tensor(out, &t, "", 0, err);
}

const mg_format mg_format_npy = {"npy", probe, parse};
