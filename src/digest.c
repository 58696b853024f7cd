#define _GNU_SOURCE
#include "digest.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

struct mg_digest_ctx {
    EVP_MD_CTX *md;
};

size_t mg_digest_len(mg_digest_alg alg)
{
    return alg == MG_SHA512 || alg == MG_BLAKE2B ? 64 : 32;
}

const char *mg_digest_name(mg_digest_alg alg)
{
    return alg == MG_SHA512 ? "sha512" : alg == MG_BLAKE2B ? "blake2b" : "sha256";
}

bool mg_digest_from_name(const char *name, mg_digest_alg *out)
{
    if (strcmp(name, "sha256") == 0) {
        *out = MG_SHA256;
        return true;
    }
    if (strcmp(name, "sha512") == 0) {
        *out = MG_SHA512;
        return true;
    }
    return false;
}

mg_status mg_digest_new(mg_digest_alg alg, mg_digest_ctx **out, mg_error *err)
{
    *out = NULL;
    mg_digest_ctx *c = calloc(1, sizeof *c);
    if (c == NULL)
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    c->md = EVP_MD_CTX_new();
    if (c->md == NULL ||
        EVP_DigestInit_ex(c->md, alg == MG_SHA512    ? EVP_sha512()
                                 : alg == MG_BLAKE2B ? EVP_blake2b512()
                                                     : EVP_sha256(),
                          NULL) != 1) {
        mg_digest_free(c);
        return mg_fail(err, MG_E_LIMIT, "OpenSSL digest initialisation failed");
    }
    *out = c;
    return MG_OK;
}

mg_status mg_digest_update(mg_digest_ctx *ctx, const void *data, size_t len, mg_error *err)
{
    if (len > 0 && EVP_DigestUpdate(ctx->md, data, len) != 1)
        return mg_fail(err, MG_E_LIMIT, "OpenSSL digest update failed");
    return MG_OK;
}

mg_status mg_digest_final(mg_digest_ctx *ctx, uint8_t out[MG_DIGEST_MAX], mg_error *err)
{
    unsigned int n = 0;
    if (EVP_DigestFinal_ex(ctx->md, out, &n) != 1)
        return mg_fail(err, MG_E_LIMIT, "OpenSSL digest final failed");
    return MG_OK;
}

void mg_digest_free(mg_digest_ctx *ctx)
{
    if (ctx != NULL) {
        EVP_MD_CTX_free(ctx->md);
        free(ctx);
    }
}

mg_status mg_digest_buffer(mg_digest_alg alg, const void *data, size_t len,
                           uint8_t out[MG_DIGEST_MAX], mg_error *err)
{
    mg_digest_ctx *c;
    mg_status st = mg_digest_new(alg, &c, err);
    if (st != MG_OK)
        return st;
    st = mg_digest_update(c, data, len, err);
    if (st == MG_OK)
        st = mg_digest_final(c, out, err);
    mg_digest_free(c);
    return st;
}

bool mg_digest_equal(const uint8_t *a, const uint8_t *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len) == 0;
}

/* ---- mg_hash_file (public) ------------------------------------------------------------ */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "source.h"
#include "util/fsutil.h"
#include "util/hex.h"

mg_status mg_hash_file(const char *path, mg_digest_alg alg, char hex[129], mg_error *err)
{
    mg_error_clear(err);
    if (alg != MG_SHA256 && alg != MG_SHA512)
        return mg_fail(err, MG_E_USAGE, "unknown digest algorithm %d", (int)alg);
    char *abs = NULL;
    mg_source_info info;
    mg_status s = mg_source_normalize_path(path, NULL, &abs, &info, err);
    if (s != MG_OK)
        return s;
    int fd = mg_open_nofollow(abs, O_RDONLY | O_NONBLOCK, NULL);
    free(abs);
    if (fd < 0)
        return mg_fail(err, MG_E_IO, "cannot open %.300s: %s", path,
                       errno == ELOOP ? "a symlink is on its path" : strerror(errno));
    mg_digest_ctx *ctx;
    s = mg_digest_new(alg, &ctx, err);
    if (s != MG_OK) {
        close(fd);
        return s;
    }
    enum { CHUNK = 1 << 20 };
    uint8_t *buf = malloc(CHUNK);
    if (buf == NULL)
        s = mg_fail(err, MG_E_LIMIT, "out of memory");
    while (s == MG_OK) {
        ssize_t n = read(fd, buf, CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            s = mg_fail(err, MG_E_IO, "cannot read %.300s: %s", path, strerror(errno));
        if (n <= 0)
            break;
        s = mg_digest_update(ctx, buf, (size_t)n, err);
    }
    uint8_t d[MG_DIGEST_MAX];
    if (s == MG_OK)
        s = mg_digest_final(ctx, d, err);
    if (s == MG_OK)
        mg_hex_encode(d, mg_digest_len(alg), hex);
    free(buf);
    mg_digest_free(ctx);
    close(fd);
    return s;
}
