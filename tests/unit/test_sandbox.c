/* The confined parser: its wire format (round trip, every bound the parent re-checks, every
 * truncation), the same tables confined and not, sealed memfd regions, and a load that fails
 * closed when the kernel refuses the filter. */
#define _GNU_SOURCE
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "model.h"
#include "sandbox.h"
#include "sandbox_wire.h"

/* A table with two tensors in the file, one in a buffer, and metadata. */
static void sample(mg_parse_result *r)
{
    memset(r, 0, sizeof *r);
    mg_error e;
    mg_tensor_entry t;
    memset(&t, 0, sizeof t);
    t.dtype = MG_DTYPE_F32;
    t.ndim = 2;
    t.shape[0] = 2;
    t.shape[1] = 3;
    t.nbytes = 24;
    t.offset = 100;
    t.data_offset = 100;
    assert_int_equal(mg_parse_add_tensor(r, &t, "a.weight", 8, &e), MG_OK);
    t.dtype = MG_DTYPE_GGML_BLOCK;
    t.ggml_type = 12;
    t.ndim = 1;
    t.shape[0] = 256;
    t.shape[1] = 0;
    t.nbytes = 144;
    t.offset = t.data_offset = 200;
    t.flags = MG_TENSOR_BIG_ENDIAN;
    assert_int_equal(mg_parse_add_tensor(r, &t, "b", 1, &e), MG_OK);
    uint32_t idx;
    uint8_t *data;
    assert_int_equal(mg_parse_add_blob(r, 16, &idx, &data, &e), MG_OK);
    memset(data, 7, 16);
    memset(&t, 0, sizeof t);
    t.dtype = MG_DTYPE_U8;
    t.ndim = 1;
    t.shape[0] = 16;
    t.nbytes = 16;
    t.blob = idx;
    t.offset = 40;
    assert_int_equal(mg_parse_add_tensor(r, &t, "c", 1, &e), MG_OK);
    r->metadata = json_pack("{s:s, s:[i,f]}", "k", "v", "n", 1, 0.5);
}

static mg_wire_buf encode(const mg_parse_result *r)
{
    mg_wire_buf b = {0};
    mg_wire_out out = {mg_wire_buf_write, &b};
    assert_true(mg_wire_put_result(&out, r));
    return b;
}

static mg_status decode(const uint8_t *data, size_t len, uint64_t file_len, mg_parse_result *r,
                        mg_error *e)
{
    mg_wire_buf b = {(uint8_t *)data, len, len, 0};
    mg_wire_in in = {mg_wire_buf_read, &b};
    memset(r, 0, sizeof *r);
    mg_error_clear(e);
    return mg_wire_get_result(&in, file_len, r, e);
}

static void wire_round_trip(void **state)
{
    (void)state;
    mg_parse_result a, b;
    mg_error e;
    sample(&a);
    mg_wire_buf w = encode(&a);
    assert_int_equal(decode(w.data, w.len, 1000, &b, &e), MG_OK);
    assert_int_equal(b.count, 3);
    assert_int_equal(b.blob_count, 1);
    assert_memory_equal(b.blobs[0].data, a.blobs[0].data, 16);
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(a.tensors[i].name, b.tensors[i].name);
        mg_tensor_entry x = a.tensors[i], y = b.tensors[i];
        x.name = y.name = NULL;
        assert_memory_equal(&x, &y, sizeof x);
    }
    assert_true(json_equal(a.metadata, b.metadata));
    mg_parse_result_free(&b);
    free(w.data);
    /* The file must hold every range: 'b' ends at 200 + 144. */
    mg_parse_result a2;
    sample(&a2);
    w = encode(&a2);
    assert_int_equal(decode(w.data, w.len, 343, &b, &e), MG_E_FORMAT);
    assert_non_null(strstr(e.message, "outside its file"));
    mg_parse_result_free(&b);
    assert_int_equal(decode(w.data, w.len, 344, &b, &e), MG_OK);
    mg_parse_result_free(&b);
    /* Every shorter stream is refused as ended early, never read past. */
    for (size_t n = 0; n < w.len; n++) {
        assert_int_equal(decode(w.data, n, 1000, &b, &e), MG_E_FORMAT);
        mg_parse_result_free(&b);
    }
    free(w.data);
    mg_parse_result_free(&a2);
    mg_parse_result_free(&a);
}

