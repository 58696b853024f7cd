/*
 * Signatures (SPEC §2, §3): PEM SubjectPublicKeyInfo keys (RSA-PSS, Ed25519, ECDSA P-256/P-384)
 * and minisign keys and .minisig files, all verified through OpenSSL 3 EVP.
 *
 * Decisions:
 * - PEM keys are parsed strictly: exactly one "BEGIN PUBLIC KEY" block with only whitespace
 *   around it, strict base64, and DER that re-encodes to the same bytes (so one key has one
 *   accepted file form). EC keys must name their curve (no explicit parameters).
 * - RSA is verified as RSA-PSS, SHA-256, MGF1-SHA-256, with any salt length (the salt length
 *   is recovered from the signature), so signatures from `openssl pkeyutl` (salt = max),
 *   Python cryptography (PSS.MAX_LENGTH) and modelgate (salt = 32) all verify.
 * - .minisig: only the prehashed "ED" form is accepted (BLAKE2b-512 of the message), as
 *   `minisign -H` requires; legacy "Ed" (the whole message signed) is refused, because a
 *   verifier of multi-GB models must not need whole files in memory for Ed25519 (trust.md
 *   §2.4). The trusted comment is refused if it holds a control character other than TAB.
 */
#include "sig.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/base64.h"

#define MINISIGN_KEYID_BYTES 8
#define MINISIGN_PK_BYTES 32
#define MINISIGN_KEY_BYTES (2 + MINISIGN_KEYID_BYTES + MINISIGN_PK_BYTES) /* 42 */
#define MINISIGN_KEY_B64_LEN 56
#define MINISIGN_SIG_BYTES (2 + MINISIGN_KEYID_BYTES + 64)               /* 74 */
#define MINISIGN_SIG_B64_LEN 100
#define MINISIGN_GLOBAL_SIG_B64_LEN 88
#define MINISIGN_COMMENT_MAX 1024u          /* whole first line */
#define MINISIGN_TRUSTED_COMMENT_MAX 8192u  /* whole third line */
#define RSA_MIN_BITS 2048
#define RSA_MAX_BITS 16384

static const char untrusted_prefix[] = "untrusted comment: ";
static const char trusted_prefix[] = "trusted comment: ";
static const char pem_begin[] = "-----BEGIN PUBLIC KEY-----";
static const char pem_end[] = "-----END PUBLIC KEY-----";

struct mg_sig_key {
    mg_sig_key_type type;
    EVP_PKEY *pkey;
    uint8_t keyid[MINISIGN_KEYID_BYTES]; /* minisign only */
};

const char *mg_sig_key_type_name(mg_sig_key_type type)
{
    switch (type) {
    case MG_SIG_RSA: return "rsa-pss-sha256";
    case MG_SIG_ED25519: return "ed25519";
    case MG_SIG_ECDSA_P256: return "ecdsa-p256-sha256";
    case MG_SIG_ECDSA_P384: return "ecdsa-p384-sha384";
    case MG_SIG_ECDSA_P521: return "ecdsa-p521-sha512";
    case MG_SIG_MINISIGN: return "minisign";
    }
    return "?";
}

mg_sig_key_type mg_sig_key_type_of(const mg_sig_key *key)
{
    return key->type;
}

bool mg_sig_key_is_minisign(const mg_sig_key *key)
{
    return key != NULL && key->type == MG_SIG_MINISIGN;
}

bool mg_sig_key_same(const mg_sig_key *a, const mg_sig_key *b)
{
    if (a == NULL || b == NULL)
        return false;
    if (a == b)
        return true;
    int r = EVP_PKEY_eq(a->pkey, b->pkey);
    ERR_clear_error();
    return r == 1;
}

void mg_sig_key_free(mg_sig_key *key)
{
    if (key != NULL) {
        EVP_PKEY_free(key->pkey);
        free(key);
    }
}

/* ---- PEM ------------------------------------------------------------------------------ */

static bool is_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Consume one line ending ("\n" or "\r\n") at *pos; false if there is none. */
static bool eat_eol(const uint8_t *p, size_t len, size_t *pos)
{
    if (*pos < len && p[*pos] == '\r')
        (*pos)++;
    if (*pos < len && p[*pos] == '\n') {
        (*pos)++;
        return true;
    }
    return false;
}

