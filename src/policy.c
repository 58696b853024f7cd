#define _GNU_SOURCE
/* The policy file (SPEC §2): located, opened without symlinks, permission-checked, optionally
 * signature-checked, then parsed strictly. Every problem is reported with its JSON path. */
#include "policy.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "oci.h"
#include "oms.h"
#include "hub.h"
#include "source.h"
#include "spill.h"
#include "util/fsutil.h"
#include "util/hex.h"
#include "util/json.h"

#define MG_DEFAULT_POLICY "/etc/modelgate/policy.json"
#define MG_MAX_PROBLEMS 1000

typedef struct problems {
    void (*report)(const char *problem, void *ctx);
    void *ctx;
    size_t count;
    mg_error *err; /* receives the first problem */
} problems;

__attribute__((format(printf, 3, 4))) static void problem(problems *pr, const char *path,
                                                          const char *fmt, ...)
{
    char msg[MG_ERROR_MESSAGE_MAX];
    int n = snprintf(msg, sizeof msg, "%s: ", path);
    if (n < 0 || (size_t)n >= sizeof msg)
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    va_end(ap);
    for (char *c = msg; *c != '\0'; c++) {
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    }
    if (pr->count == 0)
        mg_fail_fmt(pr->err, MG_E_POLICY, "%s", msg);
    if (pr->count < MG_MAX_PROBLEMS && pr->report != NULL)
        pr->report(msg, pr->ctx);
    pr->count++;
}

/* ---- permissions -------------------------------------------------------------------- */

static bool owner_ok(const struct stat *st)
{
    return st->st_uid == 0 || st->st_uid == geteuid();
}

/*
 * Open a protected file (the policy, a key file, the policy signature): no symlink on the
 * way, a regular file and its folder owned by root or the effective user and not writable by
 * group or others. Reads at most `cap` bytes.
 */
static mg_status read_protected(const char *abs_path, const char *what, size_t cap, uint8_t **out,
                                size_t *len, mg_error *err)
{
    int parent = -1;
    int fd = mg_open_nofollow(abs_path, O_RDONLY | O_NONBLOCK, &parent);
    if (fd < 0) {
        if (errno == ELOOP || errno == ENOTDIR)
            return mg_fail(err, MG_E_POLICY, "%s %s: a symlink is on its path (refused)", what,
                           abs_path);
        return mg_fail(err, MG_E_POLICY, "cannot open %s %s: %s", what, abs_path,
                       strerror(errno));
    }
    struct stat st, pst;
    mg_status s = MG_OK;
    if (fstat(fd, &st) != 0 || fstat(parent, &pst) != 0)
        s = mg_fail(err, MG_E_POLICY, "cannot stat %s %s: %s", what, abs_path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        s = mg_fail(err, MG_E_POLICY, "%s %s is not a regular file", what, abs_path);
    else if (!owner_ok(&st))
        s = mg_fail(err, MG_E_POLICY, "%s %s is owned by uid %u, not root or the running user",
                    what, abs_path, (unsigned)st.st_uid);
    else if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
        s = mg_fail(err, MG_E_POLICY, "%s %s is writable by group or others (mode %03o)", what,
                    abs_path, (unsigned)(st.st_mode & 0777));
    else if (!owner_ok(&pst))
        s = mg_fail(err, MG_E_POLICY, "the folder of %s %s is owned by uid %u, not root or the "
                    "running user", what, abs_path, (unsigned)pst.st_uid);
    else if ((pst.st_mode & (S_IWGRP | S_IWOTH)) != 0)
        s = mg_fail(err, MG_E_POLICY, "the folder of %s %s is writable by group or others "
                    "(mode %03o)", what, abs_path, (unsigned)(pst.st_mode & 0777));
    if (s == MG_OK) {
        s = mg_read_small(fd, cap, out, len, err);
        if (s != MG_OK) {
            char why[MG_ERROR_MESSAGE_MAX];
            mg_strlcpy(why, err->message, sizeof why);
            s = mg_fail(err, MG_E_POLICY, "cannot read %s %s: %s", what, abs_path, why);
        }
    }
    close(fd);
    close(parent);
    return s;
}

/*
 * Owner and mode of the other files the library writes or trusts, checked at load like the
 * policy and keys: state_dir (the rollback anchor), the audit log and its folder, ca_file and
 * its folder. `fd` is open on the object; `path` and `what` name it in the problem.
 */
static bool protected_ok(problems *pr, const char *key, int fd, const char *what,
                         const char *path)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        problem(pr, key, "cannot stat %s %.300s: %s", what, path, strerror(errno));
        return false;
    }
    if (!owner_ok(&st)) {
        problem(pr, key, "%s %.300s is owned by uid %u, not root or the running user", what,
                path, (unsigned)st.st_uid);
        return false;
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        problem(pr, key, "%s %.300s is writable by group or others (mode %03o)", what, path,
                (unsigned)(st.st_mode & 0777));
        return false;
    }
    return true;
}

/* The folder that holds `path` (absolute, normalised), opened without symlinks; -1 with
 * errno. The folder's name goes to `dir`. */
static int open_parent(const char *path, char *dir, size_t cap)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    while (n > 0 && path[n - 1] != '/')
        n--;
    if (n > 1)
        n--; /* drop the separator, keep "/" for the root */
    if (n == 0 || n >= cap) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(dir, path, n);
    dir[n] = '\0';
    return mg_open_nofollow(dir, O_RDONLY | O_DIRECTORY | O_NONBLOCK, NULL);
}

static void open_problem(problems *pr, const char *key, const char *what, const char *path,
                         int e)
{
    if (e == ELOOP || e == ENOTDIR)
        problem(pr, key, "%s %.300s: a symlink or a non-folder is on its path (refused)", what,
                path);
    else if (e == ENOENT)
        problem(pr, key, "%s %.300s does not exist", what, path);
    else
        problem(pr, key, "cannot open %s %.300s: %s", what, path, strerror(e));
}

static void check_state_dir(problems *pr, const char *path)
{
    int fd = mg_open_nofollow(path, O_RDONLY | O_DIRECTORY | O_NONBLOCK, NULL);
    if (fd >= 0) {
        (void)protected_ok(pr, "$.state_dir", fd, "state_dir", path);
        close(fd);
        return;
    }
    int e = errno;
    if (e != ENOENT) {
        struct stat st;
        if (e == ENOTDIR && lstat(path, &st) == 0 && !S_ISLNK(st.st_mode) && !S_ISDIR(st.st_mode))
            problem(pr, "$.state_dir", "%.300s is not a folder", path);
        else
            open_problem(pr, "$.state_dir", "state_dir", path, e);
        return;
    }
    /* Created on the first store: its folder must exist. */
    char dir[4096];
    int pfd = open_parent(path, dir, sizeof dir);
    if (pfd < 0)
        open_problem(pr, "$.state_dir", "the folder of state_dir", dir, errno);
    else
        close(pfd);
}

static void check_audit_log(problems *pr, const char *path)
{
    char dir[4096];
    int pfd = open_parent(path, dir, sizeof dir);
    if (pfd < 0) {
        open_problem(pr, "$.audit_log", "the folder of audit_log", dir, errno);
        return;
    }
    if (protected_ok(pr, "$.audit_log", pfd, "the folder of audit_log", dir)) {
        const char *base = path + strlen(dir) + (strcmp(dir, "/") == 0 ? 0 : 1);
        int fd = openat(pfd, base, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        struct stat st;
        if (fd < 0 && errno != ENOENT)
            open_problem(pr, "$.audit_log", "audit_log", path, errno);
        else if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)))
            problem(pr, "$.audit_log", "%.300s is not a regular file", path);
        else if (fd >= 0)
            (void)protected_ok(pr, "$.audit_log", fd, "audit_log", path);
        if (fd >= 0)
            close(fd);
    }
    close(pfd);
}

