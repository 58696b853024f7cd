#define _GNU_SOURCE
#include "audit.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/escape.h"

/* Set o[k] = v. A value that is not UTF-8 (a file name of arbitrary bytes, a source given
 * on the command line) is recorded in its escaped form (util/escape.h) and its key listed in
 * "escaped", never dropped. */
static void set_text(json_t *o, const char *k, const char *v)
{
    if (v == NULL || v[0] == '\0')
        return;
    json_t *s = json_string(v);
    if (s == NULL) {
        char *e = mg_escape_dup(v, strlen(v));
        s = e != NULL ? json_string(e) : NULL;
        free(e);
        json_t *list = json_object_get(o, "escaped");
        if (list == NULL && json_object_set_new(o, "escaped", json_array()) == 0)
            list = json_object_get(o, "escaped");
        json_array_append_new(list, json_string(k));
    }
    json_object_set_new(o, k, s);
}

mg_status mg_audit_record(const struct mg_policy *pol, const char *event, const char *model,
                          const char *source, const mg_error *outcome, mg_error *err)
{
    if (pol == NULL || pol->audit_log == NULL)
        return MG_OK;
    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm) == NULL || strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        return mg_fail(err, MG_E_IO, "audit log: cannot format the time");
    json_t *o = json_object();
    if (o == NULL)
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    json_object_set_new(o, "time", json_string(when));
    json_object_set_new(o, "pid", json_integer((json_int_t)getpid()));
    json_object_set_new(o, "event", json_string(event));
    set_text(o, "model", model);
    set_text(o, "source", source);
    bool ok = outcome == NULL || outcome->status == MG_OK;
    json_object_set_new(o, "result", json_string(ok ? "ok" : "rejected"));
    if (!ok) {
        json_object_set_new(o, "error", json_string(mg_status_kind(outcome->status)));
        set_text(o, "file", outcome->file);
        set_text(o, "algorithm", outcome->algorithm);
        set_text(o, "expected", outcome->expected);
        set_text(o, "actual", outcome->actual);
        set_text(o, "message", outcome->message);
    }
    char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    json_decref(o);
    if (line == NULL)
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    size_t n = strlen(line);
    char *buf = realloc(line, n + 2);
    if (buf == NULL) {
        free(line);
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    }
    buf[n] = '\n';
    buf[n + 1] = '\0';
    mg_status s = MG_OK;
    int fd = open(pol->audit_log, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0640);
    if (fd < 0) {
        s = mg_fail(err, MG_E_IO, "audit log %s cannot be opened: %s", pol->audit_log,
                    strerror(errno));
    } else {
        ssize_t w = write(fd, buf, n + 1);
        if (w != (ssize_t)(n + 1))
            s = mg_fail(err, MG_E_IO, "audit log %s cannot be written: %s", pol->audit_log,
                        w < 0 ? strerror(errno) : "short write");
        if (close(fd) != 0 && s == MG_OK)
            s = mg_fail(err, MG_E_IO, "audit log %s cannot be written: %s", pol->audit_log,
                        strerror(errno));
    }
    free(buf);
    return s;
}
