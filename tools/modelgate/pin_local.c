#define _GNU_SOURCE
/* policy pin for what is on this machine: a file, a folder (a local-dir or git checkout, with
 * ignore patterns), a Hugging Face hub cache snapshot (names as the snapshot shows them,
 * never blob paths), or the digests of a published SHA256SUMS list instead of what is on
 * disk now. */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "digest.h"
#include "hub.h"
#include "internal.h"
#include "util/fsutil.h"

typedef struct pin_ctx {
    const mg_pin_request *req;
    char *const *ignore;
    size_t nignore;
    bool hub;
    int rootfd;  /* the folder (O_PATH), no symlink on its path */
    int blobsfd; /* hub: the repository's blobs folder */
    json_t *files;     /* path -> {alg: hex, size} (hashing), or the set found (sums) */
    json_t *notes;     /* what the person pinning should know */
    size_t lfs_checked;
    size_t ignored;
    bool sums;         /* only list the folder; the digests come from the list */
} pin_ctx;

static bool name_char_ok(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
}

/* A model name from a file or folder name (a hub snapshot: its repository, ORG--NAME). */
static void default_name(const char *abs, bool hub, char *out, size_t cap)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", abs);
    size_t n = strlen(tmp);
    while (n > 1 && tmp[n - 1] == '/')
        tmp[--n] = '\0';
    if (hub) {
        /* .../models--ORG--NAME/snapshots/REV */
        for (int i = 0; i < 2; i++) {
            char *s = strrchr(tmp, '/');
            if (s != NULL && s != tmp)
                *s = '\0';
        }
    }
    const char *base = strrchr(tmp, '/');
    base = base ? base + 1 : tmp;
    if (hub) {
        const char *dd = strstr(base, "--");
        if (dd != NULL)
            base = dd + 2;
    }
    size_t j = 0;
    for (size_t i = 0; base[i] != '\0' && j + 1 < cap && j < 128; i++)
        out[j++] = name_char_ok(base[i]) ? base[i] : '_';
    out[j] = '\0';
    char *dot = hub ? NULL : strrchr(out, '.');
    if (dot != NULL && dot != out)
        *dot = '\0';
    if (out[0] == '\0')
        snprintf(out, cap, "model");
}

