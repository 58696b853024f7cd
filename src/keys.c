/*
 * Key generation and directory signing (SPEC §5 `keygen`, `sign`).
 *
 * Private keys: read with O_NOFOLLOW into a buffer that is wiped (OPENSSL_cleanse) before it
 * is freed; generated keys are encoded into a secure-memory BIO (its buffer is cleared when it
 * grows and when it is freed) and written to a file created 0600 with O_EXCL. No message
 * ever contains key material.
 */
#define _GNU_SOURCE
#include "keys.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "digest.h"
#include "hub.h"
#include "manifest.h"
#include "sig.h"
#include "util/fsutil.h"
#include "util/hex.h"

#define PSS_SALT_LEN 32 /* the digest length, as RFC 8017 recommends */

/* ---- small file helpers ------------------------------------------------------------------ */

/* Create `path` (never existing before) with `mode` and write `data`; fsync'd. */
static mg_status create_file(const char *path, mode_t mode, const void *data, size_t len,
                             mg_error *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0) {
        int e = errno;
        mg_status st = e == EEXIST ? MG_E_USAGE : MG_E_IO;
        return mg_fail(err, st, "cannot create %.200s: %s", path, strerror(e));
    }
    bool ok = fchmod(fd, mode) == 0 && mg_write_all(fd, data, len) && fsync(fd) == 0;
    int saved = errno;
    ok = close(fd) == 0 && ok;
    if (!ok) {
        unlink(path);
        return mg_fail(err, MG_E_IO, "cannot write %.200s: %s", path, strerror(saved));
    }
    return MG_OK;
}

/* Read a whole small file (no symlink) into a malloc'd buffer the caller wipes. */
static mg_status read_small_file(const char *path, size_t cap, uint8_t **out, size_t *len,
                                 struct stat *st_out, mg_error *err)
{
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return mg_fail(err, MG_E_IO, "cannot open %.200s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 0 ||
        (uint64_t)st.st_size > cap) {
        close(fd);
        return mg_fail(err, MG_E_USAGE, "%.200s is not a regular file of at most %zu bytes",
                       path, cap);
    }
    *st_out = st;
    size_t n = (size_t)st.st_size;
    uint8_t *buf = malloc(n + 1);
    if (buf == NULL) {
        close(fd);
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (got != n) {
        OPENSSL_cleanse(buf, n);
        free(buf);
        return mg_fail(err, MG_E_IO, "cannot read %.200s", path);
    }
    *out = buf;
    *len = n;
    return MG_OK;
}

/* ---- keys -------------------------------------------------------------------------------- */

static int refuse_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

static mg_status load_private_key(const char *key_path, EVP_PKEY **out, struct stat *file,
                                  mg_error *err)
{
    *out = NULL;
    uint8_t *pem;
    size_t len;
    mg_status st = read_small_file(key_path, MG_MAX_KEY_FILE_BYTES, &pem, &len, file, err);
    if (st != MG_OK)
        return st;
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *pkey = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, refuse_password, NULL)
                                 : NULL;
    BIO_free(bio);
    OPENSSL_cleanse(pem, len);
    free(pem);
    ERR_clear_error();
    if (pkey == NULL)
        return mg_fail(err, MG_E_USAGE,
                       "%.200s is not an unencrypted PEM private key", key_path);
    *out = pkey;
    return MG_OK;
}

/* The public half as a verifier key, so every signature made is checked before it is used. */
static mg_status public_half(EVP_PKEY *pkey, mg_sig_key **out, mg_error *err)
{
    BIO *bio = BIO_new(BIO_s_mem());
    BUF_MEM *mem = NULL;
    if (bio == NULL || PEM_write_bio_PUBKEY(bio, pkey) != 1 || BIO_get_mem_ptr(bio, &mem) != 1) {
        BIO_free(bio);
        ERR_clear_error();
        return mg_fail(err, MG_E_LIMIT, "cannot encode the public key");
    }
    mg_status st = mg_sig_key_from_pem((const uint8_t *)mem->data, mem->length, out, err);
    BIO_free(bio);
    if (st != MG_OK) {
        char why[MG_ERROR_MESSAGE_MAX];
        mg_strlcpy(why, err != NULL ? err->message : "unsupported", sizeof why);
        return mg_fail(err, MG_E_USAGE, "the key cannot sign manifests: %s", why);
    }
    return MG_OK;
}

