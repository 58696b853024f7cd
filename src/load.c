#define _GNU_SOURCE
/*
 * THE path a model takes into a process:
 *   policy -> source match -> expected file set -> read once + hash (parallel) -> compare
 *   -> (load) detect + parse + build tensors -> seal read-only -> audit -> hand out.
 * Nothing is parsed before every file matched, and nothing is handed out on failure.
 */
#include <stddef.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "cache.h"
#include "fetch.h"
#include "manifest.h"
#include "format/mxnet_checkpoint.h"
#include "format/safetensors_index.h"
#include "model.h"
#include "policy.h"
#include "util/fsutil.h"
#include "util/hex.h"
#include "util/json.h"

typedef enum load_mode { MODE_VERIFY, MODE_LOAD, MODE_FETCH } load_mode;

static const char *mode_event(load_mode mode)
{
    return mode == MODE_LOAD ? "load" : mode == MODE_FETCH ? "fetch" : "verify";
}

/* ---- the files that are there -------------------------------------------------------- */

typedef struct name_list {
    char **names;
    size_t count;
    size_t cap;
} name_list;

static void name_list_free(name_list *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->names[i]);
    free(l->names);
    memset(l, 0, sizeof *l);
}

/* gcc -fanalyzer loses track of `name` once it is stored in the realloc'd array and reports
 * a leak; the array owns it and name_list_free() releases it (LeakSanitizer agrees). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpragmas"
#pragma GCC diagnostic ignored "-Wanalyzer-malloc-leak"
#endif
static mg_status name_list_add(name_list *l, char *name, mg_error *err)
{
    if (l->count >= MG_MAX_FILES) {
        free(name);
        return mg_fail(err, MG_E_LIMIT, "more than %u files in the model directory",
                       MG_MAX_FILES);
    }
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **n = mg_reallocarray(l->names, cap, sizeof *n);
        if (n == NULL) {
            free(name);
            return mg_fail(err, MG_E_LIMIT, "out of memory");
        }
        l->names = n;
        l->cap = cap;
    }
    l->names[l->count++] = name;
    return MG_OK;
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file below `dirfd`, as relative paths; a symlink or special file anywhere is
 * refused (it is not a file the policy could have pinned). */
static mg_status list_dir(int dirfd, const char *prefix, unsigned depth, name_list *out,
                          mg_error *err)
{
    if (depth > MG_MAX_DIR_DEPTH)
        return mg_fail(err, MG_E_LIMIT, "model directory nested deeper than %u levels",
                       MG_MAX_DIR_DEPTH);
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return mg_fail(err, MG_E_IO, "cannot open the model directory: %s", strerror(errno));
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return mg_fail(err, MG_E_IO, "cannot read the model directory: %s", strerror(errno));
    }
    mg_status s = MG_OK;
    struct dirent *e;
    while (s == MG_OK && (errno = 0, e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        size_t plen = strlen(prefix), nlen = strlen(e->d_name);
        char *rel = malloc(plen + nlen + 2);
        if (rel == NULL) {
            s = mg_fail(err, MG_E_LIMIT, "out of memory");
            break;
        }
        memcpy(rel, prefix, plen);
        memcpy(rel + plen, e->d_name, nlen + 1);
        struct stat st;
        if (fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            s = mg_fail(err, MG_E_IO, "cannot stat a file of the model: %s", strerror(errno));
            mg_error_set_file(err, rel);
            free(rel);
        } else if (S_ISREG(st.st_mode)) {
            s = name_list_add(out, rel, err);
        } else if (S_ISDIR(st.st_mode)) {
            int sub = openat(fd, e->d_name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0) {
                s = mg_fail(err, MG_E_IO, "cannot open a folder of the model: %s",
                            strerror(errno));
                mg_error_set_file(err, rel);
                free(rel);
            } else {
                rel[plen + nlen] = '/';
                rel[plen + nlen + 1] = '\0';
                s = list_dir(sub, rel, depth + 1, out, err);
                close(sub);
                free(rel);
            }
        } else {
            s = mg_fail(err, MG_E_INTEGRITY, "%s in the model directory is refused",
                        S_ISLNK(st.st_mode) ? "a symlink" : "a special file");
            mg_error_set_file(err, rel);
            free(rel);
        }
    }
    if (s == MG_OK && errno != 0)
        s = mg_fail(err, MG_E_IO, "cannot read the model directory: %s", strerror(errno));
    closedir(d);
    return s;
}

