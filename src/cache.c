/* The download cache: publish verified bytes under their SHA-256, atomically (cache.h). */
#define _GNU_SOURCE
#include "cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/file.h>
#include <unistd.h>

#include "digest.h"
#include "util/hex.h"

#define MG_CACHE_SUBDIR "sha256"
#define MG_CACHE_COMPARE_CHUNK (1u << 20)
#define MG_CACHE_TEMP_TRIES 16

/* Folders this call created, removed again if the publication fails (when still empty). */
typedef struct created_dirs {
    int parent_fd;  /* parent of cache_dir, when cache_dir was created; else -1 */
    char *base;     /* cache_dir's last component, when created */
    bool sub;       /* cache_dir/sha256 was created */
} created_dirs;

static bool is_dot_dot(const char *c, size_t n)
{
    return n == 2 && c[0] == '.' && c[1] == '.';
}

/*
 * Open the directory `path` (absolute) one component at a time with O_NOFOLLOW, so no symlink
 * is followed anywhere on the way. With `create`, a missing last component is made (0750)
 * and reported in `made`. Returns the fd, or -1 with errno set (ENOENT when absent).
 */
static int open_dir_nofollow(const char *path, bool create, created_dirs *made)
{
    if (path[0] != '/') {
        errno = EINVAL;
        return -1;
    }
    int fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    const char *p = path;
    while (*p != '\0') {
        while (*p == '/')
            p++;
        if (*p == '\0')
            break;
        size_t n = strcspn(p, "/");
        if (is_dot_dot(p, n)) {
            close(fd);
            errno = EINVAL;
            return -1;
        }
        if (n == 1 && p[0] == '.') {
            p += n;
            continue;
        }
        char *comp = mg_strndup(p, n);
        if (comp == NULL) {
            close(fd);
            errno = ENOMEM;
            return -1;
        }
        const char *rest = p + n;
        while (*rest == '/')
            rest++;
        bool last = *rest == '\0';
        bool created = false;
        int next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0 && errno == ENOENT && create && last) {
            if (mkdirat(fd, comp, MG_CACHE_DIR_MODE) == 0) {
                created = true;
                if (made != NULL && made->parent_fd < 0) {
                    made->parent_fd = dup(fd);
                    made->base = made->parent_fd >= 0 ? mg_strdup(comp) : NULL;
                }
            } else if (errno != EEXIST) {
                int e = errno;
                free(comp);
                close(fd);
                errno = e;
                return -1;
            }
            next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        /* 0750 whatever the umask; on the opened fd, so nothing is followed */
        if (next >= 0 && created)
            (void)fchmod(next, MG_CACHE_DIR_MODE);
        int e = errno;
        free(comp);
        close(fd);
        if (next < 0) {
            errno = e;
            return -1;
        }
        fd = next;
        p += n;
    }
    return fd;
}

static mg_status write_all(int fd, const uint8_t *data, size_t len, mg_error *err)
{
    size_t pos = 0;
    while (pos < len) {
        ssize_t n = write(fd, data + pos, len - pos);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return mg_fail(err, MG_E_IO, "cannot write the cache file: %s", strerror(errno));
        }
        pos += (size_t)n;
    }
    return MG_OK;
}

static bool same_content_fd(int dir_fd, const char *name, int src_fd, uint64_t len);

/* Does the file `name` in `dir_fd` hold exactly these bytes (a regular file, no symlink)?
 * With `data` NULL the bytes are those of the file `src_fd` instead. */
static bool same_content(int dir_fd, const char *name, const uint8_t *data, size_t len)
{
    int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct stat st;
    bool same = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == len;
    uint8_t *buf = same ? malloc(MG_CACHE_COMPARE_CHUNK) : NULL;
    if (buf == NULL)
        same = false;
    size_t pos = 0;
    while (same && pos < len) {
        size_t want = len - pos < MG_CACHE_COMPARE_CHUNK ? len - pos : MG_CACHE_COMPARE_CHUNK;
        ssize_t n = read(fd, buf, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || memcmp(buf, data + pos, (size_t)n) != 0)
            same = false;
        else
            pos += (size_t)n;
    }
    if (same) {
        uint8_t extra;
        ssize_t n;
        do {
            n = read(fd, &extra, 1);
        } while (n < 0 && errno == EINTR);
        same = n == 0;
    }
    free(buf);
    close(fd);
    return same;
}

