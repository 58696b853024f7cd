/* GGUF parser: the real corpus with its README verdicts, every generated bad input of
 * tests/data/bad/gguf/expected.tsv, exact tensor tables, the ggml type table and metadata. */
#define _GNU_SOURCE
#include "testutil.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "format/format.h"
#include "format/gguf.h"

typedef struct {
    mg_status status;
    mg_parse_result res;
    mg_error err;
} parsed;

static void parse_buf(const uint8_t *data, size_t len, parsed *p)
{
    memset(p, 0, sizeof *p);
    p->status = mg_format_gguf.parse(data, len, &p->res, &p->err);
}

/* Parse a file read into a buffer of exactly its size (so ASan sees any over-read). */
static void parse_file(const char *path, parsed *p)
{
    size_t len;
    uint8_t *data = tu_read_file(path, &len);
    parse_buf(data, len, p);
    free(data);
}

static void done(parsed *p)
{
    mg_parse_result_free(&p->res);
}

static const char *bad_path(const char *name)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s", tu_source("tests/data/bad/gguf/"));
    size_t n = strlen(buf);
    snprintf(buf + n, sizeof buf - n, "%s", name);
    return buf;
}

static const mg_tensor_entry *find(const parsed *p, const char *name)
{
    for (size_t i = 0; i < p->res.count; i++) {
        if (strcmp(p->res.tensors[i].name, name) == 0)
            return &p->res.tensors[i];
    }
    fail_msg("tensor %s not found", name);
    return NULL;
}

/* ---- the real corpus ---------------------------------------------------------------- */

static void test_real_llama_tiny(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        uint32_t type;
        uint32_t ndim;
        uint64_t shape[2];
        uint64_t rel;
        uint64_t nbytes;
    } want[12] = {
        {"token_embd.weight", 1, 2, {32000, 8}, 0, 512000},
        {"blk.0.attn_q.weight", 1, 2, {8, 8}, 512000, 128},
        {"blk.0.attn_k.weight", 1, 2, {8, 8}, 512128, 128},
        {"blk.0.attn_v.weight", 1, 2, {8, 8}, 512256, 128},
        {"blk.0.attn_output.weight", 1, 2, {8, 8}, 512384, 128},
        {"blk.0.ffn_gate.weight", 1, 2, {32, 8}, 512512, 512},
        {"blk.0.ffn_up.weight", 1, 2, {32, 8}, 513024, 512},
        {"blk.0.ffn_down.weight", 1, 2, {8, 32}, 513536, 512},
        {"blk.0.attn_norm.weight", 0, 1, {8, 0}, 514048, 32},
        {"blk.0.ffn_norm.weight", 0, 1, {8, 0}, 514080, 32},
        {"output_norm.weight", 0, 1, {8, 0}, 514112, 32},
        {"output.weight", 1, 2, {32000, 8}, 514144, 512000},
    };
    parsed p;
    parse_file(tu_source("tests/data/real/gguf/llama-2-tiny-random.gguf"), &p);
    assert_int_equal(p.status, MG_OK);
    assert_int_equal(p.res.count, 12);
    for (size_t i = 0; i < 12; i++) {
        const mg_tensor_entry *e = &p.res.tensors[i];
        assert_string_equal(e->name, want[i].name);
        assert_int_equal(e->ggml_type, want[i].type);
        assert_int_equal(e->dtype, want[i].type == 1 ? MG_DTYPE_F16 : MG_DTYPE_F32);
        assert_int_equal(e->ndim, want[i].ndim);
        for (uint32_t d = 0; d < e->ndim; d++)
            assert_int_equal(e->shape[d], want[i].shape[d]);
        /* The data section starts at 724,416 (the infos end at 724,398, padded to 32). */
        assert_int_equal(e->offset, 724416 + want[i].rel);
        assert_int_equal(e->data_offset, e->offset);
        assert_int_equal(e->blob, 0);
        assert_int_equal(e->nbytes, want[i].nbytes);
        assert_int_equal(mg_tensor_entry_check(e, 1750560, NULL), MG_OK);
    }
    /* The last tensor ends exactly at the end of the file. */
    assert_int_equal(p.res.tensors[11].offset + p.res.tensors[11].nbytes, 1750560);

    json_t *m = p.res.metadata;
    assert_non_null(m);
    assert_int_equal(json_object_size(m), 18);
    assert_string_equal(json_string_value(json_object_get(m, "general.architecture")), "llama");
    assert_int_equal(json_integer_value(json_object_get(m, "llama.context_length")), 4096);
    assert_true(json_real_value(json_object_get(m, "llama.attention.layer_norm_rms_epsilon")) ==
                (double)9.99999974737875163555e-06f);
    json_t *tokens = json_object_get(m, "tokenizer.ggml.tokens");
    assert_true(json_is_object(tokens));
    assert_string_equal(json_string_value(json_object_get(tokens, "type")), "array");
    assert_string_equal(json_string_value(json_object_get(tokens, "element_type")), "string");
    assert_int_equal(json_integer_value(json_object_get(tokens, "count")), 32000);
    json_t *scores = json_object_get(m, "tokenizer.ggml.scores");
    assert_string_equal(json_string_value(json_object_get(scores, "element_type")), "float32");
    json_t *types = json_object_get(m, "tokenizer.ggml.token_type");
    assert_string_equal(json_string_value(json_object_get(types, "element_type")), "int32");
    done(&p);
}

