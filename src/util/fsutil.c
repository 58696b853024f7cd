#define _GNU_SOURCE
#include "util/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <unistd.h>

static int walk(int start, const char *rel, int flags, int *parent_fd)
{
    int dir = start;
    const char *p = rel;
    for (;;) {
        while (*p == '/')
            p++;
        const char *slash = strchr(p, '/');
        const char *next = slash;
        if (slash != NULL) {
            while (*next == '/')
                next++;
        }
        bool last = slash == NULL || *next == '\0';
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        char name[256];
        if (n == 0 || n >= sizeof name) {
            if (dir != start)
                close(dir);
            errno = n == 0 ? EINVAL : ENAMETOOLONG;
            return -1;
        }
        memcpy(name, p, n);
        name[n] = '\0';
        if (last) {
            int extra = slash != NULL ? O_DIRECTORY : 0;
            int fd = openat(dir, name, flags | extra | O_NOFOLLOW | O_CLOEXEC);
            int saved = errno;
            if (parent_fd != NULL && fd >= 0) {
                *parent_fd = dir == start ? dup(dir) : dir;
            } else if (dir != start) {
                close(dir);
            }
            errno = saved;
            return fd;
        }
        int sub = openat(dir, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int saved = errno;
        if (dir != start)
            close(dir);
        if (sub < 0) {
            errno = saved;
            return -1;
        }
        dir = sub;
        p = next;
    }
}

int mg_open_nofollow(const char *path, int flags, int *parent_fd)
{
    if (path[0] != '/') {
        errno = EINVAL;
        return -1;
    }
    int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0)
        return -1;
    int fd;
    if (path[1] == '\0') {
        fd = openat(root, ".", flags | O_CLOEXEC);
        if (parent_fd != NULL && fd >= 0)
            *parent_fd = dup(root);
    } else {
        fd = walk(root, path + 1, flags, parent_fd);
    }
    int saved = errno;
    close(root);
    errno = saved;
    return fd;
}

int mg_openat_nofollow(int dirfd, const char *relpath, int flags)
{
    if (relpath[0] == '/' || relpath[0] == '\0') {
        errno = EINVAL;
        return -1;
    }
    return walk(dirfd, relpath, flags, NULL);
}

mg_status mg_read_small(int fd, size_t cap, uint8_t **out, size_t *len, mg_error *err)
{
    *out = NULL;
    *len = 0;
    struct stat st;
    if (fstat(fd, &st) != 0)
        return mg_fail(err, MG_E_IO, "cannot stat: %s", strerror(errno));
    if (!S_ISREG(st.st_mode))
        return mg_fail(err, MG_E_IO, "not a regular file");
    if ((uint64_t)st.st_size > cap)
        return mg_fail(err, MG_E_LIMIT, "file of %lld bytes exceeds the cap of %zu bytes",
                       (long long)st.st_size, cap);
    size_t want = (size_t)st.st_size;
    uint8_t *buf = malloc(want + 1);
    if (buf == NULL)
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    size_t got = 0;
    for (;;) {
        if (got > cap) {
            free(buf);
            return mg_fail(err, MG_E_LIMIT, "file exceeds the cap of %zu bytes", cap);
        }
        if (got == want) {
            /* Grew since fstat? Look for one more byte. */
            uint8_t extra;
            ssize_t n = read(fd, &extra, 1);
            if (n == 0)
                break;
            if (n < 0 && errno == EINTR)
                continue;
            free(buf);
            if (n < 0)
                return mg_fail(err, MG_E_IO, "read failed: %s", strerror(errno));
            return mg_fail(err, MG_E_IO, "file changed while it was read");
        }
        ssize_t n = read(fd, buf + got, want - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            free(buf);
            return mg_fail(err, MG_E_IO, "read failed: %s", strerror(errno));
        }
        if (n == 0) {
            free(buf);
            return mg_fail(err, MG_E_IO, "file changed while it was read");
        }
        got += (size_t)n;
    }
    buf[got] = '\0';
    *out = buf;
    *len = got;
    return MG_OK;
}

/* write() or, on a socket, send() without SIGPIPE, until all `n` bytes are out. */
static bool out_all(int fd, const void *data, size_t n, bool sock)
{
    const uint8_t *p = data;
    while (n > 0) {
        ssize_t w = sock ? send(fd, p, n, MSG_NOSIGNAL) : write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

bool mg_write_all(int fd, const void *data, size_t n)
{
    return out_all(fd, data, n, false);
}

bool mg_send_all(int fd, const void *data, size_t n)
{
    return out_all(fd, data, n, true);
}

bool mg_pwrite_all(int fd, const void *data, size_t n, uint64_t off)
{
    const uint8_t *p = data;
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = 0;
            return false;
        }
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return true;
}

int mg_lock_fd(int fd, unsigned timeout_ms)
{
    /* Polled rather than blocking: a lock held by a stuck process must not hang a load. */
    for (unsigned waited = 0;; waited += 10) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (errno != EWOULDBLOCK || waited >= timeout_ms)
            return -1;
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

mg_status mg_require_regular(int fd, const char *what, mg_error *err)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return mg_fail(err, MG_E_IO, "%s: cannot stat: %s", what, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return mg_fail(err, MG_E_IO, "%s is not a regular file%s", what,
                       S_ISFIFO(st.st_mode) ? " (a FIFO)" : "");
    /* Opened O_NONBLOCK so that a FIFO could not block the open; back to blocking I/O. */
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0)
        return mg_fail(err, MG_E_IO, "%s: cannot use: %s", what, strerror(errno));
    return MG_OK;
}

int mg_link_unnamed(int fd, int dirfd, const char *name)
{
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    if (linkat(AT_FDCWD, proc, dirfd, name, AT_SYMLINK_FOLLOW) == 0)
        return 0;
    if (errno != ENOENT)
        return -1;
    /* No /proc: AT_EMPTY_PATH does the same where the caller may use it. */
    return linkat(fd, "", dirfd, name, AT_EMPTY_PATH);
}