static void wire_error_record(void **state)
{
    (void)state;
    mg_wire_buf w = {0};
    mg_wire_out out = {mg_wire_buf_write, &w};
    assert_true(mg_wire_put_error(&out, MG_E_LIMIT, "too big\nreally"));
    mg_parse_result r;
    mg_error e;
    assert_int_equal(decode(w.data, w.len, 10, &r, &e), MG_E_LIMIT);
    assert_string_equal(e.message, "too big really");
    mg_parse_result_free(&r);
    /* A status no parser returns is not accepted from the child. */
    w.data[4] = MG_E_POLICY;
    assert_int_equal(decode(w.data, w.len, 10, &r, &e), MG_E_FORMAT);
    assert_non_null(strstr(e.message, "malformed"));
    w.data[4] = MG_OK; /* and an "ok" with an error's body is malformed */
    assert_int_equal(decode(w.data, w.len, 10, &r, &e), MG_E_FORMAT);
    mg_parse_result_free(&r);
    free(w.data);
}

/* Hand-built records: each breaks one bound the parent checks. */
typedef struct rec {
    uint8_t b[512];
    size_t n;
} rec;

static void u32(rec *r, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        r->b[r->n++] = (uint8_t)(v >> (8 * i));
}

static void u64(rec *r, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        r->b[r->n++] = (uint8_t)(v >> (8 * i));
}

static void bytes(rec *r, const void *p, size_t n)
{
    memcpy(r->b + r->n, p, n);
    r->n += n;
}

/* One F32 [2] tensor `name` at `off` (8 bytes), in a record of `count` such tensors. */
static void tensor(rec *r, const char *name, size_t name_len, uint32_t dtype, uint32_t ndim,
                   uint32_t flags, uint32_t blob, uint64_t off)
{
    u32(r, (uint32_t)name_len);
    bytes(r, name, name_len);
    u32(r, dtype);
    u32(r, 0);
    u32(r, ndim);
    u32(r, flags);
    for (uint32_t d = 0; d < ndim && d < 9; d++)
        u64(r, d == 0 ? 2 : 1);
    u64(r, 8);
    u64(r, off);
    u32(r, blob);
    u64(r, off);
}

static void head(rec *r, uint64_t count, uint32_t blobs, const char *meta)
{
    r->n = 0;
    u32(r, MG_WIRE_MAGIC);
    u32(r, 0);
    u64(r, count);
    u32(r, blobs);
    u64(r, strlen(meta));
    bytes(r, meta, strlen(meta));
}

static mg_status try_rec(rec *r, const char *expect)
{
    u32(r, MG_WIRE_END);
    mg_parse_result res;
    mg_error e;
    mg_status s = decode(r->b, r->n, 64, &res, &e);
    if (expect != NULL && strstr(e.message, expect) == NULL)
        fail_msg("message '%s' lacks '%s'", e.message, expect);
    mg_parse_result_free(&res);
    return s;
}

