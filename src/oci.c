/* OCI references, URLs and artifact manifests (oci.h). */
#define _GNU_SOURCE
#include "oci.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "manifest.h"
#include "util/hex.h"
#include "util/json.h"
#include "util/utf8.h"

bool mg_oci_is_ref(const char *s)
{
    return s != NULL && strncasecmp(s, MG_OCI_SCHEME, 6) == 0;
}

static bool lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* One path component of a repository: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* */
static bool repo_component_ok(const char *s, size_t n)
{
    if (n == 0 || !lower_alnum(s[0]) || !lower_alnum(s[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (lower_alnum(s[i]))
            continue;
        size_t run = 0;
        char c = s[i];
        if (c != '.' && c != '_' && c != '-')
            return false;
        while (i + run < n && s[i + run] == c)
            run++;
        if ((c == '.' && run > 1) || (c == '_' && run > 2))
            return false;
        i += run - 1;
    }
    return true;
}

static bool repo_ok(const char *s, size_t n)
{
    if (n == 0 || n > MG_OCI_REPO_MAX)
        return false;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '/') {
            if (!repo_component_ok(s + start, i - start))
                return false;
            start = i + 1;
        }
    }
    return true;
}

static bool tag_ok(const char *s, size_t n)
{
    if (n == 0 || n > MG_OCI_TAG_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool w = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_';
        if (!w && (i == 0 || (c != '.' && c != '-')))
            return false;
    }
    return true;
}

/* host: a DNS name or IPv4 address ([A-Za-z0-9.-]), or [IPv6]; optional :port (1-65535). */
static bool host_ok(const char *s, size_t n, char *out, size_t cap)
{
    if (n == 0 || n >= cap)
        return false;
    size_t hlen = n;
    const char *colon = NULL;
    if (s[0] == '[') {
        const char *rb = memchr(s, ']', n);
        if (rb == NULL)
            return false;
        for (const char *p = s + 1; p < rb; p++)
            if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F') ||
                  *p == ':' || *p == '.'))
                return false;
        hlen = (size_t)(rb - s) + 1;
        if (hlen < n) {
            if (s[hlen] != ':')
                return false;
            colon = s + hlen;
        }
    } else {
        colon = memchr(s, ':', n);
        if (colon != NULL)
            hlen = (size_t)(colon - s);
        for (size_t i = 0; i < hlen; i++) {
            char c = s[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '-'))
                return false;
        }
    }
    if (hlen == 0 || (s[0] != '[' && (s[0] == '-' || s[0] == '.')))
        return false;
    size_t o = 0;
    for (size_t i = 0; i < hlen; i++)
        out[o++] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
    if (colon != NULL) {
        const char *p = colon + 1;
        size_t plen = n - (size_t)(p - s);
        unsigned long port = 0;
        if (plen == 0 || plen > 5)
            return false;
        for (size_t i = 0; i < plen; i++) {
            if (p[i] < '0' || p[i] > '9')
                return false;
            port = port * 10 + (unsigned long)(p[i] - '0');
        }
        if (port == 0 || port > 65535)
            return false;
        if (port != 443)
            o += (size_t)snprintf(out + o, cap - o, ":%lu", port);
    }
    out[o] = '\0';
    return true;
}

