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
    return alg == MG_SHA512 ? 64 : 32;
}

const char *mg_digest_name(mg_digest_alg alg)
{
    return alg == MG_SHA512 ? "sha512" : "sha256";
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
        EVP_DigestInit_ex(c->md, alg == MG_SHA512 ? EVP_sha512() : EVP_sha256(), NULL) != 1) {
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