static void wire_bounds(void **state)
{
    (void)state;
    rec r;
    head(&r, 1, 0, "");
    tensor(&r, "x", 1, MG_DTYPE_F32, 1, 0, 0, 56);
    assert_int_equal(try_rec(&r, NULL), MG_OK);
    head(&r, 1, 0, "");
    tensor(&r, "x", 1, MG_DTYPE_F32, 1, 0, 0, 57); /* one byte past the file */
    assert_int_equal(try_rec(&r, "outside its file"), MG_E_FORMAT);
    head(&r, 1, 0, "");
    tensor(&r, "x", 1, MG_DTYPE_F32, 1, 0, 0, UINT64_MAX - 3); /* wraps */
    assert_int_equal(try_rec(&r, "outside its file"), MG_E_FORMAT);
    head(&r, 1, 0, "");
    tensor(&r, "x", 1, MG_DTYPE_GGML_BLOCK + 1, 1, 0, 0, 0);
    assert_int_equal(try_rec(&r, "unknown dtype"), MG_E_FORMAT);
    head(&r, 1, 0, "");
    tensor(&r, "x", 1, MG_DTYPE_INVALID, 1, 0, 0, 0);
    assert_int_equal(try_rec(&r, "unknown dtype"), MG_E_FORMAT);
    head(&r, 1, 0, "");
    tensor(&r, "x", 1, MG_DTYPE_F32, 9, 0, 0, 0);
    assert_int_equal(try_rec(&r, "too many dimensions"), MG_E_FORMAT);
    head(&r, 1, 0, "");
    tensor(&r, "x", 1, MG_DTYPE_F32, 1, 4, 0, 0);
    assert_int_equal(try_rec(&r, "unknown flags"), MG_E_FORMAT);
    head(&r, 1, 0, "");
    tensor(&r, "x", 1, MG_DTYPE_F32, 1, 0, 1, 0); /* buffer 1 of none */
    assert_int_equal(try_rec(&r, "missing buffer"), MG_E_FORMAT);
    head(&r, 1, 0, "");
    tensor(&r, "a\0b", 3, MG_DTYPE_F32, 1, 0, 0, 0);
    assert_int_equal(try_rec(&r, NULL), MG_E_FORMAT);
    head(&r, 2, 0, "");
    tensor(&r, "x", 1, MG_DTYPE_F32, 1, 0, 0, 0);
    tensor(&r, "x", 1, MG_DTYPE_F32, 1, 0, 0, 8);
    assert_int_equal(try_rec(&r, "duplicate"), MG_E_FORMAT);
    head(&r, 1, 0, "");
    tensor(&r, "x", 1, MG_DTYPE_I64, 1, 0, 0, 0); /* 2 x i64 is 16 bytes, not 8 */
    assert_int_equal(try_rec(&r, "does not match"), MG_E_FORMAT);
    /* A buffer bounds the tensors in it. */
    head(&r, 1, 1, "");
    u64(&r, 4);
    bytes(&r, "abcd", 4);
    tensor(&r, "x", 1, MG_DTYPE_F32, 1, 0, 1, 0);
    assert_int_equal(try_rec(&r, "outside its file"), MG_E_FORMAT);
    /* Counts and lengths are capped before anything is allocated. */
    head(&r, (uint64_t)MG_MAX_TENSORS + 1, 0, "");
    assert_int_equal(try_rec(&r, "too many tensors"), MG_E_FORMAT);
    head(&r, 0, MG_WIRE_MAX_BLOBS + 1, "");
    assert_int_equal(try_rec(&r, "too many buffers"), MG_E_FORMAT);
    head(&r, 0, 1, "");
    u64(&r, UINT64_MAX);
    assert_int_equal(try_rec(&r, "buffer too large"), MG_E_FORMAT);
    head(&r, 0, 0, "");
    r.n -= 8;
    u64(&r, (uint64_t)MG_WIRE_MAX_METADATA + 1);
    assert_int_equal(try_rec(&r, "metadata too long"), MG_E_FORMAT);
    head(&r, 0, 0, "[1]");
    assert_int_equal(try_rec(&r, "not a JSON object"), MG_E_FORMAT);
    head(&r, 0, 0, "{\"a\":1,\"a\":2}");
    assert_int_equal(try_rec(&r, "not a JSON object"), MG_E_FORMAT);
    head(&r, 1, 0, "");
    u32(&r, MG_MAX_NAME_LEN + 1);
    assert_int_equal(try_rec(&r, "name too long"), MG_E_FORMAT);
    /* Marks. */
    head(&r, 0, 0, "");
    r.b[0] ^= 1;
    assert_int_equal(try_rec(&r, "no record mark"), MG_E_FORMAT);
    head(&r, 0, 0, "");
    u32(&r, 0); /* the end mark comes after this */
    r.n -= 4;
    r.b[r.n] = 0;
    {
        mg_parse_result res;
        mg_error e;
        uint8_t tail[4] = {1, 2, 3, 4};
        bytes(&r, tail, 4);
        assert_int_equal(decode(r.b, r.n, 64, &res, &e), MG_E_FORMAT);
        assert_non_null(strstr(e.message, "no end mark"));
        mg_parse_result_free(&res);
    }
}

