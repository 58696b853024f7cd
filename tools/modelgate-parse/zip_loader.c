/*
 * libzip for the parser helper, loaded only when a request holds a ZIP-based format (npz,
 * and pickle's check for PyTorch archives). libzip brings libcrypto and libbz2 with it, and
 * every shared library costs the helper's exec on each load (about half a millisecond each
 * here, libcrypto more): the helper links jansson and zlib statically and no libzip, and
 * these functions, the only libzip calls of the parsers, forward to the library that
 * mg_helper_load_zip() opened before the filter went on. The library and the tool link
 * libzip as usual; this file is in the helper only.
 */
#include "zip_loader.h"

#include <dlfcn.h>
#include <stddef.h>
#include <zip.h>

static struct {
    void (*discard)(zip_t *);
    zip_error_t *(*get_error)(zip_t *);
    void (*error_fini)(zip_error_t *);
    void (*error_init)(zip_error_t *);
    const char *(*error_strerror)(zip_error_t *);
    int (*fclose)(zip_file_t *);
    zip_error_t *(*file_get_error)(zip_file_t *);
    zip_file_t *(*fopen_index)(zip_t *, zip_uint64_t, zip_flags_t);
    zip_int64_t (*fread)(zip_file_t *, void *, zip_uint64_t);
    const char *(*get_name)(zip_t *, zip_uint64_t, zip_flags_t);
    zip_int64_t (*get_num_entries)(zip_t *, zip_flags_t);
    zip_t *(*open_from_source)(zip_source_t *, int, zip_error_t *);
    zip_source_t *(*source_buffer_create)(const void *, zip_uint64_t, int, zip_error_t *);
    void (*source_free)(zip_source_t *);
    int (*stat_index)(zip_t *, zip_uint64_t, zip_flags_t, zip_stat_t *);
    void (*stat_init)(zip_stat_t *);
} z;

static bool sym(void *lib, const char *name, void *out)
{
    void *p = dlsym(lib, name);
    if (p == NULL)
        return false;
    *(void **)out = p; /* (POSIX: a function pointer fits a void *) */
    return true;
}

bool mg_helper_load_zip(void)
{
    if (z.discard != NULL)
        return true;
    void *lib = dlopen(MG_LIBZIP_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL)
        return false;
    bool ok = sym(lib, "zip_get_error", &z.get_error) &&
              sym(lib, "zip_error_fini", &z.error_fini) &&
              sym(lib, "zip_error_init", &z.error_init) &&
              sym(lib, "zip_error_strerror", &z.error_strerror) &&
              sym(lib, "zip_fclose", &z.fclose) &&
              sym(lib, "zip_file_get_error", &z.file_get_error) &&
              sym(lib, "zip_fopen_index", &z.fopen_index) && sym(lib, "zip_fread", &z.fread) &&
              sym(lib, "zip_get_name", &z.get_name) &&
              sym(lib, "zip_get_num_entries", &z.get_num_entries) &&
              sym(lib, "zip_open_from_source", &z.open_from_source) &&
              sym(lib, "zip_source_buffer_create", &z.source_buffer_create) &&
              sym(lib, "zip_source_free", &z.source_free) &&
              sym(lib, "zip_stat_index", &z.stat_index) &&
              sym(lib, "zip_stat_init", &z.stat_init) && sym(lib, "zip_discard", &z.discard);
    if (!ok) {
        z.discard = NULL;
        dlclose(lib);
    }
    return ok;
}

/* (Called before mg_helper_load_zip succeeded, each would jump to NULL: a crash of the helper,
 * which the loader reports as a refused load. The helper loads libzip first.) */
void zip_discard(zip_t *a) { z.discard(a); }
zip_error_t *zip_get_error(zip_t *a) { return z.get_error(a); }
void zip_error_fini(zip_error_t *a) { z.error_fini(a); }
void zip_error_init(zip_error_t *a) { z.error_init(a); }
const char *zip_error_strerror(zip_error_t *a) { return z.error_strerror(a); }
int zip_fclose(zip_file_t *a) { return z.fclose(a); }
zip_error_t *zip_file_get_error(zip_file_t *a) { return z.file_get_error(a); }
zip_file_t *zip_fopen_index(zip_t *a, zip_uint64_t b, zip_flags_t c)
{
    return z.fopen_index(a, b, c);
}
zip_int64_t zip_fread(zip_file_t *a, void *b, zip_uint64_t c) { return z.fread(a, b, c); }
const char *zip_get_name(zip_t *a, zip_uint64_t b, zip_flags_t c) { return z.get_name(a, b, c); }
zip_int64_t zip_get_num_entries(zip_t *a, zip_flags_t b) { return z.get_num_entries(a, b); }
zip_t *zip_open_from_source(zip_source_t *a, int b, zip_error_t *c)
{
    return z.open_from_source(a, b, c);
}
zip_source_t *zip_source_buffer_create(const void *a, zip_uint64_t b, int c, zip_error_t *d)
{
    return z.source_buffer_create(a, b, c, d);
}
void zip_source_free(zip_source_t *a) { z.source_free(a); }
int zip_stat_index(zip_t *a, zip_uint64_t b, zip_flags_t c, zip_stat_t *d)
{
    return z.stat_index(a, b, c, d);
}
void zip_stat_init(zip_stat_t *a) { z.stat_init(a); }
