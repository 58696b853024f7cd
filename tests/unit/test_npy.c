/* The .npy parser: real files, every dtype, byte and memory order, versions, and every
 * file of tests/data/bad/npy/ with the verdict expected.tsv gives it. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/format.h"
#include "format/npy.h"

static mg_status parse_npy(const uint8_t *data, size_t len, mg_parse_result *res, mg_error *err)
{
    memset(res, 0, sizeof *res);
    mg_error_clear(err);
    return mg_format_npy.parse(data, len, res, err);
}

/* An npy file in memory: version `major`, header dict `dict` padded to 64, `data_len`
 * bytes of data (value i at byte i). Returns a malloc'd buffer. */
static uint8_t *build_npy(int major, const char *dict, size_t data_len, size_t *out_len)
{
    size_t dlen = strlen(dict);
    size_t pre = major == 1 ? 10 : 12;
    size_t hlen = dlen + 1;
    hlen += (64 - (pre + hlen) % 64) % 64;
    size_t total = pre + hlen + data_len;
    uint8_t *b = malloc(total);
    assert_non_null(b);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (uint8_t)major;
    b[7] = 0;
    if (major == 1) {
        b[8] = (uint8_t)(hlen & 0xff);
        b[9] = (uint8_t)(hlen >> 8);
    } else {
        for (int i = 0; i < 4; i++)
            b[8 + i] = (uint8_t)(hlen >> (8 * i));
    }
    memcpy(b + pre, dict, dlen);
    memset(b + pre + dlen, ' ', hlen - dlen - 1);
    b[pre + hlen - 1] = '\n';
    for (size_t i = 0; i < data_len; i++)
        b[pre + hlen + i] = (uint8_t)i;
    *out_len = total;
    return b;
}

typedef struct expect_tensor {
    mg_dtype dtype;
    uint32_t ndim;
    uint64_t shape[MG_MAX_NDIM];
    uint64_t nbytes;
    uint64_t offset;
    uint32_t flags;
} expect_tensor;

static void check_single(const mg_parse_result *res, const expect_tensor *e, uint64_t file_len)
{
    mg_error err;
    assert_int_equal(res->count, 1);
    const mg_tensor_entry *t = &res->tensors[0];
    assert_string_equal(t->name, "");
    assert_int_equal(t->dtype, e->dtype);
    assert_int_equal(t->ndim, e->ndim);
    for (uint32_t i = 0; i < e->ndim; i++)
        assert_int_equal(t->shape[i], e->shape[i]);
    assert_int_equal(t->nbytes, e->nbytes);
    assert_int_equal(t->offset, e->offset);
    assert_int_equal(t->data_offset, e->offset);
    assert_int_equal(t->blob, 0);
    assert_int_equal(t->flags, e->flags);
    assert_int_equal(mg_tensor_entry_check(t, file_len, &err), MG_OK);
    assert_int_equal(t->offset + t->nbytes, file_len);
}