static void test_real_vocab_files(void **state)
{
    (void)state;
    parsed p;
    parse_file(tu_source("tests/data/real/gguf/ggml-vocab-bert-bge.gguf"), &p);
    assert_int_equal(p.status, MG_OK);
    assert_int_equal(p.res.count, 0);
    assert_int_equal(json_object_size(p.res.metadata), 20);
    assert_true(json_is_false(json_object_get(p.res.metadata, "bert.attention.causal")));
    assert_string_equal(json_string_value(json_object_get(p.res.metadata, "tokenizer.ggml.pre")),
                        "bert-bge");
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(p.res.metadata, "tokenizer.ggml.tokens"), "count")),
                     30522);
    done(&p);

    parse_file(tu_source("tests/data/real/gguf/ggml-vocab-falcon.gguf-v2.gguf"), &p);
    assert_int_equal(p.status, MG_OK);
    assert_int_equal(p.res.count, 0);
    assert_int_equal(json_object_size(p.res.metadata), 17);
    json_t *merges = json_object_get(p.res.metadata, "tokenizer.ggml.merges");
    assert_int_equal(json_integer_value(json_object_get(merges, "count")), 64784);
    assert_int_equal(json_integer_value(json_object_get(p.res.metadata, "falcon.attention.head_count")),
                     71);
    done(&p);
}

static void test_real_rejected(void **state)
{
    (void)state;
    parsed p;
    parse_file(tu_source("tests/data/real/gguf/ggml-vocab-llama.gguf-v1.gguf"), &p);
    assert_int_equal(p.status, MG_E_FORMAT);
    assert_non_null(strstr(p.err.message, "GGUF v1 is not supported"));
    done(&p);

    parse_file(tu_source("tests/data/real/gguf/bad-truncated-6-bytes.gguf"), &p);
    assert_int_equal(p.status, MG_E_FORMAT);
    assert_non_null(strstr(p.err.message, "truncated"));
    done(&p);

    parse_file(tu_source("tests/data/real/gguf/bad-utf8-mangled-ggml-vocab-bert-bge.gguf"), &p);
    assert_int_equal(p.status, MG_E_FORMAT);
    assert_non_null(strstr(p.err.message, "past the end of the file"));
    done(&p);
}

/* ---- generated inputs --------------------------------------------------------------- */

/* One printable line of valid UTF-8: no control bytes, no cut multibyte sequence. */
static bool printable_utf8(const char *m)
{
    const unsigned char *s = (const unsigned char *)m;
    while (*s) {
        int follow = *s < 0x80 ? 0 : (*s & 0xE0) == 0xC0 ? 1 : (*s & 0xF0) == 0xE0 ? 2
                     : (*s & 0xF8) == 0xF0 ? 3 : -1;
        if (follow < 0 || *s < 0x20 || *s == 0x7F)
            return false;
        for (int i = 1; i <= follow; i++) {
            if ((s[i] & 0xC0) != 0x80)
                return false;
        }
        s += follow + 1;
    }
    return true;
}

