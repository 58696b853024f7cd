/*
 * modelgate: load machine-learning model weights only from trusted sources and only after
 * their integrity has been proven.
 *
 * This header is the whole public API, documented where it is declared.
 *
 * The one path a model takes:
 *
 *     mg_policy *pol; mg_model *m; mg_error err;
 *     if (mg_policy_open(NULL, NULL, &pol, &err) != MG_OK) ...   // $MODELGATE_POLICY or default
 *     if (mg_model_load(pol, "mnist", NULL, &m, &err) != MG_OK) ...
 *     const mg_tensor *w = mg_model_find_tensor(m, "arg:fc1_weight");
 *     ... use w->data (read-only, verified) ...
 *     mg_model_close(m); mg_policy_close(pol);
 *
 * Every fallible call returns an mg_status and fills a caller-owned mg_error. There is no
 * call that hands out bytes before they were verified, and none that skips verification.
 * The library never exits or aborts on any input. Objects are not shared across threads
 * unless stated; a loaded model is immutable and may be read from any thread.
 */
#ifndef MODELGATE_H
#define MODELGATE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define MG_NODISCARD __attribute__((warn_unused_result))
#else
#define MG_NODISCARD
#endif

/*
 * MG_API marks every function of the public API. The library is built with
 * -fvisibility=hidden and a linker version script (node MODELGATE_0): exactly the functions
 * declared here with MG_API are exported, nothing else.
 *
 * ABI and soname policy. The shared library is libmodelgate.so.0 (soname major 0). Within
 * soname 0 the ABI only grows: functions are added (to the version node MODELGATE_0 while
 * the project is 0.x), never removed or changed; the layouts of mg_error, mg_tensor and
 * mg_file_info are frozen; new load options are appended to mg_load_options, whose `size`
 * field tells the library which fields the caller knows. A change that breaks any of this
 * bumps the soname.
 */
#if defined(__GNUC__)
#define MG_API __attribute__((visibility("default")))
#else
#define MG_API
#endif

/* Status codes. The numeric values are the command-line tool's exit codes (docs/exit-codes.md). */
typedef enum mg_status {
    MG_OK = 0,
    MG_E_INTEGRITY = 1, /* digest or size mismatch, missing or unlisted file */
    MG_E_USAGE = 2,     /* the caller's arguments are wrong */
    MG_E_POLICY = 3,    /* policy unreadable, invalid, insecure, or badly signed */
    MG_E_UNTRUSTED = 4, /* the source is not in the policy */
    MG_E_SIGNATURE = 5, /* signature or manifest failure (bad/missing sig, rollback, expiry...) */
    MG_E_FORMAT = 6,    /* unsafe or malformed model file */
    MG_E_IO = 7,        /* I/O or network failure */
    MG_E_LIMIT = 8      /* a resource cap was hit, or an internal error */
} mg_status;

#define MG_ERROR_MESSAGE_MAX 512
#define MG_ERROR_FILE_MAX 512

/*
 * A failure, described. Caller-owned; every function taking one fills it on failure and
 * leaves `status == MG_OK` on success. `message` is one line, never contains file contents.
 * `file` is the path inside the model (never an absolute local path) when one file is at
 * fault. On a digest mismatch `algorithm`, `expected` and `actual` are set (lower-case hex).
 */
typedef struct mg_error {
    mg_status status;
    char message[MG_ERROR_MESSAGE_MAX];
    char model[129];
    char file[MG_ERROR_FILE_MAX];
    char algorithm[8];
    char expected[129];
    char actual[129];
} mg_error;

/* The audit/error kind of a status: "integrity", "usage", "policy", "untrusted", "signature",
 * "format", "io", "limit", or "ok". Never NULL. */
MG_API const char *mg_status_kind(mg_status status);

/* Element types. Sizes are in mg_dtype_size(). MG_DTYPE_GGML_BLOCK marks a quantized GGUF
 * tensor: its data is a sequence of blocks of the ggml type named by mg_tensor.dtype_name. */
typedef enum mg_dtype {
    MG_DTYPE_INVALID = 0,
    MG_DTYPE_BOOL,
    MG_DTYPE_U8,
    MG_DTYPE_I8,
    MG_DTYPE_U16,
    MG_DTYPE_I16,
    MG_DTYPE_U32,
    MG_DTYPE_I32,
    MG_DTYPE_U64,
    MG_DTYPE_I64,
    MG_DTYPE_F16,
    MG_DTYPE_BF16,
    MG_DTYPE_F32,
    MG_DTYPE_F64,
    MG_DTYPE_C64,
    MG_DTYPE_F8_E4M3,
    MG_DTYPE_F8_E5M2,
    MG_DTYPE_GGML_BLOCK
} mg_dtype;

/* Bytes per element (0 for MG_DTYPE_GGML_BLOCK and MG_DTYPE_INVALID). */
MG_API size_t mg_dtype_size(mg_dtype dtype);
/* "F32", "BF16", ... ("?" for an invalid value). */
MG_API const char *mg_dtype_name(mg_dtype dtype);

