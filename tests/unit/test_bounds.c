/* Bounded memory before a tree is built: the JSON pre-scan (values, depth, cost) applied to
 * every JSON the project parses, and the per-load parser budget. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "format/format.h"
#include "manifest.h"
#include "policy.h"
#include "util/json.h"

/* head + n copies of item (comma-separated) + tail, NUL-terminated. */
static uint8_t *repeat(const char *head, const char *item, size_t n, const char *tail,
                       size_t *len)
{
    size_t hl = strlen(head), il = strlen(item), tl = strlen(tail);
    size_t total = hl + n * (il + 1) + tl;
    uint8_t *b = malloc(total + 1);
    assert_non_null(b);
    memcpy(b, head, hl);
    size_t p = hl;
    for (size_t i = 0; i < n; i++) {
        memcpy(b + p, item, il);
        p += il;
        b[p++] = ',';
    }
    if (n > 0)
        p--; /* no comma after the last item */
    memcpy(b + p, tail, tl);
    p += tl;
    b[p] = '\0';
    *len = p;
    return b;
}

static uint8_t *nested(size_t depth, size_t *len)
{
    uint8_t *b = malloc(2 * depth + 1);
    assert_non_null(b);
    memset(b, '[', depth);
    memset(b + depth, ']', depth);
    b[2 * depth] = '\0';
    *len = 2 * depth;
    return b;
}

static void test_prescan(void **state)
{
    (void)state;
    mg_json_caps caps = {10, 3};
    mg_error err;
    uint64_t cost = 0;
    size_t len;
    /* 1 + 3 containers + 6 commas = 10 values: at the cap. */
    const char *ok = "[{\"a\":1,\"b\":[1,2]},3,4,5,6]";
    assert_int_equal(mg_json_prescan((const uint8_t *)ok, strlen(ok), &caps, "t", &cost, &err),
                     MG_OK);
    assert_true(cost >= 232 + 2 * 135 + 8 * 40);
    const char *over = "[{\"a\":1,\"b\":[1,2]},3,4,5,6,7]";
    assert_int_equal(mg_json_prescan((const uint8_t *)over, strlen(over), &caps, "t", NULL, &err),
                     MG_E_LIMIT);
    assert_non_null(strstr(err.message, "more than 10 JSON values"));
    /* Brackets, commas and escaped quotes inside strings do not count. */
    const char *str = "[\"[[[[,,,,,,,,,,,,\\\"]]]]{{{{\",1]";
    assert_int_equal(mg_json_prescan((const uint8_t *)str, strlen(str), &caps, "t", NULL, &err),
                     MG_OK);
    uint8_t *d = nested(3, &len);
    assert_int_equal(mg_json_prescan(d, len, &caps, "t", NULL, &err), MG_OK);
    free(d);
    d = nested(4, &len);
    assert_int_equal(mg_json_prescan(d, len, &caps, "t", NULL, &err), MG_E_LIMIT);
    assert_non_null(strstr(err.message, "deeper than 3"));
    free(d);
    /* Empty input: no read at all. */
    assert_int_equal(mg_json_prescan(NULL, 0, &caps, "t", NULL, &err), MG_OK);
    /* mg_json_parse refuses over the cap before jansson sees the bytes. */
    assert_null(mg_json_parse((const uint8_t *)over, strlen(over), "t", MG_E_FORMAT, &caps, &err));
    assert_int_equal(err.status, MG_E_LIMIT);
}

static mg_status parse_with(const mg_format *f, const uint8_t *data, size_t len,
                            mg_budget *budget, mg_error *err)
{
    mg_parse_result res;
    memset(&res, 0, sizeof res);
    mg_error_clear(err);
    res.budget = budget;
    mg_status st = f->parse(data, len, &res, err);
    mg_parse_result_free(&res);
    return st;
}

/* A safetensors file whose header is `hdr`. */
static uint8_t *st_file(const uint8_t *hdr, size_t hlen, size_t *len)
{
    uint8_t *b = malloc(8 + hlen);
    assert_non_null(b);
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    memcpy(b + 8, hdr, hlen);
    *len = 8 + hlen;
    return b;
}

