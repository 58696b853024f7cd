/*
 * OCI registries as model sources (OCI distribution API v2, the ORAS artifact convention).
 *
 *   "source": "oci://HOST[:PORT]/REPO@sha256:<64 hex>"
 *
 * The manifest digest is the pin: the manifest is fetched by digest over HTTPS, its SHA-256
 * must equal the pin (and its size is capped), then each layer is a file of the model: its
 * name is the layer's `org.opencontainers.image.title` annotation, its pin the layer's
 * `digest` and `size`, and its bytes the blob fetched by digest into verified memory like any
 * remote file. A tag is never a pin (refused in the policy); `modelgate policy pin` resolves a
 * tag once and writes the digest.
 */
#ifndef MG_OCI_H
#define MG_OCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"
#include "policy.h"

#define MG_OCI_SCHEME "oci://"
#define MG_OCI_MAX_MANIFEST_BYTES (4u << 20) /* an OCI manifest (the registry's own cap) */
#define MG_OCI_MAX_LAYERS 10000u              /* layers (files) of one artifact */
#define MG_OCI_HOST_MAX 262                  /* host[:port] */
#define MG_OCI_REPO_MAX 256                   /* repository name */
#define MG_OCI_TAG_MAX 128                    /* tag (only for `policy pin`) */

#define MG_OCI_MANIFEST_ACCEPT                                                                \
    "Accept: application/vnd.oci.image.manifest.v1+json, "                                    \
    "application/vnd.docker.distribution.manifest.v2+json"

/* A parsed reference. */
typedef struct mg_oci_ref {
    char host[MG_OCI_HOST_MAX]; /* lower-case host, ":port" kept unless 443 */
    char repo[MG_OCI_REPO_MAX + 1];
    bool has_digest;
    uint8_t digest[32];
    char digest_hex[65];
    bool has_tag;
    char tag[MG_OCI_TAG_MAX + 1];
} mg_oci_ref;

/* True when `s` starts with "oci://" (any case). */
bool mg_oci_is_ref(const char *s);

/*
 * Parse "oci://HOST[:PORT]/REPO@sha256:HEX" or "oci://HOST[:PORT]/REPO:TAG". The repository
 * follows the distribution grammar (lower-case components of [a-z0-9] joined by '.', '_',
 * '__' or runs of '-', separated by '/'); the digest must be sha256 with 64 lower-case hex
 * digits; a tag is [A-Za-z0-9_][A-Za-z0-9._-]{0,127}. MG_E_UNTRUSTED on anything else.
 */
MG_NODISCARD mg_status mg_oci_parse_ref(const char *s, mg_oci_ref *out, mg_error *err);

/* The canonical text of a digest reference: "oci://host[:port]/repo@sha256:hex" (malloc'd). */
char *mg_oci_canonical(const mg_oci_ref *ref);

/* "https://HOST/v2/REPO/manifests/REFERENCE" or ".../blobs/sha256:HEX" (malloc'd). */
char *mg_oci_manifest_url(const mg_oci_ref *ref);
char *mg_oci_blob_url(const mg_oci_ref *ref, const uint8_t digest[32]);

/*
 * The files of an artifact from its manifest bytes (already checked against the pin): one
 * pinned file per layer, sorted by path. MG_E_SIGNATURE ("manifest failure") for a manifest
 * that is not a usable OCI/Docker image manifest, a layer without a safe title, duplicate
 * titles, a digest that is not sha256, or a layer meant to be unpacked.
 */
MG_NODISCARD mg_status mg_oci_manifest_files(const uint8_t *data, size_t len,
                                             mg_pinned_file **files, size_t *count,
                                             mg_error *err);

#endif
