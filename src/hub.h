/* Hugging Face layouts: hub cache snapshots (files as symlinks into the repository's blobs/)
 * and the files a local-dir or git checkout keeps beside the model (ignore patterns). */
#ifndef MG_HUB_H
#define MG_HUB_H

#include <stdbool.h>
#include <stddef.h>

#include "internal.h"

#define MG_HUB_BLOB_MAX 256
#define MG_MAX_IGNORE_PATTERNS 256u
#define MG_MAX_IGNORE_PATTERN_LEN 1024u

/* True when `source` (canonical, absolute, ending in '/') is a hub cache snapshot folder:
 * .../models--ORG--NAME/snapshots/REV/ (also datasets-- and spaces-- repositories). */
bool mg_hub_is_snapshot(const char *source);

/* Open the snapshot's repository blobs folder (source/../../blobs, taken lexically) with
 * O_PATH, no symlink on the way. Returns the fd, or -1 with errno. */
int mg_hub_open_blobs(const char *source);

/*
 * Open file `rel` of a snapshot (`snapfd` the snapshot folder, `blobsfd` its blobs folder),
 * every component with O_NOFOLLOW. A regular file is opened as it is. A symlink is followed
 * only when its target is exactly "../" repeated (depth of `rel` + 2) times, then "blobs/",
 * then one plain name: that name is opened in `blobsfd` with O_NOFOLLOW and must be a regular
 * file. Anything else is refused (MG_E_INTEGRITY). `blob` (may be NULL) receives the blob's
 * name, or "" when the file was not a symlink.
 */
MG_NODISCARD mg_status mg_hub_open_file(int snapfd, int blobsfd, const char *rel, int flags,
                                        int *fd, char blob[MG_HUB_BLOB_MAX], mg_error *err);

/* True when `d_name` in a snapshot folder is a symlink the loader may follow (lexically). */
bool mg_hub_link_target_ok(const char *target, size_t depth);

/* A blob named by a SHA-256 (64 lower-case hex digits): how the hub stores LFS files. */
bool mg_hub_blob_is_sha256(const char *blob);

/* Ignore patterns: '/'-separated, relative to the model folder; '*', '?' and [...] match
 * within one component. A pattern ending in '/' names folders. A pattern with no other '/'
 * matches that name at any depth (as .gitignore does); otherwise it is anchored at the top. */
extern const char *const mg_ignore_defaults[];
extern const size_t mg_ignore_default_count;

/* NULL when `pattern` is acceptable, else why not. */
const char *mg_ignore_pattern_problem(const char *pattern);
/* True when `rel` (a file, or a folder when `is_dir`) matches one of the patterns or the
 * defaults. */
bool mg_ignore_match(char *const *patterns, size_t n, const char *rel, bool is_dir);

#endif
