/*
 * modelgate sign -k KEY [-n NAME] [-V VERSION] [--expires TIME] [-a sha256|sha512]
 *                [--shard-size BYTES] [--add] DIR
 * modelgate sign --format oms -k KEY [--shard-size BYTES] DIR   (OMS bundle DIR/model.sig)
 *
 * KEY is a PEM private key (raw signature in manifest.json.sig) or a minisign secret key
 * (manifest.json.minisig), unencrypted or encrypted with the password from
 * $MODELGATE_KEY_PASSWORD or asked on the terminal. --add co-signs the manifest that is
 * there, after checking that it lists exactly the files of DIR with their digests: the
 * signature goes to the next free manifest.json.sig.N (or .minisig), never over another.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "cli.h"
#include "digest.h"
#include "hub.h"
#include "internal.h"
#include "keys.h"
#include "manifest.h"
#include "minisign_key.h"
#include "util/fsutil.h"
#include "util/hex.h"

#define PASSWORD_MAX 1024

/* A decimal version from 1 to 2^63-1, digits only. */
static bool parse_version(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9' || v > (INT64_MAX - (uint64_t)(*s - '0')) / 10)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return v >= 1;
}

/* The password of an encrypted key: $MODELGATE_KEY_PASSWORD, else asked on the terminal
 * with echo off. Returns 0 or the exit status. */
static int get_password(const char *key, char *out, size_t cap, bool json)
{
    const char *env = getenv("MODELGATE_KEY_PASSWORD");
    if (env != NULL) {
        if (strlen(env) >= cap)
            return mg_cli_usage("$MODELGATE_KEY_PASSWORD is longer than %zu bytes", cap - 1);
        memcpy(out, env, strlen(env) + 1);
        return 0;
    }
    int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return mg_cli_usage("%s is encrypted: set MODELGATE_KEY_PASSWORD, or run on a terminal "
                            "to be asked for the password", key);
    struct termios old, quiet;
    bool restore = tcgetattr(fd, &old) == 0;
    if (restore) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
        quiet.c_lflag |= ICANON;
        tcsetattr(fd, TCSAFLUSH, &quiet);
    }
    char prompt[512];
    int pn = snprintf(prompt, sizeof prompt, "Password for %.400s: ", key);
    if (pn > 0 && write(fd, prompt, (size_t)pn) < 0) {
        /* the prompt is a courtesy; reading the password is what matters */
    }
    size_t n = 0;
    bool done = false;
    while (!done && n + 1 < cap) {
        char c;
        ssize_t r = read(fd, &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || c == '\n' || c == '\r')
            done = true;
        else
            out[n++] = c;
    }
    out[n] = '\0';
    if (restore)
        tcsetattr(fd, TCSAFLUSH, &old);
    if (write(fd, "\n", 1) < 0) {
        /* as above */
    }
    close(fd);
    if (!done)
        return mg_cli_fail(MG_E_USAGE, json, NULL, "the password is longer than %zu bytes",
                           cap - 1);
    return 0;
}

/* ---- writing ------------------------------------------------------------------------- */

/* Write `data` to a temporary file in `dfd` (fsync'd); its name goes to `tmp`. */
static int write_temp(int dfd, const void *data, size_t len, char *tmp, size_t cap, bool json)
{
    uint8_t rnd[8];
    char hex[17];
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        return mg_cli_fail(MG_E_LIMIT, json, NULL, "no randomness for a temporary name");
    mg_hex_encode(rnd, sizeof rnd, hex);
    snprintf(tmp, cap, ".modelgate-sign.%s.tmp", hex);
    int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return mg_cli_fail(MG_E_IO, json, NULL, "cannot create a file in the folder: %s",
                           strerror(errno));
    bool ok = mg_write_all(fd, data, len) && fsync(fd) == 0;
    int saved = errno;
    ok = close(fd) == 0 && ok;
    if (!ok) {
        unlinkat(dfd, tmp, 0);
        return mg_cli_fail(MG_E_IO, json, NULL, "cannot write: %s", strerror(saved));
    }
    return 0;
}

/* Publish `data` as `name`: replacing it (`replace`), or only if no such file exists (the
 * link fails with EEXIST: a co-signature never overwrites another). */