/* ---- the confined parse itself ------------------------------------------------------------ */

static void file_from(mg_verified_file *f, const char *rel, const mg_format *fmt)
{
    size_t len;
    uint8_t *data = tu_read_file(tu_source(rel), &len);
    memset(f, 0, sizeof *f);
    mg_error e;
    assert_int_equal(mg_region_alloc_memfd(&f->region, len, &e), MG_OK);
    memcpy(f->region.data, data, len);
    free(data);
    f->path = strdup(strrchr(rel, '/') + 1);
    f->format = fmt;
}

/* Seal the regions keeping their descriptors, as a load does for the parser helper. */
static void seal_for_helper(mg_verified_file *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        mg_error e;
        assert_int_equal(mg_region_seal_ex(&f[i].region, MG_REGION_KEEP_FD, &e), MG_OK);
        assert_true(f[i].region.len == 0 || f[i].region.has_sealed_fd);
    }
}

static void files_free(mg_verified_file *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(f[i].path);
        mg_region_free(&f[i].region);
        mg_parse_result_free(&f[i].parsed);
    }
}

static void same_tables(const mg_parse_result *a, const mg_parse_result *b)
{
    assert_int_equal(a->count, b->count);
    assert_int_equal(a->blob_count, b->blob_count);
    for (size_t i = 0; i < a->count; i++) {
        mg_tensor_entry x = a->tensors[i], y = b->tensors[i];
        assert_string_equal(x.name, y.name);
        x.name = y.name = NULL;
        assert_memory_equal(&x, &y, sizeof x);
    }
    for (size_t i = 0; i < a->blob_count; i++) {
        assert_int_equal(a->blobs[i].len, b->blobs[i].len);
        assert_memory_equal(a->blobs[i].data, b->blobs[i].data, a->blobs[i].len);
    }
    assert_true((a->metadata == NULL) == (b->metadata == NULL));
    if (a->metadata != NULL)
        assert_true(json_equal(a->metadata, b->metadata));
}

