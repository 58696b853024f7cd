#define _GNU_SOURCE
/* minisign secret keys and .minisig signing (see minisign_key.h), through OpenSSL 3 EVP:
 * scrypt for an encrypted key, Ed25519 and BLAKE2b-512 for the signature. */
#include "minisign_key.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "sig.h"
#include "util/base64.h"
#include "util/fsutil.h"

#define KEY_FILE_MAX 4096u
#define SECRET_BLOB 158u /* 2 + 2 + 2 + 32 + 8 + 8 + 104 */
#define KEYNUM_SK 104u   /* key id 8 + secret 64 + checksum 32 */

/* The secret key file as it is laid out after base64 decoding. */
typedef struct secret_file {
    uint8_t sig_alg[2]; /* "Ed" */
    uint8_t kdf_alg[2]; /* "Sc", or zeros when not encrypted */
    uint8_t chk_alg[2]; /* "B2" */
    uint8_t salt[32];
    uint8_t opslimit[8]; /* little-endian */
    uint8_t memlimit[8];
    uint8_t keynum_sk[KEYNUM_SK]; /* key id | seed | public key | checksum, maybe encrypted */
} secret_file;

struct mg_minisign_secret {
    EVP_PKEY *pkey;
    uint8_t keyid[8];
    char public_b64[64];
};

static const char untrusted[] = "untrusted comment: ";

/* Read the key file and decode its second line. */
static mg_status read_secret(const char *path, secret_file *sf, bool *is_minisign, mg_error *err)
{
    *is_minisign = false;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return mg_fail(err, MG_E_IO, "cannot open %.200s: %s", path, strerror(errno));
    uint8_t *data = NULL;
    size_t len = 0;
    mg_status s = mg_read_small(fd, KEY_FILE_MAX, &data, &len, err);
    close(fd);
    if (s != MG_OK)
        return s;
    if (len < sizeof untrusted - 1 || memcmp(data, untrusted, sizeof untrusted - 1) != 0) {
        OPENSSL_cleanse(data, len);
        free(data);
        return MG_OK;
    }
    *is_minisign = true;
    const char *p = memchr(data, '\n', len);
    const char *line = p != NULL ? p + 1 : NULL;
    size_t rest = line != NULL ? len - (size_t)(line - (const char *)data) : 0;
    const char *end = line != NULL ? memchr(line, '\n', rest) : NULL;
    size_t n = end != NULL ? (size_t)(end - line) : rest;
    if (n > 0 && line[n - 1] == '\r')
        n--;
    uint8_t raw[SECRET_BLOB + 3];
    size_t got = 0;
    if (line == NULL || !mg_base64_decode(line, n, raw, sizeof raw, &got) || got != SECRET_BLOB)
        s = mg_fail(err, MG_E_USAGE, "%.200s: not a minisign secret key (bad second line)", path);
    else
        memcpy(sf, raw, SECRET_BLOB);
    OPENSSL_cleanse(raw, sizeof raw);
    OPENSSL_cleanse(data, len);
    free(data);
    if (s == MG_OK && memcmp(sf->sig_alg, "Ed", 2) != 0)
        s = mg_fail(err, MG_E_USAGE, "%.200s: unknown minisign key algorithm", path);
    if (s == MG_OK && memcmp(sf->kdf_alg, "Sc", 2) != 0 && memcmp(sf->kdf_alg, "\0\0", 2) != 0)
        s = mg_fail(err, MG_E_USAGE, "%.200s: unknown minisign key derivation", path);
    return s;
}

mg_status mg_minisign_secret_probe(const char *path, bool *is_minisign, bool *encrypted,
                                   mg_error *err)
{
    secret_file sf;
    *encrypted = false;
    mg_status s = read_secret(path, &sf, is_minisign, err);
    if (s == MG_OK && *is_minisign)
        *encrypted = memcmp(sf.kdf_alg, "Sc", 2) == 0;
    OPENSSL_cleanse(&sf, sizeof sf);
    return s;
}

static uint64_t le64(const uint8_t b[8])
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | b[i];
    return v;
}

