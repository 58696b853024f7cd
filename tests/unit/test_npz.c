/* The .npz parser: the real corpus with its exact tensor tables, every file of
 * tests/data/bad/npz/ with the verdict expected.tsv gives it, and the decompression caps. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/format.h"

static mg_status parse_npz(const uint8_t *data, size_t len, mg_parse_result *res, mg_error *err)
{
    memset(res, 0, sizeof *res);
    mg_error_clear(err);
    return mg_format_npz.parse(data, len, res, err);
}

static uint64_t fnv1a(const uint8_t *p, uint64_t n)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (uint64_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

/* The bytes a tensor entry points at, after checking the range against its container. */
static const uint8_t *entry_data(const mg_parse_result *res, const mg_tensor_entry *t,
                                 const uint8_t *file, size_t file_len)
{
    mg_error err;
    const uint8_t *base = file;
    uint64_t size = file_len;
    if (t->blob != 0) {
        assert_true(t->blob <= res->blob_count);
        base = res->blobs[t->blob - 1].data;
        size = res->blobs[t->blob - 1].len;
    }
    assert_int_equal(mg_tensor_entry_check(t, size, &err), MG_OK);
    return base + t->data_offset;
}

typedef struct expect_tensor {
    const char *name;
    mg_dtype dtype;
    uint32_t ndim;
    uint64_t shape[MG_MAX_NDIM];
    uint64_t nbytes;
    uint64_t offset;
    bool inflated; /* in a blob: offset is inside the decompressed member */
    uint64_t fnv;  /* FNV-1a of the data, computed with numpy (tests/data: see gen script) */
} expect_tensor;

/* Generated with /usr/bin/python3 + numpy from the corpus files: offsets from zipfile's
 * header_offset + local header + npy header; FNV-1a of arr.tobytes(). */
