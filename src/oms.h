/*
 * OpenSSF model signing (OMS v1.0) bundles: a Sigstore bundle holding a DSSE envelope over an
 * in-toto statement whose predicate lists a digest per file ("files") or per shard
 * ("shards"). Verified here with OpenSSL and jansson, before any model byte is read; the
 * result is the expected file list that load.c reads, hashes and compares as for manifests.
 */
#ifndef MG_OMS_H
#define MG_OMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"

#define MG_OMS_DEFAULT_BUNDLE "model.sig"
/* Most resources (files or shards) one bundle may list. */
#define MG_OMS_MAX_RESOURCES 1000000u

/* The policy's "oms" object of one model entry. Key mode uses the entry's keys/threshold. */
typedef struct mg_oms_policy {
    char *bundle;         /* directory model: path inside the folder; single file: absolute */
    bool cert_mode;       /* "ca_file" given */
    uint8_t *ca_pem;      /* the root certificates (PEM), read at policy time */
    size_t ca_len;
    char *identity;       /* a subject CN/email or SAN the leaf must carry (Sigstore: SAN) */
    bool sigstore_mode;   /* "sigstore_root" given: ca_pem holds the trusted root JSON */
    char *issuer;         /* Sigstore: the OIDC issuer extension the leaf must carry */
    bool allow_symlinks;  /* the policy also allows symlinks (the bundle must say so too) */
    char **ignore;        /* the entry's "ignore" paths, relative to the model root */
    size_t ignore_count;
} mg_oms_policy;

void mg_oms_policy_free(mg_oms_policy *p);

/* A verified bundle: what the model must hold. */
typedef struct mg_oms {
    mg_pinned_file *files; /* sorted by path; single-file model: one entry, its base name */
    size_t file_count;
    bool shards;           /* serialization "shards" */
    bool allow_symlinks;   /* bundle and policy both allow them */
    char **ignore;         /* recorded ignore_paths + policy ignores + git defaults + bundle */
    size_t ignore_count;
} mg_oms;

/*
 * Verify `bundle` (`len` bytes) for `entry` and fill `out`: media type, DSSE payload type, the
 * signature over the DSSE PAE of the exact payload bytes (ECDSA, hash from the curve) with the
 * entry's keys (threshold over distinct keys; signatures[0] must be one of them) or with the
 * leaf certificate chained to the entry's roots at signing time, statement and predicate
 * types, one subject whose sha256 is SHA-256 over the resource digests in order, the
 * serialization, and the resources (safe unique names, whole-file shard layouts).
 * `single_name` is the file's base name for a single-file model, NULL for a directory.
 * MG_E_SIGNATURE for a bundle that does not verify or is malformed, MG_E_INTEGRITY for a
 * shard layout no file can have, MG_E_LIMIT for caps. The caller frees `out` with
 * mg_oms_free (also after a failure).
 */
MG_NODISCARD mg_status mg_oms_verify(const struct mg_policy *pol, const mg_policy_model *entry,
                                     const uint8_t *bundle, size_t len, const char *single_name,
                                     mg_oms *out, mg_error *err);

/* True when `rel` (a path inside the model) is at or below one of the ignore paths. */
bool mg_oms_ignored(const mg_oms *o, const char *rel);

/*
 * The model folder `dirfd` must hold exactly the expected files: ignored paths are skipped
 * (not entered), a symlink is refused unless both bundle and policy allow them (then a link
 * to a regular file counts as that file and a link to a folder is skipped, as the reference
 * verifier does), special files are refused; in "shards" mode an unlisted empty file is
 * tolerated (it has no shard). MG_E_INTEGRITY for any difference.
 */
MG_NODISCARD mg_status mg_oms_check_file_set(const mg_oms *o, int dirfd, mg_error *err);

/* Open the model file `rel` below `dirfd` for reading: no symlink on the way, except that the
 * last component may be one when symlinks are allowed. -1 with errno set on failure. */
int mg_oms_open(const mg_oms *o, int dirfd, const char *rel);

void mg_oms_free(mg_oms *o);

/* FOR TESTS AND THE FUZZ HARNESS: the DSSE pre-authentication encoding of `payload`;
 * malloc'd, NULL when out of memory. */
uint8_t *mg_oms_pae(const uint8_t *payload, size_t len, size_t *out_len);

/* FOR THE FUZZ HARNESS AND TESTS ONLY (the load path must use mg_oms_verify): the statement
 * checks of mg_oms_verify on `payload` (the decoded DSSE payload), without any signature. */
MG_NODISCARD mg_status mg_oms_parse_statement_unverified(const uint8_t *payload, size_t len,
                                                         const char *single_name, mg_oms *out,
                                                         mg_error *err);

/* FOR TESTS AND THE FUZZ HARNESS (the load path checks it inside mg_oms_verify): the Rekor
 * checkpoint `text` (`len` bytes; a signed note) names `tree_size` and `root_hash` and has a
 * signature line by the log whose public key is `spki_der` (DER SubjectPublicKeyInfo; NULL:
 * none verifies) and whose id is `log_id` (key hint: its first 4 bytes). On false, `why`
 * says what failed. */
bool mg_oms_checkpoint_check(const char *text, size_t len, const uint8_t *spki_der,
                             size_t spki_len, const uint8_t log_id[32], uint64_t tree_size,
                             const uint8_t root_hash[32], char *why, size_t why_len);

#endif