static mg_status sign_with(EVP_PKEY *pkey, mg_sig_key_type type, const uint8_t *msg, size_t len,
                           uint8_t **sig, size_t *sig_len, mg_error *err)
{
    const EVP_MD *md = NULL;
    if (type == MG_SIG_RSA || type == MG_SIG_ECDSA_P256)
        md = EVP_sha256();
    else if (type == MG_SIG_ECDSA_P384)
        md = EVP_sha384();
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    size_t n = 0;
    bool ok = mctx != NULL && EVP_DigestSignInit(mctx, &pctx, md, NULL, pkey) == 1;
    if (ok && type == MG_SIG_RSA)
        ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) == 1 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, PSS_SALT_LEN) == 1;
    /* Ed25519 signs in one shot only, so both calls are one-shot. */
    ok = ok && EVP_DigestSign(mctx, NULL, &n, msg, len) == 1 && n > 0;
    uint8_t *buf = ok ? malloc(n) : NULL;
    ok = buf != NULL && EVP_DigestSign(mctx, buf, &n, msg, len) == 1;
    EVP_MD_CTX_free(mctx);
    ERR_clear_error();
    if (!ok) {
        free(buf);
        return mg_fail(err, MG_E_LIMIT, "signing failed");
    }
    *sig = buf;
    *sig_len = n;
    return MG_OK;
}

static mg_status sign_and_check(EVP_PKEY *pkey, const uint8_t *msg, size_t len, uint8_t **sig,
                                size_t *sig_len, mg_error *err)
{
    *sig = NULL;
    *sig_len = 0;
    mg_sig_key *pub;
    mg_status st = public_half(pkey, &pub, err);
    if (st != MG_OK)
        return st;
    st = sign_with(pkey, mg_sig_key_type_of(pub), msg, len, sig, sig_len, err);
    if (st == MG_OK) {
        st = mg_sig_verify_raw(pub, msg, len, *sig, *sig_len, err);
        if (st != MG_OK) {
            free(*sig);
            *sig = NULL;
            st = mg_fail(err, MG_E_LIMIT, "internal error: a signature just made does not verify");
        }
    }
    mg_sig_key_free(pub);
    return st;
}

mg_status mg_sign_buffer(const char *key_path, const uint8_t *msg, size_t len, uint8_t **sig,
                         size_t *sig_len, mg_error *err)
{
    EVP_PKEY *pkey;
    struct stat file;
    mg_status st = load_private_key(key_path, &pkey, &file, err);
    if (st != MG_OK)
        return st;
    st = sign_and_check(pkey, msg, len, sig, sig_len, err);
    EVP_PKEY_free(pkey);
    return st;
}

static EVP_PKEY *generate(const char *type)
{
    if (strcmp(type, "ed25519") == 0)
        return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (strcmp(type, "ecdsa-p256") == 0)
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (strcmp(type, "rsa-3072") == 0)
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
    return NULL;
}

