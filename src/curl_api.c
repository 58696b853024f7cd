/* libcurl opened at the first HTTPS transfer (curl_api.h). */
#include "curl_api.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>

#include "internal.h"

#ifndef MG_LIBCURL_SONAME
#define MG_LIBCURL_SONAME "libcurl.so.4"
#endif

/* Written once under pthread_once, then only read: the module's only state. */
static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static mg_curl_fns fns;
static bool loaded;
static char load_error[200];

static bool sym(void *lib, const char *name, void *out)
{
    void *p = dlsym(lib, name);
    if (p == NULL) {
        snprintf(load_error, sizeof load_error, "%s has no %s", MG_LIBCURL_SONAME, name);
        return false;
    }
    *(void **)out = p; /* (POSIX: a function pointer fits a void *) */
    return true;
}

static void load(void)
{
    void *lib = dlopen(MG_LIBCURL_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        const char *why = dlerror();
        snprintf(load_error, sizeof load_error, "cannot open %s: %s", MG_LIBCURL_SONAME,
                 why != NULL ? why : "unknown error");
        return;
    }
    bool ok = sym(lib, "curl_global_init", &fns.global_init) &&
              sym(lib, "curl_easy_init", &fns.easy_init) &&
              sym(lib, "curl_easy_cleanup", &fns.easy_cleanup) &&
              sym(lib, "curl_easy_setopt", &fns.easy_setopt) &&
              sym(lib, "curl_easy_getinfo", &fns.easy_getinfo) &&
              sym(lib, "curl_easy_perform", &fns.easy_perform) &&
              sym(lib, "curl_easy_strerror", &fns.easy_strerror) &&
              sym(lib, "curl_easy_escape", &fns.easy_escape) && sym(lib, "curl_free", &fns.free) &&
              sym(lib, "curl_slist_append", &fns.slist_append) &&
              sym(lib, "curl_slist_free_all", &fns.slist_free_all) &&
              sym(lib, "curl_url", &fns.url) && sym(lib, "curl_url_set", &fns.url_set) &&
              sym(lib, "curl_url_get", &fns.url_get) &&
              sym(lib, "curl_url_cleanup", &fns.url_cleanup);
    if (ok) {
        /* libcurl's global initialisation is not thread-safe: here, once, under the once. */
        CURLcode rc = fns.global_init(CURL_GLOBAL_DEFAULT);
        if (rc != CURLE_OK) {
            snprintf(load_error, sizeof load_error, "libcurl initialisation failed: %s",
                     fns.easy_strerror(rc));
            ok = false;
        }
    }
    if (!ok) {
        dlclose(lib);
        return;
    }
    loaded = true; /* (the library stays open for the life of the process) */
}

const mg_curl_fns *mg_curl_load(mg_error *err)
{
    pthread_once(&load_once, load);
    if (!loaded) {
        (void)mg_fail(err, MG_E_IO, "HTTPS is not available: %s", load_error);
        return NULL;
    }
    return &fns;
}

const mg_curl_fns *mg_curl(void)
{
    return &fns;
}