/* ---- one load ------------------------------------------------------------------------ */

typedef struct job {
    const mg_pinned_file *pin;
    mg_verified_file *file;
    mg_error err;
} job;

typedef struct loader {
    const mg_policy *pol;
    const mg_policy_model *entry;
    load_mode mode;
    int dirfd; /* directory models: the folder, opened without symlinks */
    mg_pinned_file *expected; /* sorted by path */
    size_t expected_count;
    mg_manifest manifest;
    bool have_manifest;
    job *jobs;
    _Atomic size_t next_job;
    _Atomic bool failed;
    _Atomic uint64_t done_bytes;
    uint64_t total_bytes;
    bool prefault; /* fewer files than cores: spare cores back the memory ahead of readers */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    size_t finished_workers;
} loader;

static int cmp_pin(const void *a, const void *b)
{
    return strcmp(((const mg_pinned_file *)a)->path, ((const mg_pinned_file *)b)->path);
}

static mg_status open_model_file(loader *L, const char *rel, int *fd, mg_error *err)
{
    if (L->entry->kind == MG_MODEL_PINNED_FILE)
        *fd = mg_open_nofollow(L->entry->source, O_RDONLY | O_NONBLOCK, NULL);
    else
        *fd = mg_openat_nofollow(L->dirfd, rel, O_RDONLY | O_NONBLOCK);
    if (*fd >= 0)
        return MG_OK;
    if (errno == ELOOP || errno == ENOTDIR)
        return mg_fail(err, MG_E_INTEGRITY, "a symlink is on the path of the file (refused)");
    if (errno == ENOENT)
        return mg_fail(err, L->entry->kind == MG_MODEL_PINNED_FILE ? MG_E_IO : MG_E_INTEGRITY,
                       "file not found");
    return mg_fail(err, MG_E_IO, "cannot open: %s", strerror(errno));
}

/* The URL of a file of a remote model: the source itself for a single file, else the
 * directory URL plus the path, every byte outside the unreserved set and '/' escaped. */
static char *remote_url(const mg_policy_model *entry, const char *rel)
{
    if (entry->kind == MG_MODEL_PINNED_FILE)
        return mg_strdup(entry->source);
    size_t sl = strlen(entry->source), rl = strlen(rel);
    char *u = malloc(sl + 3 * rl + 1);
    if (u == NULL)
        return NULL;
    memcpy(u, entry->source, sl);
    size_t n = sl;
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < rl; i++) {
        unsigned char c = (unsigned char)rel[i];
        bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '.' || c == '_' || c == '~' || c == '/';
        if (plain) {
            u[n++] = (char)c;
        } else {
            u[n++] = '%';
            u[n++] = hex[c >> 4];
            u[n++] = hex[c & 15];
        }
    }
    u[n] = '\0';
    return u;
}

/* A verified copy in the cache saves the download; it is hashed again like any read, and a
 * copy that does not match is ignored (the cache is never a trust anchor). */
static bool read_from_cache(loader *L, job *j)
{
    const mg_pinned_file *pin = j->pin;
    if (L->pol->cache_dir == NULL || pin->alg != MG_SHA256)
        return false;
    int fd = -1;
    mg_error e;
    if (mg_cache_lookup(L->pol->cache_dir, pin->digest, &fd, &e) != MG_OK || fd < 0)
        return false;
    uint64_t want = pin->has_size ? pin->size : UINT64_MAX;
    mg_status s = mg_region_read_hashed(fd, want, pin->alg, &j->file->region, j->file->digest,
                                        NULL, &e);
    close(fd);
    if (s == MG_OK && mg_digest_equal(j->file->digest, pin->digest, 32))
        return true;
    mg_region_free(&j->file->region);
    return false;
}

static mg_status fetch_job(loader *L, job *j, mg_error *err)
{
    const mg_pinned_file *pin = j->pin;
    if (read_from_cache(L, j))
        return MG_OK;
    char *url = remote_url(L->entry, pin->path);
    if (url == NULL)
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    mg_fetch_config cfg = {L->pol->ca_file, L->entry->redirects};
    mg_status s = mg_fetch_region(&cfg, url, pin->has_size ? pin->size : MG_MAX_MODEL_FILE_BYTES,
                                  pin->has_size, pin->alg, &j->file->region, j->file->digest,
                                  &L->done_bytes, err);
    free(url);
    return s;
}

