/*
 * Signed manifests (SPEC §3). The order is the point: the caps, then the signatures over the
 * exact bytes, and only then is the JSON parsed and its rules applied, then rollback.
 *
 * Decisions:
 * - A signature file that verifies under no key listed for the model is ignored (not an
 *   error by itself: a stale or foreign signature beside valid ones does no harm, as in TUF);
 *   the threshold still has to be met by distinct public keys. One key signing twice (two
 *   .sig files, or a .sig and a .minisig by the same Ed25519 key) counts once, as do two
 *   policy key names that hold the same public key.
 * - Every failure of a signature or of the manifest is MG_E_SIGNATURE; caps are MG_E_LIMIT;
 *   an unreadable or corrupt rollback state file is MG_E_IO (fail closed).
 * - Rollback state: state_dir/<model name>.version holds the highest version verified, in
 *   decimal. It is compared and replaced under an exclusive flock of state_dir itself, so
 *   concurrent loads never lower it; the new file is written unnamed (O_TMPFILE), synced,
 *   linked to ".NAME.version.tmp" and renamed over the old one (a crash between the two can
 *   leave that one name, which the next store removes under the lock).
 */
#define _GNU_SOURCE
#include "manifest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "shard.h"
#include "util/checked.h"
#include "util/fsutil.h"
#include "util/hex.h"
#include "util/json.h"

/* Longest wait for another process storing a version. */
#define MG_STATE_LOCK_WAIT_MS 30000u
#define STATE_FILE_MAX 32 /* "18446744073709551615\n" fits */

bool mg_manifest_is_own_file(const char *path)
{
    static const char *const own[] = {
        "manifest.json",       "manifest.json.sig",   "manifest.json.sig.1",
        "manifest.json.sig.2", "manifest.json.sig.3", "manifest.json.sig.4",
        "manifest.json.sig.5", "manifest.json.sig.6", "manifest.json.sig.7",
        "manifest.json.sig.8", "manifest.json.sig.9", "manifest.json.minisig",
    };
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++) {
        if (strcmp(path, own[i]) == 0)
            return true;
    }
    return false;
}

void mg_manifest_free(mg_manifest *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->file_count; i++) {
        free(m->files[i].path);
        free(m->files[i].shards);
    }
    free(m->files);
    free(m->name);
    memset(m, 0, sizeof *m);
}

/* ---- paths and times ------------------------------------------------------------------ */

bool mg_manifest_path_ok(const char *path)
{
    size_t len = strnlen(path, MG_MANIFEST_MAX_PATH + 1);
    if (len == 0 || len > MG_MANIFEST_MAX_PATH)
        return false;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        unsigned char c = (unsigned char)path[i];
        if (i < len && (c < 0x20 || c == 0x7f || c == '\\'))
            return false;
        if (i == len || c == '/') {
            size_t n = i - start;
            if (n == 0) /* leading '/', trailing '/', or "//" */
                return false;
            if ((n == 1 && path[start] == '.') ||
                (n == 2 && path[start] == '.' && path[start + 1] == '.'))
                return false;
            start = i + 1;
        }
    }
    return true;
}

static bool digits(const char *s, size_t n, unsigned *out)
{
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return true;
}

static bool is_leap(unsigned y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian), Howard Hinnant's algorithm. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (int64_t)(m > 2 ? m - 3 : m + 9) + 2) / 5 + (int64_t)d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

bool mg_manifest_parse_time(const char *text, int64_t *out)
{
    static const unsigned month_days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    /* YYYY-MM-DDTHH:MM:SSZ */
    if (strnlen(text, 21) != 20 || text[4] != '-' || text[7] != '-' || text[10] != 'T' ||
        text[13] != ':' || text[16] != ':' || text[19] != 'Z')
        return false;
    unsigned y, mo, d, h, mi, s;
    if (!digits(text, 4, &y) || !digits(text + 5, 2, &mo) || !digits(text + 8, 2, &d) ||
        !digits(text + 11, 2, &h) || !digits(text + 14, 2, &mi) || !digits(text + 17, 2, &s))
        return false;
    if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 59)
        return false;
    unsigned dim = month_days[mo - 1] + (mo == 2 && is_leap(y) ? 1u : 0u);
    if (d > dim)
        return false;
    *out = days_from_civil(y, mo, d) * 86400 + (int64_t)h * 3600 + (int64_t)mi * 60 + s;
    return true;
}

