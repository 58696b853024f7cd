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

bool mg_cli_json;

/* A JSON string, or null for an empty one (or one that is not UTF-8). */
static json_t *str_or_null(const char *s)
{
    json_t *v = s != NULL && s[0] != '\0' ? mg_cli_json_text(s) : NULL;
    return v != NULL ? v : json_null();
}

int mg_cli_print_json(json_t *doc)
{
    char *s = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (s == NULL) {
        fprintf(stderr, "modelgate: limit: cannot encode the JSON output\n");
        return MG_E_LIMIT;
    }
    puts(s);
    free(s);
    return 0;
}

json_t *mg_cli_error_json(const mg_error *err, const char *message, const char *hint)
{
    int status = err->status == MG_OK ? MG_E_LIMIT : (int)err->status;
    json_t *e = json_object();
    json_object_set_new(e, "status", json_integer(status));
    json_object_set_new(e, "kind", json_string(mg_status_kind((mg_status)status)));
    json_t *m = mg_cli_json_text(message != NULL ? message : err->message);
    json_object_set_new(e, "message", m != NULL ? m : json_string("(out of memory)"));
    json_object_set_new(e, "model", str_or_null(err->model));
    json_object_set_new(e, "file", str_or_null(err->file));
    json_object_set_new(e, "algorithm", str_or_null(err->algorithm));
    json_object_set_new(e, "expected", str_or_null(err->expected));
    json_object_set_new(e, "actual", str_or_null(err->actual));
    json_object_set_new(e, "hint", str_or_null(hint));
    return e;
}

static void print_error_json(const mg_error *err, const char *message, const char *hint)
{
    json_t *doc = json_pack("{s:b,s:o}", "ok", 0, "error", mg_cli_error_json(err, message, hint));
    mg_cli_print_json(doc);
    json_decref(doc);
}

int mg_cli_report_hint(const mg_error *err, bool json, const char *hint)
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
    char msg[2048];
    snprintf(msg, sizeof msg, "%s%s%s", where, err->message, digests);
    if (json)
        print_error_json(err, msg, hint);
    mg_status status = err->status == MG_OK ? MG_E_LIMIT : err->status;
    if (hint != NULL && hint[0] != '\0')
        fprintf(stderr, "modelgate: %s: %s; %s\n", mg_status_kind(status), mg_cli_esc(msg),
                hint);
    else
        fprintf(stderr, "modelgate: %s: %s\n", mg_status_kind(status), mg_cli_esc(msg));
    return (int)status;
}

int mg_cli_report(const mg_error *err, bool json)
{
    return mg_cli_report_hint(err, json, NULL);
}

int mg_cli_fail(mg_status status, bool json, const char *file, const char *fmt, ...)
{
    mg_error err;
    memset(&err, 0, sizeof err);
    err.status = status;
    if (file != NULL)
        snprintf(err.file, sizeof err.file, "%s", file);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err.message, sizeof err.message, fmt, ap);
    va_end(ap);
    return mg_cli_report(&err, json);
}

int mg_cli_usage(const char *fmt, ...)
{
    mg_error err;
    memset(&err, 0, sizeof err);
    err.status = MG_E_USAGE;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err.message, sizeof err.message, fmt, ap);
    va_end(ap);
    if (mg_cli_json)
        print_error_json(&err, err.message, NULL);
    fprintf(stderr, "modelgate: usage: %s\n", mg_cli_esc(err.message));
    return MG_E_USAGE;
}

/* ---- progress ------------------------------------------------------------------------ */

typedef struct progress_state {
    struct timespec start;
    const char *label;
    double after;     /* seconds of work before the line appears */
    double last_draw; /* seconds since start of the last redraw */
    bool active;
    bool shown;
} progress_state;

static progress_state g_progress;

static double elapsed(const struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - since->tv_sec) + (double)(now.tv_nsec - since->tv_nsec) / 1e9;
}

static void human_bytes(double b, char *out, size_t cap)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    size_t u = 0;
    while (b >= 1024.0 && u + 1 < sizeof units / sizeof units[0]) {
        b /= 1024.0;
        u++;
    }
    snprintf(out, cap, u == 0 ? "%.0f %s" : "%.1f %s", b, units[u]);
}

void mg_cli_progress_update(uint64_t done, uint64_t total)
{
    progress_state *p = &g_progress;
    if (!p->active)
        return;
    double t = elapsed(&p->start);
    /* Short work stays silent: the line appears only after a second (SPEC §5), and is
     * redrawn at most ten times a second. */
    if (t < p->after || (p->shown && t - p->last_draw < 0.1 && done != total))
        return;
    p->shown = true;
    p->last_draw = t;
    if (t < 1e-3)
        t = 1e-3;
    char d[32], r[32], line[160];
    double rate = (double)done / t;
    human_bytes((double)done, d, sizeof d);
    human_bytes(rate, r, sizeof r);
    if (total > 0 && done <= total) {
        char tot[32], eta[32] = "--:--";
        human_bytes((double)total, tot, sizeof tot);
        if (rate > 0.0) {
            double left = (double)(total - done) / rate;
            if (left < 360000.0)
                snprintf(eta, sizeof eta, "%02u:%02u", (unsigned)(left / 60.0),
                         (unsigned)left % 60u);
        }
        snprintf(line, sizeof line, "modelgate: %s %s / %s (%d%%) %s/s ETA %s", p->label, d,
                 tot, (int)(done * 100 / total), r, eta);
    } else {
        snprintf(line, sizeof line, "modelgate: %s %s %s/s", p->label, d, r);
    }
    fprintf(stderr, "\r%s\033[K", line);
    fflush(stderr);
}

