/* Verified memory read from a file (region.h): the same bytes, digest and block CRCs whether
 * the calling thread does all the work or a filler thread reads while it hashes, at sizes
 * around the chunk and ring boundaries; and the filler's failures reach the caller as typed
 * errors (a read error, a file cut short or grown while it is read). */
#define _GNU_SOURCE
#include "testutil.h"

#include <fcntl.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "region.h"

#define CHUNK ((size_t)256 << 10)

static uint8_t *pattern(size_t len, bool zip)
{
    uint8_t *p = malloc(len > 0 ? len : 1);
    assert_non_null(p);
    uint32_t x = 0x9e3779b9u;
    for (size_t i = 0; i < len; i++) {
        x = x * 1664525u + 1013904223u;
        p[i] = (uint8_t)(x >> 24);
    }
    if (zip && len >= 4)
        memcpy(p, "PK\x03\x04", 4);
    return p;
}

static int file_with(const char *dir, const uint8_t *data, size_t len)
{
    return tu_write_and_open(dir, "f", data, len, O_RDONLY);
}

/* Read `len` bytes (a ZIP head when `zip`) with `flags`; check content, digest, CRCs. */
static void read_and_check(size_t len, bool zip, unsigned flags)
{
    char *dir = tu_mkdtemp();
    uint8_t *data = pattern(len, zip);
    int fd = file_with(dir, data, len);
    mg_region r;
    uint8_t digest[MG_DIGEST_MAX];
    _Atomic uint64_t done = 0;
    mg_error err;
    mg_error_clear(&err);
    assert_int_equal(mg_region_read_hashed_ex(fd, len, MG_SHA256, flags, &r, digest, &done, &err),
                     MG_OK);
    close(fd);
    assert_int_equal(r.len, len);
    assert_int_equal(atomic_load(&done), len);
    if (len > 0)
        assert_memory_equal(r.data, data, len);
    uint8_t want[SHA256_DIGEST_LENGTH];
    SHA256(data, len, want);
    assert_memory_equal(digest, want, sizeof want);
    if (zip && len >= ((size_t)4 << 20)) {
        size_t blocks = (len - 1) / MG_REGION_CRC_BLOCK + 1;
        assert_non_null(r.block_crc);
        assert_int_equal(r.block_crc_count, blocks);
        for (size_t b = 0; b < blocks; b++) {
            size_t off = b * MG_REGION_CRC_BLOCK;
            size_t n = len - off < MG_REGION_CRC_BLOCK ? len - off : MG_REGION_CRC_BLOCK;
            assert_int_equal(r.block_crc[b], (uint32_t)crc32_z(0L, data + off, n));
        }
    } else {
        assert_null(r.block_crc);
    }
    mg_region_free(&r);
    free(data);
    tu_rmtree(dir);
    free(dir);
}

static void same_result_in_turn_and_pipelined(void **state)
{
    (void)state;
    const size_t sizes[] = {0, 1, CHUNK - 1, CHUNK, CHUNK + 1, (size_t)4 << 20,
                            ((size_t)4 << 20) + 1, 9 * CHUNK, ((size_t)11 << 20) - 7,
                            (size_t)17 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        for (int zip = 0; zip < 2; zip++) {
            read_and_check(sizes[i], zip, 0);
            read_and_check(sizes[i], zip, MG_REGION_PREFAULT);
        }
    }
}

/* A file cut short or grown while it is read (by another thread, once the reader has
 * passed its first MiB): an integrity failure, unless the change came after the last byte
 * was read (a shorter file) -- which a few tries rule out. */
typedef struct changer {
    const char *path;
    _Atomic uint64_t *done;
    bool grow;
} changer;

static void *change_file(void *arg)
{
    const changer *c = arg;
    while (atomic_load(c->done) < ((uint64_t)1 << 20))
        ;
    int fd = open(c->path, O_WRONLY | O_CLOEXEC);
    bool ok = fd >= 0 && (c->grow ? pwrite(fd, "x", 1, (off_t)64 << 20) == 1
                                  : ftruncate(fd, (off_t)32 << 20) == 0);
    if (fd >= 0)
        close(fd);
    return ok ? NULL : (void *)c;
}

static void changed_file(bool grow, const char *what)
{
    const unsigned flags[] = {0, MG_REGION_PREFAULT};
    for (size_t f = 0; f < 2; f++) {
        int refused = 0;
        for (int attempt = 0; attempt < 8 && refused == 0; attempt++) {
            char *dir = tu_mkdtemp();
            size_t len = (size_t)64 << 20;
            uint8_t *data = pattern(len, true);
            int fd = file_with(dir, data, len);
            char path[4096];
            snprintf(path, sizeof path, "%s/f", dir);
            _Atomic uint64_t done = 0;
            changer c = {.path = path, .done = &done, .grow = grow};
            pthread_t t;
            assert_int_equal(pthread_create(&t, NULL, change_file, &c), 0);
            mg_region r;
            uint8_t digest[MG_DIGEST_MAX];
            mg_error err;
            mg_error_clear(&err);
            mg_status s = mg_region_read_hashed_ex(fd, len, MG_SHA256, flags[f], &r, digest,
                                                   &done, &err);
            atomic_store(&done, UINT64_MAX); /* (the thread may still wait) */
            void *trouble;
            pthread_join(t, &trouble);
            assert_null(trouble);
            if (s == MG_OK) {
                assert_false(grow);
                mg_region_free(&r);
            } else {
                assert_int_equal(s, MG_E_INTEGRITY);
                assert_non_null(strstr(err.message, what));
                assert_null(r.data);
                assert_null(r.block_crc);
                refused++;
            }
            close(fd);
            free(data);
            tu_rmtree(dir);
            free(dir);
        }
        assert_int_equal(refused, 1);
    }
}

static void shorter_file_is_an_integrity_failure(void **state)
{
    (void)state;
    changed_file(false, "shorter");
}

static void longer_file_is_an_integrity_failure(void **state)
{
    (void)state;
    changed_file(true, "longer");
}

/* A descriptor that cannot be read: the filler's read error is the caller's MG_E_IO. */
static void read_error_is_an_io_error(void **state)
{
    (void)state;
    const unsigned flags[] = {0, MG_REGION_PREFAULT};
    for (size_t f = 0; f < 2; f++) {
        char *dir = tu_mkdtemp();
        size_t len = (size_t)8 << 20;
        uint8_t *data = pattern(len, false);
        int fd = tu_write_and_open(dir, "f", data, len, O_WRONLY);
        mg_region r;
        uint8_t digest[MG_DIGEST_MAX];
        mg_error err;
        mg_error_clear(&err);
        assert_int_equal(mg_region_read_hashed_ex(fd, len, MG_SHA256, flags[f], &r, digest, NULL,
                                                  &err),
                         MG_E_IO);
        assert_non_null(strstr(err.message, "read"));
        assert_null(r.data);
        close(fd);
        free(data);
        tu_rmtree(dir);
        free(dir);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(same_result_in_turn_and_pipelined),
        cmocka_unit_test(shorter_file_is_an_integrity_failure),
        cmocka_unit_test(longer_file_is_an_integrity_failure),
        cmocka_unit_test(read_error_is_an_io_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