static const expect_tensor test_npz[] = {
    {"x", MG_DTYPE_I64, 1, {10}, 80, 183, false, UINT64_C(0x133432d16e23d744)},
    {"x_plus_one", MG_DTYPE_I64, 1, {10}, 80, 455, false, UINT64_C(0xcedc94dfee39ee6e)},
};
static const expect_tensor mel_filters_npz[] = {
    {"mel_80", MG_DTYPE_F32, 2, {80, 201}, 64320, 128, true, UINT64_C(0x173a8442ad000426)},
    {"mel_128", MG_DTYPE_F32, 2, {128, 201}, 102912, 128, true, UINT64_C(0x43196325f8f51341)},
};
static const expect_tensor mlx_cvae_npz[] = {
    {"decoder.bn2.bias", MG_DTYPE_F32, 1, {16}, 64, 142, false, UINT64_C(0x4820ab4886c9d44d)},
    {"decoder.bn1.running_var", MG_DTYPE_F32, 4, {1, 1, 1, 32}, 128, 373, false, UINT64_C(0x1ba216de36f37556)},
    {"decoder.bn1.running_mean", MG_DTYPE_F32, 4, {1, 1, 1, 32}, 128, 669, false, UINT64_C(0xf8f3df503b2de9b1)},
    {"decoder.bn1.bias", MG_DTYPE_F32, 1, {32}, 128, 939, false, UINT64_C(0x3e9a6a7ae15581b9)},
    {"decoder.bn2.running_var", MG_DTYPE_F32, 4, {1, 1, 1, 16}, 64, 1234, false, UINT64_C(0xb42a4571dc96bbb2)},
    {"decoder.upconv3.conv.weight", MG_DTYPE_F32, 4, {1, 3, 3, 16}, 576, 1471, false, UINT64_C(0xc78db19951334fc3)},
    {"decoder.upconv1.conv.bias", MG_DTYPE_F32, 1, {32}, 128, 2198, false, UINT64_C(0xa6e2979004e05c8e)},
    {"decoder.lin1.bias", MG_DTYPE_F32, 1, {4096}, 16384, 2473, false, UINT64_C(0x5c6a9b6d784211d7)},
    {"decoder.bn1.weight", MG_DTYPE_F32, 1, {32}, 128, 19001, false, UINT64_C(0x301dea6d3a0dc743)},
    {"encoder.proj_log_var.bias", MG_DTYPE_F32, 1, {8}, 32, 19278, false, UINT64_C(0x5818a2ce349c730c)},
    {"decoder.upconv2.conv.bias", MG_DTYPE_F32, 1, {16}, 64, 19461, false, UINT64_C(0x2db117fd7a895d9a)},
    {"decoder.upconv1.conv.weight", MG_DTYPE_F32, 4, {32, 3, 3, 64}, 73728, 19684, false, UINT64_C(0x894fe6d23d62f779)},
    {"encoder.proj_log_var.weight", MG_DTYPE_F32, 2, {8, 4096}, 131072, 93577, false, UINT64_C(0x6d3bf85cb4cee586)},
    {"encoder.proj_mu.bias", MG_DTYPE_F32, 1, {8}, 32, 224793, false, UINT64_C(0x5452df46fcd55cb6)},
    {"encoder.proj_mu.weight", MG_DTYPE_F32, 2, {8, 4096}, 131072, 224985, false, UINT64_C(0xf685615f78b94f16)},
    {"encoder.bn3.running_mean", MG_DTYPE_F32, 4, {1, 1, 1, 64}, 256, 356225, false, UINT64_C(0x095e95328698a658)},
    {"encoder.bn3.bias", MG_DTYPE_F32, 1, {64}, 256, 356623, false, UINT64_C(0x98152e67353a1acf)},
    {"decoder.lin1.weight", MG_DTYPE_F32, 2, {4096, 8}, 131072, 357036, false, UINT64_C(0x315f2abc4a596f96)},
    {"encoder.bn3.weight", MG_DTYPE_F32, 1, {64}, 256, 488252, false, UINT64_C(0x4d117eca0dd0297c)},
    {"encoder.bn2.running_var", MG_DTYPE_F32, 4, {1, 1, 1, 32}, 128, 488675, false, UINT64_C(0x9e4ed003eedbd324)},
    {"encoder.bn2.running_mean", MG_DTYPE_F32, 4, {1, 1, 1, 32}, 128, 488971, false, UINT64_C(0xe2348c23c98d970e)},
    {"decoder.upconv3.conv.bias", MG_DTYPE_F32, 1, {1}, 4, 489248, false, UINT64_C(0x0f59c6bf9dde04be)},
    {"encoder.bn2.weight", MG_DTYPE_F32, 1, {32}, 128, 489396, false, UINT64_C(0xa10953d489df8d87)},
    {"decoder.bn2.weight", MG_DTYPE_F32, 1, {16}, 64, 489668, false, UINT64_C(0x40d9c96bc88fe64c)},
    {"encoder.bn1.running_var", MG_DTYPE_F32, 4, {1, 1, 1, 16}, 64, 489899, false, UINT64_C(0x3dd14a53bbbf0df2)},
    {"encoder.bn1.running_mean", MG_DTYPE_F32, 4, {1, 1, 1, 16}, 64, 490131, false, UINT64_C(0x3cd6878bcfc5d59c)},
    {"encoder.bn1.bias", MG_DTYPE_F32, 1, {16}, 64, 490337, false, UINT64_C(0x0709c5d5d6203c9d)},
    {"encoder.bn3.running_var", MG_DTYPE_F32, 4, {1, 1, 1, 64}, 256, 490568, false, UINT64_C(0x7d674e44f1d48b3c)},
    {"encoder.bn2.bias", MG_DTYPE_F32, 1, {32}, 128, 490966, false, UINT64_C(0x9f1b08939a59f5c2)},
    {"encoder.bn1.weight", MG_DTYPE_F32, 1, {16}, 64, 491238, false, UINT64_C(0x4b2582d2d4f59c49)},
    {"decoder.bn2.running_mean", MG_DTYPE_F32, 4, {1, 1, 1, 16}, 64, 491470, false, UINT64_C(0x6929be180cf82086)},
    {"encoder.conv3.bias", MG_DTYPE_F32, 1, {64}, 256, 491678, false, UINT64_C(0xc119775c041accd8)},
    {"encoder.conv2.bias", MG_DTYPE_F32, 1, {32}, 128, 492078, false, UINT64_C(0x5de5842b7771e677)},
    {"decoder.upconv2.conv.weight", MG_DTYPE_F32, 4, {16, 3, 3, 32}, 18432, 492365, false, UINT64_C(0x4b86f274a967f940)},
    {"encoder.conv2.weight", MG_DTYPE_F32, 4, {32, 3, 3, 16}, 18432, 510949, false, UINT64_C(0x43963112396ba1d9)},
    {"encoder.conv3.weight", MG_DTYPE_F32, 4, {64, 3, 3, 32}, 73728, 529533, false, UINT64_C(0xd52a1532e0ac396d)},
    {"encoder.conv1.bias", MG_DTYPE_F32, 1, {16}, 64, 603405, false, UINT64_C(0x49e06cfda5ec745d)},
    {"encoder.conv1.weight", MG_DTYPE_F32, 4, {16, 3, 3, 1}, 576, 603635, false, UINT64_C(0x150a4090cfe3d9bb)},
    {"encoder.kl_div", MG_DTYPE_F32, 0, {0}, 4, 604343, false, UINT64_C(0x6f10a5e648071bd0)},
};