static int publish(int dfd, const char *name, const void *data, size_t len, bool replace,
                   bool json, bool *exists)
{
    char tmp[64];
    *exists = false;
    int rc = write_temp(dfd, data, len, tmp, sizeof tmp, json);
    if (rc != 0)
        return rc;
    if (replace) {
        if (renameat(dfd, tmp, dfd, name) != 0)
            rc = mg_cli_fail(MG_E_IO, json, name, "cannot rename into place: %s",
                             strerror(errno));
    } else if (linkat(dfd, tmp, dfd, name, 0) != 0) {
        if (errno == EEXIST)
            *exists = true;
        else
            rc = mg_cli_fail(MG_E_IO, json, name, "cannot link into place: %s", strerror(errno));
    }
    if (!replace || rc != 0)
        unlinkat(dfd, tmp, 0);
    if (rc == 0 && fsync(dfd) != 0)
        rc = mg_cli_fail(MG_E_IO, json, NULL, "cannot sync the folder: %s", strerror(errno));
    return rc;
}

/* ---- co-signing: check what is signed ------------------------------------------------- */

typedef struct cosign_check {
    const mg_manifest *m;
    int dfd;
    bool json;
    size_t seen;
} cosign_check;

static const mg_pinned_file *find_listed(const mg_manifest *m, const char *rel)
{
    for (size_t i = 0; i < m->file_count; i++) {
        if (strcmp(m->files[i].path, rel) == 0)
            return &m->files[i];
    }
    return NULL;
}

/* Every file below DIR (but the ignored ones and the manifest's own) must be listed. */
static int check_unlisted(cosign_check *c, const char *prefix, unsigned depth)
{
    if (depth > 16)
        return mg_cli_fail(MG_E_LIMIT, c->json, prefix, "folders nested deeper than 16");
    int fd = prefix[0] == '\0' ? openat(c->dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                               : mg_openat_nofollow(c->dfd, prefix, O_RDONLY | O_DIRECTORY);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return mg_cli_fail(MG_E_IO, c->json, prefix, "cannot read the folder");
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (depth == 0 && (mg_manifest_is_own_file(e->d_name) ||
                           strncmp(e->d_name, ".modelgate-sign.", 16) == 0))
            continue;
        char rel[4200];
        int n = snprintf(rel, sizeof rel, "%s%s", prefix, e->d_name);
        if (n < 0 || (size_t)n + 2 > sizeof rel) {
            rc = mg_cli_fail(MG_E_LIMIT, c->json, prefix, "path too long");
            break;
        }
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            rc = mg_cli_fail(MG_E_IO, c->json, rel, "cannot stat: %s", strerror(errno));
        else if (mg_ignore_match(NULL, 0, rel, S_ISDIR(st.st_mode)))
            continue;
        else if (S_ISDIR(st.st_mode)) {
            rel[n] = '/';
            rel[n + 1] = '\0';
            rc = check_unlisted(c, rel, depth + 1);
        } else if (find_listed(c->m, rel) == NULL)
            rc = mg_cli_fail(MG_E_INTEGRITY, c->json, rel, "not listed in the manifest: it "
                             "does not describe this folder, so it is not co-signed");
    }
    closedir(d);
    return rc;
}

/* Each listed file has the size and digest the manifest says. */
static int check_listed(cosign_check *c, bool quiet)
{
    for (size_t i = 0; i < c->m->file_count; i++) {
        const mg_pinned_file *f = &c->m->files[i];
        int fd = mg_openat_nofollow(c->dfd, f->path, O_RDONLY | O_NONBLOCK);
        if (fd < 0)
            return mg_cli_fail(MG_E_INTEGRITY, c->json, f->path, "listed in the manifest but "
                               "cannot be opened: %s", strerror(errno));
        char hex[129], want[129];
        uint64_t size = 0;
        mg_error err;
        mg_status s = mg_cli_hash_fd(fd, f->path, f->alg, quiet, hex, &size, &err);
        close(fd);
        if (s != MG_OK) {
            mg_error_set_file(&err, f->path);
            return mg_cli_report(&err, c->json);
        }
        mg_hex_encode(f->digest, mg_digest_len(f->alg), want);
        if (strcmp(hex, want) != 0 || (f->has_size && f->size != size)) {
            memset(&err, 0, sizeof err);
            err.status = MG_E_INTEGRITY;
            mg_strlcpy(err.file, f->path, sizeof err.file);
            snprintf(err.message, sizeof err.message, "the file differs from the manifest: "
                     "it is not co-signed");
            mg_strlcpy(err.algorithm, mg_digest_name(f->alg), sizeof err.algorithm);
            mg_strlcpy(err.expected, want, sizeof err.expected);
            mg_strlcpy(err.actual, hex, sizeof err.actual);
            return mg_cli_report(&err, c->json);
        }
    }
    return 0;
}