static void test_expected_tsv(void **state)
{
    (void)state;
    FILE *f = fopen(bad_path("expected.tsv"), "r");
    assert_non_null(f);
    char line[1024];
    int n = 0, accepted = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        char *tab1 = strchr(line, '\t');
        assert_non_null(tab1);
        *tab1 = '\0';
        int code = (int)(tab1[1] - '0');
        assert_true(code >= 0 && code <= 8 && tab1[2] == '\t');
        parsed p;
        parse_file(bad_path(line), &p);
        if ((int)p.status != code)
            fail_msg("%s: expected status %d, got %d (%s)", line, code, p.status, p.err.message);
        if (code != 0) {
            assert_true(p.err.message[0] != '\0');
            assert_true(printable_utf8(p.err.message));
        } else {
            accepted++;
            size_t len;
            uint8_t *data = tu_read_file(bad_path(line), &len);
            for (size_t i = 0; i < p.res.count; i++)
                assert_int_equal(mg_tensor_entry_check(&p.res.tensors[i], len, NULL), MG_OK);
            free(data);
            assert_true(json_is_object(p.res.metadata));
        }
        done(&p);
        n++;
    }
    fclose(f);
    assert_true(n >= 90);
    assert_true(accepted >= 10);
}

/* formats.md §3.3, typed again here rather than taken from the parser. */
static const struct {
    uint32_t id;
    const char *name;
    uint32_t blck, bytes;
} type_table[] = {
    {0, "F32", 1, 4},         {1, "F16", 1, 2},         {2, "Q4_0", 32, 18},
    {3, "Q4_1", 32, 20},      {6, "Q5_0", 32, 22},      {7, "Q5_1", 32, 24},
    {8, "Q8_0", 32, 34},      {9, "Q8_1", 32, 36},      {10, "Q2_K", 256, 84},
    {11, "Q3_K", 256, 110},   {12, "Q4_K", 256, 144},   {13, "Q5_K", 256, 176},
    {14, "Q6_K", 256, 210},   {15, "Q8_K", 256, 292},   {16, "IQ2_XXS", 256, 66},
    {17, "IQ2_XS", 256, 74},  {18, "IQ3_XXS", 256, 98}, {19, "IQ1_S", 256, 50},
    {20, "IQ4_NL", 32, 18},   {21, "IQ3_S", 256, 110},  {22, "IQ2_S", 256, 82},
    {23, "IQ4_XS", 256, 136}, {24, "I8", 1, 1},         {25, "I16", 1, 2},
    {26, "I32", 1, 4},        {27, "I64", 1, 8},        {28, "F64", 1, 8},
    {29, "IQ1_M", 256, 56},   {30, "BF16", 1, 2},       {34, "TQ1_0", 256, 54},
    {35, "TQ2_0", 256, 66},   {39, "MXFP4", 32, 17},    {40, "NVFP4", 64, 36},
    {41, "Q1_0", 128, 18},    {42, "Q2_0", 64, 18},
};
#define TYPE_TABLE_LEN (sizeof type_table / sizeof type_table[0])

static void test_type_table(void **state)
{
    (void)state;
    for (uint32_t id = 0; id < 300; id++) {
        const char *want = NULL;
        uint32_t wb = 0, wy = 0;
        for (size_t i = 0; i < TYPE_TABLE_LEN; i++) {
            if (type_table[i].id == id) {
                want = type_table[i].name;
                wb = type_table[i].blck;
                wy = type_table[i].bytes;
            }
        }
        const char *got = mg_gguf_type_name(id);
        uint32_t b = 7, y = 7;
        if (want == NULL) {
            assert_null(got);
            assert_false(mg_gguf_type_layout(id, &b, &y));
            assert_int_equal(b, 7);
        } else {
            assert_non_null(got);
            assert_string_equal(got, want);
            assert_true(mg_gguf_type_layout(id, &b, &y));
            assert_int_equal(b, wb);
            assert_int_equal(y, wy);
        }
    }
    assert_null(mg_gguf_type_name(UINT32_MAX));
}