/* MODELGATE_PROGRESS_AFTER: whole seconds (0 to 3600) before the line appears; default 1. */
static double progress_delay(void)
{
    const char *v = getenv("MODELGATE_PROGRESS_AFTER");
    if (v == NULL || v[0] == '\0' || strlen(v) > 4)
        return 1.0;
    unsigned n = 0;
    for (const char *c = v; *c != '\0'; c++) {
        if (*c < '0' || *c > '9')
            return 1.0;
        n = n * 10 + (unsigned)(*c - '0');
    }
    return n <= 3600 ? (double)n : 1.0;
}

static void progress_cb(uint64_t done, uint64_t total, void *ctx)
{
    (void)ctx;
    mg_cli_progress_update(done, total);
}

void mg_cli_progress_begin(mg_load_options *opts, bool quiet, const char *label)
{
    if (opts != NULL)
        memset(opts, 0, sizeof *opts);
    g_progress.active = false;
    g_progress.shown = false;
    if (quiet || !isatty(STDERR_FILENO))
        return;
    clock_gettime(CLOCK_MONOTONIC, &g_progress.start);
    g_progress.label = label;
    g_progress.last_draw = 0.0;
    g_progress.after = progress_delay();
    g_progress.active = true;
    if (opts != NULL) {
        opts->size = sizeof *opts;
        opts->progress = progress_cb;
        opts->progress_ctx = &g_progress;
    }
}

void mg_cli_progress_end(void)
{
    if (g_progress.shown) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
    g_progress.shown = false;
    g_progress.active = false;
}

/* ---- common options --------------------------------------------------------------------- */

bool mg_cli_common_option(int c, mg_cli_opts *o)
{
    switch (c) {
    case 'p': o->policy = optarg; return true;
    case MG_OPT_POLICY_KEY: o->policy_key = optarg; return true;
    case MG_OPT_JSON: o->json = true; return true;
    case 'q': o->quiet = true; return true;
    default: return false;
    }
}

int mg_cli_bad_option(int c, char **argv, const char *command)
{
    const char *usage = mg_cli_usage_text(command);
    const char *word = argv[optind - 1];
    if (c == ':') {
        if (optopt != 0)
            return mg_cli_usage("option '-%c' needs a value; %s", optopt, usage);
        return mg_cli_usage("option '%.64s' needs a value; %s", word, usage);
    }
    if (optopt != 0 && optopt != '?')
        return mg_cli_usage("unknown option '-%c'; %s", optopt, usage);
    return mg_cli_usage("unknown option '%.64s'; %s", word, usage);
}

int mg_cli_parse_common(int argc, char **argv, mg_cli_opts *o, int min_pos, int max_pos,
                        const char *command)
{
    memset(o, 0, sizeof *o);
    static const struct option longopts[] = {MG_CLI_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":" MG_CLI_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        if (!mg_cli_common_option(c, o))
            return mg_cli_bad_option(c, argv, command);
    }
    for (int i = optind; i < argc; i++) {
        if (o->npos >= 8)
            break;
        o->pos[o->npos++] = argv[i];
    }
    int given = argc - optind;
    if (given < min_pos)
        return mg_cli_usage("missing operand; %s", mg_cli_usage_text(command));
    if (given > max_pos)
        return mg_cli_usage("extra operand '%.64s'; %s", argv[optind + max_pos],
                            mg_cli_usage_text(command));
    return 0;
}

int mg_cli_open_policy(const mg_cli_opts *o, mg_policy **pol)
{
    mg_error err;
    if (mg_policy_open(o->policy, o->policy_key, pol, &err) != MG_OK) {
        char hint[1024];
        mg_cli_policy_hint(o, &err, hint, sizeof hint);
        return mg_cli_report_hint(&err, o->json, hint);
    }
    return 0;
}

int mg_cli_open_model(const mg_cli_opts *o, mg_cli_action action, mg_policy **pol, mg_model **m)
{
    *m = NULL;
    int rc = mg_cli_open_policy(o, pol);
    if (rc != 0)
        return rc;
    mg_load_options lo;
    mg_cli_progress_begin(&lo, o->quiet,
                          action == MG_CLI_FETCH ? "fetching" : "verifying");
    mg_error err;
    mg_status s = action == MG_CLI_LOAD    ? mg_model_load(*pol, o->pos[0], &lo, m, &err)
                  : action == MG_CLI_FETCH ? mg_model_fetch(*pol, o->pos[0], &lo, m, &err)
                                           : mg_model_verify(*pol, o->pos[0], &lo, m, &err);
    mg_cli_progress_end();
    if (s != MG_OK) {
        char hint[1024] = "";
        if (s == MG_E_UNTRUSTED)
            mg_cli_untrusted_hint(*pol, o->pos[0], hint, sizeof hint);
        rc = mg_cli_report_hint(&err, o->json, hint);
        mg_policy_close(*pol);
        *pol = NULL;
        return rc;
    }
    return 0;
}