static bool starts_with(const uint8_t *p, size_t len, size_t pos, const char *word)
{
    size_t n = strlen(word);
    return pos <= len && len - pos >= n && memcmp(p + pos, word, n) == 0;
}

/* The DER inside a single "BEGIN PUBLIC KEY" block; `der` holds at least len bytes. */
static mg_status pem_body(const uint8_t *pem, size_t len, uint8_t *der, size_t *der_len,
                          mg_error *err)
{
    size_t pos = 0;
    while (pos < len && is_space(pem[pos]))
        pos++;
    if (!starts_with(pem, len, pos, pem_begin))
        return mg_fail(err, MG_E_POLICY,
                       "public key: not a PEM SubjectPublicKeyInfo (\"%s\" expected)", pem_begin);
    pos += strlen(pem_begin);
    if (!eat_eol(pem, len, &pos))
        return mg_fail(err, MG_E_POLICY, "public key: malformed PEM header line");
    /* Gather the base64 lines (without their line endings) into one string. */
    char *b64 = malloc(len + 1);
    if (b64 == NULL)
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    size_t b64_len = 0;
    bool ended = false;
    while (pos < len) {
        if (starts_with(pem, len, pos, pem_end)) {
            pos += strlen(pem_end);
            ended = true;
            break;
        }
        size_t start = pos;
        while (pos < len && pem[pos] != '\r' && pem[pos] != '\n')
            pos++;
        size_t end = pos;
        if (end == start || !eat_eol(pem, len, &pos))
            break;
        memcpy(b64 + b64_len, pem + start, end - start);
        b64_len += end - start;
    }
    if (!ended) {
        free(b64);
        return mg_fail(err, MG_E_POLICY, "public key: malformed PEM body or missing \"%s\"",
                       pem_end);
    }
    while (pos < len && is_space(pem[pos]))
        pos++;
    if (pos != len) {
        free(b64);
        return mg_fail(err, MG_E_POLICY, "public key: unexpected data after the PEM block");
    }
    bool ok = mg_base64_decode(b64, b64_len, der, len, der_len);
    free(b64);
    if (!ok || *der_len == 0)
        return mg_fail(err, MG_E_POLICY, "public key: invalid base64 in the PEM body");
    return MG_OK;
}

static bool ec_named_curve(EVP_PKEY *pkey, mg_sig_key_type *type)
{
    char group[64] = "";
    char encoding[32] = "";
    size_t n = 0;
    if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                       &n) != 1)
        return false;
    if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_EC_ENCODING, encoding,
                                       sizeof encoding, &n) == 1 &&
        strcmp(encoding, OSSL_PKEY_EC_ENCODING_GROUP) != 0)
        return false; /* explicit curve parameters */
    if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0) {
        *type = MG_SIG_ECDSA_P256;
        return true;
    }
    if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0) {
        *type = MG_SIG_ECDSA_P384;
        return true;
    }
    if (strcmp(group, "secp521r1") == 0 || strcmp(group, "P-521") == 0) {
        *type = MG_SIG_ECDSA_P521;
        return true;
    }
    return false;
}

/*
 * An RSA-PSS key may carry parameters that restrict its hash, mask hash and salt length
 * (RFC 4055). Verification here is RSA-PSS with SHA-256, MGF1-SHA-256 and the salt length
 * recovered from the signature, which OpenSSL refuses for any restricted key (even one
 * restricted to SHA-256): find that out at policy load, by setting up exactly that
 * verification, instead of failing every signature later.
 */
