/*
 * Streaming verification (issue 17): verify and fetch hash every file through a bounded
 * window instead of reading it into verified memory.
 *
 *   - A local file is read in MG_STREAM_CHUNK pieces, each hashed (with the pin's algorithm,
 *     per shard for a sharded pin, on several threads) and, for fetch, written to an unnamed
 *     temporary file in the cache (all-zero pieces are left as holes).
 *   - A remote file streams from libcurl into the same hashing (verify) or into a file in
 *     the cache (fetch). A fetch of a file of at least MG_STREAM_RANGE_MIN bytes, pinned with
 *     its size, from a server that answers a range probe with 206, runs over several parallel
 *     range requests written into place, and the file is hashed once afterwards.
 *   - A fetch of a file of at least MG_STREAM_RESUME_MIN bytes (size pinned) downloads into a
 *     private partial file, cache_dir/partial/<name> (0600): a transfer that breaks keeps it,
 *     and the next fetch continues from its length with a range request. Whatever is in a
 *     partial file is trusted for nothing: the whole file is hashed before it is published,
 *     and a partial that does not match is discarded and fetched again from the start, once.
 *
 * Memory per file: one chunk per hashing thread, MG_STREAM_HEAD bytes of head (kept for
 * format detection) and libcurl's own buffers; never the file.
 */
#ifndef MG_STREAM_H
#define MG_STREAM_H

#include <stdatomic.h>
#include <stdint.h>

#include "cache.h"
#include "fetch.h"
#include "policy.h"
#include "region.h"

#define MG_STREAM_CHUNK (256u << 10)
#define MG_STREAM_HEAD (64u << 10)                   /* first bytes kept for detection */
#define MG_STREAM_RANGE_MIN (UINT64_C(64) << 20)     /* parallel ranges from this size */
#define MG_STREAM_RESUME_MIN (UINT64_C(8) << 20)     /* resumable (partial file) from here */
#define MG_STREAM_MAX_RANGES 8u                      /* parallel range requests per file */

typedef struct mg_stream_file {
    uint8_t *head; /* the first min(size, MG_STREAM_HEAD) bytes hashed (malloc'd) */
    size_t head_len;
    uint64_t size;
    uint8_t digest[MG_DIGEST_MAX]; /* with the pin's algorithm (a sharded pin: the root) */
    uint8_t sha256[32];            /* fetch: the content's SHA-256, the cache name */
    int out_fd;                    /* fetch: the verified copy, not yet published; else -1 */
    char partial[160];             /* its name in cache_dir/partial, "" for a temporary file */
} mg_stream_file;

void mg_stream_file_init(mg_stream_file *f);
/* Close the copy (a temporary file vanishes; a partial file stays) and free the head. */
void mg_stream_file_free(mg_stream_file *f);

/*
 * Hash the open local file `fd` and check it against `pin` (size, digest or every shard):
 * MG_E_INTEGRITY with algorithm/expected/actual on a mismatch, or for a file that changes
 * size while it is read. With `cache` (fetch) the bytes are also copied into a temporary file
 * of the cache (`out->out_fd`) and their SHA-256 computed. `threads` hash the shards of a
 * sharded pin. `done` (may be NULL) counts bytes.
 */
MG_NODISCARD mg_status mg_stream_local(int fd, const mg_pinned_file *pin, unsigned threads,
                                       mg_cache_session *cache, mg_stream_file *out,
                                       _Atomic uint64_t *done, mg_error *err);

/* The same for a remote file at `url` (already matched against the policy). */
MG_NODISCARD mg_status mg_stream_remote(const mg_fetch_config *cfg, const char *url,
                                        const mg_pinned_file *pin, unsigned threads,
                                        mg_cache_session *cache, mg_stream_file *out,
                                        _Atomic uint64_t *done, mg_error *err);

/*
 * A load of a large remote file (pinned size at least MG_STREAM_RANGE_MIN) from a server that
 * answers a range probe with 206: the ranges are downloaded in parallel into a new region,
 * which is then hashed once (per shard for a sharded pin: `digest` gets the root). `*used`
 * is false (and nothing happened but the probe) when the file is too small or the server
 * ignores ranges: the caller downloads it in one stream. The digest is not compared here,
 * except per shard.
 */
MG_NODISCARD mg_status mg_stream_remote_region(const mg_fetch_config *cfg, const char *url,
                                               const mg_pinned_file *pin, unsigned threads,
                                               mg_region *out, uint8_t digest[MG_DIGEST_MAX],
                                               bool *used, _Atomic uint64_t *done,
                                               mg_error *err);

#endif
