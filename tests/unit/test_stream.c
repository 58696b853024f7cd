/* Streaming verification (src/stream.c, issue 17): local files hashed through a window, whole
 * or per shard, copied into the cache with their holes, published by descriptor; formats told
 * from a file's head; what a verified (not loaded) model hands out. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache.h"
#include "digest.h"
#include "format/format.h"
#include "policy.h"
#include "stream.h"
#include "testutil.h"
#include "util/hex.h"

#define SIZE (900u << 10)

/* 100 bytes of text, zeros, 10 bytes of text: a file with a hole's worth of zeros. */
static uint8_t *sample(void)
{
    uint8_t *b = calloc(1, SIZE);
    assert_non_null(b);
    for (unsigned i = 0; i < 100; i++)
        b[i] = (uint8_t)('a' + i % 26);
    memcpy(b + SIZE - 10, "0123456789", 10);
    return b;
}

static void pin_of(mg_pinned_file *pin, const uint8_t *data, size_t len)
{
    memset(pin, 0, sizeof *pin);
    pin->path = "f.bin";
    pin->alg = MG_SHA256;
    pin->has_size = true;
    pin->size = len;
    mg_error err;
    assert_int_equal(mg_digest_buffer(MG_SHA256, data, len, pin->digest, &err), MG_OK);
}

static int open_sample(const char *dir, const uint8_t *data)
{
    return tu_write_and_open(dir, "f.bin", data, SIZE, O_RDONLY);
}

static void whole_file_and_mismatch(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    uint8_t *data = sample();
    mg_pinned_file pin;
    pin_of(&pin, data, SIZE);
    mg_stream_file sf;
    mg_stream_file_init(&sf);
    mg_error err;
    int fd = open_sample(dir, data);
    _Atomic uint64_t done = 0;
    assert_int_equal(mg_stream_local(fd, &pin, 1, NULL, &sf, &done, &err), MG_OK);
    assert_int_equal(atomic_load(&done), SIZE);
    assert_int_equal(sf.size, SIZE);
    assert_memory_equal(sf.digest, pin.digest, 32);
    assert_int_equal(sf.head_len, MG_STREAM_HEAD);
    assert_memory_equal(sf.head, data, MG_STREAM_HEAD);
    assert_int_equal(sf.out_fd, -1); /* verify keeps no copy */
    mg_stream_file_free(&sf);

    /* another digest: integrity, with both digests in the report */
    pin.digest[0] ^= 1;
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    mg_error_clear(&err);
    assert_int_equal(mg_stream_local(fd, &pin, 1, NULL, &sf, NULL, &err), MG_E_INTEGRITY);
    assert_string_equal(err.algorithm, "sha256");
    char want[65];
    mg_hex_encode(pin.digest, 32, want);
    assert_string_equal(err.expected, want);
    assert_int_equal(strlen(err.actual), 64);
    assert_null(sf.head);
    pin.digest[0] ^= 1;

    /* another size: refused before a byte is read */
    pin.size = SIZE + 1;
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    assert_int_equal(mg_stream_local(fd, &pin, 1, NULL, &sf, NULL, &err), MG_E_INTEGRITY);
    assert_non_null(strstr(err.message, "expected"));
    close(fd);
    free(data);
    tu_rmtree(dir);
    free(dir);
}

static void shards_on_threads(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    uint8_t *data = sample();
    mg_pinned_file pin;
    pin_of(&pin, data, SIZE);
    pin.shard_size = 256u << 10;
    pin.shard_count = (SIZE + pin.shard_size - 1) / pin.shard_size; /* 4, the last short */
    pin.shards = calloc(pin.shard_count, sizeof *pin.shards);
    assert_non_null(pin.shards);
    mg_error err;
    for (size_t i = 0; i < pin.shard_count; i++) {
        size_t a = i * pin.shard_size, b = a + pin.shard_size < SIZE ? a + pin.shard_size : SIZE;
        assert_int_equal(mg_digest_buffer(MG_SHA256, data + a, b - a, pin.shards[i], &err),
                         MG_OK);
    }
    int fd = open_sample(dir, data);
    mg_stream_file sf;
    mg_stream_file_init(&sf);
    assert_int_equal(mg_stream_local(fd, &pin, 3, NULL, &sf, NULL, &err), MG_OK);
    assert_memory_equal(sf.head, data, MG_STREAM_HEAD);
    mg_stream_file_free(&sf);
    pin.shards[1][5] ^= 1;
    assert_int_equal(mg_stream_local(fd, &pin, 3, NULL, &sf, NULL, &err), MG_E_INTEGRITY);
    assert_non_null(strstr(err.message, "shard 262144:524288"));
    close(fd);
    free(pin.shards);
    free(data);
    tu_rmtree(dir);
    free(dir);
}