/* ---- output ----------------------------------------------------------------------------- */

/* Say what was signed: the name and version as the manifest carries them (read back). */
static int report_signed(const char *dir, const char *sig_name, bool json, bool quiet)
{
    if (quiet)
        return 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, MG_MANIFEST_NAME);
    json_error_t jerr;
    json_t *man = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    const char *mname = json_string_value(json_object_get(man, "name"));
    json_int_t ver = json_integer_value(json_object_get(man, "version"));
    size_t nfiles = json_array_size(json_object_get(man, "files"));
    int rc = 0;
    if (json) {
        json_t *doc = json_object();
        json_object_set_new(doc, "ok", json_true());
        json_object_set_new(doc, "name", mname ? json_string(mname) : json_null());
        json_object_set_new(doc, "version", json_integer(ver));
        json_object_set_new(doc, "files", json_integer((json_int_t)nfiles));
        json_object_set_new(doc, "manifest", json_string(path));
        json_object_set_new(doc, "signature", json_sprintf("%s/%s", dir, sig_name));
        rc = mg_cli_print_json(doc);
        json_decref(doc);
    } else {
        printf("signed %s version %lld (%zu file%s): %s and %s/%s\n", mname ? mname : "?",
               (long long)ver, nfiles, nfiles == 1 ? "" : "s", path, dir, sig_name);
    }
    json_decref(man);
    return rc;
}

/* The signature of `msg` by the key: raw bytes (PEM key) or .minisig text (minisign key). */
static int make_signature(const char *key, const mg_minisign_secret *ms, const uint8_t *msg,
                          size_t len, uint8_t **sig, size_t *sig_len, bool json)
{
    mg_error err;
    mg_error_clear(&err);
    if (ms == NULL) {
        if (mg_sign_buffer(key, msg, len, sig, sig_len, &err) != MG_OK)
            return mg_cli_report(&err, json);
        return 0;
    }
    /* The trusted comment (covered by the global signature) names what is signed. */
    char comment[512];
    json_error_t jerr;
    json_t *man = json_loadb((const char *)msg, len, 0, &jerr);
    snprintf(comment, sizeof comment, "timestamp:%lld\tfile:%s\tmodel:%.128s\tversion:%lld",
             (long long)time(NULL), MG_MANIFEST_NAME,
             json_string_value(json_object_get(man, "name")) != NULL
                 ? json_string_value(json_object_get(man, "name"))
                 : "?",
             (long long)json_integer_value(json_object_get(man, "version")));
    json_decref(man);
    char *text = NULL;
    size_t tl = 0;
    if (mg_minisign_sign(ms, msg, len, comment, &text, &tl, &err) != MG_OK)
        return mg_cli_report(&err, json);
    *sig = (uint8_t *)text;
    *sig_len = tl;
    return 0;
}