static void run_job(loader *L, job *j)
{
    mg_error *err = &j->err;
    mg_verified_file *f = j->file;
    const mg_pinned_file *pin = j->pin;
    mg_status s;
    if (L->entry->remote) {
        s = fetch_job(L, j, err);
    } else {
        int fd;
        s = open_model_file(L, pin->path, &fd, err);
        if (s == MG_OK) {
            uint64_t want = pin->has_size ? pin->size : UINT64_MAX;
            s = mg_region_read_hashed_ex(fd, want, pin->alg, L->prefault ? MG_REGION_PREFAULT : 0,
                                         &f->region, f->digest, &L->done_bytes, err);
            close(fd);
        }
    }
    if (s == MG_OK) {
        f->alg = pin->alg;
        size_t dlen = mg_digest_len(pin->alg);
        mg_hex_encode(f->digest, dlen, f->digest_hex);
        if (!mg_digest_equal(f->digest, pin->digest, dlen)) {
            s = mg_fail(err, MG_E_INTEGRITY, "%s mismatch", mg_digest_name(pin->alg));
            mg_strlcpy(err->algorithm, mg_digest_name(pin->alg), sizeof err->algorithm);
            mg_hex_encode(pin->digest, dlen, err->expected);
            mg_strlcpy(err->actual, f->digest_hex, sizeof err->actual);
        }
    }
    if (s != MG_OK) {
        mg_error_set_file(err, pin->path);
        atomic_store(&L->failed, true);
    }
}

static void *worker(void *arg)
{
    loader *L = arg;
    for (;;) {
        if (atomic_load(&L->failed))
            break;
        size_t i = atomic_fetch_add(&L->next_job, 1);
        if (i >= L->expected_count)
            break;
        run_job(L, &L->jobs[i]);
    }
    pthread_mutex_lock(&L->lock);
    L->finished_workers++;
    pthread_cond_signal(&L->cond);
    pthread_mutex_unlock(&L->lock);
    return NULL;
}

static unsigned worker_count(const mg_load_options *opts, size_t files)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned n = opts != NULL && opts->threads > 0 ? opts->threads : (cores > 0 ? (unsigned)cores : 1);
    if (n > 64)
        n = 64;
    if (n > files)
        n = (unsigned)files;
    return n == 0 ? 1 : n;
}

/* Read and hash every expected file, in parallel; the first failure in path order wins. */
static mg_status read_all(loader *L, mg_model *m, const mg_load_options *opts, mg_error *err)
{
    L->jobs = mg_calloc(L->expected_count, sizeof *L->jobs);
    m->files = mg_calloc(L->expected_count, sizeof *m->files);
    if (L->jobs == NULL || m->files == NULL)
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    m->file_count = L->expected_count;
    for (size_t i = 0; i < L->expected_count; i++) {
        L->jobs[i].pin = &L->expected[i];
        L->jobs[i].file = &m->files[i];
        m->files[i].path = mg_strdup(L->expected[i].path);
        if (m->files[i].path == NULL)
            return mg_fail(err, MG_E_LIMIT, "out of memory");
        if (L->expected[i].has_size)
            L->total_bytes += L->expected[i].size;
    }
    unsigned n = worker_count(opts, L->expected_count);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    L->prefault = cores > 1 && (long)n < cores;
    pthread_t threads[64];
    unsigned started = 0;
    for (; started < n; started++) {
        if (pthread_create(&threads[started], NULL, worker, L) != 0)
            break;
    }
    if (started == 0) {
        /* No thread could be made: do the work here. */
        worker(L);
    } else {
        pthread_mutex_lock(&L->lock);
        while (L->finished_workers < started) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 200 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&L->cond, &L->lock, &ts);
            if (opts != NULL && opts->progress != NULL) {
                pthread_mutex_unlock(&L->lock);
                opts->progress(atomic_load(&L->done_bytes), L->total_bytes, opts->progress_ctx);
                pthread_mutex_lock(&L->lock);
            }
        }
        pthread_mutex_unlock(&L->lock);
        for (unsigned i = 0; i < started; i++)
            pthread_join(threads[i], NULL);
    }
    for (size_t i = 0; i < L->expected_count; i++) {
        if (L->jobs[i].err.status != MG_OK) {
            *err = L->jobs[i].err;
            return err->status;
        }
    }
    if (atomic_load(&L->failed))
        return mg_fail(err, MG_E_LIMIT, "internal error: a worker failed without a report");
    return MG_OK;
}