static void check_table(const char *rel, const expect_tensor *want, size_t n)
{
    size_t len;
    uint8_t *data = tu_read_file(tu_source(rel), &len);
    mg_parse_result res;
    mg_error err;
    assert_true(mg_format_npz.probe(data, len));
    assert_ptr_equal(mg_format_detect(data, len, "model.npz"), &mg_format_npz);
    mg_status st = parse_npz(data, len, &res, &err);
    if (st != MG_OK)
        fail_msg("%s: %s", rel, err.message);
    assert_int_equal(res.count, n);
    for (size_t i = 0; i < n; i++) {
        const mg_tensor_entry *t = &res.tensors[i];
        assert_string_equal(t->name, want[i].name);
        assert_int_equal(t->dtype, want[i].dtype);
        assert_int_equal(t->ndim, want[i].ndim);
        for (uint32_t d = 0; d < t->ndim; d++)
            assert_int_equal(t->shape[d], want[i].shape[d]);
        assert_int_equal(t->nbytes, want[i].nbytes);
        assert_int_equal(t->offset, want[i].offset);
        assert_int_equal(t->data_offset, want[i].offset);
        assert_int_equal(t->blob != 0, want[i].inflated);
        assert_int_equal(t->flags, 0); /* MLX's Fortran flags here are all on 1-D-like shapes */
        const uint8_t *p = entry_data(&res, t, data, len);
        assert_int_equal(fnv1a(p, t->nbytes), want[i].fnv);
    }
    mg_parse_result_free(&res);
    free(data);
}

static void test_real_test_npz(void **state)
{
    (void)state;
    check_table("tests/data/real/npz/test.npz", test_npz, sizeof test_npz / sizeof test_npz[0]);
}

static void test_real_mel_filters(void **state)
{
    (void)state;
    check_table("tests/data/real/npz/mel_filters.npz", mel_filters_npz,
                sizeof mel_filters_npz / sizeof mel_filters_npz[0]);
}

static void test_real_mlx_savez(void **state)
{
    (void)state;
    check_table("tests/data/real/npz/mlx-cvae-savez.npz", mlx_cvae_npz,
                sizeof mlx_cvae_npz / sizeof mlx_cvae_npz[0]);
}

