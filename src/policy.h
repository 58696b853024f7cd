/* The policy (SPEC §2): strict parse, permission checks, and the entries load.c uses. */
#ifndef MG_POLICY_H
#define MG_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "digest.h"
#include "internal.h"
#include "sig.h"

typedef struct mg_policy_key {
    char *name;
    mg_sig_key *key;
} mg_policy_key;

/* One expected file: a pinned digest, from the policy or from a verified manifest. */
typedef struct mg_pinned_file {
    char *path; /* inside the model; for a single-file model the file's base name */
    mg_digest_alg alg;
    uint8_t digest[MG_DIGEST_MAX];
    bool has_size;
    uint64_t size;
} mg_pinned_file;

typedef enum mg_model_kind {
    MG_MODEL_PINNED_FILE, /* sha256/sha512: a single file */
    MG_MODEL_PINNED_DIR,  /* files: a directory, every file pinned */
    MG_MODEL_MANIFEST     /* manifest: a directory with a signed manifest */
} mg_model_kind;

typedef enum mg_redirects {
    MG_REDIRECTS_SAME_HOST = 0,
    MG_REDIRECTS_NONE,
    MG_REDIRECTS_HTTPS
} mg_redirects;

typedef struct mg_policy_model {
    char *name;
    char *source;    /* canonical: absolute normalised path, or normalised URL */
    bool remote;     /* https URL */
    bool directory;  /* source ends in '/' */
    mg_model_kind kind;
    mg_pinned_file *files; /* PINNED_FILE: 1 entry; PINNED_DIR: every file */
    size_t file_count;
    size_t *keys;    /* MANIFEST: indexes into mg_policy.keys */
    size_t key_count;
    unsigned threshold;
    mg_redirects redirects;
} mg_policy_model;

struct mg_policy {
    char *path; /* absolute path of the policy file */
    char *dir;  /* its folder */
    mg_policy_key *keys;
    size_t key_count;
    mg_policy_model *models;
    size_t model_count;
    char *audit_log; /* absolute paths, or NULL */
    char *state_dir;
    char *cache_dir;
    char *ca_file;
    uint64_t parser_memory; /* limits.parser_memory: bytes parsers may make per load */
};

/* The entry `source` names (a model name, or an exact source after normalisation), or NULL
 * with MG_E_UNTRUSTED. */
MG_NODISCARD mg_status mg_policy_find(const mg_policy *pol, const char *source,
                                      const mg_policy_model **out, mg_error *err);

/* Parse policy text from memory, as if read from a file in folder `dir` (no permission
 * checks on the policy itself; key files are still opened and checked). For the fuzz
 * harness and tests. */
MG_NODISCARD mg_status mg_policy_from_buffer(const uint8_t *data, size_t len, const char *dir,
                                             mg_policy **out, mg_error *err);

#endif
