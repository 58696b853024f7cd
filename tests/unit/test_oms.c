/* OMS bundles (issue 16): the DSSE PAE bytes, statement checks without signatures, ignore
 * rules, and parallel shard hashing into verified memory. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>

#include "digest.h"
#include "oms.h"
#include "shard.h"
#include "testutil.h"
#include "util/base64.h"
#include "util/hex.h"

static void test_pae_exact_bytes(void **state)
{
    (void)state;
    size_t n = 0;
    uint8_t *p = mg_oms_pae((const uint8_t *)"{\n}", 3, &n);
    static const char want[] = "DSSEv1 28 application/vnd.in-toto+json 3 {\n}";
    assert_int_equal(n, sizeof want - 1);
    assert_memory_equal(p, want, n);
    free(p);
    p = mg_oms_pae(NULL, 0, &n);
    assert_int_equal(n, strlen("DSSEv1 28 application/vnd.in-toto+json 0 "));
    free(p);
}

/* A statement over `names` (each with digest SHA-256(name)); `root_ok` false spoils the root. */
static char *statement(const char *method, const char *extra_ser, const char *const *names,
                       size_t n, bool root_ok)
{
    char *res = calloc(1, 65536);
    uint8_t cat[32 * 16], d[MG_DIGEST_MAX];
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        mg_error e;
        assert_int_equal(mg_digest_buffer(MG_SHA256, names[i], strlen(names[i]), d, &e), MG_OK);
        memcpy(cat + 32 * i, d, 32);
        char hex[65];
        mg_hex_encode(d, 32, hex);
        pos += (size_t)snprintf(res + pos, 65536 - pos, "%s{\"name\": \"%s\", \"algorithm\": "
                                "\"sha256\", \"digest\": \"%s\"}", i ? ", " : "", names[i], hex);
    }
    mg_error e;
    assert_int_equal(mg_digest_buffer(MG_SHA256, cat, 32 * n, d, &e), MG_OK);
    if (!root_ok)
        d[0] ^= 1;
    char root[65];
    mg_hex_encode(d, 32, root);
    char *out = malloc(70000);
    snprintf(out, 70000,
             "{\"_type\": \"https://in-toto.io/Statement/v1\", \"subject\": [{\"name\": \"m\", "
             "\"digest\": {\"sha256\": \"%s\"}}], \"predicateType\": "
             "\"https://model_signing/signature/v1.0\", \"predicate\": {\"serialization\": "
             "{\"method\": \"%s\", \"hash_type\": \"sha256\", \"allow_symlinks\": false%s}, "
             "\"resources\": [%s]}}",
             root, method, extra_ser, res);
    free(res);
    return out;
}

static mg_status parse(const char *text, const char *single, mg_oms *o, mg_error *e)
{
    mg_error_clear(e);
    return mg_oms_parse_statement_unverified((const uint8_t *)text, strlen(text), single, o, e);
}

static void test_statement_files(void **state)
{
    (void)state;
    static const char *const names[] = {"z.bin", "a/b.bin", "a-c"};
    char *t = statement("files", ", \"ignore_paths\": [\"notes\", \"/abs\", \"../up\"]", names, 3,
                        true);
    mg_oms o;
    mg_error e;
    assert_int_equal(parse(t, NULL, &o, &e), MG_OK);
    assert_int_equal(o.file_count, 3);
    assert_string_equal(o.files[0].path, "a-c"); /* sorted by bytes for the file-set merge */
    assert_string_equal(o.files[1].path, "a/b.bin");
    assert_string_equal(o.files[2].path, "z.bin");
    assert_int_equal(o.files[2].shard_count, 0);
    assert_false(o.shards);
    /* only the safe recorded path is kept; a path covers itself and what is below it */
    assert_int_equal(o.ignore_count, 1);
    assert_true(mg_oms_ignored(&o, "notes"));
    assert_true(mg_oms_ignored(&o, "notes/x/y"));
    assert_false(mg_oms_ignored(&o, "notes2"));
    assert_false(mg_oms_ignored(&o, "sub/notes"));
    mg_oms_free(&o);
    free(t);

    t = statement("files", "", names, 3, false);
    assert_int_equal(parse(t, NULL, &o, &e), MG_E_SIGNATURE);
    assert_non_null(strstr(e.message, "subject digest"));
    mg_oms_free(&o);
    free(t);

    static const char *const dup[] = {"a", "b", "a"};
    t = statement("files", "", dup, 3, true);
    assert_int_equal(parse(t, NULL, &o, &e), MG_E_SIGNATURE);
    mg_oms_free(&o);
    free(t);

    static const char *const unsafe[][1] = {{"../x"}, {"/etc/passwd"}, {"a//b"}, {"./a"},
                                            {"a\\\\b"}};
    for (size_t i = 0; i < sizeof unsafe / sizeof unsafe[0]; i++) {
        t = statement("files", "", unsafe[i], 1, true);
        assert_int_equal(parse(t, NULL, &o, &e), MG_E_SIGNATURE);
        mg_oms_free(&o);
        free(t);
    }
    /* a single-file model: "." or its own name */
    static const char *const dot[] = {"."};
    t = statement("files", "", dot, 1, true);
    assert_int_equal(parse(t, "w.gguf", &o, &e), MG_OK);
    assert_string_equal(o.files[0].path, "w.gguf");
    mg_oms_free(&o);
    assert_int_equal(parse(t, NULL, &o, &e), MG_E_SIGNATURE);
    mg_oms_free(&o);
    free(t);
    static const char *const other[] = {"other.gguf"};
    t = statement("files", "", other, 1, true);
    assert_int_equal(parse(t, "w.gguf", &o, &e), MG_E_INTEGRITY);
    mg_oms_free(&o);
    free(t);
}

