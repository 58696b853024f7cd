/* Signatures: strict base64, PEM and minisign keys, signatures made by the real tools
 * (openssl CLI, Python cryptography, minisign), committed forgeries that must fail, the
 * trust.md §2.5 vectors, keygen and signing round trips. Data: tests/data/sig/ (make.sh). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keys.h"
#include "sig.h"
#include "testutil.h"
#include "util/base64.h"

static const char *data_path(const char *name)
{
    static char buf[4][4096];
    static int slot;
    char *out = buf[slot++ % 4];
    snprintf(out, sizeof buf[0], "%s", tu_source("tests/data/sig/"));
    strncat(out, name, sizeof buf[0] - strlen(out) - 1);
    return out;
}

/* Line `n` (0-based) of a small text file, without its newline, malloc'd. */
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

static bool is_minisign_key_file(const char *name)
{
    size_t n = strlen(name);
    return n > 4 && strcmp(name + n - 4, ".pub") == 0;
}

/* A key from tests/data/sig: PEM, or a minisign .pub file (its second line). */
static mg_status load_key(const char *name, mg_sig_key **key, mg_error *err)
{
    if (is_minisign_key_file(name)) {
        char *line = file_line(data_path(name), 1);
        mg_status st = mg_sig_key_from_minisign(line, key, err);
        free(line);
        return st;
    }
    size_t len;
    uint8_t *pem = tu_read_file(data_path(name), &len);
    mg_status st = mg_sig_key_from_pem(pem, len, key, err);
    free(pem);
    return st;
}

static mg_status load_key_abs(const char *path, mg_sig_key **key, mg_error *err)
{
    size_t len;
    uint8_t *pem = tu_read_file(path, &len);
    mg_status st = mg_sig_key_from_pem(pem, len, key, err);
    free(pem);
    return st;
}

/* Split a TSV line in place into up to `max` fields; returns the count. */
static int split_tsv(char *line, char **fields, int max)
{
    int n = 0;
    char *p = line;
    while (n < max) {
        fields[n++] = p;
        char *tab = strchr(p, '\t');
        if (tab == NULL)
            break;
        *tab = '\0';
        p = tab + 1;
    }
    char *nl = strchr(fields[n - 1], '\n');
    if (nl != NULL)
        *nl = '\0';
    return n;
}

/* ---- base64 ---------------------------------------------------------------------------- */

static void test_base64_strict(void **state)
{
    (void)state;
    uint8_t out[16];
    size_t n;
    assert_true(mg_base64_decode("aGVsbG8=", 8, out, sizeof out, &n));
    assert_int_equal(n, 5);
    assert_memory_equal(out, "hello", 5);
    assert_true(mg_base64_decode("aGVsbG8h", 8, out, sizeof out, &n));
    assert_int_equal(n, 6);
    assert_true(mg_base64_decode("aGU=", 4, out, sizeof out, &n));
    assert_int_equal(n, 2);
    assert_true(mg_base64_decode("aA==", 4, out, sizeof out, &n));
    assert_int_equal(n, 1);
    assert_true(mg_base64_decode("", 0, out, sizeof out, &n));
    assert_int_equal(n, 0);
    /* Non-zero unused bits: a second spelling of the same bytes. */
    assert_false(mg_base64_decode("aB==", 4, out, sizeof out, &n));
    assert_false(mg_base64_decode("aGV=", 4, out, sizeof out, &n));
    /* Length, padding, alphabet, whitespace. */
    assert_false(mg_base64_decode("aGVsbG8", 7, out, sizeof out, &n));
    assert_false(mg_base64_decode("aGVsbG==", 8, out, sizeof out, &n)); /* non-zero bits */
    assert_false(mg_base64_decode("a===", 4, out, sizeof out, &n));
    assert_false(mg_base64_decode("====", 4, out, sizeof out, &n));
    assert_false(mg_base64_decode("aA==aA==", 8, out, sizeof out, &n));
    assert_false(mg_base64_decode("aG-s", 4, out, sizeof out, &n));
    assert_false(mg_base64_decode("aG_s", 4, out, sizeof out, &n));
    assert_false(mg_base64_decode("aG s", 4, out, sizeof out, &n));
    assert_false(mg_base64_decode("aGVs\nbG8h", 9, out, sizeof out, &n));
    /* Too small an output buffer. */
    assert_false(mg_base64_decode("aGVsbG8h", 8, out, 5, &n));
    /* Round trip of every length up to 16. */
    for (size_t len = 0; len <= 16; len++) {
        uint8_t in[16];
        for (size_t i = 0; i < len; i++)
            in[i] = (uint8_t)(i * 37 + 200);
        char enc[32];
        mg_base64_encode(in, len, enc);
        assert_int_equal(strlen(enc), mg_base64_encoded_len(len));
        assert_true(mg_base64_decode(enc, strlen(enc), out, sizeof out, &n));
        assert_int_equal(n, len);
        assert_memory_equal(out, in, len);
    }
}