static mg_status rsa_pss_restrictions_ok(EVP_PKEY *pkey, mg_error *err)
{
    char md[64] = "", mgf1[64] = "";
    size_t n;
    if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_RSA_DIGEST, md, sizeof md, &n) != 1)
        md[0] = '\0';
    if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_RSA_MGF1_DIGEST, mgf1, sizeof mgf1,
                                       &n) != 1)
        mgf1[0] = '\0';
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    bool ok = mctx != NULL && EVP_DigestVerifyInit(mctx, &pctx, EVP_sha256(), NULL, pkey) == 1 &&
              EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
              EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) == 1 &&
              EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO) == 1;
    EVP_MD_CTX_free(mctx);
    ERR_clear_error();
    if (ok)
        return MG_OK;
    int salt = -1;
    if (EVP_PKEY_get_int_param(pkey, OSSL_PKEY_PARAM_RSA_PSS_SALTLEN, &salt) != 1)
        salt = -1;
    ERR_clear_error();
    return mg_fail(err, MG_E_POLICY,
                   "public key: RSA-PSS key with parameter restrictions (hash %.40s, MGF1 %.40s, "
                   "salt length >= %d) refused: modelgate verifies RSA-PSS with SHA-256, "
                   "MGF1-SHA-256 and any salt length, which such a key forbids for every "
                   "signature; use an RSA key without PSS restrictions",
                   md[0] != '\0' ? md : "?", mgf1[0] != '\0' ? mgf1 : "?", salt);
}

/* Accept only the key types of SPEC §2, with their size rules. */
static mg_status classify_pkey(EVP_PKEY *pkey, mg_sig_key_type *type, mg_error *err)
{
    int id = EVP_PKEY_get_base_id(pkey);
    if (id == EVP_PKEY_ED25519) {
        *type = MG_SIG_ED25519;
        return MG_OK;
    }
    if (id == EVP_PKEY_RSA || id == EVP_PKEY_RSA_PSS) {
        int bits = EVP_PKEY_get_bits(pkey);
        if (bits < RSA_MIN_BITS || bits > RSA_MAX_BITS)
            return mg_fail(err, MG_E_POLICY,
                           "public key: RSA key of %d bits refused (%d to %d bits accepted)", bits,
                           RSA_MIN_BITS, RSA_MAX_BITS);
        if (id == EVP_PKEY_RSA_PSS) {
            mg_status st = rsa_pss_restrictions_ok(pkey, err);
            if (st != MG_OK)
                return st;
        }
        *type = MG_SIG_RSA;
        return MG_OK;
    }
    if (id == EVP_PKEY_EC) {
        if (!ec_named_curve(pkey, type))
            return mg_fail(err, MG_E_POLICY,
                           "public key: only the named curves P-256, P-384 and P-521 are accepted");
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
        int ok = ctx != NULL && EVP_PKEY_public_check(ctx) == 1;
        EVP_PKEY_CTX_free(ctx);
        if (!ok)
            return mg_fail(err, MG_E_POLICY, "public key: invalid EC point");
        return MG_OK;
    }
    return mg_fail(err, MG_E_POLICY,
                   "public key: unsupported key type (RSA, Ed25519, ECDSA P-256/P-384/P-521 "
                   "accepted)");
}

mg_status mg_sig_key_from_pem(const uint8_t *pem, size_t len, mg_sig_key **out, mg_error *err)
{
    *out = NULL;
    if (len > MG_MAX_KEY_FILE_BYTES)
        return mg_fail(err, MG_E_POLICY, "public key: file larger than %u bytes",
                       MG_MAX_KEY_FILE_BYTES);
    uint8_t *der = malloc(len > 0 ? len : 1);
    if (der == NULL)
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    size_t der_len = 0;
    mg_status st = pem_body(pem, len, der, &der_len, err);
    if (st != MG_OK) {
        free(der);
        return st;
    }
    const unsigned char *p = der;
    EVP_PKEY *pkey = d2i_PUBKEY(NULL, &p, (long)der_len);
    if (pkey == NULL || p != der + der_len) {
        EVP_PKEY_free(pkey);
        free(der);
        ERR_clear_error();
        return mg_fail(err, MG_E_POLICY, "public key: invalid SubjectPublicKeyInfo DER");
    }
    /* Canonical DER only: re-encoding must give back the same bytes. */
    unsigned char *again = NULL;
    int again_len = i2d_PUBKEY(pkey, &again);
    bool canonical = again_len > 0 && (size_t)again_len == der_len &&
                     memcmp(again, der, der_len) == 0;
    OPENSSL_free(again);
    free(der);
    if (!canonical) {
        EVP_PKEY_free(pkey);
        ERR_clear_error();
        return mg_fail(err, MG_E_POLICY, "public key: non-canonical DER encoding");
    }
    mg_sig_key_type type = MG_SIG_ED25519;
    st = classify_pkey(pkey, &type, err);
    ERR_clear_error();
    if (st != MG_OK) {
        EVP_PKEY_free(pkey);
        return st;
    }
    mg_sig_key *key = calloc(1, sizeof *key);
    if (key == NULL) {
        EVP_PKEY_free(pkey);
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    }
    key->type = type;
    key->pkey = pkey;
    *out = key;
    return MG_OK;
}

