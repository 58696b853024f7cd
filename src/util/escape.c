#include "util/escape.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/utf8.h"

static size_t seq_len(uint8_t c)
{
    return c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3
                                                 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
}

static uint32_t decode(const uint8_t *p, size_t k)
{
    uint32_t cp = k == 2 ? (p[0] & 0x1fu) : k == 3 ? (p[0] & 0x0fu) : (p[0] & 0x07u);
    for (size_t i = 1; i < k; i++)
        cp = (cp << 6) | (p[i] & 0x3fu);
    return cp;
}

/* Code points that change how a terminal shows the text around them. */
static bool hidden(uint32_t cp)
{
    return (cp >= 0x80 && cp <= 0x9f) || cp == 0x061c || cp == 0x200e || cp == 0x200f ||
           (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0x2028 ||
           cp == 0x2029;
}

/* The escaped form of the character at s[i..n) into `tmp`; its length, and `*adv` the input
 * bytes it stands for. */
static size_t escape_one(const uint8_t *s, size_t n, size_t i, char tmp[8], size_t *adv)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t c = s[i];
    *adv = 1;
    switch (c) {
    case '\\':
        memcpy(tmp, "\\\\", 2);
        return 2;
    case '\n':
        memcpy(tmp, "\\n", 2);
        return 2;
    case '\r':
        memcpy(tmp, "\\r", 2);
        return 2;
    case '\t':
        memcpy(tmp, "\\t", 2);
        return 2;
    default:
        break;
    }
    size_t k = seq_len(c);
    if (c < 0x20 || c == 0x7f || k == 0 || k > n - i || !mg_utf8_valid(s + i, k)) {
        tmp[0] = '\\', tmp[1] = 'x', tmp[2] = hex[c >> 4], tmp[3] = hex[c & 15];
        return 4;
    }
    *adv = k;
    if (k > 1) {
        uint32_t cp = decode(s + i, k);
        if (hidden(cp)) {
            tmp[0] = '\\', tmp[1] = 'u';
            for (int d = 0; d < 4; d++)
                tmp[2 + d] = hex[(cp >> (12 - 4 * d)) & 15];
            return 6;
        }
    }
    memcpy(tmp, s + i, k);
    return k;
}

size_t mg_escape(char *out, size_t cap, const char *s, size_t n)
{
    const uint8_t *u = (const uint8_t *)s;
    size_t total = 0, w = 0;
    bool cut = false;
    for (size_t i = 0; i < n;) {
        char tmp[8];
        size_t adv, tl = escape_one(u, n, i, tmp, &adv);
        if (!cut && cap > 0 && tl < cap - w) {
            memcpy(out + w, tmp, tl);
            w += tl;
        } else {
            cut = true;
        }
        total += tl;
        i += adv;
    }
    if (cap > 0)
        out[w] = '\0';
    return total;
}

char *mg_escape_dup(const char *s, size_t n)
{
    /* A byte becomes at most 4 bytes ("\xNN"; a 2-byte C1 control 6), so no overflow. */
    if (n > SIZE_MAX / 4 - 1)
        return NULL;
    size_t need = mg_escape(NULL, 0, s, n);
    char *out = malloc(need + 1);
    if (out != NULL)
        mg_escape(out, need + 1, s, n);
    return out;
}

bool mg_escape_needed(const char *s, size_t n)
{
    const uint8_t *u = (const uint8_t *)s;
    for (size_t i = 0; i < n;) {
        char tmp[8];
        size_t adv, tl = escape_one(u, n, i, tmp, &adv);
        if (tl != adv || memcmp(tmp, u + i, tl) != 0)
            return true;
        i += adv;
    }
    return false;
}