mg_status mg_keygen(const char *type, const char *prefix, mg_error *err)
{
    if (type == NULL)
        type = "ed25519";
    if (strcmp(type, "ed25519") != 0 && strcmp(type, "ecdsa-p256") != 0 &&
        strcmp(type, "rsa-3072") != 0)
        return mg_fail(err, MG_E_USAGE, "unknown key type '%.32s' (ed25519, ecdsa-p256, rsa-3072)",
                       type);
    char key_path[PATH_MAX], pub_path[PATH_MAX];
    int a = snprintf(key_path, sizeof key_path, "%s.key", prefix);
    int b = snprintf(pub_path, sizeof pub_path, "%s.pub", prefix);
    if (prefix[0] == '\0' || a < 0 || b < 0 || (size_t)a >= sizeof key_path ||
        (size_t)b >= sizeof pub_path)
        return mg_fail(err, MG_E_USAGE, "bad output prefix");
    struct stat st_;
    if (lstat(key_path, &st_) == 0 || lstat(pub_path, &st_) == 0)
        return mg_fail(err, MG_E_USAGE, "%.200s.key or %.200s.pub exists; keygen never overwrites",
                       prefix, prefix);
    EVP_PKEY *pkey = generate(type);
    if (pkey == NULL) {
        ERR_clear_error();
        return mg_fail(err, MG_E_LIMIT, "key generation failed");
    }
    /* Secure-memory BIOs clear their buffer when it grows and when it is freed. */
    BIO *priv = BIO_new(BIO_s_secmem());
    BIO *pub = BIO_new(BIO_s_mem());
    BUF_MEM *priv_mem = NULL, *pub_mem = NULL;
    bool ok = priv != NULL && pub != NULL &&
              PEM_write_bio_PrivateKey(priv, pkey, NULL, NULL, 0, NULL, NULL) == 1 &&
              PEM_write_bio_PUBKEY(pub, pkey) == 1 && BIO_get_mem_ptr(priv, &priv_mem) == 1 &&
              BIO_get_mem_ptr(pub, &pub_mem) == 1;
    EVP_PKEY_free(pkey);
    ERR_clear_error();
    mg_status st = ok ? MG_OK : mg_fail(err, MG_E_LIMIT, "cannot encode the new key");
    if (st == MG_OK)
        st = create_file(key_path, 0600, priv_mem->data, priv_mem->length, err);
    if (priv_mem != NULL)
        OPENSSL_cleanse(priv_mem->data, priv_mem->max);
    BIO_free(priv);
    if (st == MG_OK) {
        st = create_file(pub_path, 0644, pub_mem->data, pub_mem->length, err);
        if (st != MG_OK)
            unlink(key_path); /* all or nothing */
    }
    BIO_free(pub);
    return st;
}

/* ---- directory walk ----------------------------------------------------------------------- */

typedef struct walk {
    mg_digest_alg alg;
    mg_pinned_file *files;
    size_t count;
    size_t cap;
    uint8_t *buf; /* read buffer */
    dev_t key_dev; /* the private key file, which must not be signed into a model */
    ino_t key_ino;
} walk;

#define READ_CHUNK (1u << 20)

static mg_status hash_file(int dfd, const char *name, const char *rel, walk *w, mg_error *err)
{
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return mg_fail(err, MG_E_IO, "cannot open '%.200s': %s", rel, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return mg_fail(err, MG_E_FORMAT, "unsafe model directory: '%.200s' is not a regular file",
                       rel);
    }
    mg_digest_ctx *ctx;
    mg_status s = mg_digest_new(w->alg, &ctx, err);
    uint64_t size = 0;
    while (s == MG_OK) {
        ssize_t r = read(fd, w->buf, READ_CHUNK);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            s = mg_fail(err, MG_E_IO, "cannot read '%.200s': %s", rel, strerror(errno));
            break;
        }
        if (r == 0)
            break;
        size += (uint64_t)r;
        s = mg_digest_update(ctx, w->buf, (size_t)r, err);
    }
    close(fd);
    mg_pinned_file *f = &w->files[w->count];
    if (s == MG_OK)
        s = mg_digest_final(ctx, f->digest, err);
    if (s == MG_OK) {
        f->path = mg_strdup(rel);
        if (f->path == NULL)
            s = mg_fail(err, MG_E_LIMIT, "out of memory");
    }
    mg_digest_free(ctx);
    if (s != MG_OK)
        return s;
    f->alg = w->alg;
    f->has_size = true;
    f->size = size;
    w->count++;
    return MG_OK;
}

