#define _GNU_SOURCE
#include "spill.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/checked.h"
#include "util/fsutil.h"

/* Copy in chunks that stay in cache between the read, the hash and the write. */
#define SPILL_CHUNK (1u << 20)
/* Start writing back every this many bytes, so that the dirty pages of a copy stay bounded
 * (the point of a spill file is that memory is short; clean pages can be dropped). */
#define SPILL_WRITEBACK_STEP (UINT64_C(64) << 20)

#ifndef FICLONE
#define FICLONE _IOW(0x94, 9, int)
#endif

/* ---- the folder ---------------------------------------------------------------------- */

mg_status mg_spill_open_dir(const char *path, const char *what, int *dirfd, mg_error *err)
{
    *dirfd = -1;
    if (path == NULL || path[0] != '/')
        return mg_fail(err, MG_E_POLICY, "%s must be an absolute path", what);
    int fd = mg_open_nofollow(path, O_RDONLY | O_DIRECTORY | O_NONBLOCK, NULL);
    if (fd < 0) {
        int e = errno;
        if (e == ELOOP || e == ENOTDIR)
            return mg_fail(err, MG_E_POLICY, "%s %.300s: a symlink or a non-folder is on its "
                           "path (refused)", what, path);
        if (e == ENOENT)
            return mg_fail(err, MG_E_POLICY, "%s %.300s does not exist", what, path);
        return mg_fail(err, MG_E_POLICY, "cannot open %s %.300s: %s", what, path, strerror(e));
    }
    struct stat st;
    mg_status s = MG_OK;
    if (fstat(fd, &st) != 0)
        s = mg_fail(err, MG_E_POLICY, "cannot stat %s %.300s: %s", what, path, strerror(errno));
    else if (st.st_uid != 0 && st.st_uid != geteuid())
        s = mg_fail(err, MG_E_POLICY, "%s %.300s is owned by uid %u, not root or the running "
                    "user", what, path, (unsigned)st.st_uid);
    else if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
        s = mg_fail(err, MG_E_POLICY, "%s %.300s is writable by group or others (mode %03o)",
                    what, path, (unsigned)(st.st_mode & 0777));
    if (s != MG_OK) {
        close(fd);
        return s;
    }
    *dirfd = fd;
    return MG_OK;
}

/* ---- one file ------------------------------------------------------------------------ */