static int add_note(pin_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int add_note(pin_ctx *c, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    json_array_append_new(c->notes, json_string(buf));
    return 0;
}

/* Hash one file of the folder; a hub blob named by its SHA-256 is checked against it. */
static int pin_file(pin_ctx *c, const char *rel)
{
    int fd = -1;
    char blob[MG_HUB_BLOB_MAX] = "";
    mg_error err;
    mg_error_clear(&err);
    if (c->hub) {
        if (mg_hub_open_file(c->rootfd, c->blobsfd, rel, O_RDONLY | O_NONBLOCK, &fd, blob, &err) !=
            MG_OK) {
            mg_error_set_file(&err, rel);
            return mg_cli_report(&err, c->req->json);
        }
    } else {
        fd = mg_openat_nofollow(c->rootfd, rel, O_RDONLY | O_NONBLOCK);
        if (fd < 0)
            return mg_cli_fail(errno == ELOOP ? MG_E_INTEGRITY : MG_E_IO, c->req->json, rel,
                               "cannot open: %s", errno == ELOOP ? "a symlink is on its path"
                                                                 : strerror(errno));
    }
    if (c->sums) {
        close(fd);
        json_object_set_new(c->files, rel, json_string(blob));
        return 0;
    }
    char hex[129];
    uint64_t size = 0;
    mg_status s = mg_cli_hash_fd(fd, rel, c->req->alg, c->req->quiet, hex, &size, &err);
    if (s == MG_OK && mg_hub_blob_is_sha256(blob)) {
        char sha[129] = "";
        const char *got = hex;
        if (c->req->alg != MG_SHA256) {
            if (lseek(fd, 0, SEEK_SET) != 0)
                s = mg_cli_fail(MG_E_IO, false, rel, "cannot rewind: %s", strerror(errno));
            else
                s = mg_cli_hash_fd(fd, rel, MG_SHA256, c->req->quiet, sha, NULL, &err);
            got = sha;
        }
        if (s == MG_OK && strcmp(got, blob) != 0) {
            s = err.status = MG_E_INTEGRITY;
            snprintf(err.message, sizeof err.message, "the hub blob is named by a SHA-256 its "
                     "bytes do not have (a corrupted hub cache)");
            mg_strlcpy(err.algorithm, "sha256", sizeof err.algorithm);
            mg_strlcpy(err.expected, blob, sizeof err.expected);
            mg_strlcpy(err.actual, got, sizeof err.actual);
        } else if (s == MG_OK) {
            c->lfs_checked++;
        }
    }
    close(fd);
    if (s != MG_OK) {
        mg_error_set_file(&err, rel);
        return mg_cli_report(&err, c->req->json);
    }
    json_t *f = json_object();
    json_object_set_new(f, mg_digest_name(c->req->alg), json_string(hex));
    json_object_set_new(f, "size", json_integer((json_int_t)size));
    json_object_set_new(c->files, rel, f);
    return 0;
}

static int walk(pin_ctx *c, const char *prefix, unsigned depth)
{
    if (depth > 16)
        return mg_cli_fail(MG_E_LIMIT, c->req->json, prefix, "folders nested deeper than 16");
    int fd = prefix[0] == '\0' ? openat(c->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                               : mg_openat_nofollow(c->rootfd, prefix, O_RDONLY | O_DIRECTORY);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        int saved = errno;
        if (fd >= 0)
            close(fd);
        return mg_cli_fail(MG_E_IO, c->req->json, prefix[0] ? prefix : NULL,
                           "cannot read the folder: %s", strerror(saved));
    }
    int rc = 0;
    struct dirent *e;
    /* Sorted output is easier to review: collect the names first. */
    json_t *names = json_array();
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            json_array_append_new(names, json_string(e->d_name));
    }
    size_t i;
    json_t *v;
    json_array_foreach(names, i, v) {
        if (rc != 0)
            break;
        const char *name = json_string_value(v);
        if (name == NULL) {
            rc = mg_cli_fail(MG_E_FORMAT, c->req->json, prefix, "a file name is not UTF-8");
            break;
        }
        char sub[PATH_MAX];
        int n = snprintf(sub, sizeof sub, "%s%s", prefix, name);
        if (n < 0 || (size_t)n >= sizeof sub - 1) {
            rc = mg_cli_fail(MG_E_LIMIT, c->req->json, prefix, "path too long");
            break;
        }
        struct stat st;
        if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            rc = mg_cli_fail(MG_E_IO, c->req->json, sub, "cannot stat: %s", strerror(errno));
        } else if (mg_ignore_match(c->ignore, c->nignore, sub, S_ISDIR(st.st_mode))) {
            c->ignored++;
        } else if (S_ISDIR(st.st_mode)) {
            sub[n] = '/';
            sub[n + 1] = '\0';
            rc = walk(c, sub, depth + 1);
        } else if (S_ISREG(st.st_mode) || (S_ISLNK(st.st_mode) && c->hub)) {
            rc = pin_file(c, sub);
        } else {
            rc = mg_cli_fail(MG_E_INTEGRITY, c->req->json, sub,
                             "%s; a model folder holds regular files only (a Hugging Face hub "
                             "snapshot may hold symlinks into its blobs/)",
                             S_ISLNK(st.st_mode) ? "a symlink" : "a special file");
        }
    }
    json_decref(names);
    closedir(d);
    return rc;
}

/* A name as a list gives it: "./x" is "x"; absolute or '..' names are refused. */
static const char *list_name(const char *name)
{
    while (strncmp(name, "./", 2) == 0)
        name += 2;
    return mg_ignore_pattern_problem(name) == NULL && strpbrk(name, "*?[") == NULL ? name : NULL;
}

typedef struct sums_list {
    sums_line *lines;
    size_t count;
} sums_list;

static int read_sums(const mg_pin_request *req, sums_list *out)
{
    char *text = NULL;
    size_t len = 0;
    int rc = mg_cli_read_text(req->sums, &text, &len, req->json);
    if (rc != 0)
        return rc;
    size_t lineno = 0;
    for (size_t pos = 0; pos < len && rc == 0;) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + (nl ? 1 : 0);
        lineno++;
        if (n > 0 && line[n - 1] == '\r')
            n--;
        if (n == 0 || line[0] == '#')
            continue;
        sums_line *grown = realloc(out->lines, (out->count + 1) * sizeof *grown);
        if (grown == NULL || out->count >= 100000) {
            if (grown != NULL)
                out->lines = grown;
            rc = mg_cli_fail(MG_E_LIMIT, req->json, NULL, "%s: too many lines", req->sums);
            break;
        }
        out->lines = grown;
        sums_line *sl = &out->lines[out->count];
        const char *name = n <= 8192 && mg_cli_parse_sums_line(line, n, sl) ? list_name(sl->name)
                                                                            : NULL;
        if (name == NULL) {
            rc = mg_cli_fail(MG_E_FORMAT, req->json, NULL, "%s line %zu is not a sha256sum/"
                             "sha512sum line with a relative file name", req->sums, lineno);
            break;
        }
        memmove(sl->name, name, strlen(name) + 1);
        out->count++;
    }
    free(text);
    if (rc == 0 && out->count == 0)
        rc = mg_cli_fail(MG_E_FORMAT, req->json, NULL, "%s lists no file", req->sums);
    return rc;
}

