#define _GNU_SOURCE
#include "region.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "util/fsutil.h"

/* Read and hash in chunks small enough to stay in cache between the copy and the hash. */
#define MG_READ_CHUNK (256u << 10)

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif
#define MG_PREFAULT_STEP (8u << 20)
#define MG_PREFAULT_MIN (64u << 20)

/*
 * Backing fresh private memory with pages (the kernel zeroes each one on first touch, and a
 * virtual machine may add its own cost) can take as long as hashing it. Where the bytes go
 * to private memory (no memfd) and a core is spare, a helper thread populates the region
 * ahead of the reader with MADV_POPULATE_WRITE, which never changes the content, so the
 * reader finds its pages ready. Without kernel support the helper simply stops.
 */
typedef struct prefault {
    pthread_t thread;
    uint8_t *base;
    size_t len;
    atomic_bool stop;
    bool started;
} prefault;

static void *prefault_main(void *arg)
{
    prefault *pf = arg;
    for (size_t off = 0; off < pf->len && !atomic_load(&pf->stop); off += MG_PREFAULT_STEP) {
        size_t n = pf->len - off < MG_PREFAULT_STEP ? pf->len - off : MG_PREFAULT_STEP;
        if (madvise(pf->base + off, n, MADV_POPULATE_WRITE) != 0)
            break;
    }
    return NULL;
}

static void prefault_start(prefault *pf, mg_region *r)
{
    pf->base = r->data;
    pf->len = r->map_len;
    atomic_init(&pf->stop, false);
    pf->started = r->map_len >= MG_PREFAULT_MIN &&
                  pthread_create(&pf->thread, NULL, prefault_main, pf) == 0;
}

static void prefault_stop(prefault *pf)
{
    if (pf->started) {
        atomic_store(&pf->stop, true);
        pthread_join(pf->thread, NULL);
        pf->started = false;
    }
}

mg_status mg_region_alloc(mg_region *r, size_t len, mg_error *err)
{
    memset(r, 0, sizeof *r);
    if (len == 0)
        return MG_OK;
    long page = sysconf(_SC_PAGESIZE);
    size_t ps = page > 0 ? (size_t)page : 4096;
    size_t map_len;
    if (__builtin_add_overflow(len, ps - 1, &map_len))
        return mg_fail(err, MG_E_LIMIT, "buffer of %zu bytes is too large", len);
    map_len &= ~(ps - 1);
    void *p = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return mg_fail(err, MG_E_LIMIT, "cannot map %zu bytes of memory: %s", len, strerror(errno));
    /* Huge pages, where the kernel offers them, cut the page faults of filling a large
     * region by 512x; a refusal is harmless. */
    if (map_len >= (2u << 20))
        (void)madvise(p, map_len, MADV_HUGEPAGE);
    r->data = p;
    r->len = len;
    r->map_len = map_len;
    return MG_OK;
}

mg_status mg_region_alloc_memfd(mg_region *r, size_t len, mg_error *err)
{
    memset(r, 0, sizeof *r);
    if (len == 0)
        return MG_OK;
    int fd = memfd_create("modelgate-verified", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return mg_region_alloc(r, len, err);
    long page = sysconf(_SC_PAGESIZE);
    size_t ps = page > 0 ? (size_t)page : 4096;
    size_t map_len;
    if (__builtin_add_overflow(len, ps - 1, &map_len) || len > (size_t)INT64_MAX) {
        close(fd);
        return mg_fail(err, MG_E_LIMIT, "buffer of %zu bytes is too large", len);
    }
    map_len &= ~(ps - 1);
    if (ftruncate(fd, (off_t)len) != 0) {
        int e = errno;
        close(fd);
        return mg_fail(err, MG_E_LIMIT, "cannot size %zu bytes of memory: %s", len, strerror(e));
    }
    void *p = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        int e = errno;
        close(fd);
        return mg_fail(err, MG_E_LIMIT, "cannot map %zu bytes of memory: %s", len, strerror(e));
    }
    if (map_len >= (2u << 20))
        (void)madvise(p, map_len, MADV_HUGEPAGE);
    /* A process forked meanwhile (by another thread of the application) must not keep a
     * writable mapping: the seal would then be refused. */
    (void)madvise(p, map_len, MADV_DONTFORK);
    r->data = p;
    r->len = len;
    r->map_len = map_len;
    r->has_memfd = true;
    r->memfd = fd;
    return MG_OK;
}