/* Tensor flags. */
#define MG_TENSOR_BIG_ENDIAN 0x1u  /* data is stored big-endian (npy '>'); see mg_tensor_copy */
#define MG_TENSOR_FORTRAN    0x2u  /* data is stored column-major (npy fortran_order) */

/*
 * A tensor: a zero-copy view into the verified, read-only memory of the model. The pointers
 * stay valid until mg_model_close(). `data` may be unaligned: read it with memcpy.
 * `shape` lists dimensions outermost first (numpy order; for GGUF the reverse of ggml's ne).
 * `offset` is the byte offset of the data from the start of its file; for a member of a
 * DEFLATE-compressed npz it is the offset inside the decompressed member (see README).
 */
typedef struct mg_tensor {
    const char *name;
    mg_dtype dtype;
    const char *dtype_name; /* mg_dtype_name(), or the ggml block type name ("Q4_K") */
    uint32_t ndim;
    const uint64_t *shape;
    uint64_t nbytes;
    const void *data;
    const char *file; /* path of its file inside the model */
    uint64_t offset;
    uint32_t flags;     /* MG_TENSOR_* */
    uint32_t ggml_type; /* the ggml type id when dtype == MG_DTYPE_GGML_BLOCK */
} mg_tensor;

/*
 * Copy a tensor's data into `dst` as little-endian, C (row-major) order, converting byte
 * order and Fortran order when the tensor is stored that way. `dst_len` must be at least
 * `t->nbytes`. Block (quantized) tensors are copied as stored.
 */
MG_API MG_NODISCARD mg_status mg_tensor_copy(const mg_tensor *t, void *dst, size_t dst_len, mg_error *err);

/* ---- policy ------------------------------------------------------------------------ */

typedef struct mg_policy mg_policy;

/*
 * Load and check a policy (docs/policy.md, modelgate-policy(5)). `path` NULL means
 * $MODELGATE_POLICY, else /etc/modelgate/policy.json. `policy_key` is a PEM public key file
 * whose signature `<path>.sig` (the policy file's name plus ".sig", raw signature bytes) must
 * verify; NULL means $MODELGATE_POLICY_KEY, and if that is unset too no policy signature is
 * required.
 * The policy file, its key files and their folders must be owned by root or the effective
 * user and not writable by group or others, and are opened without following symlinks.
 * Returns MG_E_POLICY for any problem (the first one is in err->message).
 */
MG_API MG_NODISCARD mg_status mg_policy_open(const char *path, const char *policy_key, mg_policy **out,
                                      mg_error *err);

/*
 * Check a policy and report every problem found, one call of `report` each (a one-line
 * message that starts with the JSON path of the problem, such as "$.models[2].source").
 * Returns MG_OK when there is none, else the status of the first (MG_E_POLICY).
 */
MG_API MG_NODISCARD mg_status mg_policy_check(const char *path, const char *policy_key,
                                       void (*report)(const char *problem, void *ctx), void *ctx,
                                       mg_error *err);

/* The path the policy was read from (absolute). */
MG_API const char *mg_policy_path(const mg_policy *policy);

MG_API void mg_policy_close(mg_policy *policy);

/* ---- models ------------------------------------------------------------------------ */

typedef struct mg_model mg_model;

/*
 * Options of a load, verify or fetch; pass NULL for the defaults. Zero-initialise it and set
 * what you need: every field's zero value is its default. `size` is sizeof(mg_load_options)
 * as the caller was compiled (0 is taken as the size of this first layout). Later versions
 * only append fields; the library reads no field past `size`, so a program built against an
 * older header keeps working, and one built against a newer header gets MG_E_USAGE from an
 * older library only if it set a field that library does not know (non-zero bytes past its
 * own layout).
 */
typedef struct mg_load_options {
    size_t size;      /* sizeof(mg_load_options), or 0 */
    unsigned threads; /* hashing workers; 0 = one per online core */
    /* Called from the loading thread about every 200 ms while files are hashed or fetched;
     * may be NULL. */
    void (*progress)(uint64_t done_bytes, uint64_t total_bytes, void *ctx);
    void *progress_ctx;
} mg_load_options;

/*
 * Verify and load a model. `source` is a model name from the policy or its exact source
 * (a local path, compared after lexical normalisation, or an https URL). Nothing of the
 * model is read before the source matched the policy; every file is read once into private
 * memory and hashed as it arrives; only when every file matched are the files parsed. On
 * success `*out` is a complete model whose memory is read-only; on failure `*out` is NULL
 * and nothing of the model remains. Every attempt is written to the policy's audit log; a
 * configured log that cannot be written fails the call (MG_E_IO).
 * `opts` may be NULL.
 */
MG_API MG_NODISCARD mg_status mg_model_load(const mg_policy *policy, const char *source,
                                     const mg_load_options *opts, mg_model **out, mg_error *err);