static mg_status read_some(int fd, uint8_t *dst, size_t want, size_t *got, mg_error *err)
{
    *got = 0;
    while (*got < want) {
        ssize_t n = read(fd, dst + *got, want - *got);
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

static mg_status write_at(int fd, const uint8_t *src, size_t n, uint64_t off, mg_error *err)
{
    if (!mg_pwrite_all(fd, src, n, off))
        return mg_fail(err, MG_E_IO, "cannot write the spill file: %s",
                       errno != 0 ? strerror(errno) : "short write");
    return MG_OK;
}

/* Copy [off, off + n) of `fd` (read at its current offset) into `tfd` at the same offset: in
 * the kernel (copy_file_range, no pass through this process) until the kernel says it cannot
 * between these two files, then through a buffer. */
static mg_status copy_range(int fd, int tfd, uint64_t off, uint64_t n, bool *in_kernel,
                            uint8_t **buf, mg_error *err)
{
    while (n > 0 && *in_kernel) {
        loff_t to = (loff_t)off;
        ssize_t c = copy_file_range(fd, NULL, tfd, &to, (size_t)n, 0);
        if (c < 0 && errno == EINTR)
            continue;
        if (c < 0 && (errno == EXDEV || errno == EINVAL || errno == EOPNOTSUPP ||
                      errno == ENOSYS || errno == EBADF)) {
            *in_kernel = false;
            break;
        }
        if (c < 0)
            return mg_fail(err, MG_E_IO, "cannot copy into the spill file: %s", strerror(errno));
        if (c == 0)
            return mg_fail(err, MG_E_INTEGRITY, "file became shorter while it was read");
        off += (uint64_t)c;
        n -= (uint64_t)c;
    }
    if (n > 0 && *buf == NULL && (*buf = malloc(SPILL_CHUNK)) == NULL)
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    while (n > 0) {
        size_t want = n < SPILL_CHUNK ? (size_t)n : SPILL_CHUNK;
        size_t got;
        mg_status s = read_some(fd, *buf, want, &got, err);
        if (s == MG_OK && got < want)
            s = mg_fail(err, MG_E_INTEGRITY, "file became shorter while it was read");
        if (s == MG_OK)
            s = write_at(tfd, *buf, got, off, err);
        if (s != MG_OK)
            return s;
        off += got;
        n -= got;
    }
    return MG_OK;
}

/*
 * Fill the spill file (unless it is a clone, already full) step by step and hash each step
 * from the read-only mapping while its pages are still in cache: what is hashed is the very
 * copy the parsers and tensors will read. Each step is then handed to writeback, so that
 * the dirty pages of a copy stay bounded (the point of a spill file is that memory is short;
 * clean pages can be dropped and read again). Measured on ext4 (README): copy_file_range
 * plus hashing the mapping costs about a quarter of the system time of read + hash + write.
 */
static mg_status fill_and_hash(int fd, int tfd, bool cloned, const uint8_t *map, uint64_t size,
                               mg_digest_ctx *ctx, _Atomic uint64_t *done, mg_error *err)
{
    bool in_kernel = true;
    uint8_t *buf = NULL;
    mg_status s = MG_OK;
    for (uint64_t pos = 0; s == MG_OK && pos < size;) {
        uint64_t n = size - pos < SPILL_WRITEBACK_STEP ? size - pos : SPILL_WRITEBACK_STEP;
        if (!cloned)
            s = copy_range(fd, tfd, pos, n, &in_kernel, &buf, err);
        for (uint64_t h = 0; s == MG_OK && ctx != NULL && h < n; h += SPILL_CHUNK)
            s = mg_digest_update(ctx, map + pos + h, n - h < SPILL_CHUNK ? (size_t)(n - h)
                                                                         : SPILL_CHUNK, err);
        if (s == MG_OK && !cloned)
            (void)sync_file_range(tfd, (off_t)pos, (off_t)n, SYNC_FILE_RANGE_WRITE);
        pos += n;
        if (s == MG_OK && done != NULL)
            atomic_fetch_add_explicit(done, n, memory_order_relaxed);
    }
    free(buf);
    if (s == MG_OK && !cloned) {
        /* A file that grew while it was read is not the file whose size was checked. */
        uint8_t extra;
        size_t got;
        s = read_some(fd, &extra, 1, &got, err);
        if (s == MG_OK && got != 0)
            s = mg_fail(err, MG_E_INTEGRITY, "file became longer while it was read");
    }
    return s;
}

static mg_status map_read_only(int tfd, uint64_t size, mg_region *out, mg_error *err)
{
    long page = sysconf(_SC_PAGESIZE);
    uint64_t ps = page > 0 ? (uint64_t)page : 4096;
    uint64_t map_len = (size + ps - 1) & ~(ps - 1); /* size <= 1 TiB: no wrap */
    void *p = mmap(NULL, (size_t)map_len, PROT_READ, MAP_SHARED, tfd, 0);
    if (p == MAP_FAILED)
        return mg_fail(err, MG_E_LIMIT, "cannot map the spill file of %llu bytes: %s",
                       (unsigned long long)size, strerror(errno));
    (void)madvise(p, (size_t)map_len, MADV_SEQUENTIAL);
    out->data = p;
    out->len = (size_t)size;
    out->map_len = (size_t)map_len;
    out->has_memfd = false;
    out->memfd = -1;
    out->memfd_sealed = true; /* read-only for good: mg_region_seal has nothing to do */
    return MG_OK;
}

mg_status mg_spill_read_hashed(int dirfd, int fd, uint64_t expected_size, bool hash,
                               mg_digest_alg alg, mg_region *out,
                               uint8_t digest[MG_DIGEST_MAX], _Atomic uint64_t *done,
                               mg_error *err)
{
    memset(out, 0, sizeof *out);
    uint64_t size;
    mg_status cs = mg_region_file_size(fd, expected_size, &size, err);
    if (cs != MG_OK)
        return cs;
    mg_digest_ctx *ctx = NULL;
    mg_status s = hash ? mg_digest_new(alg, &ctx, err) : MG_OK;
    if (s != MG_OK)
        return s;
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);

    int tfd = -1;
    /* Writing past the file-size limit (ulimit -f) would end the process (SIGXFSZ). */
    struct rlimit fsz;
    if (size > 0 && getrlimit(RLIMIT_FSIZE, &fsz) == 0 && fsz.rlim_cur != RLIM_INFINITY &&
        (uint64_t)fsz.rlim_cur < size) {
        s = mg_fail(err, MG_E_LIMIT, "the file of %llu bytes exceeds this process's file-size "
                    "limit (RLIMIT_FSIZE), which spill files count against",
                    (unsigned long long)size);
        goto fail;
    }
    if (size > 0) {
        /* 0400: the mode only binds later opens, so the writer's descriptor is the only
         * writable one there will ever be (not even through /proc/PID/fd, for anyone but
         * root); O_EXCL: the file can never be linked into the folder. */
        tfd = openat(dirfd, ".", O_TMPFILE | O_RDWR | O_EXCL | O_CLOEXEC, 0400);
        if (tfd < 0) {
            int e = errno;
            s = e == EISDIR || e == EOPNOTSUPP
                    ? mg_fail(err, MG_E_IO, "the file system of the spill folder has no unnamed "
                              "files (O_TMPFILE)")
                    : mg_fail(err, MG_E_IO, "cannot make a spill file: %s", strerror(e));
            goto fail;
        }
        /* Where the file system shares blocks, a clone replaces the copy; it is a snapshot of
         * the file as it is now, so its own size is the one checked. */
        bool cloned = ioctl(tfd, FICLONE, fd) == 0;
        struct stat cst;
        if (cloned && fstat(tfd, &cst) != 0)
            s = mg_fail(err, MG_E_IO, "cannot stat the spill file: %s", strerror(errno));
        else if (cloned && (uint64_t)cst.st_size != size)
            s = mg_fail(err, MG_E_INTEGRITY, "file changed size while it was read");
        else if (!cloned && ftruncate(tfd, (off_t)size) != 0)
            s = mg_fail(err, MG_E_IO, "cannot size the spill file: %s", strerror(errno));
        if (s == MG_OK)
            s = map_read_only(tfd, size, out, err);
        if (s == MG_OK)
            s = fill_and_hash(fd, tfd, cloned, out->data, size, ctx, done, err);
    }
    if (s != MG_OK)
        goto fail;
    if (tfd >= 0)
        close(tfd); /* the only descriptor: from now on only the read-only mapping remains */
    if (ctx != NULL) {
        s = mg_digest_final(ctx, digest, err);
        mg_digest_free(ctx);
        if (s != MG_OK)
            mg_region_free(out);
    }
    return s;
fail:
    if (tfd >= 0)
        close(tfd);
    mg_digest_free(ctx);
    mg_region_free(out);
    return s;
}

/* ---- how much memory is left --------------------------------------------------------- */

/* The text of a small file (pseudo files under /proc and /sys), or false. */
static bool read_text(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return false;
    size_t n = 0;
    while (n + 1 < cap) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    return n > 0;
}

/* A decimal number at *p (leading blanks skipped); false when there is none or it wraps. */
static bool parse_u64(const char **p, uint64_t *out)
{
    const char *s = *p;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s < '0' || *s > '9')
        return false;
    uint64_t v = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (!mg_mul_u64(v, 10, &v) || !mg_add_u64(v, (uint64_t)(*s - '0'), &v))
            return false;
    }
    *out = v;
    *p = s;
    return true;
}

