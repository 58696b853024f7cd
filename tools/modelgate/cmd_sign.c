/* modelgate sign -k KEY [-n NAME] [-V VERSION] [--expires TIME] [-a sha256|sha512]
 *                [--shard-size BYTES] DIR
 * modelgate sign --format oms -k KEY [--shard-size BYTES] DIR   (OMS bundle DIR/model.sig) */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "digest.h"
#include "internal.h"
#include "keys.h"
#include "manifest.h"

#define SIGN_USAGE \
    "sign -k KEY [-n NAME] [-V VERSION] [--expires YYYY-MM-DDTHH:MM:SSZ] [-a sha256|sha512]\n" \
    "            [--shard-size BYTES] DIR\n" \
    "       modelgate sign --format oms -k KEY [--shard-size BYTES] DIR"

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

int mg_cmd_sign(int argc, char **argv)
{
    const char *key = NULL, *name = NULL, *expires = NULL;
    uint64_t version = 1;
    mg_digest_alg alg = MG_SHA256;
    bool oms = false, manifest_only = false;
    uint64_t shard_size = 0;
    static const struct option longopts[] = {
        {"format", required_argument, NULL, 'f'},
        {"shard-size", required_argument, NULL, 's'},
        {"key", required_argument, NULL, 'k'},
        {"name", required_argument, NULL, 'n'},
        {"version", required_argument, NULL, 'V'},
        {"expires", required_argument, NULL, 'e'},
        {"algorithm", required_argument, NULL, 'a'},
        {NULL, 0, NULL, 0},
    };
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "+k:n:V:a:", longopts, NULL)) != -1) {
        switch (c) {
        case 'k': key = optarg; break;
        case 'f':
            if (strcmp(optarg, "oms") == 0)
                oms = true;
            else if (strcmp(optarg, "manifest") != 0)
                return mg_cli_usage("--format takes manifest or oms");
            break;
        case 's':
            if (!parse_version(optarg, &shard_size))
                return mg_cli_usage("--shard-size takes a number of bytes from 1");
            break;
        case 'n': name = optarg; manifest_only = true; break;
        case 'e': expires = optarg; manifest_only = true; break;
        case 'V':
            if (!parse_version(optarg, &version))
                return mg_cli_usage("-V takes an integer from 1 to 2^63-1");
            manifest_only = true;
            break;
        case 'a':
            if (!mg_digest_from_name(optarg, &alg))
                return mg_cli_usage("-a takes sha256 or sha512");
            break;
        default: return mg_cli_usage(SIGN_USAGE);
        }
    }
    if (key == NULL || optind + 1 != argc)
        return mg_cli_usage(SIGN_USAGE);
    const char *dir = argv[optind];
    if (oms && (manifest_only || alg != MG_SHA256))
        return mg_cli_usage("-n, -V, --expires and -a sha512 are for manifests, not --format oms");
    if (oms) {
        mg_error oerr;
        mg_error_clear(&oerr);
        if (mg_sign_oms(key, dir, shard_size, &oerr) != MG_OK)
            return mg_cli_report(&oerr, false);
        printf("signed %s/model.sig (OMS v1.0, %s)\n", dir, shard_size > 0 ? "shards" : "files");
        return 0;
    }
    int64_t when;
    if (expires != NULL && !mg_manifest_parse_time(expires, &when))
        return mg_cli_usage("--expires takes a UTC time YYYY-MM-DDTHH:MM:SSZ");
    if (expires != NULL && when <= (int64_t)time(NULL))
        fprintf(stderr, "modelgate: warning: the expiry %s is in the past: verifiers will "
                "refuse this manifest\n", expires);
    mg_error err;
    mg_error_clear(&err);
    if (shard_size > 0 && alg != MG_SHA256)
        return mg_cli_usage("--shard-size needs -a sha256");
    if (mg_sign_dir(key, dir, name, version, expires, alg, shard_size, &err) != MG_OK)
        return mg_cli_report(&err, false);
    printf("signed %s/%s and %s/%s.sig\n", mg_cli_esc(dir), MG_MANIFEST_NAME, mg_cli_esc(dir),
           MG_MANIFEST_NAME);
    return 0;
}