/* Seal a memfd region. F_SEAL_WRITE needs every writable mapping gone, and a mapping made
 * before the seal could be made writable again by mprotect; so the writable mapping goes,
 * the seals go on, and the pages (still in the memfd) are mapped again read-only, where
 * they were if that address is still free. */
static mg_status seal_memfd(mg_region *r, bool keep_fd, mg_error *err)
{
    uint8_t *old = r->data;
    if (old != NULL)
        munmap(old, r->map_len);
    r->data = NULL;
    mg_status s = MG_OK;
    if (fcntl(r->memfd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
        s = mg_fail(err, MG_E_LIMIT, "cannot seal verified memory: %s", strerror(errno));
    void *p = MAP_FAILED;
    if (s == MG_OK) {
        if (old != NULL)
            p = mmap(old, r->map_len, PROT_READ, MAP_SHARED | MAP_FIXED_NOREPLACE, r->memfd, 0);
        if (p != MAP_FAILED && p != old) { /* a kernel without MAP_FIXED_NOREPLACE */
            munmap(p, r->map_len);
            p = MAP_FAILED;
        }
        if (p == MAP_FAILED)
            p = mmap(NULL, r->map_len, PROT_READ, MAP_SHARED, r->memfd, 0);
        if (p == MAP_FAILED)
            s = mg_fail(err, MG_E_LIMIT, "cannot map sealed verified memory: %s",
                        strerror(errno));
    }
    r->has_memfd = false;
    if (s != MG_OK || !keep_fd) {
        close(r->memfd);
        r->memfd = -1;
    }
    if (s != MG_OK) {
        r->len = 0;
        r->map_len = 0;
        return s;
    }
    r->data = p;
    r->memfd_sealed = true;
    r->has_sealed_fd = keep_fd;
    return MG_OK;
}

mg_status mg_region_seal(mg_region *r, mg_error *err)
{
    return mg_region_seal_ex(r, 0, err);
}

mg_status mg_region_seal_ex(mg_region *r, unsigned flags, mg_error *err)
{
    if (r->data == NULL || r->memfd_sealed)
        return MG_OK;
    if (r->has_memfd)
        return seal_memfd(r, (flags & MG_REGION_KEEP_FD) != 0, err);
    if (mprotect(r->data, r->map_len, PROT_READ) != 0)
        return mg_fail(err, MG_E_LIMIT, "cannot make verified memory read-only: %s",
                       strerror(errno));
    return MG_OK;
}

void mg_region_drop_fd(mg_region *r)
{
    if (r->has_sealed_fd)
        close(r->memfd);
    r->has_sealed_fd = false;
    r->memfd = -1;
}

void mg_region_free(mg_region *r)
{
    if (r->data != NULL)
        munmap(r->data, r->map_len);
    if (r->has_memfd || r->has_sealed_fd)
        close(r->memfd);
    free(r->block_crc);
    memset(r, 0, sizeof *r);
}

/* Bytes [off, off + want) of the file (fewer at its end): pread, so that several threads
 * can read one file. */
static mg_status read_fully(int fd, uint8_t *dst, size_t want, uint64_t off, size_t *got,
                            mg_error *err)
{
    *got = 0;
    while (*got < want) {
        ssize_t n = pread(fd, dst + *got, want - *got, (off_t)(off + *got));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return mg_fail(err, MG_E_IO, "read failed: %s", strerror(errno));
        }
        if (n == 0)
            break;
        *got += (size_t)n;
    }
    return MG_OK;
}

mg_status mg_region_file_size(int fd, uint64_t expected_size, uint64_t *size, mg_error *err)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return mg_fail(err, MG_E_IO, "cannot stat: %s", strerror(errno));
    if (!S_ISREG(st.st_mode))
        return mg_fail(err, MG_E_IO, "not a regular file");
    *size = (uint64_t)st.st_size;
    if (expected_size != UINT64_MAX && *size != expected_size)
        return mg_fail(err, MG_E_INTEGRITY, "size is %llu bytes, expected %llu",
                       (unsigned long long)*size, (unsigned long long)expected_size);
    if (*size > MG_MAX_MODEL_FILE_BYTES || *size > SIZE_MAX)
        return mg_fail(err, MG_E_LIMIT, "file of %llu bytes exceeds the cap",
                       (unsigned long long)*size);
    return MG_OK;
}

