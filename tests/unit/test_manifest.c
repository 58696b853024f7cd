/* Signed manifests (SPEC §3): own-file names, path and time rules, the schema, signatures
 * before parsing, threshold over distinct keys, name binding, expiry and rollback state. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keys.h"
#include "manifest.h"
#include "policy.h"
#include "sig.h"
#include "testutil.h"

#define H64 "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
#define H128 H64 H64
#define NOW INT64_C(1800000000) /* 2027-01-15T08:00:00Z */

static const char *data_path(const char *name)
{
    static char buf[4][4096];
    static int slot;
    char *out = buf[slot++ % 4];
    snprintf(out, sizeof buf[0], "%s%s", tu_source("tests/data/sig/"), name);
    return out;
}

static char *file_line(const char *path, int n)
{
    size_t len;
    uint8_t *data = tu_read_file(path, &len);
    size_t pos = 0;
    for (int i = 0; i < n; i++) {
        const uint8_t *nl = memchr(data + pos, '\n', len - pos);
        assert_non_null(nl);
        pos = (size_t)(nl - data) + 1;
    }
    size_t end = pos;
    while (end < len && data[end] != '\n')
        end++;
    char *line = strndup((const char *)data + pos, end - pos);
    free(data);
    return line;
}

/* ---- a policy in memory ------------------------------------------------------------------ */

enum { K_ED, K_P256, K_MINI, K_ED_AS_MINI, K_ED_AGAIN, K_RSA, K_COUNT };

typedef struct fixture {
    mg_policy_key keys[K_COUNT];
    struct mg_policy pol;
    mg_policy_model entry;
    size_t key_idx[8];
    char *state_dir;
} fixture;

static mg_sig_key *pem_key(const char *name)
{
    size_t len;
    uint8_t *pem = tu_read_file(data_path(name), &len);
    mg_sig_key *key;
    mg_error err;
    if (mg_sig_key_from_pem(pem, len, &key, &err) != MG_OK)
        fail_msg("%s: %s", name, err.message);
    free(pem);
    return key;
}

static mg_sig_key *minisign_key(const char *name)
{
    char *line = file_line(data_path(name), 1);
    mg_sig_key *key;
    mg_error err;
    if (mg_sig_key_from_minisign(line, &key, &err) != MG_OK)
        fail_msg("%s: %s", name, err.message);
    free(line);
    return key;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    static const char *const names[K_COUNT] = {"ed", "p256", "mini", "ed-as-mini", "ed-again",
                                               "rsa"};
    for (int i = 0; i < K_COUNT; i++)
        f->keys[i].name = (char *)names[i];
    f->keys[K_ED].key = pem_key("ed25519.pub.pem");
    f->keys[K_P256].key = pem_key("p256.pub.pem");
    f->keys[K_MINI].key = minisign_key("minisign.pub");
    f->keys[K_ED_AS_MINI].key = minisign_key("ed25519.minisign.pub");
    f->keys[K_ED_AGAIN].key = pem_key("ed25519-crlf.pub.pem");
    f->keys[K_RSA].key = pem_key("rsa2048.pub.pem");
    f->pol.keys = f->keys;
    f->pol.key_count = K_COUNT;
    f->entry.name = (char *)"vec";
    f->entry.kind = MG_MODEL_MANIFEST;
    f->entry.keys = f->key_idx;
    f->entry.threshold = 1;
    f->state_dir = tu_mkdtemp();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < K_COUNT; i++)
        mg_sig_key_free(f->keys[i].key);
    tu_rmtree(f->state_dir);
    free(f->state_dir);
    free(f);
    return 0;
}

static void use_keys(fixture *f, unsigned threshold, size_t n, const size_t *idx)
{
    memcpy(f->key_idx, idx, n * sizeof *idx);
    f->entry.key_count = n;
    f->entry.threshold = threshold;
}

typedef struct loaded {
    uint8_t *data;
    size_t len;
} loaded;

static loaded load(const char *name)
{
    loaded l;
    l.data = tu_read_file(data_path(name), &l.len);
    return l;
}

static mg_sig_input sig_in(const char *filename, const loaded *l)
{
    mg_sig_input s = {filename, strstr(filename, ".minisig") != NULL, l->data, l->len};
    return s;
}