static void confined_equals_in_process(void **state)
{
    (void)state;
    static const struct {
        const char *rel;
        const mg_format *fmt;
    } in[] = {
        {"tests/data/real/safetensors/voices.safetensors", &mg_format_safetensors},
        {"tests/data/real/gguf/llama-2-tiny-random.gguf", &mg_format_gguf},
        {"tests/data/real/npz/mel_filters.npz", &mg_format_npz},
        {"tests/data/real/npy/python3.npy", &mg_format_npy},
        {"tests/data/real/mxnet/go-test-v0.9/go_test-0001.params", &mg_format_mxnet_params},
        {"tests/data/real/mxnet/go-test-v0.9/go_test-symbol.json", &mg_format_mxnet_symbol},
        {"tests/data/bad/npz/ok-deflated.npz", &mg_format_npz},
    };
    enum { N = sizeof in / sizeof in[0] };
    mg_verified_file a[N], b[N], c[N];
    for (size_t i = 0; i < N; i++) {
        file_from(&a[i], in[i].rel, in[i].fmt);
        file_from(&b[i], in[i].rel, in[i].fmt);
        file_from(&c[i], in[i].rel, in[i].fmt);
    }
    mg_error e;
    mg_error_clear(&e);
    /* a: a forked child; c: the parser helper (beside this test in the build tree); b: in
     * this process. */
    assert_true(mg_sandbox_has_helper());
    size_t answers = mg_sandbox_helper_answers();
    assert_int_equal(mg_sandbox_parse_files(a, N, true, NULL, &e), MG_OK);
    assert_int_equal(mg_sandbox_helper_answers(), answers);
    seal_for_helper(c, N);
    assert_int_equal(mg_sandbox_parse_files(c, N, true, NULL, &e), MG_OK);
    assert_int_equal(mg_sandbox_helper_answers(), answers + 1);
    assert_int_equal(mg_sandbox_parse_files(b, N, false, NULL, &e), MG_OK);
    for (size_t i = 0; i < N; i++) {
        same_tables(&a[i].parsed, &b[i].parsed);
        same_tables(&c[i].parsed, &b[i].parsed);
        /* Sealed: read-only for good, and the seal is on the memfd itself. */
        assert_true(a[i].region.memfd_sealed);
        assert_int_not_equal(mprotect(a[i].region.data, a[i].region.map_len,
                                      PROT_READ | PROT_WRITE), 0);
    }
    assert_true(a[2].parsed.blob_count == 0 || a[2].parsed.blobs[0].data != NULL);
    assert_true(a[6].parsed.blob_count > 0); /* deflated members come back as buffers */
    files_free(a, N);
    files_free(b, N);
    files_free(c, N);
}

static void confined_failure_names_file(void **state)
{
    (void)state;
    mg_verified_file f[2];
    file_from(&f[0], "tests/data/real/npy/python3.npy", &mg_format_npy);
    file_from(&f[1], "tests/data/bad/npz/member-pickle.npz", &mg_format_npz);
    mg_error e;
    mg_error_clear(&e);
    assert_int_equal(mg_sandbox_parse_files(f, 2, true, NULL, &e), MG_E_FORMAT);
    assert_string_equal(e.file, "member-pickle.npz");
    assert_int_not_equal(f[0].parsed.count, 0);
    files_free(f, 2);
    /* The same by the helper. */
    file_from(&f[0], "tests/data/real/npy/python3.npy", &mg_format_npy);
    file_from(&f[1], "tests/data/bad/npz/member-pickle.npz", &mg_format_npz);
    seal_for_helper(f, 2);
    size_t answers = mg_sandbox_helper_answers();
    mg_error e2;
    mg_error_clear(&e2);
    assert_int_equal(mg_sandbox_parse_files(f, 2, true, NULL, &e2), MG_E_FORMAT);
    assert_int_equal(mg_sandbox_helper_answers(), answers + 1);
    assert_string_equal(e2.file, "member-pickle.npz");
    assert_string_equal(e2.message, e.message);
    assert_int_not_equal(f[0].parsed.count, 0);
    files_free(f, 2);
}

/* A table larger than the parent's first buffer (4 MiB of wire bytes: 40000 tensors with long
 * names) is read while the child still runs, and comes out the same as in process. */