/* The directory must hold exactly the expected files (besides the manifest's own files). */
static mg_status check_file_set(loader *L, mg_error *err)
{
    name_list have = {0};
    mg_status s = list_dir(L->dirfd, "", 0, &have, err);
    if (s != MG_OK) {
        name_list_free(&have);
        return s;
    }
    if (have.count > 1)
        qsort(have.names, have.count, sizeof *have.names, cmp_str);
    size_t i = 0, j = 0;
    while (s == MG_OK && (i < have.count || j < L->expected_count)) {
        if (i < have.count && L->have_manifest && mg_manifest_is_own_file(have.names[i])) {
            i++;
            continue;
        }
        int c = i >= have.count ? 1 : j >= L->expected_count ? -1
                                    : strcmp(have.names[i], L->expected[j].path);
        if (c < 0) {
            s = mg_fail(err, MG_E_INTEGRITY, "unlisted file in the model directory");
            mg_error_set_file(err, have.names[i]);
        } else if (c > 0) {
            s = mg_fail(err, MG_E_INTEGRITY, "listed file is missing");
            mg_error_set_file(err, L->expected[j].path);
        } else {
            i++;
            j++;
        }
    }
    name_list_free(&have);
    return s;
}

static mg_status read_manifest_file(int dirfd, const char *name, size_t cap, uint8_t **data,
                                    size_t *len, bool *found, mg_error *err)
{
    *found = false;
    int fd = mg_openat_nofollow(dirfd, name, O_RDONLY | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT)
            return MG_OK;
        mg_status s = errno == ELOOP ? mg_fail(err, MG_E_SIGNATURE, "a symlink is refused")
                                     : mg_fail(err, MG_E_IO, "cannot open: %s", strerror(errno));
        mg_error_set_file(err, name);
        return s;
    }
    mg_status s = mg_read_small(fd, cap, data, len, err);
    close(fd);
    if (s != MG_OK)
        mg_error_set_file(err, name);
    else
        *found = true;
    return s;
}

/* A manifest file of a remote model, fetched with its cap; a 404 is "not found". */
static mg_status fetch_manifest_file(loader *L, const char *name, size_t cap, uint8_t **data,
                                     size_t *len, bool *found, mg_error *err)
{
    *data = NULL;
    *len = 0;
    char *url = remote_url(L->entry, name);
    if (url == NULL)
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    mg_fetch_config cfg = {L->pol->ca_file, L->entry->redirects};
    mg_region r;
    uint8_t digest[MG_DIGEST_MAX];
    mg_status s = mg_fetch_region_optional(&cfg, url, cap, false, MG_SHA256, &r, digest, NULL,
                                           found, err);
    free(url);
    if (s == MG_OK && *found) {
        *data = malloc(r.len + 1);
        if (*data == NULL) {
            s = mg_fail(err, MG_E_LIMIT, "out of memory");
        } else {
            if (r.len > 0)
                memcpy(*data, r.data, r.len);
            *len = r.len;
        }
    }
    mg_region_free(&r);
    if (s != MG_OK)
        mg_error_set_file(err, name);
    return s;
}

static mg_status get_manifest_file(loader *L, const char *name, size_t cap, uint8_t **data,
                                   size_t *len, bool *found, mg_error *err)
{
    if (L->entry->remote)
        return fetch_manifest_file(L, name, cap, data, len, found, err);
    return read_manifest_file(L->dirfd, name, cap, data, len, found, err);
}