static mg_status walk_dir(int dfd, const char *prefix, unsigned depth, walk *w, mg_error *err)
{
    DIR *d = fdopendir(dfd);
    if (d == NULL) {
        close(dfd);
        return mg_fail(err, MG_E_IO, "cannot list '%.200s': %s", prefix[0] ? prefix : ".",
                       strerror(errno));
    }
    mg_status s = MG_OK;
    struct dirent *e;
    char rel[MG_MANIFEST_MAX_PATH + 2];
    while (s == MG_OK && (errno = 0, e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (depth == 0 && mg_manifest_is_own_file(e->d_name))
            continue;
        int n = snprintf(rel, sizeof rel, "%s%s%s", prefix, prefix[0] ? "/" : "", e->d_name);
        if (n < 0 || (size_t)n >= sizeof rel || !mg_manifest_path_ok(rel)) {
            s = mg_fail(err, MG_E_FORMAT, "'%.200s' cannot be listed in a manifest (path rules "
                        "of SPEC §3)", rel);
            break;
        }
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            s = mg_fail(err, MG_E_IO, "cannot stat '%.200s': %s", rel, strerror(errno));
        } else if (mg_ignore_match(NULL, 0, rel, S_ISDIR(st.st_mode))) {
            continue; /* .git/, .cache/huggingface/, .gitattributes: never signed, never read */
        } else if (S_ISLNK(st.st_mode)) {
            s = mg_fail(err, MG_E_FORMAT, "unsafe model directory: '%.200s' is a symlink", rel);
        } else if (S_ISDIR(st.st_mode)) {
            if (depth + 1 > MG_MAX_DIR_DEPTH) {
                s = mg_fail(err, MG_E_LIMIT, "folders nested deeper than %u at '%.200s'",
                            MG_MAX_DIR_DEPTH, rel);
                break;
            }
            int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            s = sub < 0 ? mg_fail(err, MG_E_IO, "cannot open '%.200s': %s", rel, strerror(errno))
                        : walk_dir(sub, rel, depth + 1, w, err);
        } else if (S_ISREG(st.st_mode)) {
            if (st.st_dev == w->key_dev && st.st_ino == w->key_ino) {
                s = mg_fail(err, MG_E_USAGE, "'%.200s' is the private key: keep it outside the "
                            "model directory", rel);
                break;
            }
            if (w->count == w->cap) {
                if (w->cap >= MG_MAX_FILES) {
                    s = mg_fail(err, MG_E_LIMIT, "more than %u files", MG_MAX_FILES);
                    break;
                }
                size_t cap = w->cap ? w->cap * 2 : 64;
                mg_pinned_file *grown = mg_reallocarray(w->files, cap, sizeof *grown);
                if (grown == NULL) {
                    s = mg_fail(err, MG_E_LIMIT, "out of memory");
                    break;
                }
                memset(grown + w->cap, 0, (cap - w->cap) * sizeof *grown);
                w->files = grown;
                w->cap = cap;
            }
            s = hash_file(dirfd(d), e->d_name, rel, w, err);
        } else {
            s = mg_fail(err, MG_E_FORMAT, "unsafe model directory: '%.200s' is a special file",
                        rel);
        }
    }
    if (s == MG_OK && errno != 0)
        s = mg_fail(err, MG_E_IO, "cannot list '%.200s': %s", prefix[0] ? prefix : ".",
                    strerror(errno));
    closedir(d);
    return s;
}

static int compare_files(const void *a, const void *b)
{
    return strcmp(((const mg_pinned_file *)a)->path, ((const mg_pinned_file *)b)->path);
}

/* ---- manifest ----------------------------------------------------------------------------- */

