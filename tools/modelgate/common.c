/* Shared helpers of the command-line tool: error reporting, option parsing, progress. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "util/escape.h"

const char *mg_cli_esc(const char *s)
{
    static char *slot[8];
    static unsigned next;
    unsigned k = next++ % 8;
    free(slot[k]);
    slot[k] = s != NULL ? mg_escape_dup(s, strlen(s)) : NULL;
    return slot[k] != NULL ? slot[k] : "?";
}

json_t *mg_cli_json_text(const char *s)
{
    json_t *v = json_string(s);
    if (v == NULL && s != NULL) {
        char *e = mg_escape_dup(s, strlen(s));
        v = e != NULL ? json_string(e) : NULL;
        free(e);
    }
    return v;
}

int mg_cli_usage(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "modelgate: usage: %s\n", mg_cli_esc(msg));
    return MG_E_USAGE;
}

int mg_cli_report(const mg_error *err, bool json)
{
    char where[1024] = "";
    if (err->model[0] != '\0' && err->file[0] != '\0')
        snprintf(where, sizeof where, "model '%s', file '%s': ", err->model, err->file);
    else if (err->model[0] != '\0')
        snprintf(where, sizeof where, "model '%s': ", err->model);
    else if (err->file[0] != '\0')
        snprintf(where, sizeof where, "file '%s': ", err->file);
    char digests[400] = "";
    if (err->expected[0] != '\0')
        snprintf(digests, sizeof digests, " (expected %s %s, got %s)", err->algorithm,
                 err->expected, err->actual);
    if (json) {
        json_t *e = json_object();
        json_object_set_new(e, "kind", json_string(mg_status_kind(err->status)));
        char msg[2048];
        snprintf(msg, sizeof msg, "%s%s%s", where, err->message, digests);
        json_t *m = mg_cli_json_text(msg);
        json_object_set_new(e, "message", m != NULL ? m : json_string("(out of memory)"));
        json_t *model = err->model[0] != '\0' ? mg_cli_json_text(err->model) : NULL;
        if (model != NULL)
            json_object_set_new(e, "model", model);
        json_t *file = err->file[0] != '\0' ? mg_cli_json_text(err->file) : NULL;
        if (file != NULL)
            json_object_set_new(e, "file", file);
        json_t *doc = json_pack("{s:b,s:o}", "ok", 0, "error", e);
        char *s = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (s != NULL)
            puts(s);
        free(s);
        json_decref(doc);
    }
    /* Names and paths in the message come from files: escaped, one line, no terminal codes. */
    char line[2048];
    snprintf(line, sizeof line, "%s%s%s", where, err->message, digests);
    fprintf(stderr, "modelgate: %s: %s\n", mg_status_kind(err->status), mg_cli_esc(line));
    return err->status == MG_OK ? MG_E_LIMIT : (int)err->status;
}

/* ---- progress ------------------------------------------------------------------------ */

typedef struct progress_state {
    struct timespec start;
    bool shown;
} progress_state;

static progress_state g_progress;

static double elapsed(const struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - since->tv_sec) + (double)(now.tv_nsec - since->tv_nsec) / 1e9;
}

static void progress_cb(uint64_t done, uint64_t total, void *ctx)
{
    progress_state *p = ctx;
    if (elapsed(&p->start) < 1.0)
        return;
    p->shown = true;
    if (total > 0)
        fprintf(stderr, "\rmodelgate: hashing %.1f / %.1f MiB (%d%%)  ", (double)done / 1048576.0,
                (double)total / 1048576.0, (int)(done * 100 / (total ? total : 1)));
    else
        fprintf(stderr, "\rmodelgate: hashing %.1f MiB  ", (double)done / 1048576.0);
    fflush(stderr);
}

void mg_cli_progress_begin(mg_load_options *opts, bool quiet)
{
    memset(opts, 0, sizeof *opts);
    if (quiet || !isatty(STDERR_FILENO))
        return;
    clock_gettime(CLOCK_MONOTONIC, &g_progress.start);
    g_progress.shown = false;
    opts->progress = progress_cb;
    opts->progress_ctx = &g_progress;
}

void mg_cli_progress_end(void)
{
    if (g_progress.shown) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
        g_progress.shown = false;
    }
}

/* ---- common options --------------------------------------------------------------------- */

int mg_cli_parse_common(int argc, char **argv, mg_cli_opts *o, int min_pos, int max_pos,
                        const char *usage)
{
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((strcmp(a, "-p") == 0 || strcmp(a, "--policy") == 0) && i + 1 < argc) {
            o->policy = argv[++i];
        } else if (strcmp(a, "--policy-key") == 0 && i + 1 < argc) {
            o->policy_key = argv[++i];
        } else if (strcmp(a, "--json") == 0) {
            o->json = true;
        } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            o->quiet = true;
        } else if (strcmp(a, "--") == 0) {
            for (i++; i < argc; i++) {
                if (o->npos >= 8)
                    return mg_cli_usage("%s", usage);
                o->pos[o->npos++] = argv[i];
            }
        } else if (a[0] == '-' && a[1] != '\0') {
            return mg_cli_usage("unknown option '%.64s'; %s", a, usage);
        } else {
            if (o->npos >= 8)
                return mg_cli_usage("%s", usage);
            o->pos[o->npos++] = argv[i];
        }
    }
    if (o->npos < min_pos || o->npos > max_pos)
        return mg_cli_usage("%s", usage);
    return 0;
}

int mg_cli_open_policy(const mg_cli_opts *o, mg_policy **pol)
{
    mg_error err;
    if (mg_policy_open(o->policy, o->policy_key, pol, &err) != MG_OK)
        return mg_cli_report(&err, o->json);
    return 0;
}

int mg_cli_open_model(const mg_cli_opts *o, mg_cli_action action, mg_policy **pol, mg_model **m)
{
    *m = NULL;
    int rc = mg_cli_open_policy(o, pol);
    if (rc != 0)
        return rc;
    mg_load_options lo;
    mg_cli_progress_begin(&lo, o->quiet);
    mg_error err;
    mg_status s = action == MG_CLI_LOAD    ? mg_model_load(*pol, o->pos[0], &lo, m, &err)
                  : action == MG_CLI_FETCH ? mg_model_fetch(*pol, o->pos[0], &lo, m, &err)
                                           : mg_model_verify(*pol, o->pos[0], &lo, m, &err);
    mg_cli_progress_end();
    if (s != MG_OK) {
        rc = mg_cli_report(&err, o->json);
        mg_policy_close(*pol);
        *pol = NULL;
        return rc;
    }
    return 0;
}
