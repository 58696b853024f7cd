#include "util/base64.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int sextet(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

bool mg_base64_decode(const char *in, size_t in_len, uint8_t *out, size_t out_cap,
                      size_t *out_len)
{
    *out_len = 0;
    if (in_len % 4 != 0)
        return false;
    size_t pad = 0;
    if (in_len >= 4 && in[in_len - 1] == '=')
        pad = in[in_len - 2] == '=' ? 2 : 1;
    size_t n = in_len / 4 * 3 - pad;
    if (n > out_cap)
        return false;
    size_t o = 0;
    for (size_t i = 0; i < in_len; i += 4) {
        bool last = i + 4 == in_len;
        int v[4];
        for (size_t j = 0; j < 4; j++) {
            if (last && j >= 4 - pad) {
                v[j] = 0;
                continue;
            }
            v[j] = sextet(in[i + j]);
            if (v[j] < 0)
                return false;
        }
        uint32_t group = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
                         (uint32_t)v[3];
        if (last && pad == 2 && (group & 0xffffu) != 0)
            return false; /* non-zero unused bits: a second encoding of the same bytes */
        if (last && pad == 1 && (group & 0xffu) != 0)
            return false;
        out[o++] = (uint8_t)(group >> 16);
        if (!last || pad < 2)
            out[o++] = (uint8_t)(group >> 8);
        if (!last || pad < 1)
            out[o++] = (uint8_t)group;
    }
    *out_len = o;
    return true;
}

size_t mg_base64_encoded_len(size_t n)
{
    return (n + 2) / 3 * 4;
}

void mg_base64_encode(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t group = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            group |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            group |= in[i + 2];
        out[o++] = alphabet[group >> 18 & 63];
        out[o++] = alphabet[group >> 12 & 63];
        out[o++] = i + 1 < n ? alphabet[group >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? alphabet[group & 63] : '=';
    }
    out[o] = '\0';
}
