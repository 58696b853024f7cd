#define _GNU_SOURCE
#include "shard.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
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

/*
 * A shard's digest is sequential, so once every shard has been taken a worker with none left
 * would sit idle while the others finish theirs (up to one shard: 60 ms for 64 MiB here, and
 * 200 ms when backing fresh memory is slow). Such a worker helps instead: it takes the chunks
 * of a shard in progress from its end, reads each from the file and writes it into the memfd;
 * the owner, on reaching a chunk the helper took, reads it back from the memfd (private memory
 * that only this process writes) and hashes it there, which saves it the fill, the costly
 * half of its work. The owner hashes every byte itself and in order, from the verified
 * memory, as before.
 *
 * Claims on a shard's chunks are one atomic word: the owner's next chunk (low half) and the
 * first chunk the helper took (high half); the owner takes chunk `lo` while lo < hi, the
 * helper takes hi - 1 while hi > lo, so each chunk is filled by exactly one of them.
 * `filled_from` tells the owner how far down the helper has written (the helper fills in
 * descending order). Slots change shard only when their owner takes a new one, and helping
 * starts only when none is left to take, so a helper never sees a slot change under it.
 */
typedef struct shard_slot {
    _Atomic size_t shard;          /* in progress, SIZE_MAX when none */
    _Atomic uint64_t claim;        /* lo | hi << 32, in chunks of the shard */
    _Atomic uint32_t filled_from;  /* the helper has written chunks [filled_from, nchunks) */
    _Atomic bool helped;           /* a helper has attached */
    _Atomic bool helper_failed;    /* ... and stopped on an error (recorded with fail_at) */
} shard_slot;

typedef struct shard_run {
    int fd;
    const mg_pinned_file *pin;
    mg_region *region;
    _Atomic uint64_t *done;
    _Atomic size_t next;
    _Atomic size_t first_bad; /* lowest failed shard, SIZE_MAX while none */
    pthread_mutex_t lock;
    mg_error err; /* the failure of first_bad */
    shard_slot *slots;
    _Atomic unsigned next_slot;
} shard_run;

static _Atomic uint64_t chunks_helped;

uint64_t mg_shard_chunks_helped(void)
{
    return atomic_load(&chunks_helped);
}

static void fail_at(shard_run *R, size_t i, const mg_error *e)
{
    pthread_mutex_lock(&R->lock);
    if (i < atomic_load(&R->first_bad)) {
        atomic_store(&R->first_bad, i);
        R->err = *e;
    }
    pthread_mutex_unlock(&R->lock);
}

static uint64_t shard_start(const mg_pinned_file *pin, size_t i)
{
    return (uint64_t)i * pin->shard_size;
}

static uint64_t shard_end(const mg_pinned_file *pin, size_t i)
{
    uint64_t start = shard_start(pin, i);
    return pin->size - start < pin->shard_size ? pin->size : start + pin->shard_size;
}

static uint32_t chunk_count(const mg_pinned_file *pin, size_t i)
{
    /* (pin->size <= MG_MAX_MODEL_FILE_BYTES: at most 2^22 chunks) */
    return (uint32_t)((shard_end(pin, i) - shard_start(pin, i) + SHARD_CHUNK - 1) / SHARD_CHUNK);
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

/* All `n` bytes at `off` of `fd` into dst: MG_E_INTEGRITY when the file ends first. */
static mg_status read_all(int fd, uint8_t *dst, size_t n, uint64_t off, mg_error *err)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, dst + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return mg_fail(err, MG_E_IO, "read error: %s", strerror(errno));
        if (r == 0)
            return mg_fail(err, MG_E_INTEGRITY, "file became shorter while it was read");
        got += (size_t)r;
    }
    return MG_OK;
}

/* Chunk `c` of the owner's shard: does the owner fill it (true) or did a helper take it? */
static bool owner_takes(shard_slot *slot, uint32_t c)
{
    uint64_t v = atomic_load(&slot->claim);
    for (;;) {
        uint32_t lo = (uint32_t)v, hi = (uint32_t)(v >> 32);
        if (lo != c || lo >= hi)
            return false;
        if (atomic_compare_exchange_weak(&slot->claim, &v, v + 1))
            return true;
    }
}

/* Wait until the helper has written chunk `c`; false when it stopped on an error. */
static bool wait_filled(shard_run *R, shard_slot *slot, uint32_t c)
{
    while (atomic_load_explicit(&slot->filled_from, memory_order_acquire) > c) {
        if (atomic_load(&slot->helper_failed) || atomic_load(&R->first_bad) != SIZE_MAX)
            return false;
        sched_yield();
    }
    return true;
}

/* `buf` (SHARD_CHUNK bytes) when the region is a memfd: each chunk is read there, hashed
 * while it is in cache, and written into the memfd (or, a chunk a helper wrote, read back
 * from the memfd); NULL: read straight into the region. */
