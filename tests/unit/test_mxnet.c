/* MXNet checkpoints: the .params parser, the -symbol.json parser and the checkpoint
 * cross-check, on the real corpus, on files from tests/data/write_mxnet.py, and on every bad
 * input of tests/data/bad/{mxnet,symbol}/expected.tsv. */
#include "testutil.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/format.h"
#include "format/mxnet.h"

/* ---- helpers ---------------------------------------------------------------------- */

typedef struct want_tensor {
    const char *name;
    const char *dtype;
    uint32_t ndim;
    uint64_t shape[MG_MAX_NDIM];
    uint64_t offset;
} want_tensor;

static mg_status parse_buf(const mg_format *f, const uint8_t *data, size_t len,
                           mg_parse_result *res, mg_error *err)
{
    memset(res, 0, sizeof *res);
    memset(err, 0, sizeof *err);
    return f->parse(data, len, res, err);
}

static void check_tensors(const mg_parse_result *res, size_t file_len, const want_tensor *want,
                          size_t n)
{
    assert_int_equal(res->count, n);
    for (size_t i = 0; i < n; i++) {
        const mg_tensor_entry *t = &res->tensors[i];
        assert_string_equal(t->name, want[i].name);
        assert_string_equal(mg_dtype_name(t->dtype), want[i].dtype);
        assert_int_equal(t->ndim, want[i].ndim);
        for (uint32_t d = 0; d < t->ndim; d++)
            assert_int_equal(t->shape[d], want[i].shape[d]);
        assert_int_equal(t->offset, want[i].offset);
        assert_int_equal(t->data_offset, want[i].offset);
        assert_int_equal(t->blob, 0);
        mg_error err = {0};
        assert_int_equal(mg_tensor_entry_check(t, file_len, &err), MG_OK);
    }
}

/* Parse a real file of the corpus as .params and compare its tensor table. */
static void real_params(const char *rel, const char *version, const want_tensor *want, size_t n)
{
    size_t len;
    uint8_t *data = tu_read_file(tu_source(rel), &len);
    assert_ptr_equal(mg_format_detect(data, len, rel), &mg_format_mxnet_params);
    mg_parse_result res;
    mg_error err;
    mg_status st = parse_buf(&mg_format_mxnet_params, data, len, &res, &err);
    if (st != MG_OK)
        fail_msg("%s: %s", rel, err.message);
    check_tensors(&res, len, want, n);
    json_t *vers = json_object_get(res.metadata, "record_versions");
    assert_int_equal(json_array_size(vers), 1);
    assert_string_equal(json_string_value(json_array_get(vers, 0)), version);
    assert_int_equal(json_integer_value(json_object_get(res.metadata, "arrays")), n);
    assert_int_equal(json_array_size(json_object_get(res.metadata, "none")), 0);
    mg_parse_result_free(&res);
    free(data);
}

/* Parse a symbol file and compare its summary with `want_json`; returns the summary. */
static json_t *symbol_summary(const char *path, const char *want_json)
{
    size_t len;
    uint8_t *data = tu_read_file(path, &len);
    assert_ptr_equal(mg_format_detect(data, len, "x-symbol.json"), &mg_format_mxnet_symbol);
    mg_parse_result res;
    mg_error err;
    mg_status st = parse_buf(&mg_format_mxnet_symbol, data, len, &res, &err);
    if (st != MG_OK)
        fail_msg("%s: %s", path, err.message);
    assert_int_equal(res.count, 0);
    assert_non_null(res.metadata);
    if (want_json != NULL) {
        json_t *want = json_loads(want_json, 0, NULL);
        assert_non_null(want);
        if (!json_equal(want, res.metadata)) {
            char *got = json_dumps(res.metadata, JSON_COMPACT);
            fail_msg("%s summary: %s", path, got);
        }
        json_decref(want);
    }
    json_t *sum = json_incref(res.metadata);
    mg_parse_result_free(&res);
    free(data);
    return sum;
}