/* The scrypt cost minisign (through libsodium's scryptsalsa208sha256) derives from its
 * opslimit and memlimit: r is 8 and N the smallest power of two above half the bound; when
 * operations are the tighter bound (ops < mem / 32) N comes from ops / (4 r) and p is 1,
 * else N comes from mem / (128 r) and p from the operations left, (ops / 4) / N / r.
 * minisign's own keys (ops 2^25, mem 2^30) give N = 2^20, r = 8, p = 1. */
static void scrypt_cost(uint64_t ops, uint64_t mem, uint64_t *n_out, uint64_t *r_out,
                        uint64_t *p_out)
{
    const uint64_t r = 8;
    if (ops < 32768)
        ops = 32768;
    uint64_t max_n = ops < mem / 32 ? ops / (r * 4) : mem / (r * 128);
    unsigned log2n = 1;
    while (log2n < 63 && (UINT64_C(1) << log2n) <= max_n / 2)
        log2n++;
    uint64_t p = 1;
    if (!(ops < mem / 32)) {
        uint64_t max_rp = (ops / 4) >> log2n;
        if (max_rp > 0x3fffffff)
            max_rp = 0x3fffffff;
        p = max_rp / r;
    }
    *n_out = UINT64_C(1) << log2n;
    *r_out = r;
    *p_out = p;
}

static mg_status decrypt(secret_file *sf, const char *password, mg_error *err)
{
    uint64_t n, r, p;
    scrypt_cost(le64(sf->opslimit), le64(sf->memlimit), &n, &r, &p);
    /* scrypt needs 128 r N bytes (plus 128 r p): refuse costs beyond 2 GiB rather than
     * exhaust memory on a crafted key. */
    if (p == 0 || n > (UINT64_C(1) << 24) || p > 64 || 128 * r * (n + p) > (UINT64_C(2) << 30))
        return mg_fail(err, MG_E_LIMIT, "the key's scrypt cost is out of range");
    uint8_t stream[KEYNUM_SK];
    if (EVP_PBE_scrypt(password, strlen(password), sf->salt, sizeof sf->salt, n, r, p,
                       128 * r * (n + p) + (UINT64_C(64) << 20), stream, sizeof stream) != 1)
        return mg_fail(err, MG_E_LIMIT, "scrypt failed (not enough memory?)");
    for (size_t i = 0; i < KEYNUM_SK; i++)
        sf->keynum_sk[i] ^= stream[i];
    OPENSSL_cleanse(stream, sizeof stream);
    return MG_OK;
}

mg_status mg_minisign_secret_load(const char *path, const char *password,
                                  mg_minisign_secret **out, mg_error *err)
{
    *out = NULL;
    secret_file sf;
    bool is_minisign;
    mg_status s = read_secret(path, &sf, &is_minisign, err);
    if (s == MG_OK && !is_minisign)
        s = mg_fail(err, MG_E_USAGE, "%.200s is not a minisign secret key", path);
    bool encrypted = s == MG_OK && memcmp(sf.kdf_alg, "Sc", 2) == 0;
    if (s == MG_OK && encrypted && password == NULL)
        s = mg_fail(err, MG_E_USAGE, "%.200s is encrypted: a password is needed", path);
    if (s == MG_OK && encrypted)
        s = decrypt(&sf, password, err);
    mg_minisign_secret *k = s == MG_OK ? calloc(1, sizeof *k) : NULL;
    if (s == MG_OK && k == NULL)
        s = mg_fail(err, MG_E_LIMIT, "out of memory");
    if (s == MG_OK) {
        const uint8_t *keyid = sf.keynum_sk, *seed = sf.keynum_sk + 8, *pub = sf.keynum_sk + 40;
        k->pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
        uint8_t derived[32];
        size_t dl = sizeof derived;
        if (k->pkey == NULL || EVP_PKEY_get_raw_public_key(k->pkey, derived, &dl) != 1 ||
            dl != 32 || CRYPTO_memcmp(derived, pub, 32) != 0) {
            s = mg_fail(err, MG_E_USAGE, encrypted ? "%.200s: wrong password (the decrypted key "
                        "does not match its public half)" : "%.200s: the secret key does not "
                        "match its public half", path);
        } else {
            memcpy(k->keyid, keyid, 8);
            uint8_t pk[42];
            memcpy(pk, "Ed", 2);
            memcpy(pk + 2, keyid, 8);
            memcpy(pk + 10, pub, 32);
            mg_base64_encode(pk, sizeof pk, k->public_b64);
        }
    }
    OPENSSL_cleanse(&sf, sizeof sf);
    if (s != MG_OK) {
        mg_minisign_secret_free(k);
        return s;
    }
    *out = k;
    return MG_OK;
}