static void check_ca_file(problems *pr, const char *path)
{
    int parent = -1;
    int fd = mg_open_nofollow(path, O_RDONLY | O_NONBLOCK, &parent);
    if (fd < 0) {
        open_problem(pr, "$.ca_file", "ca_file", path, errno);
        return;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        problem(pr, "$.ca_file", "%.300s is not a regular file", path);
    else if (protected_ok(pr, "$.ca_file", fd, "ca_file", path))
        (void)protected_ok(pr, "$.ca_file", parent, "the folder of ca_file", path);
    close(fd);
    close(parent);
}

static void check_side_files(problems *pr, const mg_policy *pol)
{
    if (pol->state_dir != NULL)
        check_state_dir(pr, pol->state_dir);
    if (pol->audit_log != NULL)
        check_audit_log(pr, pol->audit_log);
    if (pol->ca_file != NULL)
        check_ca_file(pr, pol->ca_file);
    if (pol->spill_dir != NULL) { /* (the cache_dir standing in is checked at each load) */
        int fd;
        mg_error e;
        mg_error_clear(&e);
        if (mg_spill_open_dir(pol->spill_dir, "spill_dir", &fd, &e) != MG_OK)
            problem(pr, "$.spill_dir", "%s", e.message);
        else
            close(fd);
    }
}

/* ---- parsing ------------------------------------------------------------------------ */

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* A path inside a model: relative, '/'-separated, no empty, "." or ".." component, no
 * backslash, no control character. */
bool mg_policy_safe_relpath(const char *p);
bool mg_policy_safe_relpath(const char *p)
{
    if (p[0] == '\0' || p[0] == '/' || strlen(p) > 4096)
        return false;
    for (const char *c = p; *c != '\0'; c++) {
        if ((unsigned char)*c < 0x20 || *c == 0x7f || *c == '\\')
            return false;
    }
    const char *s = p;
    for (;;) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
            return false;
        if (e == NULL)
            return true;
        s = e + 1;
    }
}

static char *resolve_path(const mg_policy *pol, const char *p)
{
    char *out = NULL;
    mg_source_info info;
    mg_error e;
    if (mg_source_normalize_path(p, pol->dir, &out, &info, &e) != MG_OK)
        return NULL;
    return out;
}

static bool parse_digest(const json_t *v, size_t n, uint8_t *out)
{
    return json_is_string(v) && mg_hex_decode(json_string_value(v), out, n);
}

/* Reads "sha256"/"sha512"/"size" of `obj` into `f`; other keys are left to the caller. */
static void parse_pin(problems *pr, const char *path, json_t *obj, mg_pinned_file *f,
                      bool size_allowed)
{
    json_t *s256 = json_object_get(obj, "sha256");
    json_t *s512 = json_object_get(obj, "sha512");
    json_t *size = json_object_get(obj, "size");
    char sub[1024];
    if ((s256 != NULL) == (s512 != NULL)) {
        problem(pr, path, "needs exactly one of \"sha256\" and \"sha512\"");
    } else if (s256 != NULL) {
        f->alg = MG_SHA256;
        if (!parse_digest(s256, 32, f->digest)) {
            snprintf(sub, sizeof sub, "%.300s.sha256", path);
            problem(pr, sub, "must be 64 hex digits");
        }
    } else {
        f->alg = MG_SHA512;
        if (!parse_digest(s512, 64, f->digest)) {
            snprintf(sub, sizeof sub, "%.300s.sha512", path);
            problem(pr, sub, "must be 128 hex digits");
        }
    }
    if (size != NULL) {
        snprintf(sub, sizeof sub, "%.300s.size", path);
        if (!size_allowed)
            problem(pr, sub, "not allowed here");
        else if (!mg_json_u64(size, &f->size))
            problem(pr, sub, "must be a non-negative integer");
        else
            f->has_size = true;
    }
}

static void check_keys_only(problems *pr, const char *path, json_t *obj,
                            const char *const *allowed)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        bool ok = false;
        for (size_t i = 0; allowed[i] != NULL; i++)
            ok = ok || strcmp(k, allowed[i]) == 0;
        if (!ok) {
            char sub[1024];
            snprintf(sub, sizeof sub, "%.300s.%.200s", path, k);
            problem(pr, sub, "unknown key");
        }
    }
}

static void parse_keys(problems *pr, mg_policy *pol, json_t *keys)
{
    if (!json_is_object(keys)) {
        problem(pr, "$.keys", "must be an object");
        return;
    }
    size_t n = json_object_size(keys);
    pol->keys = mg_calloc(n, sizeof *pol->keys);
    if (pol->keys == NULL) {
        problem(pr, "$.keys", "out of memory");
        return;
    }
    const char *name;
    json_t *v;
    json_object_foreach(keys, name, v) {
        char path[600];
        snprintf(path, sizeof path, "$.keys.%.200s", name);
        if (!valid_name(name)) {
            problem(pr, path, "a key name must match [A-Za-z0-9._-]{1,128}");
            continue;
        }
        if (!json_is_object(v)) {
            problem(pr, path, "must be an object");
            continue;
        }
        static const char *const allowed[] = {"public_key", "minisign", NULL};
        check_keys_only(pr, path, v, allowed);
        json_t *pem = json_object_get(v, "public_key");
        json_t *mini = json_object_get(v, "minisign");
        if ((pem != NULL) == (mini != NULL)) {
            problem(pr, path, "needs exactly one of \"public_key\" and \"minisign\"");
            continue;
        }
        mg_policy_key *k = &pol->keys[pol->key_count];
        mg_error kerr;
        mg_error_clear(&kerr);
        if (pem != NULL) {
            if (!json_is_string(pem)) {
                problem(pr, path, "public_key must be a path string");
                continue;
            }
            char *abs = resolve_path(pol, json_string_value(pem));
            uint8_t *data = NULL;
            size_t len = 0;
            if (abs == NULL) {
                problem(pr, path, "public_key is not a valid path");
            } else if (read_protected(abs, "key file", MG_MAX_KEY_FILE_BYTES, &data, &len,
                                      &kerr) != MG_OK ||
                       mg_sig_key_from_pem(data, len, &k->key, &kerr) != MG_OK) {
                problem(pr, path, "%s", kerr.message);
            }
            free(abs);
            free(data);
        } else {
            if (!json_is_string(mini)) {
                problem(pr, path, "minisign must be the public key string");
                continue;
            }
            if (mg_sig_key_from_minisign(json_string_value(mini), &k->key, &kerr) != MG_OK)
                problem(pr, path, "%s", kerr.message);
        }
        if (k->key == NULL)
            continue;
        k->name = mg_strdup(name);
        if (k->name == NULL) {
            mg_sig_key_free(k->key);
            k->key = NULL;
            problem(pr, path, "out of memory");
            continue;
        }
        pol->key_count++;
    }
}

static long find_key(const mg_policy *pol, const char *name)
{
    for (size_t i = 0; i < pol->key_count; i++) {
        if (strcmp(pol->keys[i].name, name) == 0)
            return (long)i;
    }
    return -1;
}