static void test_quantized_all_types(void **state)
{
    (void)state;
    parsed p;
    parse_file(bad_path("good-quantized-all-types.gguf"), &p);
    assert_int_equal(p.status, MG_OK);
    size_t seen = 0;
    uint64_t rel = 0;
    for (size_t i = 0; i < TYPE_TABLE_LEN; i++) {
        if (type_table[i].blck == 1)
            continue;
        char name[64];
        snprintf(name, sizeof name, "q.%s", type_table[i].name);
        for (char *c = name; *c; c++)
            *c = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
        const mg_tensor_entry *e = &p.res.tensors[seen];
        assert_string_equal(e->name, name);
        assert_int_equal(e->dtype, MG_DTYPE_GGML_BLOCK);
        assert_int_equal(e->ggml_type, type_table[i].id);
        assert_int_equal(e->ndim, 2);
        assert_int_equal(e->shape[0], 3);
        assert_int_equal(e->shape[1], 2 * type_table[i].blck);
        assert_int_equal(e->nbytes, 3 * 2 * (uint64_t)type_table[i].bytes);
        if (seen > 0)
            assert_int_equal(e->offset, p.res.tensors[0].offset + rel);
        rel += (e->nbytes + 31) / 32 * 32;
        seen++;
    }
    assert_int_equal(p.res.count, seen);
    assert_int_equal(seen, 27);
    done(&p);
}

static void test_quantized_q4_q8_q4k(void **state)
{
    (void)state;
    parsed p;
    parse_file(bad_path("good-quantized-q4_0-q8_0-q4_k.gguf"), &p);
    assert_int_equal(p.status, MG_OK);
    assert_int_equal(p.res.count, 4);
    const mg_tensor_entry *q4 = find(&p, "blk.0.q4_0");
    const mg_tensor_entry *q8 = find(&p, "blk.0.q8_0");
    const mg_tensor_entry *qk = find(&p, "blk.0.q4_k");
    const mg_tensor_entry *nm = find(&p, "norm");
    assert_int_equal(q4->ggml_type, 2);
    assert_int_equal(q4->shape[0], 2);
    assert_int_equal(q4->shape[1], 64);
    assert_int_equal(q4->nbytes, 2 * 2 * 18); /* 2 rows of 2 blocks of 18 bytes */
    assert_int_equal(q8->ggml_type, 8);
    assert_int_equal(q8->nbytes, 3 * 34);
    assert_int_equal(qk->ggml_type, 12);
    assert_int_equal(qk->shape[0], 1);
    assert_int_equal(qk->shape[1], 512);
    assert_int_equal(qk->nbytes, 2 * 144);
    assert_int_equal(nm->dtype, MG_DTYPE_F32);
    assert_int_equal(nm->nbytes, 28);
    /* Contiguous with 32-byte padding: 72 -> 96, 102 -> 128, 288 -> 288. */
    assert_int_equal(q8->offset, q4->offset + 96);
    assert_int_equal(qk->offset, q8->offset + 128);
    assert_int_equal(nm->offset, qk->offset + 288);
    assert_int_equal(q4->offset % 32, 0);
    done(&p);
}

