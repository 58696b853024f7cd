/* policy check | policy pin */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"

static void print_problem(const char *problem, void *ctx)
{
    int *count = ctx;
    (*count)++;
    printf("%s\n", problem);
}

static int policy_check(int argc, char **argv)
{
    mg_cli_opts o;
    int rc = mg_cli_parse_common(argc, argv, &o, 0, 0,
                                 "modelgate policy check [-p POLICY] [--policy-key KEY]");
    if (rc != 0)
        return rc;
    int count = 0;
    mg_error err;
    mg_status s = mg_policy_check(o.policy, o.policy_key, print_problem, &count, &err);
    if (s != MG_OK) {
        fprintf(stderr, "modelgate: %s: %d problem%s in the policy\n", mg_status_kind(s), count,
                count == 1 ? "" : "s");
        return (int)s;
    }
    mg_policy *pol;
    if (mg_policy_open(o.policy, o.policy_key, &pol, &err) != MG_OK)
        return mg_cli_report(&err, false);
    printf("policy %s is valid\n", mg_policy_path(pol));
    mg_policy_close(pol);
    return 0;
}

/* A model name from a file or folder name: the allowed characters only. */
static void default_name(const char *path, char *out, size_t cap)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    size_t n = strlen(tmp);
    while (n > 1 && tmp[n - 1] == '/')
        tmp[--n] = '\0';
    const char *base = strrchr(tmp, '/');
    base = base ? base + 1 : tmp;
    size_t j = 0;
    for (size_t i = 0; base[i] != '\0' && j + 1 < cap && j < 128; i++) {
        char c = base[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        out[j++] = ok ? c : '_';
    }
    out[j] = '\0';
    char *dot = strrchr(out, '.');
    if (dot != NULL && dot != out)
        *dot = '\0';
    if (out[0] == '\0')
        snprintf(out, cap, "model");
}

static int pin_tree(const char *root, const char *rel, mg_digest_alg alg, json_t *files,
                    int depth)
{
    char dir[2 * PATH_MAX + 2];
    snprintf(dir, sizeof dir, "%s/%s", root, rel);
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "modelgate: io: cannot read %s: %s\n", dir, strerror(errno));
        return MG_E_IO;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char sub[PATH_MAX], full[2 * PATH_MAX + 2];
        int n1 = snprintf(sub, sizeof sub, "%s%s", rel, e->d_name);
        int n2 = snprintf(full, sizeof full, "%s/%s", root, sub);
        if (n1 < 0 || (size_t)n1 >= sizeof sub || n2 < 0 || (size_t)n2 >= sizeof full) {
            fprintf(stderr, "modelgate: limit: path too long below %s\n", root);
            rc = MG_E_LIMIT;
            break;
        }
        struct stat st;
        if (lstat(full, &st) != 0) {
            fprintf(stderr, "modelgate: io: cannot stat %s: %s\n", full, strerror(errno));
            rc = MG_E_IO;
        } else if (S_ISDIR(st.st_mode) && depth < 16) {
            char next[PATH_MAX + 2];
            snprintf(next, sizeof next, "%s/", sub);
            rc = pin_tree(root, next, alg, files, depth + 1);
        } else if (S_ISREG(st.st_mode)) {
            char hex[129];
            mg_error err;
            if (mg_hash_file(full, alg, hex, &err) != MG_OK) {
                rc = mg_cli_report(&err, false);
            } else {
                json_t *f = json_object();
                json_object_set_new(f, alg == MG_SHA512 ? "sha512" : "sha256", json_string(hex));
                json_object_set_new(f, "size", json_integer((json_int_t)st.st_size));
                json_object_set_new(files, sub, f);
            }
        } else {
            fprintf(stderr, "modelgate: integrity: %s is a symlink or special file; a model "
                    "directory holds regular files only\n", full);
            rc = MG_E_INTEGRITY;
        }
    }
    closedir(d);
    return rc;
}

static int policy_pin(int argc, char **argv)
{
    const char *name = NULL, *target = NULL, *ca_file = NULL, *policy = NULL;
    mg_digest_alg alg = MG_SHA256;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
            name = argv[++i];
        } else if ((strcmp(argv[i], "-p") == 0 || strcmp(argv[i], "--policy") == 0) &&
                   i + 1 < argc) {
            policy = argv[++i]; /* for oci://: its ca_file and credentials */
        } else if (strcmp(argv[i], "--ca-file") == 0 && i + 1 < argc) {
            ca_file = argv[++i];
        } else if (strcmp(argv[i], "-a") == 0 && i + 1 < argc) {
            const char *a = argv[++i];
            if (strcmp(a, "sha256") == 0)
                alg = MG_SHA256;
            else if (strcmp(a, "sha512") == 0)
                alg = MG_SHA512;
            else
                return mg_cli_usage("-a takes sha256 or sha512");
        } else if (argv[i][0] == '-' || target != NULL) {
            return mg_cli_usage("modelgate policy pin [-n NAME] [-a sha256|sha512] [--ca-file PEM] PATH|URL");
        } else {
            target = argv[i];
        }
    }
    if (target == NULL)
        return mg_cli_usage("modelgate policy pin [-n NAME] [-a sha256|sha512] [--ca-file PEM] PATH|URL");
    if (strncasecmp(target, "oci://", 6) == 0)
        return mg_cli_pin_oci(name, target, ca_file, policy);
    if (strstr(target, "://") != NULL)
        return mg_cli_pin_url(name, alg, target, ca_file);
    char abs[PATH_MAX];
    if (realpath(target, abs) == NULL) {
        fprintf(stderr, "modelgate: io: cannot resolve %s: %s\n", target, strerror(errno));
        return MG_E_IO;
    }
    struct stat st;
    if (lstat(target, &st) != 0 || stat(abs, &st) != 0) {
        fprintf(stderr, "modelgate: io: cannot stat %s: %s\n", target, strerror(errno));
        return MG_E_IO;
    }
    char defname[160];
    default_name(abs, defname, sizeof defname);
    json_t *entry = json_object();
    json_object_set_new(entry, "name", json_string(name ? name : defname));
    int rc = 0;
    if (S_ISDIR(st.st_mode)) {
        char src[PATH_MAX + 2];
        snprintf(src, sizeof src, "%s/", strcmp(abs, "/") == 0 ? "" : abs);
        json_object_set_new(entry, "source", json_string(src));
        json_t *files = json_object();
        rc = pin_tree(abs, "", alg, files, 0);
        json_object_set_new(entry, "files", files);
    } else {
        char hex[129];
        mg_error err;
        json_object_set_new(entry, "source", json_string(abs));
        if (mg_hash_file(abs, alg, hex, &err) != MG_OK) {
            rc = mg_cli_report(&err, false);
        } else {
            json_object_set_new(entry, alg == MG_SHA512 ? "sha512" : "sha256", json_string(hex));
            json_object_set_new(entry, "size", json_integer((json_int_t)st.st_size));
        }
    }
    if (rc == 0) {
        char *s = json_dumps(entry, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_SORT_KEYS * 0);
        if (s != NULL)
            puts(s);
        free(s);
    }
    json_decref(entry);
    return rc;
}

int mg_cmd_policy(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "check") == 0)
        return policy_check(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "pin") == 0)
        return policy_pin(argc - 1, argv + 1);
    return mg_cli_usage("modelgate policy check|pin ...");
}