/* Verify the signed manifest of a directory model and take its file list. */
static mg_status load_manifest(loader *L, mg_error *err)
{
    uint8_t *mdata = NULL;
    size_t mlen = 0;
    bool found;
    mg_status s = get_manifest_file(L, MG_MANIFEST_NAME, MG_MAX_MANIFEST_BYTES, &mdata, &mlen,
                                    &found, err);
    if (s == MG_OK && !found) {
        s = mg_fail(err, MG_E_SIGNATURE, "the model directory has no manifest.json");
        mg_error_set_file(err, MG_MANIFEST_NAME);
    }
    static const char *const sig_names[] = {
        "manifest.json.sig",   "manifest.json.sig.1", "manifest.json.sig.2",
        "manifest.json.sig.3", "manifest.json.sig.4", "manifest.json.sig.5",
        "manifest.json.sig.6", "manifest.json.sig.7", "manifest.json.sig.8",
        "manifest.json.sig.9", "manifest.json.minisig"};
    enum { NSIG = sizeof sig_names / sizeof sig_names[0] };
    mg_sig_input sigs[NSIG];
    uint8_t *bufs[NSIG] = {0};
    size_t nsigs = 0;
    for (size_t i = 0; s == MG_OK && i < NSIG; i++) {
        size_t len;
        /* Remotely, extra raw signatures (.sig.N) are asked for only when a threshold could
         * need them: at most one per further key of the entry. */
        if (L->entry->remote && i >= 1 && i <= 9 && i >= L->entry->key_count)
            continue;
        s = get_manifest_file(L, sig_names[i], MG_MAX_SIGNATURE_BYTES, &bufs[i], &len, &found,
                              err);
        if (s == MG_OK && found) {
            sigs[nsigs].filename = sig_names[i];
            sigs[nsigs].minisig = i == NSIG - 1;
            sigs[nsigs].data = bufs[i];
            sigs[nsigs].len = len;
            nsigs++;
        }
    }
    if (s == MG_OK) {
        s = mg_manifest_verify(L->pol, L->entry, mdata, mlen, sigs, nsigs, &L->manifest, err);
        if (s == MG_OK) {
            L->have_manifest = true;
            L->expected = L->manifest.files;
            L->expected_count = L->manifest.file_count;
        } else {
            mg_error_set_file(err, MG_MANIFEST_NAME);
        }
    }
    for (size_t i = 0; i < NSIG; i++)
        free(bufs[i]);
    free(mdata);
    return s;
}

/* ---- parsing ------------------------------------------------------------------------- */

/* Everything the parsers make in one load (tensor tables, names, inflated members, JSON
 * trees, metadata text, the model's tensor views) is charged to one budget. */
static mg_status parse_all(mg_model *m, bool single, uint64_t parser_memory, mg_error *err)
{
    mg_budget budget = {parser_memory, 0};
    for (size_t i = 0; i < m->file_count; i++) {
        mg_verified_file *f = &m->files[i];
        f->format = mg_format_detect(f->region.data, f->region.len, f->path);
        if (f->format == NULL) {
            if (single) {
                mg_error_set_file(err, f->path);
                return mg_fail(err, MG_E_FORMAT, "not a known model format");
            }
            continue;
        }
        f->parsed.budget = &budget;
        mg_status s = f->format->parse(f->region.data, f->region.len, &f->parsed, err);
        f->parsed.budget = NULL;
        if (s != MG_OK) {
            mg_error_set_file(err, f->path);
            return s;
        }
    }
    mg_status cs = mg_mxnet_checkpoint_reports(m->files, m->file_count, err);
    if (cs != MG_OK)
        return cs;
    for (size_t i = 0; i < m->file_count; i++) {
        mg_verified_file *f = &m->files[i];
        if (f->parsed.metadata != NULL) {
            f->metadata_json = json_dumps(f->parsed.metadata, JSON_COMPACT | JSON_PRESERVE_ORDER);
            if (f->metadata_json == NULL)
                return mg_fail(err, MG_E_LIMIT, "out of memory");
            mg_status s = mg_budget_charge(&budget, strlen(f->metadata_json), "metadata", err);
            if (s != MG_OK) {
                mg_error_set_file(err, f->path);
                return s;
            }
        }
    }
    for (size_t i = 0; i < m->file_count; i++) {
        if (m->files[i].format == &mg_format_safetensors_index) {
            mg_status s = mg_safetensors_index_check(m->files, m->file_count, &m->files[i], err);
            if (s != MG_OK)
                return s;
        }
    }
    size_t total = 0;
    for (size_t i = 0; i < m->file_count; i++)
        total += m->files[i].parsed.count; /* each <= MG_MAX_TENSORS, files <= MG_MAX_FILES */
    mg_status s = mg_budget_charge(&budget, (uint64_t)total * sizeof *m->tensors,
                                   "the tensor views", err);
    return s != MG_OK ? s : mg_model_build_tensors(m, err);
}