static void confined_large_table(void **state)
{
    (void)state;
    enum { N = 40000 };
    size_t cap = (size_t)N * 200 + 64;
    char *hdr = malloc(cap);
    assert_non_null(hdr);
    size_t h = 0;
    hdr[h++] = '{';
    for (unsigned i = 0; i < N; i++)
        h += (size_t)snprintf(hdr + h, cap - h,
                              "%s\"layer.%06u.a_rather_long_name_that_makes_the_table_big_"
                              "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\":{\"dtype\":\"U8\",\"shape\":[1],"
                              "\"data_offsets\":[%u,%u]}", i ? "," : "", i, i, i + 1);
    hdr[h++] = '}';
    while (h % 8 != 0)
        hdr[h++] = ' ';
    size_t len = 8 + h + N;
    mg_verified_file f[3];
    for (int k = 0; k < 3; k++) {
        memset(&f[k], 0, sizeof f[k]);
        mg_error e;
        assert_int_equal(mg_region_alloc_memfd(&f[k].region, len, &e), MG_OK);
        for (int b = 0; b < 8; b++)
            f[k].region.data[b] = (uint8_t)((uint64_t)h >> (8 * b));
        memcpy(f[k].region.data + 8, hdr, h);
        f[k].path = strdup("big-table.safetensors");
        f[k].format = &mg_format_safetensors;
    }
    free(hdr);
    mg_error ea, eb;
    mg_error_clear(&ea);
    mg_error_clear(&eb);
    assert_int_equal(mg_sandbox_parse_files(&f[0], 1, true, NULL, &ea), MG_OK);
    assert_int_equal(mg_sandbox_parse_files(&f[1], 1, false, NULL, &eb), MG_OK);
    assert_int_equal(f[0].parsed.count, N);
    same_tables(&f[0].parsed, &f[1].parsed);
    seal_for_helper(&f[2], 1);
    size_t answers = mg_sandbox_helper_answers();
    assert_int_equal(mg_sandbox_parse_files(&f[2], 1, true, NULL, &ea), MG_OK);
    assert_int_equal(mg_sandbox_helper_answers(), answers + 1);
    same_tables(&f[2].parsed, &f[1].parsed);
    files_free(f, 3);
}

/* Every test input (the real corpus and every generated bad file): the same status, the same
 * message and the same table, confined and in process. */
static size_t walked, walked_ok;

static void compare_one(const char *full, const char *name)
{
    size_t len;
    uint8_t *data = tu_read_file(full, &len);
    const mg_format *fmt = mg_format_detect(data, len, name);
    if (fmt == NULL) {
        free(data);
        return;
    }
    /* a: a forked child, b: in this process, c: the parser helper. */
    mg_verified_file a, b, c;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    memset(&c, 0, sizeof c);
    mg_error ea, eb, ec;
    mg_error_clear(&ea);
    mg_error_clear(&eb);
    mg_error_clear(&ec);
    assert_int_equal(mg_region_alloc_memfd(&a.region, len, &ea), MG_OK);
    assert_int_equal(mg_region_alloc_memfd(&b.region, len, &eb), MG_OK);
    assert_int_equal(mg_region_alloc_memfd(&c.region, len, &ec), MG_OK);
    if (len > 0) {
        memcpy(a.region.data, data, len);
        memcpy(b.region.data, data, len);
        memcpy(c.region.data, data, len);
    }
    free(data);
    a.format = b.format = c.format = fmt;
    a.path = strdup(name);
    b.path = strdup(name);
    c.path = strdup(name);
    seal_for_helper(&c, 1);
    mg_status sa = mg_sandbox_parse_files(&a, 1, true, NULL, &ea);
    mg_status sb = mg_sandbox_parse_files(&b, 1, false, NULL, &eb);
    mg_status sc = mg_sandbox_parse_files(&c, 1, true, NULL, &ec);
    if (sa != sb || strcmp(ea.message, eb.message) != 0)
        fail_msg("%s: confined %d '%s', in process %d '%s'", full, sa, ea.message, sb, eb.message);
    if (sc != sb || strcmp(ec.message, eb.message) != 0)
        fail_msg("%s: helper %d '%s', in process %d '%s'", full, sc, ec.message, sb, eb.message);
    if (sa == MG_OK) {
        same_tables(&a.parsed, &b.parsed);
        same_tables(&c.parsed, &b.parsed);
        walked_ok++;
    }
    walked++;
    files_free(&a, 1);
    files_free(&b, 1);
    files_free(&c, 1);
}