/* Give the unnamed file `tmp_fd` the name `name` in `dir_fd` (fails with EEXIST if taken). */
static int link_tmpfile(int tmp_fd, int dir_fd, const char *name)
{
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", tmp_fd);
    if (linkat(AT_FDCWD, proc, dir_fd, name, AT_SYMLINK_FOLLOW) == 0)
        return 0;
    if (errno != ENOENT)
        return -1;
    /* No /proc: AT_EMPTY_PATH does the same where the caller may use it. */
    return linkat(tmp_fd, "", dir_fd, name, AT_EMPTY_PATH);
}

/* Names ".tmp-<name>-..." that earlier versions used while replacing an entry, left behind
 * when they crashed between link and rename: removed when `name` is published again. */
static void remove_old_temps(int dir_fd, const char *name)
{
    int lfd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = lfd >= 0 ? fdopendir(lfd) : NULL;
    if (d == NULL) {
        if (lfd >= 0)
            close(lfd);
        return;
    }
    size_t nl = strlen(name);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, ".tmp-", 5) == 0 && strncmp(e->d_name + 5, name, nl) == 0 &&
            e->d_name[5 + nl] == '-')
            (void)unlinkat(dir_fd, e->d_name, 0);
    }
    closedir(d);
}

/*
 * Replace whatever is at `name` (bytes that are not these) by the unnamed file: remove it,
 * then link. No temporary name exists at any point, so a crash leaves nothing behind; a reader
 * in between finds no entry, which is a cache miss. If another process links first, its entry
 * is kept when it holds these very bytes.
 */
static mg_status replace_with_tmpfile(int tmp_fd, int dir_fd, const char *name,
                                      const uint8_t *data, int src_fd, size_t len,
                                      mg_error *err)
{
    remove_old_temps(dir_fd, name);
    for (unsigned i = 0; i < MG_CACHE_TEMP_TRIES; i++) {
        if (unlinkat(dir_fd, name, 0) != 0 && errno != ENOENT)
            return mg_fail(err, MG_E_IO, "cannot remove the stale cache file: %s",
                           strerror(errno));
        if (link_tmpfile(tmp_fd, dir_fd, name) == 0)
            return MG_OK;
        if (errno != EEXIST)
            return mg_fail(err, MG_E_IO, "cannot link the cache file: %s", strerror(errno));
        if (data != NULL ? same_content(dir_fd, name, data, len)
                         : same_content_fd(dir_fd, name, src_fd, len))
            return MG_OK;
    }
    return mg_fail(err, MG_E_IO, "cannot replace the cache file: it keeps changing");
}

static size_t trimmed_len(const char *dir)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    return n;
}

/* cache_dir/sha256/<hex>, or MG_E_LIMIT when it does not fit in out_cap. */
static mg_status cache_path(const char *cache_dir, const char *hex, char *out, size_t cap,
                            mg_error *err)
{
    size_t n = trimmed_len(cache_dir);
    const char *sep = cache_dir[n - 1] == '/' ? "" : "/";
    int w = snprintf(out, cap, "%.*s%s" MG_CACHE_SUBDIR "/%s", (int)n, cache_dir, sep, hex);
    if (w < 0 || (size_t)w >= cap)
        return mg_fail(err, MG_E_LIMIT, "cache path is longer than %zu bytes", cap);
    return MG_OK;
}

static mg_status check_cache_dir(const char *cache_dir, mg_error *err)
{
    if (cache_dir == NULL || cache_dir[0] != '/')
        return mg_fail(err, MG_E_USAGE, "cache_dir must be an absolute path");
    if (strlen(cache_dir) > 4096)
        return mg_fail(err, MG_E_LIMIT, "cache_dir is too long");
    return MG_OK;
}

static void undo_dirs(created_dirs *made, int cache_fd)
{
    if (made->sub && cache_fd >= 0)
        (void)unlinkat(cache_fd, MG_CACHE_SUBDIR, AT_REMOVEDIR);
    if (made->parent_fd >= 0 && made->base != NULL)
        (void)unlinkat(made->parent_fd, made->base, AT_REMOVEDIR);
}

