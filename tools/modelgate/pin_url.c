/* policy pin for an https URL: download once over the same HTTPS rules as a load (verified
 * TLS, https-only same-host redirects, capped), hash, and print the entry. Trust on first use
 * is explicit here: the person pinning decides that what is served now is right. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "digest.h"
#include "fetch.h"
#include "oci.h"
#include "policy.h"
#include "source.h"
#include "util/hex.h"

int mg_cli_pin_url(const char *name, mg_digest_alg alg, const char *url, const char *ca_file,
                   bool json, bool quiet)
{
    char *canon = NULL;
    mg_source_info info;
    mg_error err;
    mg_error_clear(&err);
    if (mg_source_normalize_url(url, &canon, &info, &err) != MG_OK || info.directory) {
        free(canon);
        return mg_cli_usage("pin takes an https URL of a single file (%s)",
                            err.message[0] ? err.message : "a directory URL cannot be listed");
    }
    if (ca_file == NULL)
        ca_file = getenv("SSL_CERT_FILE");
    mg_fetch_config cfg = {.ca_file = ca_file, .redirects = MG_REDIRECTS_SAME_HOST};
    mg_region r;
    uint8_t digest[MG_DIGEST_MAX];
    int rc = 0;
    if (mg_fetch_region(&cfg, canon, MG_MAX_MODEL_FILE_BYTES, false, alg, &r, digest, NULL,
                        &err) != MG_OK) {
        free(canon);
        return mg_cli_report(&err, json);
    }
    char hex[129];
    mg_hex_encode(digest, mg_digest_len(alg), hex);
    char defname[129] = "model";
    const char *base = strrchr(canon, '/');
    if (base != NULL && base[1] != '\0') {
        size_t j = 0;
        for (const char *c = base + 1; *c != '\0' && j < 128; c++) {
            bool ok = (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
                      (*c >= '0' && *c <= '9') || *c == '.' || *c == '_' || *c == '-';
            defname[j++] = ok ? *c : '_';
        }
        defname[j] = '\0';
        char *dot = strrchr(defname, '.');
        if (dot != NULL && dot != defname)
            *dot = '\0';
    }
    json_t *entry = json_object();
    json_object_set_new(entry, "name", json_string(name != NULL ? name : defname));
    json_object_set_new(entry, "source", json_string(url));
    json_object_set_new(entry, mg_digest_name(alg), json_string(hex));
    json_object_set_new(entry, "size", json_integer((json_int_t)r.len));
    if (!quiet && json) {
        json_t *doc = json_pack("{s:b,s:O,s:[]}", "ok", 1, "entry", entry, "notes");
        rc = mg_cli_print_json(doc);
        json_decref(doc);
    } else if (!quiet) {
        char *s = json_dumps(entry, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (s != NULL)
            puts(s);
        else
            rc = MG_E_LIMIT;
        free(s);
    }
    json_decref(entry);
    mg_region_free(&r);
    free(canon);
    return rc;
}

/* policy pin for an oci:// reference: resolve a tag (or check a digest) once, by fetching
 * the manifest over the load's HTTPS rules, and print an entry pinned by the manifest digest.
 * With a policy (-p), its ca_file and credentials are used. */
int mg_cli_pin_oci(const char *name, const char *ref_text, const char *ca_file,
                   const char *policy_path)
{
    mg_error err;
    mg_error_clear(&err);
    mg_oci_ref ref;
    if (mg_oci_parse_ref(ref_text, &ref, &err) != MG_OK)
        return mg_cli_usage("%s", err.message);
    mg_policy *pol = NULL;
    if (policy_path != NULL && mg_policy_open(policy_path, NULL, &pol, &err) != MG_OK)
        return mg_cli_report(&err, false);
    if (ca_file == NULL && pol != NULL)
        ca_file = pol->ca_file;
    if (ca_file == NULL)
        ca_file = getenv("SSL_CERT_FILE");
    char *url = mg_oci_manifest_url(&ref);
    mg_fetch_config cfg = {.ca_file = ca_file, .redirects = MG_REDIRECTS_SAME_HOST, .pol = pol,
                           .accept = MG_OCI_MANIFEST_ACCEPT};
    mg_region r = {0};
    uint8_t digest[MG_DIGEST_MAX];
    mg_status s = url == NULL ? mg_fail(&err, MG_E_LIMIT, "out of memory")
                              : mg_fetch_region(&cfg, url, MG_OCI_MAX_MANIFEST_BYTES, false,
                                                MG_SHA256, &r, digest, NULL, &err);
    free(url);
    mg_pinned_file *files = NULL;
    size_t count = 0;
    if (s == MG_OK && ref.has_digest && !mg_digest_equal(digest, ref.digest, 32))
        s = mg_fail(&err, MG_E_INTEGRITY, "the registry's manifest does not have the digest "
                    "named");
    /* Check now that it is a usable artifact, so a bad pin is not written. */
    if (s == MG_OK)
        s = mg_oci_manifest_files(r.data, r.len, &files, &count, &err);
    for (size_t i = 0; i < count; i++)
        free(files[i].path);
    free(files);
    mg_region_free(&r);
    mg_policy_close(pol);
    if (s != MG_OK)
        return mg_cli_report(&err, false);
    mg_hex_encode(digest, 32, ref.digest_hex);
    memcpy(ref.digest, digest, 32);
    ref.has_digest = true;
    char *canon = mg_oci_canonical(&ref);
    char defname[129];
    const char *base = strrchr(ref.repo, '/');
    mg_strlcpy(defname, base != NULL ? base + 1 : ref.repo, sizeof defname);
    json_t *entry = json_object();
    json_object_set_new(entry, "name", json_string(name != NULL ? name : defname));
    json_object_set_new(entry, "source", json_string(canon != NULL ? canon : ""));
    char *out = json_dumps(entry, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (out != NULL)
        puts(out);
    free(out);
    free(canon);
    json_decref(entry);
    return out != NULL ? 0 : MG_E_LIMIT;
}
