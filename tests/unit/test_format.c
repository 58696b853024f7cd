/* Format detection (src/format/format.c): a weak probe never beats a strict parse; JSON
 * formats are recognised by name, never by a substring of an asset; empty files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "digest.h"
#include "format/format.h"
#include "testutil.h"
#include "util/hex.h"
#include "util/json.h"

/* A valid safetensors file whose JSON header is exactly `n` bytes (padded with spaces, as the
 * reference writer pads to 8): one U8 tensor "t" of one byte when it fits, else no tensor. */
static uint8_t *safetensors_with_header(uint64_t n, size_t *len)
{
    static const char one[] = "{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}";
    const char *hdr = n >= sizeof one - 1 ? one : "{}";
    size_t hl = strlen(hdr), data = hdr == one ? 1 : 0;
    assert_true(n >= hl);
    *len = 8 + (size_t)n + data;
    uint8_t *buf = malloc(*len);
    assert_non_null(buf);
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)(n >> (8 * i));
    memcpy(buf + 8, hdr, hl);
    memset(buf + 8 + hl, ' ', (size_t)n - hl);
    if (data)
        buf[8 + n] = 0x2a;
    return buf;
}

static void assert_parses(const mg_format *f, const uint8_t *data, size_t len)
{
    mg_parse_result res;
    mg_error err;
    memset(&res, 0, sizeof res);
    mg_status st = f->parse(data, len, &res, &err);
    if (st != MG_OK)
        fail_msg("%s: %s", f->name, err.message);
    mg_parse_result_free(&res);
}

static const mg_format *detect_text(const char *text, const char *name);

/* Every 8-aligned header length up to 64 KiB is detected as safetensors, whatever the name;
 * the pickle probe matches exactly the lengths whose low bytes are 0x80 0x02..0x05. */
static void every_header_length(void **state)
{
    (void)state;
    size_t overlaps = 0;
    for (uint64_t n = 8; n <= 65536; n += 8) {
        size_t len;
        uint8_t *buf = safetensors_with_header(n, &len);
        if (mg_format_pickle.probe(buf, len)) {
            assert_true(n == 640 || n == 896 || n == 1152 || n == 1408);
            overlaps++;
        }
        const mg_format *a = mg_format_detect(buf, len, "model.safetensors");
        const mg_format *b = mg_format_detect(buf, len, "weights");
        if (a != &mg_format_safetensors || b != &mg_format_safetensors)
            fail_msg("header of %llu bytes detected as %s / %s", (unsigned long long)n,
                     a != NULL ? a->name : "asset", b != NULL ? b->name : "asset");
        /* Parse every length where probes overlap, and a sample of the others. */
        if (mg_format_pickle.probe(buf, len) || n % 1024 == 8)
            assert_parses(&mg_format_safetensors, buf, len);
        free(buf);
    }
    assert_int_equal(overlaps, 4);
}

/* The same for a header whose length starts with the zip signature "PK\3\4" (67,324,752
 * bytes): the npz probe matches, the strict parse decides. */
static void zip_signature_header_length(void **state)
{
    (void)state;
    size_t len;
    uint8_t *buf = safetensors_with_header(0x04034B50u, &len);
    assert_true(mg_format_npz.probe(buf, len));
    assert_ptr_equal(mg_format_detect(buf, len, "weights"), &mg_format_safetensors);
    free(buf);
}

/* When no candidate parses, the file is still refused: the name's claim gives the error,
 * else the strongest probe (pickle before safetensors). Real pickles stay pickles. */
