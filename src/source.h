/* Canonical sources: local paths normalised lexically (never by following symlinks) and
 * https URLs normalised (SPEC §4 step 2), so that matching against the policy is exact. */
#ifndef MG_SOURCE_H
#define MG_SOURCE_H

#include <stdbool.h>

#include "internal.h"

/* Result flags of normalisation, so the policy can refuse what a source must not contain. */
typedef struct mg_source_info {
    bool remote;        /* an https URL */
    bool directory;     /* ends in '/' */
    bool dot_segments;  /* had a "." or ".." component */
    bool wildcard;      /* had '*' or '?' */
} mg_source_info;

/*
 * Normalise a local path: relative paths are taken from `base_dir` (NULL: the current
 * directory); repeated '/', "." and ".." are resolved lexically. The result keeps a trailing
 * '/' when the input had one. MG_E_USAGE on an empty or overlong path.
 */
MG_NODISCARD mg_status mg_source_normalize_path(const char *path, const char *base_dir,
                                                char **out, mg_source_info *info, mg_error *err);

/*
 * Normalise an URL: scheme and host to lower case, default port (443) removed, an empty path
 * made "/", percent-encoded unreserved characters decoded and other escapes upper-cased.
 * Only https is accepted (other schemes: MG_E_UNTRUSTED); user info, a fragment, a query,
 * control characters or spaces are refused (MG_E_UNTRUSTED).
 */
MG_NODISCARD mg_status mg_source_normalize_url(const char *url, char **out, mg_source_info *info,
                                               mg_error *err);

/* True when `s` looks like an URL ("scheme://"). */
bool mg_source_is_url(const char *s);

/* Compare two canonical sources ignoring one trailing '/'. */
bool mg_source_equal(const char *a, const char *b);

#endif