/* ---- minisign keys ---------------------------------------------------------------------- */

/* The key id as minisign prints it: the 8 bytes read little-endian, upper-case hex. */
static unsigned long long keyid_number(const uint8_t id[MINISIGN_KEYID_BYTES])
{
    unsigned long long v = 0;
    for (size_t i = MINISIGN_KEYID_BYTES; i-- > 0;)
        v = v << 8 | id[i];
    return v;
}

mg_status mg_sig_key_from_minisign(const char *base64, mg_sig_key **out, mg_error *err)
{
    *out = NULL;
    size_t n = strnlen(base64, MINISIGN_KEY_B64_LEN + 1);
    uint8_t raw[MINISIGN_KEY_BYTES];
    size_t raw_len = 0;
    if (n != MINISIGN_KEY_B64_LEN ||
        !mg_base64_decode(base64, n, raw, sizeof raw, &raw_len) || raw_len != sizeof raw)
        return mg_fail(err, MG_E_POLICY,
                       "minisign key: not a minisign public key (56 base64 characters)");
    if (raw[0] != 'E' || raw[1] != 'd')
        return mg_fail(err, MG_E_POLICY, "minisign key: unknown algorithm (\"Ed\" expected)");
    EVP_PKEY *pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw + 2 +
                                                 MINISIGN_KEYID_BYTES, MINISIGN_PK_BYTES);
    if (pkey == NULL) {
        ERR_clear_error();
        return mg_fail(err, MG_E_POLICY, "minisign key: invalid Ed25519 public key");
    }
    mg_sig_key *key = calloc(1, sizeof *key);
    if (key == NULL) {
        EVP_PKEY_free(pkey);
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    }
    key->type = MG_SIG_MINISIGN;
    key->pkey = pkey;
    memcpy(key->keyid, raw + 2, MINISIGN_KEYID_BYTES);
    *out = key;
    return MG_OK;
}

/* ---- verification --------------------------------------------------------------------- */

/* One EVP verification; `what` names the signature in the failure message. */
static mg_status verify_evp(EVP_PKEY *pkey, mg_sig_key_type type, const uint8_t *msg,
                            size_t len, const uint8_t *sig, size_t sig_len, const char *what,
                            mg_error *err)
{
    const EVP_MD *md = NULL;
    if (type == MG_SIG_RSA || type == MG_SIG_ECDSA_P256)
        md = EVP_sha256();
    else if (type == MG_SIG_ECDSA_P384)
        md = EVP_sha384();
    else if (type == MG_SIG_ECDSA_P521)
        md = EVP_sha512();
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    bool ready = mctx != NULL && EVP_DigestVerifyInit(mctx, &pctx, md, NULL, pkey) == 1;
    if (ready && type == MG_SIG_RSA) {
        ready = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
                EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) == 1 &&
                EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO) == 1;
    }
    int r = ready ? EVP_DigestVerify(mctx, sig, sig_len, msg, len) : -1;
    EVP_MD_CTX_free(mctx);
    ERR_clear_error();
    if (r == 1)
        return MG_OK;
    if (!ready)
        return mg_fail(err, MG_E_LIMIT, "OpenSSL could not set up a %s verification",
                       mg_sig_key_type_name(type));
    return mg_fail(err, MG_E_SIGNATURE, "%s does not verify", what);
}

