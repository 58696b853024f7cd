/* The audit log (SPEC §7): one JSON line per attempt, appended with a single write. */
#ifndef MG_AUDIT_H
#define MG_AUDIT_H

#include "policy.h"

/*
 * Append one record for an attempt at `event` ("verify", "load", "fetch") on `model` (may be
 * NULL when the source matched nothing) from `source`. `outcome` is NULL or MG_OK-status for
 * success, else the failure (its kind, file, algorithm and digests are recorded). No-op
 * without an audit_log in the policy. MG_E_IO when the log cannot be written.
 */
MG_NODISCARD mg_status mg_audit_record(const struct mg_policy *pol, const char *event,
                                       const char *model, const char *source,
                                       const mg_error *outcome, mg_error *err);
/* As mg_audit_record, with "parse": `parse` ("confined" or "unconfined"; NULL: no field). */
MG_NODISCARD mg_status mg_audit_record_ex(const struct mg_policy *pol, const char *event,
                                          const char *model, const char *source,
                                          const mg_error *outcome, const char *parse,
                                          mg_error *err);

#endif