static void copy_into_cache_keeps_holes(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    uint8_t *data = sample();
    mg_pinned_file pin;
    pin_of(&pin, data, SIZE);
    int fd = open_sample(dir, data);
    char cdir[4200];
    snprintf(cdir, sizeof cdir, "%s/cache", dir);
    mg_cache_session *cs;
    mg_error err;
    assert_int_equal(mg_cache_begin(cdir, &cs, &err), MG_OK);
    mg_stream_file sf;
    mg_stream_file_init(&sf);
    assert_int_equal(mg_stream_local(fd, &pin, 1, cs, &sf, NULL, &err), MG_OK);
    assert_true(sf.out_fd >= 0);
    assert_memory_equal(sf.sha256, pin.digest, 32);
    char path[4200];
    assert_int_equal(mg_cache_publish_fd(cs, sf.out_fd, sf.size, sf.sha256, NULL, path,
                                         sizeof path, &err), MG_OK);
    /* publishing the same bytes again keeps the entry */
    assert_int_equal(mg_cache_publish_fd(cs, sf.out_fd, sf.size, sf.sha256, NULL, path,
                                         sizeof path, &err), MG_OK);
    mg_stream_file_free(&sf);
    mg_cache_end(cs, true);
    size_t len;
    uint8_t *got = tu_read_file(path, &len);
    assert_int_equal(len, SIZE);
    assert_memory_equal(got, data, SIZE);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
    assert_true((uint64_t)st.st_blocks * 512 < SIZE); /* the zeros were not written */
    free(got);

    /* a session that failed removes the folders it made (when empty) */
    char cdir2[4200];
    snprintf(cdir2, sizeof cdir2, "%s/cache2", dir);
    assert_int_equal(mg_cache_begin(cdir2, &cs, &err), MG_OK);
    mg_cache_end(cs, false);
    assert_int_equal(stat(cdir2, &st), -1);
    close(fd);
    free(data);
    tu_rmtree(dir);
    free(dir);
}