static void walk(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char full[4096];
        snprintf(full, sizeof full, "%s/%s", dir, e->d_name);
        struct stat st;
        assert_int_equal(lstat(full, &st), 0);
        if (S_ISDIR(st.st_mode))
            walk(full);
        else if (S_ISREG(st.st_mode))
            compare_one(full, e->d_name);
    }
    closedir(d);
}

static void every_test_file_same_answer(void **state)
{
    (void)state;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", tu_source("tests/data"));
    size_t answers = mg_sandbox_helper_answers();
    walk(dir);
    assert_true(mg_sandbox_helper_answers() - answers >= walked); /* (empty files: both) */
    assert_true(walked > 300);
    assert_true(walked_ok > 60);
}

/* The kernel refuses the filter (here: a filter of our own that answers EPERM to seccomp()
 * and prctl(PR_SET_SECCOMP)): a required confinement fails closed with MG_E_LIMIT and
 * parses nothing. Run in a forked test process, since the filter cannot be taken back. */
static void refused_confinement_fails_closed(void **state)
{
    (void)state;
    mg_verified_file f;
    file_from(&f, "tests/data/real/npy/python3.npy", &mg_format_npy);
    mg_error e0;
    assert_int_equal(mg_region_seal(&f.region, &e0), MG_OK); /* (a writable one is not forked) */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        scmp_filter_ctx c = seccomp_init(SCMP_ACT_ALLOW);
        struct scmp_arg_cmp is_set_seccomp = {0, SCMP_CMP_EQ, PR_SET_SECCOMP, 0};
        if (c == NULL || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
            seccomp_rule_add(c, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(seccomp), 0) != 0 ||
            seccomp_rule_add(c, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(prctl), 1, is_set_seccomp) != 0 ||
            seccomp_load(c) != 0)
            _exit(10);
        mg_error e;
        mg_error_clear(&e);
        mg_status s = mg_sandbox_parse_files(&f, 1, true, NULL, &e);
        if (s != MG_E_LIMIT)
            _exit(11);
        if (strstr(e.message, "cannot confine the parser") == NULL ||
            strstr(e.message, "seccomp") == NULL) {
            fprintf(stderr, "unexpected message: %s\n", e.message);
            _exit(12);
        }
        if (f.parsed.count != 0)
            _exit(13);
        /* Not confined on request: the same process parses. */
        if (mg_sandbox_parse_files(&f, 1, false, NULL, &e) != MG_OK || f.parsed.count == 0)
            _exit(14);
        _exit(0);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    files_free(&f, 1);
}