mg_status mg_oci_parse_ref(const char *s, mg_oci_ref *out, mg_error *err)
{
    memset(out, 0, sizeof *out);
    if (!mg_oci_is_ref(s))
        return mg_fail(err, MG_E_UNTRUSTED, "not an oci:// reference");
    const char *rest = s + 6;
    for (const char *p = rest; *p != '\0'; p++) {
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return mg_fail(err, MG_E_UNTRUSTED, "oci reference contains a space or control "
                           "character");
    }
    const char *slash = strchr(rest, '/');
    if (slash == NULL)
        return mg_fail(err, MG_E_UNTRUSTED, "oci reference has no repository "
                       "(oci://HOST[:PORT]/REPO@sha256:DIGEST)");
    if (memchr(rest, '@', (size_t)(slash - rest)) != NULL)
        return mg_fail(err, MG_E_UNTRUSTED, "oci reference has user information");
    if (!host_ok(rest, (size_t)(slash - rest), out->host, sizeof out->host))
        return mg_fail(err, MG_E_UNTRUSTED, "oci reference has an invalid host or port");
    const char *repo = slash + 1;
    const char *at = strchr(repo, '@');
    size_t rlen;
    if (at != NULL) {
        rlen = (size_t)(at - repo);
        const char *d = at + 1;
        if (strncmp(d, "sha256:", 7) != 0)
            return mg_fail(err, MG_E_UNTRUSTED, "oci digest must be sha256:<64 hex digits>");
        d += 7;
        if (strlen(d) != 64 || strspn(d, "0123456789abcdef") != 64 ||
            !mg_hex_decode(d, out->digest, 32))
            return mg_fail(err, MG_E_UNTRUSTED, "oci digest must be sha256: and 64 lower-case "
                           "hex digits");
        memcpy(out->digest_hex, d, 65);
        out->has_digest = true;
    } else {
        const char *colon = strrchr(repo, ':');
        if (colon == NULL)
            return mg_fail(err, MG_E_UNTRUSTED, "oci reference has neither a digest nor a tag");
        rlen = (size_t)(colon - repo);
        if (!tag_ok(colon + 1, strlen(colon + 1)))
            return mg_fail(err, MG_E_UNTRUSTED, "oci reference has an invalid tag");
        memcpy(out->tag, colon + 1, strlen(colon + 1) + 1);
        out->has_tag = true;
    }
    if (!repo_ok(repo, rlen))
        return mg_fail(err, MG_E_UNTRUSTED, "oci repository name is invalid (lower-case "
                       "[a-z0-9] components joined by '.', '_', '__' or '-', separated by '/')");
    memcpy(out->repo, repo, rlen);
    out->repo[rlen] = '\0';
    return MG_OK;
}

char *mg_oci_canonical(const mg_oci_ref *ref)
{
    char *s = NULL;
    if (!ref->has_digest)
        return NULL;
    if (asprintf(&s, "oci://%s/%s@sha256:%s", ref->host, ref->repo, ref->digest_hex) < 0)
        return NULL;
    return s;
}

char *mg_oci_manifest_url(const mg_oci_ref *ref)
{
    char *s = NULL;
    int n = ref->has_digest
                ? asprintf(&s, "https://%s/v2/%s/manifests/sha256:%s", ref->host, ref->repo,
                           ref->digest_hex)
                : asprintf(&s, "https://%s/v2/%s/manifests/%s", ref->host, ref->repo, ref->tag);
    return n < 0 ? NULL : s;
}

char *mg_oci_blob_url(const mg_oci_ref *ref, const uint8_t digest[32])
{
    char hex[65];
    mg_hex_encode(digest, 32, hex);
    char *s = NULL;
    if (asprintf(&s, "https://%s/v2/%s/blobs/sha256:%s", ref->host, ref->repo, hex) < 0)
        return NULL;
    return s;
}

static int cmp_pin(const void *a, const void *b)
{
    return strcmp(((const mg_pinned_file *)a)->path, ((const mg_pinned_file *)b)->path);
}

static void free_files(mg_pinned_file *files, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(files[i].path);
    free(files);
}

static const char TITLE[] = "org.opencontainers.image.title";

