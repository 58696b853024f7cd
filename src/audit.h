/* The audit log (SPEC §7): one JSON line per attempt, appended whole or not at all. */
#ifndef MG_AUDIT_H
#define MG_AUDIT_H

#include "policy.h"

/*
 * Append one record for an attempt at `event` ("verify", "load", "fetch") on `model` (may be
 * NULL when the source matched nothing) from `source`. `outcome` is NULL or MG_OK-status for
 * success, else the failure (its kind, file, algorithm and digests are recorded). No-op
 * without an audit_log in the policy. MG_E_IO when the log cannot be written. The line is
 * written whole or not at all (a short write is cut back), under an flock of the log.
 */
MG_NODISCARD mg_status mg_audit_record(const struct mg_policy *pol, const char *event,
                                       const char *model, const char *source,
                                       const mg_error *outcome, mg_error *err);
/* As mg_audit_record, with "parse": `parse` ("confined" or "unconfined"; NULL: no field). */
MG_NODISCARD mg_status mg_audit_record_ex(const struct mg_policy *pol, const char *event,
                                          const char *model, const char *source,
                                          const mg_error *outcome, const char *parse,
                                          mg_error *err);

/*
 * Open the policy's audit log for appending (created 0640), without blocking and only if it
 * is a regular file: *fd is -1 without an audit_log. MG_E_IO when it cannot be opened.
 * load.c opens it before any side effect (cache, rollback state), so that a log that cannot
 * even be opened changes nothing.
 */
MG_NODISCARD mg_status mg_audit_open(const struct mg_policy *pol, int *fd, mg_error *err);

/* mg_audit_record_ex through an fd from mg_audit_open (-1: open the log here). */
MG_NODISCARD mg_status mg_audit_record_fd(const struct mg_policy *pol, int fd,
                                          const char *event, const char *model,
                                          const char *source, const mg_error *outcome,
                                          const char *parse, mg_error *err);

#endif
