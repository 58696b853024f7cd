/*
 * Verified memory. A region is memory that a file is read into once, hashed as it arrives,
 * and then sealed read-only. Parsers see only sealed-or-private bytes; nothing is ever read
 * from the file a second time. A file read from disk lives in a memfd: once sealed
 * (F_SEAL_WRITE|SHRINK|GROW|SEAL) no mapping of it can ever be made writable again, and the
 * confined parser (sandbox.h) maps the same pages read-only. Other regions (downloads, which
 * grow as they arrive, and parser buffers) are private anonymous memory sealed by mprotect.
 */
#ifndef MG_REGION_H
#define MG_REGION_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "digest.h"
#include "internal.h"

typedef struct mg_region {
    uint8_t *data; /* NULL when empty */
    size_t len;    /* bytes of content */
    size_t map_len;
    bool has_memfd; /* `memfd` backs `data` and is not sealed yet */
    int memfd;
    bool memfd_sealed; /* `data` maps a sealed memfd (read-only for good) */
    /* The sealed memfd's descriptor, kept open (MG_REGION_KEEP_FD) in `memfd` so that the
     * confined parser can be handed the same pages; mg_region_drop_fd closes it. */
    bool has_sealed_fd;
    /* CRC-32 (zlib's) of each MG_REGION_CRC_BLOCK bytes of the content (the last block may be
     * shorter), computed from the verified bytes while the file was read (a file read from
     * disk into a memfd, of 4 MiB or more, that starts as a ZIP archive);
     * NULL otherwise. The npz parser uses it for stored members instead of a pass of its own. */
    uint32_t *block_crc;
    size_t block_crc_count;
} mg_region;

#define MG_REGION_CRC_BLOCK ((size_t)1 << 20)

/* Map `len` bytes of private, zeroed, writable memory (len 0 gives an empty region). */
MG_NODISCARD mg_status mg_region_alloc(mg_region *r, size_t len, mg_error *err);
/* As mg_region_alloc, backed by a memfd that mg_region_seal seals (anonymous memory when the
 * kernel has no memfd). */
MG_NODISCARD mg_status mg_region_alloc_memfd(mg_region *r, size_t len, mg_error *err);
/* Make the region read-only (a memfd region: sealed, its descriptor closed, and its bytes
 * mapped again read-only, normally at the same address: take `data` only after sealing).
 * Sealing an already sealed region does nothing. */
MG_NODISCARD mg_status mg_region_seal(mg_region *r, mg_error *err);
/* As mg_region_seal, with MG_REGION_KEEP_FD (other flags are ignored). */
MG_NODISCARD mg_status mg_region_seal_ex(mg_region *r, unsigned flags, mg_error *err);
/* Close the kept descriptor of a sealed memfd (MG_REGION_KEEP_FD), if any; the mapping stays. */
void mg_region_drop_fd(mg_region *r);
/* Unmap (safe on a zeroed or already freed region). */
void mg_region_free(mg_region *r);

/*
 * Read the open file `fd` (from its start, with pread) into a new region, hashing each chunk
 * with `alg` as it arrives.
 * The size is checked first against `expected_size` (UINT64_MAX = not pinned, then the
 * size is taken from fstat and capped at MG_MAX_MODEL_FILE_BYTES); a file that turns out
 * longer or shorter while it is read is an integrity failure. `done` (may be NULL) is
 * increased by the bytes read, for progress. The digest is written to `digest`.
 * The bytes go into a memfd that is sealed and mapped read-only before this returns (private
 * memory, left writable for the caller to seal, only where the kernel has no memfd).
 */
MG_NODISCARD mg_status mg_region_read_hashed(int fd, uint64_t expected_size, mg_digest_alg alg,
                                             mg_region *out, uint8_t digest[MG_DIGEST_MAX],
                                             _Atomic uint64_t *done, mg_error *err);

/* The size of the open regular file `fd`, checked against `expected_size` (UINT64_MAX = not
 * pinned: integrity failure otherwise) and the file cap (limit). */
MG_NODISCARD mg_status mg_region_file_size(int fd, uint64_t expected_size, uint64_t *size,
                                           mg_error *err);

/* mg_region_read_hashed_ex flags. */
#define MG_REGION_PREFAULT 0x1u /* a core is spare: a helper thread reads the file into the
                                   region (and backs it with memory) while the caller hashes */
#define MG_REGION_KEEP_FD 0x2u  /* keep the sealed memfd's descriptor (has_sealed_fd) */
/* The loader sets MG_REGION_PREFAULT only for files this large: below, the pipeline costs more
 * than it saves (its 4 MiB ring is fresh memory and its thread a clone: about 10 ms on a 4 MiB
 * model here, make bench's small model). */
#define MG_REGION_PIPE_MIN ((uint64_t)64 << 20)

/* As mg_region_read_hashed, with MG_REGION_* flags. */
MG_NODISCARD mg_status mg_region_read_hashed_ex(int fd, uint64_t expected_size,
                                                mg_digest_alg alg, unsigned flags,
                                                mg_region *out, uint8_t digest[MG_DIGEST_MAX],
                                                _Atomic uint64_t *done, mg_error *err);

#endif