/* The entry from the list; every difference between the list and the folder is reported
 * (on stderr, and under --json in "mismatches"), and makes the exit status 1. */
static int pin_from_sums(pin_ctx *c, const sums_list *sl, json_t *files, json_t *mismatches)
{
    for (size_t i = 0; i < sl->count; i++) {
        const sums_line *l = &sl->lines[i];
        if (json_object_get(files, l->name) != NULL)
            return mg_cli_fail(MG_E_FORMAT, c->req->json, l->name, "listed twice in %s",
                               c->req->sums);
        json_object_set_new(files, l->name,
                            json_pack("{s:s}", mg_digest_name(l->alg), l->hex));
        json_t *found = json_object_get(c->files, l->name);
        const char *blob = json_string_value(found);
        char msg[1200];
        msg[0] = '\0';
        if (found == NULL)
            snprintf(msg, sizeof msg, "%s: listed in %s but not in the folder", l->name,
                     c->req->sums);
        else if (blob != NULL && mg_hub_blob_is_sha256(blob) && l->alg == MG_SHA256 &&
                 strcmp(blob, l->hex) != 0)
            snprintf(msg, sizeof msg, "%s: the list says sha256 %s, the hub blob is named %s",
                     l->name, l->hex, blob);
        else if (blob != NULL && mg_hub_blob_is_sha256(blob) && l->alg == MG_SHA256)
            c->lfs_checked++;
        if (msg[0] != '\0')
            json_array_append_new(mismatches, json_string(msg));
    }
    const char *k;
    json_t *v;
    json_object_foreach(c->files, k, v) {
        if (json_object_get(files, k) == NULL)
            json_array_append_new(mismatches, json_sprintf("%s: in the folder but not listed in "
                                                           "%s", k, c->req->sums));
    }
    return 0;
}

static void print_notes(const pin_ctx *c, const json_t *mismatches)
{
    size_t i;
    json_t *v;
    json_array_foreach(mismatches, i, v)
        fprintf(stderr, "modelgate: integrity: %s\n", json_string_value(v));
    if (c->req->quiet || c->req->json)
        return;
    json_array_foreach(c->notes, i, v)
        fprintf(stderr, "modelgate: note: %s\n", json_string_value(v));
}