static mg_status detect_all(mg_model *m)
{
    for (size_t i = 0; i < m->file_count; i++)
        m->files[i].format =
            mg_format_detect(m->files[i].region.data, m->files[i].region.len, m->files[i].path);
    return MG_OK;
}

static mg_status seal_all(mg_model *m, mg_error *err)
{
    for (size_t i = 0; i < m->file_count; i++) {
        mg_status s = mg_region_seal(&m->files[i].region, err);
        for (size_t j = 0; s == MG_OK && j < m->files[i].parsed.blob_count; j++)
            s = mg_region_seal(&m->files[i].parsed.blobs[j], err);
        if (s != MG_OK)
            return s;
    }
    return MG_OK;
}


/* fetch: every verified file to cache_dir/sha256/<hex>. */
static mg_status publish_all(const mg_policy *pol, mg_model *m, mg_error *err)
{
    for (size_t i = 0; i < m->file_count; i++) {
        mg_verified_file *f = &m->files[i];
        char path[4096];
        mg_status s = mg_cache_publish(pol->cache_dir, f->region.data, f->region.len, path,
                                       sizeof path, err);
        if (s != MG_OK) {
            mg_error_set_file(err, f->path);
            return s;
        }
        f->cache_path = mg_strdup(path);
        if (f->cache_path == NULL)
            return mg_fail(err, MG_E_LIMIT, "out of memory");
    }
    return MG_OK;
}

/* Record a failed attempt; the failure itself stays the caller's error either way. */
static void audit_failure(const mg_policy *pol, load_mode mode, const char *model,
                          const char *source, const mg_error *failure)
{
    mg_error audit_err;
    if (mg_audit_record(pol, mode_event(mode), model, source, failure, &audit_err) != MG_OK)
        return;
}

static mg_status run(const mg_policy *pol, const char *source, const mg_load_options *opts,
                     load_mode mode, mg_model **out, mg_error *err)
{
    *out = NULL;
    mg_error_clear(err);
    const mg_policy_model *entry = NULL;
    mg_status s = mg_policy_find(pol, source, &entry, err);
    if (s != MG_OK) {
        audit_failure(pol, mode, NULL, source, err);
        return s;
    }
    mg_error_set_model(err, entry->name);

    loader L;
    memset(&L, 0, sizeof L);
    L.pol = pol;
    L.entry = entry;
    L.mode = mode;
    L.dirfd = -1;
    pthread_mutex_init(&L.lock, NULL);
    pthread_cond_init(&L.cond, NULL);
    mg_pinned_file *sorted = NULL;
    mg_model *m = calloc(1, sizeof *m);
    if (m == NULL) {
        s = mg_fail(err, MG_E_LIMIT, "out of memory");
        goto done;
    }
    m->name = mg_strdup(entry->name);
    m->source = mg_strdup(entry->source);
    if (m->name == NULL || m->source == NULL) {
        s = mg_fail(err, MG_E_LIMIT, "out of memory");
        goto done;
    }
    if (mode == MODE_FETCH && pol->cache_dir == NULL) {
        s = mg_fail(err, MG_E_USAGE, "the policy has no cache_dir to fetch into");
        goto done;
    }
    if (entry->kind != MG_MODEL_PINNED_FILE && !entry->remote) {
        L.dirfd = mg_open_nofollow(entry->source, O_PATH | O_DIRECTORY, NULL);
        if (L.dirfd < 0) {
            s = errno == ELOOP || errno == ENOTDIR
                    ? mg_fail(err, MG_E_INTEGRITY, "a symlink is on the path of the model "
                              "directory, or it is not a directory (refused)")
                    : mg_fail(err, MG_E_IO, "cannot open the model directory: %s",
                              strerror(errno));
            goto done;
        }
    }
    if (entry->kind == MG_MODEL_MANIFEST) {
        s = load_manifest(&L, err);
    } else {
        sorted = mg_calloc(entry->file_count, sizeof *sorted);
        if (sorted == NULL) {
            s = mg_fail(err, MG_E_LIMIT, "out of memory");
            goto done;
        }
        memcpy(sorted, entry->files, entry->file_count * sizeof *sorted);
        qsort(sorted, entry->file_count, sizeof *sorted, cmp_pin);
        L.expected = sorted;
        L.expected_count = entry->file_count;
    }
    /* A local directory must hold exactly the expected files. A remote one cannot be listed:
     * exactly the expected files are fetched, and nothing else of it is ever used. */
    if (s == MG_OK && entry->kind != MG_MODEL_PINNED_FILE && !entry->remote)
        s = check_file_set(&L, err);
    if (s == MG_OK)
        s = read_all(&L, m, opts, err);
    if (s == MG_OK)
        s = mode == MODE_LOAD ? parse_all(m, entry->kind == MG_MODEL_PINNED_FILE,
                                          pol->parser_memory, err)
                              : detect_all(m);
    if (s == MG_OK)
        s = seal_all(m, err);
    if (s == MG_OK && mode == MODE_FETCH)
        s = publish_all(pol, m, err);
    if (s == MG_OK && L.have_manifest)
        s = mg_manifest_store_version(pol, entry, L.manifest.version, err);
done:
    if (s != MG_OK)
        mg_error_set_model(err, entry->name);
    if (s == MG_OK) {
        s = mg_audit_record(pol, mode_event(mode), entry->name, entry->source, NULL, err);
    } else {
        audit_failure(pol, mode, entry->name, entry->source, err);
    }
    if (L.dirfd >= 0)
        close(L.dirfd);
    free(L.jobs);
    free(sorted);
    if (L.have_manifest || L.manifest.files != NULL)
        mg_manifest_free(&L.manifest);
    pthread_mutex_destroy(&L.lock);
    pthread_cond_destroy(&L.cond);
    if (s != MG_OK) {
        mg_model_close(m);
        return s;
    }
    *out = m;
    return MG_OK;
}