/* The number after "key" at the start of a line of `text` (e.g. "MemAvailable:"). */
static bool field_u64(const char *text, const char *key, uint64_t *out)
{
    size_t kl = strlen(key);
    for (const char *line = text; line != NULL && *line != '\0';) {
        if (strncmp(line, key, kl) == 0) {
            const char *p = line + kl;
            return parse_u64(&p, out);
        }
        line = strchr(line, '\n');
        if (line != NULL)
            line++;
    }
    return false;
}

static bool file_u64(const char *path, uint64_t *out)
{
    char buf[64];
    const char *p = buf;
    return read_text(path, buf, sizeof buf) && parse_u64(&p, out);
}

/* `dir`/`name` into `out`; false when it does not fit. */
static bool join(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    return n >= 0 && (size_t)n < cap;
}

/* Room under one cgroup level `dir` ("max"/absent/huge limit: UINT64_MAX). */
static uint64_t level_room(const char *dir, bool v1)
{
    char path[4200], stat[16384];
    uint64_t limit, usage, inactive = 0;
    if (!join(path, sizeof path, dir, v1 ? "memory.limit_in_bytes" : "memory.max") ||
        !file_u64(path, &limit) || limit >= (UINT64_C(1) << 62))
        return UINT64_MAX; /* "max", unreadable, or v1's "no limit" (PAGE_COUNTER_MAX) */
    if (!join(path, sizeof path, dir, v1 ? "memory.usage_in_bytes" : "memory.current") ||
        !file_u64(path, &usage))
        return UINT64_MAX;
    if (join(path, sizeof path, dir, "memory.stat") && read_text(path, stat, sizeof stat))
        (void)field_u64(stat, v1 ? "total_inactive_file " : "inactive_file ", &inactive);
    uint64_t used = usage > inactive ? usage - inactive : 0;
    return limit > used ? limit - used : 0;
}