static json_t *param_report(const json_t *summary, const char *params_path)
{
    size_t len;
    uint8_t *data = tu_read_file(params_path, &len);
    mg_parse_result res;
    mg_error err;
    assert_int_equal(parse_buf(&mg_format_mxnet_params, data, len, &res, &err), MG_OK);
    const char **names = calloc(res.count + 1, sizeof *names);
    assert_non_null(names);
    for (size_t i = 0; i < res.count; i++)
        names[i] = res.tensors[i].name;
    json_t *report = NULL;
    assert_int_equal(mg_mxnet_checkpoint_report(summary, names, res.count, &report, &err), MG_OK);
    free(names);
    mg_parse_result_free(&res);
    free(data);
    return report;
}

static void assert_json(const json_t *got, const char *want_json)
{
    json_t *want = json_loads(want_json, 0, NULL);
    assert_non_null(want);
    if (!json_equal(want, got)) {
        char *s = json_dumps(got, JSON_COMPACT);
        fail_msg("got %s, want %s", s, want_json);
    }
    json_decref(want);
}

/* ---- real corpus (tests/data/real/README.md: every MXNet file is "accept") ------------- */

static void test_real_params(void **state)
{
    (void)state;
    const want_tensor legacy[] = {
        {"0", "F32", 1, {128}, 44},   {"1", "F32", 1, {128}, 576},  {"2", "F32", 1, {128}, 1108},
        {"3", "F32", 1, {128}, 1640}, {"4", "F32", 1, {128}, 2172}, {"5", "F32", 1, {128}, 2704},
    };
    real_params("tests/data/real/mxnet/legacy-ndarray-v0/legacy_ndarray.v0", "legacy", legacy, 6);
    const want_tensor go[] = {
        {"arg:pred_bias", "F32", 1, {10}, 44},
        {"arg:pred_weight", "F32", 2, {10, 1}, 108},
    };
    real_params("tests/data/real/mxnet/go-test-v0.9/go_test-0001.params", "legacy", go, 2);
    const want_tensor linreg[] = {
        {"arg:fc1_weight", "F32", 2, {1, 2}, 60},
        {"arg:fc1_bias", "F32", 1, {1}, 96},
    };
    real_params("tests/data/real/mxnet/sagemaker-linreg-v0.11/model-0000.params", "v1", linreg, 2);
    const want_tensor mnist[] = {
        {"arg:fullyconnected0_weight", "F32", 2, {128, 784}, 64},
        {"arg:fullyconnected0_bias", "F32", 1, {128}, 401504},
        {"arg:fullyconnected1_weight", "F32", 2, {64, 128}, 402056},
        {"arg:fullyconnected1_bias", "F32", 1, {64}, 434856},
        {"arg:fullyconnected2_weight", "F32", 2, {10, 64}, 435152},
        {"arg:fullyconnected2_bias", "F32", 1, {10}, 437744},
    };
    real_params("tests/data/real/mxnet/sagemaker-mnist-v1.4/model-0000.params", "v2", mnist, 6);
}