/* ---- the manifest's JSON ---------------------------------------------------------------- */

static bool only_keys(json_t *obj, const char *const *allowed, size_t n, const char **bad)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        bool found = false;
        for (size_t i = 0; i < n && !found; i++)
            found = strcmp(k, allowed[i]) == 0;
        if (!found) {
            *bad = k;
            return false;
        }
    }
    return true;
}

static int compare_files(const void *a, const void *b)
{
    return strcmp(((const mg_pinned_file *)a)->path, ((const mg_pinned_file *)b)->path);
}

static mg_status parse_file_entry(json_t *f, size_t index, mg_pinned_file *out, mg_error *err)
{
    static const char *const keys[] = {"path", "size", "sha256", "sha512", "shard_size",
                                       "sha256_shards"};
    const char *bad = NULL;
    if (!json_is_object(f))
        return mg_fail(err, MG_E_SIGNATURE, "manifest: files[%zu] is not an object", index);
    if (!only_keys(f, keys, sizeof keys / sizeof keys[0], &bad))
        return mg_fail(err, MG_E_SIGNATURE, "manifest: files[%zu]: unknown key '%.64s'", index,
                       bad);
    json_t *path = json_object_get(f, "path");
    if (!json_is_string(path))
        return mg_fail(err, MG_E_SIGNATURE, "manifest: files[%zu].path is not a string", index);
    const char *p = json_string_value(path);
    if (strlen(p) != json_string_length(path) || !mg_manifest_path_ok(p))
        return mg_fail(err, MG_E_SIGNATURE,
                       "manifest: files[%zu].path '%.200s' is not a safe relative path", index, p);
    if (mg_manifest_is_own_file(p))
        return mg_fail(err, MG_E_SIGNATURE, "manifest: files[%zu] lists the manifest's own file "
                       "'%.200s'", index, p);
    uint64_t size;
    if (!mg_json_u64(json_object_get(f, "size"), &size))
        return mg_fail(err, MG_E_SIGNATURE,
                       "manifest: files[%zu].size is missing or not an integer >= 0", index);
    if (size > MG_MAX_MODEL_FILE_BYTES)
        return mg_fail(err, MG_E_LIMIT, "manifest: files[%zu].size is over the cap of one file",
                       index);
    json_t *h256 = json_object_get(f, "sha256");
    json_t *h512 = json_object_get(f, "sha512");
    json_t *shards = json_object_get(f, "sha256_shards");
    if ((h256 != NULL) + (h512 != NULL) + (shards != NULL) != 1)
        return mg_fail(err, MG_E_SIGNATURE, "manifest: files[%zu] needs exactly one of sha256, "
                       "sha512 and sha256_shards", index);
    if ((shards != NULL) != (json_object_get(f, "shard_size") != NULL))
        return mg_fail(err, MG_E_SIGNATURE, "manifest: files[%zu]: shard_size and "
                       "sha256_shards go together", index);
    if (shards != NULL) {
        /* Sharded: one SHA-256 per shard_size bytes, hashed on every core when loaded. */
        uint64_t ss;
        if (!mg_json_u64(json_object_get(f, "shard_size"), &ss) || ss == 0 || size == 0)
            return mg_fail(err, MG_E_SIGNATURE, "manifest: files[%zu].shard_size must be an "
                           "integer >= 1 and the file not empty", index);
        uint64_t count = size / ss + (size % ss != 0);
        if (!json_is_array(shards) || json_array_size(shards) != count)
            return mg_fail(err, MG_E_SIGNATURE, "manifest: files[%zu].sha256_shards must hold "
                           "%llu digests (size / shard_size, rounded up)", index,
                           (unsigned long long)count);
        out->shards = mg_calloc(count, sizeof *out->shards);
        if (out->shards == NULL)
            return mg_fail(err, MG_E_LIMIT, "out of memory");
        for (size_t k = 0; k < count; k++) {
            json_t *h = json_array_get(shards, k);
            if (!json_is_string(h) || json_string_length(h) != 64 ||
                !mg_hex_decode(json_string_value(h), out->shards[k], 32))
                return mg_fail(err, MG_E_SIGNATURE, "manifest: files[%zu].sha256_shards[%zu] "
                               "is not 64 hex digits", index, k);
        }
        out->shard_count = (size_t)count;
        out->shard_size = ss;
        out->alg = MG_SHA256;
        out->has_size = true;
        out->size = size;
        if (mg_shard_root(out, out->digest, err) != MG_OK)
            return MG_E_LIMIT;
        out->path = mg_strdup(p);
        return out->path != NULL ? MG_OK : mg_fail(err, MG_E_LIMIT, "out of memory");
    }
    mg_digest_alg alg = h256 != NULL ? MG_SHA256 : MG_SHA512;
    json_t *hex = h256 != NULL ? h256 : h512;
    if (!json_is_string(hex) || !mg_hex_decode(json_string_value(hex), out->digest,
                                               mg_digest_len(alg)))
        return mg_fail(err, MG_E_SIGNATURE, "manifest: files[%zu].%s is not %zu hex digits",
                       index, mg_digest_name(alg), 2 * mg_digest_len(alg));
    out->path = mg_strdup(p);
    if (out->path == NULL)
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    out->alg = alg;
    out->has_size = true;
    out->size = size;
    return MG_OK;
}