static void test_statement_shards(void **state)
{
    (void)state;
    static const char *const good[] = {"f:8:16", "f:0:8", "f:16:20", "g:0:3"};
    char *t = statement("shards", ", \"shard_size\": 8.0", good, 4, true);
    mg_oms o;
    mg_error e;
    assert_int_equal(parse(t, NULL, &o, &e), MG_OK);
    assert_true(o.shards);
    assert_int_equal(o.file_count, 2);
    assert_int_equal(o.files[0].shard_count, 3);
    assert_int_equal(o.files[0].size, 20);
    assert_int_equal(o.files[0].shard_size, 8);
    assert_int_equal(o.files[1].size, 3);
    mg_oms_free(&o);
    free(t);
    static const char *const bad[][3] = {
        {"f:0:8", "f:8:12", "f:12:20"},  /* a boundary moved */
        {"f:0:8", "f:16:20", "g:0:1"},   /* a hole */
        {"f:0:9", "g:0:1", "h:0:1"},     /* longer than shard_size */
        {"f:1:8", "g:0:1", "h:0:1"},     /* not from 0 */
    };
    for (size_t i = 0; i < 4; i++) {
        t = statement("shards", ", \"shard_size\": 8", bad[i], 3, true);
        assert_int_equal(parse(t, NULL, &o, &e), MG_E_INTEGRITY);
        mg_oms_free(&o);
        free(t);
    }
    static const char *const malformed[][1] = {{"f:0"}, {"f:08:16"}, {"f:8:8"}, {"f:-1:8"},
                                               {"f:0:99999999999999999999"}};
    for (size_t i = 0; i < 5; i++) {
        t = statement("shards", ", \"shard_size\": 8", malformed[i], 1, true);
        assert_int_equal(parse(t, NULL, &o, &e), MG_E_SIGNATURE);
        mg_oms_free(&o);
        free(t);
    }
    static const char *const one[] = {"f:0:3"};
    static const char *const sizes[] = {"", ", \"shard_size\": 0", ", \"shard_size\": 8.5",
                                        ", \"shard_size\": \"8\"", ", \"shard_size\": -8"};
    for (size_t i = 0; i < 5; i++) {
        t = statement("shards", sizes[i], one, 1, true);
        assert_int_equal(parse(t, NULL, &o, &e), MG_E_SIGNATURE);
        mg_oms_free(&o);
        free(t);
    }
}

