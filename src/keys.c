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
#include "oms.h"
#include "sig.h"
#include "util/base64.h"
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

/* A signing key must be readable by its owner only (like ssh and minisign keys): owned by
 * root or the running user, no group or other permission bits. */
static mg_status private_key_protected(const char *key_path, const struct stat *st,
                                       mg_error *err)
{
    if (st->st_uid != 0 && st->st_uid != geteuid())
        return mg_fail(err, MG_E_POLICY, "private key %.200s is owned by uid %u, not root or "
                       "the running user", key_path, (unsigned)st->st_uid);
    if ((st->st_mode & 077) != 0)
        return mg_fail(err, MG_E_POLICY, "private key %.200s is accessible by group or others "
                       "(mode %03o; chmod 600 it)", key_path, (unsigned)(st->st_mode & 0777));
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
    else if (type == MG_SIG_ECDSA_P521)
        md = EVP_sha512();
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

/* Is `name` a temporary file an earlier `sign` left in DIR when it crashed
 * (".manifest.json.<16 hex>.tmp", ".manifest.json.sig.<16 hex>.tmp")? */
static bool is_stale_sign_temp(const char *name)
{
    static const char *const prefixes[] = {"." MG_MANIFEST_NAME ".sig.", "." MG_MANIFEST_NAME "."};
    for (size_t p = 0; p < 2; p++) {
        size_t pl = strlen(prefixes[p]);
        if (strncmp(name, prefixes[p], pl) != 0 || strlen(name) != pl + 16 + 4 ||
            strcmp(name + pl + 16, ".tmp") != 0)
            continue;
        bool hex = true;
        for (size_t i = pl; i < pl + 16; i++)
            hex = hex && ((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f'));
        if (hex)
            return true;
    }
    return false;
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
    bool oms;            /* OMS bundle: skip model.sig and the git files at the top */
    uint64_t shard_size; /* OMS "shards": a SHA-256 per shard_size bytes, else 0 */
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
    mg_pinned_file *f = &w->files[w->count];
    /* Shards: the whole-file context hashes the current shard and restarts at each border. */
    uint64_t want = w->shard_size > 0 ? w->shard_size : READ_CHUNK;
    uint64_t in_shard = 0;
    while (s == MG_OK) {
        size_t ask = w->shard_size > 0 && want - in_shard < READ_CHUNK ? (size_t)(want - in_shard)
                                                                      : READ_CHUNK;
        ssize_t r = read(fd, w->buf, ask);
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
        in_shard += (uint64_t)r;
        if (s == MG_OK && w->shard_size > 0 && in_shard == w->shard_size) {
            uint8_t (*grown)[MG_DIGEST_MAX] = mg_reallocarray(f->shards, f->shard_count + 1,
                                                              sizeof *grown);
            if (grown == NULL) {
                s = mg_fail(err, MG_E_LIMIT, "out of memory");
                break;
            }
            f->shards = grown;
            s = mg_digest_final(ctx, f->shards[f->shard_count++], err);
            mg_digest_free(ctx);
            ctx = NULL;
            if (s == MG_OK)
                s = mg_digest_new(w->alg, &ctx, err);
            in_shard = 0;
        }
    }
    close(fd);
    if (s == MG_OK && w->shard_size > 0 && in_shard > 0) {
        uint8_t (*grown)[MG_DIGEST_MAX] = mg_reallocarray(f->shards, f->shard_count + 1,
                                                          sizeof *grown);
        if (grown == NULL)
            s = mg_fail(err, MG_E_LIMIT, "out of memory");
        else
            f->shards = grown;
        if (s == MG_OK)
            s = mg_digest_final(ctx, f->shards[f->shard_count++], err);
    } else if (s == MG_OK) {
        s = mg_digest_final(ctx, f->digest, err);
    }
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

/* What an OMS signer leaves out at the top of the model (and records as ignore_paths). */
static const char *const oms_ignores[] = {".git", ".gitattributes", ".github", ".gitignore",
                                          "model.sig"};

static bool oms_top_ignored(const char *name)
{
    for (size_t i = 0; i < sizeof oms_ignores / sizeof oms_ignores[0]; i++) {
        if (strcmp(name, oms_ignores[i]) == 0)
            return true;
    }
    return false;
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
        if (depth == 0 && !w->oms && mg_manifest_is_own_file(e->d_name))
            continue;
        if (depth == 0 && w->oms && oms_top_ignored(e->d_name))
            continue;
        if (depth == 0 && is_stale_sign_temp(e->d_name)) {
            (void)unlinkat(dirfd(d), e->d_name, 0); /* never part of the model */
            continue;
        }
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
             json_object_set_new(entry, "size", json_integer((json_int_t)f->size)) == 0;
        if (f->shard_count > 1) {
            /* Sharded (`sign --shard-size`): one SHA-256 per shard, hashed in parallel. */
            json_t *list = json_array();
            ok = ok && list != NULL &&
                 json_object_set_new(entry, "shard_size",
                                     json_integer((json_int_t)w->shard_size)) == 0 &&
                 json_object_set_new(entry, "sha256_shards", list) == 0;
            for (size_t k = 0; ok && k < f->shard_count; k++) {
                mg_hex_encode(f->shards[k], 32, hex);
                ok = json_array_append_new(list, json_string(hex)) == 0;
            }
        } else {
            /* One shard is the whole file: its digest is the file's. */
            mg_hex_encode(f->shard_count == 1 ? f->shards[0] : f->digest,
                          mg_digest_len(f->alg), hex);
            ok = ok && json_object_set_new(entry, mg_digest_name(f->alg), json_string(hex)) == 0;
        }
        ok = ok && json_array_append_new(files, entry) == 0;
    }
    ok = ok && json_object_set_new(root, "files", files) == 0;
    char *text = ok ? json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(root);
    if (text == NULL)
        mg_fail_fmt(err, MG_E_LIMIT, "cannot encode the manifest");
    return text;
}

/* A new file of the set being published: unnamed (O_TMPFILE) where the file system allows,
 * else named ".FINAL.<16 hex>.tmp" in `tmp` (which a crash may leave, and the next `sign`
 * removes). */
typedef struct staged {
    int fd;
    char tmp[128]; /* empty when unnamed */
} staged;

/* Write and sync `data` as a staged file for `final`; false with errno set. */
static bool stage(int dfd, const char *final, const void *data, size_t len, staged *out)
{
    out->tmp[0] = '\0';
    out->fd = openat(dfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
    if (out->fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
        uint8_t rnd[8];
        char hex[17];
        if (RAND_bytes(rnd, sizeof rnd) != 1) {
            errno = EIO;
            return false;
        }
        mg_hex_encode(rnd, sizeof rnd, hex);
        snprintf(out->tmp, sizeof out->tmp, ".%s.%s.tmp", final, hex);
        out->fd = openat(dfd, out->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                         0644);
        if (out->fd < 0)
            out->tmp[0] = '\0';
    }
    if (out->fd < 0)
        return false;
    if (fchmod(out->fd, 0644) != 0 || !mg_write_all(out->fd, data, len) || fsync(out->fd) != 0) {
        int saved = errno;
        close(out->fd);
        out->fd = -1;
        if (out->tmp[0] != '\0')
            (void)unlinkat(dfd, out->tmp, 0);
        errno = saved;
        return false;
    }
    return true;
}

/* Give a staged file its final name (which no longer exists). */
static int unstage(int dfd, staged *st, const char *final)
{
    if (st->tmp[0] == '\0')
        return mg_link_unnamed(st->fd, dfd, final);
    if (renameat(dfd, st->tmp, dfd, final) != 0)
        return -1;
    st->tmp[0] = '\0';
    return 0;
}

static void unstage_cleanup(int dfd, staged *st)
{
    if (st->fd >= 0)
        close(st->fd);
    if (st->tmp[0] != '\0')
        (void)unlinkat(dfd, st->tmp, 0);
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

/*
 * Replace the manifest and its signatures as one set. Both new files are written unnamed and
 * synced first; then every signature file is removed (old .sig.N and .minisig were made over
 * the old bytes and would be left valid-looking), then the manifest, and the new manifest and
 * signature are linked in. A verifier at any moment sees the old signed set, a set that does
 * not verify (no signature, or no manifest), or the new one. A crash leaves no temporary name
 * (without O_TMPFILE, at most the two staged names, which the next `sign` removes).
 */
static mg_status publish(int dfd, const char *manifest, size_t manifest_len, const uint8_t *sig,
                         size_t sig_len, mg_error *err)
{
    staged m = {.fd = -1}, g = {.fd = -1};
    if (!stage(dfd, MG_MANIFEST_NAME, manifest, manifest_len, &m) ||
        !stage(dfd, MG_MANIFEST_NAME ".sig", sig, sig_len, &g)) {
        int saved = errno;
        unstage_cleanup(dfd, &m);
        unstage_cleanup(dfd, &g);
        return mg_fail(err, MG_E_IO, "cannot write the new manifest: %s", strerror(saved));
    }
    static const char *const own[] = {
        MG_MANIFEST_NAME ".sig",   MG_MANIFEST_NAME ".sig.1", MG_MANIFEST_NAME ".sig.2",
        MG_MANIFEST_NAME ".sig.3", MG_MANIFEST_NAME ".sig.4", MG_MANIFEST_NAME ".sig.5",
        MG_MANIFEST_NAME ".sig.6", MG_MANIFEST_NAME ".sig.7", MG_MANIFEST_NAME ".sig.8",
        MG_MANIFEST_NAME ".sig.9", MG_MANIFEST_NAME ".minisig", MG_MANIFEST_NAME};
    mg_status s = MG_OK;
    for (size_t i = 0; s == MG_OK && i < sizeof own / sizeof own[0]; i++) {
        if (unlinkat(dfd, own[i], 0) != 0 && errno != ENOENT)
            s = mg_fail(err, MG_E_IO, "cannot remove the old %s: %s", own[i], strerror(errno));
    }
    if (s == MG_OK && (unstage(dfd, &m, MG_MANIFEST_NAME) != 0 ||
                       unstage(dfd, &g, MG_MANIFEST_NAME ".sig") != 0))
        s = mg_fail(err, MG_E_IO, "cannot publish the manifest: %s", strerror(errno));
    unstage_cleanup(dfd, &m);
    unstage_cleanup(dfd, &g);
    if (s == MG_OK && fsync(dfd) != 0)
        s = mg_fail(err, MG_E_IO, "cannot sync the model directory: %s", strerror(errno));
    return s;
}

mg_status mg_manifest_build(const char *dir, const char *name, uint64_t version,
                           const char *expires, mg_digest_alg alg, uint64_t shard_size,
                           const struct stat *exclude, char **text_out, size_t *len_out,
                           mg_error *err)
{
    *text_out = NULL;
    *len_out = 0;
    if (shard_size > 0 && alg != MG_SHA256)
        return mg_fail(err, MG_E_USAGE, "sharded manifests use sha256");
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
              .key_ino = exclude != NULL ? exclude->st_ino : 0, .shard_size = shard_size};
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
    for (size_t i = 0; i < w.count; i++) {
        free(w.files[i].path);
        free(w.files[i].shards);
    }
    free(w.files);
    return s;
}

/* ---- OMS bundles (issue 16) --------------------------------------------------------------- */

/* The reference signer's order: path components compared bytewise, i.e. '/' before all. */
static int compare_components(const void *a, const void *b)
{
    const unsigned char *x = (const unsigned char *)((const mg_pinned_file *)a)->path;
    const unsigned char *y = (const unsigned char *)((const mg_pinned_file *)b)->path;
    for (;; x++, y++) {
        unsigned cx = *x == '/' ? 1u : *x == 0 ? 0u : (unsigned)*x + 1u;
        unsigned cy = *y == '/' ? 1u : *y == 0 ? 0u : (unsigned)*y + 1u;
        if (cx != cy)
            return cx < cy ? -1 : 1;
        if (cx == 0)
            return 0;
    }
}

static bool add_resource(json_t *resources, const char *alg, const char *name,
                         const uint8_t digest[32], EVP_MD_CTX *root)
{
    char hex[65];
    mg_hex_encode(digest, 32, hex);
    json_t *r = json_object();
    json_t *n = json_string(name);
    bool ok = r != NULL && n != NULL && json_object_set_new(r, "algorithm", json_string(alg)) == 0 &&
              json_object_set_new(r, "name", n) == 0 &&
              json_object_set_new(r, "digest", json_string(hex)) == 0 &&
              json_array_append(resources, r) == 0 && EVP_DigestUpdate(root, digest, 32) == 1;
    if (n != NULL && r == NULL)
        json_decref(n);
    json_decref(r);
    return ok;
}

/* The in-toto statement of an OMS v1.0 signature over the walked files. */
static char *oms_statement(const char *name, const walk *w, mg_error *err)
{
    json_t *resources = json_array();
    EVP_MD_CTX *root = EVP_MD_CTX_new();
    bool ok = resources != NULL && root != NULL && EVP_DigestInit_ex(root, EVP_sha256(), NULL) == 1;
    char alg[64];
    snprintf(alg, sizeof alg, w->shard_size > 0 ? "sha256-sharded-%llu" : "sha256",
             (unsigned long long)w->shard_size);
    char shard_name[MG_MANIFEST_MAX_PATH + 64];
    for (size_t i = 0; ok && i < w->count; i++) {
        const mg_pinned_file *f = &w->files[i];
        if (w->shard_size == 0) {
            ok = add_resource(resources, alg, f->path, f->digest, root);
            continue;
        }
        for (size_t k = 0; ok && k < f->shard_count; k++) {
            uint64_t start = (uint64_t)k * w->shard_size;
            uint64_t end = f->size - start < w->shard_size ? f->size : start + w->shard_size;
            snprintf(shard_name, sizeof shard_name, "%s:%llu:%llu", f->path,
                     (unsigned long long)start, (unsigned long long)end);
            ok = add_resource(resources, alg, shard_name, f->shards[k], root);
        }
    }
    uint8_t digest[32];
    char hex[65];
    unsigned dl = 0;
    ok = ok && EVP_DigestFinal_ex(root, digest, &dl) == 1;
    EVP_MD_CTX_free(root);
    if (!ok) {
        json_decref(resources);
        mg_fail_fmt(err, MG_E_FORMAT, "cannot encode the statement (a file name that is not "
                    "UTF-8?)");
        return NULL;
    }
    if (json_array_size(resources) == 0) {
        json_decref(resources);
        mg_fail_fmt(err, MG_E_USAGE, "the model holds no data to sign");
        return NULL;
    }
    mg_hex_encode(digest, 32, hex);
    json_t *ignore = json_array();
    for (size_t i = 0; ignore != NULL && i < sizeof oms_ignores / sizeof oms_ignores[0]; i++)
        json_array_append_new(ignore, json_string(oms_ignores[i]));
    json_t *ser = json_pack("{s:b, s:s, s:s, s:o}", "allow_symlinks", 0, "method",
                            w->shard_size > 0 ? "shards" : "files", "hash_type", "sha256",
                            "ignore_paths", ignore);
    if (ser != NULL && w->shard_size > 0)
        json_object_set_new(ser, "shard_size", json_integer((json_int_t)w->shard_size));
    json_t *st = json_pack("{s:s, s:[{s:s, s:{s:s}}], s:s, s:{s:o, s:o}}", "_type",
                           "https://in-toto.io/Statement/v1", "subject", "name", name, "digest",
                           "sha256", hex, "predicateType", "https://model_signing/signature/v1.0",
                           "predicate", "resources", resources, "serialization", ser);
    char *text = st != NULL ? json_dumps(st, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(st);
    if (text == NULL)
        mg_fail_fmt(err, MG_E_LIMIT, "cannot encode the statement");
    return text;
}

static char *b64(const uint8_t *data, size_t len)
{
    char *out = malloc(mg_base64_encoded_len(len) + 1);
    if (out != NULL)
        mg_base64_encode(data, len, out);
    return out;
}

/* The Sigstore bundle around the statement and its DSSE signature (key mode, with hint). */
static char *oms_bundle(const char *payload, size_t payload_len, const uint8_t *sig,
                        size_t sig_len, const uint8_t hint[32], mg_error *err)
{
    char hex[65];
    mg_hex_encode(hint, 32, hex);
    char *p64 = b64((const uint8_t *)payload, payload_len);
    char *s64 = b64(sig, sig_len);
    json_t *b = p64 != NULL && s64 != NULL
                    ? json_pack("{s:s, s:{s:{s:s}, s:[]}, s:{s:s, s:s, s:[{s:s, s:s}]}}",
                                "mediaType", "application/vnd.dev.sigstore.bundle.v0.3+json",
                                "verificationMaterial", "publicKey", "hint", hex, "tlogEntries",
                                "dsseEnvelope", "payload", p64, "payloadType",
                                "application/vnd.in-toto+json", "signatures", "sig", s64,
                                "keyid", "")
                    : NULL;
    char *text = b != NULL ? json_dumps(b, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(b);
    free(p64);
    free(s64);
    if (text == NULL)
        mg_fail_fmt(err, MG_E_LIMIT, "cannot encode the bundle");
    return text;
}

mg_status mg_sign_oms(const char *key_path, const char *dir, uint64_t shard_size, mg_error *err)
{
    if (shard_size > (UINT64_C(1) << 53))
        return mg_fail(err, MG_E_USAGE, "the shard size must be from 1 to 2^53 bytes");
    EVP_PKEY *pkey;
    struct stat key_file;
    mg_status s = load_private_key(key_path, &pkey, &key_file, err);
    if (s != MG_OK)
        return s;
    mg_sig_key *pub = NULL;
    uint8_t hint[32];
    s = public_half(pkey, &pub, err);
    if (s == MG_OK) {
        mg_sig_key_type t = mg_sig_key_type_of(pub);
        if (t != MG_SIG_ECDSA_P256 && t != MG_SIG_ECDSA_P384 && t != MG_SIG_ECDSA_P521)
            s = mg_fail(err, MG_E_USAGE, "an OMS bundle is signed with ECDSA P-256, P-384 or "
                        "P-521; this key is %s", mg_sig_key_type_name(t));
        else if (!mg_sig_key_spki_pem_sha256(pub, hint))
            s = mg_fail(err, MG_E_LIMIT, "cannot encode the public key");
    }
    mg_sig_key_free(pub);
    int dfd = s == MG_OK ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (s == MG_OK && dfd < 0)
        s = mg_fail(err, MG_E_IO, "cannot open %.200s: %s", dir, strerror(errno));
    walk w = {.alg = MG_SHA256, .key_dev = key_file.st_dev, .key_ino = key_file.st_ino,
              .oms = true, .shard_size = shard_size};
    if (s == MG_OK) {
        w.buf = malloc(READ_CHUNK);
        int walk_fd = dup(dfd);
        if (w.buf == NULL || walk_fd < 0) {
            if (walk_fd >= 0)
                close(walk_fd);
            s = mg_fail(err, MG_E_LIMIT, "out of memory");
        } else {
            s = walk_dir(walk_fd, "", 0, &w, err);
        }
        free(w.buf);
    }
    char base[256];
    base_name(dir, base, sizeof base);
    char *payload = NULL, *bundle = NULL;
    uint8_t *pae = NULL, *sig = NULL;
    size_t pae_len = 0, sig_len = 0;
    if (s == MG_OK) {
        qsort(w.files, w.count, sizeof *w.files, compare_components);
        payload = oms_statement(base, &w, err);
        if (payload == NULL)
            s = err != NULL && err->status != MG_OK ? err->status : MG_E_LIMIT;
    }
    if (s == MG_OK && payload != NULL) {
        pae = mg_oms_pae((const uint8_t *)payload, strlen(payload), &pae_len);
        s = pae != NULL ? sign_and_check(pkey, pae, pae_len, &sig, &sig_len, err)
                        : mg_fail(err, MG_E_LIMIT, "out of memory");
    }
    if (s == MG_OK && payload != NULL) {
        bundle = oms_bundle(payload, strlen(payload), sig, sig_len, hint, err);
        s = bundle != NULL ? MG_OK : MG_E_LIMIT;
    }
    if (s == MG_OK) {
        size_t n = strlen(bundle);
        bundle[n++] = '\n'; /* over the NUL: used by length from here */
        /* Staged unnamed (or under a temporary name), then put in place of any older bundle:
         * a verifier sees the old bundle, none, or the new one. */
        staged st = {.fd = -1};
        bool placed = stage(dfd, "model.sig", bundle, n, &st);
        if (placed && st.tmp[0] != '\0')
            placed = renameat(dfd, st.tmp, dfd, "model.sig") == 0;
        else if (placed)
            placed = (unlinkat(dfd, "model.sig", 0) == 0 || errno == ENOENT) &&
                     unstage(dfd, &st, "model.sig") == 0;
        if (!placed)
            s = mg_fail(err, MG_E_IO, "cannot write model.sig: %s", strerror(errno));
        else
            st.tmp[0] = '\0';
        unstage_cleanup(dfd, &st);
        if (s == MG_OK && fsync(dfd) != 0)
            s = mg_fail(err, MG_E_IO, "cannot sync the model directory: %s", strerror(errno));
    }
    if (dfd >= 0)
        close(dfd);
    EVP_PKEY_free(pkey);
    free(payload);
    free(pae);
    free(sig);
    free(bundle);
    for (size_t i = 0; i < w.count; i++) {
        free(w.files[i].path);
        free(w.files[i].shards);
    }
    free(w.files);
    return s;
}

mg_status mg_sign_dir(const char *key_path, const char *dir, const char *name, uint64_t version,
                      const char *expires, mg_digest_alg alg, uint64_t shard_size, mg_error *err)
{
    EVP_PKEY *pkey;
    struct stat key_file;
    mg_status s = load_private_key(key_path, &pkey, &key_file, err);
    if (s != MG_OK)
        return s;
    s = private_key_protected(key_path, &key_file, err);
    if (s != MG_OK) {
        EVP_PKEY_free(pkey);
        return s;
    }
    char *text = NULL;
    size_t text_len = 0;
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    s = mg_manifest_build(dir, name, version, expires, alg, shard_size, &key_file, &text,
                          &text_len, err);
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
