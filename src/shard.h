/* Sharded hashing: one file read once into verified memory (a memfd, as for other files), its
 * shards (fixed-size ranges, each with its own pinned digest) read and hashed in parallel on
 * several cores: each worker reads a chunk into a small buffer, hashes it while it is in
 * cache and writes it into the memfd. */
#ifndef MG_SHARD_H
#define MG_SHARD_H

#include <stdatomic.h>
#include <stdint.h>

#include "policy.h"
#include "region.h"

/*
 * Read the open file `fd`, whose size must be pin->size, into a new region (a sealed memfd
 * mapped read-only; private memory without memfd or under a low RLIMIT_FSIZE); shard i
 * ([i*shard_size, min((i+1)*shard_size, size))) is read and hashed by one of `threads`
 * threads and must equal pin->shards[i]. `digest` receives the SHA-256 over the
 * concatenated shard digests (what mg_shard_root computes for the pin). MG_E_INTEGRITY for a
 * size or shard mismatch (the lowest shard that failed is reported), a file that changes
 * size while it is read; MG_E_IO for read errors. `done` (may be NULL) counts bytes read.
 * `flags`: MG_REGION_KEEP_FD or 0 (region.h).
 */
MG_NODISCARD mg_status mg_shard_read(int fd, const mg_pinned_file *pin, unsigned threads,
                                     unsigned flags, mg_region *out,
                                     uint8_t digest[MG_DIGEST_MAX], _Atomic uint64_t *done,
                                     mg_error *err);

/* How many chunks workers with no shard left have filled for others in this process (for the
 * tests: shows that the tail help ran). */
uint64_t mg_shard_chunks_helped(void);

/* The same check for bytes already in memory (a downloaded file): every shard of `r` must
 * match, then `digest` gets the root as above. */
MG_NODISCARD mg_status mg_shard_check_memory(const mg_region *r, const mg_pinned_file *pin,
                                             uint8_t digest[MG_DIGEST_MAX], mg_error *err);

/* SHA-256 over the concatenated shard digests of `pin` into `out` (32 bytes). */
MG_NODISCARD mg_status mg_shard_root(const mg_pinned_file *pin, uint8_t out[MG_DIGEST_MAX],
                                     mg_error *err);

#endif
