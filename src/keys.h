/* Key generation and manifest signing for the command-line tool (`modelgate keygen`,
 * `modelgate sign`). The verifier never needs this module. */
#ifndef MG_KEYS_H
#define MG_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/*
 * Make a key pair: PREFIX.key (PKCS#8 PEM private key, created mode 0600 with O_EXCL and
 * O_NOFOLLOW) and PREFIX.pub (SubjectPublicKeyInfo PEM, mode 0644). `type` is "ed25519"
 * (also when NULL), "ecdsa-p256" or "rsa-3072". Never overwrites: if either file exists,
 * MG_E_USAGE and nothing is written. Private key bytes are wiped from memory after use.
 */
MG_NODISCARD mg_status mg_keygen(const char *type, const char *prefix, mg_error *err);

/*
 * Sign a model directory: write DIR/manifest.json listing every regular file below `dir`
 * (but the manifest and its signature files at the top), sorted by path in byte order,
 * with its size and digest, and DIR/manifest.json.sig, the raw signature over the manifest's
 * bytes by the PEM private key at `key_path` (Ed25519 pure; ECDSA DER with SHA-256 for P-256,
 * SHA-384 for P-384; RSA-PSS SHA-256, MGF1-SHA-256, salt length 32). Both are written
 * atomically (temporary file in DIR, fsync, rename). `name` NULL means the directory's base
 * name; `version` >= 1; `expires` NULL or "YYYY-MM-DDTHH:MM:SSZ".
 * A symlink or a special file below DIR is refused (MG_E_FORMAT: unsafe model directory),
 * as is a file name a manifest cannot carry. MG_E_USAGE for bad arguments or an unusable
 * key, MG_E_IO for I/O failures. `shard_size` > 0 (sha256 only): a file longer than that is
 * listed with "shard_size" and "sha256_shards" (one SHA-256 per shard) instead of "sha256".
 */
MG_NODISCARD mg_status mg_sign_dir(const char *key_path, const char *dir, const char *name,
                                   uint64_t version, const char *expires, mg_digest_alg alg,
                                   uint64_t shard_size, mg_error *err);

/*
 * The manifest mg_sign_dir would write for `dir` (same arguments; `exclude`, may be NULL, is
 * a file that must not be below DIR, such as the private key), as text ending in a newline;
 * `*text` is malloc'd. For signers other than a PEM key (a minisign secret key).
 */
struct stat;
MG_NODISCARD mg_status mg_manifest_build(const char *dir, const char *name, uint64_t version,
                                         const char *expires, mg_digest_alg alg,
                                         uint64_t shard_size, const struct stat *exclude,
                                         char **text, size_t *len, mg_error *err);

/* Sign `msg` with the PEM private key at `key_path` as mg_sign_dir signs a manifest; `*sig`
 * is malloc'd. The signature is verified with the key's public half before it is returned. */
MG_NODISCARD mg_status mg_sign_buffer(const char *key_path, const uint8_t *msg, size_t len,
                                      uint8_t **sig, size_t *sig_len, mg_error *err);

/*
 * Sign a model directory as an OpenSSF model-signing (OMS v1.0) bundle in key mode: write
 * DIR/model.sig (atomically), a Sigstore bundle with publicKey.hint whose DSSE envelope holds
 * the in-toto statement listing every regular file below DIR (but model.sig and the git files
 * .git, .gitattributes, .github, .gitignore at the top, which are recorded as ignore_paths)
 * in the reference signer's order, with SHA-256 per file, or per `shard_size` bytes when
 * `shard_size` > 0 ("shards"; empty files then have no resource). The key must be ECDSA
 * P-256/P-384/P-521 (signed with SHA-256/384/512). Errors as mg_sign_dir.
 */
MG_NODISCARD mg_status mg_sign_oms(const char *key_path, const char *dir, uint64_t shard_size,
                                   mg_error *err);

#endif
