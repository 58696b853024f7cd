/* Helpers for the cmocka unit tests. */
#ifndef MG_TESTUTIL_H
#define MG_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the includes above first. */
#include <cmocka.h>

/* Read a whole file into a malloc'd buffer (aborts the test on failure). */
uint8_t *tu_read_file(const char *path, size_t *len);
/* "$MG_SOURCE_DIR/<rel>", in a static buffer. */
const char *tu_source(const char *rel);
/* Make a fresh private temporary directory (mode 0700); returns a malloc'd path. */
char *tu_mkdtemp(void);
/* Write `len` bytes to `dir/name` (mode 0644). */
void tu_write_file(const char *dir, const char *name, const void *data, size_t len);
/* tu_write_file, then open it with `flags` (O_CLOEXEC added); the descriptor. */
int tu_write_and_open(const char *dir, const char *name, const void *data, size_t len,
                      int flags);
/* rm -rf a directory made by tu_mkdtemp. */
void tu_rmtree(const char *dir);

#endif
