/* Strict UTF-8 validation, shared by the parsers (names, keys, headers). */
#ifndef MG_UTF8_H
#define MG_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True when the `n` bytes are valid UTF-8: no overlong forms, no surrogates, nothing above
 * U+10FFFF, no truncated sequence. (NUL is valid UTF-8; callers refuse it where needed.) */
bool mg_utf8_valid(const uint8_t *s, size_t n);

#endif
