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
#include "digest.h"
#include "policy.h"

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
        printf("%s\n", mg_cli_esc(problem));
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
        printf("policy %s is valid\n", mg_cli_esc(mg_policy_path(pol)));
    }
    mg_policy_close(pol);
    return rc;
}

/* policy list: the model names (for people, and for shell completion). */
static int policy_list(int argc, char **argv)
{
    mg_cli_opts o;
    int rc = mg_cli_parse_common(argc, argv, &o, 0, 0, "policy list");
    if (rc != 0)
        return rc;
    mg_policy *pol;
    if ((rc = mg_cli_open_policy(&o, &pol)) != 0)
        return rc;
    json_t *models = json_array();
    for (size_t i = 0; i < pol->model_count; i++) {
        const mg_policy_model *m = &pol->models[i];
        const char *kind = m->kind == MG_MODEL_PINNED_FILE  ? "file"
                           : m->kind == MG_MODEL_PINNED_DIR ? "files"
                                                            : "manifest";
        if (o.json)
            json_array_append_new(models, json_pack("{s:s,s:s,s:s}", "name", m->name, "source",
                                                     m->source, "kind", kind));
        else if (!o.quiet)
            printf("%s\t%s\t%s\n", m->name, kind, m->source);
    }
    if (o.json && !o.quiet) {
        json_t *doc = json_pack("{s:b,s:s,s:O}", "ok", 1, "policy", mg_policy_path(pol), "models",
                                models);
        rc = mg_cli_print_json(doc);
        json_decref(doc);
    }
    json_decref(models);
    mg_policy_close(pol);
    return rc == 0 && fflush(stdout) != 0 ? MG_E_IO : rc;
}

static int policy_pin(int argc, char **argv)
{
    mg_pin_request req;
    memset(&req, 0, sizeof req);
    req.alg = MG_SHA256;
    const char *ignore[64];
    const char *policy = NULL; /* for oci://: its ca_file and credentials */
    enum { OPT_CA_FILE = MG_OPT_FIRST_FREE, OPT_IGNORE, OPT_SUMS };
    static const struct option longopts[] = {
        {"name", required_argument, NULL, 'n'},
        {"policy", required_argument, NULL, 'p'},
        {"algorithm", required_argument, NULL, 'a'},
        {"ca-file", required_argument, NULL, OPT_CA_FILE},
        {"ignore", required_argument, NULL, OPT_IGNORE},
        {"sums", required_argument, NULL, OPT_SUMS},
        {"json", no_argument, NULL, MG_OPT_JSON},
        {"quiet", no_argument, NULL, 'q'},
        {NULL, 0, NULL, 0},
    };
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":n:a:p:q", longopts, NULL)) != -1) {
        switch (c) {
        case 'n': req.name = optarg; break;
        case 'p': policy = optarg; break;
        case OPT_CA_FILE: req.ca_file = optarg; break;
        case OPT_SUMS: req.sums = optarg; break;
        case OPT_IGNORE:
            if (req.ignore_count >= sizeof ignore / sizeof ignore[0])
                return mg_cli_usage("at most 64 --ignore patterns");
            ignore[req.ignore_count++] = optarg;
            break;
        case 'q': req.quiet = true; break;
        case MG_OPT_JSON: req.json = true; break;
        case 'a':
            if (!mg_digest_from_name(optarg, &req.alg))
                return mg_cli_usage("-a takes sha256 or sha512");
            break;
        default: return mg_cli_bad_option(c, argv, "policy pin");
        }
    }
    if (argc - optind != 1)
        return mg_cli_usage("%s; %s", optind == argc ? "missing operand PATH|URL" : "extra operand",
                            mg_cli_usage_text("policy pin"));
    req.target = argv[optind];
    req.ignore = ignore;
    if (strncasecmp(req.target, "oci://", 6) == 0) {
        if (req.sums != NULL || req.ignore_count > 0)
            return mg_cli_usage("--sums and --ignore are for local files and folders");
        return mg_cli_pin_oci(req.name, req.target, req.ca_file, policy);
    }
    if (strstr(req.target, "://") != NULL) {
        if (req.sums != NULL || req.ignore_count > 0)
            return mg_cli_usage("--sums and --ignore are for local files and folders");
        return mg_cli_pin_url(req.name, req.alg, req.target, req.ca_file, req.json, req.quiet);
    }
    return mg_cli_pin_local(&req);
}

int mg_cmd_policy(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "check") == 0)
        return policy_check(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "pin") == 0)
        return policy_pin(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "list") == 0)
        return policy_list(argc - 1, argv + 1);
    return mg_cli_usage("%s", argc >= 2 ? "policy takes 'check', 'list' or 'pin'"
                                         : "policy takes 'check', 'list' or 'pin' (modelgate help policy)");
}