static int cosign(const char *dir, const char *key, const mg_minisign_secret *ms, bool json,
                  bool quiet)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return mg_cli_fail(MG_E_IO, json, NULL, "cannot open %s: %s", dir, strerror(errno));
    int mfd = openat(dfd, MG_MANIFEST_NAME, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    uint8_t *data = NULL;
    size_t len = 0;
    mg_error err;
    mg_error_clear(&err);
    int rc = 0;
    if (mfd < 0)
        rc = mg_cli_fail(errno == ENOENT ? MG_E_SIGNATURE : MG_E_IO, json, MG_MANIFEST_NAME,
                         "%s; --add co-signs the manifest that is there (sign without --add "
                         "first)", errno == ENOENT ? "no manifest to co-sign" : strerror(errno));
    else if (mg_read_small(mfd, 16u << 20, &data, &len, &err) != MG_OK)
        rc = mg_cli_report(&err, json);
    if (mfd >= 0)
        close(mfd);
    mg_manifest m;
    memset(&m, 0, sizeof m);
    /* Parsed here only to check the folder against it before co-signing; loads verify the
     * signatures before they use a manifest. */
    if (rc == 0 && mg_manifest_parse_unverified(data, len, (int64_t)time(NULL), &m, &err) != MG_OK) {
        mg_error_set_file(&err, MG_MANIFEST_NAME);
        rc = mg_cli_report(&err, json);
    }
    cosign_check c = {&m, dfd, json, 0};
    if (rc == 0)
        rc = check_unlisted(&c, "", 0);
    if (rc == 0)
        rc = check_listed(&c, quiet);
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    if (rc == 0)
        rc = make_signature(key, ms, data, len, &sig, &sig_len, json);
    const char *written = NULL;
    static const char *const names[] = {
        "manifest.json.sig",   "manifest.json.sig.1", "manifest.json.sig.2", "manifest.json.sig.3",
        "manifest.json.sig.4", "manifest.json.sig.5", "manifest.json.sig.6", "manifest.json.sig.7",
        "manifest.json.sig.8", "manifest.json.sig.9"};
    if (rc == 0 && ms != NULL) {
        bool exists;
        rc = publish(dfd, MG_MANIFEST_NAME ".minisig", sig, sig_len, false, json, &exists);
        if (rc == 0 && exists)
            rc = mg_cli_fail(MG_E_USAGE, json, MG_MANIFEST_NAME ".minisig", "there is already a "
                             "minisign signature (one .minisig per manifest): co-sign with a PEM "
                             "key, or remove it first");
        written = MG_MANIFEST_NAME ".minisig";
    } else if (rc == 0) {
        bool exists = true;
        for (size_t i = 0; rc == 0 && exists && i < sizeof names / sizeof names[0]; i++) {
            rc = publish(dfd, names[i], sig, sig_len, false, json, &exists);
            written = names[i];
        }
        if (rc == 0 && exists)
            rc = mg_cli_fail(MG_E_LIMIT, json, NULL, "manifest.json.sig and .sig.1 to .sig.9 "
                             "are all taken");
    }
    free(sig);
    free(data);
    mg_manifest_free(&m);
    close(dfd);
    return rc == 0 ? report_signed(dir, written, json, quiet) : rc;
}

/* sign with a minisign key: the manifest and manifest.json.minisig. */
static int sign_minisign(const char *dir, const mg_minisign_secret *ms, const char *name,
                         uint64_t version, const char *expires, mg_digest_alg alg, bool json,
                         bool quiet)
{
    char *text = NULL;
    size_t len = 0;
    mg_error err;
    mg_error_clear(&err);
    if (mg_manifest_build(dir, name, version, expires, alg, 0, NULL, &text, &len, &err) != MG_OK)
        return mg_cli_report(&err, json);
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    int rc = make_signature(NULL, ms, (const uint8_t *)text, len, &sig, &sig_len, json);
    int dfd = rc == 0 ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (rc == 0 && dfd < 0)
        rc = mg_cli_fail(MG_E_IO, json, NULL, "cannot open %s: %s", dir, strerror(errno));
    bool exists;
    if (rc == 0)
        rc = publish(dfd, MG_MANIFEST_NAME, text, len, true, json, &exists);
    if (rc == 0)
        rc = publish(dfd, MG_MANIFEST_NAME ".minisig", sig, sig_len, true, json, &exists);
    if (dfd >= 0)
        close(dfd);
    free(text);
    free(sig);
    return rc == 0 ? report_signed(dir, MG_MANIFEST_NAME ".minisig", json, quiet) : rc;
}