mg_status mg_region_read_hashed(int fd, uint64_t expected_size, mg_digest_alg alg,
                                mg_region *out, uint8_t digest[MG_DIGEST_MAX],
                                _Atomic uint64_t *done, mg_error *err)
{
    return mg_region_read_hashed_ex(fd, expected_size, alg, 0, out, digest, done, err);
}

static mg_status write_fully(int fd, const uint8_t *src, size_t n, uint64_t off, mg_error *err)
{
    if (!mg_pwrite_all(fd, src, n, off))
        return mg_fail(err, MG_E_LIMIT, "cannot fill verified memory: %s",
                       errno != 0 ? strerror(errno) : "short write");
    return MG_OK;
}

/*
 * Filling verified memory. Each chunk of the file is read into one slot of a small ring,
 * written into the memfd (the kernel allocates its pages without a page fault per page,
 * which is what makes faulting a fresh shared mapping several times slower) and hashed from
 * the same slot while it is still in cache: one read, no other pass, no other copy.
 *
 * With a spare core (MG_REGION_PREFAULT) a filler thread fills chunks (read, write into the
 * memfd, CRC) ahead of the calling thread, which hashes them in order. Hashing is about half
 * of the work and backing fresh memory most of the rest, but the second varies a lot (on a
 * virtual machine the host must back every new page, fast or slow from one run to the next):
 * so the hasher, whenever its next chunk is not ready yet, fills the next free chunk itself
 * rather than wait, and the two cores share whatever the work is. Without a spare core the
 * calling thread does all of it in turn (the same code, with nobody else filling).
 *
 * Block CRCs of a ZIP file (npz): a stored npz member is used in place, and its CRC-32 must
 * be checked, which would be one more pass over the whole file. Instead each chunk's CRC-32
 * is taken from the verified bytes when the chunk is filled, and the chunks' CRCs are
 * combined into the CRC of every MG_REGION_CRC_BLOCK bytes, which the parser combines
 * (crc32_combine) into each member's CRC. Any trouble leaves the table out, and the parser
 * computes the CRC itself as before.
 */
#define MG_CRC_MIN_BYTES ((size_t)4 << 20)
#define MG_PIPE_MIN_BYTES ((size_t)4 << 20) /* (the loader asks only from MG_REGION_PIPE_MIN) */
#define MG_RING_SLOTS 16u
_Static_assert(MG_REGION_CRC_BLOCK % MG_READ_CHUNK == 0, "a chunk never spans two blocks");

typedef struct fill_run {
    int fd;    /* the file (read with pread) */
    int memfd; /* the verified memory */
    size_t size;
    size_t chunks;  /* of MG_READ_CHUNK bytes, the last one shorter */
    size_t slots;   /* of the ring: chunk i lives in slot i % slots */
    uint8_t *ring;  /* slots * MG_READ_CHUNK bytes */
    size_t len[MG_RING_SLOTS];
    bool filled[MG_RING_SLOTS];   /* (under lock) */
    uint32_t *chunk_crc;          /* CRC-32 of each chunk (ZIP archives), else NULL */
    pthread_mutex_t lock;
    pthread_cond_t filled_cond, freed_cond;
    size_t claimed;  /* chunks taken by a filler (under lock) */
    size_t consumed; /* chunks hashed, their slots free again (under lock) */
    bool threaded;   /* a filler thread runs: take the lock */
    bool hasher_waits, filler_waits; /* (under lock) */
    bool stop;   /* the hasher failed: stop filling (under lock) */
    bool failed; /* a fill failed, for the reason in fill_err (under lock) */
    mg_error fill_err;
} fill_run;

static void run_lock(fill_run *F)
{
    if (F->threaded)
        pthread_mutex_lock(&F->lock);
}

static void run_unlock(fill_run *F)
{
    if (F->threaded)
        pthread_mutex_unlock(&F->lock);
}

