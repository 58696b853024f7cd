#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *mg_status_kind(mg_status status)
{
    switch (status) {
    case MG_OK: return "ok";
    case MG_E_INTEGRITY: return "integrity";
    case MG_E_USAGE: return "usage";
    case MG_E_POLICY: return "policy";
    case MG_E_UNTRUSTED: return "untrusted";
    case MG_E_SIGNATURE: return "signature";
    case MG_E_FORMAT: return "format";
    case MG_E_IO: return "io";
    case MG_E_LIMIT: return "limit";
    }
    return "limit";
}

const char *mg_version(void)
{
    return "0.1.0";
}

void mg_error_clear(mg_error *err)
{
    if (err != NULL) {
        memset(err, 0, sizeof *err);
        err->status = MG_OK;
    }
}

mg_status mg_fail_fmt(mg_error *err, mg_status status, const char *fmt, ...)
{
    if (err == NULL)
        return status;
    err->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    /* One line, printable: a message may quote a name taken from a file. */
    for (char *c = err->message; *c != '\0'; c++) {
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    }
    return status;
}

static void set_sanitised(char *dst, size_t cap, const char *src)
{
    if (dst[0] != '\0' || src == NULL)
        return;
    mg_strlcpy(dst, src, cap);
    for (char *c = dst; *c != '\0'; c++) {
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    }
}

void mg_error_set_file(mg_error *err, const char *path)
{
    if (err != NULL)
        set_sanitised(err->file, sizeof err->file, path);
}

void mg_error_set_model(mg_error *err, const char *name)
{
    if (err != NULL)
        set_sanitised(err->model, sizeof err->model, name);
}

bool mg_strlcpy(char *dst, const char *src, size_t cap)
{
    if (cap == 0)
        return false;
    size_t n = strnlen(src, cap);
    if (n == cap) {
        memcpy(dst, src, cap - 1);
        dst[cap - 1] = '\0';
        return false;
    }
    memcpy(dst, src, n + 1);
    return true;
}

char *mg_strndup(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d == NULL)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *mg_strdup(const char *s)
{
    return mg_strndup(s, strlen(s));
}

void *mg_calloc(size_t n, size_t size)
{
    if (n == 0 || size == 0)
        return calloc(1, 1);
    return calloc(n, size);
}

void *mg_reallocarray(void *p, size_t n, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total))
        return NULL;
    return realloc(p, total == 0 ? 1 : total);
}