static char *manifest_json(const char *name, uint64_t version, const char *expires,
                           const walk *w, mg_error *err)
{
    json_t *root = json_object();
    json_t *files = json_array();
    bool ok = root != NULL && files != NULL &&
              json_object_set_new(root, "modelgate_manifest", json_integer(1)) == 0 &&
              json_object_set_new(root, "name", json_string(name)) == 0 &&
              json_object_set_new(root, "version", json_integer((json_int_t)version)) == 0 &&
              (expires == NULL ||
               json_object_set_new(root, "expires", json_string(expires)) == 0);
    for (size_t i = 0; ok && i < w->count; i++) {
        const mg_pinned_file *f = &w->files[i];
        char hex[2 * MG_DIGEST_MAX + 1];
        mg_hex_encode(f->digest, mg_digest_len(f->alg), hex);
        json_t *path = json_string(f->path);
        if (path == NULL) {
            json_decref(root);
            json_decref(files);
            mg_fail_fmt(err, MG_E_FORMAT, "file name '%.200s' is not valid UTF-8", f->path);
            return NULL;
        }
        json_t *entry = json_object();
        ok = entry != NULL && json_object_set_new(entry, "path", path) == 0 &&
             json_object_set_new(entry, "size", json_integer((json_int_t)f->size)) == 0 &&
             json_object_set_new(entry, mg_digest_name(f->alg), json_string(hex)) == 0 &&
             json_array_append_new(files, entry) == 0;
    }
    ok = ok && json_object_set_new(root, "files", files) == 0;
    char *text = ok ? json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(root);
    if (text == NULL)
        mg_fail_fmt(err, MG_E_LIMIT, "cannot encode the manifest");
    return text;
}

/* Write `data` to a new temporary file in `dfd`; its name goes to `tmp`. */
static mg_status write_temp(int dfd, const char *final, const void *data, size_t len, char *tmp,
                            size_t tmp_cap, mg_error *err)
{
    uint8_t rnd[8];
    char hex[17];
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        return mg_fail(err, MG_E_LIMIT, "no randomness for a temporary file name");
    mg_hex_encode(rnd, sizeof rnd, hex);
    snprintf(tmp, tmp_cap, ".%s.%s.tmp", final, hex);
    int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return mg_fail(err, MG_E_IO, "cannot create a temporary file: %s", strerror(errno));
    bool ok = mg_write_all(fd, data, len) && fsync(fd) == 0;
    int saved = errno;
    ok = close(fd) == 0 && ok;
    if (!ok) {
        unlinkat(dfd, tmp, 0);
        return mg_fail(err, MG_E_IO, "cannot write %.200s: %s", final, strerror(saved));
    }
    return MG_OK;
}

