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
 * Backing fresh memory with pages (the kernel zeroes each one on first touch, and a virtual
 * machine may add its own cost) can take as long as hashing it. When a core is spare, a
 * helper thread populates the region ahead of the reader with MADV_POPULATE_WRITE, which
 * never changes the content, so the reader finds its pages ready. Without kernel support the
 * helper simply stops.
 */
typedef struct prefault {
    pthread_t thread;
    uint8_t *base;
    int memfd; /* >= 0: allocate the memfd's pages (fallocate) instead of a mapping's */
    size_t len;
    atomic_bool stop;
    bool started;
} prefault;

static void *prefault_main(void *arg)
{
    prefault *pf = arg;
    for (size_t off = 0; off < pf->len && !atomic_load(&pf->stop); off += MG_PREFAULT_STEP) {
        size_t n = pf->len - off < MG_PREFAULT_STEP ? pf->len - off : MG_PREFAULT_STEP;
        if (pf->memfd >= 0 ? fallocate(pf->memfd, FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)n) != 0
                           : madvise(pf->base + off, n, MADV_POPULATE_WRITE) != 0)
            break;
    }
    return NULL;
}

static void prefault_start(prefault *pf, mg_region *r)
{
    pf->base = r->data;
    pf->memfd = -1;
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

static mg_status read_fully(int fd, uint8_t *dst, size_t want, size_t *got, mg_error *err)
{
    *got = 0;
    while (*got < want) {
        ssize_t n = read(fd, dst + *got, want - *got);
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
 * Block CRCs of a ZIP file (npz), on another core: a stored npz member is used in place, and
 * its CRC-32 must be checked, which is one more pass over the whole file (zlib's crc32 runs
 * at about 2 GB/s here). Instead the reader reads each chunk into one slot of a small ring,
 * hashes it and writes it into the memfd as before, and hands the slot to a helper thread,
 * which computes the CRC-32 of every MG_REGION_CRC_BLOCK bytes from the same verified bytes
 * while they are still in cache; the parser combines them (crc32_combine) into each member's
 * CRC. With a spare core the pass is hidden; without one it is still cheaper than the
 * parser's pass through the mapping, which must first map every page of the file. Any
 * trouble leaves the table out, and the parser computes the CRC itself as before.
 */
#define MG_CRC_MIN_BYTES ((size_t)4 << 20)
#define MG_CRC_RING 8u
_Static_assert(MG_REGION_CRC_BLOCK % MG_READ_CHUNK == 0, "a chunk never spans two blocks");

typedef struct crc_helper {
    pthread_t thread;
    size_t size;
    uint32_t *crc;
    size_t count;
    uint8_t *ring; /* MG_CRC_RING slots of MG_READ_CHUNK bytes */
    size_t len[MG_CRC_RING];
    pthread_mutex_t lock;
    pthread_cond_t cond;
    size_t produced, consumed; /* chunks handed over and done (under lock) */
    bool finished;             /* the reader hands over no more (under lock) */
    bool ok;                   /* every block done (the helper's own until joined) */
    bool started;
} crc_helper;

static void *crc_main(void *arg)
{
    crc_helper *h = arg;
    const uLong zero = crc32_z(0L, Z_NULL, 0);
    uLong c = zero;
    size_t pos = 0, block = 0;
    for (;;) {
        pthread_mutex_lock(&h->lock);
        while (h->consumed == h->produced && !h->finished)
            pthread_cond_wait(&h->cond, &h->lock);
        if (h->consumed == h->produced) { /* finished, and nothing left */
            pthread_mutex_unlock(&h->lock);
            break;
        }
        size_t k = h->consumed % MG_CRC_RING;
        pthread_mutex_unlock(&h->lock);
        size_t n = h->len[k];
        c = crc32_z(c, h->ring + k * MG_READ_CHUNK, n);
        pos += n;
        if ((pos % MG_REGION_CRC_BLOCK == 0 || pos == h->size) && block < h->count) {
            h->crc[block++] = (uint32_t)c;
            c = zero;
        }
        pthread_mutex_lock(&h->lock);
        h->consumed++;
        pthread_cond_broadcast(&h->cond);
        pthread_mutex_unlock(&h->lock);
    }
    h->ok = pos == h->size && block == h->count;
    return NULL;
}

/* Start the helper when `first` (the file's first chunk) opens a ZIP archive, and hand it
 * that chunk. */
static void crc_start(crc_helper *h, size_t size, const uint8_t *first, size_t n)
{
    h->started = false;
    if (size < MG_CRC_MIN_BYTES || n < 4 || memcmp(first, "PK\x03\x04", 4) != 0)
        return;
    h->size = size;
    h->count = (size + MG_REGION_CRC_BLOCK - 1) / MG_REGION_CRC_BLOCK;
    h->crc = malloc(h->count * sizeof *h->crc);
    h->ring = malloc((size_t)MG_CRC_RING * MG_READ_CHUNK);
    h->produced = 1;
    h->consumed = 0;
    h->finished = false;
    h->ok = false;
    if (h->crc != NULL && h->ring != NULL) {
        memcpy(h->ring, first, n);
        h->len[0] = n;
        pthread_mutex_init(&h->lock, NULL);
        pthread_cond_init(&h->cond, NULL);
        h->started = pthread_create(&h->thread, NULL, crc_main, h) == 0;
        if (!h->started) {
            pthread_mutex_destroy(&h->lock);
            pthread_cond_destroy(&h->cond);
        }
    }
    if (!h->started) {
        free(h->crc);
        free(h->ring);
        h->crc = NULL;
        h->ring = NULL;
    }
}

/* Where the reader puts its next chunk: a free slot of the ring (waiting for the helper if
 * all are taken), or `buf` when there is no helper. */
static uint8_t *crc_slot(crc_helper *h, uint8_t *buf)
{
    if (!h->started)
        return buf;
    pthread_mutex_lock(&h->lock);
    while (h->produced - h->consumed == MG_CRC_RING)
        pthread_cond_wait(&h->cond, &h->lock);
    uint8_t *p = h->ring + (h->produced % MG_CRC_RING) * MG_READ_CHUNK;
    pthread_mutex_unlock(&h->lock);
    return p;
}

/* The chunk in the slot crc_slot gave is verified bytes: hand it over. */
static void crc_hand_over(crc_helper *h, size_t n)
{
    if (!h->started)
        return;
    pthread_mutex_lock(&h->lock);
    h->len[h->produced % MG_CRC_RING] = n;
    h->produced++;
    pthread_cond_broadcast(&h->cond);
    pthread_mutex_unlock(&h->lock);
}

/* Wait for the helper; on success (`keep`) the table goes to `out`. */
static void crc_finish(crc_helper *h, bool keep, mg_region *out)
{
    if (!h->started)
        return;
    pthread_mutex_lock(&h->lock);
    h->finished = true;
    pthread_cond_broadcast(&h->cond);
    pthread_mutex_unlock(&h->lock);
    pthread_join(h->thread, NULL);
    pthread_mutex_destroy(&h->lock);
    pthread_cond_destroy(&h->cond);
    h->started = false;
    free(h->ring);
    h->ring = NULL;
    if (keep && h->ok) {
        out->block_crc = h->crc;
        out->block_crc_count = h->count;
    } else {
        free(h->crc);
    }
    h->crc = NULL;
}

/*
 * The memfd path: each chunk is read into a small buffer that stays in cache, hashed there,
 * and written into the memfd (the kernel allocates its pages without a page fault per page,
 * which is what makes faulting a fresh shared mapping several times slower). The memfd is
 * then sealed and mapped read-only. Returns MG_E_IO with `*no_memfd` set when there is no
 * memfd, so that the caller falls back to private memory.
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
    /* With a spare core, a helper allocates the memfd's pages ahead of the writes. */
    prefault pf = {0};
    if ((flags & MG_REGION_PREFAULT) && size >= MG_PREFAULT_MIN) {
        pf.memfd = mfd;
        pf.len = size;
        atomic_init(&pf.stop, false);
        pf.started = pthread_create(&pf.thread, NULL, prefault_main, &pf) == 0;
    }
    uint8_t *buf = malloc(MG_READ_CHUNK);
    mg_status st = buf != NULL ? MG_OK : mg_fail(err, MG_E_LIMIT, "out of memory");
    crc_helper crc = {.started = false};
    size_t pos = 0;
    while (st == MG_OK && pos < size) {
        size_t want = size - pos < MG_READ_CHUNK ? size - pos : MG_READ_CHUNK;
        size_t got;
        uint8_t *chunk = crc_slot(&crc, buf);
        st = read_fully(fd, chunk, want, &got, err);
        if (st == MG_OK && got < want)
            st = mg_fail(err, MG_E_INTEGRITY, "file became shorter while it was read");
        if (st == MG_OK)
            st = mg_digest_update(ctx, chunk, got, err);
        if (st == MG_OK)
            st = write_fully(mfd, chunk, got, pos, err);
        if (st == MG_OK && pos == 0)
            crc_start(&crc, size, chunk, got);
        else if (st == MG_OK)
            crc_hand_over(&crc, got);
        pos += got;
        if (st == MG_OK && done != NULL)
            atomic_fetch_add_explicit(done, got, memory_order_relaxed);
    }
    free(buf);
    prefault_stop(&pf);
    crc_finish(&crc, st == MG_OK, out);
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
        st_ = read_fully(fd, out->data + pos, want, &got, err);
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
    st_ = read_fully(fd, &extra, 1, &got, err);
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