static void parse_source(problems *pr, const char *path, const mg_policy *pol, json_t *v,
                         mg_policy_model *m)
{
    if (!json_is_string(v)) {
        problem(pr, path, "must be a string");
        return;
    }
    const char *s = json_string_value(v);
    mg_source_info info;
    mg_error e;
    mg_error_clear(&e);
    if (strchr(s, '*') != NULL || strchr(s, '?') != NULL) {
        problem(pr, path, "wildcards ('*', '?') are not allowed: sources are exact");
        return;
    }
    if (mg_oci_is_ref(s)) {
        mg_oci_ref *ref = mg_calloc(1, sizeof *ref);
        if (ref == NULL) {
            problem(pr, path, "out of memory");
            return;
        }
        if (mg_oci_parse_ref(s, ref, &e) != MG_OK) {
            problem(pr, path, "%s", e.message);
            free(ref);
            return;
        }
        if (!ref->has_digest) {
            problem(pr, path, "a tag is not a pin: name the manifest digest "
                    "(oci://HOST/REPO@sha256:...; `modelgate policy pin` resolves a tag once)");
            free(ref);
            return;
        }
        m->source = mg_oci_canonical(ref);
        if (m->source == NULL) {
            problem(pr, path, "out of memory");
            free(ref);
            return;
        }
        m->oci = ref;
        m->remote = true;
        m->directory = false;
        return;
    }
    if (mg_source_is_url(s)) {
        if (strncasecmp(s, "https://", 8) != 0) {
            problem(pr, path, "only https:// URLs (and oci:// references) are allowed");
            return;
        }
        if (mg_source_normalize_url(s, &m->source, &info, &e) != MG_OK) {
            problem(pr, path, "%s", e.message);
            return;
        }
    } else if (strstr(s, "://") != NULL || strchr(s, ':') == s) {
        problem(pr, path, "not an absolute path or an https:// URL");
        return;
    } else {
        if (mg_source_normalize_path(s, pol->dir, &m->source, &info, &e) != MG_OK) {
            problem(pr, path, "%s", e.message);
            return;
        }
    }
    if (info.dot_segments) {
        problem(pr, path, "'.' and '..' components are not allowed");
        free(m->source);
        m->source = NULL;
        return;
    }
    m->remote = info.remote;
    m->directory = info.directory;
}

static void parse_manifest_entry(problems *pr, const char *path, const mg_policy *pol, json_t *v,
                                 mg_policy_model *m)
{
    char sub[1024];
    if (!json_is_object(v)) {
        problem(pr, path, "must be an object");
        return;
    }
    static const char *const allowed[] = {"keys", "threshold", NULL};
    check_keys_only(pr, path, v, allowed);
    json_t *keys = json_object_get(v, "keys");
    snprintf(sub, sizeof sub, "%.300s.keys", path);
    if (!json_is_array(keys) || json_array_size(keys) == 0) {
        problem(pr, sub, "must be a non-empty array of key names");
        return;
    }
    m->keys = mg_calloc(json_array_size(keys), sizeof *m->keys);
    if (m->keys == NULL) {
        problem(pr, sub, "out of memory");
        return;
    }
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k) {
        snprintf(sub, sizeof sub, "%.300s.keys[%zu]", path, i);
        if (!json_is_string(k)) {
            problem(pr, sub, "must be a key name");
            continue;
        }
        long idx = find_key(pol, json_string_value(k));
        if (idx < 0) {
            problem(pr, sub, "no usable key named '%.128s' in $.keys", json_string_value(k));
            continue;
        }
        bool dup = false;
        for (size_t j = 0; j < m->key_count; j++)
            dup = dup || m->keys[j] == (size_t)idx;
        if (dup) {
            problem(pr, sub, "key listed twice");
            continue;
        }
        m->keys[m->key_count++] = (size_t)idx;
    }
    json_t *t = json_object_get(v, "threshold");
    m->threshold = 1;
    if (t != NULL) {
        uint64_t th;
        snprintf(sub, sizeof sub, "%.300s.threshold", path);
        if (!mg_json_u64(t, &th) || th < 1 || th > json_array_size(keys))
            problem(pr, sub, "must be an integer from 1 to the number of keys");
        else
            m->threshold = (unsigned)th;
    }
}

/* "oms": {"bundle", and "keys"/"threshold" or "ca_file"/"identity", "allow_symlinks"}, plus
 * the entry's "ignore" list (read by the caller into `ignore`). */