static void test_real_refused(void **state)
{
    (void)state;
    static const struct {
        const char *file;
        const char *message;
    } cases[] = {
        /* '<U3' member: the whole file is refused (a silently dropped member would load a
         * model that differs from the pinned one). */
        {"tests/data/real/npz/py3-arr-savez.npz", "npz member 'foo.npy': npy: unsupported dtype '<U3'"},
        {"tests/data/real/npz/py3-arr-savez-compressed.npz",
         "npz member 'foo.npy': npy: unsupported dtype '<U3'"},
        {"tests/data/real/npz/py3-objarr.npz", "pickle, which is never loaded"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len;
        uint8_t *data = tu_read_file(tu_source(cases[i].file), &len);
        mg_parse_result res;
        mg_error err;
        assert_int_equal(parse_npz(data, len, &res, &err), MG_E_FORMAT);
        if (strstr(err.message, cases[i].message) == NULL)
            fail_msg("%s: '%s' lacks '%s'", cases[i].file, err.message, cases[i].message);
        mg_parse_result_free(&res);
        free(data);
    }
}

/* tests/data/bad/npz/: each file gets the exit code expected.tsv lists. */
static void test_bad_inputs(void **state)
{
    (void)state;
    FILE *f = fopen(tu_source("tests/data/bad/npz/expected.tsv"), "r");
    assert_non_null(f);
    char line[1024];
    int count = 0, accepted = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        char *tab1 = strchr(line, '\t');
        assert_non_null(tab1);
        *tab1 = '\0';
        int expected = tab1[1] - '0';
        assert_true(expected >= 0 && expected <= 8 && tab1[2] == '\t');
        char rel[1100];
        snprintf(rel, sizeof rel, "tests/data/bad/npz/%s", line);
        size_t len;
        uint8_t *data = tu_read_file(tu_source(rel), &len);
        assert_ptr_equal(mg_format_detect(data, len, line), &mg_format_npz);
        mg_parse_result res;
        mg_error err;
        mg_status st = parse_npz(data, len, &res, &err);
        if ((int)st != expected)
            fail_msg("%s: got %d (%s), want %d", line, st, err.message, expected);
        if (st == MG_OK) {
            for (size_t i = 0; i < res.count; i++)
                (void)entry_data(&res, &res.tensors[i], data, len);
            accepted++;
        } else {
            assert_true(strlen(err.message) > 0);
            assert_null(strchr(err.message, '\n'));
        }
        mg_parse_result_free(&res);
        free(data);
        count++;
    }
    fclose(f);
    assert_true(count >= 60);
    assert_true(accepted >= 10);
}

/* The generated accepted variants hold exactly the arrays they were written with. */
static void test_accepted_variants_content(void **state)
{
    (void)state;
    const char *files[] = {"ok-stored-numpy.npz",   "ok-deflated.npz",  "ok-mlx-variant.npz",
                           "ok-central-zip64.npz", "ok-data-descriptor.npz"};
    for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
        char rel[256];
        snprintf(rel, sizeof rel, "tests/data/bad/npz/%s", files[k]);
        size_t len;
        uint8_t *data = tu_read_file(tu_source(rel), &len);
        mg_parse_result res;
        mg_error err;
        assert_int_equal(parse_npz(data, len, &res, &err), MG_OK);
        assert_true(res.count >= 1);
        const mg_tensor_entry *x = &res.tensors[0];
        assert_string_equal(x->name, "x");
        assert_int_equal(x->dtype, MG_DTYPE_F32);
        assert_int_equal(x->ndim, 2);
        assert_int_equal(x->shape[0], 2);
        assert_int_equal(x->shape[1], 3);
        assert_int_equal(x->nbytes, 24);
        const uint8_t *p = entry_data(&res, x, data, len);
        for (int i = 0; i < 24; i++)
            assert_int_equal(p[i], i); /* the generator writes bytes 0, 1, 2, ... */
        if (x->blob == 0) {
            /* zero-copy: the offset is absolute in the .npz */
            assert_ptr_equal(p, data + x->offset);
        } else {
            assert_int_equal(x->offset, 128); /* inside the inflated member */
        }
        mg_parse_result_free(&res);
        free(data);
    }
}

