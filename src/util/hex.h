/* Lower-case hex encoding and strict decoding. */
#ifndef MG_HEX_H
#define MG_HEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Write 2*n hex digits and a NUL into `out` (which holds 2*n+1 bytes). */
void mg_hex_encode(const uint8_t *in, size_t n, char *out);
/* Decode exactly `n` bytes from 2*n hex digits (either case); false on any other input
 * (wrong length, a non-hex character). */
bool mg_hex_decode(const char *hex, uint8_t *out, size_t n);

#endif