static void parse_oms_entry(problems *pr, const char *path, const mg_policy *pol, json_t *v,
                            json_t *ignore, mg_policy_model *m)
{
    char sub[1024];
    if (!json_is_object(v)) {
        problem(pr, path, "must be an object");
        return;
    }
    static const char *const allowed[] = {"bundle", "keys", "threshold", "ca_file", "identity",
                                          "allow_symlinks", "sigstore_root", "issuer", NULL};
    check_keys_only(pr, path, v, allowed);
    mg_oms_policy *o = calloc(1, sizeof *o);
    if (o == NULL) {
        problem(pr, path, "out of memory");
        return;
    }
    m->oms = o;
    json_t *bundle = json_object_get(v, "bundle");
    snprintf(sub, sizeof sub, "%.300s.bundle", path);
    if (bundle != NULL && !json_is_string(bundle)) {
        problem(pr, sub, "must be a path string");
    } else if (m->source != NULL && m->directory) {
        const char *b = bundle != NULL ? json_string_value(bundle) : MG_OMS_DEFAULT_BUNDLE;
        if (!mg_policy_safe_relpath(b))
            problem(pr, sub, "must be a safe path inside the model folder");
        else if ((o->bundle = mg_strdup(b)) == NULL)
            problem(pr, sub, "out of memory");
    } else if (m->source != NULL) {
        if (bundle == NULL)
            problem(pr, sub, "a single-file model needs the bundle's path");
        else if ((o->bundle = resolve_path(pol, json_string_value(bundle))) == NULL)
            problem(pr, sub, "not a valid path");
    }
    if (m->source != NULL && m->remote)
        problem(pr, path, "OMS bundles are verified for local models only");
    json_t *sym = json_object_get(v, "allow_symlinks");
    if (sym != NULL && !json_is_boolean(sym)) {
        snprintf(sub, sizeof sub, "%.300s.allow_symlinks", path);
        problem(pr, sub, "must be true or false");
    }
    o->allow_symlinks = json_is_true(sym);
    json_t *keys = json_object_get(v, "keys");
    json_t *ca = json_object_get(v, "ca_file");
    json_t *root = json_object_get(v, "sigstore_root");
    int anchors = (keys != NULL) + (ca != NULL) + (root != NULL);
    if (anchors != 1) {
        problem(pr, path, "needs exactly one of \"keys\", \"ca_file\" and \"sigstore_root\"");
    } else if (root != NULL) {
        o->sigstore_mode = true;
        snprintf(sub, sizeof sub, "%.300s.sigstore_root", path);
        char *abs = json_is_string(root) ? resolve_path(pol, json_string_value(root)) : NULL;
        mg_error rerr;
        mg_error_clear(&rerr);
        if (abs == NULL)
            problem(pr, sub, "must be a valid path string");
        else if (read_protected(abs, "Sigstore trusted root", (size_t)MG_MAX_KEY_FILE_BYTES * 16u,
                                &o->ca_pem, &o->ca_len, &rerr) != MG_OK)
            problem(pr, sub, "%s", rerr.message);
        free(abs);
        static const char *const need[] = {"identity", "issuer"};
        char **dst[] = {&o->identity, &o->issuer};
        for (size_t i = 0; i < 2; i++) {
            json_t *x = json_object_get(v, need[i]);
            snprintf(sub, sizeof sub, "%.300s.%s", path, need[i]);
            if (!json_is_string(x) || json_string_length(x) == 0)
                problem(pr, sub, "Sigstore mode needs it as a non-empty string");
            else if ((*dst[i] = mg_strdup(json_string_value(x))) == NULL)
                problem(pr, sub, "out of memory");
        }
        if (json_object_get(v, "threshold") != NULL) {
            snprintf(sub, sizeof sub, "%.300s.threshold", path);
            problem(pr, sub, "only for key mode (\"keys\")");
        }
    } else if (keys != NULL) {
        json_t *km = json_pack("{s:O}", "keys", keys);
        json_t *th = json_object_get(v, "threshold");
        if (km != NULL && th != NULL)
            json_object_set(km, "threshold", th);
        if (km != NULL)
            parse_manifest_entry(pr, path, pol, km, m);
        json_decref(km);
        for (size_t i = 0; i < m->key_count; i++) {
            mg_sig_key_type t = mg_sig_key_type_of(pol->keys[m->keys[i]].key);
            if (t != MG_SIG_ECDSA_P256 && t != MG_SIG_ECDSA_P384 && t != MG_SIG_ECDSA_P521) {
                snprintf(sub, sizeof sub, "%.300s.keys[%zu]", path, i);
                problem(pr, sub, "an OMS key must be ECDSA P-256, P-384 or P-521");
            }
        }
        if (json_object_get(v, "identity") != NULL) {
            snprintf(sub, sizeof sub, "%.300s.identity", path);
            problem(pr, sub, "only for certificate mode (\"ca_file\")");
        }
    } else {
        o->cert_mode = true;
        snprintf(sub, sizeof sub, "%.300s.ca_file", path);
        char *abs = json_is_string(ca) ? resolve_path(pol, json_string_value(ca)) : NULL;
        mg_error cerr;
        mg_error_clear(&cerr);
        if (abs == NULL)
            problem(pr, sub, "must be a valid path string");
        else if (read_protected(abs, "CA file", (size_t)MG_MAX_KEY_FILE_BYTES * 16u, &o->ca_pem,
                                &o->ca_len, &cerr) != MG_OK)
            problem(pr, sub, "%s", cerr.message);
        free(abs);
        json_t *id = json_object_get(v, "identity");
        snprintf(sub, sizeof sub, "%.300s.identity", path);
        if (id != NULL && (!json_is_string(id) || json_string_length(id) == 0))
            problem(pr, sub, "must be a non-empty string");
        else if (id != NULL && (o->identity = mg_strdup(json_string_value(id))) == NULL)
            problem(pr, sub, "out of memory");
        if (json_object_get(v, "threshold") != NULL) {
            snprintf(sub, sizeof sub, "%.300s.threshold", path);
            problem(pr, sub, "only for key mode (\"keys\")");
        }
    }
    if (root == NULL && json_object_get(v, "issuer") != NULL) {
        snprintf(sub, sizeof sub, "%.300s.issuer", path);
        problem(pr, sub, "only for Sigstore mode");
    }
    if (ignore == NULL)
        return;
    char ipath[600];
    snprintf(ipath, sizeof ipath, "%.300s", path);
    char *dot = strrchr(ipath, '.');
    if (dot != NULL)
        snprintf(dot, sizeof ipath - (size_t)(dot - ipath), ".ignore");
    if (!json_is_array(ignore) || json_array_size(ignore) > 1000) {
        problem(pr, ipath, "must be an array of at most 1000 paths");
        return;
    }
    o->ignore = mg_calloc(json_array_size(ignore), sizeof *o->ignore);
    if (o->ignore == NULL && json_array_size(ignore) > 0) {
        problem(pr, ipath, "out of memory");
        return;
    }
    size_t i;
    json_t *p;
    json_array_foreach(ignore, i, p) {
        snprintf(sub, sizeof sub, "%.300s[%zu]", ipath, i);
        if (!json_is_string(p) || !mg_policy_safe_relpath(json_string_value(p)))
            problem(pr, sub, "must be a safe path relative to the model root");
        else if (o->ignore == NULL ||
                 (o->ignore[o->ignore_count] = mg_strdup(json_string_value(p))) == NULL)
            problem(pr, sub, "out of memory");
        else
            o->ignore_count++;
    }
}

static void parse_files(problems *pr, const char *path, json_t *v, mg_policy_model *m)
{
    if (!json_is_object(v) || json_object_size(v) == 0) {
        problem(pr, path, "must be a non-empty object of file paths");
        return;
    }
    if (json_object_size(v) > MG_MAX_FILES) {
        problem(pr, path, "more than %u files", MG_MAX_FILES);
        return;
    }
    m->files = mg_calloc(json_object_size(v), sizeof *m->files);
    if (m->files == NULL) {
        problem(pr, path, "out of memory");
        return;
    }
    const char *rel;
    json_t *f;
    json_object_foreach(v, rel, f) {
        char sub[1024];
        snprintf(sub, sizeof sub, "%.300s[\"%.200s\"]", path, rel);
        if (!mg_policy_safe_relpath(rel)) {
            problem(pr, sub, "not a safe relative path (no '.', '..', empty component, "
                             "backslash or control character)");
            continue;
        }
        if (!json_is_object(f)) {
            problem(pr, sub, "must be an object");
            continue;
        }
        static const char *const allowed[] = {"sha256", "sha512", "size", NULL};
        check_keys_only(pr, sub, f, allowed);
        mg_pinned_file *pf = &m->files[m->file_count];
        parse_pin(pr, sub, f, pf, true);
        pf->path = mg_strdup(rel);
        if (pf->path == NULL) {
            problem(pr, sub, "out of memory");
            continue;
        }
        m->file_count++;
    }
}

static void model_free(mg_policy_model *m);

/* "sandbox": "required" | "off" (absent: MG_SANDBOX_DEFAULT). */
static mg_sandbox_mode parse_sandbox(problems *pr, const char *path, const json_t *v)
{
    if (v == NULL)
        return MG_SANDBOX_DEFAULT;
    const char *s = json_is_string(v) ? json_string_value(v) : "";
    if (strcmp(s, "required") == 0)
        return MG_SANDBOX_REQUIRED;
    if (strcmp(s, "off") == 0)
        return MG_SANDBOX_OFF;
    problem(pr, path, "must be \"required\" or \"off\"");
    return MG_SANDBOX_DEFAULT;
}

/* "memory": "auto" | "ram" | "file" (absent: MG_MEMORY_DEFAULT). */
static mg_memory_mode parse_memory(problems *pr, const char *path, const json_t *v)
{
    if (v == NULL)
        return MG_MEMORY_DEFAULT;
    const char *s = json_is_string(v) ? json_string_value(v) : "";
    if (strcmp(s, "auto") == 0)
        return MG_MEMORY_AUTO;
    if (strcmp(s, "ram") == 0)
        return MG_MEMORY_RAM;
    if (strcmp(s, "file") == 0)
        return MG_MEMORY_FILE;
    problem(pr, path, "must be \"auto\", \"ram\" or \"file\"");
    return MG_MEMORY_DEFAULT;
}

