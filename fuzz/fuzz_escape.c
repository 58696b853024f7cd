/* libFuzzer harness for the escaping of untrusted text (src/util/escape.c): whatever the
 * input, the escaped text is valid UTF-8 with no C0, DEL, C1 or bidirectional control, a cut
 * output is a prefix of the whole one, and mg_escape_needed agrees with the result. */
#include <stdlib.h>
#include <string.h>

#include "util/escape.h"
#include "util/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_clean(const char *s, size_t n)
{
    if (!mg_utf8_valid((const uint8_t *)s, n))
        abort();
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        if (c < 0x20 || c == 0x7f)
            abort();
        /* C1 as UTF-8: C2 80..C2 9F; bidi/separators: E2 80 8E/8F/A8..AE, E2 81 A6..A9,
         * D8 9C. */
        if (c == 0xc2 && i + 1 < n && (uint8_t)s[i + 1] <= 0x9f)
            abort();
        if (c == 0xd8 && i + 1 < n && (uint8_t)s[i + 1] == 0x9c)
            abort();
        if (c == 0xe2 && i + 2 < n) {
            uint8_t b = (uint8_t)s[i + 1], d = (uint8_t)s[i + 2];
            if (b == 0x80 && (d == 0x8e || d == 0x8f || (d >= 0xa8 && d <= 0xae)))
                abort();
            if (b == 0x81 && d >= 0xa6 && d <= 0xa9)
                abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    char *all = mg_escape_dup(in, size);
    if (all == NULL)
        return 0;
    size_t n = strlen(all);
    if (n != mg_escape(NULL, 0, in, size))
        abort();
    check_clean(all, n);
    bool same = n == size && memcmp(all, in, size) == 0;
    if (mg_escape_needed(in, size) == same)
        abort();
    char cut[17];
    size_t cap = size % sizeof cut;
    mg_escape(cap ? cut : NULL, cap, in, size);
    if (cap > 0 && strncmp(all, cut, strlen(cut)) != 0)
        abort();
    free(all);
    return 0;
}