mg_status mg_cache_publish(const char *cache_dir, const uint8_t *data, size_t len,
                           char *out_path, size_t out_cap, mg_error *err)
{
    mg_status st = check_cache_dir(cache_dir, err);
    if (st != MG_OK)
        return st;
    uint8_t digest[MG_DIGEST_MAX];
    st = mg_digest_buffer(MG_SHA256, data, len, digest, err);
    if (st != MG_OK)
        return st;
    char hex[65];
    mg_hex_encode(digest, 32, hex);
    st = cache_path(cache_dir, hex, out_path, out_cap, err);
    if (st != MG_OK)
        return st;

    created_dirs made = {.parent_fd = -1};
    int cache_fd = -1, sub_fd = -1, tmp_fd = -1;
    cache_fd = open_dir_nofollow(cache_dir, true, &made);
    if (cache_fd < 0) {
        st = mg_fail(err, MG_E_IO, "cannot open cache_dir %.200s: %s", cache_dir,
                     strerror(errno));
        goto done;
    }
    if (mkdirat(cache_fd, MG_CACHE_SUBDIR, MG_CACHE_DIR_MODE) == 0) {
        made.sub = true;
    } else if (errno != EEXIST) {
        st = mg_fail(err, MG_E_IO, "cannot create %.200s/" MG_CACHE_SUBDIR ": %s", cache_dir,
                     strerror(errno));
        goto done;
    }
    sub_fd = openat(cache_fd, MG_CACHE_SUBDIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub_fd < 0) {
        st = mg_fail(err, MG_E_IO, "cannot open %.200s/" MG_CACHE_SUBDIR ": %s", cache_dir,
                     strerror(errno));
        goto done;
    }
    if (made.sub && fchmod(sub_fd, MG_CACHE_DIR_MODE) != 0) { /* whatever the umask */
        st = mg_fail(err, MG_E_IO, "cannot set the mode of %.200s/" MG_CACHE_SUBDIR ": %s",
                     cache_dir, strerror(errno));
        goto done;
    }
    tmp_fd = openat(sub_fd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, MG_CACHE_FILE_MODE);
    if (tmp_fd < 0) {
        st = mg_fail(err, MG_E_IO, "cannot create an unnamed temporary file in the cache: %s",
                     strerror(errno));
        goto done;
    }
    if (fchmod(tmp_fd, MG_CACHE_FILE_MODE) != 0) { /* whatever the umask */
        st = mg_fail(err, MG_E_IO, "cannot set the cache file's mode: %s", strerror(errno));
        goto done;
    }
    st = write_all(tmp_fd, data, len, err);
    if (st != MG_OK)
        goto done;
    if (fsync(tmp_fd) != 0) {
        st = mg_fail(err, MG_E_IO, "cannot sync the cache file: %s", strerror(errno));
        goto done;
    }
    if (link_tmpfile(tmp_fd, sub_fd, hex) != 0) {
        if (errno != EEXIST) {
            st = mg_fail(err, MG_E_IO, "cannot link the cache file: %s", strerror(errno));
            goto done;
        }
        /* Already cached: keep it when it holds these very bytes, else replace it. */
        if (!same_content(sub_fd, hex, data, len)) {
            st = replace_with_tmpfile(tmp_fd, sub_fd, hex, data, -1, len, err);
            if (st != MG_OK)
                goto done;
        }
    }
    if (fsync(sub_fd) != 0) {
        st = mg_fail(err, MG_E_IO, "cannot sync the cache folder: %s", strerror(errno));
        goto done;
    }
    st = MG_OK;
done:
    if (st != MG_OK)
        undo_dirs(&made, cache_fd);
    if (tmp_fd >= 0)
        close(tmp_fd); /* an unlinked O_TMPFILE vanishes here */
    if (sub_fd >= 0)
        close(sub_fd);
    if (cache_fd >= 0)
        close(cache_fd);
    if (made.parent_fd >= 0)
        close(made.parent_fd);
    free(made.base);
    if (st != MG_OK && out_path != NULL && out_cap > 0)
        out_path[0] = '\0';
    return st;
}