static void test_real_symbols(void **state)
{
    (void)state;
    json_t *s;
    s = symbol_summary(tu_source("tests/data/real/mxnet/legacy-ndarray-v0/save_000800-symbol.json"),
                       "{\"nodes\":17,\"ops\":[\"Activation\",\"BatchNorm\",\"FullyConnected\","
                       "\"SoftmaxOutput\"],\"variables\":[\"data\",\"fc1_weight\",\"fc1_bias\","
                       "\"fc2_weight\",\"fc2_bias\",\"fc3_weight\",\"fc3_bias\","
                       "\"batchnorm0_gamma\",\"batchnorm0_beta\",\"softmax_label\"],"
                       "\"heads\":[{\"name\":\"softmax\",\"output\":0}],\"mxnet_version\":800}");
    json_decref(s);

    s = symbol_summary(tu_source("tests/data/real/mxnet/go-test-v0.9/go_test-symbol.json"),
                       "{\"nodes\":8,\"ops\":[\"FullyConnected\",\"Reshape\",\"SoftmaxOutput\"],"
                       "\"variables\":[\"data\",\"pred_weight\",\"pred_bias\",\"softmax_label\"],"
                       "\"heads\":[{\"name\":\"softmax\",\"output\":0}],\"mxnet_version\":904}");
    json_t *r = param_report(s, tu_source("tests/data/real/mxnet/go-test-v0.9/go_test-0001.params"));
    assert_json(r, "{\"unbound_variables\":[\"data\",\"softmax_label\"],"
                   "\"unused_parameters\":[]}");
    json_decref(r);
    json_decref(s);

    s = symbol_summary(tu_source("tests/data/real/mxnet/sagemaker-linreg-v0.11/model-symbol.json"),
                       "{\"nodes\":6,\"ops\":[\"FullyConnected\",\"LinearRegressionOutput\"],"
                       "\"variables\":[\"data\",\"fc1_weight\",\"fc1_bias\",\"lin_reg_label\"],"
                       "\"heads\":[{\"name\":\"lro\",\"output\":0}],\"mxnet_version\":1100}");
    r = param_report(s, tu_source("tests/data/real/mxnet/sagemaker-linreg-v0.11/model-0000.params"));
    assert_json(r, "{\"unbound_variables\":[\"data\",\"lin_reg_label\"],"
                   "\"unused_parameters\":[]}");
    json_decref(r);
    json_decref(s);

    s = symbol_summary(tu_source("tests/data/real/mxnet/sagemaker-mnist-v1.4/model-symbol.json"),
                       "{\"nodes\":15,\"ops\":[\"Activation\",\"Flatten\",\"FullyConnected\","
                       "\"SoftmaxOutput\"],\"variables\":[\"data\",\"fullyconnected0_weight\","
                       "\"fullyconnected0_bias\",\"fullyconnected1_weight\","
                       "\"fullyconnected1_bias\",\"fullyconnected2_weight\","
                       "\"fullyconnected2_bias\",\"softmax_label\"],"
                       "\"heads\":[{\"name\":\"softmax\",\"output\":0}],\"mxnet_version\":10400}");
    r = param_report(s, tu_source("tests/data/real/mxnet/sagemaker-mnist-v1.4/model-0000.params"));
    assert_json(r, "{\"unbound_variables\":[\"data\",\"softmax_label\"],"
                   "\"unused_parameters\":[]}");
    json_decref(r);
    json_decref(s);

    /* model-shapes.json is a plain asset: neither probe claims it. */
    const char *shapes[] = {"tests/data/real/mxnet/sagemaker-linreg-v0.11/model-shapes.json",
                            "tests/data/real/mxnet/sagemaker-mnist-v1.4/model-shapes.json"};
    for (size_t i = 0; i < 2; i++) {
        size_t len;
        uint8_t *data = tu_read_file(tu_source(shapes[i]), &len);
        assert_null(mg_format_detect(data, len, "model-shapes.json"));
        free(data);
    }
}

/* ---- files from the test writer --------------------------------------------------- */

static char *run_writer(void)
{
    char *dir = tu_mkdtemp();
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s/gen'", tu_source("tests/data/write_mxnet.py"),
             dir);
    if (system(cmd) != 0)
        fail_msg("write_mxnet.py failed: %s", cmd);
    return dir;
}

