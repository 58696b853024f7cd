#define _GNU_SOURCE
#include "region.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Read and hash in chunks small enough to stay in cache between the copy and the hash. */
#define MG_READ_CHUNK (1u << 20)

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

mg_status mg_region_seal(mg_region *r, mg_error *err)
{
    if (r->data != NULL && mprotect(r->data, r->map_len, PROT_READ) != 0)
        return mg_fail(err, MG_E_LIMIT, "cannot make verified memory read-only: %s",
                       strerror(errno));
    return MG_OK;
}

void mg_region_free(mg_region *r)
{
    if (r->data != NULL)
        munmap(r->data, r->map_len);
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

mg_status mg_region_read_hashed(int fd, uint64_t expected_size, mg_digest_alg alg,
                                mg_region *out, uint8_t digest[MG_DIGEST_MAX],
                                _Atomic uint64_t *done, mg_error *err)
{
    memset(out, 0, sizeof *out);
    struct stat st;
    if (fstat(fd, &st) != 0)
        return mg_fail(err, MG_E_IO, "cannot stat: %s", strerror(errno));
    if (!S_ISREG(st.st_mode))
        return mg_fail(err, MG_E_IO, "not a regular file");
    uint64_t size = (uint64_t)st.st_size;
    if (expected_size != UINT64_MAX && size != expected_size)
        return mg_fail(err, MG_E_INTEGRITY, "size is %llu bytes, expected %llu",
                       (unsigned long long)size, (unsigned long long)expected_size);
    if (size > MG_MAX_MODEL_FILE_BYTES || size > SIZE_MAX)
        return mg_fail(err, MG_E_LIMIT, "file of %llu bytes exceeds the cap",
                       (unsigned long long)size);

    mg_digest_ctx *ctx;
    mg_status st_ = mg_digest_new(alg, &ctx, err);
    if (st_ != MG_OK)
        return st_;
    st_ = mg_region_alloc(out, (size_t)size, err);
    if (st_ != MG_OK)
        goto fail;
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);

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
    st_ = mg_digest_final(ctx, digest, err);
    if (st_ != MG_OK)
        goto fail;
    mg_digest_free(ctx);
    return MG_OK;
fail:
    mg_digest_free(ctx);
    mg_region_free(out);
    return st_;
}