/* ---- in-memory archives for the caps ---------------------------------------------- */

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* CRC-32 (IEEE), bitwise: only for building test archives. */
static uint32_t tu_crc32(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return ~c;
}

/* One deflate member "x.npy" of `csize` bytes (junk) claiming `usize`, with zip64 extras. */
static uint8_t *one_member_zip64(uint64_t csize, uint64_t usize, size_t *out_len)
{
    size_t local = 30 + 5 + 20, central = 46 + 5 + 20, eocd = 22;
    size_t len = local + (size_t)csize + central + eocd;
    uint8_t *b = calloc(1, len);
    assert_non_null(b);
    uint8_t *p = b;
    put32(p, 0x04034b50);
    put16(p + 4, 45);
    put16(p + 8, 8);
    put32(p + 18, 0xffffffffu);
    put32(p + 22, 0xffffffffu);
    put16(p + 26, 5);
    put16(p + 28, 20);
    memcpy(p + 30, "x.npy", 5);
    put16(p + 35, 1);
    put16(p + 37, 16);
    put64(p + 39, usize);
    put64(p + 47, csize);
    p = b + local + csize;
    put32(p, 0x02014b50);
    put16(p + 4, 45);
    put16(p + 6, 45);
    put16(p + 10, 8);
    put32(p + 20, 0xffffffffu);
    put32(p + 24, 0xffffffffu);
    put16(p + 28, 5);
    put16(p + 30, 20);
    memcpy(p + 46, "x.npy", 5);
    put16(p + 51, 1);
    put16(p + 53, 16);
    put64(p + 55, usize);
    put64(p + 63, csize);
    p += central;
    put32(p, 0x06054b50);
    put16(p + 8, 1);
    put16(p + 10, 1);
    put32(p + 12, (uint32_t)central);
    put32(p + 16, (uint32_t)(local + csize));
    *out_len = len;
    return b;
}

/* `count` stored members "t<i>.npy", each a one-byte '|u1' scalar holding i & 0xff, with
 * a zip64 end record (needed above 65535 entries). */
static uint8_t *many_members(uint32_t count, size_t *out_len)
{
    static const char dict[] = "{'descr': '|u1', 'fortran_order': False, 'shape': (), }";
    size_t hlen = sizeof dict; /* the dict and '\n' */
    size_t npy_len = 10 + hlen + 1;
    size_t cap = (size_t)count * (30 + 16 + npy_len + 46 + 16) + 56 + 20 + 22;
    uint8_t *b = calloc(1, cap);
    uint64_t *offsets = calloc(count, sizeof *offsets);
    assert_non_null(b);
    assert_non_null(offsets);
    uint8_t npy[128];
    memcpy(npy, "\x93NUMPY\x01\x00", 8);
    put16(npy + 8, (uint16_t)hlen);
    memcpy(npy + 10, dict, hlen - 1);
    npy[10 + hlen - 1] = '\n';
    size_t pos = 0;
    char name[16];
    for (uint32_t i = 0; i < count; i++) {
        int nlen = snprintf(name, sizeof name, "t%u.npy", i);
        npy[npy_len - 1] = (uint8_t)i;
        offsets[i] = pos;
        uint8_t *p = b + pos;
        put32(p, 0x04034b50);
        put16(p + 4, 20);
        put32(p + 14, tu_crc32(npy, npy_len));
        put32(p + 18, (uint32_t)npy_len);
        put32(p + 22, (uint32_t)npy_len);
        put16(p + 26, (uint16_t)nlen);
        memcpy(p + 30, name, (size_t)nlen);
        memcpy(p + 30 + nlen, npy, npy_len);
        pos += 30 + (size_t)nlen + npy_len;
    }
    size_t cd_off = pos;
    for (uint32_t i = 0; i < count; i++) {
        int nlen = snprintf(name, sizeof name, "t%u.npy", i);
        npy[npy_len - 1] = (uint8_t)i;
        uint8_t *p = b + pos;
        put32(p, 0x02014b50);
        put16(p + 4, 20);
        put16(p + 6, 20);
        put32(p + 16, tu_crc32(npy, npy_len));
        put32(p + 20, (uint32_t)npy_len);
        put32(p + 24, (uint32_t)npy_len);
        put16(p + 28, (uint16_t)nlen);
        put32(p + 42, (uint32_t)offsets[i]);
        memcpy(p + 46, name, (size_t)nlen);
        pos += 46 + (size_t)nlen;
    }
    size_t cd_size = pos - cd_off, z64 = pos;
    uint8_t *p = b + pos;
    put32(p, 0x06064b50);
    put64(p + 4, 44);
    put16(p + 12, 45);
    put16(p + 14, 45);
    put64(p + 24, count);
    put64(p + 32, count);
    put64(p + 40, cd_size);
    put64(p + 48, cd_off);
    p += 56;
    put32(p, 0x07064b50);
    put64(p + 8, z64);
    put32(p + 16, 1);
    p += 20;
    put32(p, 0x06054b50);
    put16(p + 8, 0xffff);
    put16(p + 10, 0xffff);
    put32(p + 12, 0xffffffffu);
    put32(p + 16, 0xffffffffu);
    pos += 56 + 20 + 22;
    assert_true(pos <= cap);
    free(offsets);
    *out_len = pos;
    return b;
}