static void broken_overlaps_stay_refused(void **state)
{
    (void)state;
    size_t len;
    uint8_t *buf = safetensors_with_header(640, &len);
    len--; /* the tensor's byte is missing: both probes still match, neither parses */
    assert_true(mg_format_safetensors.probe(buf, len) && mg_format_pickle.probe(buf, len));
    assert_ptr_equal(mg_format_detect(buf, len, "model.safetensors"), &mg_format_safetensors);
    assert_ptr_equal(mg_format_detect(buf, len, "weights"), &mg_format_pickle);
    free(buf);
    /* pickle.dumps({}, protocol=2) and protocol 4 (with its FRAME). */
    static const uint8_t p2[] = {0x80, 0x02, '}', 'q', 0x00, '.'};
    static const uint8_t p4[] = {0x80, 0x04, 0x95, 0x04, 0, 0, 0, 0, 0, 0, 0, '}', 0x94, '.'};
    assert_ptr_equal(mg_format_detect(p2, sizeof p2, "x.bin"), &mg_format_pickle);
    assert_ptr_equal(mg_format_detect(p4, sizeof p4, "model.safetensors"), &mg_format_pickle);
}

/* Text assets that start with a magic word are not that format. */
static void text_that_starts_with_a_magic(void **state)
{
    (void)state;
    static const char readme[] = "GGUF quantisations of Llama-2-7B, made with llama.cpp.\n";
    assert_null(detect_text(readme, "README.md"));
    assert_null(detect_text(readme, "GGUF"));
    /* Still GGUF: a real header, and a file too short to hold the version. */
    static const uint8_t v3[] = {'G', 'G', 'U', 'F', 3, 0, 0, 0, 0, 0, 0, 0};
    assert_ptr_equal(mg_format_detect(v3, sizeof v3, "x.bin"), &mg_format_gguf);
    assert_ptr_equal(mg_format_detect(v3, 6, "x.bin"), &mg_format_gguf);
    assert_ptr_equal(detect_text(readme, "notes.gguf"), &mg_format_gguf);
}

static const char tokenizer[] =
    "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\"added_tokens\":[],"
    "\"model\":{\"type\":\"BPE\",\"vocab\":{\"weight_map\":0,\"nodes\":1,\"arg_nodes\":2,"
    "\"heads\":3},\"merges\":[\"weight _map\"]}}";
static const char pt_index[] =
    "{\"metadata\":{\"total_size\":13476839424},\"weight_map\":{\"lm_head.weight\":"
    "\"pytorch_model-00002-of-00002.bin\",\"model.embed_tokens.weight\":"
    "\"pytorch_model-00001-of-00002.bin\"}}";
static const char graph_config[] =
    "{\"model_type\":\"gnn\",\"nodes\":[],\"arg_nodes\":[],\"heads\":[[0,0,0]]}";
static const char st_index[] =
    "{\"metadata\":{\"total_size\":1},\"weight_map\":{\"t\":\"model-00001-of-00001.safetensors\"}}";

static const mg_format *detect_text(const char *text, const char *name)
{
    return mg_format_detect((const uint8_t *)text, strlen(text), name);
}

/* JSON assets are never claimed by content: only a name ending in -symbol.json or
 * .safetensors.index.json makes a JSON file a format. */
static void json_formats_by_name(void **state)
{
    (void)state;
    assert_null(detect_text(tokenizer, "tokenizer.json"));
    assert_null(detect_text(pt_index, "pytorch_model.bin.index.json"));
    assert_null(detect_text(st_index, "pytorch_model.bin.index.json"));
    assert_null(detect_text(graph_config, "config.json"));
    assert_null(detect_text(st_index, "model.safetensors.index.json.bak"));
    assert_ptr_equal(detect_text(st_index, "model.safetensors.index.json"),
                     &mg_format_safetensors_index);
    assert_ptr_equal(detect_text(st_index, "unet/diffusion_pytorch_model.safetensors.index.json"),
                     &mg_format_safetensors_index);
    /* A real MXNet graph: a format under its checkpoint name, an asset under any other. */
    size_t len;
    uint8_t *sym = tu_read_file(
        tu_source("tests/data/real/mxnet/sagemaker-mnist-v1.4/model-symbol.json"), &len);
    assert_ptr_equal(mg_format_detect(sym, len, "model-symbol.json"), &mg_format_mxnet_symbol);
    assert_null(mg_format_detect(sym, len, "graph.json"));
    free(sym);
    /* A file named as a JSON format is that format, and fails with its parser's error. */
    assert_ptr_equal(detect_text(tokenizer, "model.safetensors.index.json"),
                     &mg_format_safetensors_index);
    assert_ptr_equal(detect_text(tokenizer, "net-symbol.json"), &mg_format_mxnet_symbol);
}

