/*
 * HTTPS downloads through libcurl (SPEC §6) straight into verified memory (region.h), hashed
 * as the bytes arrive and capped while they arrive.
 *
 * Transport rules, the same for every call (there is no switch to weaken them):
 *   - https only, for the first request and for every redirect hop; at most 5 redirects;
 *     each hop is followed by hand and checked against the model's redirect rule before any
 *     connection is made to it (same-host = same scheme, host and port after normalisation);
 *     a redirect URL with user info is refused;
 *   - peer and host verification on, TLS 1.2 or later, CA bundle = cfg->ca_file or the
 *     system store;
 *   - any HTTP status but 200 on the final hop is an error; no content decoding is asked for;
 *   - connect timeout 30 s; abort when fewer than 1024 B/s arrive for 30 s. Tests may shorten
 *     the low-speed window (never lengthen it) with the environment variable
 *     MODELGATE_TEST_LOW_SPEED_TIME=<seconds> (clamped to 1..30), which exists only so the
 *     stalled-server test does not take 30 s.
 *
 * Status mapping:
 *   MG_E_INTEGRITY  the body is longer than `size` (whether or not the server announced a
 *                   Content-Length, chunked or not: the cap is enforced while receiving), or,
 *                   with `exact`, shorter than `size` (a truncated transfer is a size mismatch)
 *   MG_E_IO         connection, DNS, TLS (certificate untrusted, expired, wrong host), timeout
 *                   and low-speed abort, an HTTP status other than 200 (404 included, except in
 *                   mg_fetch_region_optional), a refused or excessive redirect, and a transfer
 *                   cut short of its own Content-Length when `exact` is false (a capped download
 *                   has no expected size to mismatch, so it is a transport failure)
 *   MG_E_USAGE      `url` is not an https URL
 *   MG_E_LIMIT      out of memory, or libcurl could not be set up as required (e.g. a libcurl
 *                   older than 7.85 that lacks CURLOPT_PROTOCOLS_STR: we fail closed)
 *
 * Thread-safe: every call uses its own libcurl easy handle; libcurl's global initialisation
 * runs once (pthread_once). Several files of a model may be fetched in parallel.
 */
#ifndef MG_FETCH_H
#define MG_FETCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "digest.h"
#include "internal.h"
#include "policy.h"
#include "region.h"

#define MG_FETCH_MAX_REDIRECTS 5
#define MG_FETCH_CONNECT_TIMEOUT_S 30L
#define MG_FETCH_LOW_SPEED_LIMIT 1024L /* bytes per second ... */
#define MG_FETCH_LOW_SPEED_TIME_S 30L  /* ... over this many seconds */
#define MG_FETCH_TEST_LOW_SPEED_ENV "MODELGATE_TEST_LOW_SPEED_TIME"

typedef struct mg_fetch_config {
    const char *ca_file;    /* PEM bundle from the policy, or NULL for the system store */
    mg_redirects redirects; /* the model's rule (policy.h): same-host (default), none, https */
    /* Credentials (policy.h, mg_policy_credential): on every hop, those of that hop's exact
     * host and port only, if any: a bearer token or basic auth as an Authorization header, a
     * client certificate for mutual TLS. NULL: none. */
    const mg_policy *pol;
    const char *accept; /* a whole "Accept: ..." header line, or NULL */
} mg_fetch_config;

/*
 * Authentication, on top of the rules above:
 *   - credentials go only to the host:port they are for; a redirect to another host gets none
 *     (and a bearer token obtained for one host is sent to that host only);
 *   - a final 401 with "WWW-Authenticate: Bearer realm=...,service=...,scope=..." runs the
 *     registry token flow once: GET realm?service=..&scope=.. (https, the realm host's own
 *     credentials if any, body capped at 64 KiB, {"token"} or {"access_token"}), then the
 *     request again with that token;
 *   - 401 and 403 are MG_E_IO with a message naming the host (never a secret).
 */

/*
 * Download `url` (https only; the caller has already matched it against the policy) into a
 * new region, hashing every byte with `alg` as it arrives. With `exact` the body must be
 * exactly `size` bytes (the region is allocated once the server answers 200); otherwise `size`
 * is a cap (manifests, signature files) and the region grows as bytes arrive, never past it.
 * On success `*out` holds the body (out->data is NULL for an empty body) and `digest` its
 * digest; the region is writable (the caller seals it). On failure `*out` is empty and
 * nothing was kept. `done` (may be NULL) is increased by the bytes received, for progress.
 */
MG_NODISCARD mg_status mg_fetch_region(const mg_fetch_config *cfg, const char *url, uint64_t size,
                                       bool exact, mg_digest_alg alg, mg_region *out,
                                       uint8_t digest[MG_DIGEST_MAX], _Atomic uint64_t *done,
                                       mg_error *err);

/*
 * As mg_fetch_region, for files that may be absent (optional signature files such as
 * manifest.json.minisig): a final HTTP 404 gives MG_OK with `*found = false` and an empty
 * `*out`. Every other outcome is as above, with `*found = true` on success.
 */
MG_NODISCARD mg_status mg_fetch_region_optional(const mg_fetch_config *cfg, const char *url,
                                                uint64_t size, bool exact, mg_digest_alg alg,
                                                mg_region *out, uint8_t digest[MG_DIGEST_MAX],
                                                _Atomic uint64_t *done, bool *found,
                                                mg_error *err);

/*
 * Streaming downloads (bounded memory): every body byte goes to `fn`, with its offset in the
 * file, as it arrives; nothing is kept or hashed here (the sink hashes or stores).
 *
 * start == 0 and len == total: a plain GET of the whole file (200; with `exact` exactly `len`
 * bytes, else at most `len`). Otherwise a Range request for bytes [start, start+len) of a
 * file of exactly `total` bytes (`exact` required): only a 206 answer whose Content-Range is
 * exactly "bytes start-(start+len-1)/total" and whose body is exactly `len` bytes is taken
 * (anything else: MG_E_INTEGRITY for a wrong range or length, MG_E_IO for a status). A
 * server that answers the Range request with 200 (it ignores ranges) gives MG_E_IO with
 * `*range_ignored` set, before `fn` saw any byte: the caller falls back to one stream.
 * `fn` returning an error stops the transfer with that error. Otherwise as mg_fetch_region
 * (transport rules, redirects, credentials, status mapping).
 */
typedef mg_status (*mg_fetch_write_fn)(void *ctx, uint64_t offset, const uint8_t *data,
                                       size_t len, mg_error *err);

MG_NODISCARD mg_status mg_fetch_stream(const mg_fetch_config *cfg, const char *url,
                                       uint64_t total, uint64_t start, uint64_t len, bool exact,
                                       mg_fetch_write_fn fn, void *ctx, _Atomic uint64_t *done,
                                       bool *range_ignored, mg_error *err);

#endif