mg_memory_mode mg_policy_memory(const mg_policy *pol, const mg_policy_model *m)
{
    mg_memory_mode s = m->memory != MG_MEMORY_DEFAULT ? m->memory : pol->memory;
    return s == MG_MEMORY_DEFAULT ? MG_MEMORY_AUTO : s;
}

const char *mg_policy_spill_dir(const mg_policy *pol)
{
    return pol->spill_dir != NULL ? pol->spill_dir : pol->cache_dir;
}

bool mg_policy_sandbox_required(const mg_policy *pol, const mg_policy_model *m)
{
    mg_sandbox_mode s = m->sandbox != MG_SANDBOX_DEFAULT ? m->sandbox : pol->sandbox;
    return s != MG_SANDBOX_OFF;
}

/* "ignore": files of a local directory model that are never read (hub.h). */
static void parse_ignore(problems *pr, const char *path, json_t *v, mg_policy_model *m)
{
    if (!json_is_array(v) || json_array_size(v) > MG_MAX_IGNORE_PATTERNS) {
        problem(pr, path, "must be an array of at most %u patterns", MG_MAX_IGNORE_PATTERNS);
        return;
    }
    if (m->source != NULL && (m->remote || !m->directory)) {
        problem(pr, path, "only a local directory model has files to ignore");
        return;
    }
    m->ignore = mg_calloc(json_array_size(v) + 1, sizeof *m->ignore);
    if (m->ignore == NULL) {
        problem(pr, path, "out of memory");
        return;
    }
    size_t i;
    json_t *p;
    json_array_foreach(v, i, p) {
        const char *why = json_is_string(p) ? mg_ignore_pattern_problem(json_string_value(p))
                                            : "must be a string";
        if (why != NULL) {
            problem(pr, path, "[%zu] %s", i, why);
            continue;
        }
        m->ignore[m->ignore_count] = mg_strdup(json_string_value(p));
        if (m->ignore[m->ignore_count] == NULL) {
            problem(pr, path, "out of memory");
            return;
        }
        m->ignore_count++;
    }
}

/* Names and sources of the models so far (hash sets: duplicates found in linear time). */
typedef struct seen_sets {
    json_t *names;   /* name -> true */
    json_t *sources; /* source without a trailing '/' -> index in $.models */
} seen_sets;

static void parse_model(problems *pr, mg_policy *pol, seen_sets *seen, size_t index, json_t *v)
{
    char path[64], sub[1024];
    snprintf(path, sizeof path, "$.models[%zu]", index);
    if (!json_is_object(v)) {
        problem(pr, path, "must be an object");
        return;
    }
    static const char *const allowed[] = {"name", "source", "sha256", "sha512", "size",
                                          "files", "manifest", "redirects", "oms", "ignore",
                                          "sandbox", "memory", NULL};
    check_keys_only(pr, path, v, allowed);
    mg_policy_model *m = &pol->models[pol->model_count];
    memset(m, 0, sizeof *m);
    bool ok = true;

    json_t *name = json_object_get(v, "name");
    snprintf(sub, sizeof sub, "%.300s.name", path);
    if (!json_is_string(name) || !valid_name(json_string_value(name))) {
        problem(pr, sub, "must be a string matching [A-Za-z0-9._-]{1,128}");
        ok = false;
    } else if (json_object_get(seen->names, json_string_value(name)) != NULL) {
        problem(pr, sub, "duplicate model name '%s'", json_string_value(name));
        ok = false;
    } else if (json_object_set_new(seen->names, json_string_value(name), json_true()) != 0) {
        problem(pr, sub, "out of memory");
        ok = false;
    }
    json_t *source = json_object_get(v, "source");
    snprintf(sub, sizeof sub, "%.300s.source", path);
    if (source == NULL) {
        problem(pr, sub, "missing");
        ok = false;
    } else {
        parse_source(pr, sub, pol, source, m);
        if (m->source == NULL) {
            ok = false;
        } else {
            /* Equal as mg_source_equal() sees them: one trailing '/' does not count. */
            size_t sl = strlen(m->source);
            if (sl > 1 && m->source[sl - 1] == '/')
                sl--;
            json_t *other = json_object_getn(seen->sources, m->source, sl);
            if (other != NULL) {
                problem(pr, sub, "duplicate source (also $.models[%lld])",
                        (long long)json_integer_value(other));
                ok = false;
            } else if (json_object_setn_new_nocheck(seen->sources, m->source, sl,
                                                    json_integer((json_int_t)index)) != 0) {
                problem(pr, sub, "out of memory");
                ok = false;
            }
        }
    }

    bool pinned = json_object_get(v, "sha256") != NULL || json_object_get(v, "sha512") != NULL;
    json_t *files = json_object_get(v, "files");
    json_t *manifest = json_object_get(v, "manifest");
    json_t *oms = json_object_get(v, "oms");
    int kinds = (pinned ? 1 : 0) + (files != NULL ? 1 : 0) + (manifest != NULL ? 1 : 0) +
                (oms != NULL ? 1 : 0);
    if (m->oci != NULL) {
        /* The manifest digest in the source is the pin; the files are its layers. A
         * "manifest" (keys, threshold) also requires a signed modelgate manifest among them. */
        m->kind = MG_MODEL_OCI;
        if (pinned || files != NULL || oms != NULL) {
            problem(pr, path, "an oci:// source is pinned by its manifest digest: it takes no "
                    "\"sha256\"/\"sha512\", \"files\" or \"oms\" (a \"manifest\" may be "
                    "required on top)");
            ok = false;
        } else if (manifest != NULL) {
            snprintf(sub, sizeof sub, "%.300s.manifest", path);
            parse_manifest_entry(pr, sub, pol, manifest, m);
            m->kind = MG_MODEL_OCI;
        }
    } else if (kinds != 1) {
        problem(pr, path, "needs exactly one of \"sha256\"/\"sha512\", \"files\", "
                          "\"manifest\" and \"oms\"");
        ok = false;
    } else if (oms != NULL) {
        m->kind = MG_MODEL_OMS;
        snprintf(sub, sizeof sub, "%.300s.oms", path);
        parse_oms_entry(pr, sub, pol, oms, json_object_get(v, "ignore"), m);
    } else if (pinned) {
        m->kind = MG_MODEL_PINNED_FILE;
        if (m->source != NULL && m->directory) {
            snprintf(sub, sizeof sub, "%.300s.source", path);
            problem(pr, sub, "a pinned single file must not end in '/'");
            ok = false;
        }
        m->files = mg_calloc(1, sizeof *m->files);
        if (m->files == NULL) {
            problem(pr, path, "out of memory");
            ok = false;
        } else {
            parse_pin(pr, path, v, &m->files[0], true);
            m->file_count = 1;
            const char *base = m->source ? strrchr(m->source, '/') : NULL;
            m->files[0].path = mg_strdup(base != NULL && base[1] != '\0' ? base + 1 : "model");
        }
    } else if (files != NULL) {
        m->kind = MG_MODEL_PINNED_DIR;
        snprintf(sub, sizeof sub, "%.300s.files", path);
        parse_files(pr, sub, files, m);
    } else {
        m->kind = MG_MODEL_MANIFEST;
        snprintf(sub, sizeof sub, "%.300s.manifest", path);
        parse_manifest_entry(pr, sub, pol, manifest, m);
    }
    /* A remote file is capped at its pinned size as bytes arrive: without one a server could
     * push up to the 1 TiB cap of a file before the digest fails. */
    for (size_t i = 0; m->remote && m->files != NULL && i < m->file_count; i++) {
        if (!m->files[i].has_size && m->files[i].path != NULL) {
            if (m->kind == MG_MODEL_PINNED_FILE)
                snprintf(sub, sizeof sub, "%.300s.size", path);
            else
                snprintf(sub, sizeof sub, "%.300s.files[\"%.200s\"].size", path,
                         m->files[i].path);
            problem(pr, sub, "missing: a remote (https) file needs its size pinned");
        }
    }
    if (!pinned && m->oci == NULL && json_object_get(v, "size") != NULL) {
        snprintf(sub, sizeof sub, "%.300s.size", path);
        problem(pr, sub, "only a single pinned file has a size here");
    }
    if (m->oci != NULL && json_object_get(v, "size") != NULL) {
        snprintf(sub, sizeof sub, "%.300s.size", path);
        problem(pr, sub, "an oci:// source takes no size (the manifest gives each layer's)");
    }
    if (kinds == 1 && !pinned && oms == NULL && m->oci == NULL && m->source != NULL &&
        !m->directory) {
        snprintf(sub, sizeof sub, "%.300s.source", path);
        problem(pr, sub, "a \"files\" or \"manifest\" model is a directory: end the source in '/'");
        ok = false;
    }
    json_t *redirects = json_object_get(v, "redirects");
    if (redirects != NULL) {
        snprintf(sub, sizeof sub, "%.300s.redirects", path);
        const char *r = json_is_string(redirects) ? json_string_value(redirects) : "";
        if (strcmp(r, "same-host") == 0)
            m->redirects = MG_REDIRECTS_SAME_HOST;
        else if (strcmp(r, "none") == 0)
            m->redirects = MG_REDIRECTS_NONE;
        else if (strcmp(r, "https") == 0)
            m->redirects = MG_REDIRECTS_HTTPS;
        else
            problem(pr, sub, "must be \"same-host\", \"none\" or \"https\"");
        if (m->source != NULL && !m->remote)
            problem(pr, sub, "only remote (https) sources have redirects");
    }
    snprintf(sub, sizeof sub, "%.300s.sandbox", path);
    m->sandbox = parse_sandbox(pr, sub, json_object_get(v, "sandbox"));
    snprintf(sub, sizeof sub, "%.300s.memory", path);
    m->memory = parse_memory(pr, sub, json_object_get(v, "memory"));
    if (m->memory == MG_MEMORY_FILE && m->source != NULL && m->remote)
        problem(pr, sub, "\"file\" is for local models (downloads are held in memory)");
    json_t *ignore = json_object_get(v, "ignore");
    if (ignore != NULL) {
        snprintf(sub, sizeof sub, "%.300s.ignore", path);
        parse_ignore(pr, sub, ignore, m);
    }
    if (m->source != NULL && !m->remote && m->directory)
        m->hub_snapshot = mg_hub_is_snapshot(m->source);
    m->name = json_is_string(name) ? mg_strdup(json_string_value(name)) : NULL;
    if (m->name == NULL)
        ok = false;
    /* Keep the entry even when it has problems, so that later entries are checked against
     * it for duplicates; a policy with any problem is refused as a whole. */
    if (m->name != NULL)
        pol->model_count++;
    else
        model_free(m);
    (void)ok;
}

