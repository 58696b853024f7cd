/* Strict JSON through jansson: duplicate keys refused, UTF-8 checked, whole input consumed,
 * and the size of the tree bounded by a pre-scan before jansson builds it. */
#ifndef MG_JSON_H
#define MG_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "internal.h"

/*
 * Caps on one JSON document, checked by mg_json_prescan() in one pass over the bytes before
 * any tree exists: jansson spends tens of bytes per value however short its text ("[]," is 3
 * bytes), so a cap on bytes alone does not bound memory. `values` counts containers and
 * scalars (object keys ride with their values); `depth` counts nested arrays/objects.
 */
typedef struct mg_json_caps {
    size_t values;
    unsigned depth;
} mg_json_caps;

/* What each kind of JSON the project parses may hold (README "Limits"). */
extern const mg_json_caps mg_json_caps_policy;        /* 1,000,000 values, depth 16 */
extern const mg_json_caps mg_json_caps_manifest;      /* 1,000,000 values, depth 16 */
extern const mg_json_caps mg_json_caps_st_header;     /* 8,000,000 values, depth 16 */
extern const mg_json_caps mg_json_caps_st_index;      /* 4,000,000 values, depth 16 */
extern const mg_json_caps mg_json_caps_mxnet_symbol;  /* 1,000,000 values, depth 32 */
extern const mg_json_caps mg_json_caps_metadata;      /* 8,000,000 values, depth 64 */

/*
 * Count the values of `len` bytes (an upper bound: containers + commas + 1, outside strings)
 * and their deepest nesting, and fail with MG_E_LIMIT naming `what` when either exceeds
 * `caps`. Malformed JSON is not judged here (the parser does). `*cost` (optional) receives
 * an upper estimate of the bytes jansson will allocate for the tree, for budgets.
 * `data` may be NULL when `len` is 0.
 */
MG_NODISCARD mg_status mg_json_prescan(const uint8_t *data, size_t len, const mg_json_caps *caps,
                                       const char *what, uint64_t *cost, mg_error *err);

/*
 * Parse `len` bytes as one JSON value, after mg_json_prescan() with `caps` (MG_E_LIMIT when
 * over). Duplicate object keys, invalid UTF-8, a NUL byte anywhere, and trailing
 * non-whitespace are refused with `status` and a message naming `what` and the line/column.
 * Returns NULL on failure, with err->status telling which.
 */
json_t *mg_json_parse(const uint8_t *data, size_t len, const char *what, mg_status status,
                      const mg_json_caps *caps, mg_error *err);

/* mg_json_parse() without the pre-scan: only for bytes mg_json_prescan() already passed. */
json_t *mg_json_load_prescanned(const uint8_t *data, size_t len, const char *what,
                                mg_status status, mg_error *err);

/* A JSON integer that is >= 0, as u64; false for any other type or a negative value. */
bool mg_json_u64(const json_t *v, uint64_t *out);

#endif