static mg_status verify(fixture *f, const loaded *m, const mg_sig_input *sigs, size_t n,
                        mg_error *err)
{
    mg_manifest man;
    mg_error_clear(err);
    mg_status st = mg_manifest_verify(&f->pol, &f->entry, m->data, m->len, sigs, n, &man, err);
    if (st == MG_OK) {
        assert_string_equal(man.name, f->entry.name);
        mg_manifest_free(&man);
    } else {
        assert_int_equal(err->status, st);
        assert_null(man.files);
    }
    return st;
}

/* ---- names, paths, times ------------------------------------------------------------------- */

static void test_own_files(void **state)
{
    (void)state;
    static const char *const own[] = {"manifest.json", "manifest.json.sig", "manifest.json.sig.1",
                                      "manifest.json.sig.9", "manifest.json.minisig"};
    static const char *const not_own[] = {"manifest.json.sig.0", "manifest.json.sig.10",
                                          "manifest.jsonx", "manifest.json.bak", "Manifest.json",
                                          "sub/manifest.json", "manifest.json.minisig.1", ""};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        assert_true(mg_manifest_is_own_file(own[i]));
    for (size_t i = 0; i < sizeof not_own / sizeof not_own[0]; i++)
        assert_false(mg_manifest_is_own_file(not_own[i]));
}

static void test_paths(void **state)
{
    (void)state;
    static const char *const good[] = {"a", "model.safetensors", "tokenizer/tokenizer.json",
                                       "a/b/c/d", ".hidden", "a/.b", "..a", "a..", "a b",
                                       "\xc3\xa9t\xc3\xa9.bin"};
    static const char *const bad[] = {"", "/abs", "a/", "a//b", "./a", "a/./b", "a/.", "..",
                                      "../a", "a/../b", "a/..", "a\\b", "\\a", "a\tb", "a\nb",
                                      "a\x7f", "/"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (!mg_manifest_path_ok(good[i]))
            fail_msg("path %zu refused", i);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (mg_manifest_path_ok(bad[i]))
            fail_msg("bad path %zu accepted", i);
    char *longp = malloc(MG_MANIFEST_MAX_PATH + 2);
    memset(longp, 'a', MG_MANIFEST_MAX_PATH);
    longp[MG_MANIFEST_MAX_PATH] = '\0';
    assert_true(mg_manifest_path_ok(longp));
    longp[MG_MANIFEST_MAX_PATH] = 'a';
    longp[MG_MANIFEST_MAX_PATH + 1] = '\0';
    assert_false(mg_manifest_path_ok(longp));
    free(longp);
}

static void test_times(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int64_t t;
    } good[] = {
        {"1970-01-01T00:00:00Z", 0},          {"2000-03-01T00:00:00Z", 951868800},
        {"2038-01-19T03:14:08Z", 2147483648}, {"2028-02-29T12:00:00Z", 1835438400},
        {"1969-12-31T23:59:59Z", -1},         {"2027-01-15T08:00:00Z", NOW},
        {"2000-02-29T00:00:00Z", 951782400},  {"9999-12-31T23:59:59Z", 253402300799},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int64_t t = 0;
        if (!mg_manifest_parse_time(good[i].text, &t) || t != good[i].t)
            fail_msg("%s -> %lld", good[i].text, (long long)t);
    }
    static const char *const bad[] = {
        "",  "2027-02-29T00:00:00Z",  "1900-02-29T00:00:00Z", "2027-13-01T00:00:00Z",
        "2027-00-01T00:00:00Z",       "2027-01-00T00:00:00Z", "2027-04-31T00:00:00Z",
        "2027-01-01T24:00:00Z",       "2027-01-01T00:60:00Z", "2027-01-01T00:00:60Z",
        "2027-01-01 00:00:00Z",       "2027-01-01T00:00:00",  "2027-01-01T00:00:00z",
        "2027-01-01T00:00:00+00:00",  "2027-01-01T00:00:00.5Z", "27-01-01T00:00:00Z",
        "2027-1-01T00:00:00Z",        "+027-01-01T00:00:00Z", "2027-01-01T00:00:00ZZ",
        "2027-0a-01T00:00:00Z",       "2027-01-01T0 :00:00Z",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t t;
        if (mg_manifest_parse_time(bad[i], &t))
            fail_msg("time '%s' accepted", bad[i]);
    }
}

/* ---- the schema ------------------------------------------------------------------------- */