mg_status mg_oci_manifest_files(const uint8_t *data, size_t len, mg_pinned_file **files,
                                size_t *count, mg_error *err)
{
    *files = NULL;
    *count = 0;
    json_t *root = mg_json_parse(data, len, "OCI manifest", MG_E_SIGNATURE,
                                 &mg_json_caps_manifest, err);
    if (root == NULL)
        return err->status;
    mg_status s = MG_OK;
    mg_pinned_file *out = NULL;
    size_t n = 0;
    json_t *ver = json_object_get(root, "schemaVersion");
    json_t *mt = json_object_get(root, "mediaType");
    json_t *layers = json_object_get(root, "layers");
    const char *mts = json_is_string(mt) ? json_string_value(mt) : NULL;
    if (!json_is_object(root) || !json_is_integer(ver) || json_integer_value(ver) != 2) {
        s = mg_fail(err, MG_E_SIGNATURE, "OCI manifest: schemaVersion must be 2");
        goto done;
    }
    if (mt != NULL && (mts == NULL ||
                       (strcmp(mts, "application/vnd.oci.image.manifest.v1+json") != 0 &&
                        strcmp(mts, "application/vnd.docker.distribution.manifest.v2+json") != 0))) {
        s = mg_fail(err, MG_E_SIGNATURE, "OCI manifest: media type '%.100s' is not an image "
                    "manifest (an index must be resolved to one manifest and that pinned)",
                    mts != NULL ? mts : "?");
        goto done;
    }
    if (!json_is_array(layers) || json_array_size(layers) == 0) {
        s = mg_fail(err, MG_E_SIGNATURE, "OCI manifest: no layers");
        goto done;
    }
    if (json_array_size(layers) > MG_OCI_MAX_LAYERS) {
        s = mg_fail(err, MG_E_LIMIT, "OCI manifest: more than %u layers", MG_OCI_MAX_LAYERS);
        goto done;
    }
    out = mg_calloc(json_array_size(layers), sizeof *out);
    if (out == NULL) {
        s = mg_fail(err, MG_E_LIMIT, "out of memory");
        goto done;
    }
    size_t i;
    json_t *l;
    json_array_foreach(layers, i, l) {
        json_t *dg = json_object_get(l, "digest");
        json_t *sz = json_object_get(l, "size");
        json_t *ann = json_object_get(l, "annotations");
        json_t *title = json_is_object(ann) ? json_object_get(ann, TITLE) : NULL;
        const char *d = json_is_string(dg) ? json_string_value(dg) : "";
        uint64_t size;
        if (!json_is_object(l)) {
            s = mg_fail(err, MG_E_SIGNATURE, "OCI manifest: layer %zu is not an object", i);
            break;
        }
        if (strncmp(d, "sha256:", 7) != 0 || strlen(d + 7) != 64 ||
            strspn(d + 7, "0123456789abcdef") != 64) {
            s = mg_fail(err, MG_E_SIGNATURE, "OCI manifest: layer %zu digest is not "
                        "sha256:<64 hex digits>", i);
            break;
        }
        if (!mg_json_u64(sz, &size) || size > MG_MAX_MODEL_FILE_BYTES) {
            s = mg_fail(err, MG_E_SIGNATURE, "OCI manifest: layer %zu size is missing or out "
                        "of range", i);
            break;
        }
        if (!json_is_string(title)) {
            s = mg_fail(err, MG_E_SIGNATURE, "OCI manifest: layer %zu has no %s annotation "
                        "(its file name)", i, TITLE);
            break;
        }
        if (json_is_object(ann) && json_object_get(ann, "io.deis.oras.content.unpack") != NULL) {
            s = mg_fail(err, MG_E_SIGNATURE, "OCI manifest: layer %zu is an archive meant to "
                        "be unpacked; push the files one per layer", i);
            break;
        }
        const char *t = json_string_value(title);
        if (!mg_manifest_path_ok(t) || !mg_utf8_valid((const uint8_t *)t, strlen(t))) {
            s = mg_fail(err, MG_E_SIGNATURE, "OCI manifest: layer %zu title is not a safe "
                        "relative path", i);
            break;
        }
        out[n].path = mg_strdup(t);
        if (out[n].path == NULL) {
            s = mg_fail(err, MG_E_LIMIT, "out of memory");
            break;
        }
        out[n].alg = MG_SHA256;
        if (!mg_hex_decode(d + 7, out[n].digest, 32)) {
            n++;
            s = mg_fail(err, MG_E_SIGNATURE, "OCI manifest: layer %zu digest", i);
            break;
        }
        out[n].has_size = true;
        out[n].size = size;
        n++;
    }
    if (s == MG_OK && n > 1) {
        qsort(out, n, sizeof *out, cmp_pin);
        for (size_t k = 1; k < n; k++) {
            if (strcmp(out[k - 1].path, out[k].path) == 0) {
                s = mg_fail(err, MG_E_SIGNATURE, "OCI manifest: two layers are titled "
                            "'%.200s'", out[k].path);
                break;
            }
        }
    }
done:
    json_decref(root);
    if (s != MG_OK) {
        free_files(out, n);
        return s;
    }
    *files = out;
    *count = n;
    return MG_OK;
}
