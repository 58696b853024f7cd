/* Internal helpers shared by every module: error filling, checked allocation, limits. */
#ifndef MG_INTERNAL_H
#define MG_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "modelgate.h"

/* Fixed caps on every input (see README "Limits"). */
#define MG_MAX_NDIM 8                       /* dims of one tensor, every format */
#define MG_MAX_NAME_LEN 65536u              /* bytes of one tensor name */
#define MG_MAX_TENSORS 4000000u             /* tensors in one file */
#define MG_MAX_FILES 100000u                /* files in one model directory */
#define MG_MAX_DIR_DEPTH 16u                /* folder depth inside a model directory */
#define MG_MAX_POLICY_BYTES (4u << 20)      /* policy file */
#define MG_MAX_KEY_FILE_BYTES (64u << 10)   /* PEM public key file */
#define MG_MAX_MANIFEST_BYTES (16u << 20)   /* manifest.json (SPEC §3) */
#define MG_MAX_SIGNATURE_BYTES (64u << 10)  /* one signature file (SPEC §3) */
#define MG_MAX_JSON_ASSET_BYTES (64u << 20) /* a JSON file parsed as a format (index, symbol) */
#define MG_MAX_MODEL_FILE_BYTES (UINT64_C(1) << 40) /* one file of a model: 1 TiB */
#define MG_DEFAULT_PARSER_MEMORY (UINT64_C(1) << 30) /* policy limits.parser_memory: 1 GiB */

/* Fill `err` (may be NULL) with `status` and a formatted one-line message; returns status. */
mg_status mg_fail_fmt(mg_error *err, mg_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same as an expression whose value is visibly `status`, so that static analysis (and
 * the reader) can see that a failure path never yields MG_OK. `status` must have no side
 * effects (it is evaluated twice). */
#define mg_fail(err, status, ...) (mg_fail_fmt((err), (status), __VA_ARGS__), (status))
/* Set err->file (path inside the model) unless one is already set. */
void mg_error_set_file(mg_error *err, const char *path);
/* Set err->model unless one is already set. */
void mg_error_set_model(mg_error *err, const char *name);
/* Reset to MG_OK with empty fields. */
void mg_error_clear(mg_error *err);

/* Bounded string copy that always terminates; returns false if `src` was cut. */
bool mg_strlcpy(char *dst, const char *src, size_t cap);
/* strdup that returns NULL on failure (never aborts). */
char *mg_strdup(const char *s);
char *mg_strndup(const char *s, size_t n);
/* calloc(n, size) with the product checked. */
void *mg_calloc(size_t n, size_t size);
/* realloc to n*size with the product checked; on failure the old block is kept. */
void *mg_reallocarray(void *p, size_t n, size_t size);

#endif