static mg_status hash_shard(shard_run *R, size_t i, shard_slot *slot, uint8_t *buf,
                            mg_error *err)
{
    const mg_pinned_file *pin = R->pin;
    uint64_t start = shard_start(pin, i), end = shard_end(pin, i);
    mg_digest_ctx *ctx;
    mg_status s = mg_digest_new(pin->alg, &ctx, err);
    if (s != MG_OK)
        return s;
    uint64_t pos = start;
    for (uint32_t c = 0; s == MG_OK && pos < end; c++) {
        size_t want = end - pos < SHARD_CHUNK ? (size_t)(end - pos) : SHARD_CHUNK;
        if (buf == NULL) {
            uint8_t *dst = R->region->data + pos;
            s = read_all(R->fd, dst, want, pos, err);
            if (s == MG_OK)
                s = mg_digest_update(ctx, dst, want, err);
        } else if (slot == NULL || owner_takes(slot, c)) {
            s = read_all(R->fd, buf, want, pos, err);
            if (s == MG_OK)
                s = mg_digest_update(ctx, buf, want, err);
            if (s == MG_OK)
                s = write_all(R->region->memfd, buf, want, pos, err);
        } else if (!wait_filled(R, slot, c)) {
            s = mg_fail(err, MG_E_IO, "read error"); /* (the helper's error is the one kept) */
        } else {
            s = read_all(R->region->memfd, buf, want, pos, err);
            if (s == MG_OK)
                s = mg_digest_update(ctx, buf, want, err);
        }
        if (s == MG_OK) {
            pos += want;
            if (R->done != NULL)
                atomic_fetch_add_explicit(R->done, (uint64_t)want, memory_order_relaxed);
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

/* Fill chunks of `slot`'s shard from its end until they meet the owner's. */
static void help_slot(shard_run *R, shard_slot *slot, size_t i, uint8_t *buf)
{
    const mg_pinned_file *pin = R->pin;
    uint64_t start = shard_start(pin, i), end = shard_end(pin, i);
    for (;;) {
        if (atomic_load(&R->first_bad) != SIZE_MAX)
            break;
        uint64_t v = atomic_load(&slot->claim);
        uint32_t lo = (uint32_t)v, hi = (uint32_t)(v >> 32);
        if (hi <= lo + 1) /* (the owner's next chunk is its own: nothing left to take) */
            break;
        uint64_t nv = (uint64_t)lo | (uint64_t)(hi - 1) << 32;
        if (!atomic_compare_exchange_weak(&slot->claim, &v, nv))
            continue;
        uint32_t c = hi - 1;
        uint64_t pos = start + (uint64_t)c * SHARD_CHUNK;
        size_t want = end - pos < SHARD_CHUNK ? (size_t)(end - pos) : SHARD_CHUNK;
        mg_error e;
        mg_error_clear(&e);
        mg_status s = read_all(R->fd, buf, want, pos, &e);
        if (s == MG_OK)
            s = write_all(R->region->memfd, buf, want, pos, &e);
        if (s != MG_OK) {
            fail_at(R, i, &e);
            atomic_store(&slot->helper_failed, true);
            return;
        }
        atomic_fetch_add_explicit(&chunks_helped, 1, memory_order_relaxed);
        atomic_store_explicit(&slot->filled_from, c, memory_order_release);
    }
}

/* No shard left to take: help the slot with the most chunks left, while there is one. */
static void help_others(shard_run *R, unsigned self, unsigned nslots, uint8_t *buf)
{
    for (;;) {
        shard_slot *best = NULL;
        size_t best_shard = SIZE_MAX;
        uint32_t best_left = 2; /* (fewer is not worth attaching for) */
        for (unsigned k = 0; k < nslots; k++) {
            shard_slot *slot = &R->slots[k];
            size_t i = atomic_load_explicit(&slot->shard, memory_order_acquire);
            if (k == self || i == SIZE_MAX || atomic_load(&slot->helped))
                continue;
            uint64_t v = atomic_load(&slot->claim);
            uint32_t lo = (uint32_t)v, hi = (uint32_t)(v >> 32);
            if (hi > lo && hi - lo > best_left) {
                best = slot;
                best_shard = i;
                best_left = hi - lo;
            }
        }
        bool no = false;
        if (best == NULL || !atomic_compare_exchange_strong(&best->helped, &no, true))
            return;
        help_slot(R, best, best_shard, buf);
    }
}

static void *shard_worker(void *arg)
{
    shard_run *R = arg;
    unsigned self = atomic_fetch_add(&R->next_slot, 1);
    shard_slot *slot = &R->slots[self];
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
        uint32_t n = chunk_count(R->pin, i);
        atomic_store(&slot->claim, (uint64_t)n << 32);
        atomic_store(&slot->filled_from, n);
        atomic_store(&slot->helped, false);
        atomic_store(&slot->helper_failed, false);
        atomic_store_explicit(&slot->shard, i, memory_order_release);
        mg_error e;
        mg_error_clear(&e);
        if (hash_shard(R, i, buf != NULL ? slot : NULL, buf, &e) != MG_OK)
            fail_at(R, i, &e);
        atomic_store(&slot->shard, SIZE_MAX);
    }
    if (buf != NULL && atomic_load(&R->first_bad) == SIZE_MAX)
        help_others(R, self, atomic_load(&R->next_slot), buf);
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
    /* (more threads than shards: the others help with the shards in progress) */
    if (threads > pin->shard_count + 1)
        threads = (unsigned)pin->shard_count + 1;
    if (threads == 0)
        threads = 1;
    shard_slot slots[SHARD_MAX_THREADS];
    for (unsigned k = 0; k < threads; k++) {
        atomic_init(&slots[k].shard, SIZE_MAX);
        atomic_init(&slots[k].claim, 0);
        atomic_init(&slots[k].filled_from, 0);
        atomic_init(&slots[k].helped, false);
        atomic_init(&slots[k].helper_failed, false);
    }
    R.slots = slots;
    atomic_init(&R.next_slot, 0);
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
