#define _GNU_SOURCE
/* Hugging Face layouts (see hub.h). The hub stores a repository as
 *   models--ORG--NAME/blobs/<sha256 or git sha1>, refs/<branch>, snapshots/<rev>/<path>
 * where every file of a snapshot is a relative symlink ../../blobs/<name> (one more ../ per
 * folder level). That one step is the only symlink modelgate ever follows, and only into
 * the same repository's blobs folder. */
#include "hub.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fsutil.h"

const char *const mg_ignore_defaults[] = {".git/", ".cache/huggingface/", ".gitattributes"};
const size_t mg_ignore_default_count = sizeof mg_ignore_defaults / sizeof mg_ignore_defaults[0];

/* The component of `path` (ending in '/') `back` components from its end, as [*start, *len). */
static bool component_from_end(const char *path, size_t back, const char **start, size_t *len)
{
    size_t end = strlen(path);
    if (end == 0 || path[end - 1] != '/')
        return false;
    end--;
    for (;;) {
        size_t b = end;
        while (b > 0 && path[b - 1] != '/')
            b--;
        if (b == end)
            return false;
        if (back == 0) {
            *start = path + b;
            *len = end - b;
            return true;
        }
        if (b == 0)
            return false;
        end = b - 1;
        back--;
    }
}

bool mg_hub_is_snapshot(const char *source)
{
    const char *s, *repo;
    size_t n, rn;
    if (source == NULL || source[0] != '/' || !component_from_end(source, 1, &s, &n) ||
        !component_from_end(source, 2, &repo, &rn))
        return false;
    if (n != 9 || memcmp(s, "snapshots", 9) != 0)
        return false;
    static const char *const kinds[] = {"models--", "datasets--", "spaces--"};
    for (size_t i = 0; i < 3; i++) {
        size_t kl = strlen(kinds[i]);
        if (rn > kl && memcmp(repo, kinds[i], kl) == 0)
            return true;
    }
    return false;
}

int mg_hub_open_blobs(const char *source)
{
    const char *s;
    size_t n;
    if (!component_from_end(source, 1, &s, &n)) {
        errno = EINVAL;
        return -1;
    }
    size_t keep = (size_t)(s - source); /* ".../models--ORG--NAME/" */
    char *path = malloc(keep + sizeof "blobs");
    if (path == NULL)
        return -1;
    memcpy(path, source, keep);
    memcpy(path + keep, "blobs", sizeof "blobs");
    int fd = mg_open_nofollow(path, O_PATH | O_DIRECTORY, NULL);
    int saved = errno;
    free(path);
    errno = saved;
    return fd;
}

