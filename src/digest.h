/* Streaming SHA-256/512 through OpenSSL EVP (SHA-NI where the CPU has it), constant-time
 * comparison, names. */
#ifndef MG_DIGEST_H
#define MG_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

#define MG_DIGEST_MAX 64
/* Internal only (never from the public API or the policy): BLAKE2b-512, for OMS bundles whose
 * hash_type is "blake2b". */
#define MG_BLAKE2B ((mg_digest_alg)2)

typedef struct mg_digest_ctx mg_digest_ctx;

/* Byte length of the algorithm's digest (32 or 64). */
size_t mg_digest_len(mg_digest_alg alg);
/* "sha256" / "sha512". */
const char *mg_digest_name(mg_digest_alg alg);
/* Parse "sha256"/"sha512"; false for anything else. */
bool mg_digest_from_name(const char *name, mg_digest_alg *out);

MG_NODISCARD mg_status mg_digest_new(mg_digest_alg alg, mg_digest_ctx **out, mg_error *err);
MG_NODISCARD mg_status mg_digest_update(mg_digest_ctx *ctx, const void *data, size_t len,
                                        mg_error *err);
MG_NODISCARD mg_status mg_digest_final(mg_digest_ctx *ctx, uint8_t out[MG_DIGEST_MAX],
                                       mg_error *err);
void mg_digest_free(mg_digest_ctx *ctx);

/* One-shot digest of a buffer. */
MG_NODISCARD mg_status mg_digest_buffer(mg_digest_alg alg, const void *data, size_t len,
                                        uint8_t out[MG_DIGEST_MAX], mg_error *err);

/* Constant-time equality of two digests of `len` bytes. */
bool mg_digest_equal(const uint8_t *a, const uint8_t *b, size_t len);

#endif