static void model_free(mg_policy_model *m)
{
    free(m->name);
    free(m->source);
    for (size_t i = 0; i < m->file_count; i++)
        free(m->files[i].path);
    free(m->files);
    free(m->keys);
    free(m->oci);
    mg_oms_policy_free(m->oms);
    for (size_t i = 0; i < m->ignore_count; i++)
        free(m->ignore[i]);
    free(m->ignore);
}

void mg_policy_close(mg_policy *pol)
{
    if (pol == NULL)
        return;
    for (size_t i = 0; i < pol->key_count; i++) {
        free(pol->keys[i].name);
        mg_sig_key_free(pol->keys[i].key);
    }
    free(pol->keys);
    for (size_t i = 0; i < pol->model_count; i++)
        model_free(&pol->models[i]);
    free(pol->models);
    free(pol->path);
    free(pol->dir);
    free(pol->audit_log);
    free(pol->state_dir);
    free(pol->cache_dir);
    free(pol->spill_dir);
    free(pol->ca_file);
    free(pol->credentials_file);
    for (size_t i = 0; i < pol->cred_count; i++) {
        mg_credential *c = &pol->creds[i];
        free(c->host);
        free(c->username);
        if (c->password != NULL)
            explicit_bzero(c->password, strlen(c->password));
        free(c->password);
        if (c->token != NULL)
            explicit_bzero(c->token, strlen(c->token));
        free(c->token);
        free(c->client_cert);
        free(c->client_key);
    }
    free(pol->creds);
    free(pol);
}

/* ---- credentials -------------------------------------------------------------------- */

/* A credential string: printable ASCII without spaces' neighbours that could split a header
 * (no control characters at all), at most 8 KiB. */
static bool cred_text_ok(const json_t *v)
{
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 8192)
        return false;
    const char *s = json_string_value(v);
    for (size_t i = 0; i < json_string_length(v); i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c >= 0x7f)
            return false;
    }
    return true;
}

/*
 * The credentials file: {"hosts": {"HOST[:PORT]": ONE OF {"username","password"} | {"token"}
 * | {"client_cert","client_key"}}}, protected like a key file (owner, mode, no symlink).
 * Problems name the JSON path inside that file, never a secret.
 */
