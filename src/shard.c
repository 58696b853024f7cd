#define _GNU_SOURCE
#include "shard.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fsutil.h"
#include "util/hex.h"

/* Read and hash in chunks small enough to stay in cache between the copy and the hash. */
#define SHARD_CHUNK (256u << 10)
#define SHARD_MAX_THREADS 64u

typedef struct shard_run {
    int fd;
    const mg_pinned_file *pin;
    mg_region *region;
    _Atomic uint64_t *done;
    _Atomic size_t next;
    _Atomic size_t first_bad; /* lowest failed shard, SIZE_MAX while none */
    pthread_mutex_t lock;
    mg_error err; /* the failure of first_bad */
} shard_run;

static void fail_at(shard_run *R, size_t i, const mg_error *e)
{
    pthread_mutex_lock(&R->lock);
    if (i < atomic_load(&R->first_bad)) {
        atomic_store(&R->first_bad, i);
        R->err = *e;
    }
    pthread_mutex_unlock(&R->lock);
}

/* Into the memfd at `off`: its pages are allocated by the write, never faulted in (nor
 * zeroed first) through a mapping. */
static mg_status write_all(int fd, const uint8_t *src, size_t n, uint64_t off, mg_error *err)
{
    if (!mg_pwrite_all(fd, src, n, off))
        return mg_fail(err, MG_E_LIMIT, "cannot fill verified memory: %s",
                       errno != 0 ? strerror(errno) : "short write");
    return MG_OK;
}

/* `buf` (SHARD_CHUNK bytes) when the region is a memfd: each chunk is read there, hashed
 * while it is in cache, and written into the memfd; NULL: read straight into the region. */
static mg_status hash_shard(shard_run *R, size_t i, uint8_t *buf, mg_error *err)
{
    const mg_pinned_file *pin = R->pin;
    uint64_t start = (uint64_t)i * pin->shard_size;
    uint64_t end = pin->size - start < pin->shard_size ? pin->size : start + pin->shard_size;
    mg_digest_ctx *ctx;
    mg_status s = mg_digest_new(pin->alg, &ctx, err);
    if (s != MG_OK)
        return s;
    uint64_t pos = start;
    while (s == MG_OK && pos < end) {
        size_t want = end - pos < SHARD_CHUNK ? (size_t)(end - pos) : SHARD_CHUNK;
        uint8_t *dst = buf != NULL ? buf : R->region->data + pos;
        ssize_t got = pread(R->fd, dst, want, (off_t)pos);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            s = mg_fail(err, MG_E_IO, "read error: %s", strerror(errno));
        else if (got == 0)
            s = mg_fail(err, MG_E_INTEGRITY, "file became shorter while it was read");
        else
            s = mg_digest_update(ctx, dst, (size_t)got, err);
        if (s == MG_OK && buf != NULL)
            s = write_all(R->region->memfd, buf, (size_t)got, pos, err);
        if (s == MG_OK) {
            pos += (uint64_t)got;
            if (R->done != NULL)
                atomic_fetch_add_explicit(R->done, (uint64_t)got, memory_order_relaxed);
        }
    }
    uint8_t d[MG_DIGEST_MAX];
    if (s == MG_OK)
        s = mg_digest_final(ctx, d, err);
    mg_digest_free(ctx);
    size_t dl = mg_digest_len(pin->alg);
    if (s == MG_OK && !mg_digest_equal(d, pin->shards[i], dl)) {
        s = mg_fail(err, MG_E_INTEGRITY, "%s mismatch in shard %llu:%llu",
                    mg_digest_name(pin->alg), (unsigned long long)start, (unsigned long long)end);
        mg_strlcpy(err->algorithm, mg_digest_name(pin->alg), sizeof err->algorithm);
        mg_hex_encode(pin->shards[i], dl, err->expected);
        mg_hex_encode(d, dl, err->actual);
    }
    return s;
}

static void *shard_worker(void *arg)
{
    shard_run *R = arg;
    uint8_t *buf = NULL;
    if (R->region->has_memfd && (buf = malloc(SHARD_CHUNK)) == NULL) {
        mg_error e;
        mg_error_clear(&e);
        if (mg_fail(&e, MG_E_LIMIT, "out of memory") != MG_OK)
            fail_at(R, 0, &e);
        return NULL;
    }
    for (;;) {
        size_t i = atomic_fetch_add(&R->next, 1);
        if (i >= R->pin->shard_count || atomic_load(&R->first_bad) != SIZE_MAX)
            break;
        mg_error e;
        mg_error_clear(&e);
        if (hash_shard(R, i, buf, &e) != MG_OK)
            fail_at(R, i, &e);
    }
    free(buf);
    return NULL;
}

mg_status mg_shard_root(const mg_pinned_file *pin, uint8_t out[MG_DIGEST_MAX], mg_error *err)
{
    memset(out, 0, MG_DIGEST_MAX);
    mg_digest_ctx *ctx;
    mg_status s = mg_digest_new(MG_SHA256, &ctx, err);
    for (size_t i = 0; s == MG_OK && i < pin->shard_count; i++)
        s = mg_digest_update(ctx, pin->shards[i], mg_digest_len(pin->alg), err);
    if (s == MG_OK)
        s = mg_digest_final(ctx, out, err);
    if (ctx != NULL)
        mg_digest_free(ctx);
    return s;
}