int mg_cli_pin_local(const mg_pin_request *req)
{
    for (size_t i = 0; i < req->ignore_count; i++) {
        const char *why = mg_ignore_pattern_problem(req->ignore[i]);
        if (why != NULL)
            return mg_cli_usage("--ignore '%.200s' %s", req->ignore[i], why);
    }
    char abs[PATH_MAX];
    if (realpath(req->target, abs) == NULL)
        return mg_cli_fail(MG_E_IO, req->json, NULL, "cannot resolve %s: %s", req->target,
                           strerror(errno));
    struct stat st;
    if (stat(abs, &st) != 0)
        return mg_cli_fail(MG_E_IO, req->json, NULL, "cannot stat %s: %s", abs, strerror(errno));
    bool dir = S_ISDIR(st.st_mode);
    char src[PATH_MAX + 2];
    snprintf(src, sizeof src, "%s%s", strcmp(abs, "/") == 0 ? "" : abs, dir ? "/" : "");
    pin_ctx c = {.req = req, .ignore = (char *const *)req->ignore, .nignore = req->ignore_count,
                 .rootfd = -1, .blobsfd = -1, .sums = req->sums != NULL};
    c.hub = dir && mg_hub_is_snapshot(src);
    if (!dir && req->ignore_count > 0)
        return mg_cli_usage("--ignore is for folders; %s is a file", abs);
    char defname[160];
    default_name(abs, c.hub, defname, sizeof defname);
    c.files = json_object();
    c.notes = json_array();
    json_t *mismatches = json_array();
    json_t *entry = json_object();
    json_object_set_new(entry, "name", json_string(req->name ? req->name : defname));
    json_object_set_new(entry, "source", json_string(src));
    sums_list sl = {NULL, 0};
    int rc = req->sums != NULL ? read_sums(req, &sl) : 0;
    if (rc == 0 && !dir) {
        char hex[129];
        mg_error err;
        if (req->sums != NULL) {
            const char *base = strrchr(abs, '/') + 1;
            const sums_line *hit = NULL;
            for (size_t i = 0; i < sl.count && hit == NULL; i++) {
                const char *lb = strrchr(sl.lines[i].name, '/');
                if (strcmp(lb ? lb + 1 : sl.lines[i].name, base) == 0)
                    hit = &sl.lines[i];
            }
            if (hit == NULL)
                rc = mg_cli_fail(MG_E_INTEGRITY, req->json, base, "not listed in %s", req->sums);
            else
                json_object_set_new(entry, mg_digest_name(hit->alg), json_string(hit->hex));
        } else {
            int fd = mg_open_nofollow(abs, O_RDONLY | O_NONBLOCK, NULL);
            uint64_t size = 0;
            if (fd < 0)
                rc = mg_cli_fail(MG_E_IO, req->json, NULL, "cannot open %s: %s", abs,
                                 strerror(errno));
            else if (mg_cli_hash_fd(fd, abs, req->alg, req->quiet, hex, &size, &err) != MG_OK)
                rc = mg_cli_report(&err, req->json);
            if (fd >= 0)
                close(fd);
            if (rc == 0) {
                json_object_set_new(entry, mg_digest_name(req->alg), json_string(hex));
                json_object_set_new(entry, "size", json_integer((json_int_t)size));
            }
        }
    } else if (rc == 0) {
        c.rootfd = mg_open_nofollow(abs, O_PATH | O_DIRECTORY, NULL);
        if (c.rootfd < 0)
            rc = mg_cli_fail(MG_E_IO, req->json, NULL, "cannot open %s: %s", abs, strerror(errno));
        if (rc == 0 && c.hub && (c.blobsfd = mg_hub_open_blobs(src)) < 0)
            rc = mg_cli_fail(MG_E_INTEGRITY, req->json, NULL, "%s looks like a hub snapshot but "
                             "its repository has no usable blobs/ folder: %s", abs,
                             strerror(errno));
        if (rc == 0)
            rc = walk(&c, "", 0);
        json_t *files = json_object();
        if (rc == 0 && req->sums != NULL)
            rc = pin_from_sums(&c, &sl, files, mismatches);
        json_object_set_new(entry, "files", req->sums != NULL ? files : json_incref(c.files));
        if (req->sums == NULL)
            json_decref(files);
        if (req->ignore_count > 0) {
            json_t *ig = json_array();
            for (size_t i = 0; i < req->ignore_count; i++)
                json_array_append_new(ig, json_string(req->ignore[i]));
            json_object_set_new(entry, "ignore", ig);
        }
    }
    if (c.hub)
        add_note(&c, "%s is a Hugging Face hub snapshot: files are pinned by their names in the "
                 "snapshot; their symlinks must point into the repository's blobs/", src);
    if (c.lfs_checked > 0)
        add_note(&c, "%zu file%s %s LFS blob%s named by %s SHA-256: the name%s matched", c.lfs_checked,
                 c.lfs_checked == 1 ? "" : "s", c.lfs_checked == 1 ? "is an" : "are",
                 c.lfs_checked == 1 ? "" : "s", c.lfs_checked == 1 ? "its" : "their",
                 c.lfs_checked == 1 ? "" : "s");
    if (c.ignored > 0)
        add_note(&c, "%zu file%s or folder%s ignored (never read): .git/, .cache/huggingface/, "
                 ".gitattributes%s", c.ignored, c.ignored == 1 ? "" : "s",
                 c.ignored == 1 ? "" : "s", req->ignore_count ? " and --ignore" : "");
    if (rc == 0 && json_array_size(mismatches) > 0)
        rc = MG_E_INTEGRITY;
    if (rc == 0 || rc == MG_E_INTEGRITY) {
        print_notes(&c, mismatches);
        if (req->json && (!req->quiet || rc != 0)) {
            json_t *doc = json_pack("{s:b,s:O,s:O}", "ok", rc == 0, "entry", entry, "notes",
                                    c.notes);
            if (json_array_size(mismatches) > 0) {
                mg_error err;
                memset(&err, 0, sizeof err);
                err.status = MG_E_INTEGRITY;
                snprintf(err.message, sizeof err.message, "%zu difference%s between %s and the "
                         "folder", json_array_size(mismatches),
                         json_array_size(mismatches) == 1 ? "" : "s", req->sums);
                json_object_set(doc, "mismatches", mismatches);
                json_object_set_new(doc, "error", mg_cli_error_json(&err, NULL, NULL));
            }
            if (rc == 0 || json_array_size(mismatches) > 0)
                mg_cli_print_json(doc);
            json_decref(doc);
        } else if (!req->json && !req->quiet && (rc == 0 || json_array_size(mismatches) > 0)) {
            char *s = json_dumps(entry, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
            if (s != NULL)
                puts(s);
            free(s);
        }
        if (json_array_size(mismatches) > 0)
            fprintf(stderr, "modelgate: integrity: %zu difference%s between %s and the folder; "
                    "the entry above pins what the list says\n", json_array_size(mismatches),
                    json_array_size(mismatches) == 1 ? "" : "s", req->sums);
    }
    free(sl.lines);
    if (c.rootfd >= 0)
        close(c.rootfd);
    if (c.blobsfd >= 0)
        close(c.blobsfd);
    json_decref(entry);
    json_decref(c.files);
    json_decref(c.notes);
    json_decref(mismatches);
    return rc;
}
