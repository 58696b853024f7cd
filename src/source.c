#define _GNU_SOURCE
#include "source.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MG_SOURCE_MAX 4096

bool mg_source_is_url(const char *s)
{
    const char *p = strstr(s, "://");
    if (p == NULL || p == s)
        return false;
    for (const char *c = s; c < p; c++) {
        if (!isalpha((unsigned char)*c) && *c != '+' && *c != '-' && *c != '.')
            return false;
    }
    return true;
}

bool mg_source_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 1 && a[la - 1] == '/')
        la--;
    if (lb > 1 && b[lb - 1] == '/')
        lb--;
    return la == lb && memcmp(a, b, la) == 0;
}

mg_status mg_source_normalize_path(const char *path, const char *base_dir, char **out,
                                   mg_source_info *info, mg_error *err)
{
    *out = NULL;
    memset(info, 0, sizeof *info);
    size_t plen = strlen(path);
    if (plen == 0)
        return mg_fail(err, MG_E_USAGE, "empty path");
    if (plen >= MG_SOURCE_MAX)
        return mg_fail(err, MG_E_USAGE, "path longer than %d bytes", MG_SOURCE_MAX);
    info->wildcard = strpbrk(path, "*?") != NULL;
    info->directory = path[plen - 1] == '/';

    char cwd[PATH_MAX];
    const char *base = "";
    if (path[0] != '/') {
        if (base_dir == NULL) {
            if (getcwd(cwd, sizeof cwd) == NULL)
                return mg_fail(err, MG_E_IO, "cannot get the current directory: %s",
                               strerror(errno));
            base = cwd;
        } else {
            base = base_dir;
        }
    }
    size_t blen = strlen(base);
    char *joined = malloc(blen + plen + 2);
    char *res = malloc(blen + plen + 3);
    if (joined == NULL || res == NULL) {
        free(joined);
        free(res);
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    }
    memcpy(joined, base, blen);
    joined[blen] = '/';
    memcpy(joined + blen + 1, path, plen + 1);

    /* Walk the components; `res` is built as "/a/b/c". */
    size_t rlen = 0;
    const char *p = joined;
    while (*p != '\0') {
        while (*p == '/')
            p++;
        if (*p == '\0')
            break;
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 1 && p[0] == '.') {
            info->dot_segments = true;
        } else if (n == 2 && p[0] == '.' && p[1] == '.') {
            info->dot_segments = true;
            while (rlen > 0 && res[rlen - 1] != '/')
                rlen--;
            if (rlen > 0)
                rlen--; /* drop the '/' too */
        } else {
            res[rlen++] = '/';
            memcpy(res + rlen, p, n);
            rlen += n;
        }
        p += n;
    }
    /* The base directory never has dot segments of the caller's making: only count those
     * of `path` itself. */
    if (info->dot_segments) {
        bool own = false;
        const char *q = path;
        while (*q != '\0') {
            while (*q == '/')
                q++;
            const char *e = strchr(q, '/');
            size_t n = e ? (size_t)(e - q) : strlen(q);
            if ((n == 1 && q[0] == '.') || (n == 2 && q[0] == '.' && q[1] == '.'))
                own = true;
            q += n;
        }
        info->dot_segments = own;
    }
    if (rlen == 0 || info->directory) /* the root, or a directory's trailing '/' */
        res[rlen++] = '/';
    res[rlen] = '\0';
    free(joined);
    *out = res;
    return MG_OK;
}