/* ---- keys ------------------------------------------------------------------------------ */

static void test_keys_table(void **state)
{
    (void)state;
    FILE *f = fopen(data_path("keys.tsv"), "r");
    assert_non_null(f);
    char line[1024];
    int rows = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        char *fields[3] = {NULL, NULL, NULL};
        assert_int_equal(split_tsv(line, fields, 3), 3);
        mg_sig_key *key = NULL;
        mg_error err;
        mg_error_clear(&err);
        size_t len;
        uint8_t *pem = tu_read_file(data_path(fields[0]), &len);
        mg_status st = mg_sig_key_from_pem(pem, len, &key, &err);
        free(pem);
        if (st != (mg_status)atoi(fields[1]))
            fail_msg("%s (%s): got %d (%s), expected %s", fields[0], fields[2], st, err.message,
                     fields[1]);
        if (st == MG_OK) {
            assert_non_null(key);
            assert_false(mg_sig_key_is_minisign(key));
        } else {
            assert_null(key);
            assert_int_equal(err.status, st);
            assert_true(strlen(err.message) > 0);
        }
        mg_sig_key_free(key);
        rows++;
    }
    fclose(f);
    assert_true(rows >= 20);
}

static void test_key_types(void **state)
{
    (void)state;
    static const struct {
        const char *file;
        mg_sig_key_type type;
    } cases[] = {
        {"ed25519.pub.pem", MG_SIG_ED25519},   {"p256.pub.pem", MG_SIG_ECDSA_P256},
        {"p384.pub.pem", MG_SIG_ECDSA_P384},   {"rsa2048.pub.pem", MG_SIG_RSA},
        {"minisign.pub", MG_SIG_MINISIGN},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mg_sig_key *key;
        mg_error err;
        assert_int_equal(load_key(cases[i].file, &key, &err), MG_OK);
        assert_int_equal(mg_sig_key_type_of(key), cases[i].type);
        assert_int_equal(mg_sig_key_is_minisign(key), cases[i].type == MG_SIG_MINISIGN);
        mg_sig_key_free(key);
    }
}