static void test_real_accepted(void **state)
{
    (void)state;
    static const struct {
        const char *file;
        expect_tensor e;
    } cases[] = {
        {"tests/data/real/npy/test.npy", {MG_DTYPE_I64, 1, {10}, 80, 128, 0}},
        {"tests/data/real/npy/python3.npy", {MG_DTYPE_F64, 1, {2}, 16, 80, 0}},
        /* 'shape': (2L,): the Python-2 long suffix, accepted in v1 (numpy's _filter_header). */
        {"tests/data/real/npy/win64python2.npy", {MG_DTYPE_F64, 1, {2}, 16, 80, 0}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len;
        uint8_t *data = tu_read_file(tu_source(cases[i].file), &len);
        mg_parse_result res;
        mg_error err;
        assert_true(mg_format_npy.probe(data, len));
        assert_ptr_equal(mg_format_detect(data, len, "x.npy"), &mg_format_npy);
        mg_status st = parse_npy(data, len, &res, &err);
        if (st != MG_OK)
            fail_msg("%s: %s", cases[i].file, err.message);
        check_single(&res, &cases[i].e, len);
        mg_parse_result_free(&res);
        free(data);
    }
}

static void test_real_object_arrays_refused(void **state)
{
    (void)state;
    const char *files[] = {"tests/data/real/npy/py3-objarr.npy", "tests/data/real/npy/py2-objarr.npy"};
    for (size_t i = 0; i < 2; i++) {
        size_t len;
        uint8_t *data = tu_read_file(tu_source(files[i]), &len);
        mg_parse_result res;
        mg_error err;
        assert_int_equal(parse_npy(data, len, &res, &err), MG_E_FORMAT);
        assert_int_equal(err.status, MG_E_FORMAT);
        assert_non_null(strstr(err.message, "pickle"));
        assert_non_null(strstr(err.message, "never loaded"));
        assert_int_equal(res.count, 0);
        mg_parse_result_free(&res);
        free(data);
    }
}

static void test_every_dtype(void **state)
{
    (void)state;
    static const struct {
        const char *descr;
        mg_dtype dtype;
        size_t size;
        uint32_t flags;
    } cases[] = {
        {"|b1", MG_DTYPE_BOOL, 1, 0}, {"|i1", MG_DTYPE_I8, 1, 0},    {"<i2", MG_DTYPE_I16, 2, 0},
        {"<i4", MG_DTYPE_I32, 4, 0},  {"<i8", MG_DTYPE_I64, 8, 0},   {"|u1", MG_DTYPE_U8, 1, 0},
        {"<u2", MG_DTYPE_U16, 2, 0},  {"<u4", MG_DTYPE_U32, 4, 0},   {"<u8", MG_DTYPE_U64, 8, 0},
        {"<f2", MG_DTYPE_F16, 2, 0},  {"<f4", MG_DTYPE_F32, 4, 0},   {"<f8", MG_DTYPE_F64, 8, 0},
        {"<c8", MG_DTYPE_C64, 8, 0},  {"<V2", MG_DTYPE_BF16, 2, 0},  {"|V2", MG_DTYPE_BF16, 2, 0},
        {">i2", MG_DTYPE_I16, 2, MG_TENSOR_BIG_ENDIAN},
        {">f8", MG_DTYPE_F64, 8, MG_TENSOR_BIG_ENDIAN},
        {">c8", MG_DTYPE_C64, 8, MG_TENSOR_BIG_ENDIAN},
        {">V2", MG_DTYPE_BF16, 2, MG_TENSOR_BIG_ENDIAN},
        {">i1", MG_DTYPE_I8, 1, 0}, /* one byte: no byte order to convert */
        {">b1", MG_DTYPE_BOOL, 1, 0}, {"=f4", MG_DTYPE_F32, 4, 0},   {"<b1", MG_DTYPE_BOOL, 1, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char dict[128];
        snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (3,), }",
                 cases[i].descr);
        size_t len;
        uint8_t *data = build_npy(1, dict, 3 * cases[i].size, &len);
        mg_parse_result res;
        mg_error err;
        mg_status st = parse_npy(data, len, &res, &err);
        if (st != MG_OK)
            fail_msg("%s: %s", cases[i].descr, err.message);
        expect_tensor e = {cases[i].dtype, 1, {3}, 3 * cases[i].size, len - 3 * cases[i].size,
                           cases[i].flags};
        check_single(&res, &e, len);
        mg_parse_result_free(&res);
        free(data);
    }
}