static void load_credentials(problems *pr, mg_policy *pol)
{
    uint8_t *data = NULL;
    size_t len = 0;
    mg_error e;
    mg_error_clear(&e);
    if (read_protected(pol->credentials_file, "credentials file", MG_MAX_KEY_FILE_BYTES, &data,
                       &len, &e) != MG_OK) {
        problem(pr, "$.credentials", "%s", e.message);
        return;
    }
    json_t *root = mg_json_parse(data, len, "credentials file", MG_E_POLICY,
                                 &mg_json_caps_policy, &e);
    explicit_bzero(data, len);
    free(data);
    if (root == NULL) {
        problem(pr, "$.credentials", "%s", e.message);
        return;
    }
    json_t *hosts = json_object_get(root, "hosts");
    if (!json_is_object(root) || json_object_size(root) != 1 || !json_is_object(hosts)) {
        problem(pr, "$.credentials", "the credentials file must be {\"hosts\": {...}}");
        json_decref(root);
        return;
    }
    pol->creds = mg_calloc(json_object_size(hosts) ? json_object_size(hosts) : 1,
                           sizeof *pol->creds);
    if (pol->creds == NULL) {
        problem(pr, "$.credentials", "out of memory");
        json_decref(root);
        return;
    }
    const char *host;
    json_t *c;
    json_object_foreach(hosts, host, c) {
        char where[400];
        snprintf(where, sizeof where, "$.credentials: hosts[\"%.200s\"]", host);
        char canon[MG_OCI_HOST_MAX];
        mg_oci_ref probe;
        char ref[MG_OCI_HOST_MAX + 32];
        /* the host grammar of an oci:// reference, reused */
        snprintf(ref, sizeof ref, "oci://%s/x:t", host);
        if (strlen(host) >= MG_OCI_HOST_MAX || mg_oci_parse_ref(ref, &probe, &e) != MG_OK) {
            problem(pr, where, "not a HOST or HOST:PORT");
            continue;
        }
        mg_strlcpy(canon, probe.host, sizeof canon);
        json_t *user = json_object_get(c, "username"), *pass = json_object_get(c, "password");
        json_t *tok = json_object_get(c, "token");
        json_t *cert = json_object_get(c, "client_cert"), *key = json_object_get(c, "client_key");
        int forms = (user != NULL || pass != NULL) + (tok != NULL) + (cert != NULL || key != NULL);
        if (!json_is_object(c) || forms != 1 ||
            json_object_size(c) != (size_t)(user != NULL) + (size_t)(pass != NULL) +
                                       (size_t)(tok != NULL) + (size_t)(cert != NULL) +
                                       (size_t)(key != NULL)) {
            problem(pr, where, "must be exactly one of {\"username\", \"password\"}, "
                    "{\"token\"}, {\"client_cert\", \"client_key\"}");
            continue;
        }
        if ((user != NULL || pass != NULL) && (!cred_text_ok(user) || !cred_text_ok(pass) ||
                                               strchr(json_string_value(user), ':') != NULL)) {
            problem(pr, where, "username and password must be printable ASCII (no ':' in the "
                    "username)");
            continue;
        }
        if (tok != NULL && !cred_text_ok(tok)) {
            problem(pr, where, "the token must be printable ASCII");
            continue;
        }
        if ((cert != NULL || key != NULL) &&
            (!json_is_string(cert) || !json_is_string(key))) {
            problem(pr, where, "client_cert and client_key must both be paths");
            continue;
        }
        for (size_t i = 0; i < pol->cred_count; i++) {
            if (pol->creds[i].host != NULL && strcmp(pol->creds[i].host, canon) == 0)
                problem(pr, where, "the same host twice");
        }
        mg_credential *cr = &pol->creds[pol->cred_count++];
        cr->host = mg_strdup(canon);
        if (user != NULL) {
            cr->username = mg_strdup(json_string_value(user));
            cr->password = mg_strdup(json_string_value(pass));
        }
        if (tok != NULL)
            cr->token = mg_strdup(json_string_value(tok));
        if (cert != NULL) {
            cr->client_cert = resolve_path(pol, json_string_value(cert));
            cr->client_key = resolve_path(pol, json_string_value(key));
            /* the key is a secret: protected like the credentials file itself */
            uint8_t *kd = NULL;
            size_t kl = 0;
            if (cr->client_key == NULL || cr->client_cert == NULL) {
                problem(pr, where, "client_cert or client_key is not a valid path");
            } else if (read_protected(cr->client_key, "client key", MG_MAX_KEY_FILE_BYTES, &kd,
                                      &kl, &e) != MG_OK) {
                problem(pr, where, "%s", e.message);
            }
            if (kd != NULL) {
                explicit_bzero(kd, kl);
                free(kd);
            }
        }
        if (cr->host == NULL || (user != NULL && (cr->username == NULL || cr->password == NULL)) ||
            (tok != NULL && cr->token == NULL))
            problem(pr, where, "out of memory");
    }
    json_decref(root);
}

const mg_credential *mg_policy_credential(const mg_policy *pol, const char *host)
{
    for (size_t i = 0; pol != NULL && host != NULL && i < pol->cred_count; i++) {
        if (pol->creds[i].host != NULL && strcmp(pol->creds[i].host, host) == 0)
            return &pol->creds[i];
    }
    return NULL;
}

/* "limits": {"parser_memory": BYTES}: the per-load budget of memory the parsers make. */
static void parse_limits(problems *pr, mg_policy *pol, json_t *v)
{
    pol->parser_memory = MG_DEFAULT_PARSER_MEMORY;
    if (v == NULL)
        return;
    if (!json_is_object(v)) {
        problem(pr, "$.limits", "must be an object");
        return;
    }
    static const char *const allowed[] = {"parser_memory", NULL};
    check_keys_only(pr, "$.limits", v, allowed);
    json_t *pm = json_object_get(v, "parser_memory");
    if (pm != NULL && (!mg_json_u64(pm, &pol->parser_memory) || pol->parser_memory == 0))
        problem(pr, "$.limits.parser_memory", "must be a number of bytes >= 1");
}

static void parse_policy(problems *pr, mg_policy *pol, const uint8_t *data, size_t len)
{
    mg_error jerr;
    mg_error_clear(&jerr);
    json_t *root = mg_json_parse(data, len, "policy", MG_E_POLICY, &mg_json_caps_policy, &jerr);
    if (root == NULL) {
        problem(pr, "$", "%s", jerr.message);
        return;
    }
    if (!json_is_object(root)) {
        problem(pr, "$", "must be a JSON object");
        json_decref(root);
        return;
    }
    static const char *const allowed[] = {"modelgate_policy", "keys", "audit_log", "state_dir",
                                          "cache_dir", "ca_file", "credentials", "models",
                                          "sandbox", "limits", "spill_dir", "memory", NULL};
    check_keys_only(pr, "$", root, allowed);
    pol->sandbox = parse_sandbox(pr, "$.sandbox", json_object_get(root, "sandbox"));
    pol->memory = parse_memory(pr, "$.memory", json_object_get(root, "memory"));
    parse_limits(pr, pol, json_object_get(root, "limits"));
    json_t *ver = json_object_get(root, "modelgate_policy");
    if (ver == NULL)
        problem(pr, "$.modelgate_policy", "missing");
    else if (!json_is_integer(ver) || json_integer_value(ver) != 1)
        problem(pr, "$.modelgate_policy", "must be 1");

    static const char *const path_keys[] = {"audit_log", "state_dir", "cache_dir", "ca_file",
                                            "credentials", "spill_dir"};
    char **path_dst[] = {&pol->audit_log, &pol->state_dir, &pol->cache_dir, &pol->ca_file,
                         &pol->credentials_file, &pol->spill_dir};
    for (size_t i = 0; i < sizeof path_keys / sizeof path_keys[0]; i++) {
        json_t *v = json_object_get(root, path_keys[i]);
        if (v == NULL)
            continue;
        char sub[64];
        snprintf(sub, sizeof sub, "$.%s", path_keys[i]);
        if (!json_is_string(v) || json_string_length(v) == 0)
            problem(pr, sub, "must be a non-empty path string");
        else if ((*path_dst[i] = resolve_path(pol, json_string_value(v))) == NULL)
            problem(pr, sub, "not a valid path");
    }

    json_t *keys = json_object_get(root, "keys");
    if (keys != NULL)
        parse_keys(pr, pol, keys);
    if (pol->credentials_file != NULL)
        load_credentials(pr, pol);

    json_t *models = json_object_get(root, "models");
    if (models == NULL) {
        problem(pr, "$.models", "missing");
    } else if (!json_is_array(models)) {
        problem(pr, "$.models", "must be an array");
    } else {
        pol->models = mg_calloc(json_array_size(models), sizeof *pol->models);
        if (pol->models == NULL) {
            problem(pr, "$.models", "out of memory");
        } else {
            size_t i;
            json_t *m;
            seen_sets seen = {json_object(), json_object()};
            if (seen.names == NULL || seen.sources == NULL)
                problem(pr, "$.models", "out of memory");
            else
                json_array_foreach(models, i, m) parse_model(pr, pol, &seen, i, m);
            json_decref(seen.names);
            json_decref(seen.sources);
        }
    }
    if (mg_policy_spill_dir(pol) == NULL) {
        bool file = pol->memory == MG_MEMORY_FILE;
        for (size_t i = 0; i < pol->model_count; i++)
            file = file || pol->models[i].memory == MG_MEMORY_FILE;
        if (file)
            problem(pr, "$.memory", "\"file\" needs a folder for the spill files: spill_dir "
                    "or cache_dir");
    }
    json_decref(root);
}

