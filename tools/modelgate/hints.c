/* Errors that say what to do next: where the policy was looked for, the chmod/chown that
 * fixes a permission, the closest model or tensor names, the path a relative source meant. */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "policy.h"
#include "source.h"

#define DEFAULT_POLICY "/etc/modelgate/policy.json"

size_t mg_cli_distance(const char *a, const char *b, size_t cap)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 256 || lb > 256)
        return cap + 1;
    if ((la > lb ? la - lb : lb - la) > cap)
        return cap + 1;
    size_t row[257];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        size_t best = row[0];
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t v = diag + cost;
            if (up + 1 < v)
                v = up + 1;
            if (row[j - 1] + 1 < v)
                v = row[j - 1] + 1;
            row[j] = v;
            diag = up;
            if (v < best)
                best = v;
        }
        if (best > cap)
            return cap + 1;
    }
    return row[lb] <= cap ? row[lb] : cap + 1;
}

/* Collects up to three closest candidates to `want` within a distance that grows with its
 * length, or a name that contains it / it contains (a prefix typed short). */
typedef struct suggest {
    const char *want;
    size_t cap;
    const char *best[3];
    size_t dist[3];
    size_t n;
} suggest;

static void suggest_init(suggest *s, const char *want)
{
    memset(s, 0, sizeof *s);
    s->want = want;
    size_t len = strlen(want);
    s->cap = len < 6 ? 2 : len / 3;
}

static void suggest_offer(suggest *s, const char *name)
{
    size_t d = mg_cli_distance(s->want, name, s->cap);
    if (d > s->cap && s->want[0] != '\0' && strlen(s->want) >= 3 && strstr(name, s->want))
        d = s->cap;
    if (d > s->cap)
        return;
    size_t i = s->n < 3 ? s->n++ : 3;
    if (i == 3) {
        if (d >= s->dist[2])
            return;
        i = 2;
    }
    while (i > 0 && s->dist[i - 1] > d) {
        s->best[i] = s->best[i - 1];
        s->dist[i] = s->dist[i - 1];
        i--;
    }
    s->best[i] = name;
    s->dist[i] = d;
}

static size_t suggest_text(const suggest *s, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n && n < cap; i++) {
        int w = snprintf(out + n, cap - n, "%s'%.120s'", i == 0 ? "" : i + 1 == s->n ? " or " : ", ",
                         s->best[i]);
        if (w < 0)
            break;
        n += (size_t)w;
    }
    return n < cap ? n : cap;
}

void mg_cli_policy_hint(const mg_cli_opts *o, const mg_error *err, char *out, size_t cap)
{
    out[0] = '\0';
    const char *msg = err->message;
    const char *env = getenv("MODELGATE_POLICY");
    if (strncmp(msg, "cannot open policy", 18) == 0 && strstr(msg, "No such file") != NULL) {
        if (o->policy != NULL)
            snprintf(out, cap, "no policy file at the path given with -p/--policy");
        else if (env != NULL && env[0] != '\0')
            snprintf(out, cap, "looked at $MODELGATE_POLICY (%.300s); fix that variable or "
                     "give the policy with -p FILE", env);
        else
            snprintf(out, cap, "looked at %s because neither -p/--policy nor $MODELGATE_POLICY "
                     "was given; pass -p FILE or set MODELGATE_POLICY=FILE", DEFAULT_POLICY);
        return;
    }
    /* The permission checks name the file; the folder when the message starts so. */
    const char *path = strchr(msg, '/');
    if (path == NULL)
        return;
    char target[PATH_MAX];
    size_t n = strcspn(path, " :");
    if (n >= sizeof target)
        return;
    memcpy(target, path, n);
    target[n] = '\0';
    if (strncmp(msg, "the folder of", 13) == 0) {
        char *slash = strrchr(target, '/');
        if (slash != NULL)
            *(slash == target ? slash + 1 : slash) = '\0';
    }
    if (strstr(msg, "writable by group or others") != NULL) {
        snprintf(out, cap, "fix it with: chmod go-w %s", target);
    } else if (strstr(msg, "is owned by uid") != NULL) {
        const struct passwd *pw = getpwuid(geteuid());
        snprintf(out, cap, "fix it with: chown %s %s (or: sudo chown root %s)",
                 pw != NULL ? pw->pw_name : "$(id -un)", target, target);
    } else if (strstr(msg, "a symlink is on its path") != NULL) {
        char real[PATH_MAX];
        if (realpath(target, real) != NULL && strcmp(real, target) != 0)
            snprintf(out, cap, "name the real path instead: %s", real);
    }
}

void mg_cli_untrusted_hint(const mg_policy *pol, const char *source, char *out, size_t cap)
{
    out[0] = '\0';
    suggest s;
    suggest_init(&s, source);
    for (size_t i = 0; i < pol->model_count; i++)
        suggest_offer(&s, pol->models[i].name);
    size_t n = 0;
    if (s.n > 0) {
        n = (size_t)snprintf(out, cap, "did you mean ");
        n += suggest_text(&s, out + n, cap - n);
        if (n < cap)
            n += (size_t)snprintf(out + n, cap - n, "?");
    } else if (pol->model_count > 0 && pol->model_count <= 8 && strchr(source, '/') == NULL) {
        n = (size_t)snprintf(out, cap, "the policy names");
        for (size_t i = 0; i < pol->model_count && n < cap; i++)
            n += (size_t)snprintf(out + n, cap - n, "%s '%.60s'", i ? "," : "",
                                  pol->models[i].name);
    } else if (pol->model_count == 0) {
        n = (size_t)snprintf(out, cap, "the policy %s has no models; add one with "
                             "'modelgate policy pin PATH'", pol->path);
    }
    if (n >= cap)
        return;
    /* A relative path is compared as the absolute path it names: say which. */
    if (!mg_source_is_url(source) && source[0] != '/' && strchr(source, '/') != NULL) {
        char *canon = NULL;
        mg_source_info info;
        mg_error e;
        mg_error_clear(&e);
        if (mg_source_normalize_path(source, NULL, &canon, &info, &e) == MG_OK)
            snprintf(out + n, cap - n, "%sthe relative source was resolved to %s",
                     n ? "; " : "", canon);
        free(canon);
    } else if (s.n == 0 && !mg_source_is_url(source) && source[0] == '/') {
        snprintf(out + n, cap - n, "%spin it with 'modelgate policy pin %.300s' and add the entry "
                 "to %s", n ? "; " : "", source, pol->path);
    }
}

void mg_cli_tensor_hint(const mg_model *m, const char *name, char *out, size_t cap)
{
    out[0] = '\0';
    suggest s;
    suggest_init(&s, name);
    for (size_t i = 0; i < mg_model_tensor_count(m); i++)
        suggest_offer(&s, mg_model_tensor(m, i)->name);
    if (s.n > 0) {
        size_t n = (size_t)snprintf(out, cap, "did you mean ");
        n += suggest_text(&s, out + n, cap - n);
        if (n < cap)
            snprintf(out + n, cap - n, "?");
    } else {
        snprintf(out, cap, "'modelgate inspect %s' lists its tensors", mg_model_name(m));
    }
}