static void test_all_kv_types(void **state)
{
    (void)state;
    parsed p;
    parse_file(bad_path("good-v3-all-kv-types.gguf"), &p);
    assert_int_equal(p.status, MG_OK);
    json_t *m = p.res.metadata;
    assert_int_equal(json_integer_value(json_object_get(m, "t.u8")), 200);
    assert_int_equal(json_integer_value(json_object_get(m, "t.i8")), -100);
    assert_int_equal(json_integer_value(json_object_get(m, "t.u16")), 60000);
    assert_int_equal(json_integer_value(json_object_get(m, "t.i16")), -30000);
    assert_int_equal(json_integer_value(json_object_get(m, "t.u32")), 4000000000LL);
    assert_int_equal(json_integer_value(json_object_get(m, "t.i32")), -2000000000LL);
    assert_true(json_real_value(json_object_get(m, "t.f32")) == 0.5);
    assert_true(json_is_true(json_object_get(m, "t.bool")));
    assert_string_equal(json_string_value(json_object_get(m, "t.str")), "h\xc3\xa9llo");
    assert_string_equal(json_string_value(json_object_get(m, "t.u64")), "18446744073709551615");
    assert_int_equal(json_integer_value(json_object_get(m, "t.u64small")), 42);
    assert_true(json_integer_value(json_object_get(m, "t.i64")) == INT64_MIN);
    assert_true(json_real_value(json_object_get(m, "t.f64")) == -1.25);
    assert_string_equal(json_string_value(json_object_get(m, "t.nan")), "NaN");
    assert_string_equal(json_string_value(json_object_get(m, "t.inf")), "-Infinity");
    json_t *a = json_object_get(m, "t.arr_i32");
    assert_int_equal(json_array_size(a), 3);
    assert_int_equal(json_integer_value(json_array_get(a, 1)), -2);
    a = json_object_get(m, "t.arr_bool");
    assert_true(json_is_true(json_array_get(a, 0)) && json_is_false(json_array_get(a, 1)));
    a = json_object_get(m, "t.arr_str");
    assert_int_equal(json_array_size(a), 3);
    assert_string_equal(json_string_value(json_array_get(a, 1)), "");
    assert_string_equal(json_string_value(json_array_get(a, 2)), "\xc3\xbc");
    assert_int_equal(json_array_size(json_object_get(m, "t.arr_empty")), 0);
    assert_true(json_is_array(json_object_get(m, "t.arr_empty")));
    a = json_object_get(m, "t.arr_big");
    assert_string_equal(json_string_value(json_object_get(a, "element_type")), "uint32");
    assert_int_equal(json_integer_value(json_object_get(a, "count")), 2000);
    a = json_object_get(m, "t.arr_bigstr");
    assert_int_equal(json_integer_value(json_object_get(a, "count")), 1500);
    a = json_object_get(m, "t.badutf8");
    assert_string_equal(json_string_value(json_object_get(a, "type")), "string");
    assert_int_equal(json_integer_value(json_object_get(a, "length")), 2);
    assert_true(json_is_false(json_object_get(a, "utf8")));
    assert_int_equal(json_integer_value(json_object_get(m, "general.alignment")), 64);
    assert_int_equal(json_object_size(m), 23);
    /* Keys in file order; the whole metadata dumps as JSON. */
    char *dump = json_dumps(m, JSON_COMPACT);
    assert_non_null(dump);
    assert_true(strncmp(dump, "{\"t.u8\":200,\"t.i8\":-100,", 24) == 0);
    free(dump);

    /* Plain types with alignment 64. */
    static const struct {
        const char *name;
        mg_dtype dtype;
        uint32_t ndim;
        uint64_t nbytes;
    } plain[] = {
        {"p.f32", MG_DTYPE_F32, 2, 24}, {"p.f16", MG_DTYPE_F16, 1, 8},
        {"p.bf16", MG_DTYPE_BF16, 2, 8}, {"p.f64", MG_DTYPE_F64, 1, 16},
        {"p.i8", MG_DTYPE_I8, 1, 5},    {"p.i16", MG_DTYPE_I16, 1, 6},
        {"p.i32", MG_DTYPE_I32, 3, 8},  {"p.i64", MG_DTYPE_I64, 4, 16},
    };
    assert_int_equal(p.res.count, 8);
    for (size_t i = 0; i < 8; i++) {
        const mg_tensor_entry *e = &p.res.tensors[i];
        assert_string_equal(e->name, plain[i].name);
        assert_int_equal(e->dtype, plain[i].dtype);
        assert_int_equal(e->ndim, plain[i].ndim);
        assert_int_equal(e->nbytes, plain[i].nbytes);
        assert_int_equal(e->offset % 64, 0);
        if (i > 0)
            assert_int_equal(e->offset, p.res.tensors[i - 1].offset + 64);
    }
    const mg_tensor_entry *f = find(&p, "p.f32");
    assert_int_equal(f->shape[0], 2);
    assert_int_equal(f->shape[1], 3);
    const mg_tensor_entry *i64 = find(&p, "p.i64");
    assert_int_equal(i64->shape[0], 1);
    assert_int_equal(i64->shape[3], 2);
    done(&p);
}