/*
 * Verify a model's files without parsing them: the same checks as mg_model_load up to and
 * including the digests. Every file is hashed through a bounded window (a few hundred KiB per
 * hashing thread), never held whole: memory does not grow with the model's size. The
 * returned model has files (path, size, digest, and the format told from each file's first
 * 64 KiB and its name) but no bytes (mg_file_info.data is NULL, mg_model_asset gives
 * MG_E_USAGE) and no tensors. Audited as event "verify".
 */
MG_API MG_NODISCARD mg_status mg_model_verify(const mg_policy *policy, const char *source,
                                       const mg_load_options *opts, mg_model **out, mg_error *err);

/*
 * Verify a model exactly as mg_model_verify does, in the same bounded memory, and publish
 * every verified file to the policy's cache_dir as cache_dir/sha256/<hex of its SHA-256>:
 * each file (downloaded over HTTPS, or copied from a local model) streams into an unnamed
 * temporary file in the cache, linked to its name only after every file of the model matched.
 * A large remote file may come over parallel range requests, and a large download that broke
 * is resumed by the next fetch from a private partial file (docs/https.md); neither is trusted
 * before the whole file's digest matched. Audited as event "fetch". The cache is a speed-up,
 * never a trust anchor: later loads re-hash what they read from it.
 */
MG_API MG_NODISCARD mg_status mg_model_fetch(const mg_policy *policy, const char *source,
                                      const mg_load_options *opts, mg_model **out, mg_error *err);

/* After mg_model_fetch: the absolute cache path of file `index`, or NULL. */
MG_API const char *mg_model_cache_path(const mg_model *model, size_t index);

MG_API const char *mg_model_name(const mg_model *model);
MG_API const char *mg_model_source(const mg_model *model);
/* Where the model's files were parsed: 1 in the confined child process (the policy's
 * "sandbox": "required", the default), 0 in this process ("sandbox": "off"), -1 not at all
 * (mg_model_verify, mg_model_fetch). */
MG_API int mg_model_parse_confined(const mg_model *model);
/* Where the model's verified bytes are: 1 in private unnamed files of the policy's spill
 * folder, mapped read-only (policy "memory": "file", or "auto" for a model larger than the
 * memory the process may use), 0 in memory. */
MG_API int mg_model_file_backed(const mg_model *model);

/* A verified file of a model. All pointers live until mg_model_close(). */
typedef struct mg_file_info {
    const char *path;      /* inside the model ("model.safetensors", "tokenizer/x.json") */
    const char *format;    /* "safetensors", "npy", "npz", "gguf", "mxnet-params",
                              "mxnet-symbol", "safetensors-index", or "asset" */
    uint64_t size;
    const char *algorithm; /* "sha256" or "sha512": the digest that was verified */
    const char *digest;    /* lower-case hex of that digest */
    const void *data;      /* the verified bytes, read-only (never NULL, also when empty),
                              after mg_model_load; NULL after mg_model_verify and
                              mg_model_fetch, which keep no bytes */
    const char *metadata_json; /* format metadata as compact JSON (GGUF key/values, MXNet
                                  graph summary), or NULL; a string may hold a NUL, written
                                  \u0000 (jansson: parse with JSON_ALLOW_NUL) */
} mg_file_info;

MG_API size_t mg_model_file_count(const mg_model *model);
/* Fills `out` for file `index` (< mg_model_file_count); returns MG_E_USAGE when out of range. */
MG_API MG_NODISCARD mg_status mg_model_file(const mg_model *model, size_t index, mg_file_info *out);

MG_API size_t mg_model_tensor_count(const mg_model *model);
/* NULL when out of range. */
MG_API const mg_tensor *mg_model_tensor(const mg_model *model, size_t index);
/* The first tensor named `name` (in file order), or NULL. */
MG_API const mg_tensor *mg_model_find_tensor(const mg_model *model, const char *name);

/*
 * The verified bytes of a file of the model by its path inside the model (any file, though
 * it is meant for non-weight assets such as config.json or tokenizer.json, which the
 * application must read from here and not from disk). MG_E_USAGE if there is no such file,
 * or if the model comes from mg_model_verify or mg_model_fetch (they keep no bytes).
 */
MG_API MG_NODISCARD mg_status mg_model_asset(const mg_model *model, const char *path, const void **data,
                                      size_t *len, mg_error *err);

MG_API void mg_model_close(mg_model *model);

/* ---- utilities --------------------------------------------------------------------- */

typedef enum mg_digest_alg { MG_SHA256 = 0, MG_SHA512 = 1 } mg_digest_alg;

/* Hash a file (opened without following symlinks), streaming. `hex` receives lower-case hex
 * and must hold 129 bytes. */
MG_API MG_NODISCARD mg_status mg_hash_file(const char *path, mg_digest_alg alg, char hex[129],
                                    mg_error *err);

/* The library's version, "MAJOR.MINOR.PATCH". */
MG_API const char *mg_version(void);

#ifdef __cplusplus
}
#endif
#endif
