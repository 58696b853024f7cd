/* Strict standard base64 (RFC 4648 §4, with padding), for minisign keys and signatures and
 * PEM bodies. */
#ifndef MG_BASE64_H
#define MG_BASE64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Decode `in_len` characters of base64 into `out` (room for `out_cap` bytes); the decoded
 * length goes to `*out_len`. Strict: the length is a multiple of 4, only the standard
 * alphabet, '=' only as one or two final padding characters, and the unused bits of the last
 * group are zero (so every byte string has exactly one accepted encoding). No whitespace.
 * False on any other input or when the result would not fit.
 */
bool mg_base64_decode(const char *in, size_t in_len, uint8_t *out, size_t out_cap,
                      size_t *out_len);

/* Characters needed to encode `n` bytes, without the terminating NUL. */
size_t mg_base64_encoded_len(size_t n);
/* Encode `n` bytes into `out`, which holds mg_base64_encoded_len(n) + 1 bytes; NUL-terminated. */
void mg_base64_encode(const uint8_t *in, size_t n, char *out);

#endif