static void test_minisign_key_strings(void **state)
{
    (void)state;
    mg_sig_key *key;
    mg_error err;
    /* trust.md §2.5 */
    assert_int_equal(mg_sig_key_from_minisign("RWSdwHV5pZ07TVoo+JFdi1zf0RD/C+Ibwlj6k11+ro55skOFy6YxKgk6",
                                              &key, &err),
                     MG_OK);
    mg_sig_key_free(key);
    static const char *const bad[] = {
        "",
        "RWSdwHV5pZ07TVoo+JFdi1zf0RD/C+Ibwlj6k11+ro55skOFy6YxKgk",    /* 55 chars */
        "RWSdwHV5pZ07TVoo+JFdi1zf0RD/C+Ibwlj6k11+ro55skOFy6YxKgk6\n", /* newline */
        " RWSdwHV5pZ07TVoo+JFdi1zf0RD/C+Ibwlj6k11+ro55skOFy6YxKgk6",  /* space */
        "RWSdwHV5pZ07TVoo+JFdi1zf0RD/C+Ibwlj6k11+ro55skOFy6YxKgk6AAAA",
        "RWSdwHV5pZ07TVoo+JFdi1zf0RD/C+Ibwlj6k11+ro55skOFy6YxKg==", /* 40 bytes */
        "RXSdwHV5pZ07TVoo+JFdi1zf0RD/C+Ibwlj6k11+ro55skOFy6YxKgk6", /* algorithm "Eq" */
        "RUSdwHV5pZ07TVoo+JFdi1zf0RD/C+Ibwlj6k11+ro55skOFy6YxKgk6", /* "ED" is a signature id */
        "RWSdwHV5pZ07TVoo-JFdi1zf0RD_C+Ibwlj6k11+ro55skOFy6YxKgk6", /* url-safe alphabet */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        key = (mg_sig_key *)1;
        mg_error_clear(&err);
        if (mg_sig_key_from_minisign(bad[i], &key, &err) != MG_E_POLICY)
            fail_msg("minisign key %zu accepted", i);
        assert_null(key);
    }
}

static void test_key_same(void **state)
{
    (void)state;
    mg_sig_key *ed_pem, *ed_pem2, *ed_mini, *other, *mini, *p256;
    mg_error err;
    assert_int_equal(load_key("ed25519.pub.pem", &ed_pem, &err), MG_OK);
    assert_int_equal(load_key("ed25519-crlf.pub.pem", &ed_pem2, &err), MG_OK);
    assert_int_equal(load_key("ed25519.minisign.pub", &ed_mini, &err), MG_OK);
    assert_int_equal(load_key("ed25519-other.pub.pem", &other, &err), MG_OK);
    assert_int_equal(load_key("minisign.pub", &mini, &err), MG_OK);
    assert_int_equal(load_key("p256.pub.pem", &p256, &err), MG_OK);
    assert_true(mg_sig_key_same(ed_pem, ed_pem));
    assert_true(mg_sig_key_same(ed_pem, ed_pem2));
    /* The same Ed25519 public key as PEM and as minisign: one key. */
    assert_true(mg_sig_key_same(ed_pem, ed_mini));
    assert_true(mg_sig_key_same(ed_mini, ed_pem));
    assert_false(mg_sig_key_same(ed_pem, other));
    assert_false(mg_sig_key_same(ed_mini, mini));
    assert_false(mg_sig_key_same(ed_pem, p256));
    assert_false(mg_sig_key_same(p256, mini));
    mg_sig_key_free(ed_pem);
    mg_sig_key_free(ed_pem2);
    mg_sig_key_free(ed_mini);
    mg_sig_key_free(other);
    mg_sig_key_free(mini);
    mg_sig_key_free(p256);
}

/* ---- signatures -------------------------------------------------------------------------- */

static void test_vectors_table(void **state)
{
    (void)state;
    FILE *f = fopen(data_path("vectors.tsv"), "r");
    assert_non_null(f);
    char line[1024];
    int rows = 0, good = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        char *fl[6] = {NULL, NULL, NULL, NULL, NULL, NULL};
        assert_int_equal(split_tsv(line, fl, 6), 6);
        mg_sig_key *key;
        mg_error err;
        mg_error_clear(&err);
        if (load_key(fl[0], &key, &err) != MG_OK)
            fail_msg("%s: %s", fl[0], err.message);
        size_t msg_len, sig_len;
        uint8_t *msg = tu_read_file(data_path(fl[1]), &msg_len);
        uint8_t *sig = tu_read_file(data_path(fl[2]), &sig_len);
        mg_status st = strcmp(fl[3], "minisig") == 0
                           ? mg_sig_verify_minisig(key, msg, msg_len, sig, sig_len, &err)
                           : mg_sig_verify_raw(key, msg, msg_len, sig, sig_len, &err);
        if (st != (mg_status)atoi(fl[4]))
            fail_msg("%s over %s with %s (%s): got %d (%s), expected %s", fl[2], fl[1], fl[0],
                     fl[5], st, err.message, fl[4]);
        if (st != MG_OK) {
            assert_int_equal(err.status, MG_E_SIGNATURE);
            assert_true(strlen(err.message) > 0);
        } else {
            good++;
        }
        free(msg);
        free(sig);
        mg_sig_key_free(key);
        rows++;
    }
    fclose(f);
    assert_true(rows >= 50);
    assert_true(good >= 14);
}

