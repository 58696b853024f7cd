/*
 * The download cache (SPEC §6): verified files published as cache_dir/sha256/<hex of their
 * SHA-256>. The cache is a speed-up, never a trust anchor: whatever is read back from it is
 * hashed again by the loader.
 *
 * Publishing never leaves a partial or temporary file under any name: the bytes go to an
 * unnamed temporary file (O_TMPFILE), are synced, and only then linked to their final name.
 * No symlink is followed on the way to cache_dir, to cache_dir/sha256 or to the file.
 */
#ifndef MG_CACHE_H
#define MG_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

#define MG_CACHE_FILE_MODE 0640
#define MG_CACHE_DIR_MODE 0750

/*
 * Publish `len` bytes (already verified by the caller) to cache_dir/sha256/<hex>, where <hex>
 * is the SHA-256 of the bytes, computed here. `cache_dir` must be absolute; it and its
 * "sha256" folder are created (mode 0750) when missing, the parent of cache_dir must exist.
 * The file is created mode 0640. If the name exists already, its content is hashed: equal
 * content is kept as it is; anything else (other bytes, a symlink, a non-regular file) is
 * replaced atomically (link to a temporary name, then rename over it).
 * On success the absolute path is written to `out_path` (`out_cap` bytes; MG_E_LIMIT before
 * anything is written when it does not fit). Errors: MG_E_IO (file system), MG_E_USAGE
 * (relative cache_dir), MG_E_LIMIT. A failure leaves nothing behind.
 */
MG_NODISCARD mg_status mg_cache_publish(const char *cache_dir, const uint8_t *data, size_t len,
                                        char *out_path, size_t out_cap, mg_error *err);

/*
 * Open cache_dir/sha256/<hex of sha256> read-only without following symlinks. A cached,
 * regular file gives MG_OK with `*fd_out` >= 0 (the caller closes it and must hash what it
 * reads); an absent one (or an absent cache) gives MG_OK with `*fd_out` = -1. Anything else
 * at that name, or an unusable cache_dir, is MG_E_IO.
 */
MG_NODISCARD mg_status mg_cache_lookup(const char *cache_dir, const uint8_t sha256[32],
                                       int *fd_out, mg_error *err);

/*
 * A streamed fetch (load.c, stream.c): files are written straight into the cache folder and
 * published only after their digest matched, with no copy of them in memory.
 *
 * mg_cache_begin opens (creating, 0750, no symlink followed) cache_dir and cache_dir/sha256;
 * mg_cache_end(…, false) removes again the folders it created when they are still empty.
 * The session's calls may run on several threads at once.
 */
typedef struct mg_cache_session mg_cache_session;

#define MG_CACHE_PARTIAL_SUBDIR "partial"
#define MG_CACHE_PARTIAL_DIR_MODE 0700
#define MG_CACHE_PARTIAL_FILE_MODE 0600

MG_NODISCARD mg_status mg_cache_begin(const char *cache_dir, mg_cache_session **out,
                                      mg_error *err);
void mg_cache_end(mg_cache_session *s, bool ok);

/* An unnamed temporary file (O_TMPFILE, read-write, 0640) in cache_dir/sha256. */
MG_NODISCARD mg_status mg_cache_tmpfile(mg_cache_session *s, int *fd, mg_error *err);

/*
 * The private partial file cache_dir/partial/<name> (folder 0700, file 0600; created when
 * missing, never through a symlink), opened read-write and locked (flock) for this process:
 * `*have` is its current length. When another process holds the lock, `*fd` is -1 (the
 * caller downloads into a temporary file instead). Errors: MG_E_IO.
 */
MG_NODISCARD mg_status mg_cache_partial_open(mg_cache_session *s, const char *name, int *fd,
                                             uint64_t *have, mg_error *err);
/* Remove cache_dir/partial/<name> (a partial download that failed its digest). */
void mg_cache_partial_remove(mg_cache_session *s, const char *name);

/*
 * Publish the verified content of `fd` (`len` bytes, SHA-256 `sha256`, computed by the
 * caller while it verified them) as cache_dir/sha256/<hex>: mode 0640, synced, then linked
 * (an existing entry with other bytes is replaced as mg_cache_publish does). `partial`:
 * the partial file's name, removed once linked (NULL for a temporary file). The path goes to
 * `out_path` (`out_cap` bytes).
 */
MG_NODISCARD mg_status mg_cache_publish_fd(mg_cache_session *s, int fd, uint64_t len,
                                           const uint8_t sha256[32], const char *partial,
                                           char *out_path, size_t out_cap, mg_error *err);

#endif