mg_status mg_cache_lookup(const char *cache_dir, const uint8_t sha256[32], int *fd_out,
                          mg_error *err)
{
    *fd_out = -1;
    mg_status st = check_cache_dir(cache_dir, err);
    if (st != MG_OK)
        return st;
    char hex[65];
    mg_hex_encode(sha256, 32, hex);
    int cache_fd = open_dir_nofollow(cache_dir, false, NULL);
    if (cache_fd < 0) {
        if (errno == ENOENT)
            return MG_OK;
        return mg_fail(err, MG_E_IO, "cannot open cache_dir %.200s: %s", cache_dir,
                       strerror(errno));
    }
    int sub_fd = openat(cache_fd, MG_CACHE_SUBDIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int e = errno;
    close(cache_fd);
    if (sub_fd < 0) {
        if (e == ENOENT)
            return MG_OK;
        return mg_fail(err, MG_E_IO, "cannot open %.200s/" MG_CACHE_SUBDIR ": %s", cache_dir,
                       strerror(e));
    }
    int fd = openat(sub_fd, hex, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    e = errno;
    close(sub_fd);
    if (fd < 0) {
        if (e == ENOENT)
            return MG_OK;
        return mg_fail(err, MG_E_IO, "cannot open cached file %.64s: %s", hex, strerror(e));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return mg_fail(err, MG_E_IO, "cached file %.64s is not a regular file", hex);
    }
    /* Back to blocking reads for the caller. */
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        close(fd);
        return mg_fail(err, MG_E_IO, "cannot use cached file %.64s: %s", hex, strerror(errno));
    }
    *fd_out = fd;
    return MG_OK;
}

/* ---- streamed fetches ----------------------------------------------------------------- */

static bool same_content_fd(int dir_fd, const char *name, int src_fd, uint64_t len)
{
    int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct stat st;
    bool same = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == len;
    uint8_t *a = same ? malloc(MG_CACHE_COMPARE_CHUNK) : NULL;
    uint8_t *b = a != NULL ? malloc(MG_CACHE_COMPARE_CHUNK) : NULL;
    if (b == NULL)
        same = false;
    uint64_t pos = 0;
    while (same && pos < len) {
        size_t want = len - pos < MG_CACHE_COMPARE_CHUNK ? (size_t)(len - pos)
                                                         : MG_CACHE_COMPARE_CHUNK;
        ssize_t n = pread(fd, a, want, (off_t)pos);
        if (n < 0 && errno == EINTR)
            continue;
        ssize_t m = n > 0 ? pread(src_fd, b, (size_t)n, (off_t)pos) : -1;
        if (n <= 0 || m != n || memcmp(a, b, (size_t)n) != 0)
            same = false;
        else
            pos += (uint64_t)n;
    }
    free(a);
    free(b);
    close(fd);
    return same;
}

struct mg_cache_session {
    char *dir;
    int cache_fd;
    int sub_fd;
    int partial_fd; /* opened on first use, under `lock` */
    bool partial_made;
    created_dirs made;
    pthread_mutex_t lock;
};

mg_status mg_cache_begin(const char *cache_dir, mg_cache_session **out, mg_error *err)
{
    *out = NULL;
    mg_status st = check_cache_dir(cache_dir, err);
    if (st != MG_OK)
        return st;
    mg_cache_session *s = calloc(1, sizeof *s);
    if (s == NULL)
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    s->cache_fd = s->sub_fd = s->partial_fd = -1;
    s->made.parent_fd = -1;
    pthread_mutex_init(&s->lock, NULL);
    s->dir = mg_strdup(cache_dir);
    if (s->dir == NULL) {
        mg_cache_end(s, false);
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    }
    s->cache_fd = open_dir_nofollow(cache_dir, true, &s->made);
    if (s->cache_fd < 0) {
        st = mg_fail(err, MG_E_IO, "cannot open cache_dir %.200s: %s", cache_dir,
                     strerror(errno));
        mg_cache_end(s, false);
        return st;
    }
    if (mkdirat(s->cache_fd, MG_CACHE_SUBDIR, MG_CACHE_DIR_MODE) == 0) {
        s->made.sub = true;
    } else if (errno != EEXIST) {
        st = mg_fail(err, MG_E_IO, "cannot create %.200s/" MG_CACHE_SUBDIR ": %s", cache_dir,
                     strerror(errno));
        mg_cache_end(s, false);
        return st;
    }
    s->sub_fd = openat(s->cache_fd, MG_CACHE_SUBDIR,
                       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (s->sub_fd < 0 || (s->made.sub && fchmod(s->sub_fd, MG_CACHE_DIR_MODE) != 0)) {
        st = mg_fail(err, MG_E_IO, "cannot open %.200s/" MG_CACHE_SUBDIR ": %s", cache_dir,
                     strerror(errno));
        mg_cache_end(s, false);
        return st;
    }
    *out = s;
    return MG_OK;
}

void mg_cache_end(mg_cache_session *s, bool ok)
{
    if (s == NULL)
        return;
    if (!ok) {
        if (s->partial_made && s->cache_fd >= 0)
            (void)unlinkat(s->cache_fd, MG_CACHE_PARTIAL_SUBDIR, AT_REMOVEDIR);
        undo_dirs(&s->made, s->cache_fd);
    }
    if (s->partial_fd >= 0)
        close(s->partial_fd);
    if (s->sub_fd >= 0)
        close(s->sub_fd);
    if (s->cache_fd >= 0)
        close(s->cache_fd);
    if (s->made.parent_fd >= 0)
        close(s->made.parent_fd);
    free(s->made.base);
    free(s->dir);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

mg_status mg_cache_tmpfile(mg_cache_session *s, int *fd, mg_error *err)
{
    *fd = openat(s->sub_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, MG_CACHE_FILE_MODE);
    if (*fd < 0)
        return mg_fail(err, MG_E_IO, "cannot create an unnamed temporary file in the cache: %s",
                       strerror(errno));
    return MG_OK;
}

static int partial_dir(mg_cache_session *s)
{
    pthread_mutex_lock(&s->lock);
    if (s->partial_fd < 0) {
        if (mkdirat(s->cache_fd, MG_CACHE_PARTIAL_SUBDIR, MG_CACHE_PARTIAL_DIR_MODE) == 0)
            s->partial_made = true;
        int fd = openat(s->cache_fd, MG_CACHE_PARTIAL_SUBDIR,
                        O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0 && s->partial_made && fchmod(fd, MG_CACHE_PARTIAL_DIR_MODE) != 0) {
            close(fd);
            fd = -1;
        }
        s->partial_fd = fd;
    }
    int fd = s->partial_fd;
    pthread_mutex_unlock(&s->lock);
    return fd;
}

mg_status mg_cache_partial_open(mg_cache_session *s, const char *name, int *fd, uint64_t *have,
                                mg_error *err)
{
    *fd = -1;
    *have = 0;
    int dfd = partial_dir(s);
    if (dfd < 0)
        return mg_fail(err, MG_E_IO, "cannot open %.200s/" MG_CACHE_PARTIAL_SUBDIR ": %s",
                       s->dir, strerror(errno));
    int f = openat(dfd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
                   MG_CACHE_PARTIAL_FILE_MODE);
    if (f < 0)
        return mg_fail(err, MG_E_IO, "cannot open the partial download %.100s: %s", name,
                       strerror(errno));
    if (flock(f, LOCK_EX | LOCK_NB) != 0) {
        close(f);
        return errno == EWOULDBLOCK ? MG_OK
                                    : mg_fail(err, MG_E_IO, "cannot lock the partial download "
                                              "%.100s: %s", name, strerror(errno));
    }
    struct stat st;
    int fl = fcntl(f, F_GETFL);
    if (fstat(f, &st) != 0 || !S_ISREG(st.st_mode) || fl < 0 ||
        fcntl(f, F_SETFL, fl & ~O_NONBLOCK) != 0 || fchmod(f, MG_CACHE_PARTIAL_FILE_MODE) != 0) {
        close(f);
        return mg_fail(err, MG_E_IO, "the partial download %.100s is not a usable file", name);
    }
    *have = (uint64_t)st.st_size;
    *fd = f;
    return MG_OK;
}

void mg_cache_partial_remove(mg_cache_session *s, const char *name)
{
    int dfd = partial_dir(s);
    if (dfd >= 0)
        (void)unlinkat(dfd, name, 0);
}

mg_status mg_cache_publish_fd(mg_cache_session *s, int fd, uint64_t len, const uint8_t sha256[32],
                              const char *partial, char *out_path, size_t out_cap, mg_error *err)
{
    char hex[65];
    mg_hex_encode(sha256, 32, hex);
    mg_status st = cache_path(s->dir, hex, out_path, out_cap, err);
    if (st != MG_OK)
        return st;
    struct stat a, b;
    if (fstat(fd, &a) == 0 && fstatat(s->sub_fd, hex, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
        a.st_dev == b.st_dev && a.st_ino == b.st_ino)
        return MG_OK; /* the cached entry itself (a remote file found in the cache) */
    if (fchmod(fd, MG_CACHE_FILE_MODE) != 0)
        return mg_fail(err, MG_E_IO, "cannot set the cache file's mode: %s", strerror(errno));
    if (fsync(fd) != 0)
        return mg_fail(err, MG_E_IO, "cannot sync the cache file: %s", strerror(errno));
    if (link_tmpfile(fd, s->sub_fd, hex) != 0) {
        if (errno != EEXIST)
            return mg_fail(err, MG_E_IO, "cannot link the cache file: %s", strerror(errno));
        if (!same_content_fd(s->sub_fd, hex, fd, len)) {
            st = replace_with_tmpfile(fd, s->sub_fd, hex, NULL, fd, (size_t)len, err);
            if (st != MG_OK)
                return st;
        }
    }
    if (partial != NULL)
        mg_cache_partial_remove(s, partial);
    if (fsync(s->sub_fd) != 0)
        return mg_fail(err, MG_E_IO, "cannot sync the cache folder: %s", strerror(errno));
    return MG_OK;
}