static void test_layout_variants(void **state)
{
    (void)state;
    parsed p;
    size_t len;
    uint8_t *data = tu_read_file(bad_path("good-no-final-pad.gguf"), &len);
    parse_buf(data, len, &p);
    assert_int_equal(p.status, MG_OK);
    assert_int_equal(p.res.count, 2);
    assert_int_equal(p.res.tensors[1].offset, p.res.tensors[0].offset + 32);
    assert_int_equal(p.res.tensors[1].offset + 20, len); /* ends at its data: no pad */
    done(&p);
    free(data);

    data = tu_read_file(bad_path("good-final-pad.gguf"), &len);
    parse_buf(data, len, &p);
    assert_int_equal(p.status, MG_OK);
    assert_int_equal(p.res.tensors[1].offset + 32, len);
    done(&p);
    free(data);

    parse_file(bad_path("good-dim-above-int32.gguf"), &p);
    assert_int_equal(p.status, MG_OK);
    const mg_tensor_entry *w = find(&p, "wide");
    assert_int_equal(w->shape[0], 0);
    assert_int_equal(w->shape[1], 2147483649ULL);
    assert_int_equal(w->nbytes, 0);
    w = find(&p, "wideq");
    assert_int_equal(w->dtype, MG_DTYPE_GGML_BLOCK);
    assert_int_equal(w->shape[1], 4294967296ULL);
    assert_int_equal(w->nbytes, 0);
    assert_int_equal(find(&p, "x")->offset, w->offset);
    done(&p);

    parse_file(bad_path("good-scalar.gguf"), &p);
    assert_int_equal(p.status, MG_OK);
    assert_int_equal(p.res.tensors[0].ndim, 0);
    assert_int_equal(p.res.tensors[0].nbytes, 4);
    done(&p);

    parse_file(bad_path("good-v2.gguf"), &p);
    assert_int_equal(p.status, MG_OK);
    assert_int_equal(p.res.count, 2);
    assert_int_equal(find(&p, "b.weight")->nbytes, 36);
    done(&p);
}

static void test_messages_and_kinds(void **state)
{
    (void)state;
    static const struct {
        const char *file;
        mg_status status;
        const char *needle;
    } cases[] = {
        {"bad-version-byteswapped.gguf", MG_E_FORMAT, "byte-swapped"},
        {"bad-version-4.gguf", MG_E_FORMAT, "version 4 is not supported"},
        {"bad-version-1.gguf", MG_E_FORMAT, "GGUF v1 is not supported"},
        {"bad-alignment-2e31.gguf", MG_E_LIMIT, "exceeds the cap"},
        {"bad-alignment-int32.gguf", MG_E_FORMAT, "must be uint32"},
        {"bad-alignment-duplicate.gguf", MG_E_FORMAT, "duplicate key 'general.alignment'"},
        {"bad-array-of-array.gguf", MG_E_FORMAT, "nested array"},
        {"bad-bool-2.gguf", MG_E_FORMAT, "BOOL"},
        {"bad-name-duplicate-nonadjacent.gguf", MG_E_FORMAT, "duplicate tensor name 'w'"},
        {"bad-dims-int64max-x2.gguf", MG_E_FORMAT, "overflows"},
        {"bad-type-removed-31.gguf", MG_E_FORMAT, "Q4_0_4_4"},
        {"bad-q4_0-ne0-33.gguf", MG_E_FORMAT, "not a multiple of the Q4_0 block size 32"},
        {"bad-offset-gap.gguf", MG_E_FORMAT, "has offset 64, expected 32"},
        {"bad-final-pad-partial.gguf", MG_E_FORMAT, "expected 0 or the 12 bytes of padding"},
        {"bad-q4_0-2e33-elements.gguf", MG_E_FORMAT, "4831838244 bytes"},
        {"bad-name-64.gguf", MG_E_FORMAT, "at most 63"},
        {"bad-name-control-duplicate.gguf", MG_E_FORMAT, "duplicate tensor name 'a?b?[2J'"},
        {"bad-key-control-duplicate.gguf", MG_E_FORMAT, "duplicate key '?\xc3\xa9\xc3\xa9"},
        {"bad-name-not-utf8.gguf", MG_E_FORMAT, "not valid UTF-8"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        parsed p;
        parse_file(bad_path(cases[i].file), &p);
        if (p.status != cases[i].status || strstr(p.err.message, cases[i].needle) == NULL)
            fail_msg("%s: status %d message '%s', wanted %d '%s'", cases[i].file, p.status,
                     p.err.message, cases[i].status, cases[i].needle);
        done(&p);
    }
}

/* The 2^30 caps need the elements to be present: build the file in a lazily zero-filled
 * anonymous mapping (no page is touched beyond the header). */
static void test_caps_in_big_mapping(void **state)
{
    (void)state;
    size_t len = (size_t)(1u << 30) + 4096;
    uint8_t *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                      -1, 0);
    assert_true(m != MAP_FAILED);
    static const uint8_t hdr[] = {'G', 'G', 'U', 'F', 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                  1, 0, 0, 0, 0, 0, 0, 0, /* n_kv = 1 */
                                  1, 0, 0, 0, 0, 0, 0, 0, 'k', /* key "k" */
                                  9, 0, 0, 0,                  /* ARRAY */
                                  0, 0, 0, 0,                  /* of UINT8 */
                                  1, 0, 0, 64, 0, 0, 0, 0};    /* count 2^30 + 1 */
    memcpy(m, hdr, sizeof hdr);
    parsed p;
    parse_buf(m, len, &p);
    assert_int_equal(p.status, MG_E_LIMIT);
    assert_non_null(strstr(p.err.message, "2^30"));
    done(&p);

    /* A string value of 2^30 + 1 bytes. */
    static const uint8_t hdr2[] = {'G', 'G', 'U', 'F', 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                   1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 'k',
                                   8, 0, 0, 0,                   /* STRING */
                                   1, 0, 0, 64, 0, 0, 0, 0};     /* length 2^30 + 1 */
    memcpy(m, hdr2, sizeof hdr2);
    parse_buf(m, len, &p);
    assert_int_equal(p.status, MG_E_LIMIT);
    assert_non_null(strstr(p.err.message, "1 GiB"));
    done(&p);

    /* An array of exactly 2^30 uint8 is accepted (and summarised). */
    memcpy(m, hdr, sizeof hdr);
    m[sizeof hdr - 8] = 0; /* count 2^30 */
    size_t exact = sizeof hdr + ((size_t)1 << 30);
    parse_buf(m, exact, &p);
    assert_int_equal(p.status, MG_OK);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(p.res.metadata, "k"), "count")),
                     1 << 30);
    done(&p);
    munmap(m, len);
}