static void test_parse_good(void **state)
{
    (void)state;
    static const char doc[] =
        "{\"modelgate_manifest\":1,\"name\":\"llama-tiny\",\"version\":7,"
        "\"expires\":\"2027-06-30T00:00:00Z\",\"files\":["
        "{\"path\":\"tokenizer/tokenizer.json\",\"size\":1234,\"sha512\":\"" H128 "\"},"
        "{\"path\":\"model.safetensors\",\"size\":1750560,\"sha256\":\"" H64 "\"}]}";
    mg_manifest m;
    mg_error err;
    assert_int_equal(mg_manifest_parse_unverified((const uint8_t *)doc, strlen(doc), NOW, &m, &err),
                     MG_OK);
    assert_string_equal(m.name, "llama-tiny");
    assert_int_equal(m.version, 7);
    assert_int_equal(m.file_count, 2);
    /* Sorted by path. */
    assert_string_equal(m.files[0].path, "model.safetensors");
    assert_int_equal(m.files[0].alg, MG_SHA256);
    assert_true(m.files[0].has_size);
    assert_int_equal(m.files[0].size, 1750560);
    assert_int_equal(m.files[0].digest[0], 0x58);
    assert_int_equal(m.files[0].digest[31], 0x03);
    assert_string_equal(m.files[1].path, "tokenizer/tokenizer.json");
    assert_int_equal(m.files[1].alg, MG_SHA512);
    assert_int_equal(m.files[1].size, 1234);
    assert_int_equal(m.files[1].digest[63], 0x03);
    mg_manifest_free(&m);
    /* The same manifest once it expired. */
    assert_int_equal(mg_manifest_parse_unverified((const uint8_t *)doc, strlen(doc),
                                                  INT64_C(1814400000), &m, &err),
                     MG_E_SIGNATURE);
    assert_non_null(strstr(err.message, "expired"));
    assert_null(m.files);
}

#define FILE1 "{\"path\":\"a\",\"size\":1,\"sha256\":\"" H64 "\"}"
#define HEAD "\"modelgate_manifest\":1,\"name\":\"m\",\"version\":1"

