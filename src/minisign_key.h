/* minisign secret keys, for signing manifests with the key a minisign user already has
 * (`modelgate sign -k ~/.minisign/minisign.key`). The verifier never needs this module. */
#ifndef MG_MINISIGN_KEY_H
#define MG_MINISIGN_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

typedef struct mg_minisign_secret mg_minisign_secret;

/*
 * Whether the file at `path` (opened without following symlinks) is a minisign secret key,
 * and whether it is encrypted with a password (scrypt). A file that is not one (a PEM key)
 * gives MG_OK with *is_minisign false.
 */
MG_NODISCARD mg_status mg_minisign_secret_probe(const char *path, bool *is_minisign,
                                                bool *encrypted, mg_error *err);

/*
 * Load a minisign secret key: "untrusted comment:" line, then base64 of
 * "Ed" | kdf ("Sc" scrypt or two zero bytes) | "B2" | salt[32] | opslimit[8] | memlimit[8] |
 * key id[8] | secret[64] | checksum[32]. An encrypted key is decrypted with `password`; the
 * result is accepted only when the public half derived from the seed equals the one stored
 * beside it (a wrong password fails there: MG_E_USAGE). Secrets are wiped after use.
 */
MG_NODISCARD mg_status mg_minisign_secret_load(const char *path, const char *password,
                                               mg_minisign_secret **out, mg_error *err);

/* The public key as minisign prints it (base64 of "Ed" | key id | public key), for checks. */
const char *mg_minisign_secret_public(const mg_minisign_secret *k);

/*
 * A .minisig file over `msg` (prehashed "ED": Ed25519 over BLAKE2b-512 of the message, and the
 * global signature over signature | trusted comment), checked with the public half before it
 * is returned. `*out` is malloc'd text.
 */
MG_NODISCARD mg_status mg_minisign_sign(const mg_minisign_secret *k, const uint8_t *msg,
                                        size_t len, const char *trusted_comment, char **out,
                                        size_t *out_len, mg_error *err);

void mg_minisign_secret_free(mg_minisign_secret *k);

#endif