/* Each kind of JSON gets its own cap on values and on depth, checked before the tree. */
static void test_every_json_capped(void **state)
{
    (void)state;
    mg_error err;
    size_t len, flen;
    uint8_t *doc, *file;

    /* safetensors header: {"a":[{},{},...]} over 8,000,000 values */
    doc = repeat("{\"a\":[", "{}", 8000001, "]}", &len);
    file = st_file(doc, len, &flen);
    assert_int_equal(parse_with(&mg_format_safetensors, file, flen, NULL, &err), MG_E_LIMIT);
    assert_non_null(strstr(err.message, "safetensors header: more than 8000000 JSON values"));
    free(file);
    free(doc);
    doc = nested(17, &len);
    file = st_file(doc, len, &flen);
    assert_int_equal(parse_with(&mg_format_safetensors, file, flen, NULL, &err), MG_E_LIMIT);
    free(file);
    free(doc);

    /* safetensors index over 4,000,000 values, and too deep */
    doc = repeat("{\"weight_map\":{\"a\":[", "[]", 4000001, "]}}", &len);
    assert_int_equal(parse_with(&mg_format_safetensors_index, doc, len, NULL, &err), MG_E_LIMIT);
    assert_non_null(strstr(err.message, "safetensors index: more than 4000000 JSON values"));
    free(doc);
    doc = repeat("{\"weight_map\":{\"a\":", "[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]", 1, "}}", &len);
    assert_int_equal(parse_with(&mg_format_safetensors_index, doc, len, NULL, &err), MG_E_LIMIT);
    assert_non_null(strstr(err.message, "deeper than 16"));
    free(doc);

    /* MXNet symbol */
    doc = repeat("{\"nodes\":[", "{}", 1000001, "],\"arg_nodes\":[],\"heads\":[]}", &len);
    assert_int_equal(parse_with(&mg_format_mxnet_symbol, doc, len, NULL, &err), MG_E_LIMIT);
    free(doc);

    /* manifest (signed, but still capped) */
    mg_manifest man;
    doc = repeat("{\"files\":[", "{}", 1000001, "]}", &len);
    assert_int_equal(mg_manifest_parse_unverified(doc, len, 0, &man, &err), MG_E_LIMIT);
    assert_non_null(strstr(err.message, "manifest: more than 1000000 JSON values"));
    free(doc);
    doc = nested(17, &len);
    assert_int_equal(mg_manifest_parse_unverified(doc, len, 0, &man, &err), MG_E_LIMIT);
    free(doc);

    /* policy: refused as a policy, the message names the cap */
    mg_policy *pol = NULL;
    doc = repeat("{\"modelgate_policy\":1,\"models\":[", "[]", 1000001, "]}", &len);
    assert_int_equal(mg_policy_from_buffer(doc, len, "/nonexistent", &pol, &err), MG_E_POLICY);
    assert_null(pol);
    assert_non_null(strstr(err.message, "more than 1000000 JSON values"));
    free(doc);
    doc = nested(17, &len);
    assert_int_equal(mg_policy_from_buffer(doc, len, "/nonexistent", &pol, &err), MG_E_POLICY);
    assert_non_null(strstr(err.message, "deeper than 16"));
    free(doc);
}

/* The budget is charged before memory is made: JSON trees, tensor tables, names, blobs. */
static void test_budget(void **state)
{
    (void)state;
    mg_error err;
    size_t flen;
    /* A valid header of 1000 tensors: its tree costs far more than 64 KiB. */
    size_t cap = 1000 * 80 + 16, p = 1;
    char *hdr = malloc(cap);
    assert_non_null(hdr);
    hdr[0] = '{';
    for (int i = 0; i < 1000; i++)
        p += (size_t)snprintf(hdr + p, cap - p, "%s\"t%d\":{\"dtype\":\"U8\",\"shape\":[0],"
                              "\"data_offsets\":[0,0]}", i ? "," : "", i);
    hdr[p++] = '}';
    uint8_t *file = st_file((const uint8_t *)hdr, p, &flen);
    mg_budget small = {64 << 10, 0};
    assert_int_equal(parse_with(&mg_format_safetensors, file, flen, &small, &err), MG_E_LIMIT);
    assert_non_null(strstr(err.message, "limits.parser_memory"));
    mg_budget enough = {64 << 20, 0};
    assert_int_equal(parse_with(&mg_format_safetensors, file, flen, &enough, &err), MG_OK);
    assert_true(enough.used > 1000 * 200); /* tree + table + names were charged */
    assert_int_equal(parse_with(&mg_format_safetensors, file, flen, NULL, &err), MG_OK);
    free(file);
    free(hdr);

    /* Blobs (inflated members) and the tensor table, one budget across results. */
    mg_budget b = {1 << 20, 0};
    mg_parse_result r1, r2;
    memset(&r1, 0, sizeof r1);
    memset(&r2, 0, sizeof r2);
    r1.budget = r2.budget = &b;
    uint32_t idx;
    uint8_t *data;
    assert_int_equal(mg_parse_add_blob(&r1, 600 << 10, &idx, &data, &err), MG_OK);
    assert_int_equal(mg_parse_add_blob(&r2, 600 << 10, &idx, &data, &err), MG_E_LIMIT);
    assert_int_equal(r2.blob_count, 0);
    mg_tensor_entry t;
    memset(&t, 0, sizeof t);
    mg_status st = MG_OK;
    size_t added = 0;
    while (st == MG_OK && added < 100000) {
        st = mg_parse_add_tensor(&r2, &t, "name", 4, &err);
        added += st == MG_OK;
    }
    assert_int_equal(st, MG_E_LIMIT);
    assert_true(added > 100 && added < 10000);
    assert_true(b.used <= b.limit);
    mg_parse_result_free(&r1);
    mg_parse_result_free(&r2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prescan),
        cmocka_unit_test(test_every_json_capped),
        cmocka_unit_test(test_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
