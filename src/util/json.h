/* Strict JSON through jansson: duplicate keys refused, UTF-8 checked, whole input consumed. */
#ifndef MG_JSON_H
#define MG_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "internal.h"

/*
 * Parse `len` bytes as one JSON value. Duplicate object keys, invalid UTF-8, a NUL byte
 * anywhere, and trailing non-whitespace are refused with `status` and a message naming
 * `what` and the line/column. Returns NULL on failure.
 */
json_t *mg_json_parse(const uint8_t *data, size_t len, const char *what, mg_status status,
                      mg_error *err);

/* A JSON integer that is >= 0, as u64; false for any other type or a negative value. */
bool mg_json_u64(const json_t *v, uint64_t *out);

#endif
