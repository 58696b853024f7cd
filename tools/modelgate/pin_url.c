/* policy pin for an https URL: download once over the same HTTPS rules as a load (verified
 * TLS, https-only same-host redirects, capped), hash, and print the entry. Trust on first use
 * is explicit here: the person pinning decides that what is served now is right. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "fetch.h"
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
    mg_fetch_config cfg = {ca_file, MG_REDIRECTS_SAME_HOST};
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