/* More than 65535 members (zip64 end record): all read, names and values in order. */
static void test_many_members(void **state)
{
    (void)state;
    const uint32_t count = 70000;
    size_t len;
    uint8_t *data = many_members(count, &len);
    mg_parse_result res;
    mg_error err;
    mg_status st = parse_npz(data, len, &res, &err);
    if (st != MG_OK)
        fail_msg("%s", err.message);
    assert_int_equal(res.count, count);
    for (uint32_t i = 0; i < count; i += 997) {
        char want[16];
        snprintf(want, sizeof want, "t%u", i);
        assert_string_equal(res.tensors[i].name, want);
        assert_int_equal(res.tensors[i].ndim, 0);
        assert_int_equal(res.tensors[i].nbytes, 1);
        assert_int_equal(*entry_data(&res, &res.tensors[i], data, len), (uint8_t)i);
    }
    mg_parse_result_free(&res);
    free(data);
}

/* One stored member "w.npy": a '|u1' array of `n` bytes (byte i is i * 7 + 3), CRC right. */
static uint8_t *one_stored_member(size_t n, size_t *out_len)
{
    char dict[128];
    int dl = snprintf(dict, sizeof dict, "{'descr': '|u1', 'fortran_order': False, 'shape': (%zu,), }", n);
    size_t hlen = ((10 + (size_t)dl + 1 + 63) / 64) * 64 - 10; /* padded; ends in '\n' */
    size_t npy_len = 10 + hlen + n;
    size_t local = 30 + 5, central = 46 + 5, eocd = 22;
    size_t len = local + npy_len + central + eocd;
    uint8_t *b = calloc(1, len);
    assert_non_null(b);
    uint8_t *npy = b + local;
    memcpy(npy, "\x93NUMPY\x01\x00", 8);
    put16(npy + 8, (uint16_t)hlen);
    memset(npy + 10, ' ', hlen);
    memcpy(npy + 10, dict, (size_t)dl);
    npy[10 + hlen - 1] = '\n';
    for (size_t i = 0; i < n; i++)
        npy[10 + hlen + i] = (uint8_t)(i * 7 + 3);
    uint32_t crc = tu_crc32(npy, npy_len);
    uint8_t *p = b;
    put32(p, 0x04034b50);
    put16(p + 4, 20);
    put32(p + 14, crc);
    put32(p + 18, (uint32_t)npy_len);
    put32(p + 22, (uint32_t)npy_len);
    put16(p + 26, 5);
    memcpy(p + 30, "w.npy", 5);
    p = b + local + npy_len;
    put32(p, 0x02014b50);
    put16(p + 4, 20);
    put16(p + 6, 20);
    put32(p + 16, crc);
    put32(p + 20, (uint32_t)npy_len);
    put32(p + 24, (uint32_t)npy_len);
    put16(p + 28, 5);
    memcpy(p + 46, "w.npy", 5);
    p += central;
    put32(p, 0x06054b50);
    put16(p + 8, 1);
    put16(p + 10, 1);
    put32(p + 12, (uint32_t)central);
    put32(p + 16, (uint32_t)(local + npy_len));
    *out_len = len;
    return b;
}