static mg_status parse_files(json_t *files, mg_manifest *m, mg_error *err)
{
    if (!json_is_array(files))
        return mg_fail(err, MG_E_SIGNATURE, "manifest: files is missing or not an array");
    size_t n = json_array_size(files);
    if (n == 0)
        return mg_fail(err, MG_E_SIGNATURE, "manifest: files is empty");
    if (n > MG_MAX_FILES)
        return mg_fail(err, MG_E_LIMIT, "manifest: more than %u files", MG_MAX_FILES);
    m->files = mg_calloc(n, sizeof *m->files);
    if (m->files == NULL)
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    for (size_t i = 0; i < n; i++) {
        mg_status st = parse_file_entry(json_array_get(files, i), i, &m->files[i], err);
        if (st != MG_OK) {
            free(m->files[i].shards); /* an entry that failed half-way is not counted */
            free(m->files[i].path);
            m->files[i].shards = NULL;
            m->files[i].path = NULL;
            return st;
        }
        m->file_count++;
    }
    if (m->file_count > 1)
        qsort(m->files, m->file_count, sizeof *m->files, compare_files);
    for (size_t i = 1; i < m->file_count; i++) {
        if (strcmp(m->files[i - 1].path, m->files[i].path) == 0)
            return mg_fail(err, MG_E_SIGNATURE, "manifest: path '%.200s' is listed twice",
                           m->files[i].path);
    }
    return MG_OK;
}