static mg_status verify_policy_signature(const mg_policy *pol, const char *key_path,
                                         const uint8_t *data, size_t len, mg_error *err)
{
    char *abs_key = NULL;
    mg_source_info info;
    if (mg_source_normalize_path(key_path, NULL, &abs_key, &info, err) != MG_OK)
        return mg_fail(err, MG_E_POLICY, "policy key path is invalid");
    uint8_t *pem = NULL, *sig = NULL;
    size_t pem_len = 0, sig_len = 0;
    mg_sig_key *key = NULL;
    mg_status s = read_protected(abs_key, "policy key", MG_MAX_KEY_FILE_BYTES, &pem, &pem_len,
                                 err);
    if (s == MG_OK) {
        s = mg_sig_key_from_pem(pem, pem_len, &key, err);
        if (s != MG_OK) {
            char why[MG_ERROR_MESSAGE_MAX];
            mg_strlcpy(why, err->message, sizeof why);
            s = mg_fail(err, MG_E_POLICY, "policy key %s: %s", abs_key, why);
        }
    }
    if (s == MG_OK) {
        /* SPEC §2: the detached signature is POLICY.sig, the policy file's name plus ".sig". */
        char sig_path[4096];
        int n = snprintf(sig_path, sizeof sig_path, "%s.sig", pol->path);
        if (n < 0 || (size_t)n >= sizeof sig_path)
            s = mg_fail(err, MG_E_POLICY, "policy path too long");
        else
            s = read_protected(sig_path, "policy signature", MG_MAX_SIGNATURE_BYTES, &sig,
                               &sig_len, err);
    }
    if (s == MG_OK && mg_sig_verify_raw(key, data, len, sig, sig_len, err) != MG_OK)
        s = mg_fail(err, MG_E_POLICY, "policy %s: %s.sig is not a valid signature by the "
                    "policy key", pol->path, pol->path);
    mg_sig_key_free(key);
    free(pem);
    free(sig);
    free(abs_key);
    return s;
}

static mg_status policy_load(const char *path, const char *policy_key, problems *pr,
                             mg_policy **out, mg_error *err)
{
    *out = NULL;
    mg_error_clear(err);
    if (path == NULL)
        path = getenv("MODELGATE_POLICY");
    if (path == NULL || path[0] == '\0')
        path = MG_DEFAULT_POLICY;
    if (policy_key == NULL)
        policy_key = getenv("MODELGATE_POLICY_KEY");
    if (policy_key != NULL && policy_key[0] == '\0')
        policy_key = NULL;

    mg_policy *pol = calloc(1, sizeof *pol);
    if (pol == NULL)
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    mg_source_info info;
    if (mg_source_normalize_path(path, NULL, &pol->path, &info, err) != MG_OK || info.directory) {
        mg_policy_close(pol);
        return mg_fail(err, MG_E_POLICY, "invalid policy path");
    }
    const char *slash = strrchr(pol->path, '/');
    pol->dir = mg_strndup(pol->path, slash == pol->path ? 1 : (size_t)(slash - pol->path));
    if (pol->dir == NULL) {
        mg_policy_close(pol);
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    }
    uint8_t *data = NULL;
    size_t len = 0;
    mg_status s = read_protected(pol->path, "policy", MG_MAX_POLICY_BYTES, &data, &len, err);
    if (s == MG_OK && policy_key != NULL)
        s = verify_policy_signature(pol, policy_key, data, len, err);
    if (s != MG_OK) {
        if (pr->report != NULL)
            pr->report(err->message, pr->ctx);
        free(data);
        mg_policy_close(pol);
        return s;
    }
    parse_policy(pr, pol, data, len);
    free(data);
    check_side_files(pr, pol);
    if (pr->count > 0) {
        mg_policy_close(pol);
        return MG_E_POLICY;
    }
    *out = pol;
    return MG_OK;
}

mg_status mg_policy_from_buffer(const uint8_t *data, size_t len, const char *dir, mg_policy **out,
                                mg_error *err)
{
    *out = NULL;
    mg_error_clear(err);
    problems pr = {NULL, NULL, 0, err};
    mg_policy *pol = calloc(1, sizeof *pol);
    if (pol == NULL)
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    pol->dir = mg_strdup(dir);
    pol->path = mg_strdup("(buffer)");
    if (pol->dir == NULL || pol->path == NULL) {
        mg_policy_close(pol);
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    }
    parse_policy(&pr, pol, data, len);
    if (pr.count > 0) {
        mg_policy_close(pol);
        return MG_E_POLICY;
    }
    *out = pol;
    return MG_OK;
}

mg_status mg_policy_open(const char *path, const char *policy_key, mg_policy **out, mg_error *err)
{
    mg_error_clear(err);
    problems pr = {NULL, NULL, 0, err};
    mg_status s = policy_load(path, policy_key, &pr, out, err);
    if (s != MG_OK && pr.count > 1) {
        size_t n = strlen(err->message);
        snprintf(err->message + n, sizeof err->message - n, " (and %zu more problems)",
                 pr.count - 1);
    }
    return s;
}

mg_status mg_policy_check(const char *path, const char *policy_key,
                          void (*report)(const char *problem, void *ctx), void *ctx,
                          mg_error *err)
{
    mg_error_clear(err);
    problems pr = {report, ctx, 0, err};
    mg_policy *pol = NULL;
    mg_status s = policy_load(path, policy_key, &pr, &pol, err);
    mg_policy_close(pol);
    return s;
}

const char *mg_policy_path(const mg_policy *policy)
{
    return policy->path;
}

mg_status mg_policy_find(const mg_policy *pol, const char *source, const mg_policy_model **out,
                         mg_error *err)
{
    *out = NULL;
    for (size_t i = 0; i < pol->model_count; i++) {
        if (strcmp(pol->models[i].name, source) == 0) {
            *out = &pol->models[i];
            return MG_OK;
        }
    }
    char *canon = NULL;
    mg_source_info info;
    mg_error e;
    mg_error_clear(&e);
    mg_status s;
    if (mg_oci_is_ref(source)) {
        mg_oci_ref ref;
        memset(&info, 0, sizeof info);
        s = mg_oci_parse_ref(source, &ref, &e);
        if (s == MG_OK && (canon = mg_oci_canonical(&ref)) == NULL)
            s = mg_fail(&e, MG_E_UNTRUSTED, "an oci:// source is named by its digest");
    } else if (mg_source_is_url(source))
        s = mg_source_normalize_url(source, &canon, &info, &e);
    else
        s = mg_source_normalize_path(source, NULL, &canon, &info, &e);
    if (s == MG_OK) {
        for (size_t i = 0; i < pol->model_count; i++) {
            /* "/m/model.npy/" names a folder: never the single file "/m/model.npy". */
            if (info.directory && pol->models[i].kind == MG_MODEL_PINNED_FILE)
                continue;
            if (mg_source_equal(pol->models[i].source, canon)) {
                *out = &pol->models[i];
                free(canon);
                return MG_OK;
            }
        }
    }
    free(canon);
    return mg_fail(err, MG_E_UNTRUSTED, "source '%.300s' is not in the policy%s%s", source,
                   s != MG_OK ? ": " : "", s != MG_OK ? e.message : "");
}