static void test_parse_bad(void **state)
{
    (void)state;
    static const struct {
        const char *doc;
        mg_status st;
        const char *why;
    } cases[] = {
        {"", MG_E_SIGNATURE, "empty"},
        {"[]", MG_E_SIGNATURE, "not an object"},
        {"{" HEAD ",\"files\":[" FILE1 "]", MG_E_SIGNATURE, "truncated"},
        {"{" HEAD ",\"files\":[" FILE1 "]} x", MG_E_SIGNATURE, "trailing data"},
        {"{" HEAD ",\"files\":[" FILE1 "],\"extra\":1}", MG_E_SIGNATURE, "unknown key"},
        {"{" HEAD ",\"name\":\"n\",\"files\":[" FILE1 "]}", MG_E_SIGNATURE, "duplicate key"},
        {"{\"modelgate_manifest\":2,\"name\":\"m\",\"version\":1,\"files\":[" FILE1 "]}",
         MG_E_SIGNATURE, "schema 2"},
        {"{\"modelgate_manifest\":\"1\",\"name\":\"m\",\"version\":1,\"files\":[" FILE1 "]}",
         MG_E_SIGNATURE, "schema string"},
        {"{\"name\":\"m\",\"version\":1,\"files\":[" FILE1 "]}", MG_E_SIGNATURE, "no schema"},
        {"{\"modelgate_manifest\":1,\"version\":1,\"files\":[" FILE1 "]}", MG_E_SIGNATURE,
         "no name"},
        {"{\"modelgate_manifest\":1,\"name\":\"\",\"version\":1,\"files\":[" FILE1 "]}",
         MG_E_SIGNATURE, "empty name"},
        {"{\"modelgate_manifest\":1,\"name\":7,\"version\":1,\"files\":[" FILE1 "]}",
         MG_E_SIGNATURE, "name number"},
        {"{\"modelgate_manifest\":1,\"name\":\"m\",\"version\":0,\"files\":[" FILE1 "]}",
         MG_E_SIGNATURE, "version 0"},
        {"{\"modelgate_manifest\":1,\"name\":\"m\",\"version\":-3,\"files\":[" FILE1 "]}",
         MG_E_SIGNATURE, "version negative"},
        {"{\"modelgate_manifest\":1,\"name\":\"m\",\"version\":1.0,\"files\":[" FILE1 "]}",
         MG_E_SIGNATURE, "version real"},
        {"{\"modelgate_manifest\":1,\"name\":\"m\",\"version\":\"1\",\"files\":[" FILE1 "]}",
         MG_E_SIGNATURE, "version string"},
        {"{\"modelgate_manifest\":1,\"name\":\"m\",\"version\":99999999999999999999,\"files\":["
         FILE1 "]}", MG_E_SIGNATURE, "version too big"},
        {"{\"modelgate_manifest\":1,\"name\":\"m\",\"files\":[" FILE1 "]}", MG_E_SIGNATURE,
         "no version"},
        {"{" HEAD ",\"expires\":\"2020-01-01T00:00:00Z\",\"files\":[" FILE1 "]}", MG_E_SIGNATURE,
         "expired"},
        {"{" HEAD ",\"expires\":\"2027-01-15T08:00:00Z\",\"files\":[" FILE1 "]}", MG_E_SIGNATURE,
         "expires now"},
        {"{" HEAD ",\"expires\":\"2099-01-01\",\"files\":[" FILE1 "]}", MG_E_SIGNATURE,
         "date only"},
        {"{" HEAD ",\"expires\":4102444800,\"files\":[" FILE1 "]}", MG_E_SIGNATURE,
         "expires number"},
        {"{" HEAD "}", MG_E_SIGNATURE, "no files"},
        {"{" HEAD ",\"files\":[]}", MG_E_SIGNATURE, "empty files"},
        {"{" HEAD ",\"files\":{}}", MG_E_SIGNATURE, "files object"},
        {"{" HEAD ",\"files\":[1]}", MG_E_SIGNATURE, "file number"},
        {"{" HEAD ",\"files\":[" FILE1 "," FILE1 "]}", MG_E_SIGNATURE, "duplicate path"},
        {"{" HEAD ",\"files\":[{\"path\":\"../a\",\"size\":1,\"sha256\":\"" H64 "\"}]}",
         MG_E_SIGNATURE, "dot-dot"},
        {"{" HEAD ",\"files\":[{\"path\":\"/etc/passwd\",\"size\":1,\"sha256\":\"" H64 "\"}]}",
         MG_E_SIGNATURE, "absolute"},
        {"{" HEAD ",\"files\":[{\"path\":\"a\\\\b\",\"size\":1,\"sha256\":\"" H64 "\"}]}",
         MG_E_SIGNATURE, "backslash"},
        {"{" HEAD ",\"files\":[{\"path\":\"a/./b\",\"size\":1,\"sha256\":\"" H64 "\"}]}",
         MG_E_SIGNATURE, "dot"},
        {"{" HEAD ",\"files\":[{\"path\":\"a//b\",\"size\":1,\"sha256\":\"" H64 "\"}]}",
         MG_E_SIGNATURE, "empty component"},
        {"{" HEAD ",\"files\":[{\"path\":\"a\\u0001\",\"size\":1,\"sha256\":\"" H64 "\"}]}",
         MG_E_SIGNATURE, "control char"},
        {"{" HEAD ",\"files\":[{\"path\":\"a\\u0000b\",\"size\":1,\"sha256\":\"" H64 "\"}]}",
         MG_E_SIGNATURE, "escaped NUL"},
        {"{" HEAD ",\"files\":[{\"path\":\"manifest.json.sig\",\"size\":1,\"sha256\":\"" H64
         "\"}]}", MG_E_SIGNATURE, "own file"},
        {"{" HEAD ",\"files\":[{\"path\":\"a\",\"sha256\":\"" H64 "\"}]}", MG_E_SIGNATURE,
         "no size"},
        {"{" HEAD ",\"files\":[{\"path\":\"a\",\"size\":-1,\"sha256\":\"" H64 "\"}]}",
         MG_E_SIGNATURE, "negative size"},
        {"{" HEAD ",\"files\":[{\"path\":\"a\",\"size\":\"1\",\"sha256\":\"" H64 "\"}]}",
         MG_E_SIGNATURE, "string size"},
        {"{" HEAD ",\"files\":[{\"path\":\"a\",\"size\":1.5,\"sha256\":\"" H64 "\"}]}",
         MG_E_SIGNATURE, "real size"},
        {"{" HEAD ",\"files\":[{\"path\":\"a\",\"size\":1099511627777,\"sha256\":\"" H64 "\"}]}",
         MG_E_LIMIT, "size over 1 TiB"},
        {"{" HEAD ",\"files\":[{\"path\":\"a\",\"size\":1}]}", MG_E_SIGNATURE, "no digest"},
        {"{" HEAD ",\"files\":[{\"path\":\"a\",\"size\":1,\"sha256\":\"" H64 "\",\"sha512\":\""
         H128 "\"}]}", MG_E_SIGNATURE, "two digests"},
        {"{" HEAD ",\"files\":[{\"path\":\"a\",\"size\":1,\"sha256\":\"" H64 "0\"}]}",
         MG_E_SIGNATURE, "65 hex"},
        {"{" HEAD ",\"files\":[{\"path\":\"a\",\"size\":1,\"sha256\":\"" H128 "\"}]}",
         MG_E_SIGNATURE, "sha256 with 128 hex"},
        {"{" HEAD ",\"files\":[{\"path\":\"a\",\"size\":1,\"sha512\":\"" H64 "\"}]}",
         MG_E_SIGNATURE, "sha512 with 64 hex"},
        {"{" HEAD ",\"files\":[{\"path\":\"a\",\"size\":1,\"sha256\":\"g" H64 "\"}]}",
         MG_E_SIGNATURE, "non-hex"},
        {"{" HEAD ",\"files\":[{\"path\":\"a\",\"size\":1,\"sha256\":\"" H64 "\",\"mode\":1}]}",
         MG_E_SIGNATURE, "unknown file key"},
        {"{" HEAD ",\"files\":[{\"path\":\"a\",\"size\":1,\"md5\":\"00\"}]}", MG_E_SIGNATURE,
         "unknown algorithm"},
        {"{" HEAD ",\"files\":[{\"path\":1,\"size\":1,\"sha256\":\"" H64 "\"}]}", MG_E_SIGNATURE,
         "path number"},
        {"{" HEAD ",\"files\":[{\"path\":\"\\udc00\",\"size\":1,\"sha256\":\"" H64 "\"}]}",
         MG_E_SIGNATURE, "lone surrogate"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mg_manifest m;
        mg_error err;
        mg_error_clear(&err);
        mg_status st = mg_manifest_parse_unverified((const uint8_t *)cases[i].doc,
                                                    strlen(cases[i].doc), NOW, &m, &err);
        if (st != cases[i].st)
            fail_msg("%s: got %d (%s), expected %d", cases[i].why, st, err.message, cases[i].st);
        assert_int_equal(err.status, st);
        assert_null(m.files);
        assert_null(m.name);
    }
    /* Raw NUL and invalid UTF-8 bytes. */
    static const uint8_t nul[] = "{\"modelgate_manifest\":1\0}";
    mg_manifest m;
    mg_error err;
    assert_int_equal(mg_manifest_parse_unverified(nul, sizeof nul - 1, NOW, &m, &err),
                     MG_E_SIGNATURE);
    static const char bad_utf8[] = "{" HEAD ",\"files\":[{\"path\":\"\xff\",\"size\":1,\"sha256\":\""
                                   H64 "\"}]}";
    assert_int_equal(mg_manifest_parse_unverified((const uint8_t *)bad_utf8, strlen(bad_utf8),
                                                  NOW, &m, &err),
                     MG_E_SIGNATURE);
}

/* ---- signatures and threshold ------------------------------------------------------------- */

static void test_verify_each_kind(void **state)
{
    fixture *f = *state;
    loaded m = load("manifest-vec.json");
    loaded ed = load("manifest-vec.json.ed25519.sig");
    loaded p256 = load("manifest-vec.json.p256.sig");
    loaded mini = load("manifest-vec.json.minisig");
    loaded ed_mini = load("manifest-vec.json.ed25519.minisig");
    mg_error err;
    mg_manifest man;

    size_t k_ed[] = {K_ED};
    use_keys(f, 1, 1, k_ed);
    mg_sig_input s1[] = {sig_in("manifest.json.sig", &ed)};
    assert_int_equal(mg_manifest_verify(&f->pol, &f->entry, m.data, m.len, s1, 1, &man, &err),
                     MG_OK);
    assert_string_equal(man.name, "vec");
    assert_int_equal(man.version, 3);
    assert_int_equal(man.file_count, 1);
    assert_string_equal(man.files[0].path, "weights/model.safetensors");
    assert_int_equal(man.files[0].size, 6);
    mg_manifest_free(&man);

    size_t k_p256[] = {K_P256};
    use_keys(f, 1, 1, k_p256);
    mg_sig_input s2[] = {sig_in("manifest.json.sig", &p256)};
    assert_int_equal(verify(f, &m, s2, 1, &err), MG_OK);
    /* A key not listed for the model. */
    assert_int_equal(verify(f, &m, s1, 1, &err), MG_E_SIGNATURE);
    assert_string_equal(err.model, "vec");
    assert_string_equal(err.file, "manifest.json.sig");

    size_t k_mini[] = {K_MINI};
    use_keys(f, 1, 1, k_mini);
    mg_sig_input s3[] = {sig_in("manifest.json.minisig", &mini)};
    assert_int_equal(verify(f, &m, s3, 1, &err), MG_OK);
    /* Raw signature with only a minisign key listed. */
    assert_int_equal(verify(f, &m, s1, 1, &err), MG_E_SIGNATURE);
    /* .minisig made by an independent implementation for the Ed25519 PEM key. */
    size_t k_edm[] = {K_ED_AS_MINI};
    use_keys(f, 1, 1, k_edm);
    mg_sig_input s4[] = {sig_in("manifest.json.minisig", &ed_mini)};
    assert_int_equal(verify(f, &m, s4, 1, &err), MG_OK);
    assert_int_equal(verify(f, &m, s3, 1, &err), MG_E_SIGNATURE);

    /* A byte flipped in the manifest, and in each signature. */
    use_keys(f, 1, 1, k_ed);
    m.data[20] ^= 1;
    assert_int_equal(verify(f, &m, s1, 1, &err), MG_E_SIGNATURE);
    m.data[20] ^= 1;
    ed.data[5] ^= 1;
    assert_int_equal(verify(f, &m, s1, 1, &err), MG_E_SIGNATURE);
    ed.data[5] ^= 1;
    /* Not signed at all. */
    assert_int_equal(verify(f, &m, NULL, 0, &err), MG_E_SIGNATURE);
    assert_non_null(strstr(err.message, "not signed"));
    /* Another model's manifest. */
    f->entry.name = (char *)"other";
    assert_int_equal(verify(f, &m, s1, 1, &err), MG_E_SIGNATURE);
    assert_non_null(strstr(err.message, "for model 'vec'"));
    f->entry.name = (char *)"vec";
    free(m.data);
    free(ed.data);
    free(p256.data);
    free(mini.data);
    free(ed_mini.data);
}

static void test_threshold_distinct(void **state)
{
    fixture *f = *state;
    loaded m = load("manifest-vec.json");
    loaded ed = load("manifest-vec.json.ed25519.sig");
    loaded p256 = load("manifest-vec.json.p256.sig");
    loaded mini = load("manifest-vec.json.minisig");
    loaded ed_mini = load("manifest-vec.json.ed25519.minisig");
    loaded junk = load("forged-ed25519-bitflip.sig");
    mg_error err;

    size_t k2[] = {K_ED, K_P256};
    use_keys(f, 2, 2, k2);
    mg_sig_input both[] = {sig_in("manifest.json.sig", &ed), sig_in("manifest.json.sig.1", &p256)};
    assert_int_equal(verify(f, &m, both, 2, &err), MG_OK);
    assert_int_equal(verify(f, &m, both, 1, &err), MG_E_SIGNATURE);
    assert_non_null(strstr(err.message, "1 of the 2"));
    /* One key signing twice counts once. */
    mg_sig_input twice[] = {sig_in("manifest.json.sig", &ed), sig_in("manifest.json.sig.1", &ed)};
    assert_int_equal(verify(f, &m, twice, 2, &err), MG_E_SIGNATURE);
    /* Two policy names for the same public key count once. */
    size_t same[] = {K_ED, K_ED_AGAIN};
    use_keys(f, 2, 2, same);
    assert_int_equal(verify(f, &m, twice, 2, &err), MG_E_SIGNATURE);
    /* A raw signature and a .minisig by the same Ed25519 key count once. */
    size_t as_mini[] = {K_ED, K_ED_AS_MINI};
    use_keys(f, 2, 2, as_mini);
    mg_sig_input raw_and_mini[] = {sig_in("manifest.json.sig", &ed),
                                   sig_in("manifest.json.minisig", &ed_mini)};
    assert_int_equal(verify(f, &m, raw_and_mini, 2, &err), MG_E_SIGNATURE);
    use_keys(f, 1, 2, as_mini);
    assert_int_equal(verify(f, &m, raw_and_mini, 2, &err), MG_OK);
    /* Three distinct keys, three kinds of file. */
    size_t k3[] = {K_ED, K_P256, K_MINI};
    use_keys(f, 3, 3, k3);
    mg_sig_input three[] = {sig_in("manifest.json.sig", &ed), sig_in("manifest.json.sig.1", &p256),
                            sig_in("manifest.json.minisig", &mini)};
    assert_int_equal(verify(f, &m, three, 3, &err), MG_OK);
    /* Threshold above the number of keys: never met. */
    use_keys(f, 4, 3, k3);
    assert_int_equal(verify(f, &m, three, 3, &err), MG_E_SIGNATURE);
    /* One bad signature among enough good ones is ignored. */
    use_keys(f, 2, 3, k3);
    mg_sig_input with_junk[] = {sig_in("manifest.json.sig", &junk),
                                sig_in("manifest.json.sig.1", &p256),
                                sig_in("manifest.json.minisig", &mini)};
    assert_int_equal(verify(f, &m, with_junk, 3, &err), MG_OK);
    use_keys(f, 3, 3, k3);
    assert_int_equal(verify(f, &m, with_junk, 3, &err), MG_E_SIGNATURE);
    assert_string_equal(err.file, "manifest.json.sig");
    free(m.data);
    free(ed.data);
    free(p256.data);
    free(mini.data);
    free(ed_mini.data);
    free(junk.data);
}

static void test_caps(void **state)
{
    fixture *f = *state;
    loaded m = load("manifest-vec.json");
    loaded ed = load("manifest-vec.json.ed25519.sig");
    size_t k_ed[] = {K_ED};
    use_keys(f, 1, 1, k_ed);
    mg_error err;
    loaded big = {calloc(1, MG_MAX_MANIFEST_BYTES + 1), MG_MAX_MANIFEST_BYTES + 1};
    mg_sig_input s1[] = {sig_in("manifest.json.sig", &ed)};
    assert_int_equal(verify(f, &big, s1, 1, &err), MG_E_LIMIT);
    loaded big_sig = {calloc(1, MG_MAX_SIGNATURE_BYTES + 1), MG_MAX_SIGNATURE_BYTES + 1};
    mg_sig_input s2[] = {sig_in("manifest.json.sig.1", &big_sig)};
    assert_int_equal(verify(f, &m, s2, 1, &err), MG_E_LIMIT);
    assert_string_equal(err.file, "manifest.json.sig.1");
    mg_sig_input many[12];
    for (size_t i = 0; i < 12; i++)
        many[i] = s1[0];
    assert_int_equal(verify(f, &m, many, 12, &err), MG_E_LIMIT);
    assert_int_equal(verify(f, &m, many, 11, &err), MG_OK);
    free(big.data);
    free(big_sig.data);
    free(m.data);
    free(ed.data);
}

/* ---- rollback and expiry, with manifests signed here by the committed test key ------------- */

static loaded signed_manifest(const char *name, unsigned version, const char *expires,
                              loaded *sig)
{
    char text[1024];
    snprintf(text, sizeof text,
             "{\"modelgate_manifest\":1,\"name\":\"%s\",\"version\":%u,%s%s%s\"files\":["
             "{\"path\":\"w.bin\",\"size\":6,\"sha256\":\"" H64 "\"}]}\n",
             name, version, expires ? "\"expires\":\"" : "", expires ? expires : "",
             expires ? "\"," : "");
    loaded m = {(uint8_t *)strdup(text), strlen(text)};
    mg_error err;
    if (mg_sign_buffer(data_path("ed25519.key.pem"), m.data, m.len, &sig->data, &sig->len,
                       &err) != MG_OK)
        fail_msg("sign: %s", err.message);
    return m;
}

static void test_rollback(void **state)
{
    fixture *f = *state;
    size_t k_ed[] = {K_ED};
    use_keys(f, 1, 1, k_ed);
    f->pol.state_dir = f->state_dir;
    loaded s2, s5, s7;
    loaded m2 = signed_manifest("vec", 2, NULL, &s2);
    loaded m5 = signed_manifest("vec", 5, NULL, &s5);
    loaded m7 = signed_manifest("vec", 7, "2099-01-01T00:00:00Z", &s7);
    mg_sig_input i2[] = {sig_in("manifest.json.sig", &s2)};
    mg_sig_input i5[] = {sig_in("manifest.json.sig", &s5)};
    mg_sig_input i7[] = {sig_in("manifest.json.sig", &s7)};
    mg_error err;
    uint64_t v;
    assert_int_equal(mg_manifest_stored_version(&f->pol, "vec", &v, &err), MG_OK);
    assert_int_equal(v, 0);
    assert_int_equal(verify(f, &m2, i2, 1, &err), MG_OK);
    assert_int_equal(mg_manifest_store_version(&f->pol, &f->entry, 5, &err), MG_OK);
    assert_int_equal(mg_manifest_stored_version(&f->pol, "vec", &v, &err), MG_OK);
    assert_int_equal(v, 5);
    size_t len;
    char path[4200];
    snprintf(path, sizeof path, "%s/vec.version", f->state_dir);
    uint8_t *content = tu_read_file(path, &len);
    assert_int_equal(len, 2);
    assert_memory_equal(content, "5\n", 2);
    free(content);
    assert_int_equal(verify(f, &m2, i2, 1, &err), MG_E_SIGNATURE);
    assert_non_null(strstr(err.message, "rollback"));
    assert_int_equal(verify(f, &m5, i5, 1, &err), MG_OK);
    assert_int_equal(verify(f, &m7, i7, 1, &err), MG_OK);
    /* Never lowered. */
    assert_int_equal(mg_manifest_store_version(&f->pol, &f->entry, 3, &err), MG_OK);
    assert_int_equal(mg_manifest_stored_version(&f->pol, "vec", &v, &err), MG_OK);
    assert_int_equal(v, 5);
    assert_int_equal(mg_manifest_store_version(&f->pol, &f->entry, 7, &err), MG_OK);
    assert_int_equal(verify(f, &m5, i5, 1, &err), MG_E_SIGNATURE);
    /* Other models are not affected. */
    assert_int_equal(mg_manifest_stored_version(&f->pol, "other", &v, &err), MG_OK);
    assert_int_equal(v, 0);
    /* No temporary file is left behind. */
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "test $(ls -A '%s' | wc -l) -eq 1", f->state_dir);
    assert_int_equal(system(cmd), 0);
    /* A corrupt state file fails closed, as does a symlink in its place. */
    tu_write_file(f->state_dir, "vec.version", "7x\n", 3);
    assert_int_equal(verify(f, &m7, i7, 1, &err), MG_E_IO);
    tu_write_file(f->state_dir, "vec.version", "", 0);
    assert_int_equal(verify(f, &m7, i7, 1, &err), MG_E_IO);
    tu_write_file(f->state_dir, "vec.version", "99999999999999999999\n", 21);
    assert_int_equal(verify(f, &m7, i7, 1, &err), MG_E_IO);
    unlink(path);
    tu_write_file(f->state_dir, "target", "1\n", 2);
    assert_int_equal(symlink("target", path), 0);
    assert_int_equal(verify(f, &m7, i7, 1, &err), MG_E_IO);
    unlink(path);
    /* A state_dir that does not exist yet is created on the first store. */
    char sub[4200];
    snprintf(sub, sizeof sub, "%s/new", f->state_dir);
    f->pol.state_dir = sub;
    assert_int_equal(verify(f, &m2, i2, 1, &err), MG_OK);
    assert_int_equal(mg_manifest_store_version(&f->pol, &f->entry, 2, &err), MG_OK);
    assert_int_equal(mg_manifest_stored_version(&f->pol, "vec", &v, &err), MG_OK);
    assert_int_equal(v, 2);
    /* Without state_dir: no rollback check, store is a no-op. */
    f->pol.state_dir = NULL;
    assert_int_equal(mg_manifest_store_version(&f->pol, &f->entry, 9, &err), MG_OK);
    assert_int_equal(verify(f, &m2, i2, 1, &err), MG_OK);
    free(m2.data), free(m5.data), free(m7.data);
    free(s2.data), free(s5.data), free(s7.data);
}

static void test_expired_signed(void **state)
{
    fixture *f = *state;
    size_t k_ed[] = {K_ED};
    use_keys(f, 1, 1, k_ed);
    loaded s;
    loaded m = signed_manifest("vec", 1, "2001-01-01T00:00:00Z", &s);
    mg_sig_input in[] = {sig_in("manifest.json.sig", &s)};
    mg_error err;
    assert_int_equal(verify(f, &m, in, 1, &err), MG_E_SIGNATURE);
    assert_non_null(strstr(err.message, "expired"));
    assert_string_equal(err.file, "manifest.json");
    free(m.data);
    free(s.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_own_files),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_times),
        cmocka_unit_test(test_parse_good),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test_setup_teardown(test_verify_each_kind, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threshold_distinct, setup, teardown),
        cmocka_unit_test_setup_teardown(test_caps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired_signed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