static mg_status parse_document(json_t *root, int64_t now, mg_manifest *m, mg_error *err)
{
    static const char *const keys[] = {"modelgate_manifest", "name", "version", "expires",
                                       "files"};
    const char *bad = NULL;
    if (!json_is_object(root))
        return mg_fail(err, MG_E_SIGNATURE, "manifest: not a JSON object");
    if (!only_keys(root, keys, sizeof keys / sizeof keys[0], &bad))
        return mg_fail(err, MG_E_SIGNATURE, "manifest: unknown key '%.64s'", bad);
    uint64_t schema;
    if (!mg_json_u64(json_object_get(root, "modelgate_manifest"), &schema) || schema != 1)
        return mg_fail(err, MG_E_SIGNATURE, "manifest: modelgate_manifest must be 1");
    json_t *name = json_object_get(root, "name");
    if (!json_is_string(name) || json_string_length(name) == 0 ||
        strlen(json_string_value(name)) != json_string_length(name))
        return mg_fail(err, MG_E_SIGNATURE, "manifest: name is missing or not a string");
    uint64_t version;
    if (!mg_json_u64(json_object_get(root, "version"), &version) || version < 1)
        return mg_fail(err, MG_E_SIGNATURE, "manifest: version must be an integer >= 1");
    json_t *expires = json_object_get(root, "expires");
    if (expires != NULL) {
        int64_t when;
        if (!json_is_string(expires) || !mg_manifest_parse_time(json_string_value(expires), &when))
            return mg_fail(err, MG_E_SIGNATURE,
                           "manifest: expires is not a UTC time \"YYYY-MM-DDTHH:MM:SSZ\"");
        if (when <= now)
            return mg_fail(err, MG_E_SIGNATURE, "manifest expired at %s",
                           json_string_value(expires));
    }
    m->name = mg_strdup(json_string_value(name));
    if (m->name == NULL)
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    m->version = version;
    return parse_files(json_object_get(root, "files"), m, err);
}

mg_status mg_manifest_parse_unverified(const uint8_t *data, size_t len, int64_t now,
                                       mg_manifest *out, mg_error *err)
{
    memset(out, 0, sizeof *out);
    if (len > MG_MAX_MANIFEST_BYTES)
        return mg_fail(err, MG_E_LIMIT, "manifest larger than %u bytes", MG_MAX_MANIFEST_BYTES);
    json_t *root = mg_json_parse(data, len, "manifest", MG_E_SIGNATURE, &mg_json_caps_manifest, err);
    if (root == NULL)
        return err != NULL ? err->status : MG_E_SIGNATURE;
    mg_status st = parse_document(root, now, out, err);
    json_decref(root);
    if (st != MG_OK)
        mg_manifest_free(out);
    return st;
}

/* ---- signatures ------------------------------------------------------------------------- */

/* Which listed keys verified at least one signature file. */
static mg_status check_signatures(const struct mg_policy *pol, const mg_policy_model *entry,
                                  const uint8_t *data, size_t len, const mg_sig_input *sigs,
                                  size_t sig_count, mg_error *err)
{
    bool *verified = mg_calloc(entry->key_count, sizeof *verified);
    if (verified == NULL)
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    mg_error first_failure;
    mg_error_clear(&first_failure);
    const char *first_failed_file = NULL;
    for (size_t s = 0; s < sig_count; s++) {
        bool tried = false;
        for (size_t k = 0; k < entry->key_count; k++) {
            const mg_sig_key *key = pol->keys[entry->keys[k]].key;
            if (key == NULL || mg_sig_key_is_minisign(key) != sigs[s].minisig)
                continue;
            tried = true;
            mg_error e;
            mg_error_clear(&e);
            mg_status st = sigs[s].minisig
                               ? mg_sig_verify_minisig(key, data, len, sigs[s].data, sigs[s].len, &e)
                               : mg_sig_verify_raw(key, data, len, sigs[s].data, sigs[s].len, &e);
            if (st == MG_OK) {
                verified[k] = true;
            } else if (st == MG_E_LIMIT) {
                free(verified);
                *err = e;
                return MG_E_LIMIT;
            } else if (first_failed_file == NULL) {
                first_failure = e;
                first_failed_file = sigs[s].filename;
            }
        }
        if (!tried && first_failed_file == NULL) {
            mg_fail_fmt(&first_failure, MG_E_SIGNATURE, "no %s key is listed for the model",
                    sigs[s].minisig ? "minisign" : "PEM");
            first_failed_file = sigs[s].filename;
        }
    }
    /* Count distinct public keys: a key equal to an earlier verified one adds nothing. */
    size_t distinct = 0;
    for (size_t k = 0; k < entry->key_count; k++) {
        if (!verified[k])
            continue;
        bool seen = false;
        for (size_t j = 0; j < k && !seen; j++)
            seen = verified[j] && mg_sig_key_same(pol->keys[entry->keys[j]].key,
                                                  pol->keys[entry->keys[k]].key);
        distinct += !seen;
    }
    free(verified);
    size_t threshold = entry->threshold > 0 ? entry->threshold : 1;
    if (distinct >= threshold)
        return MG_OK;
    if (first_failed_file != NULL) {
        mg_fail_fmt(err, MG_E_SIGNATURE,
                "manifest signatures: %zu of the %zu distinct keys required verified; %.100s: %s",
                distinct, threshold, first_failed_file, first_failure.message);
        mg_error_set_file(err, first_failed_file);
        return MG_E_SIGNATURE;
    }
    return mg_fail(err, MG_E_SIGNATURE,
                   "manifest signatures: %zu of the %zu distinct keys required verified (one key "
                   "counts once)", distinct, threshold);
}