/* Chunk `i` into its slot, then into the memfd (and its CRC). */
static mg_status fill_chunk(fill_run *F, size_t i, mg_error *err)
{
    size_t pos = i * MG_READ_CHUNK; /* < size: no wrap */
    size_t want = F->size - pos < MG_READ_CHUNK ? F->size - pos : MG_READ_CHUNK;
    uint8_t *slot = F->ring + (i % F->slots) * MG_READ_CHUNK;
    size_t got;
    mg_status st = read_fully(F->fd, slot, want, pos, &got, err);
    if (st != MG_OK)
        return st;
    if (got < want)
        return mg_fail(err, MG_E_INTEGRITY, "file became shorter while it was read");
    st = write_fully(F->memfd, slot, got, pos, err);
    if (st != MG_OK)
        return st;
    if (F->chunk_crc != NULL)
        F->chunk_crc[i] = (uint32_t)crc32_z(0L, slot, got);
    F->len[i % F->slots] = got;
    return MG_OK;
}

/* Claim the next chunk, fill it and mark it filled (or record the failure); called and
 * returns with the lock held. */
static void fill_next(fill_run *F)
{
    size_t i = F->claimed++;
    run_unlock(F);
    mg_error e;
    mg_error_clear(&e);
    mg_status st = fill_chunk(F, i, &e);
    run_lock(F);
    if (st != MG_OK && !F->failed) {
        F->fill_err = e;
        F->failed = true;
    } else if (st == MG_OK) {
        F->filled[i % F->slots] = true;
    }
    if (F->hasher_waits && (st != MG_OK || i == F->consumed))
        pthread_cond_signal(&F->filled_cond);
}

/* A chunk can be claimed: one is left, and its slot is free. */
static bool claimable(const fill_run *F)
{
    return F->claimed < F->chunks && F->claimed - F->consumed < F->slots;
}

static void *filler_main(void *arg)
{
    fill_run *F = arg;
    pthread_mutex_lock(&F->lock);
    while (!F->stop && !F->failed && F->claimed < F->chunks) {
        if (!claimable(F)) {
            /* The ring is full: sleep until half of it is free again. */
            F->filler_waits = true;
            while (!F->stop && !F->failed && F->claimed - F->consumed > F->slots / 2)
                pthread_cond_wait(&F->freed_cond, &F->lock);
            F->filler_waits = false;
            continue;
        }
        fill_next(F);
    }
    pthread_mutex_unlock(&F->lock);
    return NULL;
}

/* The calling thread's side: hash every chunk in order, filling chunks itself whenever the
 * next one is not ready. */
static mg_status hash_chunks(fill_run *F, mg_digest_ctx *ctx, _Atomic uint64_t *done,
                             mg_error *err)
{
    mg_status st = MG_OK;
    for (size_t i = 0; i < F->chunks && st == MG_OK; i++) {
        size_t k = i % F->slots;
        run_lock(F);
        while (!F->failed && !F->filled[k]) {
            if (claimable(F)) {
                fill_next(F);
                continue;
            }
            F->hasher_waits = true; /* only with a filler: it has chunk i in hand */
            pthread_cond_wait(&F->filled_cond, &F->lock);
            F->hasher_waits = false;
        }
        bool failed = F->failed;
        run_unlock(F);
        if (failed) {
            *err = F->fill_err;
            st = F->fill_err.status;
        }
        if (st != MG_OK)
            break;
        size_t n = F->len[k];
        st = mg_digest_update(ctx, F->ring + k * MG_READ_CHUNK, n, err);
        run_lock(F);
        F->filled[k] = false;
        F->consumed++;
        if (F->filler_waits && F->claimed - F->consumed <= F->slots / 2)
            pthread_cond_signal(&F->freed_cond);
        run_unlock(F);
        if (st == MG_OK && done != NULL)
            atomic_fetch_add_explicit(done, n, memory_order_relaxed);
    }
    if (st != MG_OK) { /* whoever failed: the filler stops (and wakes up to see it) */
        run_lock(F);
        F->stop = true;
        if (F->filler_waits)
            pthread_cond_signal(&F->freed_cond);
        run_unlock(F);
    }
    return st;
}

