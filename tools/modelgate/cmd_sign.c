/* modelgate sign -k KEY [-n NAME] [-V VERSION] [--expires TIME] [-a sha256|sha512] DIR */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cli.h"
#include "digest.h"
#include "internal.h"
#include "keys.h"
#include "manifest.h"


/* A decimal version from 1 to 2^63-1, digits only. */
static bool parse_version(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9' || v > (INT64_MAX - (uint64_t)(*s - '0')) / 10)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return v >= 1;
}

/* Say what was signed: the name and version as the manifest carries them (read back). */
static int report_signed(const char *dir, const char *sig_name, bool json, bool quiet)
{
    if (quiet)
        return 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, MG_MANIFEST_NAME);
    json_error_t jerr;
    json_t *man = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    const char *mname = json_string_value(json_object_get(man, "name"));
    json_int_t ver = json_integer_value(json_object_get(man, "version"));
    size_t nfiles = json_array_size(json_object_get(man, "files"));
    int rc = 0;
    if (json) {
        json_t *doc = json_object();
        json_object_set_new(doc, "ok", json_true());
        json_object_set_new(doc, "name", mname ? json_string(mname) : json_null());
        json_object_set_new(doc, "version", json_integer(ver));
        json_object_set_new(doc, "files", json_integer((json_int_t)nfiles));
        json_object_set_new(doc, "manifest", json_string(path));
        json_object_set_new(doc, "signature", json_sprintf("%s/%s", dir, sig_name));
        rc = mg_cli_print_json(doc);
        json_decref(doc);
    } else {
        printf("signed %s version %lld (%zu file%s): %s and %s/%s\n", mname ? mname : "?",
               (long long)ver, nfiles, nfiles == 1 ? "" : "s", path, dir, sig_name);
    }
    json_decref(man);
    return rc;
}

int mg_cmd_sign(int argc, char **argv)
{
    const char *key = NULL, *name = NULL, *expires = NULL;
    uint64_t version = 1;
    mg_digest_alg alg = MG_SHA256;
    static const struct option longopts[] = {
        {"key", required_argument, NULL, 'k'},
        {"name", required_argument, NULL, 'n'},
        {"version", required_argument, NULL, 'V'},
        {"expires", required_argument, NULL, 'e'},
        {"algorithm", required_argument, NULL, 'a'},
        {"json", no_argument, NULL, MG_OPT_JSON},
        {"quiet", no_argument, NULL, 'q'},
        {NULL, 0, NULL, 0},
    };
    optind = 1;
    opterr = 0;
    int c;
    bool json = false, quiet = false;
    while ((c = getopt_long(argc, argv, ":k:n:V:a:q", longopts, NULL)) != -1) {
        switch (c) {
        case 'q': quiet = true; break;
        case MG_OPT_JSON: json = true; break;
        case 'k': key = optarg; break;
        case 'n': name = optarg; break;
        case 'e': expires = optarg; break;
        case 'V':
            if (!parse_version(optarg, &version))
                return mg_cli_usage("-V takes an integer from 1 to 2^63-1");
            break;
        case 'a':
            if (!mg_digest_from_name(optarg, &alg))
                return mg_cli_usage("-a takes sha256 or sha512");
            break;
        default: return mg_cli_bad_option(c, argv, "sign");
        }
    }
    if (key == NULL)
        return mg_cli_usage("-k KEY is required; %s", mg_cli_usage_text("sign"));
    if (optind + 1 != argc)
        return mg_cli_usage("%s; %s", optind == argc ? "missing operand DIR" : "extra operand",
                            mg_cli_usage_text("sign"));
    const char *dir = argv[optind];
    int64_t when;
    if (expires != NULL && !mg_manifest_parse_time(expires, &when))
        return mg_cli_usage("--expires takes a UTC time YYYY-MM-DDTHH:MM:SSZ");
    if (expires != NULL && when <= (int64_t)time(NULL))
        fprintf(stderr, "modelgate: warning: the expiry %s is in the past: verifiers will "
                "refuse this manifest\n", expires);
    mg_error err;
    mg_error_clear(&err);
    if (mg_sign_dir(key, dir, name, version, expires, alg, &err) != MG_OK)
        return mg_cli_report(&err, json);
    return report_signed(dir, MG_MANIFEST_NAME ".sig", json, quiet);
}