static void partial_files(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    char cdir[4200];
    snprintf(cdir, sizeof cdir, "%s/cache", dir);
    mg_cache_session *cs;
    mg_error err;
    assert_int_equal(mg_cache_begin(cdir, &cs, &err), MG_OK);
    int fd, fd2;
    uint64_t have;
    assert_int_equal(mg_cache_partial_open(cs, "sha256-x", &fd, &have, &err), MG_OK);
    assert_true(fd >= 0);
    assert_int_equal(have, 0);
    assert_int_equal(write(fd, "abc", 3), 3);
    /* held by this open: a second one gets no descriptor (a temporary file is used) */
    assert_int_equal(mg_cache_partial_open(cs, "sha256-x", &fd2, &have, &err), MG_OK);
    assert_int_equal(fd2, -1);
    close(fd);
    assert_int_equal(mg_cache_partial_open(cs, "sha256-x", &fd, &have, &err), MG_OK);
    assert_int_equal(have, 3);
    char path[4400];
    struct stat st;
    snprintf(path, sizeof path, "%s/partial/sha256-x", cdir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    snprintf(path, sizeof path, "%s/partial", cdir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    close(fd);
    mg_cache_partial_remove(cs, "sha256-x");
    snprintf(path, sizeof path, "%s/partial/sha256-x", cdir);
    assert_int_equal(stat(path, &st), -1);
    mg_cache_end(cs, true);
    tu_rmtree(dir);
    free(dir);
}

static void detect_from_head(void **state)
{
    (void)state;
    static const uint8_t st_head[] = "\x10\x00\x00\x00\x00\x00\x00\x00{\"w\":{}}        ";
    const uint64_t big = 1ull << 32;
    assert_ptr_equal(mg_format_detect_head(st_head, sizeof st_head - 1, big, "m.bin"),
                     &mg_format_safetensors);
    static const uint8_t zip[] = "PK\x03\x04\x14\x00\x00\x00";
    assert_ptr_equal(mg_format_detect_head(zip, sizeof zip - 1, big, "model.pt"),
                     &mg_format_pickle);
    assert_ptr_equal(mg_format_detect_head(zip, sizeof zip - 1, big, "a.npz"), &mg_format_npz);
    assert_ptr_equal(mg_format_detect_head(zip, sizeof zip - 1, big, "a.bin"), &mg_format_npz);
    static const uint8_t text[] = "hello";
    assert_null(mg_format_detect_head(text, 5, big, "notes.txt"));
    assert_ptr_equal(mg_format_detect_head(text, 5, big, "w.gguf"), &mg_format_gguf);
    /* A 640-byte header starts with 0x80 0x02, as a pickle stream does: the header held whole
     * in the head, tiling the file's size, makes it safetensors; one that does not tile is
     * left to the probes (pickle is the stronger). */
    uint8_t h640[8 + 640];
    const uint64_t data_len = big - sizeof h640;
    memset(h640, ' ', sizeof h640);
    h640[0] = 0x80, h640[1] = 0x02;
    memset(h640 + 2, 0, 6);
    int w = snprintf((char *)h640 + 8, 640, "{\"w\":{\"dtype\":\"U8\",\"shape\":[%llu],"
                     "\"data_offsets\":[0,%llu]}}", (unsigned long long)data_len,
                     (unsigned long long)data_len);
    assert_true(w > 0 && w < 640);
    h640[8 + w] = ' '; /* (snprintf's NUL) */
    assert_ptr_equal(mg_format_detect_head(h640, sizeof h640, big, "m.bin"),
                     &mg_format_safetensors);
    assert_ptr_equal(mg_format_detect_head(h640, sizeof h640, big + 1, "m.bin"),
                     &mg_format_pickle);
    /* a file no longer than its head: exactly mg_format_detect */
    assert_ptr_equal(mg_format_detect_head(text, 5, 5, "notes.txt"),
                     mg_format_detect(text, 5, "notes.txt"));
}

static void verified_model_keeps_no_bytes(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    uint8_t *data = sample();
    tu_write_file(dir, "f.bin", data, SIZE);
    uint8_t d[MG_DIGEST_MAX];
    mg_error err;
    assert_int_equal(mg_digest_buffer(MG_SHA256, data, SIZE, d, &err), MG_OK);
    char hex[65];
    mg_hex_encode(d, 32, hex);
    char json[8192];
    snprintf(json, sizeof json,
             "{\"modelgate_policy\":1,\"cache_dir\":\"cache\",\"models\":[{\"name\":\"m\","
             "\"source\":\"f.bin\",\"sha256\":\"%s\"}]}", hex);
    mg_policy *pol;
    assert_int_equal(mg_policy_from_buffer((const uint8_t *)json, strlen(json), dir, &pol, &err),
                     MG_OK);
    for (int fetch = 0; fetch < 2; fetch++) {
        mg_model *m;
        assert_int_equal(fetch ? mg_model_fetch(pol, "m", NULL, &m, &err)
                               : mg_model_verify(pol, "m", NULL, &m, &err), MG_OK);
        mg_file_info fi;
        assert_int_equal(mg_model_file(m, 0, &fi), MG_OK);
        assert_int_equal(fi.size, SIZE);
        assert_string_equal(fi.digest, hex);
        assert_string_equal(fi.format, "asset");
        assert_null(fi.data);
        const void *p = (const void *)1;
        size_t n = 1;
        assert_int_equal(mg_model_asset(m, "f.bin", &p, &n, &err), MG_E_USAGE);
        assert_non_null(strstr(err.message, "load the model"));
        if (fetch) {
            size_t len;
            uint8_t *got = tu_read_file(mg_model_cache_path(m, 0), &len);
            assert_int_equal(len, SIZE);
            assert_memory_equal(got, data, SIZE);
            free(got);
        } else {
            assert_null(mg_model_cache_path(m, 0));
        }
        mg_model_close(m);
    }
    mg_policy_close(pol);
    free(data);
    tu_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(whole_file_and_mismatch),
        cmocka_unit_test(shards_on_threads),
        cmocka_unit_test(copy_into_cache_keeps_holes),
        cmocka_unit_test(partial_files),
        cmocka_unit_test(detect_from_head),
        cmocka_unit_test(verified_model_keeps_no_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