static void check_written_file(const char *dir, const char *fname, const json_t *want)
{
    char path[8192];
    snprintf(path, sizeof path, "%s/gen/%s", dir, fname);
    size_t len;
    uint8_t *data = tu_read_file(path, &len);
    assert_ptr_equal(mg_format_detect(data, len, fname), &mg_format_mxnet_params);
    mg_parse_result res;
    mg_error err;
    mg_status st = parse_buf(&mg_format_mxnet_params, data, len, &res, &err);
    if (st != MG_OK)
        fail_msg("%s: %s", fname, err.message);
    const json_t *tensors = json_object_get(want, "tensors");
    assert_int_equal(res.count, json_array_size(tensors));
    for (size_t i = 0; i < res.count; i++) {
        const mg_tensor_entry *t = &res.tensors[i];
        const json_t *w = json_array_get(tensors, i);
        assert_string_equal(t->name, json_string_value(json_object_get(w, "name")));
        assert_string_equal(mg_dtype_name(t->dtype),
                            json_string_value(json_object_get(w, "dtype")));
        const json_t *shape = json_object_get(w, "shape");
        assert_int_equal(t->ndim, json_array_size(shape));
        for (uint32_t d = 0; d < t->ndim; d++)
            assert_int_equal(t->shape[d], (uint64_t)json_integer_value(json_array_get(shape, d)));
        assert_int_equal(t->offset, (uint64_t)json_integer_value(json_object_get(w, "offset")));
        assert_int_equal(t->data_offset, t->offset);
        assert_int_equal(t->nbytes, (uint64_t)json_integer_value(json_object_get(w, "nbytes")));
        assert_int_equal(mg_tensor_entry_check(t, len, &err), MG_OK);
        /* The bytes at [offset, offset+nbytes) are exactly the ones written. */
        unsigned seed = (unsigned)json_integer_value(json_object_get(w, "seed"));
        for (uint64_t j = 0; j < t->nbytes; j++) {
            if (data[t->data_offset + j] != (uint8_t)((seed + 13u * j) % 256u))
                fail_msg("%s: tensor %s byte %llu differs", fname, t->name,
                         (unsigned long long)j);
        }
    }
    if (!json_equal(json_object_get(want, "none"), json_object_get(res.metadata, "none")) ||
        !json_equal(json_object_get(want, "record_versions"),
                    json_object_get(res.metadata, "record_versions")) ||
        !json_equal(json_object_get(want, "arrays"), json_object_get(res.metadata, "arrays")))
        fail_msg("%s: metadata %s", fname, json_dumps(res.metadata, JSON_COMPACT));
    mg_parse_result_free(&res);
    free(data);
}

static void test_writer_roundtrip(void **state)
{
    (void)state;
    char *dir = run_writer();
    char path[8192];
    snprintf(path, sizeof path, "%s/gen/expected.json", dir);
    json_t *expected = json_load_file(path, 0, NULL);
    assert_non_null(expected);
    const char *fname;
    json_t *want;
    size_t files = 0, tensors = 0, dtypes_seen = 0;
    bool seen[32] = {false};
    json_object_foreach(expected, fname, want) {
        check_written_file(dir, fname, want);
        files++;
        const json_t *ts = json_object_get(want, "tensors");
        tensors += json_array_size(ts);
        for (size_t i = 0; i < json_array_size(ts); i++) {
            mg_dtype d = mg_dtype_from_name(
                json_string_value(json_object_get(json_array_get(ts, i), "dtype")));
            if (!seen[d])
                dtypes_seen++;
            seen[d] = true;
        }
    }
    /* The writer covers every version and every one of the 13 type flags. */
    assert_true(files >= 10);
    assert_true(tensors >= 80);
    assert_int_equal(dtypes_seen, 13);

    /* The generated checkpoint: symbol + params, cross-checked. */
    snprintf(path, sizeof path, "%s/gen/ckpt.json", dir);
    json_t *ckpt = json_load_file(path, 0, NULL);
    assert_non_null(ckpt);
    snprintf(path, sizeof path, "%s/gen/ckpt/ckpt-symbol.json", dir);
    json_t *sum = symbol_summary(path, NULL);
    snprintf(path, sizeof path, "%s/gen/ckpt/ckpt-0000.params", dir);
    json_t *report = param_report(sum, path);
    assert_true(json_equal(report, json_object_get(ckpt, "report")));
    json_decref(report);
    json_decref(sum);
    json_decref(ckpt);
    json_decref(expected);
    tu_rmtree(dir);
    free(dir);
}

/* ---- bad inputs ------------------------------------------------------------------- */

