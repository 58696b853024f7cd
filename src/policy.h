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
    /* Sharded (OMS "shards"): shard_count > 0 means `digest` is unused; shard i covers
     * [i*shard_size, min((i+1)*shard_size, size)) and must hash to shards[i] (with `alg`). */
    uint64_t shard_size;
    size_t shard_count;
    uint8_t (*shards)[MG_DIGEST_MAX];
} mg_pinned_file;

typedef enum mg_model_kind {
    MG_MODEL_PINNED_FILE, /* sha256/sha512: a single file */
    MG_MODEL_PINNED_DIR,  /* files: a directory, every file pinned */
    MG_MODEL_MANIFEST,    /* manifest: a directory with a signed manifest */
    MG_MODEL_OCI,         /* oci://HOST/REPO@sha256:...: the files an artifact manifest lists */
    MG_MODEL_OMS          /* oms: an OpenSSF model-signing bundle (directory or single file) */
} mg_model_kind;

typedef enum mg_redirects {
    MG_REDIRECTS_SAME_HOST = 0,
    MG_REDIRECTS_NONE,
    MG_REDIRECTS_HTTPS
} mg_redirects;

/* "sandbox": where the parsers run (sandbox.h). */
typedef enum mg_sandbox_mode {
    MG_SANDBOX_DEFAULT = 0, /* not set: a model takes the policy's, the policy "required" */
    MG_SANDBOX_REQUIRED,
    MG_SANDBOX_OFF
} mg_sandbox_mode;

/* "memory": where a load keeps the verified bytes (spill.h). */
typedef enum mg_memory_mode {
    MG_MEMORY_DEFAULT = 0, /* not set: a model takes the policy's, the policy "auto" */
    MG_MEMORY_AUTO,
    MG_MEMORY_RAM,
    MG_MEMORY_FILE
} mg_memory_mode;

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
    struct mg_oci_ref *oci; /* OCI: the parsed reference (oci.h) */
    struct mg_oms_policy *oms; /* OMS: bundle and trust anchor (oms.h) */
    mg_sandbox_mode sandbox;
    mg_memory_mode memory;
    char **ignore;       /* directory models: patterns of files never read (see hub.h) */
    size_t ignore_count;
    bool hub_snapshot;   /* a Hugging Face hub cache snapshot folder (see hub.h) */
} mg_policy_model;

/*
 * Credentials for one host, from the file the policy's "credentials" names (never from the
 * policy itself). Sent only to that host and port, over TLS, never across a redirect to
 * another host, never logged.
 */
typedef struct mg_credential {
    char *host;        /* "host" or "host:port" as in the file, lower-case (443 dropped) */
    char *username;    /* basic auth, with password */
    char *password;
    char *token;       /* a bearer token */
    char *client_cert; /* TLS client certificate and key (absolute paths) */
    char *client_key;
} mg_credential;

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
    char *credentials_file;
    mg_credential *creds;
    size_t cred_count;
    mg_sandbox_mode sandbox;
    mg_memory_mode memory;
    char *spill_dir; /* NULL: cache_dir serves */
    uint64_t parser_memory; /* limits.parser_memory: bytes parsers may make per load */
};

/* The credentials for `host` ("host[:port]", canonical as in mg_credential), or NULL. */
const mg_credential *mg_policy_credential(const mg_policy *pol, const char *host);

/* Whether `m`'s files are parsed in the confined child (its own "sandbox", else the
 * policy's, else required). */
bool mg_policy_sandbox_required(const mg_policy *pol, const mg_policy_model *m);

/* `m`'s memory mode (its own "memory", else the policy's, else MG_MEMORY_AUTO). */
mg_memory_mode mg_policy_memory(const mg_policy *pol, const mg_policy_model *m);

/* The folder of spill files: spill_dir, else cache_dir, else NULL (no file-backed loads). */
const char *mg_policy_spill_dir(const mg_policy *pol);

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