/* Chunk CRCs for a ZIP archive (its first chunk, filled, tells): room for them, and the
 * first one. */
static void crc_begin(fill_run *F)
{
    size_t bytes;
    if (F->size < MG_CRC_MIN_BYTES || F->len[0] < 4 || memcmp(F->ring, "PK\x03\x04", 4) != 0 ||
        __builtin_mul_overflow(F->chunks, sizeof *F->chunk_crc, &bytes))
        return;
    F->chunk_crc = malloc(bytes);
    if (F->chunk_crc != NULL)
        F->chunk_crc[0] = (uint32_t)crc32_z(0L, F->ring, F->len[0]);
}

/* The chunks' CRCs combined into the block CRCs of `out`. */
static void crc_blocks(const fill_run *F, mg_region *out)
{
    const size_t per_block = MG_REGION_CRC_BLOCK / MG_READ_CHUNK;
    if (F->chunks == 0)
        return;
    size_t count = (F->chunks - 1) / per_block + 1;
    uint32_t *crc = malloc(count * sizeof *crc); /* count < chunks: no wrap */
    if (crc == NULL)
        return;
    uLong whole = crc32_combine_gen((z_off_t)MG_READ_CHUNK);
    for (size_t b = 0; b < count; b++) {
        size_t first = b * per_block;
        uLong c = F->chunk_crc[first];
        for (size_t i = first + 1; i < first + per_block && i < F->chunks; i++) {
            size_t n = F->size - i * MG_READ_CHUNK;
            c = n >= MG_READ_CHUNK ? crc32_combine_op(c, F->chunk_crc[i], whole)
                                   : crc32_combine(c, F->chunk_crc[i], (z_off_t)n);
        }
        crc[b] = (uint32_t)c;
    }
    out->block_crc = crc;
    out->block_crc_count = count;
}

/* Fill the memfd and hash, with a filler thread when `pipelined` and one can be had. */
static mg_status fill_and_hash(fill_run *F, bool pipelined, mg_digest_ctx *ctx,
                               _Atomic uint64_t *done, mg_error *err)
{
    F->slots = pipelined ? MG_RING_SLOTS : 1;
    F->ring = malloc(F->slots * MG_READ_CHUNK);
    if (F->ring == NULL && pipelined) {
        F->slots = 1;
        F->ring = malloc(MG_READ_CHUNK);
    }
    if (F->ring == NULL)
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    /* The first chunk before anything else: it says whether to take CRCs. */
    mg_status st = fill_chunk(F, 0, err);
    if (st != MG_OK)
        return st;
    F->claimed = 1;
    F->filled[0] = true;
    crc_begin(F);
    pthread_t filler;
    memset(&filler, 0, sizeof filler);
    if (F->slots > 1) {
        pthread_mutex_init(&F->lock, NULL);
        pthread_cond_init(&F->filled_cond, NULL);
        pthread_cond_init(&F->freed_cond, NULL);
        F->threaded = true; /* before the filler looks */
        if (pthread_create(&filler, NULL, filler_main, F) != 0) {
            F->threaded = false;
            pthread_mutex_destroy(&F->lock);
            pthread_cond_destroy(&F->filled_cond);
            pthread_cond_destroy(&F->freed_cond);
        }
    }
    st = hash_chunks(F, ctx, done, err);
    if (F->threaded) {
        pthread_join(filler, NULL);
        pthread_mutex_destroy(&F->lock);
        pthread_cond_destroy(&F->filled_cond);
        pthread_cond_destroy(&F->freed_cond);
        F->threaded = false;
    }
    return st;
}

/*
 * The memfd path: the file is read into the memfd while it is hashed (fill_and_hash), then
 * the memfd is sealed and mapped read-only. Returns MG_E_IO with `*no_memfd` set when there
 * is no memfd, so that the caller falls back to private memory.
 */