static void test_shard_read_parallel(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    enum { SIZE = 1000, SHARD = 128 };
    uint8_t data[SIZE];
    for (size_t i = 0; i < SIZE; i++)
        data[i] = (uint8_t)(i * 7 + 3);
    tu_write_file(dir, "w.bin", data, SIZE);
    mg_pinned_file pin = {.alg = MG_SHA256, .has_size = true, .size = SIZE, .shard_size = SHARD,
                          .shard_count = (SIZE + SHARD - 1) / SHARD};
    pin.shards = calloc(pin.shard_count, sizeof *pin.shards);
    mg_error e;
    for (size_t i = 0; i < pin.shard_count; i++) {
        size_t len = SIZE - i * SHARD < SHARD ? SIZE - i * SHARD : SHARD;
        assert_int_equal(mg_digest_buffer(MG_SHA256, data + i * SHARD, len, pin.shards[i], &e),
                         MG_OK);
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/w.bin", dir);
    for (unsigned threads = 1; threads <= 4; threads++) {
        int fd = open(path, O_RDONLY);
        mg_region r;
        uint8_t root[MG_DIGEST_MAX], want[MG_DIGEST_MAX];
        _Atomic uint64_t done = 0;
        assert_int_equal(mg_shard_read(fd, &pin, threads, 0, &r, root, &done, &e), MG_OK);
        assert_int_equal(r.len, SIZE);
        assert_memory_equal(r.data, data, SIZE);
        assert_true(r.memfd_sealed); /* verified memory as for unsharded files */
        assert_int_equal(done, SIZE);
        assert_int_equal(mg_shard_root(&pin, want, &e), MG_OK);
        assert_memory_equal(root, want, 32);
        mg_region_free(&r);
        close(fd);
    }
    /* two shards changed: the lowest is reported, with its range and digests */
    data[5 * SHARD + 1] ^= 1;
    data[2 * SHARD + 1] ^= 1;
    tu_write_file(dir, "w.bin", data, SIZE);
    int fd = open(path, O_RDONLY);
    mg_region r;
    uint8_t root[MG_DIGEST_MAX];
    mg_error_clear(&e);
    assert_int_equal(mg_shard_read(fd, &pin, 3, 0, &r, root, NULL, &e), MG_E_INTEGRITY);
    assert_non_null(strstr(e.message, "256:384"));
    assert_string_equal(e.algorithm, "sha256");
    assert_null(r.data);
    close(fd);
    /* a file of another size is refused before reading */
    tu_write_file(dir, "w.bin", data, SIZE - 1);
    fd = open(path, O_RDONLY);
    assert_int_equal(mg_shard_read(fd, &pin, 2, 0, &r, root, NULL, &e), MG_E_INTEGRITY);
    close(fd);
    free(pin.shards);
    tu_rmtree(dir);
    free(dir);
}

/* Pins `data` in shards of `shard` bytes. */
static mg_pinned_file pin_shards(const uint8_t *data, size_t size, size_t shard)
{
    mg_pinned_file pin = {.alg = MG_SHA256, .has_size = true, .size = size, .shard_size = shard,
                          .shard_count = (size + shard - 1) / shard};
    pin.shards = calloc(pin.shard_count, sizeof *pin.shards);
    assert_non_null(pin.shards);
    mg_error e;
    for (size_t i = 0; i < pin.shard_count; i++) {
        size_t len = size - i * shard < shard ? size - i * shard : shard;
        assert_int_equal(mg_digest_buffer(MG_SHA256, data + i * shard, len, pin.shards[i], &e),
                         MG_OK);
    }
    return pin;
}

typedef struct cutter {
    int fd;
    unsigned delay_us;
    int rc;
} cutter;

static void *cut_file(void *arg)
{
    cutter *c = arg;
    usleep(c->delay_us);
    c->rc = ftruncate(c->fd, ((24 << 20) + 1000) / 2);
    return NULL;
}

/* More threads than shards: the ones with no shard left fill the chunks of shards in progress
 * from their end, and the owners read those back from the verified memory. The bytes, the
 * digests and the lowest failed shard are the same as without help; help that is still
 * under way when the file turns out shorter ends the read, never hangs it. */
static void test_shard_read_tail_help(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    enum { SIZE = (24 << 20) + 1000 };
    uint8_t *data = malloc(SIZE);
    assert_non_null(data);
    for (size_t i = 0; i < SIZE; i++)
        data[i] = (uint8_t)(i * 131 + (i >> 12));
    char path[4200];
    snprintf(path, sizeof path, "%s/w.bin", dir);
    /* one shard and a helper; two shards (the last one ending in part of a chunk) and one */
    const struct { size_t shard; unsigned threads; } cases[] = {{SIZE, 2}, {16u << 20, 3}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        mg_pinned_file pin = pin_shards(data, SIZE, cases[k].shard);
        uint64_t before = mg_shard_chunks_helped();
        for (int attempt = 0; attempt < 20 && mg_shard_chunks_helped() == before; attempt++) {
            int fd = tu_write_and_open(dir, "w.bin", data, SIZE, O_RDONLY);
            mg_region r;
            uint8_t root[MG_DIGEST_MAX], want[MG_DIGEST_MAX];
            _Atomic uint64_t done = 0;
            mg_error e;
            assert_int_equal(mg_shard_read(fd, &pin, cases[k].threads, 0, &r, root, &done, &e),
                             MG_OK);
            assert_int_equal(r.len, SIZE);
            assert_memory_equal(r.data, data, SIZE);
            assert_true(r.memfd_sealed);
            assert_int_equal(done, SIZE); /* every byte hashed once, by its owner */
            assert_int_equal(mg_shard_root(&pin, want, &e), MG_OK);
            assert_memory_equal(root, want, 32);
            mg_region_free(&r);
            close(fd);
        }
        assert_true(mg_shard_chunks_helped() > before); /* the help ran */
        /* a byte changed in the last chunk, the first one a helper takes */
        data[SIZE - 1] ^= 0x40;
        before = mg_shard_chunks_helped();
        for (int attempt = 0; attempt < 20 && mg_shard_chunks_helped() == before; attempt++) {
            int fd = tu_write_and_open(dir, "w.bin", data, SIZE, O_RDONLY);
            mg_region r;
            uint8_t root[MG_DIGEST_MAX];
            mg_error e;
            mg_error_clear(&e);
            assert_int_equal(mg_shard_read(fd, &pin, cases[k].threads, 0, &r, root, NULL, &e),
                             MG_E_INTEGRITY);
            char range[64];
            snprintf(range, sizeof range, "shard %zu:%d",
                     (pin.shard_count - 1) * cases[k].shard, SIZE);
            assert_non_null(strstr(e.message, range));
            assert_null(r.data);
            close(fd);
        }
        assert_true(mg_shard_chunks_helped() > before);
        data[SIZE - 1] ^= 0x40;
        free(pin.shards);
    }
    /* cut short while it is read: the helper, reading from the end, meets the end first */
    mg_pinned_file pin = pin_shards(data, SIZE, SIZE);
    int hits = 0;
    for (unsigned attempt = 0; attempt < 5; attempt++) {
        int fd = tu_write_and_open(dir, "w.bin", data, SIZE, O_RDONLY);
        cutter c = {.fd = open(path, O_WRONLY | O_CLOEXEC), .delay_us = 200 * attempt};
        assert_true(c.fd >= 0);
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, cut_file, &c), 0);
        mg_region r;
        uint8_t root[MG_DIGEST_MAX];
        mg_error e;
        mg_error_clear(&e);
        mg_status st = mg_shard_read(fd, &pin, 2, 0, &r, root, NULL, &e);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(c.rc, 0);
        if (st == MG_OK) { /* (the cut came after the last read: all the bytes are there) */
            assert_memory_equal(r.data, data, SIZE);
            mg_region_free(&r);
        } else {
            assert_int_equal(st, MG_E_INTEGRITY);
            assert_null(r.data);
            hits++;
        }
        close(c.fd);
        close(fd);
    }
    assert_true(hits > 0);
    free(pin.shards);
    free(data);
    tu_rmtree(dir);
    free(dir);
}