mg_status mg_sig_verify_raw(const mg_sig_key *key, const uint8_t *msg, size_t len,
                            const uint8_t *sig, size_t sig_len, mg_error *err)
{
    if (key->type == MG_SIG_MINISIGN)
        return mg_fail(err, MG_E_SIGNATURE,
                       "a minisign key verifies only .minisig files, not raw signatures");
    if (sig_len == 0 || sig_len > MG_MAX_SIGNATURE_BYTES)
        return mg_fail(err, MG_E_SIGNATURE, "%s signature of %zu bytes is malformed",
                       mg_sig_key_type_name(key->type), sig_len);
    char what[64];
    snprintf(what, sizeof what, "%s signature", mg_sig_key_type_name(key->type));
    return verify_evp(key->pkey, key->type, msg, len, sig, sig_len, what, err);
}

bool mg_sig_key_spki_pem_sha256(const mg_sig_key *key, uint8_t out[32])
{
    if (key == NULL || key->type == MG_SIG_MINISIGN)
        return false;
    BIO *bio = BIO_new(BIO_s_mem());
    bool ok = bio != NULL && PEM_write_bio_PUBKEY(bio, key->pkey) == 1;
    char *text = NULL;
    long n = ok ? BIO_get_mem_data(bio, &text) : 0;
    ok = ok && n > 0 && EVP_Digest(text, (size_t)n, out, NULL, EVP_sha256(), NULL) == 1;
    BIO_free(bio);
    ERR_clear_error();
    return ok;
}

mg_status mg_sig_verify_policy(const uint8_t *key_pem, size_t key_len, const uint8_t *policy,
                               size_t len, const uint8_t *sig, size_t sig_len, mg_error *err)
{
    mg_sig_key *key;
    mg_status st = mg_sig_key_from_pem(key_pem, key_len, &key, err);
    if (st != MG_OK) {
        char why[MG_ERROR_MESSAGE_MAX];
        mg_strlcpy(why, err != NULL ? err->message : "invalid", sizeof why);
        return st == MG_E_LIMIT ? st : mg_fail(err, MG_E_POLICY, "policy key: %s", why);
    }
    st = mg_sig_verify_raw(key, policy, len, sig, sig_len, err);
    mg_sig_key_free(key);
    if (st == MG_E_SIGNATURE)
        return mg_fail(err, MG_E_POLICY, "policy signature does not verify with the policy key");
    return st;
}

/* ---- .minisig files ------------------------------------------------------------------- */

typedef struct text_line {
    const uint8_t *p;
    size_t len;
} text_line;

/* Split into exactly `count` lines ending in "\n" or "\r\n" (the last may lack it). */
static bool split_lines(const uint8_t *p, size_t len, text_line *lines, size_t count)
{
    size_t pos = 0;
    for (size_t i = 0; i < count; i++) {
        if (pos >= len)
            return false;
        const uint8_t *nl = memchr(p + pos, '\n', len - pos);
        size_t end = nl != NULL ? (size_t)(nl - p) : len;
        lines[i].p = p + pos;
        lines[i].len = end - pos;
        if (lines[i].len > 0 && lines[i].p[lines[i].len - 1] == '\r')
            lines[i].len--;
        pos = nl != NULL ? end + 1 : len;
    }
    return pos == len;
}

static bool line_has_prefix(const text_line *l, const char *prefix)
{
    size_t n = strlen(prefix);
    return l->len >= n && memcmp(l->p, prefix, n) == 0;
}

static bool decode_line(const text_line *l, size_t b64_len, uint8_t *out, size_t out_len)
{
    size_t got = 0;
    return l->len == b64_len && mg_base64_decode((const char *)l->p, l->len, out, out_len, &got) &&
           got == out_len;
}

static mg_status blake2b512(const uint8_t *msg, size_t len, uint8_t out[64], mg_error *err)
{
    EVP_MD *md = EVP_MD_fetch(NULL, "BLAKE2B-512", NULL);
    unsigned int n = 0;
    int ok = md != NULL && EVP_Digest(msg, len, out, &n, md, NULL) == 1 && n == 64;
    EVP_MD_free(md);
    ERR_clear_error();
    return ok ? MG_OK : mg_fail(err, MG_E_LIMIT, "OpenSSL has no BLAKE2b-512");
}