/* The tightest room from the cgroup `cg` (a path below `base`) up to `base`. */
static uint64_t tree_room(const char *base, const char *cg, bool v1)
{
    uint64_t room = UINT64_MAX;
    char dir[4200];
    int n = snprintf(dir, sizeof dir, "%s%s", base, cg);
    if (n < 0 || (size_t)n >= sizeof dir)
        return room;
    size_t base_len = strlen(base);
    for (;;) {
        uint64_t r = level_room(dir, v1);
        if (r < room)
            room = r;
        char *slash = strrchr(dir + base_len, '/');
        if (slash == NULL || slash == dir + base_len)
            break;
        *slash = '\0';
    }
    return room;
}

static uint64_t cgroup_room(const char *proc, const char *root)
{
    char path[4200], text[8192];
    if (!join(path, sizeof path, proc, "self/cgroup") || !read_text(path, text, sizeof text))
        return UINT64_MAX;
    uint64_t room = UINT64_MAX;
    for (char *line = text; line != NULL && *line != '\0';) {
        char *next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        /* "ID:CONTROLLERS:PATH": v2 is "0::PATH"; v1's memory line lists "memory". */
        char *c1 = strchr(line, ':');
        char *c2 = c1 != NULL ? strchr(c1 + 1, ':') : NULL;
        if (c2 != NULL && c2[1] == '/') {
            *c2 = '\0';
            const char *ctrls = c1 + 1, *cg = c2 + 1;
            bool v1 = false, v2 = ctrls[0] == '\0';
            for (const char *t = ctrls; !v2 && t != NULL && *t != '\0';) {
                const char *comma = strchr(t, ',');
                size_t len = comma != NULL ? (size_t)(comma - t) : strlen(t);
                if (len == 6 && memcmp(t, "memory", 6) == 0)
                    v1 = true;
                t = comma != NULL ? comma + 1 : NULL;
            }
            char base[4300];
            uint64_t r = UINT64_MAX;
            if (v2) {
                r = tree_room(root, cg, false);
                uint64_t h = join(base, sizeof base, root, "unified")
                                 ? tree_room(base, cg, false) : UINT64_MAX;
                r = h < r ? h : r;
            } else if (v1) {
                if (join(base, sizeof base, root, "memory"))
                    r = tree_room(base, cg, true);
            }
            if (r < room)
                room = r;
        }
        line = next;
    }
    return room;
}

static uint64_t address_space_room(const char *proc)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return UINT64_MAX;
    char path[4200];
    uint64_t pages = 0, vm = 0;
    long ps = sysconf(_SC_PAGESIZE);
    if (!join(path, sizeof path, proc, "self/statm") || !file_u64(path, &pages) || !mg_mul_u64(pages, ps > 0 ? (uint64_t)ps : 4096, &vm))
        vm = 0;
    return (uint64_t)rl.rlim_cur > vm ? (uint64_t)rl.rlim_cur - vm : 0;
}

void mg_memory_room_read(const char *proc, const char *cgroup_root, mg_memory_room *out)
{
    out->address_space = address_space_room(proc);
    out->cgroup = cgroup_room(proc, cgroup_root);
    char path[4200], text[16384];
    uint64_t kib;
    if (join(path, sizeof path, proc, "meminfo") && read_text(path, text, sizeof text) && field_u64(text, "MemAvailable:", &kib) &&
        mg_mul_u64(kib, 1024, &out->available))
        return;
    out->available = UINT64_MAX;
}

bool mg_spill_wanted(uint64_t model_bytes, uint64_t parser_memory, const mg_memory_room *room)
{
    uint64_t need;
    if (!mg_add_u64(model_bytes, parser_memory, &need) ||
        !mg_add_u64(need, MG_SPILL_MARGIN, &need))
        return true;
    uint64_t have = room->cgroup < room->available ? room->cgroup : room->available;
    return need > have;
}