static void test_probe(void **state)
{
    (void)state;
    assert_true(mg_format_gguf.probe((const uint8_t *)"GGUF", 4));
    assert_true(mg_format_gguf.probe((const uint8_t *)"GGUF\x03\0\0\0", 8));
    assert_false(mg_format_gguf.probe((const uint8_t *)"GGU", 3));
    assert_false(mg_format_gguf.probe((const uint8_t *)"GGML", 4));
    assert_false(mg_format_gguf.probe((const uint8_t *)"", 0));
}

/* Every prefix of a valid file fails cleanly (or succeeds where the prefix is itself valid). */
static void test_every_truncation(void **state)
{
    (void)state;
    size_t len;
    uint8_t *data = tu_read_file(bad_path("good-quantized-q4_0-q8_0-q4_k.gguf"), &len);
    for (size_t n = 0; n < len; n++) {
        uint8_t *copy = malloc(n ? n : 1);
        assert_non_null(copy);
        memcpy(copy, data, n);
        parsed p;
        parse_buf(copy, n, &p);
        /* The only valid prefix would be one missing just the final pad; the last tensor
         * (F32 [7] = 28 bytes) has 4 bytes of pad. */
        if (n == len - 4)
            assert_int_equal(p.status, MG_OK);
        else
            assert_int_equal(p.status, MG_E_FORMAT);
        done(&p);
        free(copy);
    }
    free(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_llama_tiny),
        cmocka_unit_test(test_real_vocab_files),
        cmocka_unit_test(test_real_rejected),
        cmocka_unit_test(test_expected_tsv),
        cmocka_unit_test(test_type_table),
        cmocka_unit_test(test_quantized_all_types),
        cmocka_unit_test(test_quantized_q4_q8_q4k),
        cmocka_unit_test(test_all_kv_types),
        cmocka_unit_test(test_layout_variants),
        cmocka_unit_test(test_messages_and_kinds),
        cmocka_unit_test(test_caps_in_big_mapping),
        cmocka_unit_test(test_probe),
        cmocka_unit_test(test_every_truncation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
