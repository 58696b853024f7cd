/* Streaming verification and fetch in bounded memory (stream.h). */
#define _GNU_SOURCE
#include "stream.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shard.h"
#include "util/fsutil.h"
#include "util/hex.h"

void mg_stream_file_init(mg_stream_file *f)
{
    memset(f, 0, sizeof *f);
    f->out_fd = -1;
}

void mg_stream_file_free(mg_stream_file *f)
{
    if (f->out_fd >= 0)
        close(f->out_fd);
    free(f->head);
    mg_stream_file_init(f);
}

/* ---- small helpers ------------------------------------------------------------------- */

static mg_status mismatch(mg_error *err, mg_digest_alg alg, const uint8_t *want,
                          const uint8_t *got, const char *where)
{
    size_t dl = mg_digest_len(alg);
    mg_status s = where != NULL ? mg_fail(err, MG_E_INTEGRITY, "%s mismatch in shard %s",
                                          mg_digest_name(alg), where)
                                : mg_fail(err, MG_E_INTEGRITY, "%s mismatch",
                                          mg_digest_name(alg));
    mg_strlcpy(err->algorithm, mg_digest_name(alg), sizeof err->algorithm);
    mg_hex_encode(want, dl, err->expected);
    mg_hex_encode(got, dl, err->actual);
    return s;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/* Write a piece of the copy; an all-zero piece stays a hole (the size is set at the end). */
static mg_status write_at(int fd, const uint8_t *p, size_t n, uint64_t off, bool holes,
                          mg_error *err)
{
    if (holes && all_zero(p, n))
        return MG_OK;
    if (!mg_pwrite_all(fd, p, n, off))
        return mg_fail(err, MG_E_IO, "cannot write the cache file: %s",
                       errno != 0 ? strerror(errno) : "short write");
    return MG_OK;
}

static mg_status set_length(int fd, uint64_t size, mg_error *err)
{
    if (ftruncate(fd, (off_t)size) != 0)
        return mg_fail(err, MG_E_IO, "cannot write the cache file: %s", strerror(errno));
    return MG_OK;
}

static mg_status read_some(int fd, uint8_t *dst, size_t want, uint64_t off, bool positional,
                           size_t *got, mg_error *err)
{
    *got = 0;
    while (*got < want) {
        ssize_t n = positional ? pread(fd, dst + *got, want - *got, (off_t)(off + *got))
                               : read(fd, dst + *got, want - *got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return mg_fail(err, MG_E_IO, "read failed: %s", strerror(errno));
        if (n == 0)
            break;
        *got += (size_t)n;
    }
    return MG_OK;
}

/* ---- the sequential hasher: whole-file digest, shards, content SHA-256, head ----------- */

typedef struct hasher {
    const mg_pinned_file *pin;
    uint64_t size;        /* expected size (pinned), or UINT64_MAX */
    mg_digest_ctx *main;  /* pin->alg over everything (not for a sharded pin) */
    mg_digest_ctx *sha;   /* content SHA-256 when wanted and not `main` */
    bool want_sha;
    mg_digest_ctx *shard; /* the current shard (sharded pin) */
    size_t shard_i;
    uint64_t pos;
    uint8_t *head;
    size_t head_len;
} hasher;

static mg_status hasher_init(hasher *h, const mg_pinned_file *pin, bool want_sha, mg_error *err)
{
    memset(h, 0, sizeof *h);
    h->pin = pin;
    h->size = pin->has_size ? pin->size : UINT64_MAX;
    h->want_sha = want_sha;
    mg_status s = MG_OK;
    if (pin->shard_count == 0)
        s = mg_digest_new(pin->alg, &h->main, err);
    if (s == MG_OK && want_sha && (pin->shard_count > 0 || pin->alg != MG_SHA256))
        s = mg_digest_new(MG_SHA256, &h->sha, err);
    if (s == MG_OK) {
        h->head = malloc(MG_STREAM_HEAD);
        if (h->head == NULL)
            s = mg_fail(err, MG_E_LIMIT, "out of memory");
    }
    return s;
}

static void hasher_free(hasher *h)
{
    mg_digest_free(h->main);
    mg_digest_free(h->sha);
    mg_digest_free(h->shard);
    free(h->head);
    memset(h, 0, sizeof *h);
}

static mg_status shard_bounds_str(const mg_pinned_file *pin, size_t i, char *buf, size_t cap)
{
    uint64_t start = (uint64_t)i * pin->shard_size;
    uint64_t end = pin->size - start < pin->shard_size ? pin->size : start + pin->shard_size;
    snprintf(buf, cap, "%llu:%llu", (unsigned long long)start, (unsigned long long)end);
    return MG_OK;
}

static mg_status finish_shard(hasher *h, mg_error *err)
{
    uint8_t d[MG_DIGEST_MAX];
    mg_status s = mg_digest_final(h->shard, d, err);
    mg_digest_free(h->shard);
    h->shard = NULL;
    if (s != MG_OK)
        return s;
    if (!mg_digest_equal(d, h->pin->shards[h->shard_i], mg_digest_len(h->pin->alg))) {
        char where[64];
        (void)shard_bounds_str(h->pin, h->shard_i, where, sizeof where);
        return mismatch(err, h->pin->alg, h->pin->shards[h->shard_i], d, where);
    }
    h->shard_i++;
    return MG_OK;
}

static mg_status hasher_update(hasher *h, const uint8_t *p, size_t n, mg_error *err)
{
    if (n > h->size - h->pos && h->size != UINT64_MAX)
        return mg_fail(err, MG_E_INTEGRITY, "longer than the expected %llu bytes",
                       (unsigned long long)h->size);
    if (h->pos < MG_STREAM_HEAD) {
        size_t k = MG_STREAM_HEAD - (size_t)h->pos < n ? MG_STREAM_HEAD - (size_t)h->pos : n;
        memcpy(h->head + h->pos, p, k);
        h->head_len = (size_t)h->pos + k;
    }
    mg_status s = MG_OK;
    if (h->main != NULL)
        s = mg_digest_update(h->main, p, n, err);
    if (s == MG_OK && h->sha != NULL)
        s = mg_digest_update(h->sha, p, n, err);
    const mg_pinned_file *pin = h->pin;
    size_t off = 0;
    while (s == MG_OK && pin->shard_count > 0 && off < n) {
        if (h->shard_i >= pin->shard_count)
            return mg_fail(err, MG_E_INTEGRITY, "longer than its shards");
        if (h->shard == NULL && (s = mg_digest_new(pin->alg, &h->shard, err)) != MG_OK)
            break;
        uint64_t shard_end = (uint64_t)h->shard_i * pin->shard_size;
        shard_end = pin->size - shard_end < pin->shard_size ? pin->size
                                                            : shard_end + pin->shard_size;
        uint64_t here = h->pos + off;
        size_t k = shard_end - here < n - off ? (size_t)(shard_end - here) : n - off;
        s = mg_digest_update(h->shard, p + off, k, err);
        off += k;
        if (s == MG_OK && here + k == shard_end)
            s = finish_shard(h, err);
    }
    h->pos += n;
    return s;
}

/* The end of the bytes: check the size, every shard, the digest; fill `out`. */
static mg_status hasher_finish(hasher *h, mg_stream_file *out, mg_error *err)
{
    const mg_pinned_file *pin = h->pin;
    if (pin->has_size && h->pos != pin->size)
        return mg_fail(err, MG_E_INTEGRITY, "size is %llu bytes, expected %llu",
                       (unsigned long long)h->pos, (unsigned long long)pin->size);
    mg_status s = MG_OK;
    if (pin->shard_count > 0) {
        if (h->shard != NULL || h->shard_i != pin->shard_count)
            return mg_fail(err, MG_E_INTEGRITY, "size is %llu bytes, shorter than its shards",
                           (unsigned long long)h->pos);
        s = mg_shard_root(pin, out->digest, err);
    } else {
        s = mg_digest_final(h->main, out->digest, err);
        if (s == MG_OK && !mg_digest_equal(out->digest, pin->digest, mg_digest_len(pin->alg)))
            s = mismatch(err, pin->alg, pin->digest, out->digest, NULL);
    }
    if (s == MG_OK && h->want_sha) {
        if (h->sha != NULL) {
            uint8_t d[MG_DIGEST_MAX];
            s = mg_digest_final(h->sha, d, err);
            memcpy(out->sha256, d, 32);
        } else {
            memcpy(out->sha256, out->digest, 32);
        }
    }
    if (s == MG_OK) {
        out->size = h->pos;
        free(out->head);
        out->head = h->head;
        out->head_len = h->head_len;
        h->head = NULL;
    }
    return s;
}

/* ---- local files --------------------------------------------------------------------- */

/* Sharded: the shards on several threads, each with its own chunk (pread). */
typedef struct shard_pool {
    int fd;
    int copy_fd;
    const mg_pinned_file *pin;
    _Atomic uint64_t *done;
    _Atomic size_t next;
    _Atomic size_t first_bad;
    pthread_mutex_t lock;
    mg_error err;
    uint8_t *head; /* the first MG_STREAM_HEAD bytes, filled by the shards that hold them */
} shard_pool;

static mg_status pool_shard(shard_pool *P, size_t i, uint8_t *buf, mg_error *err)
{
    const mg_pinned_file *pin = P->pin;
    uint64_t start = (uint64_t)i * pin->shard_size;
    uint64_t end = pin->size - start < pin->shard_size ? pin->size : start + pin->shard_size;
    mg_digest_ctx *ctx;
    mg_status s = mg_digest_new(pin->alg, &ctx, err);
    for (uint64_t pos = start; s == MG_OK && pos < end;) {
        size_t want = end - pos < MG_STREAM_CHUNK ? (size_t)(end - pos) : MG_STREAM_CHUNK;
        size_t got;
        s = read_some(P->fd, buf, want, pos, true, &got, err);
        if (s == MG_OK && got < want)
            s = mg_fail(err, MG_E_INTEGRITY, "file became shorter while it was read");
        if (s == MG_OK)
            s = mg_digest_update(ctx, buf, got, err);
        if (s == MG_OK && P->copy_fd >= 0)
            s = write_at(P->copy_fd, buf, got, pos, true, err);
        if (s == MG_OK && pos < MG_STREAM_HEAD) {
            size_t k = MG_STREAM_HEAD - (size_t)pos < got ? MG_STREAM_HEAD - (size_t)pos : got;
            memcpy(P->head + pos, buf, k); /* disjoint pieces, whichever shard reads them */
        }
        if (s == MG_OK && P->done != NULL)
            atomic_fetch_add_explicit(P->done, got, memory_order_relaxed);
        pos += got;
    }
    uint8_t d[MG_DIGEST_MAX];
    if (s == MG_OK)
        s = mg_digest_final(ctx, d, err);
    mg_digest_free(ctx);
    if (s == MG_OK && !mg_digest_equal(d, pin->shards[i], mg_digest_len(pin->alg))) {
        char where[64];
        (void)shard_bounds_str(pin, i, where, sizeof where);
        s = mismatch(err, pin->alg, pin->shards[i], d, where);
    }
    return s;
}

static void *pool_worker(void *arg)
{
    shard_pool *P = arg;
    uint8_t *buf = malloc(MG_STREAM_CHUNK);
    for (;;) {
        size_t i = atomic_fetch_add(&P->next, 1);
        if (i >= P->pin->shard_count || atomic_load(&P->first_bad) != SIZE_MAX)
            break;
        mg_error e;
        mg_error_clear(&e);
        mg_status s = buf != NULL ? pool_shard(P, i, buf, &e)
                                  : mg_fail(&e, MG_E_LIMIT, "out of memory");
        if (s != MG_OK) {
            pthread_mutex_lock(&P->lock);
            if (i < atomic_load(&P->first_bad)) {
                atomic_store(&P->first_bad, i);
                P->err = e;
            }
            pthread_mutex_unlock(&P->lock);
        }
    }
    free(buf);
    return NULL;
}

/* Hash the sharded file `fd` (size already checked) on `threads` threads, copying it into
 * `copy_fd` when >= 0. */
static mg_status hash_shards(int fd, const mg_pinned_file *pin, unsigned threads, int copy_fd,
                             mg_stream_file *out, _Atomic uint64_t *done, mg_error *err)
{
    shard_pool P;
    memset(&P, 0, sizeof P);
    P.fd = fd;
    P.copy_fd = copy_fd;
    P.pin = pin;
    P.done = done;
    atomic_init(&P.next, 0);
    atomic_init(&P.first_bad, SIZE_MAX);
    pthread_mutex_init(&P.lock, NULL);
    P.head = malloc(MG_STREAM_HEAD);
    if (P.head == NULL) {
        pthread_mutex_destroy(&P.lock);
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    }
    if (threads > 64)
        threads = 64;
    if (threads > pin->shard_count)
        threads = (unsigned)pin->shard_count;
    pthread_t tids[64];
    unsigned started = 0;
    while (started + 1 < threads && pthread_create(&tids[started], NULL, pool_worker, &P) == 0)
        started++;
    pool_worker(&P);
    for (unsigned i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    pthread_mutex_destroy(&P.lock);
    mg_status s = MG_OK;
    if (atomic_load(&P.first_bad) != SIZE_MAX) {
        *err = P.err;
        s = err->status;
    }
    if (s == MG_OK)
        s = mg_shard_root(pin, out->digest, err);
    if (s == MG_OK) {
        free(out->head);
        out->head = P.head;
        out->head_len = pin->size < MG_STREAM_HEAD ? (size_t)pin->size : MG_STREAM_HEAD;
        out->size = pin->size;
    } else {
        free(P.head);
    }
    return s;
}

/* The SHA-256 of what is in `fd` (our own copy), for the cache name. */
static mg_status sha256_of_fd(int fd, uint64_t size, uint8_t out[32], mg_error *err)
{
    uint8_t *buf = malloc(MG_STREAM_CHUNK);
    if (buf == NULL)
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    mg_digest_ctx *ctx;
    mg_status s = mg_digest_new(MG_SHA256, &ctx, err);
    for (uint64_t pos = 0; s == MG_OK && pos < size;) {
        size_t want = size - pos < MG_STREAM_CHUNK ? (size_t)(size - pos) : MG_STREAM_CHUNK;
        size_t got;
        s = read_some(fd, buf, want, pos, true, &got, err);
        if (s == MG_OK && got < want)
            s = mg_fail(err, MG_E_IO, "the cache file became shorter");
        if (s == MG_OK)
            s = mg_digest_update(ctx, buf, got, err);
        pos += got;
    }
    uint8_t d[MG_DIGEST_MAX];
    if (s == MG_OK)
        s = mg_digest_final(ctx, d, err);
    if (s == MG_OK)
        memcpy(out, d, 32);
    mg_digest_free(ctx);
    free(buf);
    return s;
}

/* Sequentially hash `fd` (read() from its position, or pread() from 0 when `positional`),
 * copying into `copy_fd` when >= 0; the size is fstat's (checked against the pin). */
static mg_status hash_sequential(int fd, bool positional, const mg_pinned_file *pin,
                                 int copy_fd, bool want_sha, mg_stream_file *out,
                                 _Atomic uint64_t *done, mg_error *err)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return mg_fail(err, MG_E_IO, "cannot stat: %s", strerror(errno));
    uint64_t size = (uint64_t)st.st_size;
    hasher h;
    uint8_t *buf = malloc(MG_STREAM_CHUNK);
    mg_status s = buf != NULL ? hasher_init(&h, pin, want_sha, err)
                              : mg_fail(err, MG_E_LIMIT, "out of memory");
    if (buf == NULL) {
        memset(&h, 0, sizeof h);
    }
    uint64_t pos = 0;
    while (s == MG_OK && pos < size) {
        size_t want = size - pos < MG_STREAM_CHUNK ? (size_t)(size - pos) : MG_STREAM_CHUNK;
        size_t got;
        s = read_some(fd, buf, want, pos, positional, &got, err);
        if (s == MG_OK && got < want)
            s = mg_fail(err, MG_E_INTEGRITY, "file became shorter while it was read");
        if (s == MG_OK)
            s = hasher_update(&h, buf, got, err);
        if (s == MG_OK && copy_fd >= 0)
            s = write_at(copy_fd, buf, got, pos, true, err);
        if (s == MG_OK && done != NULL)
            atomic_fetch_add_explicit(done, got, memory_order_relaxed);
        pos += got;
    }
    if (s == MG_OK) {
        /* A file that grew while it was read is not the file whose size was checked. */
        uint8_t extra;
        size_t got;
        s = read_some(fd, &extra, 1, pos, positional, &got, err);
        if (s == MG_OK && got != 0)
            s = mg_fail(err, MG_E_INTEGRITY, "file became longer while it was read");
    }
    if (s == MG_OK)
        s = hasher_finish(&h, out, err);
    hasher_free(&h);
    free(buf);
    return s;
}

mg_status mg_stream_local(int fd, const mg_pinned_file *pin, unsigned threads,
                          mg_cache_session *cache, mg_stream_file *out, _Atomic uint64_t *done,
                          mg_error *err)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return mg_fail(err, MG_E_IO, "cannot stat: %s", strerror(errno));
    if (!S_ISREG(st.st_mode))
        return mg_fail(err, MG_E_IO, "not a regular file");
    uint64_t size = (uint64_t)st.st_size;
    if (pin->has_size && size != pin->size)
        return mg_fail(err, MG_E_INTEGRITY, "size is %llu bytes, expected %llu",
                       (unsigned long long)size, (unsigned long long)pin->size);
    if (size > MG_MAX_MODEL_FILE_BYTES)
        return mg_fail(err, MG_E_LIMIT, "file of %llu bytes exceeds the cap",
                       (unsigned long long)size);
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    int copy = -1;
    mg_status s = cache != NULL ? mg_cache_tmpfile(cache, &copy, err) : MG_OK;
    if (s != MG_OK)
        return s;
    if (pin->shard_count > 0) {
        if (!pin->has_size || pin->shard_size == 0)
            s = mg_fail(err, MG_E_LIMIT, "internal error: not a sharded pin");
        if (s == MG_OK)
            s = hash_shards(fd, pin, threads, copy, out, done, err);
        if (s == MG_OK) {
            /* a file that grew while it was read */
            uint8_t extra;
            size_t got;
            s = read_some(fd, &extra, 1, pin->size, true, &got, err);
            if (s == MG_OK && got != 0)
                s = mg_fail(err, MG_E_INTEGRITY, "file became longer while it was read");
        }
        if (s == MG_OK && copy >= 0)
            s = set_length(copy, size, err);
        if (s == MG_OK && copy >= 0)
            s = sha256_of_fd(copy, size, out->sha256, err);
    } else {
        s = hash_sequential(fd, false, pin, copy, copy >= 0, out, done, err);
        if (s == MG_OK && copy >= 0)
            s = set_length(copy, size, err);
    }
    if (s != MG_OK) {
        if (copy >= 0)
            close(copy);
        return s;
    }
    out->out_fd = copy;
    out->partial[0] = '\0';
    return MG_OK;
}

/* ---- remote files -------------------------------------------------------------------- */

/* One stream: hash as the bytes arrive and/or write them into the copy. */
typedef struct seq_sink {
    hasher *h;  /* NULL: not hashed here */
    int copy_fd; /* -1: not kept */
    uint64_t written_end; /* highest offset written + 1 */
} seq_sink;

static mg_status seq_write(void *ctx, uint64_t off, const uint8_t *p, size_t n, mg_error *err)
{
    seq_sink *k = ctx;
    mg_status s = MG_OK;
    if (k->h != NULL)
        s = hasher_update(k->h, p, n, err);
    if (s == MG_OK && k->copy_fd >= 0)
        s = write_at(k->copy_fd, p, n, off, false, err);
    if (s == MG_OK)
        k->written_end = off + n;
    return s;
}

/* Several ranges at once, each into its place (a file, or memory). */
typedef struct range_job {
    const mg_fetch_config *cfg;
    const char *url;
    uint64_t total;
    uint64_t start;
    uint64_t len;
    uint8_t *mem;       /* into this memory, or */
    _Atomic uint64_t *done;
    uint64_t received;  /* contiguous bytes from `start` */
    mg_error err;
    int copy_fd;        /* into this file */
    mg_status status;
} range_job;

static mg_status range_write(void *ctx, uint64_t off, const uint8_t *p, size_t n, mg_error *err)
{
    range_job *j = ctx;
    if (off < j->start || n > j->len || off - j->start > j->len - n)
        return mg_fail(err, MG_E_INTEGRITY, "bytes outside the range asked for");
    mg_status s = MG_OK;
    if (j->mem != NULL)
        memcpy(j->mem + off, p, n);
    else
        s = write_at(j->copy_fd, p, n, off, false, err);
    if (s == MG_OK)
        j->received = off + n - j->start;
    return s;
}

static void *range_main(void *arg)
{
    range_job *j = arg;
    mg_error_clear(&j->err);
    j->status = mg_fetch_stream(j->cfg, j->url, j->total, j->start, j->len, true, range_write, j,
                                j->done, NULL, &j->err);
    return NULL;
}

static mg_status discard(void *ctx, uint64_t off, const uint8_t *p, size_t n, mg_error *err)
{
    (void)ctx;
    (void)off;
    (void)p;
    (void)n;
    (void)err;
    return MG_OK;
}

/* Does the server answer "Range: bytes=0-0" with 206 and "bytes 0-0/size"? */
static mg_status probe_ranges(const mg_fetch_config *cfg, const char *url, uint64_t size,
                              bool *ok, mg_error *err)
{
    bool ignored = false;
    mg_error e;
    mg_error_clear(&e);
    mg_status s = mg_fetch_stream(cfg, url, size, 0, 1, true, discard, NULL, NULL, &ignored, &e);
    *ok = s == MG_OK;
    if (s == MG_OK || ignored)
        return MG_OK;
    /* A wrong Content-Range is a lie about the pinned file; any other failure (a status, a
     * refused connection) is reported as it is. */
    *err = e;
    return s;
}

/* Download [0, size) over `n` parallel ranges into `copy_fd` or `mem`. On failure `*prefix`
 * is how much of the file from its start is known to be written. */
static mg_status parallel_ranges(const mg_fetch_config *cfg, const char *url, uint64_t size,
                                 unsigned n, int copy_fd, uint8_t *mem, _Atomic uint64_t *done,
                                 uint64_t *prefix, mg_error *err)
{
    if (n > MG_STREAM_MAX_RANGES)
        n = MG_STREAM_MAX_RANGES;
    if (n < 2)
        n = 2;
    range_job jobs[MG_STREAM_MAX_RANGES];
    pthread_t tids[MG_STREAM_MAX_RANGES];
    bool started[MG_STREAM_MAX_RANGES] = {false};
    uint64_t part = size / n;
    for (unsigned i = 0; i < n; i++) {
        memset(&jobs[i], 0, sizeof jobs[i]);
        jobs[i].cfg = cfg;
        jobs[i].url = url;
        jobs[i].total = size;
        jobs[i].start = part * i;
        jobs[i].len = i + 1 == n ? size - part * i : part;
        jobs[i].copy_fd = copy_fd;
        jobs[i].mem = mem;
        jobs[i].done = done;
    }
    for (unsigned i = 1; i < n; i++)
        started[i] = pthread_create(&tids[i], NULL, range_main, &jobs[i]) == 0;
    range_main(&jobs[0]);
    for (unsigned i = 1; i < n; i++) {
        if (started[i])
            pthread_join(tids[i], NULL);
        else
            range_main(&jobs[i]);
    }
    *prefix = jobs[0].received;
    for (unsigned i = 0; i < n; i++) {
        if (jobs[i].status != MG_OK) {
            *err = jobs[i].err;
            return jobs[i].status;
        }
    }
    *prefix = size;
    return MG_OK;
}

static unsigned range_count(unsigned threads)
{
    return threads < 2 ? 2 : threads > MG_STREAM_MAX_RANGES ? MG_STREAM_MAX_RANGES : threads;
}

/* verify: one stream, hashed as it arrives, nothing kept. */
static mg_status remote_verify(const mg_fetch_config *cfg, const char *url,
                               const mg_pinned_file *pin, mg_stream_file *out,
                               _Atomic uint64_t *done, mg_error *err)
{
    hasher h;
    mg_status s = hasher_init(&h, pin, false, err);
    seq_sink k = {.h = &h, .copy_fd = -1};
    uint64_t total = pin->has_size ? pin->size : MG_MAX_MODEL_FILE_BYTES;
    if (s == MG_OK)
        s = mg_fetch_stream(cfg, url, total, 0, total, pin->has_size, seq_write, &k, done, NULL,
                            err);
    if (s == MG_OK)
        s = hasher_finish(&h, out, err);
    hasher_free(&h);
    return s;
}

/* The name of a pin's partial file: its algorithm and digest (sharded: the root). */
static mg_status partial_name(const mg_pinned_file *pin, char *buf, size_t cap, mg_error *err)
{
    uint8_t d[MG_DIGEST_MAX];
    const char *kind = mg_digest_name(pin->alg);
    size_t dl = mg_digest_len(pin->alg);
    if (pin->shard_count > 0) {
        mg_status s = mg_shard_root(pin, d, err);
        if (s != MG_OK)
            return s;
        kind = "shards";
        dl = 32;
    } else {
        memcpy(d, pin->digest, dl);
    }
    char hex[2 * MG_DIGEST_MAX + 1];
    mg_hex_encode(d, dl, hex);
    snprintf(buf, cap, "%s-%s", kind, hex);
    return MG_OK;
}

/* After a broken transfer: the partial file keeps what is known written from its start. A
 * failure here only costs a digest mismatch (and a clean download) on the next run. */
static void keep_prefix(int fd, uint64_t len)
{
    if (ftruncate(fd, (off_t)len) != 0)
        return;
}

/* One attempt at the bytes of a fetch into `fd`, which holds `have` bytes already. */
static mg_status download_into(const mg_fetch_config *cfg, const char *url,
                               const mg_pinned_file *pin, unsigned threads, int fd, uint64_t have,
                               hasher *inline_h, bool *hashed, _Atomic uint64_t *done,
                               mg_error *err)
{
    *hashed = false;
    uint64_t size = pin->size;
    if (have > 0 && have < size) {
        bool ignored = false;
        seq_sink k = {.h = NULL, .copy_fd = fd};
        if (done != NULL)
            atomic_fetch_add_explicit(done, have, memory_order_relaxed);
        mg_status s = mg_fetch_stream(cfg, url, size, have, size - have, true, seq_write, &k,
                                      done, &ignored, err);
        if (s == MG_OK || !ignored)
            return s;
        /* The server ignores ranges: start again from nothing. */
        if (ftruncate(fd, 0) != 0)
            return mg_fail(err, MG_E_IO, "cannot reset the partial download: %s",
                           strerror(errno));
        have = 0;
    }
    if (have == size)
        return MG_OK;
    if (size >= MG_STREAM_RANGE_MIN) {
        bool ok = false;
        mg_status s = probe_ranges(cfg, url, size, &ok, err);
        if (s != MG_OK)
            return s;
        if (ok) {
            uint64_t prefix = 0;
            s = parallel_ranges(cfg, url, size, range_count(threads), fd, NULL, done, &prefix,
                                err);
            if (s != MG_OK)
                keep_prefix(fd, prefix); /* keep only what is known written */
            return s;
        }
    }
    seq_sink k = {.h = inline_h, .copy_fd = fd};
    mg_status s = mg_fetch_stream(cfg, url, size, 0, size, true, seq_write, &k, done, NULL, err);
    if (s != MG_OK)
        keep_prefix(fd, k.written_end);
    else
        *hashed = true;
    return s;
}

/* fetch: into a file of the cache (a resumable partial file for large pinned files). */
static mg_status remote_fetch(const mg_fetch_config *cfg, const char *url,
                              const mg_pinned_file *pin, unsigned threads,
                              mg_cache_session *cache, mg_stream_file *out,
                              _Atomic uint64_t *done, mg_error *err)
{
    char name[sizeof out->partial] = "";
    int fd = -1;
    uint64_t have = 0;
    mg_status s = MG_OK;
    if (pin->has_size && pin->size >= MG_STREAM_RESUME_MIN) {
        s = partial_name(pin, name, sizeof name, err);
        if (s == MG_OK)
            s = mg_cache_partial_open(cache, name, &fd, &have, err);
        if (s != MG_OK)
            return s;
        if (fd < 0)
            name[0] = '\0'; /* another fetch holds it: a temporary file instead */
    }
    if (fd < 0 && (s = mg_cache_tmpfile(cache, &fd, err)) != MG_OK)
        return s;
    if (!pin->has_size) {
        /* No size, no ranges: one stream, capped, hashed as it arrives. */
        hasher h;
        s = hasher_init(&h, pin, true, err);
        seq_sink k = {.h = &h, .copy_fd = fd};
        if (s == MG_OK)
            s = mg_fetch_stream(cfg, url, MG_MAX_MODEL_FILE_BYTES, 0, MG_MAX_MODEL_FILE_BYTES,
                                false, seq_write, &k, done, NULL, err);
        if (s == MG_OK)
            s = hasher_finish(&h, out, err);
        hasher_free(&h);
    } else {
        bool resumed = false;
        if (have > pin->size) {
            if (ftruncate(fd, 0) != 0)
                s = mg_fail(err, MG_E_IO, "cannot reset the partial download: %s",
                            strerror(errno));
            have = 0;
        }
        for (int attempt = 0; s == MG_OK && attempt < 2; attempt++) {
            resumed = have > 0;
            hasher h;
            bool hashed = false;
            s = hasher_init(&h, pin, true, err);
            if (s == MG_OK)
                s = download_into(cfg, url, pin, threads, fd, have, resumed ? NULL : &h,
                                  &hashed, done, err);
            if (s == MG_OK && hashed) {
                s = hasher_finish(&h, out, err);
            } else if (s == MG_OK) {
                /* Ranges, or a resumed file: the whole file is hashed from the start. */
                hasher_free(&h);
                if (pin->shard_count > 0) {
                    s = hash_shards(fd, pin, threads, -1, out, NULL, err);
                    if (s == MG_OK)
                        s = sha256_of_fd(fd, pin->size, out->sha256, err);
                } else {
                    s = hash_sequential(fd, true, pin, -1, true, out, NULL, err);
                }
            }
            hasher_free(&h);
            /* Only a digest that does not match (not a broken transfer) condemns the bytes. */
            if (s != MG_E_INTEGRITY || name[0] == '\0' || err->algorithm[0] == '\0')
                break;
            /* What was there (partly or wholly from an earlier run) is not the pinned file:
             * it is dropped; a resumed file gets one clean download from the start. */
            if (ftruncate(fd, 0) != 0)
                break;
            if (!resumed)
                break;
            have = 0;
            mg_error_clear(err);
            s = MG_OK;
        }
    }
    if (s != MG_OK && name[0] != '\0') {
        /* A partial file is kept for the next fetch to continue, unless its bytes failed the
         * digest or nothing arrived. */
        struct stat st;
        bool empty = fstat(fd, &st) == 0 && st.st_size == 0;
        if (empty || (s == MG_E_INTEGRITY && err->algorithm[0] != '\0'))
            mg_cache_partial_remove(cache, name);
    }
    if (s != MG_OK) {
        close(fd);
        return s;
    }
    out->out_fd = fd;
    mg_strlcpy(out->partial, name, sizeof out->partial);
    return MG_OK;
}

mg_status mg_stream_remote(const mg_fetch_config *cfg, const char *url,
                           const mg_pinned_file *pin, unsigned threads, mg_cache_session *cache,
                           mg_stream_file *out, _Atomic uint64_t *done, mg_error *err)
{
    if (pin->shard_count > 0 && (!pin->has_size || pin->shard_size == 0))
        return mg_fail(err, MG_E_LIMIT, "internal error: not a sharded pin");
    if (cache == NULL)
        return remote_verify(cfg, url, pin, out, done, err);
    return remote_fetch(cfg, url, pin, threads, cache, out, done, err);
}

mg_status mg_stream_remote_region(const mg_fetch_config *cfg, const char *url,
                                  const mg_pinned_file *pin, unsigned threads, mg_region *out,
                                  uint8_t digest[MG_DIGEST_MAX], bool *used,
                                  _Atomic uint64_t *done, mg_error *err)
{
    *used = false;
    memset(out, 0, sizeof *out);
    if (!pin->has_size || pin->size < MG_STREAM_RANGE_MIN || pin->size > SIZE_MAX ||
        pin->size > MG_MAX_MODEL_FILE_BYTES)
        return MG_OK;
    bool ok = false;
    mg_status s = probe_ranges(cfg, url, pin->size, &ok, err);
    if (s != MG_OK || !ok)
        return s;
    *used = true;
    s = mg_region_alloc(out, (size_t)pin->size, err);
    uint64_t prefix = 0;
    if (s == MG_OK)
        s = parallel_ranges(cfg, url, pin->size, range_count(threads), -1, out->data, done,
                            &prefix, err);
    /* Assembled: hashed once, as a whole (or per shard). */
    if (s == MG_OK && pin->shard_count > 0)
        s = mg_shard_check_memory(out, pin, digest, err);
    else if (s == MG_OK)
        s = mg_digest_buffer(pin->alg, out->data, out->len, digest, err);
    if (s != MG_OK)
        mg_region_free(out);
    return s;
}