int mg_cmd_sign(int argc, char **argv)
{
    const char *key = NULL, *name = NULL, *expires = NULL;
    uint64_t version = 1;
    bool version_given = false, alg_given = false;
    mg_digest_alg alg = MG_SHA256;
    enum { OPT_EXPIRES = MG_OPT_FIRST_FREE, OPT_ADD, OPT_FORMAT, OPT_SHARD_SIZE };
    bool oms = false;
    uint64_t shard_size = 0;
    static const struct option longopts[] = {
        {"format", required_argument, NULL, OPT_FORMAT},
        {"shard-size", required_argument, NULL, OPT_SHARD_SIZE},
        {"key", required_argument, NULL, 'k'},
        {"name", required_argument, NULL, 'n'},
        {"version", required_argument, NULL, 'V'},
        {"expires", required_argument, NULL, OPT_EXPIRES},
        {"algorithm", required_argument, NULL, 'a'},
        {"add", no_argument, NULL, OPT_ADD},
        {"json", no_argument, NULL, MG_OPT_JSON},
        {"quiet", no_argument, NULL, 'q'},
        {NULL, 0, NULL, 0},
    };
    optind = 1;
    opterr = 0;
    int c;
    bool json = false, quiet = false, add = false;
    while ((c = getopt_long(argc, argv, ":k:n:V:a:q", longopts, NULL)) != -1) {
        switch (c) {
        case 'q': quiet = true; break;
        case MG_OPT_JSON: json = true; break;
        case OPT_ADD: add = true; break;
        case OPT_FORMAT:
            if (strcmp(optarg, "oms") == 0)
                oms = true;
            else if (strcmp(optarg, "manifest") != 0)
                return mg_cli_usage("--format takes manifest or oms");
            break;
        case OPT_SHARD_SIZE:
            if (!parse_version(optarg, &shard_size))
                return mg_cli_usage("--shard-size takes a number of bytes from 1");
            break;
        case 'k': key = optarg; break;
        case 'n': name = optarg; break;
        case OPT_EXPIRES: expires = optarg; break;
        case 'V':
            if (!parse_version(optarg, &version))
                return mg_cli_usage("-V takes an integer from 1 to 2^63-1");
            version_given = true;
            break;
        case 'a':
            if (!mg_digest_from_name(optarg, &alg))
                return mg_cli_usage("-a takes sha256 or sha512");
            alg_given = true;
            break;
        default: return mg_cli_bad_option(c, argv, "sign");
        }
    }
    if (key == NULL)
        return mg_cli_usage("-k KEY is required; %s", mg_cli_usage_text("sign"));
    if (optind + 1 != argc)
        return mg_cli_usage("%s; %s", optind == argc ? "missing operand DIR" : "extra operand",
                            mg_cli_usage_text("sign"));
    if (add && (name != NULL || version_given || expires != NULL || alg_given))
        return mg_cli_usage("--add co-signs the manifest as it is: -n, -V, --expires and -a "
                            "would change it");
    if (oms && (add || name != NULL || version_given || expires != NULL || alg_given))
        return mg_cli_usage("-n, -V, --expires, -a and --add are for manifests, not --format oms");
    if (shard_size > 0 && (add || alg != MG_SHA256))
        return mg_cli_usage("--shard-size needs -a sha256 and a new manifest (not --add)");
    const char *dir = argv[optind];
    if (oms) {
        mg_error oerr;
        mg_error_clear(&oerr);
        if (mg_sign_oms(key, dir, shard_size, &oerr) != MG_OK)
            return mg_cli_report(&oerr, json);
        if (quiet)
            return 0;
        if (json) {
            json_t *doc = json_pack("{s:b,s:s,s:s,s:o}", "ok", 1, "format", "oms",
                                    "serialization", shard_size > 0 ? "shards" : "files",
                                    "signature", json_sprintf("%s/model.sig", dir));
            int prc = mg_cli_print_json(doc);
            json_decref(doc);
            return prc;
        }
        printf("signed %s/model.sig (OMS v1.0, %s)\n", mg_cli_esc(dir),
               shard_size > 0 ? "shards" : "files");
        return 0;
    }
    int64_t when;
    if (expires != NULL && !mg_manifest_parse_time(expires, &when))
        return mg_cli_usage("--expires takes a UTC time YYYY-MM-DDTHH:MM:SSZ");
    if (expires != NULL && when <= (int64_t)time(NULL))
        fprintf(stderr, "modelgate: warning: the expiry %s is in the past: verifiers will "
                "refuse this manifest\n", expires);
    mg_error err;
    mg_error_clear(&err);
    bool is_minisign = false, encrypted = false;
    if (mg_minisign_secret_probe(key, &is_minisign, &encrypted, &err) != MG_OK)
        return mg_cli_report(&err, json);
    mg_minisign_secret *ms = NULL;
    if (is_minisign) {
        char password[PASSWORD_MAX];
        password[0] = '\0';
        int rc = encrypted ? get_password(key, password, sizeof password, json) : 0;
        mg_status s = rc == 0 ? mg_minisign_secret_load(key, encrypted ? password : NULL, &ms,
                                                        &err)
                              : MG_OK;
        OPENSSL_cleanse(password, sizeof password);
        if (rc != 0)
            return rc;
        if (s != MG_OK)
            return mg_cli_report(&err, json);
    }
    int rc;
    if (add)
        rc = cosign(dir, key, ms, json, quiet);
    else if (ms != NULL && shard_size == 0)
        rc = sign_minisign(dir, ms, name, version, expires, alg, json, quiet);
    else if (ms != NULL && shard_size > 0)
        rc = mg_cli_usage("--shard-size is not available with a minisign key");
    else if (mg_sign_dir(key, dir, name, version, expires, alg, shard_size, &err) != MG_OK)
        rc = mg_cli_report(&err, json);
    else
        rc = report_signed(dir, MG_MANIFEST_NAME ".sig", json, quiet);
    mg_minisign_secret_free(ms);
    return rc;
}