/* The block CRCs the reader computes (region.h), as the reader computes them. */
static uint32_t *block_crcs(const uint8_t *data, size_t len, size_t *count)
{
    *count = (len + MG_REGION_CRC_BLOCK - 1) / MG_REGION_CRC_BLOCK;
    uint32_t *c = calloc(*count, sizeof *c);
    assert_non_null(c);
    for (size_t i = 0; i < *count; i++) {
        size_t off = i * MG_REGION_CRC_BLOCK;
        c[i] = tu_crc32(data + off, len - off < MG_REGION_CRC_BLOCK ? len - off : MG_REGION_CRC_BLOCK);
    }
    return c;
}

/* A stored member over several CRC blocks: checked from the reader's block CRCs with exactly
 * the verdict and table of the parser's own pass, right or wrong CRC; a table that does not
 * fit the file's length is ignored. */
static void test_stored_crc_from_blocks(void **state)
{
    (void)state;
    size_t len;
    uint8_t *data = one_stored_member((3u << 20) + 12345, &len);
    size_t n;
    uint32_t *crc = block_crcs(data, len, &n);
    assert_true(n == 4);
    mg_parse_result a, b;
    mg_error ea, eb;
    assert_int_equal(parse_npz(data, len, &a, &ea), MG_OK);
    memset(&b, 0, sizeof b);
    b.block_crc = crc;
    b.block_crc_count = n;
    mg_error_clear(&eb);
    assert_int_equal(mg_format_npz.parse(data, len, &b, &eb), MG_OK);
    assert_int_equal(a.count, 1);
    assert_int_equal(b.count, 1);
    assert_int_equal(a.tensors[0].data_offset, b.tensors[0].data_offset);
    assert_int_equal(a.tensors[0].nbytes, b.tensors[0].nbytes);
    mg_parse_result_free(&a);
    mg_parse_result_free(&b);
    free(crc);

    /* One byte changed in a whole block in the middle (and the table made from the changed
     * bytes, as the reader would): the same refusal either way. */
    data[(2u << 20) + 100] ^= 0x40;
    crc = block_crcs(data, len, &n);
    assert_int_equal(parse_npz(data, len, &a, &ea), MG_E_FORMAT);
    assert_non_null(strstr(ea.message, "bad CRC-32"));
    memset(&b, 0, sizeof b);
    b.block_crc = crc;
    b.block_crc_count = n;
    mg_error_clear(&eb);
    assert_int_equal(mg_format_npz.parse(data, len, &b, &eb), MG_E_FORMAT);
    assert_string_equal(ea.message, eb.message);
    mg_parse_result_free(&a);
    mg_parse_result_free(&b);

    /* A table of the wrong length is not used: the parser's own pass still refuses. */
    memset(&b, 0, sizeof b);
    b.block_crc = crc;
    b.block_crc_count = n - 1;
    assert_int_equal(mg_format_npz.parse(data, len, &b, &eb), MG_E_FORMAT);
    assert_string_equal(ea.message, eb.message);
    mg_parse_result_free(&b);
    /* ... and a table claiming the changed block is fine is believed (the reader's table is
     * a promise about these very bytes): proof that the table path was taken above. */
    data[(2u << 20) + 100] ^= 0x40;
    uint32_t good = tu_crc32(data + (2u << 20), MG_REGION_CRC_BLOCK);
    data[(2u << 20) + 100] ^= 0x40;
    crc[2] = good;
    memset(&b, 0, sizeof b);
    b.block_crc = crc;
    b.block_crc_count = n;
    assert_int_equal(mg_format_npz.parse(data, len, &b, &eb), MG_OK);
    mg_parse_result_free(&b);
    free(crc);
    free(data);
}