/* ---- rollback state ---------------------------------------------------------------------- */

static bool state_name_ok(const char *name)
{
    size_t n = strnlen(name, 129);
    return n > 0 && n <= 128 && strchr(name, '/') == NULL;
}

static int open_state_dir(const struct mg_policy *pol, bool create)
{
    int dfd = open(pol->state_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0 && errno == ENOENT && create) {
        if (mkdir(pol->state_dir, 0700) != 0 && errno != EEXIST)
            return -1;
        dfd = open(pol->state_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    return dfd;
}

/* The version recorded in `file` of the open state_dir `dfd` (0 when there is none). The file
 * is opened without blocking (a FIFO in its place is refused, not waited on) and must be a
 * regular file holding decimal digits and a newline. */
static mg_status read_version_at(int dfd, const char *file, uint64_t *out, mg_error *err)
{
    *out = 0;
    int fd = openat(dfd, file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? MG_OK
                               : mg_fail(err, MG_E_IO, "state_dir: cannot open %.200s: %s", file,
                                         strerror(errno));
    char what[240];
    snprintf(what, sizeof what, "state_dir: %.200s", file);
    mg_status st = mg_require_regular(fd, what, err);
    if (st != MG_OK) {
        close(fd);
        return st;
    }
    char buf[STATE_FILE_MAX + 1];
    ssize_t n;
    do {
        n = read(fd, buf, sizeof buf);
    } while (n < 0 && errno == EINTR);
    close(fd);
    if (n <= 1 || n > STATE_FILE_MAX || buf[n - 1] != '\n')
        return mg_fail(err, MG_E_IO, "state_dir: %.200s is corrupt", file);
    uint64_t v = 0;
    for (ssize_t i = 0; i < n - 1; i++) {
        if (buf[i] < '0' || buf[i] > '9' || !mg_mul_u64(v, 10, &v) ||
            !mg_add_u64(v, (uint64_t)(buf[i] - '0'), &v))
            return mg_fail(err, MG_E_IO, "state_dir: %.200s is corrupt", file);
    }
    *out = v;
    return MG_OK;
}

mg_status mg_manifest_stored_version(const struct mg_policy *pol, const char *name,
                                     uint64_t *out, mg_error *err)
{
    *out = 0;
    if (pol->state_dir == NULL)
        return MG_OK;
    if (!state_name_ok(name))
        return mg_fail(err, MG_E_POLICY, "model name unusable as a state file name");
    int dfd = open_state_dir(pol, false);
    if (dfd < 0)
        return errno == ENOENT ? MG_OK
                               : mg_fail(err, MG_E_IO, "state_dir: cannot open: %s", strerror(errno));
    char file[160];
    snprintf(file, sizeof file, "%s.version", name);
    mg_status st = read_version_at(dfd, file, out, err);
    close(dfd);
    return st;
}

/* Is `d` the name a crashed writer of `file` may have left: ".FILE.tmp" (this version) or
 * ".FILE.<16 hex>.tmp" (earlier versions)? */
static bool is_stale_temp(const char *d, const char *file)
{
    size_t fl = strlen(file);
    if (d[0] != '.' || strncmp(d + 1, file, fl) != 0)
        return false;
    const char *rest = d + 1 + fl;
    if (strcmp(rest, ".tmp") == 0)
        return true;
    if (strlen(rest) != 1 + 16 + 4 || rest[0] != '.' || strcmp(rest + 17, ".tmp") != 0)
        return false;
    for (size_t i = 1; i <= 16; i++) {
        char c = rest[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

/* Under the state_dir lock: no writer is active, so any temporary name of `file` is left by a
 * crash and is removed. */
static void remove_stale_temps(int dfd, const char *file)
{
    int lfd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = lfd >= 0 ? fdopendir(lfd) : NULL;
    if (d == NULL) {
        if (lfd >= 0)
            close(lfd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (is_stale_temp(e->d_name, file))
            (void)unlinkat(dfd, e->d_name, 0);
    }
    closedir(d);
}

/* The new state file as an unnamed file in `dfd`, written and synced; -1 with errno. Where the
 * file system has no O_TMPFILE, a named ".FILE.tmp" (which a crash may leave, and the next
 * store removes). `named` tells which. */
static int write_state_file(int dfd, const char *file, const char *text, size_t len,
                            bool *named)
{
    *named = false;
    int fd = openat(dfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
        char tmp[200];
        snprintf(tmp, sizeof tmp, ".%s.tmp", file);
        fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        *named = fd >= 0;
    }
    if (fd < 0)
        return -1;
    if (!mg_write_all(fd, text, len) || fsync(fd) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

/* Give the written state file the name `file`: linked straight to it when there is none yet,
 * else linked to ".FILE.tmp" and renamed over it (atomic for readers). */
static int publish_state_file(int fd, bool named, int dfd, const char *file)
{
    char tmp[200];
    snprintf(tmp, sizeof tmp, ".%s.tmp", file);
    if (!named) {
        if (mg_link_unnamed(fd, dfd, file) == 0)
            return 0;
        if (errno != EEXIST)
            return -1;
        (void)unlinkat(dfd, tmp, 0);
        if (mg_link_unnamed(fd, dfd, tmp) != 0)
            return -1;
    }
    if (renameat(dfd, tmp, dfd, file) != 0) {
        int saved = errno;
        (void)unlinkat(dfd, tmp, 0);
        errno = saved;
        return -1;
    }
    return 0;
}

mg_status mg_manifest_store_version(const struct mg_policy *pol, const mg_policy_model *entry,
                                    uint64_t version, mg_error *err)
{
    if (pol->state_dir == NULL)
        return MG_OK;
    if (!state_name_ok(entry->name))
        return mg_fail(err, MG_E_POLICY, "model name unusable as a state file name");
    int dfd = open_state_dir(pol, true);
    if (dfd < 0)
        return mg_fail(err, MG_E_IO, "state_dir: cannot open: %s", strerror(errno));
    /* Compare and replace under an exclusive lock of the folder itself, so that two loads of
     * different versions can never leave the lower one (no lock file to leave behind). */
    if (mg_lock_fd(dfd, MG_STATE_LOCK_WAIT_MS) != 0) {
        int saved = errno;
        close(dfd);
        return mg_fail(err, MG_E_IO, "state_dir: cannot lock: %s",
                       saved == EWOULDBLOCK ? "held by another process" : strerror(saved));
    }
    char file[160], text[STATE_FILE_MAX];
    snprintf(file, sizeof file, "%s.version", entry->name);
    remove_stale_temps(dfd, file);
    uint64_t stored;
    mg_status st = read_version_at(dfd, file, &stored, err);
    if (st != MG_OK || version <= stored) {
        close(dfd); /* releases the lock */
        return st;
    }
    int n = snprintf(text, sizeof text, "%llu\n", (unsigned long long)version);
    bool named;
    int fd = write_state_file(dfd, file, text, (size_t)n, &named);
    bool ok = fd >= 0 && publish_state_file(fd, named, dfd, file) == 0;
    int saved = errno;
    if (fd >= 0)
        close(fd);
    if (ok)
        fsync(dfd);
    else if (named)
        remove_stale_temps(dfd, file);
    close(dfd);
    if (!ok)
        return mg_fail(err, MG_E_IO, "state_dir: cannot write %.200s: %s", file, strerror(saved));
    return MG_OK;
}

/* ---- the whole check -------------------------------------------------------------------- */

static mg_status verify_manifest(const struct mg_policy *pol, const mg_policy_model *entry,
                                 const uint8_t *data, size_t len, const mg_sig_input *sigs,
                                 size_t sig_count, mg_manifest *out, mg_error *err)
{
    if ((entry->kind != MG_MODEL_MANIFEST && entry->kind != MG_MODEL_OCI) || entry->key_count == 0)
        return mg_fail(err, MG_E_POLICY, "the model has no manifest keys in the policy");
    if (len > MG_MAX_MANIFEST_BYTES) {
        mg_error_set_file(err, MG_MANIFEST_NAME);
        return mg_fail(err, MG_E_LIMIT, "manifest larger than %u bytes", MG_MAX_MANIFEST_BYTES);
    }
    if (sig_count > MG_MANIFEST_MAX_SIGS)
        return mg_fail(err, MG_E_LIMIT, "more than %u signature files", MG_MANIFEST_MAX_SIGS);
    for (size_t i = 0; i < sig_count; i++) {
        if (sigs[i].len > MG_MAX_SIGNATURE_BYTES) {
            mg_error_set_file(err, sigs[i].filename);
            return mg_fail(err, MG_E_LIMIT, "signature file larger than %u bytes",
                           MG_MAX_SIGNATURE_BYTES);
        }
    }
    if (sig_count == 0) {
        mg_error_set_file(err, MG_MANIFEST_NAME);
        return mg_fail(err, MG_E_SIGNATURE,
                       "manifest is not signed (no manifest.json.sig or manifest.json.minisig)");
    }
    mg_status st = check_signatures(pol, entry, data, len, sigs, sig_count, err);
    if (st != MG_OK)
        return st;
    /* Only now is anything in the manifest looked at. */
    st = mg_manifest_parse_unverified(data, len, (int64_t)time(NULL), out, err);
    if (st != MG_OK) {
        mg_error_set_file(err, MG_MANIFEST_NAME);
        return st;
    }
    if (strcmp(out->name, entry->name) != 0) {
        st = mg_fail(err, MG_E_SIGNATURE, "manifest is for model '%.128s', not this one",
                     out->name);
        mg_error_set_file(err, MG_MANIFEST_NAME);
        mg_manifest_free(out);
        return st;
    }
    uint64_t stored;
    st = mg_manifest_stored_version(pol, entry->name, &stored, err);
    if (st == MG_OK && out->version < stored)
        st = mg_fail(err, MG_E_SIGNATURE,
                     "rollback: manifest version %llu is older than version %llu seen before",
                     (unsigned long long)out->version, (unsigned long long)stored);
    if (st != MG_OK) {
        mg_error_set_file(err, MG_MANIFEST_NAME);
        mg_manifest_free(out);
    }
    return st;
}

mg_status mg_manifest_verify(const struct mg_policy *pol, const mg_policy_model *entry,
                             const uint8_t *data, size_t len, const mg_sig_input *sigs,
                             size_t sig_count, mg_manifest *out, mg_error *err)
{
    memset(out, 0, sizeof *out);
    mg_status st = verify_manifest(pol, entry, data, len, sigs, sig_count, out, err);
    if (st != MG_OK)
        mg_error_set_model(err, entry->name);
    return st;
}