/* trust.md §2.5, literally: the prehashed vector verifies, the legacy one is refused with a
 * message that says why, and a changed message fails. */
static void test_trustmd_vectors(void **state)
{
    (void)state;
    static const char pk[] = "RWSdwHV5pZ07TVoo+JFdi1zf0RD/C+Ibwlj6k11+ro55skOFy6YxKgk6";
    static const char ed[] =
        "untrusted comment: test vector\n"
        "RUSdwHV5pZ07TUtdtn7Ect9wqNtiSbnjymB3P/HHpmXzCvGplaEAuO8s2xyPF2vVJ29X9cX3Mh/jcOFP8CZxTXAx"
        "qunF4wKDIAY=\n"
        "trusted comment: file:hello.txt version:1\n"
        "0A3IwKkU/dhs3DTDzEcG35o0qzMaCTE6G4/LVSsRDyhw7mDwl2mSwpXJCLFdkF91TXPTE9imMR5JCG4rpTBIBA==\n";
    static const char legacy[] =
        "untrusted comment: test vector legacy\n"
        "RWSdwHV5pZ07TXLVxwe8bGz53bGvRixTE7SyKpQKpkDekdZURGdWj19oeGQbfVeT3SMeF8oj3sdnl3uevg38A2gx"
        "O6OlGaeYgwg=\n"
        "trusted comment: file:hello.txt legacy\n"
        "wZPpqzjPpErNym+PnSVKO2wwh8ucFqouzNEUEgv3dMaECLi6jSfEYzYxBOtiNlzymYYlCdE03cw9+PDPeePDDA==\n";
    mg_sig_key *key;
    mg_error err;
    assert_int_equal(mg_sig_key_from_minisign(pk, &key, &err), MG_OK);
    const uint8_t *hello = (const uint8_t *)"hello\n";
    assert_int_equal(mg_sig_verify_minisig(key, hello, 6, (const uint8_t *)ed, strlen(ed), &err),
                     MG_OK);
    assert_int_equal(mg_sig_verify_minisig(key, (const uint8_t *)"hello!", 6, (const uint8_t *)ed,
                                           strlen(ed), &err),
                     MG_E_SIGNATURE);
    assert_int_equal(mg_sig_verify_minisig(key, hello, 6, (const uint8_t *)legacy, strlen(legacy),
                                           &err),
                     MG_E_SIGNATURE);
    assert_non_null(strstr(err.message, "legacy"));
    /* The trusted comment is covered by the global signature. */
    char edited[sizeof ed];
    memcpy(edited, ed, sizeof ed);
    char *v = strstr(edited, "version:1");
    v[8] = '2';
    assert_int_equal(mg_sig_verify_minisig(key, hello, 6, (const uint8_t *)edited, strlen(edited),
                                           &err),
                     MG_E_SIGNATURE);
    assert_non_null(strstr(err.message, "global"));
    /* A minisign key never verifies a raw signature. */
    assert_int_equal(mg_sig_verify_raw(key, hello, 6, (const uint8_t *)"x", 1, &err),
                     MG_E_SIGNATURE);
    mg_sig_key_free(key);
}

