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
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "cache.h"
#include "fetch.h"
#include "hub.h"
#include "manifest.h"
#include "format/mxnet_checkpoint.h"
#include "format/safetensors_index.h"
#include "model.h"
#include "oci.h"
#include "oms.h"
#include "policy.h"
#include "shard.h"
#include "spill.h"
#include "stream.h"
#include "sandbox.h"
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

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* How a local directory is listed: what it may skip unread, and whether it is a hub
 * snapshot (whose files are symlinks, checked when they are opened). */
typedef struct list_rules {
    char *const *ignore;
    size_t ignore_count;
    bool hub_snapshot;
} list_rules;

/* Every regular file below `dirfd`, as relative paths, but the ignored ones (never opened);
 * a symlink or special file anywhere is refused (it is not a file the policy could have
 * pinned), except a hub snapshot's symlinks, which are listed and checked when opened. */
static mg_status list_dir(int dirfd, const char *prefix, unsigned depth, const list_rules *rules,
                          name_list *out, mg_error *err)
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
        } else if (mg_ignore_match(rules->ignore, rules->ignore_count, rel,
                                   S_ISDIR(st.st_mode))) {
            free(rel);
        } else if (S_ISREG(st.st_mode) || (S_ISLNK(st.st_mode) && rules->hub_snapshot)) {
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
                s = list_dir(sub, rel, depth + 1, rules, out, err);
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
/* (list_dir hands each name to name_list_add: the same false leak report, so the same
 * suppression covers it.) */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

/* ---- one load ------------------------------------------------------------------------ */

typedef struct job {
    const mg_pinned_file *pin;
    mg_verified_file *file;
    mg_stream_file stream; /* verify and fetch: what the streamed file left */
    mg_error err;
} job;

typedef struct loader {
    const mg_policy *pol;
    const mg_policy_model *entry;
    load_mode mode;
    int dirfd; /* directory models: the folder, opened without symlinks */
    int blobsfd; /* hub snapshots: the repository's blobs folder */
    mg_pinned_file *expected; /* sorted by path */
    size_t expected_count;
    mg_manifest manifest;
    bool have_manifest;
    mg_oms oms;         /* OMS models: the verified bundle */
    bool have_oms;
    unsigned shard_threads; /* threads per sharded file */
    mg_cache_session *cache; /* fetch: the cache the streamed files go to (else NULL) */
    job *jobs;
    _Atomic size_t next_job;
    _Atomic bool failed;
    _Atomic uint64_t done_bytes;
    uint64_t total_bytes;
    bool prefault; /* fewer files than cores: spare cores back the memory ahead of readers */
    int spilldir;  /* >= 0: the files go to spill files in this folder (spill.h) */
    /* Confined parsing by the helper (sandbox.h): the files keep their sealed memfds' descriptors
     * for it, and it is started while they are read. */
    bool keep_fds;
    mg_sandbox_child helper;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    size_t finished_workers;
} loader;

/* An npz is expected (the parser helper then opens libzip early). */
static bool ends_with_npz(const char *s)
{
    size_t n = strlen(s);
    return n >= 4 && strcasecmp(s + n - 4, ".npz") == 0;
}

static int cmp_pin(const void *a, const void *b)
{
    return strcmp(((const mg_pinned_file *)a)->path, ((const mg_pinned_file *)b)->path);
}

/* A single file rather than a directory: pinned, or an OMS bundle over one file. */
static bool single_file(const mg_policy_model *e)
{
    return e->kind == MG_MODEL_PINNED_FILE || (e->kind == MG_MODEL_OMS && !e->directory);
}

/* A file of a hub snapshot. An LFS blob is named by its SHA-256: when the file is pinned by
 * SHA-256 too, a blob under another name is refused before it is read. */
static mg_status open_hub_file(loader *L, const char *rel, int *fd, mg_error *err)
{
    char blob[MG_HUB_BLOB_MAX];
    mg_status s = mg_hub_open_file(L->dirfd, L->blobsfd, rel, O_RDONLY | O_NONBLOCK, fd, blob,
                                   err);
    if (s != MG_OK || !mg_hub_blob_is_sha256(blob))
        return s;
    mg_pinned_file key = {.path = (char *)rel};
    const mg_pinned_file *pin = L->expected_count == 0 ? NULL
                                : bsearch(&key, L->expected, L->expected_count,
                                          sizeof *L->expected, cmp_pin);
    if (pin != NULL && pin->alg == MG_SHA256) {
        char want[65];
        mg_hex_encode(pin->digest, 32, want);
        if (strcmp(want, blob) != 0) {
            close(*fd);
            *fd = -1;
            s = mg_fail(err, MG_E_INTEGRITY, "the hub blob is named by its SHA-256, which is not "
                        "the pinned one");
            mg_strlcpy(err->algorithm, "sha256", sizeof err->algorithm);
            mg_strlcpy(err->expected, want, sizeof err->expected);
            mg_strlcpy(err->actual, blob, sizeof err->actual);
        }
    }
    return s;
}

static mg_status open_model_file(loader *L, const char *rel, int *fd, mg_error *err)
{
    if (L->entry->hub_snapshot)
        return open_hub_file(L, rel, fd, err);
    if (single_file(L->entry))
        *fd = mg_open_nofollow(L->entry->source, O_RDONLY | O_NONBLOCK, NULL);
    else if (L->have_oms)
        *fd = mg_oms_open(&L->oms, L->dirfd, rel);
    else
        *fd = mg_openat_nofollow(L->dirfd, rel, O_RDONLY | O_NONBLOCK);
    if (*fd >= 0)
        return MG_OK;
    if (errno == ELOOP || errno == ENOTDIR)
        return mg_fail(err, MG_E_INTEGRITY, "a symlink is on the path of the file (refused)");
    if (errno == ENOENT)
        return mg_fail(err, single_file(L->entry) ? MG_E_IO : MG_E_INTEGRITY,
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
    char *url = L->entry->kind == MG_MODEL_OCI ? mg_oci_blob_url(L->entry->oci, pin->digest)
                                               : remote_url(L->entry, pin->path);
    if (url == NULL)
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    mg_fetch_config cfg = {.ca_file = L->pol->ca_file, .redirects = L->entry->redirects, .pol = L->pol};
    /* A large file from a server with range support: parallel ranges, then one hash. */
    bool ranged = false;
    mg_status s = mg_stream_remote_region(&cfg, url, pin, L->shard_threads, &j->file->region,
                                          j->file->digest, &ranged, &L->done_bytes, err);
    if (s != MG_OK || ranged) {
        free(url);
        return s;
    }
    s = mg_fetch_region(&cfg, url, pin->has_size ? pin->size : MG_MAX_MODEL_FILE_BYTES,
                        pin->has_size, pin->alg, &j->file->region, j->file->digest,
                        &L->done_bytes, err);
    free(url);
    if (s == MG_OK && pin->shard_count > 0) /* a sharded manifest entry: check every shard */
        s = mg_shard_check_memory(&j->file->region, pin, j->file->digest, err);
    return s;
}

/*
 * verify and fetch: the file streams through a bounded window (stream.h), checked against its
 * pin as it goes; for fetch it lands in a file of the cache, published once every file
 * matched. A remote file already in the cache is only hashed from there.
 */
static mg_status stream_job(loader *L, job *j, mg_error *err)
{
    const mg_pinned_file *pin = j->pin;
    mg_verified_file *f = j->file;
    mg_status s;
    if (L->entry->remote) {
        int cfd = -1;
        mg_error e;
        if (L->pol->cache_dir != NULL && pin->alg == MG_SHA256 && pin->shard_count == 0 &&
            mg_cache_lookup(L->pol->cache_dir, pin->digest, &cfd, &e) == MG_OK && cfd >= 0) {
            mg_error_clear(&e);
            s = mg_stream_local(cfd, pin, L->shard_threads, NULL, &j->stream, &L->done_bytes,
                                &e);
            if (s == MG_OK && L->cache != NULL) {
                memcpy(j->stream.sha256, j->stream.digest, 32);
                j->stream.out_fd = cfd; /* already published: linked to itself */
                cfd = -1;
            }
            if (cfd >= 0)
                close(cfd);
            if (s == MG_OK)
                goto matched;
            mg_stream_file_free(&j->stream); /* not the pinned bytes: fetched anew */
        }
        char *url = L->entry->kind == MG_MODEL_OCI ? mg_oci_blob_url(L->entry->oci, pin->digest)
                                                   : remote_url(L->entry, pin->path);
        if (url == NULL)
            return mg_fail(err, MG_E_LIMIT, "out of memory");
        mg_fetch_config cfg = {.ca_file = L->pol->ca_file, .redirects = L->entry->redirects,
                               .pol = L->pol};
        s = mg_stream_remote(&cfg, url, pin, L->shard_threads, L->cache, &j->stream,
                             &L->done_bytes, err);
        free(url);
    } else {
        int fd;
        s = open_model_file(L, pin->path, &fd, err);
        if (s == MG_OK) {
            s = mg_stream_local(fd, pin, L->shard_threads, L->cache, &j->stream, &L->done_bytes,
                                err);
            close(fd);
        }
    }
    if (s != MG_OK)
        return s;
matched:
    /* Matched: the format is told from the kept head (format.h: mg_format_detect_head). */
    f->streamed = true;
    f->streamed_size = j->stream.size;
    memcpy(f->digest, j->stream.digest, MG_DIGEST_MAX);
    f->format = mg_format_detect_head(j->stream.head != NULL ? j->stream.head
                                                             : (const uint8_t *)"",
                                      j->stream.head_len, j->stream.size, f->path);
    free(j->stream.head);
    j->stream.head = NULL;
    j->stream.head_len = 0;
    return MG_OK;
}

static void run_job(loader *L, job *j)
{
    mg_error *err = &j->err;
    mg_verified_file *f = j->file;
    const mg_pinned_file *pin = j->pin;
    mg_status s;
    if (L->mode != MODE_LOAD) {
        s = stream_job(L, j, err);
    } else if (L->entry->remote) {
        s = fetch_job(L, j, err);
    } else {
        int fd;
        s = open_model_file(L, pin->path, &fd, err);
        if (s == MG_OK && L->spilldir >= 0) {
            bool sharded = pin->shard_count > 0; /* its shards are checked from the mapping */
            s = mg_spill_read_hashed(L->spilldir, fd, pin->has_size ? pin->size : UINT64_MAX,
                                     !sharded, pin->alg, &f->region, f->digest, &L->done_bytes,
                                     err);
            close(fd);
            if (s == MG_OK && sharded)
                s = mg_shard_check_memory(&f->region, pin, f->digest, err);
        } else if (s == MG_OK && pin->shard_count > 0) {
            s = mg_shard_read(fd, pin, L->shard_threads, L->keep_fds ? MG_REGION_KEEP_FD : 0,
                              &f->region, f->digest, &L->done_bytes, err);
            close(fd);
        } else if (s == MG_OK) {
            uint64_t want = pin->has_size ? pin->size : UINT64_MAX;
            bool big = !pin->has_size || pin->size >= MG_REGION_PIPE_MIN;
            unsigned flags = (L->prefault && big ? MG_REGION_PREFAULT : 0) |
                             (L->keep_fds ? MG_REGION_KEEP_FD : 0);
            s = mg_region_read_hashed_ex(fd, want, pin->alg, flags, &f->region, f->digest, &L->done_bytes, err);
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
    for (size_t i = 0; i < L->expected_count; i++)
        mg_stream_file_init(&L->jobs[i].stream);
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
    L->shard_threads = worker_count(opts, SIZE_MAX) / n;
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

/* "memory" (spill.h): whether this load keeps its files in spill files rather than memory.
 * "auto" weighs the model's size (pinned, else as the files are now) against the memory
 * the process may use; without a spill folder everything stays in memory. */
static mg_status choose_memory(loader *L, mg_model *m, mg_error *err)
{
    mg_memory_mode mode = mg_policy_memory(L->pol, L->entry);
    const char *dir = mg_policy_spill_dir(L->pol);
    if (mode == MG_MEMORY_RAM || dir == NULL || L->entry->remote)
        return MG_OK;
    uint64_t total = 0;
    for (size_t i = 0; i < L->expected_count; i++) {
        uint64_t size = L->expected[i].size;
        if (!L->expected[i].has_size) {
            int fd;
            mg_error ignored;
            struct stat st;
            size = 0; /* (a file that cannot be opened fails when it is read) */
            if (open_model_file(L, L->expected[i].path, &fd, &ignored) == MG_OK) {
                if (fstat(fd, &st) == 0 && st.st_size > 0)
                    size = (uint64_t)st.st_size;
                close(fd);
            }
        }
        if (__builtin_add_overflow(total, size, &total))
            total = UINT64_MAX;
    }
    mg_memory_room room;
    mg_memory_room_read("/proc", "/sys/fs/cgroup", &room);
    if (mode == MG_MEMORY_AUTO && !mg_spill_wanted(total, L->pol->parser_memory, &room))
        return MG_OK;
    if (total > room.address_space)
        return mg_fail(err, MG_E_LIMIT, "the model's %llu bytes do not fit in the address space "
                       "this process may still map (RLIMIT_AS leaves %llu bytes; a file-backed "
                       "load counts against it too)", (unsigned long long)total,
                       (unsigned long long)room.address_space);
    mg_error why;
    mg_error_clear(&why);
    mg_status s = mg_spill_open_dir(dir, L->pol->spill_dir != NULL ? "spill_dir"
                                         : "cache_dir (the folder of spill files)",
                                    &L->spilldir, &why);
    if (s == MG_OK)
        m->file_backed = true;
    else if (mode == MG_MEMORY_AUTO) /* say why a spill file was wanted at all */
        s = mg_fail(err, s, "the model's %llu bytes need spill files (memory \"auto\"), but %s",
                    (unsigned long long)total, why.message);
    else
        s = mg_fail(err, s, "%s", why.message);
    return s;
}

/* The directory must hold exactly the expected files (besides the manifest's own files). */
static mg_status check_file_set(loader *L, mg_error *err)
{
    name_list have = {0};
    list_rules rules = {L->entry->ignore, L->entry->ignore_count, L->entry->hub_snapshot};
    mg_status s = list_dir(L->dirfd, "", 0, &rules, &have, err);
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
        } else if (c > 0 && mg_ignore_match(rules.ignore, rules.ignore_count,
                                            L->expected[j].path, false)) {
            j++; /* pinned below an ignored folder: not listed, but still read and checked */
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

static mg_status read_manifest_file(const loader *L, const char *name, size_t cap,
                                    uint8_t **data, size_t *len, bool *found, mg_error *err)
{
    *found = false;
    int fd;
    if (L->entry->hub_snapshot) {
        struct stat st;
        if (fstatat(L->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT)
            return MG_OK;
        mg_status s = mg_hub_open_file(L->dirfd, L->blobsfd, name, O_RDONLY | O_NONBLOCK, &fd,
                                       NULL, err);
        if (s != MG_OK) {
            mg_error_set_file(err, name);
            return s;
        }
    } else {
        fd = mg_openat_nofollow(L->dirfd, name, O_RDONLY | O_NONBLOCK);
    }
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

/* The bytes of a small downloaded file (a manifest, a signature) as a malloc'd buffer. */
static mg_status copy_out(const mg_region *r, uint8_t **data, size_t *len, mg_error *err)
{
    *data = malloc(r->len + 1);
    if (*data == NULL)
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    if (r->len > 0)
        memcpy(*data, r->data, r->len);
    *len = r->len;
    return MG_OK;
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
    mg_fetch_config cfg = {.ca_file = L->pol->ca_file, .redirects = L->entry->redirects, .pol = L->pol};
    mg_region r;
    uint8_t digest[MG_DIGEST_MAX];
    mg_status s = mg_fetch_region_optional(&cfg, url, cap, false, MG_SHA256, &r, digest, NULL,
                                           found, err);
    free(url);
    if (s == MG_OK && *found)
        s = copy_out(&r, data, len, err);
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
    return read_manifest_file(L, name, cap, data, len, found, err);
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

/* An OCI artifact: its manifest by digest (the pin), then one expected file per layer. */
static mg_status load_oci(loader *L, mg_pinned_file **files, size_t *count, mg_error *err)
{
    const struct mg_oci_ref *ref = L->entry->oci;
    char *url = mg_oci_manifest_url(ref);
    if (url == NULL)
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    mg_fetch_config cfg = {.ca_file = L->pol->ca_file, .redirects = L->entry->redirects,
                           .pol = L->pol, .accept = MG_OCI_MANIFEST_ACCEPT};
    mg_region r;
    uint8_t digest[MG_DIGEST_MAX];
    mg_status s = mg_fetch_region(&cfg, url, MG_OCI_MAX_MANIFEST_BYTES, false, MG_SHA256, &r,
                                  digest, NULL, err);
    free(url);
    if (s == MG_E_INTEGRITY) /* over the cap: a cap is a cap */
        s = mg_fail(err, MG_E_LIMIT, "the OCI manifest is larger than %u bytes",
                    MG_OCI_MAX_MANIFEST_BYTES);
    if (s == MG_OK && !mg_digest_equal(digest, ref->digest, 32)) {
        s = mg_fail(err, MG_E_INTEGRITY, "OCI manifest digest mismatch");
        mg_strlcpy(err->algorithm, "sha256", sizeof err->algorithm);
        mg_strlcpy(err->expected, ref->digest_hex, sizeof err->expected);
        mg_hex_encode(digest, 32, err->actual);
    }
    if (s == MG_OK)
        s = mg_oci_manifest_files(r.data, r.len, files, count, err);
    mg_region_free(&r);
    if (s != MG_OK)
        mg_error_set_file(err, "(oci manifest)");
    return s;
}

/* A small layer of an OCI artifact (the manifest.json or a signature file), fetched by digest
 * with its exact size and checked against the layer's digest. */
static mg_status oci_small_layer(loader *L, const mg_pinned_file *f, size_t cap, uint8_t **data,
                                 size_t *len, mg_error *err)
{
    *data = NULL;
    *len = 0;
    if (f->size > cap) {
        mg_error_set_file(err, f->path);
        return mg_fail(err, MG_E_LIMIT, "larger than %zu bytes", cap);
    }
    char *url = mg_oci_blob_url(L->entry->oci, f->digest);
    if (url == NULL)
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    mg_fetch_config cfg = {.ca_file = L->pol->ca_file, .redirects = L->entry->redirects,
                           .pol = L->pol};
    mg_region r;
    uint8_t digest[MG_DIGEST_MAX];
    mg_status s = mg_fetch_region(&cfg, url, f->size, true, MG_SHA256, &r, digest, NULL, err);
    free(url);
    if (s == MG_OK && !mg_digest_equal(digest, f->digest, 32))
        s = mg_fail(err, MG_E_INTEGRITY, "sha256 mismatch");
    if (s == MG_OK)
        s = copy_out(&r, data, len, err);
    mg_region_free(&r);
    if (s != MG_OK)
        mg_error_set_file(err, f->path);
    return s;
}

/*
 * An OCI artifact whose policy entry also requires a signed manifest: manifest.json and its
 * signature files are layers; the manifest is verified (keys, threshold, name, expiry,
 * rollback) exactly as for a directory, and must list exactly the other layers, with their
 * sha256 digests (and sizes). The manifest's own layers are then dropped from the expected
 * files. `files` (sorted by path) is compacted in place; `*count` updated.
 */
static mg_status load_oci_signed(loader *L, mg_pinned_file *files, size_t *count, mg_error *err)
{
    static const char *const sig_names[] = {
        "manifest.json.sig",   "manifest.json.sig.1", "manifest.json.sig.2",
        "manifest.json.sig.3", "manifest.json.sig.4", "manifest.json.sig.5",
        "manifest.json.sig.6", "manifest.json.sig.7", "manifest.json.sig.8",
        "manifest.json.sig.9", "manifest.json.minisig"};
    enum { NSIG = sizeof sig_names / sizeof sig_names[0] };
    const mg_pinned_file *man = NULL;
    const mg_pinned_file *sigf[NSIG] = {0};
    for (size_t i = 0; i < *count; i++) {
        if (strcmp(files[i].path, MG_MANIFEST_NAME) == 0)
            man = &files[i];
        for (size_t k = 0; k < NSIG; k++)
            if (strcmp(files[i].path, sig_names[k]) == 0)
                sigf[k] = &files[i];
    }
    if (man == NULL) {
        mg_error_set_file(err, MG_MANIFEST_NAME);
        return mg_fail(err, MG_E_SIGNATURE, "the policy requires a signed manifest and the "
                       "artifact has no manifest.json layer");
    }
    uint8_t *mdata = NULL, *bufs[NSIG] = {0};
    size_t mlen = 0, nsigs = 0;
    mg_sig_input sigs[NSIG];
    mg_status s = oci_small_layer(L, man, MG_MAX_MANIFEST_BYTES, &mdata, &mlen, err);
    for (size_t k = 0; s == MG_OK && k < NSIG; k++) {
        if (sigf[k] == NULL)
            continue;
        size_t len;
        s = oci_small_layer(L, sigf[k], MG_MAX_SIGNATURE_BYTES, &bufs[k], &len, err);
        if (s == MG_OK) {
            sigs[nsigs].filename = sig_names[k];
            sigs[nsigs].minisig = k == NSIG - 1;
            sigs[nsigs].data = bufs[k];
            sigs[nsigs].len = len;
            nsigs++;
        }
    }
    if (s == MG_OK) {
        s = mg_manifest_verify(L->pol, L->entry, mdata, mlen, sigs, nsigs, &L->manifest, err);
        if (s == MG_OK)
            L->have_manifest = true;
        else
            mg_error_set_file(err, MG_MANIFEST_NAME);
    }
    for (size_t k = 0; k < NSIG; k++)
        free(bufs[k]);
    free(mdata);
    if (s != MG_OK)
        return s;
    /* Drop the manifest's own layers; the rest must be exactly what the manifest lists. */
    size_t n = 0;
    for (size_t i = 0; i < *count; i++) {
        if (mg_manifest_is_own_file(files[i].path))
            free(files[i].path);
        else
            files[n++] = files[i];
    }
    *count = n;
    const mg_manifest *mf = &L->manifest;
    size_t i = 0, j = 0;
    while (s == MG_OK && (i < n || j < mf->file_count)) {
        int c = i >= n ? 1 : j >= mf->file_count ? -1 : strcmp(files[i].path, mf->files[j].path);
        if (c < 0) {
            s = mg_fail(err, MG_E_INTEGRITY, "a layer the signed manifest does not list");
            mg_error_set_file(err, files[i].path);
        } else if (c > 0) {
            s = mg_fail(err, MG_E_INTEGRITY, "listed in the signed manifest but not a layer");
            mg_error_set_file(err, mf->files[j].path);
        } else {
            const mg_pinned_file *a = &files[i], *b = &mf->files[j];
            if (b->alg != MG_SHA256)
                s = mg_fail(err, MG_E_SIGNATURE, "a manifest for an OCI artifact must use "
                            "sha256 (the registry's digests)");
            else if (!mg_digest_equal(a->digest, b->digest, 32) ||
                     (b->has_size && b->size != a->size))
                s = mg_fail(err, MG_E_INTEGRITY, "the layer's digest or size differs from the "
                            "signed manifest");
            if (s != MG_OK)
                mg_error_set_file(err, a->path);
            i++;
            j++;
        }
    }
    return s;
}

/* Verify the OMS bundle of the model (inside a directory model, or at its policy path for a
 * single file) and take its file list. */
static mg_status load_oms(loader *L, mg_error *err)
{
    const mg_oms_policy *op = L->entry->oms;
    uint8_t *data = NULL;
    size_t len = 0;
    bool found = false;
    mg_status s;
    const char *single = NULL;
    if (single_file(L->entry)) {
        const char *slash = strrchr(L->entry->source, '/');
        single = slash != NULL && slash[1] != '\0' ? slash + 1 : L->entry->source;
        int fd = mg_open_nofollow(op->bundle, O_RDONLY | O_NONBLOCK, NULL);
        if (fd < 0) {
            s = errno == ENOENT ? mg_fail(err, MG_E_SIGNATURE, "the OMS bundle %.200s is "
                                          "missing", op->bundle)
                                : mg_fail(err, MG_E_IO, "cannot open the OMS bundle %.200s: %s",
                                          op->bundle, strerror(errno));
        } else {
            s = mg_read_small(fd, MG_MAX_MANIFEST_BYTES, &data, &len, err);
            close(fd);
            found = true;
        }
    } else {
        s = read_manifest_file(L, op->bundle, MG_MAX_MANIFEST_BYTES, &data, &len, &found,
                               err);
        if (s == MG_OK && !found) {
            s = mg_fail(err, MG_E_SIGNATURE, "the model directory has no OMS bundle");
            mg_error_set_file(err, op->bundle);
        }
    }
    if (s == MG_OK) {
        s = mg_oms_verify(L->pol, L->entry, data, len, single, &L->oms, err);
        if (s == MG_OK) {
            L->have_oms = true;
            L->expected = L->oms.files;
            L->expected_count = L->oms.file_count;
        } else if (!single_file(L->entry)) {
            mg_error_set_file(err, op->bundle);
        }
    }
    free(data);
    return s;
}

/* ---- parsing ------------------------------------------------------------------------- */

/* Everything the parsers make in one load (tensor tables, names, inflated members, JSON
 * trees, metadata text, the model's tensor views) is charged to one budget. */
static mg_status parse_all(mg_model *m, bool single, uint64_t parser_memory,
                           mg_sandbox_child *helper, mg_error *err)
{
    mg_budget budget = {parser_memory, 0};
    for (size_t i = 0; i < m->file_count; i++) {
        mg_verified_file *f = &m->files[i];
        /* An empty file has no region memory: detection and the parsers (sandbox.c) get a
         * valid pointer all the same. */
        const uint8_t *data = f->region.data != NULL ? f->region.data : (const uint8_t *)"";
        f->format = mg_format_detect(data, f->region.len, f->path);
        if (f->format == NULL && single) {
            mg_error_set_file(err, f->path);
            return mg_fail(err, MG_E_FORMAT, "not a known model format");
        }
    }
    /* The parsers run in the confined child unless the policy says "sandbox": "off". Each
     * charges the load's budget: one child parses every file of the load, against its copy. */
    for (size_t i = 0; i < m->file_count; i++)
        m->files[i].parsed.budget = &budget;
    mg_status ps = mg_sandbox_parse_files_ex(m->files, m->file_count, m->parse_confined == 1,
                                             NULL, helper, err);
    for (size_t i = 0; i < m->file_count; i++) {
        m->files[i].parsed.budget = NULL;
        mg_region_drop_fd(&m->files[i].region);
    }
    if (ps != MG_OK)
        return ps;
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
    for (size_t i = 0; i < m->file_count; i++) {
        const mg_verified_file *f = &m->files[i];
        if (f->streamed)
            continue; /* told from its head as it was verified (stream_job) */
        const uint8_t *data = f->region.data != NULL ? f->region.data : (const uint8_t *)"";
        m->files[i].format = mg_format_detect(data, f->region.len, f->path);
    }
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


/* fetch: every verified file to cache_dir/sha256/<hex>: its streamed copy is linked there. */
static mg_status publish_all(loader *L, mg_model *m, mg_error *err)
{
    for (size_t i = 0; i < m->file_count; i++) {
        mg_verified_file *f = &m->files[i];
        mg_stream_file *sf = &L->jobs[i].stream;
        char path[4096];
        mg_status s = sf->out_fd < 0
                          ? mg_fail(err, MG_E_LIMIT, "internal error: no copy to publish")
                          : mg_cache_publish_fd(L->cache, sf->out_fd, sf->size, sf->sha256,
                                                sf->partial[0] != '\0' ? sf->partial : NULL,
                                                path, sizeof path, err);
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

/* Record a failed attempt; the failure keeps its own status, and when its record cannot be
 * written the message says so (the caller, e.g. the CLI, shows it on stderr). `parse` says
 * where parsing ran (NULL: it did not). */
static void audit_failure(const mg_policy *pol, int audit_fd, load_mode mode, const char *model,
                          const char *source, mg_error *failure, const char *parse)
{
    mg_error audit_err;
    mg_error_clear(&audit_err);
    if (mg_audit_record_fd(pol, audit_fd, mode_event(mode), model, source, failure, parse,
                           &audit_err) == MG_OK)
        return;
    static const char lost[] = "; the audit record of this rejection was lost: ";
    char why[200];
    mg_strlcpy(why, audit_err.message, sizeof why);
    size_t keep = strlen(failure->message);
    size_t room = sizeof failure->message - sizeof lost - strlen(why);
    if (keep > room)
        keep = room;
    snprintf(failure->message + keep, sizeof failure->message - keep, "%s%s", lost, why);
}

static const char *parse_word(const mg_model *m)
{
    return m == NULL || m->parse_confined < 0 ? NULL
           : m->parse_confined ? "confined" : "unconfined";
}

static mg_status run(const mg_policy *pol, const char *source, const mg_load_options *opts,
                     load_mode mode, mg_model **out, mg_error *err)
{
    *out = NULL;
    mg_error_clear(err);
    const mg_policy_model *entry = NULL;
    mg_status s = mg_policy_find(pol, source, &entry, err);
    if (s != MG_OK) {
        audit_failure(pol, -1, mode, NULL, source, err, NULL);
        return s;
    }
    mg_error_set_model(err, entry->name);
    /* The audit log is opened first. One that cannot be opened fails the attempt before any
     * side effect (cache, rollback state; README: order of side effects), while a rejection
     * found before that point keeps its own status (its record is then reported lost). */
    int audit_fd = -1;
    mg_error audit_err;
    mg_error_clear(&audit_err);
    bool audit_open = mg_audit_open(pol, &audit_fd, &audit_err) == MG_OK;
    bool failed_on_audit = false;

    loader L;
    memset(&L, 0, sizeof L);
    L.pol = pol;
    L.entry = entry;
    L.mode = mode;
    L.dirfd = -1;
    L.blobsfd = -1;
    L.spilldir = -1;
    L.helper.sock = -1;
    pthread_mutex_init(&L.lock, NULL);
    pthread_cond_init(&L.cond, NULL);
    mg_pinned_file *sorted = NULL;
    mg_model *m = calloc(1, sizeof *m);
    if (m == NULL) {
        s = mg_fail(err, MG_E_LIMIT, "out of memory");
        goto done;
    }
    m->parse_confined = mode != MODE_LOAD ? -1 : mg_policy_sandbox_required(pol, entry) ? 1 : 0;
    if (m->parse_confined == 1)
        mg_sandbox_prepare(); /* the filter is built while the files are read */
    /* The parser helper starts now, while the policy's checks and the reading go on. */
    if (m->parse_confined == 1 && !entry->remote)
        (void)mg_sandbox_spawn(&L.helper, ends_with_npz(entry->source));
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
    if (!single_file(entry) && !entry->remote) {
        L.dirfd = mg_open_nofollow(entry->source, O_PATH | O_DIRECTORY, NULL);
        if (L.dirfd < 0) {
            s = errno == ELOOP || errno == ENOTDIR
                    ? mg_fail(err, MG_E_INTEGRITY, "a symlink is on the path of the model "
                              "directory, or it is not a directory (refused)")
                    : mg_fail(err, MG_E_IO, "cannot open the model directory: %s",
                              strerror(errno));
            goto done;
        }
        if (entry->hub_snapshot && (L.blobsfd = mg_hub_open_blobs(entry->source)) < 0) {
            s = mg_fail(err, errno == ENOENT ? MG_E_IO : MG_E_INTEGRITY,
                        "cannot open the blobs/ folder of the hub repository (it must be a "
                        "folder, with no symlink on its path): %s", strerror(errno));
            goto done;
        }
    }
    if (entry->kind == MG_MODEL_MANIFEST) {
        s = load_manifest(&L, err);
    } else if (entry->kind == MG_MODEL_OCI) {
        size_t n = 0;
        s = load_oci(&L, &sorted, &n, err);
        if (s == MG_OK && entry->key_count > 0)
            s = load_oci_signed(&L, sorted, &n, err);
        L.expected = sorted;
        L.expected_count = n;
    } else if (entry->kind == MG_MODEL_OMS) {
        s = load_oms(&L, err);
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
    if (s == MG_OK && !single_file(entry) && !entry->remote)
        s = L.have_oms ? mg_oms_check_file_set(&L.oms, L.dirfd, err) : check_file_set(&L, err);
    if (s == MG_OK && mode == MODE_LOAD)
        s = choose_memory(&L, m, err);
    /* fetch streams into the cache, which is touched only when the audit log is open (the
     * order of side effects); without it the files are only verified, then refused below. */
    if (s == MG_OK && mode == MODE_FETCH && audit_open)
        s = mg_cache_begin(pol->cache_dir, &L.cache, err);
    /* At most MG_SANDBOX_HELPER_FILES descriptors are kept open at once (more files are
     * parsed in a forked child). */
    if (s == MG_OK && mode == MODE_LOAD)
        L.keep_fds = m->parse_confined == 1 && !entry->remote && L.spilldir < 0 &&
                     L.expected_count <= MG_SANDBOX_HELPER_FILES && mg_sandbox_has_helper();
    if (!L.keep_fds) /* (a forked child then parses) */
        mg_sandbox_child_discard(&L.helper);
    if (s == MG_OK)
        s = read_all(&L, m, opts, err);
    if (s == MG_OK)
        s = mode == MODE_LOAD ? parse_all(m, single_file(entry), pol->parser_memory,
                                          &L.helper, err)
                              : detect_all(m);
    if (s == MG_OK)
        s = seal_all(m, err);
    if (s == MG_OK && !audit_open) {
        *err = audit_err;
        s = err->status;
        failed_on_audit = true;
    }
    if (s == MG_OK && mode == MODE_FETCH)
        s = publish_all(&L, m, err);
    if (s == MG_OK && L.have_manifest)
        s = mg_manifest_store_version(pol, entry, L.manifest.version, err);
done:
    if (s != MG_OK)
        mg_error_set_model(err, entry->name);
    if (s == MG_OK) {
        s = mg_audit_record_fd(pol, audit_fd, mode_event(mode), entry->name, entry->source,
                               NULL, parse_word(m), err);
    } else if (!failed_on_audit) {
        /* (an audit log that could not be opened is itself the failure: nothing to add) */
        audit_failure(pol, audit_fd, mode, entry->name, entry->source, err, parse_word(m));
    }
    if (audit_fd >= 0)
        close(audit_fd);
    if (L.dirfd >= 0)
        close(L.dirfd);
    if (L.blobsfd >= 0)
        close(L.blobsfd);
    if (L.spilldir >= 0)
        close(L.spilldir);
    mg_sandbox_child_discard(&L.helper);
    for (size_t i = 0; L.jobs != NULL && i < L.expected_count; i++)
        mg_stream_file_free(&L.jobs[i].stream);
    free(L.jobs);
    mg_cache_end(L.cache, s == MG_OK);
    if (entry->kind == MG_MODEL_OCI && sorted != NULL) {
        for (size_t i = 0; i < L.expected_count; i++)
            free(sorted[i].path);
    }
    free(sorted);
    if (L.have_manifest || L.manifest.files != NULL)
        mg_manifest_free(&L.manifest);
    mg_oms_free(&L.oms);
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