static mg_status read_into_memfd(int fd, size_t size, mg_digest_ctx *ctx, unsigned flags,
                                 mg_region *out, _Atomic uint64_t *done, bool *no_memfd,
                                 mg_error *err)
{
    *no_memfd = false;
    /* Writes into a memfd count against the file-size limit (RLIMIT_FSIZE, `ulimit -f`): a
     * file larger than that limit goes to private memory instead, never fails for it. */
    struct rlimit fsz;
    if (getrlimit(RLIMIT_FSIZE, &fsz) == 0 && fsz.rlim_cur != RLIM_INFINITY &&
        (uint64_t)fsz.rlim_cur < (uint64_t)size) {
        *no_memfd = true;
        return MG_E_IO;
    }
    int mfd = memfd_create("modelgate-verified", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (mfd < 0) {
        *no_memfd = true;
        return MG_E_IO;
    }
    fill_run F;
    memset(&F, 0, sizeof F);
    F.fd = fd;
    F.memfd = mfd;
    F.size = size;
    F.chunks = (size - 1) / MG_READ_CHUNK + 1; /* size > 0 */
    bool pipelined = (flags & MG_REGION_PREFAULT) && size >= MG_PIPE_MIN_BYTES;
    mg_status st = fill_and_hash(&F, pipelined, ctx, done, err);
    free(F.ring);
    if (st == MG_OK && F.chunk_crc != NULL)
        crc_blocks(&F, out);
    free(F.chunk_crc);
    if (st == MG_OK) {
        out->len = size;
        out->has_memfd = true;
        out->memfd = mfd;
        long page = sysconf(_SC_PAGESIZE);
        size_t ps = page > 0 ? (size_t)page : 4096;
        out->map_len = (size + ps - 1) & ~(ps - 1); /* size <= 1 TiB: no wrap */
        return seal_memfd(out, (flags & MG_REGION_KEEP_FD) != 0, err);
    }
    close(mfd);
    return st;
}

mg_status mg_region_read_hashed_ex(int fd, uint64_t expected_size, mg_digest_alg alg,
                                   unsigned flags, mg_region *out,
                                   uint8_t digest[MG_DIGEST_MAX], _Atomic uint64_t *done,
                                   mg_error *err)
{
    prefault pf = {0};
    memset(out, 0, sizeof *out);
    uint64_t size;
    mg_status cs = mg_region_file_size(fd, expected_size, &size, err);
    if (cs != MG_OK)
        return cs;

    mg_digest_ctx *ctx;
    mg_status st_ = mg_digest_new(alg, &ctx, err);
    if (st_ != MG_OK)
        return st_;
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    if (size > 0) {
        bool no_memfd;
        st_ = read_into_memfd(fd, (size_t)size, ctx, flags, out, done, &no_memfd, err);
        if (!no_memfd) {
            if (st_ != MG_OK)
                goto fail;
            goto tail;
        }
    }
    st_ = mg_region_alloc(out, (size_t)size, err);
    if (st_ != MG_OK)
        goto fail;
    if (flags & MG_REGION_PREFAULT)
        prefault_start(&pf, out);

    size_t pos = 0;
    while (pos < out->len) {
        size_t want = out->len - pos < MG_READ_CHUNK ? out->len - pos : MG_READ_CHUNK;
        size_t got;
        st_ = read_fully(fd, out->data + pos, want, pos, &got, err);
        if (st_ != MG_OK)
            goto fail;
        if (got < want) {
            st_ = mg_fail(err, MG_E_INTEGRITY, "file became shorter while it was read");
            goto fail;
        }
        st_ = mg_digest_update(ctx, out->data + pos, got, err);
        if (st_ != MG_OK)
            goto fail;
        pos += got;
        if (done != NULL)
            atomic_fetch_add_explicit(done, got, memory_order_relaxed);
    }
tail:;
    /* A file that grew while it was read is not the file whose size was checked. */
    uint8_t extra;
    size_t got;
    st_ = read_fully(fd, &extra, 1, size, &got, err);
    if (st_ != MG_OK)
        goto fail;
    if (got != 0) {
        st_ = mg_fail(err, MG_E_INTEGRITY, "file became longer while it was read");
        goto fail;
    }
    prefault_stop(&pf);
    st_ = mg_digest_final(ctx, digest, err);
    if (st_ != MG_OK)
        goto fail;
    mg_digest_free(ctx);
    return MG_OK;
fail:
    prefault_stop(&pf);
    mg_digest_free(ctx);
    mg_region_free(out);
    return st_;
}