static void test_key_id_message_and_kinds(void **state)
{
    (void)state;
    mg_sig_key *mini, *ed;
    mg_error err;
    assert_int_equal(load_key("minisign.pub", &mini, &err), MG_OK);
    assert_int_equal(load_key("ed25519.pub.pem", &ed, &err), MG_OK);
    size_t ml, sl;
    uint8_t *msg = tu_read_file(data_path("msg.txt"), &ml);
    uint8_t *sig = tu_read_file(data_path("forged-otherkey.minisig"), &sl);
    assert_int_equal(mg_sig_verify_minisig(mini, msg, ml, sig, sl, &err), MG_E_SIGNATURE);
    assert_non_null(strstr(err.message, "made by minisign key"));
    /* A PEM key does not verify a .minisig. */
    free(sig);
    sig = tu_read_file(data_path("msg.minisig"), &sl);
    assert_int_equal(mg_sig_verify_minisig(ed, msg, ml, sig, sl, &err), MG_E_SIGNATURE);
    assert_int_equal(mg_sig_verify_minisig(mini, msg, ml, sig, sl, &err), MG_OK);
    /* Over the size cap. */
    uint8_t *big = calloc(1, MG_MINISIG_MAX_BYTES + 1);
    memcpy(big, sig, sl);
    assert_int_equal(mg_sig_verify_minisig(mini, msg, ml, big, MG_MINISIG_MAX_BYTES + 1, &err),
                     MG_E_SIGNATURE);
    /* A trusted comment of 8192 - 17 bytes is the longest accepted line 3. */
    free(big);
    free(sig);
    free(msg);
    mg_sig_key_free(mini);
    mg_sig_key_free(ed);
}

static void test_policy_signature(void **state)
{
    (void)state;
    size_t kl, ml, sl, okl;
    uint8_t *key = tu_read_file(data_path("ed25519.pub.pem"), &kl);
    uint8_t *other_key = tu_read_file(data_path("ed25519-other.pub.pem"), &okl);
    uint8_t *msg = tu_read_file(data_path("msg.txt"), &ml);
    uint8_t *sig = tu_read_file(data_path("ed25519.openssl.sig"), &sl);
    mg_error err;
    mg_error_clear(&err);
    assert_int_equal(mg_sig_verify_policy(key, kl, msg, ml, sig, sl, &err), MG_OK);
    assert_int_equal(mg_sig_verify_policy(other_key, okl, msg, ml, sig, sl, &err), MG_E_POLICY);
    assert_int_equal(err.status, MG_E_POLICY);
    msg[0] ^= 1;
    assert_int_equal(mg_sig_verify_policy(key, kl, msg, ml, sig, sl, &err), MG_E_POLICY);
    msg[0] ^= 1;
    assert_int_equal(mg_sig_verify_policy(key, kl, msg, ml, sig, 0, &err), MG_E_POLICY);
    assert_int_equal(mg_sig_verify_policy((const uint8_t *)"junk", 4, msg, ml, sig, sl, &err),
                     MG_E_POLICY);
    free(key);
    free(other_key);
    free(msg);
    free(sig);
}

/* ---- keygen and signing ------------------------------------------------------------------- */

static void check_mode(const char *path, mode_t mode)
{
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, mode);
}