/* A signed note "<origin>\n<size>\n<root b64>\n\n\u2014 <name> <b64(hint || sig)>\n"
 * signed by `k` with the key hint `hint`; `note_override` replaces the note text if given. */
static char *make_checkpoint(EVP_PKEY *k, const uint8_t hint[4], uint64_t size,
                             const uint8_t root[32], const char *note_override)
{
    char root64[64], note[256];
    mg_base64_encode(root, 32, root64);
    if (note_override != NULL)
        snprintf(note, sizeof note, "%s", note_override);
    else
        snprintf(note, sizeof note, "log.example - 42\n%llu\n%s\n", (unsigned long long)size,
                 root64);
    uint8_t sig[4 + 256];
    size_t sig_len = sizeof sig - 4;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k), 1);
    assert_int_equal(EVP_DigestSign(ctx, sig + 4, &sig_len, (const uint8_t *)note, strlen(note)),
                     1);
    EVP_MD_CTX_free(ctx);
    memcpy(sig, hint, 4);
    char sig64[400];
    mg_base64_encode(sig, sig_len + 4, sig64);
    char *out = malloc(1024);
    snprintf(out, 1024, "%s\n\xe2\x80\x94 log.example %s\n", note, sig64);
    return out;
}

static void test_checkpoint(void **state)
{
    (void)state;
    EVP_PKEY *k = EVP_EC_gen("P-256"), *other = EVP_EC_gen("P-256");
    assert_non_null(k);
    uint8_t *der = NULL;
    int der_len = i2d_PUBKEY(k, &der);
    assert_true(der_len > 0);
    uint8_t id[MG_DIGEST_MAX], root[32], root2[32];
    assert_int_equal(mg_digest_buffer(MG_SHA256, der, (size_t)der_len, id, &(mg_error){0}), MG_OK);
    memset(root, 0xab, 32);
    memset(root2, 0xcd, 32);
    char why[160];
    const size_t dl = (size_t)der_len;
#define CHECK(text, size, rt) \
    mg_oms_checkpoint_check((text), strlen(text), der, dl, id, (size), (rt), why, sizeof why)

    char *good = make_checkpoint(k, id, 1000, root, NULL);
    assert_true(CHECK(good, 1000, root));
    /* the same note for another tree, or another root */
    assert_false(CHECK(good, 1001, root));
    assert_non_null(strstr(why, "another tree"));
    assert_false(CHECK(good, 1000, root2));
    /* no key, or the signature of another key, or the right key under another hint */
    assert_false(mg_oms_checkpoint_check(good, strlen(good), NULL, 0, id, 1000, root, why,
                                         sizeof why));
    char *by_other = make_checkpoint(other, id, 1000, root, NULL);
    assert_false(CHECK(by_other, 1000, root));
    assert_non_null(strstr(why, "not signed by the log"));
    const uint8_t wrong_hint[4] = {id[0] ^ 1, id[1], id[2], id[3]};
    char *hinted = make_checkpoint(k, wrong_hint, 1000, root, NULL);
    assert_false(CHECK(hinted, 1000, root));
    /* a witness line of another key besides the log's: fine; a malformed line: refused */
    char buf[2048];
    snprintf(buf, sizeof buf, "%s\xe2\x80\x94 witness AQIDBAAA\n", good);
    assert_true(CHECK(buf, 1000, root));
    snprintf(buf, sizeof buf, "%s- witness AQIDBAAA\n", good);
    assert_false(CHECK(buf, 1000, root));
    snprintf(buf, sizeof buf, "%s\xe2\x80\x94 witness AQID!AAA\n", good);
    assert_false(CHECK(buf, 1000, root));
    snprintf(buf, sizeof buf, "%s\xe2\x80\x94 nosig\n", good);
    assert_false(CHECK(buf, 1000, root));
    /* without the last newline, without the blank line, truncated anywhere: refused */
    snprintf(buf, sizeof buf, "%s", good);
    buf[strlen(buf) - 1] = '\0';
    assert_false(CHECK(buf, 1000, root));
    for (size_t cut = 0; cut < strlen(good); cut++) {
        assert_false(mg_oms_checkpoint_check(good, cut, der, dl, id, 1000, root, why,
                                             sizeof why));
    }
    /* a NUL inside is refused even with the length given */
    snprintf(buf, sizeof buf, "%s", good);
    size_t n = strlen(buf);
    buf[3] = '\0';
    assert_false(mg_oms_checkpoint_check(buf, n, der, dl, id, 1000, root, why, sizeof why));
    /* notes the log signed but that are not checkpoints: no size, a size with a sign or a
     * leading zero, a root that is not 32 bytes of base64 */
    char root64[64];
    mg_base64_encode(root, 32, root64);
    const char *bad_notes[] = {"log.example\n", "log.example\n+1000\nq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=\n",
                               "log.example\n01000\nq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=\n",
                               "log.example\n1000\nq6urq6ur\n", "\n1000\nq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=\n"};
    for (size_t i = 0; i < sizeof bad_notes / sizeof *bad_notes; i++) {
        char *t = make_checkpoint(k, id, 1000, root, bad_notes[i]);
        assert_false(CHECK(t, 1000, root));
        free(t);
    }
    /* that base64 root is the 0xab root: the same note with a good size line verifies */
    assert_string_equal(root64, "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=");
    char *plain = make_checkpoint(k, id, 1000, root, "log.example\n1000\nq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=\nextension line\n");
    assert_true(CHECK(plain, 1000, root));
#undef CHECK
    free(plain);
    free(good);
    free(by_other);
    free(hinted);
    OPENSSL_free(der);
    EVP_PKEY_free(k);
    EVP_PKEY_free(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pae_exact_bytes),
        cmocka_unit_test(test_statement_files),
        cmocka_unit_test(test_statement_shards),
        cmocka_unit_test(test_shard_read_parallel),
        cmocka_unit_test(test_shard_read_tail_help),
        cmocka_unit_test(test_checkpoint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
