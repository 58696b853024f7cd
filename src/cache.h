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

#endif