static void test_keygen_and_sign(void **state)
{
    (void)state;
    static const struct {
        const char *type;
        mg_sig_key_type key_type;
    } types[] = {
        {"ed25519", MG_SIG_ED25519}, {"ecdsa-p256", MG_SIG_ECDSA_P256}, {"rsa-3072", MG_SIG_RSA}};
    char *dir = tu_mkdtemp();
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        char prefix[4096], key_path[4200], pub_path[4200];
        snprintf(prefix, sizeof prefix, "%s/%s", dir, types[i].type);
        snprintf(key_path, sizeof key_path, "%s.key", prefix);
        snprintf(pub_path, sizeof pub_path, "%s.pub", prefix);
        mg_error err;
        mg_error_clear(&err);
        assert_int_equal(mg_keygen(types[i].type, prefix, &err), MG_OK);
        check_mode(key_path, 0600);
        check_mode(pub_path, 0644);
        size_t kl;
        uint8_t *priv = tu_read_file(key_path, &kl);
        assert_non_null(memmem(priv, kl, "-----BEGIN PRIVATE KEY-----", 27)); /* PKCS#8 */
        /* Never overwritten. */
        assert_int_equal(mg_keygen(types[i].type, prefix, &err), MG_E_USAGE);
        size_t kl2;
        uint8_t *priv2 = tu_read_file(key_path, &kl2);
        assert_int_equal(kl, kl2);
        assert_memory_equal(priv, priv2, kl);
        free(priv2);
        /* The message names no key material. */
        assert_null(strstr(err.message, "BEGIN"));
        free(priv);
        mg_sig_key *pub;
        assert_int_equal(load_key_abs(pub_path, &pub, &err), MG_OK);
        assert_int_equal(mg_sig_key_type_of(pub), types[i].key_type);
        const uint8_t msg[] = "manifest bytes\n";
        uint8_t *sig;
        size_t sl;
        assert_int_equal(mg_sign_buffer(key_path, msg, sizeof msg - 1, &sig, &sl, &err), MG_OK);
        assert_int_equal(mg_sig_verify_raw(pub, msg, sizeof msg - 1, sig, sl, &err), MG_OK);
        sig[sl / 2] ^= 0x10;
        assert_int_equal(mg_sig_verify_raw(pub, msg, sizeof msg - 1, sig, sl, &err),
                         MG_E_SIGNATURE);
        free(sig);
        mg_sig_key_free(pub);
    }
    /* Either file existing blocks keygen, and nothing is written. */
    char prefix[4096], path[4200];
    snprintf(prefix, sizeof prefix, "%s/half", dir);
    snprintf(path, sizeof path, "%s.pub", prefix);
    tu_write_file(dir, "half.pub", "x", 1);
    mg_error err;
    assert_int_equal(mg_keygen(NULL, prefix, &err), MG_E_USAGE);
    snprintf(path, sizeof path, "%s.key", prefix);
    assert_int_not_equal(access(path, F_OK), 0);
    assert_int_equal(mg_keygen("dsa", prefix, &err), MG_E_USAGE);
    /* Signing with committed keys of each kind verifies with their public halves. */
    static const char *const keys[][2] = {{"rsa2048.key.pem", "rsa2048.pub.pem"},
                                          {"p384.key.pem", "p384.pub.pem"},
                                          {"ed25519.key.pem", "ed25519.pub.pem"}};
    for (size_t i = 0; i < 3; i++) {
        mg_sig_key *pub;
        assert_int_equal(load_key(keys[i][1], &pub, &err), MG_OK);
        uint8_t *sig;
        size_t sl;
        assert_int_equal(mg_sign_buffer(data_path(keys[i][0]), (const uint8_t *)"m", 1, &sig,
                                        &sl, &err),
                         MG_OK);
        assert_int_equal(mg_sig_verify_raw(pub, (const uint8_t *)"m", 1, sig, sl, &err), MG_OK);
        free(sig);
        mg_sig_key_free(pub);
    }
    /* Keys that cannot sign manifests. */
    uint8_t *sig;
    size_t sl;
    assert_int_equal(mg_sign_buffer(data_path("rsa1024.key.pem"), (const uint8_t *)"m", 1, &sig,
                                    &sl, &err),
                     MG_E_USAGE);
    assert_int_equal(mg_sign_buffer(data_path("ed448.key.pem"), (const uint8_t *)"m", 1, &sig,
                                    &sl, &err),
                     MG_E_USAGE);
    assert_int_equal(mg_sign_buffer(data_path("ed25519.pub.pem"), (const uint8_t *)"m", 1, &sig,
                                    &sl, &err),
                     MG_E_USAGE);
    tu_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64_strict),
        cmocka_unit_test(test_keys_table),
        cmocka_unit_test(test_key_types),
        cmocka_unit_test(test_minisign_key_strings),
        cmocka_unit_test(test_key_same),
        cmocka_unit_test(test_vectors_table),
        cmocka_unit_test(test_trustmd_vectors),
        cmocka_unit_test(test_key_id_message_and_kinds),
        cmocka_unit_test(test_policy_signature),
        cmocka_unit_test(test_keygen_and_sign),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