static void test_decompression_caps(void **state)
{
    (void)state;
    static const struct {
        uint64_t csize, usize;
        const char *message;
    } cases[] = {
        /* 1001x a 2 MiB stream: over the ratio cap */
        {UINT64_C(2) << 20, (UINT64_C(2) << 20) * 1001, "decompression bomb"},
        /* under the ratio (about 990x) but over the 4 GiB total */
        {UINT64_C(5) << 20, (UINT64_C(5) << 20) * 990, "exceed the cap"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len;
        uint8_t *data = one_member_zip64(cases[i].csize, cases[i].usize, &len);
        mg_parse_result res;
        mg_error err;
        assert_int_equal(parse_npz(data, len, &res, &err), MG_E_LIMIT);
        if (strstr(err.message, cases[i].message) == NULL)
            fail_msg("'%s' lacks '%s'", err.message, cases[i].message);
        assert_int_equal(res.blob_count, 0); /* refused before anything was allocated */
        mg_parse_result_free(&res);
        free(data);
    }
}

/* Every prefix of a valid archive is refused. */
static void test_every_truncation_refused(void **state)
{
    (void)state;
    size_t len;
    uint8_t *full = tu_read_file(tu_source("tests/data/real/npz/test.npz"), &len);
    for (size_t n = 0; n < len; n++) {
        uint8_t *copy = malloc(n ? n : 1);
        assert_non_null(copy);
        memcpy(copy, full, n);
        mg_parse_result res;
        mg_error err;
        assert_int_equal(parse_npz(copy, n, &res, &err), MG_E_FORMAT);
        mg_parse_result_free(&res);
        free(copy);
    }
    free(full);
}

/* Flipping any single byte of a valid archive never crashes, and whatever is accepted
 * still points inside its container. */
static void test_single_byte_flips(void **state)
{
    (void)state;
    size_t len;
    uint8_t *data = tu_read_file(tu_source("tests/data/real/npz/py3-arr-savez-compressed.npz"), &len);
    int accepted = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t saved = data[i];
        data[i] ^= 0x41;
        mg_parse_result res;
        mg_error err;
        mg_status st = parse_npz(data, len, &res, &err);
        if (st == MG_OK) {
            accepted++;
            for (size_t k = 0; k < res.count; k++)
                (void)entry_data(&res, &res.tensors[k], data, len);
        } else {
            assert_true(st == MG_E_FORMAT || st == MG_E_LIMIT);
        }
        mg_parse_result_free(&res);
        data[i] = saved;
    }
    (void)accepted;
    free(data);
}

static void test_probe(void **state)
{
    (void)state;
    assert_true(mg_format_npz.probe((const uint8_t *)"PK\x03\x04", 4));
    assert_true(mg_format_npz.probe((const uint8_t *)"PK\x05\x06", 4));
    assert_false(mg_format_npz.probe((const uint8_t *)"PK\x01\x02", 4));
    assert_false(mg_format_npz.probe((const uint8_t *)"PK\x03", 3));
    assert_false(mg_format_npz.probe(NULL, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_test_npz),
        cmocka_unit_test(test_real_mel_filters),
        cmocka_unit_test(test_real_mlx_savez),
        cmocka_unit_test(test_real_refused),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_accepted_variants_content),
        cmocka_unit_test(test_decompression_caps),
        cmocka_unit_test(test_many_members),
        cmocka_unit_test(test_stored_crc_from_blocks),
        cmocka_unit_test(test_every_truncation_refused),
        cmocka_unit_test(test_single_byte_flips),
        cmocka_unit_test(test_probe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