static size_t run_bad_dir(const char *rel, const mg_format *format)
{
    char tsv[4096];
    snprintf(tsv, sizeof tsv, "%s/expected.tsv", tu_source(rel));
    FILE *f = fopen(tsv, "r");
    if (f == NULL)
        fail_msg("cannot open %s", tsv);
    char line[4096];
    size_t n = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        char *tab1 = strchr(line, '\t');
        assert_non_null(tab1);
        *tab1 = '\0';
        int want = tab1[1] - '0';
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", tu_source(rel), line);
        size_t len;
        uint8_t *data = tu_read_file(path, &len);
        /* Content first, then the file name's claim: either way it is this parser. */
        assert_ptr_equal(mg_format_detect(data, len, line), format);
        mg_parse_result res;
        mg_error err;
        mg_status st = parse_buf(format, data, len, &res, &err);
        if ((int)st != want)
            fail_msg("%s: status %d, expected %d (%s)", line, st, want, err.message);
        if (st != MG_OK) {
            assert_true(strlen(err.message) > 0);
            assert_non_null(strstr(err.message, format == &mg_format_mxnet_params
                                                    ? "mxnet-params"
                                                    : "mxnet-symbol"));
        }
        for (size_t i = 0; st == MG_OK && i < res.count; i++)
            assert_int_equal(mg_tensor_entry_check(&res.tensors[i], len, &err), MG_OK);
        mg_parse_result_free(&res);
        free(data);
        n++;
    }
    fclose(f);
    return n;
}

static void test_bad_params(void **state)
{
    (void)state;
    assert_true(run_bad_dir("tests/data/bad/mxnet", &mg_format_mxnet_params) >= 50);
}

static void test_bad_symbols(void **state)
{
    (void)state;
    assert_true(run_bad_dir("tests/data/bad/symbol", &mg_format_mxnet_symbol) >= 60);
}

static mg_status parse_file(const char *rel, const mg_format *fmt, mg_parse_result *res,
                            mg_error *err)
{
    size_t len;
    uint8_t *data = tu_read_file(tu_source(rel), &len);
    mg_status st = parse_buf(fmt, data, len, res, err);
    free(data);
    return st;
}

/* Specific outcomes the expected.tsv codes alone do not show. */
static void test_bad_details(void **state)
{
    (void)state;
    mg_parse_result res;
    mg_error err;
    assert_int_equal(parse_file("tests/data/bad/mxnet/stype-1.params", &mg_format_mxnet_params,
                                &res, &err), MG_E_FORMAT);
    assert_non_null(strstr(err.message, "sparse storage is not supported"));
    mg_parse_result_free(&res);
    assert_int_equal(parse_file("tests/data/bad/mxnet/stype-2.params", &mg_format_mxnet_params,
                                &res, &err), MG_E_FORMAT);
    assert_non_null(strstr(err.message, "sparse storage is not supported"));
    mg_parse_result_free(&res);
    assert_int_equal(parse_file("tests/data/bad/mxnet/names-duplicate.params",
                                &mg_format_mxnet_params, &res, &err), MG_E_FORMAT);
    assert_non_null(strstr(err.message, "duplicate name 'arg:a'"));
    mg_parse_result_free(&res);

    /* A V3 none record keeps its name's place: the next tensor is still "arg:b". */
    assert_int_equal(parse_file("tests/data/bad/mxnet/v3-none-ndim-minus1.params",
                                &mg_format_mxnet_params, &res, &err), MG_OK);
    assert_int_equal(res.count, 1);
    assert_string_equal(res.tensors[0].name, "arg:b");
    assert_json(json_object_get(res.metadata, "none"), "[\"arg:none\"]");
    mg_parse_result_free(&res);

    assert_int_equal(parse_file("tests/data/bad/mxnet/type-flag-12-bf16.params",
                                &mg_format_mxnet_params, &res, &err), MG_OK);
    assert_int_equal(res.tensors[0].dtype, MG_DTYPE_BF16);
    assert_int_equal(res.tensors[0].nbytes, 16);
    mg_parse_result_free(&res);

    assert_int_equal(parse_file("tests/data/bad/mxnet/names-zero.params",
                                &mg_format_mxnet_params, &res, &err), MG_OK);
    assert_int_equal(res.count, 2);
    assert_string_equal(res.tensors[0].name, "0");
    assert_string_equal(res.tensors[1].name, "1");
    mg_parse_result_free(&res);

    assert_int_equal(parse_file("tests/data/bad/symbol/mxnet-version-missing-symbol.json",
                                &mg_format_mxnet_symbol, &res, &err), MG_OK);
    assert_int_equal(json_integer_value(json_object_get(res.metadata, "mxnet_version")), 800);
    mg_parse_result_free(&res);

    assert_int_equal(parse_file("tests/data/bad/symbol/unknown-op-symbol.json",
                                &mg_format_mxnet_symbol, &res, &err), MG_OK);
    assert_json(json_object_get(res.metadata, "ops"),
                "[\"FullyConnected\",\"MyCustomOp_v2\",\"SoftmaxOutput\"]");
    mg_parse_result_free(&res);

    assert_int_equal(parse_file("tests/data/bad/symbol/input-forward-reference-symbol.json",
                                &mg_format_mxnet_symbol, &res, &err), MG_E_FORMAT);
    assert_non_null(strstr(err.message, "is not an earlier node"));
    mg_parse_result_free(&res);
}

