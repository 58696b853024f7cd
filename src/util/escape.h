/*
 * Text that comes from files or the command line (tensor and graph-variable names, file
 * paths, GGUF strings, messages quoting them), made safe to show on a terminal or to write
 * into a log: the one escaping used by every human-readable output of the tool and by the
 * audit log for values that are not UTF-8.
 *
 * The escaped form is printable UTF-8 and unambiguous (every backslash starts an escape):
 *   backslash            -> \\
 *   LF, CR, TAB          -> \n, \r, \t
 *   other C0, DEL        -> \xNN (lower-case hex)
 *   a byte that is not part of valid UTF-8 -> \xNN
 *   C1 controls U+0080..U+009F, the bidirectional controls U+061C, U+200E, U+200F,
 *   U+202A..U+202E, U+2066..U+2069, and the separators U+2028, U+2029 -> \uNNNN
 * Everything else (valid UTF-8, printable ASCII) is kept as it is.
 */
#ifndef MG_ESCAPE_H
#define MG_ESCAPE_H

#include <stdbool.h>
#include <stddef.h>

/* Escape the `n` bytes of `s` into `out` of `cap` bytes, NUL-terminated when cap > 0 and
 * cut only between escapes or characters. Returns the length of the whole escaped text
 * (without the NUL), as snprintf does: the output was cut when the result is >= cap. */
size_t mg_escape(char *out, size_t cap, const char *s, size_t n);

/* The escaped text of `n` bytes of `s` in a new malloc'd string; NULL when out of memory. */
char *mg_escape_dup(const char *s, size_t n);

/* True when `n` bytes of `s` would be changed by escaping. */
bool mg_escape_needed(const char *s, size_t n);

#endif