static void memfd_region_sealed(void **state)
{
    (void)state;
    mg_region r;
    mg_error e;
    assert_int_equal(mg_region_alloc_memfd(&r, 10000, &e), MG_OK);
    assert_true(r.has_memfd);
    memset(r.data, 5, r.len);
    int fd = dup(r.memfd);
    assert_true(fd >= 0);
    assert_int_equal(mg_region_seal(&r, &e), MG_OK);
    assert_false(r.has_memfd);
    assert_int_equal(r.data[9999], 5);
    int seals = fcntl(fd, F_GET_SEALS);
    assert_int_equal(seals & (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL),
                     F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
    /* No way back to writable: not through the mapping, not through the descriptor. */
    assert_int_not_equal(mprotect(r.data, r.map_len, PROT_READ | PROT_WRITE), 0);
    assert_true(mmap(NULL, r.map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED);
    assert_true(write(fd, "x", 1) < 0);
    close(fd);
    assert_int_equal(mg_region_seal(&r, &e), MG_OK); /* twice is fine */
    mg_region_free(&r);
}

/* A file read and hashed lands in a sealed memfd, mapped read-only, with the same bytes. */
static void read_hashed_is_sealed_memfd(void **state)
{
    (void)state;
    const char *path = tu_source("tests/data/real/gguf/llama-2-tiny-random.gguf");
    size_t len;
    uint8_t *want = tu_read_file(path, &len);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    mg_region r;
    uint8_t digest[MG_DIGEST_MAX], again[MG_DIGEST_MAX];
    mg_error e;
    _Atomic uint64_t done = 0;
    assert_int_equal(mg_region_read_hashed_ex(fd, len, MG_SHA256, MG_REGION_PREFAULT, &r, digest,
                                              &done, &e), MG_OK);
    close(fd);
    assert_true(r.memfd_sealed);
    assert_false(r.has_memfd);
    assert_int_equal(r.len, len);
    assert_int_equal(done, len);
    assert_memory_equal(r.data, want, len);
    assert_int_not_equal(mprotect(r.data, r.map_len, PROT_READ | PROT_WRITE), 0);
    mg_digest_ctx *ctx;
    assert_int_equal(mg_digest_new(MG_SHA256, &ctx, &e), MG_OK);
    assert_int_equal(mg_digest_update(ctx, want, len, &e), MG_OK);
    assert_int_equal(mg_digest_final(ctx, again, &e), MG_OK);
    mg_digest_free(ctx);
    assert_memory_equal(digest, again, 32);
    mg_region_free(&r);
    /* A size that does not match is refused before anything is read. */
    fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_int_equal(mg_region_read_hashed(fd, len + 1, MG_SHA256, &r, digest, NULL, &e),
                     MG_E_INTEGRITY);
    close(fd);
    mg_region_free(&r);
    free(want);
}

/* A ZIP file of 4 MiB or more comes with the CRC-32 of each MG_REGION_CRC_BLOCK bytes, from the
 * verified bytes, with or without a spare core (MG_REGION_PREFAULT); other files without. */
static void read_hashed_block_crcs(void **state)
{
    (void)state;
    size_t len = (5u << 20) + 777;
    uint8_t *bytes = malloc(len);
    assert_non_null(bytes);
    for (size_t i = 0; i < len; i++)
        bytes[i] = (uint8_t)(i * 131 + (i >> 12));
    memcpy(bytes, "PK\x03\x04", 4);
    char path[] = "/tmp/mg-test-crc.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(write(fd, bytes, len), (ssize_t)len);
    for (int round = 0; round < 3; round++) {
        if (round == 2)
            assert_int_equal(pwrite(fd, "PX", 2, 0), 2); /* no longer a ZIP */
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        mg_region r;
        uint8_t digest[MG_DIGEST_MAX];
        mg_error e;
        unsigned flags = round == 1 ? 0 : MG_REGION_PREFAULT;
        assert_int_equal(mg_region_read_hashed_ex(fd, len, MG_SHA256, flags, &r, digest, NULL, &e),
                         MG_OK);
        if (round == 2) {
            assert_null(r.block_crc);
            mg_region_free(&r);
            continue;
        }
        assert_non_null(r.block_crc);
        assert_int_equal(r.block_crc_count, 6);
        for (size_t i = 0; i < r.block_crc_count; i++) {
            size_t off = i * MG_REGION_CRC_BLOCK;
            size_t n = len - off < MG_REGION_CRC_BLOCK ? len - off : MG_REGION_CRC_BLOCK;
            assert_int_equal(r.block_crc[i], (uint32_t)crc32(0, bytes + off, (uInt)n));
        }
        mg_region_free(&r);
    }
    close(fd);
    free(bytes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(wire_round_trip),
        cmocka_unit_test(wire_error_record),
        cmocka_unit_test(wire_bounds),
        cmocka_unit_test(memfd_region_sealed),
        cmocka_unit_test(read_hashed_is_sealed_memfd),
        cmocka_unit_test(read_hashed_block_crcs),
        cmocka_unit_test(confined_equals_in_process),
        cmocka_unit_test(confined_failure_names_file),
        cmocka_unit_test(confined_large_table),
        cmocka_unit_test(refused_confinement_fails_closed),
        cmocka_unit_test(every_test_file_same_answer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
