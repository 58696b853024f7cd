/* policy check | policy pin */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"

typedef struct check_ctx {
    int count;
    json_t *problems; /* --json: collected, else printed */
} check_ctx;

static void print_problem(const char *problem, void *ctx)
{
    check_ctx *c = ctx;
    c->count++;
    if (c->problems != NULL)
        json_array_append_new(c->problems, json_string(problem));
    else
        printf("%s\n", problem);
}

static int policy_check(int argc, char **argv)
{
    mg_cli_opts o;
    int rc = mg_cli_parse_common(argc, argv, &o, 0, 0, "policy check");
    if (rc != 0)
        return rc;
    check_ctx cc = {0, o.json ? json_array() : NULL};
    mg_error err;
    mg_status s = mg_policy_check(o.policy, o.policy_key, o.quiet ? NULL : print_problem, &cc,
                                  &err);
    if (s != MG_OK) {
        char hint[1024];
        mg_cli_policy_hint(&o, &err, hint, sizeof hint);
        if (o.json) {
            json_t *doc = json_object();
            json_object_set_new(doc, "ok", json_false());
            json_object_set_new(doc, "problems", cc.problems);
            json_object_set_new(doc, "error", mg_cli_error_json(&err, NULL, hint));
            mg_cli_print_json(doc);
            json_decref(doc);
        }
        if (cc.count > 1)
            fprintf(stderr, "modelgate: %s: %d problems in the policy\n", mg_status_kind(s),
                    cc.count);
        return mg_cli_report_hint(&err, false, hint);
    }
    json_decref(cc.problems);
    mg_policy *pol;
    if (mg_policy_open(o.policy, o.policy_key, &pol, &err) != MG_OK)
        return mg_cli_report(&err, o.json);
    if (o.json && !o.quiet) {
        json_t *doc = json_object();
        json_object_set_new(doc, "ok", json_true());
        json_object_set_new(doc, "policy", json_string(mg_policy_path(pol)));
        json_object_set_new(doc, "problems", json_array());
        rc = mg_cli_print_json(doc);
        json_decref(doc);
    } else if (!o.quiet) {
        printf("policy %s is valid\n", mg_policy_path(pol));
    }
    mg_policy_close(pol);
    return rc;
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
                    int depth, bool json)
{
    char dir[2 * PATH_MAX + 2];
    snprintf(dir, sizeof dir, "%s/%s", root, rel);
    DIR *d = opendir(dir);
    if (d == NULL) {
        return mg_cli_fail(MG_E_IO, json, NULL, "cannot read %s: %s", dir, strerror(errno));
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
            rc = mg_cli_fail(MG_E_LIMIT, json, NULL, "path too long below %s", root);
            break;
        }
        struct stat st;
        if (lstat(full, &st) != 0) {
            rc = mg_cli_fail(MG_E_IO, json, NULL, "cannot stat %s: %s", full, strerror(errno));
        } else if (S_ISDIR(st.st_mode) && depth < 16) {
            char next[PATH_MAX + 2];
            snprintf(next, sizeof next, "%s/", sub);
            rc = pin_tree(root, next, alg, files, depth + 1, json);
        } else if (S_ISREG(st.st_mode)) {
            char hex[129];
            mg_error err;
            if (mg_hash_file(full, alg, hex, &err) != MG_OK) {
                rc = mg_cli_report(&err, json);
            } else {
                json_t *f = json_object();
                json_object_set_new(f, alg == MG_SHA512 ? "sha512" : "sha256", json_string(hex));
                json_object_set_new(f, "size", json_integer((json_int_t)st.st_size));
                json_object_set_new(files, sub, f);
            }
        } else {
            rc = mg_cli_fail(MG_E_INTEGRITY, json, sub, "%s is a symlink or special file; a "
                             "model directory holds regular files only", full);
        }
    }
    closedir(d);
    return rc;
}

/* Print the pinned entry: as it goes into a policy (indented), or under --json as
 * {"ok":true,"entry":{...}}; nothing with -q. */
static int print_entry(json_t *entry, bool json, bool quiet)
{
    if (quiet)
        return 0;
    if (json) {
        json_t *doc = json_pack("{s:b,s:O}", "ok", 1, "entry", entry);
        int rc = mg_cli_print_json(doc);
        json_decref(doc);
        return rc;
    }
    char *s = json_dumps(entry, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s == NULL)
        return mg_cli_fail(MG_E_LIMIT, false, NULL, "cannot encode the entry");
    puts(s);
    free(s);
    return 0;
}

static int policy_pin(int argc, char **argv)
{
    const char *name = NULL, *target = NULL, *ca_file = NULL;
    mg_digest_alg alg = MG_SHA256;
    bool json = false, quiet = false;
    enum { OPT_CA_FILE = MG_OPT_FIRST_FREE };
    static const struct option longopts[] = {
        {"name", required_argument, NULL, 'n'},
        {"algorithm", required_argument, NULL, 'a'},
        {"ca-file", required_argument, NULL, OPT_CA_FILE},
        {"json", no_argument, NULL, MG_OPT_JSON},
        {"quiet", no_argument, NULL, 'q'},
        {NULL, 0, NULL, 0},
    };
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":n:a:q", longopts, NULL)) != -1) {
        switch (c) {
        case 'n': name = optarg; break;
        case OPT_CA_FILE: ca_file = optarg; break;
        case 'q': quiet = true; break;
        case MG_OPT_JSON: json = true; break;
        case 'a':
            if (strcmp(optarg, "sha256") == 0)
                alg = MG_SHA256;
            else if (strcmp(optarg, "sha512") == 0)
                alg = MG_SHA512;
            else
                return mg_cli_usage("-a takes sha256 or sha512");
            break;
        default: return mg_cli_bad_option(c, argv, "policy pin");
        }
    }
    if (argc - optind != 1)
        return mg_cli_usage("%s; %s", optind == argc ? "missing operand PATH|URL" : "extra operand",
                            mg_cli_usage_text("policy pin"));
    target = argv[optind];
    if (strstr(target, "://") != NULL)
        return mg_cli_pin_url(name, alg, target, ca_file, json, quiet);
    char abs[PATH_MAX];
    if (realpath(target, abs) == NULL)
        return mg_cli_fail(MG_E_IO, json, NULL, "cannot resolve %s: %s", target, strerror(errno));
    struct stat st;
    if (lstat(target, &st) != 0 || stat(abs, &st) != 0)
        return mg_cli_fail(MG_E_IO, json, NULL, "cannot stat %s: %s", target, strerror(errno));
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
        rc = pin_tree(abs, "", alg, files, 0, json);
        json_object_set_new(entry, "files", files);
    } else {
        char hex[129];
        mg_error err;
        json_object_set_new(entry, "source", json_string(abs));
        if (mg_hash_file(abs, alg, hex, &err) != MG_OK) {
            rc = mg_cli_report(&err, json);
        } else {
            json_object_set_new(entry, alg == MG_SHA512 ? "sha512" : "sha256", json_string(hex));
            json_object_set_new(entry, "size", json_integer((json_int_t)st.st_size));
        }
    }
    if (rc == 0)
        rc = print_entry(entry, json, quiet);
    json_decref(entry);
    return rc;
}

int mg_cmd_policy(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "check") == 0)
        return policy_check(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "pin") == 0)
        return policy_pin(argc - 1, argv + 1);
    return mg_cli_usage("%s", argc >= 2 ? "policy takes 'check' or 'pin'"
                                         : "policy takes 'check' or 'pin' (modelgate help policy)");
}
