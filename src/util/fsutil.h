/* Opening files without following any symlink on the way. */
#ifndef MG_FSUTIL_H
#define MG_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/*
 * Open the absolute, normalised `path` walking every component with O_NOFOLLOW, so that a
 * symlink anywhere on the way fails (ELOOP/ENOTDIR). `flags` are for the last component
 * (O_CLOEXEC and O_NOFOLLOW are added). Returns the fd, or -1 with errno set. When
 * `parent_fd` is not NULL it receives an O_PATH fd of the containing folder (caller closes).
 */
int mg_open_nofollow(const char *path, int flags, int *parent_fd);

/* The same below an already open folder `dirfd` for a relative path ("a/b/c"). */
int mg_openat_nofollow(int dirfd, const char *relpath, int flags);

/* Read a whole small file from `fd` into a malloc'd buffer, refusing more than `cap` bytes
 * (MG_E_LIMIT) and non-regular files (MG_E_IO). */
MG_NODISCARD mg_status mg_read_small(int fd, size_t cap, uint8_t **out, size_t *len,
                                     mg_error *err);

/* write() all `n` bytes, retrying on EINTR and short writes; false on any error. */
bool mg_write_all(int fd, const void *data, size_t n);
/* The same with send(MSG_NOSIGNAL) on a socket: a peer that is gone is an error, not SIGPIPE. */
bool mg_send_all(int fd, const void *data, size_t n);

/* pwrite() all `n` bytes at `off`, retrying on EINTR and short writes; false on any error,
 * with errno set (0 when the kernel wrote nothing without an error). */
bool mg_pwrite_all(int fd, const void *data, size_t n, uint64_t off);

/* Take an exclusive flock on `fd`, waiting at most `timeout_ms`; 0, or -1 with errno set
 * (EWOULDBLOCK when still held by another process at the end). */
int mg_lock_fd(int fd, unsigned timeout_ms);

/* MG_E_IO unless `fd` (opened O_NONBLOCK, so that a FIFO could not block the open) is a
 * regular file; clears O_NONBLOCK on success. `what` names the file in the message. */
MG_NODISCARD mg_status mg_require_regular(int fd, const char *what, mg_error *err);

/* Give the unnamed (O_TMPFILE) file `fd` the name `name` in `dirfd`; 0, or -1 with errno
 * (EEXIST when the name is taken: linkat never replaces). */
int mg_link_unnamed(int fd, int dirfd, const char *name);

#endif