/* A symbol file over the JSON cap is refused as a limit before any parsing. */
static void test_symbol_size_cap(void **state)
{
    (void)state;
    size_t len = (size_t)MG_MAX_JSON_ASSET_BYTES + 1;
    uint8_t *data = malloc(len);
    assert_non_null(data);
    memset(data, ' ', len);
    memcpy(data, "{\"nodes\":[],\"arg_nodes\":[]}", 27);
    mg_parse_result res;
    mg_error err;
    assert_int_equal(parse_buf(&mg_format_mxnet_symbol, data, len, &res, &err), MG_E_LIMIT);
    mg_parse_result_free(&res);
    free(data);

    /* Within the byte cap but with more values than MG_MXNET_MAX_JSON_VALUES. */
    const char *head = "{\"nodes\": [", *tail = "0], \"arg_nodes\": [], \"heads\": []}";
    size_t n = MG_MXNET_MAX_JSON_VALUES;
    len = strlen(head) + 3 * n + strlen(tail);
    data = malloc(len);
    assert_non_null(data);
    size_t pos = strlen(head);
    memcpy(data, head, pos);
    for (size_t i = 0; i < n; i++, pos += 3)
        memcpy(data + pos, "[],", 3);
    memcpy(data + pos, tail, strlen(tail));
    assert_int_equal(parse_buf(&mg_format_mxnet_symbol, data, len, &res, &err), MG_E_LIMIT);
    assert_non_null(strstr(err.message, "JSON values"));
    mg_parse_result_free(&res);
    /* Commas and brackets inside strings do not count. */
    pos = strlen(head);
    memcpy(data + pos, "\"", 1);
    memcpy(data + pos + 3 * n - 1, "\"", 1);
    assert_int_equal(parse_buf(&mg_format_mxnet_symbol, data, len, &res, &err), MG_E_FORMAT);
    mg_parse_result_free(&res);
    free(data);
}

static void test_probes(void **state)
{
    (void)state;
    static const uint8_t magic[] = {0x12, 0x01, 0, 0, 0, 0, 0, 0};
    static const uint8_t header[16] = {0x12, 0x01};
    assert_true(mg_format_mxnet_params.probe(header, 16));
    assert_false(mg_format_mxnet_params.probe(header, 15));
    assert_false(mg_format_mxnet_params.probe(magic, 0));
    const char *yes = " \n{\"nodes\": [], \"arg_nodes\": []}";
    assert_true(mg_format_mxnet_symbol.probe((const uint8_t *)yes, strlen(yes)));
    const char *no[] = {"", "{", "   ", "[\"nodes\", \"arg_nodes\"]", "{\"nodes\": []}",
                        "{\"arg_nodes\": []}", "x{\"nodes\" \"arg_nodes\"}"};
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        assert_false(mg_format_mxnet_symbol.probe((const uint8_t *)no[i], strlen(no[i])));
    /* A safetensors file whose header is 0x112 bytes long starts with the list magic. */
    uint8_t st[8 + 0x112];
    memcpy(st, magic, 8);
    memset(st + 8, ' ', 0x112);
    memcpy(st + 8, "{\"__metadata__\":{\"a\":\"b\"}}", 26);
    assert_false(mg_format_mxnet_params.probe(st, sizeof st));
    assert_ptr_equal(mg_format_detect(st, sizeof st, "model.safetensors"), &mg_format_safetensors);
    static const uint8_t reserved[16] = {0x12, 0x01, 0, 0, 0, 0, 0, 0, 1};
    assert_false(mg_format_mxnet_params.probe(reserved, 16));
    assert_false(mg_format_mxnet_params.probe(magic, 8));
    /* Near the end of the buffer the needle is not read past its length. */
    assert_false(mg_format_mxnet_symbol.probe((const uint8_t *)"{\"nodes\" \"arg_node", 17));
}