static void test_unsupported_dtypes(void **state)
{
    (void)state;
    static const struct {
        const char *descr;
        const char *message;
    } cases[] = {
        {"'<U3'", "unsupported dtype '<U3'"},
        {"'|S5'", "unsupported dtype '|S5'"},
        {"'<M8[s]'", "unsupported dtype '<M8[s]'"},
        {"'<f16'", "unsupported dtype '<f16'"},
        {"'<c16'", "unsupported dtype '<c16'"},
        {"'<ixy'", "unsupported dtype '<ixy'"},
        {"'f4'", "unsupported dtype 'f4'"},
        {"''", "empty 'descr'"},
        {"'|O'", "pickle"},
        {"'O'", "pickle"},
        {"'<O8'", "pickle"},
        {"[('a', '<i4'), ('b', '|O')]", "pickle"},
        {"('|O', (2,))", "pickle"},
        {"[('a', '<i4')]", "structured"},
        {"('<f4', (2,))", "subarray"},
        {"True", "not a dtype string"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char dict[160];
        snprintf(dict, sizeof dict, "{'descr': %s, 'fortran_order': False, 'shape': (), }",
                 cases[i].descr);
        size_t len;
        uint8_t *data = build_npy(1, dict, 4, &len);
        mg_parse_result res;
        mg_error err;
        assert_int_equal(parse_npy(data, len, &res, &err), MG_E_FORMAT);
        if (strstr(err.message, cases[i].message) == NULL)
            fail_msg("%s: message '%s' lacks '%s'", cases[i].descr, err.message, cases[i].message);
        mg_parse_result_free(&res);
        free(data);
    }
}

static void test_fortran_order(void **state)
{
    (void)state;
    static const struct {
        const char *shape;
        uint32_t ndim;
        uint64_t dims[4];
        uint64_t elements;
        uint32_t flags;
    } cases[] = {
        {"(2, 3)", 2, {2, 3}, 6, MG_TENSOR_FORTRAN},
        {"(2, 1, 3)", 3, {2, 1, 3}, 6, MG_TENSOR_FORTRAN},
        {"(4,)", 1, {4}, 4, 0},             /* 1-D: same bytes as C order */
        {"(1, 1, 1, 4, )", 4, {1, 1, 1, 4}, 4, 0}, /* MLX writes these as Fortran */
        {"()", 0, {0}, 1, 0},
        {"(0, 3, 2)", 3, {0, 3, 2}, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char dict[128];
        snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': True, 'shape': %s}",
                 cases[i].shape);
        size_t len;
        uint8_t *data = build_npy(1, dict, 4 * cases[i].elements, &len);
        mg_parse_result res;
        mg_error err;
        mg_status st = parse_npy(data, len, &res, &err);
        if (st != MG_OK)
            fail_msg("%s: %s", cases[i].shape, err.message);
        expect_tensor e = {MG_DTYPE_F32, cases[i].ndim, {0}, 4 * cases[i].elements,
                           len - 4 * cases[i].elements, cases[i].flags};
        memcpy(e.shape, cases[i].dims, sizeof cases[i].dims);
        check_single(&res, &e, len);
        mg_parse_result_free(&res);
        free(data);
    }
}

static void test_versions_and_header_cap(void **state)
{
    (void)state;
    const char *dict = "{'descr': '<u2', 'fortran_order': False, 'shape': (2, 3)}";
    for (int major = 1; major <= 3; major++) {
        size_t len;
        uint8_t *data = build_npy(major, dict, 12, &len);
        mg_parse_result res;
        mg_error err;
        assert_int_equal(parse_npy(data, len, &res, &err), MG_OK);
        expect_tensor e = {MG_DTYPE_U16, 2, {2, 3}, 12, 128, 0};
        check_single(&res, &e, len);
        mg_parse_result_free(&res);
        free(data);
    }
    /* A v2 header of exactly the cap is read; one byte more is our limit. */
    for (size_t hlen = MG_NPY_MAX_HEADER_BYTES; hlen <= MG_NPY_MAX_HEADER_BYTES + 1; hlen++) {
        size_t dlen = strlen(dict), len = 12 + hlen + 12;
        uint8_t *data = malloc(len);
        assert_non_null(data);
        memcpy(data, "\x93NUMPY\x02\x00", 8);
        for (int i = 0; i < 4; i++)
            data[8 + i] = (uint8_t)(hlen >> (8 * i));
        memcpy(data + 12, dict, dlen);
        memset(data + 12 + dlen, ' ', hlen - dlen - 1);
        data[12 + hlen - 1] = '\n';
        memset(data + 12 + hlen, 0, 12);
        mg_parse_result res;
        mg_error err;
        mg_status st = parse_npy(data, len, &res, &err);
        assert_int_equal(st, hlen == MG_NPY_MAX_HEADER_BYTES ? MG_OK : MG_E_LIMIT);
        if (st == MG_OK)
            assert_int_equal(res.tensors[0].offset, 12 + hlen);
        mg_parse_result_free(&res);
        free(data);
    }
}

static void test_shape_edges(void **state)
{
    (void)state;
    static const struct {
        const char *shape;
        mg_status st;
    } cases[] = {
        {"()", MG_OK},
        {"(0,)", MG_OK},
        {"(2, )", MG_OK},
        {"(2,3,)", MG_OK},
        {"(1, 1, 1, 1, 1, 1, 1, 2)", MG_OK},
        {"(1, 1, 1, 1, 1, 1, 1, 1, 2)", MG_E_LIMIT},
        {"(2)", MG_E_FORMAT},
        {"(-1,)", MG_E_FORMAT},
        {"(,)", MG_E_FORMAT},
        {"(2 3)", MG_E_FORMAT},
        {"(0x10,)", MG_E_FORMAT},
        {"(1_0,)", MG_E_FORMAT},
        {"(True,)", MG_E_FORMAT},
        {"('2',)", MG_E_FORMAT},
        {"(9223372036854775807, 2)", MG_E_FORMAT}, /* overflows */
        {"(9223372036854775808,)", MG_E_FORMAT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char dict[128];
        snprintf(dict, sizeof dict, "{'descr': '|u1', 'fortran_order': False, 'shape': %s}",
                 cases[i].shape);
        size_t len;
        /* The OK cases hold 0, 1, 2 or 6 elements: give exactly that many bytes. */
        size_t data_len = strcmp(cases[i].shape, "(0,)") == 0   ? 0
                          : strcmp(cases[i].shape, "()") == 0   ? 1
                          : strcmp(cases[i].shape, "(2,3,)") == 0 ? 6
                                                                : 2;
        uint8_t *data = build_npy(1, dict, data_len, &len);
        mg_parse_result res;
        mg_error err;
        mg_status st = parse_npy(data, len, &res, &err);
        if (st != cases[i].st)
            fail_msg("%s: got %d (%s), want %d", cases[i].shape, st, err.message, cases[i].st);
        mg_parse_result_free(&res);
        free(data);
    }
}

/* Every prefix of a valid file is refused (never accepted, never read past its end). */
static void test_every_truncation_refused(void **state)
{
    (void)state;
    size_t len;
    uint8_t *full = tu_read_file(tu_source("tests/data/real/npy/test.npy"), &len);
    for (size_t n = 0; n < len; n++) {
        uint8_t *copy = malloc(n ? n : 1);
        assert_non_null(copy);
        memcpy(copy, full, n);
        mg_parse_result res;
        mg_error err;
        assert_int_equal(parse_npy(copy, n, &res, &err), MG_E_FORMAT);
        assert_int_equal(res.count, 0);
        mg_parse_result_free(&res);
        free(copy);
    }
    free(full);
}

/* tests/data/bad/npy/: each file gets the exit code expected.tsv lists. */
static void test_bad_inputs(void **state)
{
    (void)state;
    char path[4096];
    snprintf(path, sizeof path, "%s", tu_source("tests/data/bad/npy/expected.tsv"));
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[1024];
    int count = 0, accepted = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        char *tab1 = strchr(line, '\t');
        assert_non_null(tab1);
        *tab1 = '\0';
        int expected = tab1[1] - '0';
        assert_true(expected >= 0 && expected <= 8 && tab1[2] == '\t');
        char rel[1100];
        snprintf(rel, sizeof rel, "tests/data/bad/npy/%s", line);
        size_t len;
        uint8_t *data = tu_read_file(tu_source(rel), &len);
        /* Detection sends every one of them to this parser (by content or by name). */
        assert_ptr_equal(mg_format_detect(data, len, line), &mg_format_npy);
        mg_parse_result res;
        mg_error err;
        mg_status st = parse_npy(data, len, &res, &err);
        if ((int)st != expected)
            fail_msg("%s: got %d (%s), want %d", line, st, err.message, expected);
        if (st == MG_OK) {
            assert_int_equal(res.count, 1);
            assert_int_equal(mg_tensor_entry_check(&res.tensors[0], len, &err), MG_OK);
            accepted++;
        } else {
            assert_true(strlen(err.message) > 0);
            assert_null(strchr(err.message, '\n'));
        }
        mg_parse_result_free(&res);
        free(data);
        count++;
    }
    fclose(f);
    assert_true(count >= 70);
    assert_true(accepted >= 10);
}

static void test_bad_input_details(void **state)
{
    (void)state;
    static const struct {
        const char *file;
        mg_dtype dtype;
        uint32_t flags;
    } cases[] = {
        {"descr-big-endian.npy", MG_DTYPE_F32, MG_TENSOR_BIG_ENDIAN},
        {"descr-bf16-v2.npy", MG_DTYPE_BF16, 0},
        {"fortran-2d.npy", MG_DTYPE_F32, MG_TENSOR_FORTRAN},
        {"fortran-1d.npy", MG_DTYPE_F32, 0},
        {"shape-long-suffix-v1.npy", MG_DTYPE_F32, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char rel[256];
        snprintf(rel, sizeof rel, "tests/data/bad/npy/%s", cases[i].file);
        size_t len;
        uint8_t *data = tu_read_file(tu_source(rel), &len);
        mg_parse_result res;
        mg_error err;
        assert_int_equal(parse_npy(data, len, &res, &err), MG_OK);
        assert_int_equal(res.tensors[0].dtype, cases[i].dtype);
        assert_int_equal(res.tensors[0].flags, cases[i].flags);
        mg_parse_result_free(&res);
        free(data);
    }
    size_t len;
    uint8_t *data = tu_read_file(tu_source("tests/data/bad/npy/nul-in-header.npy"), &len);
    mg_parse_result res;
    mg_error err;
    assert_int_equal(parse_npy(data, len, &res, &err), MG_E_FORMAT);
    assert_non_null(strstr(err.message, "NUL"));
    mg_parse_result_free(&res);
    free(data);
}

static void test_probe(void **state)
{
    (void)state;
    assert_true(mg_format_npy.probe((const uint8_t *)"\x93NUMPY", 6));
    assert_false(mg_format_npy.probe((const uint8_t *)"\x93NUMP", 5));
    assert_false(mg_format_npy.probe((const uint8_t *)"PK\x03\x04xxxx", 8));
    assert_false(mg_format_npy.probe(NULL, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_accepted),
        cmocka_unit_test(test_real_object_arrays_refused),
        cmocka_unit_test(test_every_dtype),
        cmocka_unit_test(test_unsupported_dtypes),
        cmocka_unit_test(test_fortran_order),
        cmocka_unit_test(test_versions_and_header_cap),
        cmocka_unit_test(test_shape_edges),
        cmocka_unit_test(test_every_truncation_refused),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_bad_input_details),
        cmocka_unit_test(test_probe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