/* The caller's options as this library's layout: the fields it knows (by `size`), the rest
 * zero. A caller built against a newer header that set a field unknown here is refused. */
static mg_status take_options(const mg_load_options *in, mg_load_options *o, mg_error *err)
{
    memset(o, 0, sizeof *o);
    if (in == NULL)
        return MG_OK;
    size_t n = in->size == 0 ? sizeof *o : in->size;
    if (n < offsetof(mg_load_options, threads))
        return mg_fail(err, MG_E_USAGE, "mg_load_options.size %zu is too small", n);
    memcpy(o, in, n < sizeof *o ? n : sizeof *o);
    for (size_t i = sizeof *o; i < n; i++) {
        if (((const unsigned char *)in)[i] != 0)
            return mg_fail(err, MG_E_USAGE, "mg_load_options sets a field this library "
                           "(%s) does not know", mg_version());
    }
    o->size = sizeof *o;
    return MG_OK;
}

static mg_status run_with(const mg_policy *policy, const char *source,
                          const mg_load_options *opts, load_mode mode, mg_model **out,
                          mg_error *err)
{
    mg_load_options o;
    if (out == NULL || err == NULL || policy == NULL || source == NULL) {
        if (out != NULL)
            *out = NULL;
        return err == NULL ? MG_E_USAGE : mg_fail(err, MG_E_USAGE, "a required argument is NULL");
    }
    *out = NULL;
    mg_error_clear(err);
    mg_status s = take_options(opts, &o, err);
    if (s != MG_OK)
        return s;
    return run(policy, source, &o, mode, out, err);
}

mg_status mg_model_load(const mg_policy *policy, const char *source, const mg_load_options *opts,
                        mg_model **out, mg_error *err)
{
    return run_with(policy, source, opts, MODE_LOAD, out, err);
}

mg_status mg_model_verify(const mg_policy *policy, const char *source,
                          const mg_load_options *opts, mg_model **out, mg_error *err)
{
    return run_with(policy, source, opts, MODE_VERIFY, out, err);
}

mg_status mg_model_fetch(const mg_policy *policy, const char *source, const mg_load_options *opts,
                         mg_model **out, mg_error *err)
{
    return run_with(policy, source, opts, MODE_FETCH, out, err);
}
