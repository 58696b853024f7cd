/* Verified memory read from a file (region.h): the same bytes, digest and block CRCs whether
 * the calling thread does all the work or a filler thread reads while it hashes, at sizes
 * around the chunk and ring boundaries; and the filler's failures reach the caller as typed
 * errors (a read error, a file shorter than its size). */
#define _GNU_SOURCE
#include "testutil.h"

#include <fcntl.h>
#include <openssl/sha.h>
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
    tu_write_file(dir, "f", data, len);
    char path[4096];
    snprintf(path, sizeof path, "%s/f", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    return fd;
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

/* The file's offset is not at its start: the reads end before its size, as when the file
 * is cut short while it is read. */
static void shorter_file_is_an_integrity_failure(void **state)
{
    (void)state;
    const unsigned flags[] = {0, MG_REGION_PREFAULT};
    for (size_t f = 0; f < 2; f++) {
        for (size_t skip = 1; skip <= ((size_t)6 << 20); skip += (size_t)3 << 20) {
            char *dir = tu_mkdtemp();
            size_t len = (size_t)9 << 20;
            uint8_t *data = pattern(len, true);
            int fd = file_with(dir, data, len);
            assert_int_equal(lseek(fd, (off_t)skip, SEEK_SET), (off_t)skip);
            mg_region r;
            uint8_t digest[MG_DIGEST_MAX];
            mg_error err;
            mg_error_clear(&err);
            assert_int_equal(mg_region_read_hashed_ex(fd, len, MG_SHA256, flags[f], &r, digest,
                                                      NULL, &err),
                             MG_E_INTEGRITY);
            assert_non_null(strstr(err.message, "shorter"));
            assert_null(r.data);
            assert_null(r.block_crc);
            close(fd);
            free(data);
            tu_rmtree(dir);
            free(dir);
        }
    }
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
        tu_write_file(dir, "f", data, len);
        char path[4096];
        snprintf(path, sizeof path, "%s/f", dir);
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        assert_true(fd >= 0);
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
        cmocka_unit_test(read_error_is_an_io_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