static void test_checkpoint_report(void **state)
{
    (void)state;
    json_t *sum = json_loads("{\"variables\":[\"data\",\"w\",\"bn_mean\",\"x:y\",\"b\"]}", 0,
                             NULL);
    const char *names[] = {"arg:w", "aux:bn_mean", "arg:x:y", "b", "aux:w", "arg:", "other:b",
                           "arg:zz"};
    json_t *r = NULL;
    mg_error err = {0};
    assert_int_equal(mg_mxnet_checkpoint_report(sum, names, 8, &r, &err), MG_OK);
    /* "arg:w" and "aux:w" both bind to w; "arg:" binds to nothing; "other:b" keeps its
     * prefix. */
    assert_json(r, "{\"unbound_variables\":[\"data\"],"
                   "\"unused_parameters\":[\"arg:\",\"other:b\",\"arg:zz\"]}");
    json_decref(r);

    assert_int_equal(mg_mxnet_checkpoint_report(sum, NULL, 0, &r, &err), MG_OK);
    assert_json(r, "{\"unbound_variables\":[\"data\",\"w\",\"bn_mean\",\"x:y\",\"b\"],"
                   "\"unused_parameters\":[]}");
    json_decref(r);
    json_decref(sum);

    json_t *bad = json_loads("{\"variables\":[1]}", 0, NULL);
    assert_int_equal(mg_mxnet_checkpoint_report(bad, names, 1, &r, &err), MG_E_USAGE);
    assert_null(r);
    json_decref(bad);
    assert_int_equal(mg_mxnet_checkpoint_report(NULL, names, 1, &r, &err), MG_E_USAGE);
}

/* Every prefix of a valid file is refused cleanly, never read past. */
static void test_truncations(void **state)
{
    (void)state;
    size_t len;
    uint8_t *data = tu_read_file(tu_source("tests/data/real/mxnet/sagemaker-linreg-v0.11/"
                                           "model-0000.params"), &len);
    for (size_t n = 0; n < len; n++) {
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, data, n);
        mg_parse_result res;
        mg_error err;
        assert_int_equal(parse_buf(&mg_format_mxnet_params, copy, n, &res, &err), MG_E_FORMAT);
        mg_parse_result_free(&res);
        free(copy);
    }
    free(data);
    data = tu_read_file(tu_source("tests/data/real/mxnet/go-test-v0.9/go_test-symbol.json"), &len);
    for (size_t n = 0; n < len - 1; n++) {
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, data, n);
        mg_parse_result res;
        mg_error err;
        assert_int_equal(parse_buf(&mg_format_mxnet_symbol, copy, n, &res, &err), MG_E_FORMAT);
        mg_parse_result_free(&res);
        free(copy);
    }
    free(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_params),     cmocka_unit_test(test_real_symbols),
        cmocka_unit_test(test_writer_roundtrip), cmocka_unit_test(test_bad_params),
        cmocka_unit_test(test_bad_symbols),     cmocka_unit_test(test_bad_details),
        cmocka_unit_test(test_symbol_size_cap), cmocka_unit_test(test_probes),
        cmocka_unit_test(test_checkpoint_report), cmocka_unit_test(test_truncations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
