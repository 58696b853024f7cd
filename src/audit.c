#define _GNU_SOURCE
#include "audit.h"

#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "util/escape.h"
#include "util/fsutil.h"

/* Longest wait for another process's append to finish. */
#define MG_AUDIT_LOCK_WAIT_MS 10000u

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

mg_status mg_audit_open(const struct mg_policy *pol, int *fd, mg_error *err)
{
    *fd = -1;
    if (pol == NULL || pol->audit_log == NULL)
        return MG_OK;
    /* O_NONBLOCK: a FIFO in its place is refused below, never waited on. Read access only
     * to look at the last byte (a record must start on a line of its own). */
    int f = open(pol->audit_log,
                 O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0640);
    if (f < 0) {
        return mg_fail(err, MG_E_IO, "audit log %s cannot be opened: %s", pol->audit_log,
                       strerror(errno));
    }
    char what[600];
    snprintf(what, sizeof what, "audit log %.500s", pol->audit_log);
    mg_status s = mg_require_regular(f, what, err);
    if (s != MG_OK) {
        close(f);
        return s;
    }
    *fd = f;
    return MG_OK;
}

/*
 * Append `len` bytes (one record, ending in a newline) whole or not at all: under an exclusive
 * lock (so the end of the file is ours), starting on a new line if an earlier writer left a
 * fragment, and cut back to the old end on a short write (full disk, file-size limit), so
 * that no torn record is ever left for the next one to be glued onto.
 */
static mg_status append_whole(const char *path, int fd, const char *line, size_t len,
                              mg_error *err)
{
    if (mg_lock_fd(fd, MG_AUDIT_LOCK_WAIT_MS) != 0)
        return mg_fail(err, MG_E_IO, "audit log %s cannot be locked: %s", path,
                       errno == EWOULDBLOCK ? "held by another process" : strerror(errno));
    mg_status s = MG_OK;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        s = mg_fail(err, MG_E_IO, "audit log %s cannot be written: %s", path, strerror(errno));
        (void)flock(fd, LOCK_UN);
        return s;
    }
    off_t end = st.st_size;
    char last = '\n';
    if (end > 0 && pread(fd, &last, 1, end - 1) != 1)
        last = '\n';
    struct iovec iov[2] = {{(void *)"\n", 1}, {(void *)line, len}};
    int first = last == '\n' ? 1 : 0;
    size_t want = len + (first == 0 ? 1 : 0);
    ssize_t w;
    do {
        w = writev(fd, iov + first, 2 - first);
    } while (w < 0 && errno == EINTR);
    if (w != (ssize_t)want) {
        int saved = w < 0 ? errno : 0;
        bool cut = w <= 0 || ftruncate(fd, end) == 0;
        s = mg_fail(err, MG_E_IO, "audit log %s cannot be written: %s%s", path,
                    saved != 0 ? strerror(saved) : "short write (disk full?)",
                    cut ? "" : "; a partial record may remain");
    }
    (void)flock(fd, LOCK_UN);
    return s;
}

static mg_status audit_line(const struct mg_policy *pol, int own_fd, const char *event,
                            const char *model, const char *source, const mg_error *outcome,
                            const char *parse, mg_error *err)
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
    if (parse != NULL)
        json_object_set_new(o, "parse", json_string(parse));
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
    int fd = -1;
    if (own_fd < 0) {
        s = mg_audit_open(pol, &fd, err);
        if (s != MG_OK) {
            free(buf);
            return s;
        }
    }
    s = append_whole(pol->audit_log, own_fd >= 0 ? own_fd : fd, buf, n + 1, err);
    if (fd >= 0 && close(fd) != 0 && s == MG_OK)
        s = mg_fail(err, MG_E_IO, "audit log %s cannot be written: %s", pol->audit_log,
                    strerror(errno));
    free(buf);
    return s;
}

mg_status mg_audit_record(const struct mg_policy *pol, const char *event, const char *model,
                          const char *source, const mg_error *outcome, mg_error *err)
{
    return audit_line(pol, -1, event, model, source, outcome, NULL, err);
}

mg_status mg_audit_record_ex(const struct mg_policy *pol, const char *event, const char *model,
                             const char *source, const mg_error *outcome, const char *parse,
                             mg_error *err)
{
    return audit_line(pol, -1, event, model, source, outcome, parse, err);
}

mg_status mg_audit_record_fd(const struct mg_policy *pol, int fd, const char *event,
                             const char *model, const char *source, const mg_error *outcome,
                             const char *parse, mg_error *err)
{
    return audit_line(pol, fd, event, model, source, outcome, parse, err);
}
