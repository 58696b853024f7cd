/* Signed manifests (SPEC §3): signature verification first, then the schema and file-set
 * rules, and the rollback state kept in state_dir. */
#ifndef MG_MANIFEST_H
#define MG_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"

/* Names of the files that make up a manifest, which are not part of the model's file set. */
#define MG_MANIFEST_NAME "manifest.json"

/* One signature file found next to the manifest. */
typedef struct mg_sig_input {
    const char *filename; /* "manifest.json.sig", "manifest.json.sig.3", "manifest.json.minisig" */
    bool minisig;         /* minisign text format, else raw signature bytes */
    const uint8_t *data;
    size_t len;
} mg_sig_input;

typedef struct mg_manifest {
    char *name;
    uint64_t version;
    mg_pinned_file *files; /* sorted by path */
    size_t file_count;
} mg_manifest;

/* True for "manifest.json", "manifest.json.sig", "manifest.json.sig.1".."9" and
 * "manifest.json.minisig". */
bool mg_manifest_is_own_file(const char *path);

/*
 * Verify the signatures over `data` with the keys that `entry` lists (threshold counted over
 * distinct keys), and only then parse the manifest and apply SPEC §3: name equal to the
 * entry's, version >= 1, not expired, safe relative paths, no duplicates; and the rollback
 * rule against pol->state_dir. MG_E_SIGNATURE for every failure of these, MG_E_LIMIT for caps.
 */
MG_NODISCARD mg_status mg_manifest_verify(const struct mg_policy *pol,
                                          const mg_policy_model *entry, const uint8_t *data,
                                          size_t len, const mg_sig_input *sigs, size_t sig_count,
                                          mg_manifest *out, mg_error *err);

/* After a successful load: record `version` as the highest seen for the model, atomically
 * (no-op without state_dir). */
MG_NODISCARD mg_status mg_manifest_store_version(const struct mg_policy *pol,
                                                 const mg_policy_model *entry, uint64_t version,
                                                 mg_error *err);

void mg_manifest_free(mg_manifest *m);

/* ---- additions (manifest.c owner) ------------------------------------------------- */

/* Most signature files one manifest may have: .sig, .sig.1 .. .sig.9, .minisig. */
#define MG_MANIFEST_MAX_SIGS 11u
/* Longest path inside a model a manifest may list, in bytes. */
#define MG_MANIFEST_MAX_PATH 4096u

/*
 * FOR THE FUZZ HARNESS AND TESTS ONLY (the load path must use mg_manifest_verify): parse
 * `data` as a manifest and apply the schema, path and expiry rules of SPEC §3 with `now`
 * (seconds since the epoch) as the current time, without any signature, name or rollback
 * check. MG_E_SIGNATURE for a bad manifest, MG_E_LIMIT for caps. On success the caller
 * frees `out` with mg_manifest_free.
 */
MG_NODISCARD mg_status mg_manifest_parse_unverified(const uint8_t *data, size_t len, int64_t now,
                                                    mg_manifest *out, mg_error *err);

/* SPEC §3 path rule: relative, '/'-separated, no empty, "." or ".." component, no backslash,
 * no control character, at most MG_MANIFEST_MAX_PATH bytes. */
bool mg_manifest_path_ok(const char *path);

/* Parse an RFC 3339 UTC time of exactly the form "YYYY-MM-DDTHH:MM:SSZ" (seconds 00-59) into
 * seconds since the epoch; false for anything else. */
bool mg_manifest_parse_time(const char *text, int64_t *out);

/* The highest version recorded for model `name` in pol->state_dir (0 when none is recorded
 * or there is no state_dir). MG_E_IO when the state cannot be read or is corrupt. */
MG_NODISCARD mg_status mg_manifest_stored_version(const struct mg_policy *pol, const char *name,
                                                  uint64_t *out, mg_error *err);

#endif