static bool plain_name(const char *s, size_t n)
{
    if (n == 0 || n >= MG_HUB_BLOB_MAX || (n == 1 && s[0] == '.') ||
        (n == 2 && s[0] == '.' && s[1] == '.'))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '/' || c == '\\' || c < 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

bool mg_hub_link_target_ok(const char *target, size_t depth)
{
    const char *p = target;
    for (size_t i = 0; i < depth + 2; i++) {
        if (strncmp(p, "../", 3) != 0)
            return false;
        p += 3;
    }
    if (strncmp(p, "blobs/", 6) != 0)
        return false;
    p += 6;
    return plain_name(p, strlen(p));
}

bool mg_hub_blob_is_sha256(const char *blob)
{
    if (strlen(blob) != 64)
        return false;
    for (size_t i = 0; i < 64; i++) {
        char c = blob[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

mg_status mg_hub_open_file(int snapfd, int blobsfd, const char *rel, int flags, int *fd,
                           char blob[MG_HUB_BLOB_MAX], mg_error *err)
{
    *fd = -1;
    if (blob != NULL)
        blob[0] = '\0';
    const char *slash = strrchr(rel, '/');
    const char *base = slash != NULL ? slash + 1 : rel;
    size_t depth = 0;
    for (const char *p = rel; *p != '\0'; p++)
        depth += *p == '/';
    int parent = snapfd;
    if (slash != NULL) {
        char *dir = mg_strndup(rel, (size_t)(slash - rel));
        if (dir == NULL)
            return mg_fail(err, MG_E_LIMIT, "out of memory");
        parent = mg_openat_nofollow(snapfd, dir, O_PATH | O_DIRECTORY);
        int saved = errno;
        free(dir);
        if (parent < 0) {
            if (saved == ENOENT)
                return mg_fail(err, MG_E_INTEGRITY, "file not found");
            return mg_fail(err, MG_E_INTEGRITY, "a folder on the path of the file is a "
                           "symlink or cannot be opened (%s)", strerror(saved));
        }
    }
    mg_status s = MG_OK;
    int f = openat(parent, base, flags | O_NOFOLLOW | O_CLOEXEC);
    if (f < 0 && errno == ELOOP) {
        /* The one symlink step of a snapshot: read its target, check it lexically, and open
         * the blob by name in the blobs folder, again without following anything. */
        char target[4096];
        ssize_t n = readlinkat(parent, base, target, sizeof target - 1);
        if (n < 0 || (size_t)n >= sizeof target - 1) {
            s = mg_fail(err, MG_E_INTEGRITY, "cannot read the snapshot symlink");
        } else {
            target[n] = '\0';
            if (!mg_hub_link_target_ok(target, depth)) {
                s = mg_fail(err, MG_E_INTEGRITY, "a snapshot symlink that does not point into "
                            "the repository's blobs/ folder is refused");
            } else {
                const char *name = strrchr(target, '/') + 1;
                f = openat(blobsfd, name, flags | O_NOFOLLOW | O_CLOEXEC);
                if (f < 0)
                    s = errno == ENOENT ? mg_fail(err, MG_E_INTEGRITY, "the hub blob %.80s is "
                                                  "missing", name)
                                        : mg_fail(err, MG_E_INTEGRITY, "cannot open the hub blob "
                                                  "%.80s: %s", name, strerror(errno));
                else if (blob != NULL)
                    mg_strlcpy(blob, name, MG_HUB_BLOB_MAX);
            }
        }
    } else if (f < 0) {
        s = errno == ENOENT ? mg_fail(err, MG_E_INTEGRITY, "file not found")
                            : mg_fail(err, MG_E_IO, "cannot open: %s", strerror(errno));
    }
    if (s == MG_OK) {
        struct stat st;
        if (fstat(f, &st) != 0 || !S_ISREG(st.st_mode))
            s = mg_fail(err, MG_E_INTEGRITY, "not a regular file");
    }
    if (parent != snapfd)
        close(parent);
    if (s != MG_OK) {
        if (f >= 0)
            close(f);
        return s;
    }
    *fd = f;
    return MG_OK;
}

/* ---- ignore patterns ---------------------------------------------------------------- */

const char *mg_ignore_pattern_problem(const char *p)
{
    size_t n = strlen(p);
    if (n == 0 || n > MG_MAX_IGNORE_PATTERN_LEN)
        return "must be 1 to 1024 bytes";
    if (p[0] == '/')
        return "must be relative to the model folder";
    if (strchr(p, '\\') != NULL)
        return "must use '/' (no backslash)";
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
            return "has a control character";
    }
    const char *c = p;
    while (*c != '\0') {
        size_t len = strcspn(c, "/");
        if (len == 0 && c[0] == '/')
            return "has an empty component";
        if ((len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
            return "has a '.' or '..' component";
        c += len;
        if (*c == '/')
            c++;
    }
    return NULL;
}

static bool match_one(const char *pat, const char *cand, size_t clen, bool cand_dir)
{
    size_t plen = strlen(pat);
    bool dir_only = plen > 0 && pat[plen - 1] == '/';
    if (dir_only && !cand_dir)
        return false;
    char p[MG_MAX_IGNORE_PATTERN_LEN + 1];
    if (plen > MG_MAX_IGNORE_PATTERN_LEN)
        return false;
    memcpy(p, pat, plen + 1);
    if (dir_only)
        p[--plen] = '\0';
    char *c = mg_strndup(cand, clen);
    if (c == NULL)
        return false;
    bool anchored = strchr(p, '/') != NULL;
    const char *subject = c;
    if (!anchored) {
        const char *b = strrchr(c, '/');
        subject = b != NULL ? b + 1 : c;
    }
    bool m = fnmatch(p, subject, FNM_PATHNAME) == 0;
    free(c);
    return m;
}

static bool match_any(char *const *patterns, size_t n, const char *cand, size_t clen, bool dir)
{
    for (size_t i = 0; i < mg_ignore_default_count; i++) {
        if (match_one(mg_ignore_defaults[i], cand, clen, dir))
            return true;
    }
    for (size_t i = 0; i < n; i++) {
        if (match_one(patterns[i], cand, clen, dir))
            return true;
    }
    return false;
}

bool mg_ignore_match(char *const *patterns, size_t n, const char *rel, bool is_dir)
{
    size_t len = strlen(rel);
    while (len > 0 && rel[len - 1] == '/')
        len--;
    for (size_t i = 0; i < len; i++) {
        if (rel[i] == '/' && match_any(patterns, n, rel, i, true))
            return true;
    }
    return match_any(patterns, n, rel, len, is_dir);
}