static bool is_unreserved(int c)
{
    return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

mg_status mg_source_normalize_url(const char *url, char **out, mg_source_info *info,
                                  mg_error *err)
{
    *out = NULL;
    memset(info, 0, sizeof *info);
    size_t len = strlen(url);
    if (len == 0 || len >= MG_SOURCE_MAX)
        return mg_fail(err, MG_E_UNTRUSTED, "URL is empty or longer than %d bytes",
                       MG_SOURCE_MAX);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c <= 0x20 || c >= 0x7f)
            return mg_fail(err, MG_E_UNTRUSTED, "URL contains a space or control character");
    }
    info->remote = true;
    info->wildcard = strpbrk(url, "*?") != NULL;
    const char *sep = strstr(url, "://");
    if (sep == NULL)
        return mg_fail(err, MG_E_UNTRUSTED, "not an URL");
    size_t slen = (size_t)(sep - url);
    if (slen != 5 || strncasecmp(url, "https", 5) != 0)
        return mg_fail(err, MG_E_UNTRUSTED, "only https URLs are allowed");
    if (strchr(url, '#') != NULL)
        return mg_fail(err, MG_E_UNTRUSTED, "URL has a fragment");
    if (strchr(url, '?') != NULL)
        return mg_fail(err, MG_E_UNTRUSTED, "URL has a query or wildcard");
    const char *auth = sep + 3;
    const char *path = strchr(auth, '/');
    size_t alen = path ? (size_t)(path - auth) : strlen(auth);
    if (memchr(auth, '@', alen) != NULL)
        return mg_fail(err, MG_E_UNTRUSTED, "URL has user information");
    if (alen == 0)
        return mg_fail(err, MG_E_UNTRUSTED, "URL has no host");

    char *res = malloc(len + 16);
    if (res == NULL)
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    size_t r = 0;
    memcpy(res, "https://", 8);
    r = 8;
    /* Host (lower case) and port (":443" and ":" dropped). */
    size_t hostlen = alen;
    const char *colon = NULL;
    if (auth[0] == '[') {
        const char *rb = memchr(auth, ']', alen);
        if (rb == NULL) {
            free(res);
            return mg_fail(err, MG_E_UNTRUSTED, "URL has a malformed IPv6 host");
        }
        if ((size_t)(rb - auth) + 1 < alen)
            colon = rb + 1;
        hostlen = (size_t)(rb - auth) + 1;
    } else {
        colon = memchr(auth, ':', alen);
        if (colon != NULL)
            hostlen = (size_t)(colon - auth);
    }
    if (hostlen == 0) {
        free(res);
        return mg_fail(err, MG_E_UNTRUSTED, "URL has no host");
    }
    for (size_t i = 0; i < hostlen; i++)
        res[r++] = (char)tolower((unsigned char)auth[i]);
    if (colon != NULL) {
        if (*colon != ':') {
            free(res);
            return mg_fail(err, MG_E_UNTRUSTED, "URL has a malformed port");
        }
        const char *port = colon + 1;
        size_t plen = alen - (size_t)(port - auth);
        for (size_t i = 0; i < plen; i++) {
            if (!isdigit((unsigned char)port[i])) {
                free(res);
                return mg_fail(err, MG_E_UNTRUSTED, "URL has a malformed port");
            }
        }
        while (plen > 1 && port[0] == '0') {
            port++;
            plen--;
        }
        if (plen > 5) {
            free(res);
            return mg_fail(err, MG_E_UNTRUSTED, "URL has a malformed port");
        }
        if (plen > 0 && !(plen == 3 && memcmp(port, "443", 3) == 0)) {
            res[r++] = ':';
            memcpy(res + r, port, plen);
            r += plen;
        }
    }
    /* Path: decode unreserved escapes, upper-case the others; detect dot segments. */
    if (path == NULL) {
        res[r++] = '/';
    } else {
        size_t seg_start = r;
        for (const char *p = path; *p != '\0'; p++) {
            if (*p == '%') {
                int hi = hexval((unsigned char)p[1]);
                int lo = hi < 0 ? -1 : hexval((unsigned char)p[2]);
                if (hi < 0 || lo < 0) {
                    free(res);
                    return mg_fail(err, MG_E_UNTRUSTED, "URL has a malformed percent escape");
                }
                int c = hi * 16 + lo;
                if (is_unreserved(c)) {
                    res[r++] = (char)c;
                } else {
                    res[r++] = '%';
                    res[r++] = (char)toupper((unsigned char)p[1]);
                    res[r++] = (char)toupper((unsigned char)p[2]);
                }
                p += 2;
            } else {
                res[r++] = *p;
            }
            if (*p == '/' || p[1] == '\0') {
                /* A finished segment spans (seg_start, r) without its '/'. */
                size_t s = seg_start + 1, e = r;
                if (*p == '/' && e > 0)
                    e--;
                if (e > s && ((e - s == 1 && res[s] == '.') ||
                              (e - s == 2 && res[s] == '.' && res[s + 1] == '.')))
                    info->dot_segments = true;
                if (*p == '/')
                    seg_start = r - 1;
            }
        }
    }
    res[r] = '\0';
    info->directory = res[r - 1] == '/';
    *out = res;
    return MG_OK;
}
