/*
 * libcurl, opened with dlopen at the first HTTPS transfer instead of linked: libcurl and the
 * two dozen libraries it brings (GnuTLS, Kerberos, LDAP, SSH, ...) cost every process that
 * links modelgate about 9 ms at start on the reference machine, and a program that only loads
 * local models never needs them. The soname is the one the build found
 * (MG_LIBCURL_SONAME, from the library's own dynamic section), so the library that answers is
 * the one modelgate was built against; the search is the dynamic loader's usual one.
 */
#ifndef MG_CURL_API_H
#define MG_CURL_API_H

#include <curl/curl.h>

#include "modelgate.h"

typedef struct mg_curl_fns {
    CURLcode (*global_init)(long);
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
    CURLcode (*easy_perform)(CURL *);
    const char *(*easy_strerror)(CURLcode);
    char *(*easy_escape)(CURL *, const char *, int);
    void (*free)(void *);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
    CURLU *(*url)(void);
    CURLUcode (*url_set)(CURLU *, CURLUPart, const char *, unsigned int);
    CURLUcode (*url_get)(const CURLU *, CURLUPart, char **, unsigned int);
    void (*url_cleanup)(CURLU *);
} mg_curl_fns;

/* Opens libcurl and runs curl_global_init, once per process (thread-safe). Returns the
 * functions, or NULL with err filled (MG_E_IO) when libcurl cannot be opened, lacks one of
 * them, or fails to initialise; the same answer on every later call. */
const mg_curl_fns *mg_curl_load(mg_error *err);

/* The functions, for code that runs only after mg_curl_load succeeded. */
const mg_curl_fns *mg_curl(void);

#endif