/* An empty file: no memory behind it (NULL), a name that claims a JSON format. */
static void empty_files(void **state)
{
    (void)state;
    static const char *const names[] = {"net-symbol.json", "model.safetensors.index.json",
                                        "model.safetensors", "x.npy", "x.npz", "x.gguf",
                                        "x-0000.params", "x.pt"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const mg_format *f = mg_format_detect(NULL, 0, names[i]);
        assert_non_null(f);
        mg_parse_result res;
        mg_error err;
        memset(&res, 0, sizeof res);
        if (f->parse((const uint8_t *)"", 0, &res, &err) != MG_E_FORMAT)
            fail_msg("%s: empty file not refused as malformed", names[i]);
        mg_parse_result_free(&res);
    }
    assert_null(mg_format_detect(NULL, 0, "config.json"));
    mg_error err;
    assert_null(mg_json_parse(NULL, 0, "index", MG_E_FORMAT, &mg_json_caps_st_index, &err));
    assert_int_equal(err.status, MG_E_FORMAT);
}

static void hex_sha256(const void *data, size_t len, char out[65])
{
    uint8_t d[MG_DIGEST_MAX];
    mg_error err;
    assert_int_equal(mg_digest_buffer(MG_SHA256, data, len, d, &err), MG_OK);
    mg_hex_encode(d, 32, out);
}

/* Through the public API: an empty asset loads, and its data pointer is valid (not NULL). */
static void empty_asset_through_the_api(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    char sub[4096], pol[8192], policy[4200], h1[65], h2[65];
    snprintf(sub, sizeof sub, "%s/model", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    size_t len;
    uint8_t *st = safetensors_with_header(640, &len);
    tu_write_file(sub, "model.safetensors", st, len);
    tu_write_file(sub, "added_tokens.json", "", 0);
    hex_sha256(st, len, h1);
    hex_sha256("", 0, h2);
    free(st);
    snprintf(pol, sizeof pol,
             "{\"modelgate_policy\":1,\"models\":[{\"name\":\"m\",\"source\":\"%s/\","
             "\"files\":{\"model.safetensors\":{\"sha256\":\"%s\"},"
             "\"added_tokens.json\":{\"sha256\":\"%s\"}}}]}",
             sub, h1, h2);
    tu_write_file(dir, "policy.json", pol, strlen(pol));
    snprintf(policy, sizeof policy, "%s/policy.json", dir);
    assert_int_equal(chmod(policy, 0600), 0);
    mg_policy *p;
    mg_model *m;
    mg_error err;
    assert_int_equal(mg_policy_open(policy, NULL, &p, &err), MG_OK);
    if (mg_model_load(p, "m", NULL, &m, &err) != MG_OK)
        fail_msg("%s", err.message);
    const void *data = NULL;
    size_t n = 1;
    assert_int_equal(mg_model_asset(m, "added_tokens.json", &data, &n, &err), MG_OK);
    assert_non_null(data);
    assert_int_equal(n, 0);
    mg_file_info fi;
    assert_int_equal(mg_model_file(m, 0, &fi), MG_OK);
    assert_string_equal(fi.path, "added_tokens.json");
    assert_non_null(fi.data);
    assert_non_null(mg_model_find_tensor(m, "t")); /* the 640-byte header: safetensors */
    mg_model_close(m);
    mg_policy_close(p);
    tu_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_header_length),
        cmocka_unit_test(zip_signature_header_length),
        cmocka_unit_test(broken_overlaps_stay_refused),
        cmocka_unit_test(text_that_starts_with_a_magic),
        cmocka_unit_test(json_formats_by_name),
        cmocka_unit_test(empty_files),
        cmocka_unit_test(empty_asset_through_the_api),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
