/*
 * modelgate fetch [-p POLICY] [--policy-key KEY] [--json] [-q] SOURCE
 *
 * Download (or read) a model, verify it exactly as `verify` does, and publish every verified
 * file to the policy's cache_dir as cache_dir/sha256/<hex>. Prints one line per file: its
 * absolute cache path (a single-file model prints exactly one line). With --json, one object:
 * {"ok":true,"model":...,"source":...,"files":[{"path","size","sha256"|"sha512","cache_path"}]}.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"

static int print_paths_json(const mg_model *m)
{
    json_t *files = json_array();
    for (size_t i = 0; i < mg_model_file_count(m); i++) {
        mg_file_info fi;
        if (mg_model_file(m, i, &fi) != MG_OK)
            continue;
        json_t *f = json_object();
        json_object_set_new(f, "path", json_string(fi.path));
        json_object_set_new(f, "size", json_integer((json_int_t)fi.size));
        json_object_set_new(f, fi.algorithm, json_string(fi.digest));
        json_object_set_new(f, "cache_path", json_string(mg_model_cache_path(m, i)));
        json_array_append_new(files, f);
    }
    json_t *doc = json_object();
    json_object_set_new(doc, "ok", json_true());
    json_object_set_new(doc, "model", json_string(mg_model_name(m)));
    json_object_set_new(doc, "source", json_string(mg_model_source(m)));
    json_object_set_new(doc, "files", files);
    int rc = mg_cli_print_json(doc);
    json_decref(doc);
    return rc;
}

int mg_cmd_fetch(int argc, char **argv)
{
    mg_cli_opts o;
    int rc = mg_cli_parse_common(argc, argv, &o, 1, 1, "fetch");
    if (rc != 0)
        return rc;
    mg_policy *pol;
    mg_model *m;
    if ((rc = mg_cli_open_model(&o, MG_CLI_FETCH, &pol, &m)) != 0)
        return rc;
    mg_error err;
    /* Every file of a fetched model has a cache path; one missing is our bug, not the user's. */
    for (size_t i = 0; i < mg_model_file_count(m); i++) {
        if (mg_model_cache_path(m, i) == NULL) {
            memset(&err, 0, sizeof err);
            err.status = MG_E_LIMIT;
            snprintf(err.model, sizeof err.model, "%s", mg_model_name(m));
            snprintf(err.message, sizeof err.message, "file %zu has no cache path", i);
            rc = mg_cli_report(&err, o.json);
            mg_model_close(m);
            mg_policy_close(pol);
            return rc;
        }
    }
    if (o.quiet) {
        /* -q: the exit status says it all. */
    } else if (o.json) {
        rc = print_paths_json(m);
    } else {
        for (size_t i = 0; i < mg_model_file_count(m); i++)
            printf("%s\n", mg_cli_esc(mg_model_cache_path(m, i)));
    }
    mg_model_close(m);
    mg_policy_close(pol);
    if (rc == 0 && fflush(stdout) != 0)
        rc = MG_E_IO;
    return rc;
}
