#define _GNU_SOURCE
#include "audit.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void set_str(json_t *o, const char *k, const char *v)
{
    if (v != NULL && v[0] != '\0')
        json_object_set_new(o, k, json_string(v));
}

mg_status mg_audit_record(const struct mg_policy *pol, const char *event, const char *model,
                          const char *source, const mg_error *outcome, mg_error *err)
{
    return mg_audit_record_ex(pol, event, model, source, outcome, NULL, err);
}

mg_status mg_audit_record_ex(const struct mg_policy *pol, const char *event, const char *model,
                             const char *source, const mg_error *outcome, const char *parse,
                             mg_error *err)
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
    if (model != NULL)
        json_object_set_new(o, "model", json_string(model));
    if (source != NULL) {
        /* A source given on the command line may be any bytes; store it as valid UTF-8. */
        json_t *s = json_string(source);
        json_object_set_new(o, "source", s != NULL ? s : json_string("(not UTF-8)"));
    }
    if (parse != NULL)
        json_object_set_new(o, "parse", json_string(parse));
    bool ok = outcome == NULL || outcome->status == MG_OK;
    json_object_set_new(o, "result", json_string(ok ? "ok" : "rejected"));
    if (!ok) {
        json_object_set_new(o, "error", json_string(mg_status_kind(outcome->status)));
        set_str(o, "file", outcome->file);
        set_str(o, "algorithm", outcome->algorithm);
        set_str(o, "expected", outcome->expected);
        set_str(o, "actual", outcome->actual);
        json_t *msg = json_string(outcome->message);
        if (msg != NULL)
            json_object_set_new(o, "message", msg);
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