mg_status mg_shard_check_memory(const mg_region *r, const mg_pinned_file *pin,
                                uint8_t digest[MG_DIGEST_MAX], mg_error *err)
{
    if (pin->shard_count == 0 || pin->shard_size == 0 || r->len != pin->size)
        return mg_fail(err, MG_E_INTEGRITY, "size is %zu bytes, expected %llu", r->len,
                       (unsigned long long)pin->size);
    size_t dl = mg_digest_len(pin->alg);
    for (size_t i = 0; i < pin->shard_count; i++) {
        uint64_t start = (uint64_t)i * pin->shard_size;
        uint64_t end = pin->size - start < pin->shard_size ? pin->size : start + pin->shard_size;
        uint8_t d[MG_DIGEST_MAX];
        mg_status s = mg_digest_buffer(pin->alg, r->data + start, (size_t)(end - start), d, err);
        if (s != MG_OK)
            return s;
        if (!mg_digest_equal(d, pin->shards[i], dl)) {
            s = mg_fail(err, MG_E_INTEGRITY, "%s mismatch in shard %llu:%llu",
                        mg_digest_name(pin->alg), (unsigned long long)start,
                        (unsigned long long)end);
            mg_strlcpy(err->algorithm, mg_digest_name(pin->alg), sizeof err->algorithm);
            mg_hex_encode(pin->shards[i], dl, err->expected);
            mg_hex_encode(d, dl, err->actual);
            return s;
        }
    }
    return mg_shard_root(pin, digest, err);
}

mg_status mg_shard_read(int fd, const mg_pinned_file *pin, unsigned threads, unsigned flags,
                        mg_region *out, uint8_t digest[MG_DIGEST_MAX], _Atomic uint64_t *done,
                        mg_error *err)
{
    memset(out, 0, sizeof *out);
    struct stat st;
    if (fstat(fd, &st) != 0)
        return mg_fail(err, MG_E_IO, "cannot stat: %s", strerror(errno));
    if (!S_ISREG(st.st_mode))
        return mg_fail(err, MG_E_IO, "not a regular file");
    if (pin->shard_count == 0 || pin->shard_size == 0 || !pin->has_size)
        return mg_fail(err, MG_E_LIMIT, "internal error: not a sharded pin");
    if ((uint64_t)st.st_size != pin->size)
        return mg_fail(err, MG_E_INTEGRITY, "size is %llu bytes, expected %llu",
                       (unsigned long long)st.st_size, (unsigned long long)pin->size);
    if (pin->size > MG_MAX_MODEL_FILE_BYTES || pin->size > SIZE_MAX)
        return mg_fail(err, MG_E_LIMIT, "file of %llu bytes exceeds the cap",
                       (unsigned long long)pin->size);
    /* Verified memory as for unsharded files: a memfd that mg_region_seal seals (private
     * memory when there is no memfd, or when RLIMIT_FSIZE, which memfd writes count against,
     * is below the file's size). */
    struct rlimit fsz;
    bool fsz_low = getrlimit(RLIMIT_FSIZE, &fsz) == 0 && fsz.rlim_cur != RLIM_INFINITY &&
                   (uint64_t)fsz.rlim_cur < pin->size;
    mg_status s = fsz_low ? mg_region_alloc(out, (size_t)pin->size, err)
                          : mg_region_alloc_memfd(out, (size_t)pin->size, err);
    if (s != MG_OK)
        return s;
    shard_run R;
    memset(&R, 0, sizeof R);
    R.fd = fd;
    R.pin = pin;
    R.region = out;
    R.done = done;
    atomic_init(&R.next, 0);
    atomic_init(&R.first_bad, SIZE_MAX);
    pthread_mutex_init(&R.lock, NULL);
    if (threads > SHARD_MAX_THREADS)
        threads = SHARD_MAX_THREADS;
    if (threads > pin->shard_count)
        threads = (unsigned)pin->shard_count;
    pthread_t tids[SHARD_MAX_THREADS];
    unsigned started = 0;
    while (started + 1 < threads && pthread_create(&tids[started], NULL, shard_worker, &R) == 0)
        started++;
    shard_worker(&R);
    for (unsigned i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    pthread_mutex_destroy(&R.lock);
    if (atomic_load(&R.first_bad) != SIZE_MAX) {
        *err = R.err;
        s = err->status;
    }
    if (s == MG_OK) {
        /* A file that grew while it was read is not the file whose size was checked. */
        uint8_t extra;
        ssize_t got;
        do
            got = pread(fd, &extra, 1, (off_t)pin->size);
        while (got < 0 && errno == EINTR);
        if (got != 0)
            s = got < 0 ? mg_fail(err, MG_E_IO, "read error: %s", strerror(errno))
                        : mg_fail(err, MG_E_INTEGRITY, "file became longer while it was read");
    }
    if (s == MG_OK)
        s = mg_shard_root(pin, digest, err);
    /* Sealed and mapped read-only at once, as region.c does for unsharded files (private
     * memory stays writable for the caller to seal). */
    if (s == MG_OK && out->has_memfd)
        s = mg_region_seal_ex(out, flags, err);
    if (s != MG_OK)
        mg_region_free(out);
    return s;
}