static bool name_ok(const char *name)
{
    size_t n = strnlen(name, 129);
    if (n == 0 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* The base name of `dir`, ignoring trailing slashes, into `out`. */
static void base_name(const char *dir, char *out, size_t cap)
{
    size_t end = strlen(dir);
    while (end > 1 && dir[end - 1] == '/')
        end--;
    size_t start = end;
    while (start > 0 && dir[start - 1] != '/')
        start--;
    size_t n = end - start < cap - 1 ? end - start : cap - 1;
    memcpy(out, dir + start, n);
    out[n] = '\0';
}

static mg_status publish(int dfd, const char *manifest, size_t manifest_len, const uint8_t *sig,
                         size_t sig_len, mg_error *err)
{
    char tmp_m[128], tmp_s[128];
    mg_status s = write_temp(dfd, MG_MANIFEST_NAME, manifest, manifest_len, tmp_m, sizeof tmp_m,
                             err);
    if (s != MG_OK)
        return s;
    s = write_temp(dfd, MG_MANIFEST_NAME ".sig", sig, sig_len, tmp_s, sizeof tmp_s, err);
    if (s != MG_OK) {
        unlinkat(dfd, tmp_m, 0);
        return s;
    }
    if (renameat(dfd, tmp_m, dfd, MG_MANIFEST_NAME) != 0 ||
        renameat(dfd, tmp_s, dfd, MG_MANIFEST_NAME ".sig") != 0) {
        int saved = errno;
        unlinkat(dfd, tmp_m, 0);
        unlinkat(dfd, tmp_s, 0);
        return mg_fail(err, MG_E_IO, "cannot publish the manifest: %s", strerror(saved));
    }
    if (fsync(dfd) != 0)
        return mg_fail(err, MG_E_IO, "cannot sync the model directory: %s", strerror(errno));
    return MG_OK;
}

mg_status mg_manifest_build(const char *dir, const char *name, uint64_t version,
                           const char *expires, mg_digest_alg alg, const struct stat *exclude,
                           char **text_out, size_t *len_out, mg_error *err)
{
    *text_out = NULL;
    *len_out = 0;
    char base[129];
    if (name == NULL) {
        base_name(dir, base, sizeof base);
        name = base;
    }
    if (!name_ok(name))
        return mg_fail(err, MG_E_USAGE, "model name '%.128s' does not match [A-Za-z0-9._-]{1,128}",
                       name);
    if (version < 1 || version > INT64_MAX)
        return mg_fail(err, MG_E_USAGE, "version must be an integer from 1 to 2^63-1");
    int64_t when;
    if (expires != NULL && !mg_manifest_parse_time(expires, &when))
        return mg_fail(err, MG_E_USAGE, "expiry must be a UTC time \"YYYY-MM-DDTHH:MM:SSZ\"");
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return mg_fail(err, MG_E_IO, "cannot open %.200s: %s", dir, strerror(errno));
    walk w = {.alg = alg, .buf = malloc(READ_CHUNK),
              .key_dev = exclude != NULL ? exclude->st_dev : 0,
              .key_ino = exclude != NULL ? exclude->st_ino : 0};
    mg_status s;
    if (w.buf == NULL) {
        close(dfd);
        s = mg_fail(err, MG_E_LIMIT, "out of memory");
    } else {
        s = walk_dir(dfd, "", 0, &w, err); /* closes dfd */
    }
    free(w.buf);
    if (s == MG_OK && w.count == 0)
        s = mg_fail(err, MG_E_USAGE, "%.200s holds no file to sign", dir);
    char *text = NULL;
    if (s == MG_OK) {
        qsort(w.files, w.count, sizeof *w.files, compare_files);
        text = manifest_json(name, version, expires, &w, err);
        s = text != NULL ? MG_OK : err != NULL ? err->status : MG_E_LIMIT;
    }
    if (s == MG_OK) {
        size_t n = strlen(text);
        text[n++] = '\n'; /* over the NUL: from here the text is used by length */
        *text_out = text;
        *len_out = n;
    }
    for (size_t i = 0; i < w.count; i++)
        free(w.files[i].path);
    free(w.files);
    return s;
}

mg_status mg_sign_dir(const char *key_path, const char *dir, const char *name, uint64_t version,
                      const char *expires, mg_digest_alg alg, mg_error *err)
{
    EVP_PKEY *pkey;
    struct stat key_file;
    mg_status s = load_private_key(key_path, &pkey, &key_file, err);
    if (s != MG_OK)
        return s;
    char *text = NULL;
    size_t text_len = 0;
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    s = mg_manifest_build(dir, name, version, expires, alg, &key_file, &text, &text_len, err);
    if (s == MG_OK)
        s = sign_and_check(pkey, (const uint8_t *)text, text_len, &sig, &sig_len, err);
    int dfd = -1;
    if (s == MG_OK && (dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        s = mg_fail(err, MG_E_IO, "cannot open %.200s: %s", dir, strerror(errno));
    if (s == MG_OK)
        s = publish(dfd, text, text_len, sig, sig_len, err);
    if (dfd >= 0)
        close(dfd);
    EVP_PKEY_free(pkey);
    free(text);
    free(sig);
    return s;
}