const char *mg_minisign_secret_public(const mg_minisign_secret *k)
{
    return k->public_b64;
}

static mg_status ed25519_sign(EVP_PKEY *pkey, const uint8_t *msg, size_t len, uint8_t sig[64],
                              mg_error *err)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t sl = 64;
    bool ok = ctx != NULL && EVP_DigestSignInit(ctx, NULL, NULL, NULL, pkey) == 1 &&
              EVP_DigestSign(ctx, sig, &sl, msg, len) == 1 && sl == 64;
    EVP_MD_CTX_free(ctx);
    return ok ? MG_OK : mg_fail(err, MG_E_LIMIT, "Ed25519 signing failed");
}

mg_status mg_minisign_sign(const mg_minisign_secret *k, const uint8_t *msg, size_t len,
                           const char *trusted_comment, char **out, size_t *out_len,
                           mg_error *err)
{
    *out = NULL;
    *out_len = 0;
    if (strpbrk(trusted_comment, "\r\n") != NULL || strlen(trusted_comment) > 1000)
        return mg_fail(err, MG_E_USAGE, "the trusted comment must be one line");
    uint8_t hash[64];
    unsigned hl = 0;
    if (EVP_Digest(msg, len, hash, &hl, EVP_blake2b512(), NULL) != 1 || hl != 64)
        return mg_fail(err, MG_E_LIMIT, "BLAKE2b-512 failed");
    uint8_t sigblob[74]; /* "ED" | key id | signature */
    memcpy(sigblob, "ED", 2);
    memcpy(sigblob + 2, k->keyid, 8);
    mg_status s = ed25519_sign(k->pkey, hash, sizeof hash, sigblob + 10, err);
    size_t tl = strlen(trusted_comment);
    uint8_t *global_msg = s == MG_OK ? malloc(64 + tl) : NULL;
    uint8_t global[64];
    if (s == MG_OK && global_msg == NULL)
        s = mg_fail(err, MG_E_LIMIT, "out of memory");
    if (s == MG_OK) {
        memcpy(global_msg, sigblob + 10, 64);
        memcpy(global_msg + 64, trusted_comment, tl);
        s = ed25519_sign(k->pkey, global_msg, 64 + tl, global, err);
    }
    free(global_msg);
    if (s != MG_OK)
        return s;
    char b_sig[128], b_global[128], keyid_hex[17];
    mg_base64_encode(sigblob, sizeof sigblob, b_sig);
    mg_base64_encode(global, sizeof global, b_global);
    for (int i = 0; i < 8; i++)
        snprintf(keyid_hex + (size_t)2 * (size_t)i, 3, "%02X", k->keyid[7 - i]);
    size_t cap = 200 + tl + strlen(b_sig) + strlen(b_global);
    char *text = malloc(cap);
    if (text == NULL)
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    int n = snprintf(text, cap, "untrusted comment: signature from minisign secret key %s\n%s\n"
                     "trusted comment: %s\n%s\n", keyid_hex, b_sig, trusted_comment, b_global);
    if (n < 0 || (size_t)n >= cap) {
        free(text);
        return mg_fail(err, MG_E_LIMIT, "cannot format the signature");
    }
    /* Check what was made with the public half before anyone relies on it. */
    mg_sig_key *pub = NULL;
    s = mg_sig_key_from_minisign(k->public_b64, &pub, err);
    if (s == MG_OK)
        s = mg_sig_verify_minisig(pub, msg, len, (const uint8_t *)text, (size_t)n, err);
    mg_sig_key_free(pub);
    if (s != MG_OK) {
        free(text);
        return mg_fail(err, MG_E_LIMIT, "the signature just made does not verify");
    }
    *out = text;
    *out_len = (size_t)n;
    return MG_OK;
}

void mg_minisign_secret_free(mg_minisign_secret *k)
{
    if (k == NULL)
        return;
    EVP_PKEY_free(k->pkey);
    OPENSSL_cleanse(k, sizeof *k);
    free(k);
}