mg_status mg_sig_verify_minisig(const mg_sig_key *key, const uint8_t *msg, size_t len,
                                const uint8_t *minisig, size_t minisig_len, mg_error *err)
{
    if (key->type != MG_SIG_MINISIGN)
        return mg_fail(err, MG_E_SIGNATURE, "a .minisig file needs a minisign key, not %s",
                       mg_sig_key_type_name(key->type));
    if (minisig_len > MG_MINISIG_MAX_BYTES)
        return mg_fail(err, MG_E_SIGNATURE, ".minisig file larger than %u bytes",
                       MG_MINISIG_MAX_BYTES);
    text_line lines[4];
    if (!split_lines(minisig, minisig_len, lines, 4))
        return mg_fail(err, MG_E_SIGNATURE, ".minisig file: not exactly 4 lines");
    if (!line_has_prefix(&lines[0], untrusted_prefix) || lines[0].len > MINISIGN_COMMENT_MAX)
        return mg_fail(err, MG_E_SIGNATURE,
                       ".minisig file: line 1 is not an untrusted comment of at most %u bytes",
                       MINISIGN_COMMENT_MAX);
    uint8_t sig[MINISIGN_SIG_BYTES];
    if (!decode_line(&lines[1], MINISIGN_SIG_B64_LEN, sig, sizeof sig))
        return mg_fail(err, MG_E_SIGNATURE, ".minisig file: line 2 is not a minisign signature");
    if (!line_has_prefix(&lines[2], trusted_prefix) || lines[2].len > MINISIGN_TRUSTED_COMMENT_MAX)
        return mg_fail(err, MG_E_SIGNATURE,
                       ".minisig file: line 3 is not a trusted comment of at most %u bytes",
                       MINISIGN_TRUSTED_COMMENT_MAX);
    uint8_t global_sig[64];
    if (!decode_line(&lines[3], MINISIGN_GLOBAL_SIG_B64_LEN, global_sig, sizeof global_sig))
        return mg_fail(err, MG_E_SIGNATURE,
                       ".minisig file: line 4 is not a minisign global signature");
    const uint8_t *comment = lines[2].p + strlen(trusted_prefix);
    size_t comment_len = lines[2].len - strlen(trusted_prefix);
    for (size_t i = 0; i < comment_len; i++) {
        if ((comment[i] < 0x20 && comment[i] != '\t') || comment[i] == 0x7f)
            return mg_fail(err, MG_E_SIGNATURE,
                           ".minisig file: control character in the trusted comment");
    }
    if (sig[0] == 'E' && sig[1] == 'd')
        return mg_fail(err, MG_E_SIGNATURE,
                       ".minisig file: legacy (not prehashed) minisign signature refused; sign "
                       "with minisign 0.10 or later (prehashed \"ED\")");
    if (sig[0] != 'E' || sig[1] != 'D')
        return mg_fail(err, MG_E_SIGNATURE, ".minisig file: unknown signature algorithm");
    if (memcmp(sig + 2, key->keyid, MINISIGN_KEYID_BYTES) != 0)
        return mg_fail(err, MG_E_SIGNATURE,
                       ".minisig file: made by minisign key %016llX, not by key %016llX",
                       keyid_number(sig + 2), keyid_number(key->keyid));
    uint8_t hash[64];
    mg_status st = blake2b512(msg, len, hash, err);
    if (st != MG_OK)
        return st;
    const uint8_t *ed_sig = sig + 2 + MINISIGN_KEYID_BYTES;
    st = verify_evp(key->pkey, MG_SIG_ED25519, hash, sizeof hash, ed_sig, 64,
                    "minisign signature", err);
    if (st != MG_OK)
        return st;
    /* The global signature covers signature || trusted comment: it makes the comment trusted
     * and binds it to this signature. */
    uint8_t *global_msg = malloc(64 + comment_len);
    if (global_msg == NULL)
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    memcpy(global_msg, ed_sig, 64);
    memcpy(global_msg + 64, comment, comment_len);
    st = verify_evp(key->pkey, MG_SIG_ED25519, global_msg, 64 + comment_len, global_sig,
                    sizeof global_sig, "minisign global signature (trusted comment)", err);
    free(global_msg);
    return st;
}
