/* The load path through the public API: policy -> load -> tensors/assets; all or nothing;
 * the verified memory is read-only; conversions on access; the safetensors parser's tables. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "digest.h"
#include "format/format.h"
#include "testutil.h"
#include "util/hex.h"

static void hex_sha256(const void *data, size_t len, char out[65])
{
    uint8_t d[MG_DIGEST_MAX];
    mg_error err;
    assert_int_equal(mg_digest_buffer(MG_SHA256, data, len, d, &err), MG_OK);
    mg_hex_encode(d, 32, out);
}

/* A safetensors file: tensors "w" F32 [2,2] = 1,2,3,4 and "b" I8 [3] = -1,0,1. */
static size_t make_model(uint8_t *buf)
{
    const char *hdr = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                      "\"b\":{\"dtype\":\"I8\",\"shape\":[3],\"data_offsets\":[16,19]}}";
    uint64_t n = strlen(hdr);
    memcpy(buf, &n, 8);
    memcpy(buf + 8, hdr, n);
    float w[4] = {1, 2, 3, 4};
    int8_t b[3] = {-1, 0, 1};
    memcpy(buf + 8 + n, w, 16);
    memcpy(buf + 8 + n + 16, b, 3);
    return 8 + n + 19;
}

typedef struct fixture {
    char *dir;
    char policy[4096];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = tu_mkdtemp();
    char sub[4096];
    snprintf(sub, sizeof sub, "%s/model", f->dir);
    mkdir(sub, 0755);
    uint8_t buf[512];
    size_t n = make_model(buf);
    tu_write_file(sub, "model.safetensors", buf, n);
    const char *cfg = "{\"hidden\": 2}";
    tu_write_file(sub, "config.json", cfg, strlen(cfg));
    char h1[65], h2[65];
    hex_sha256(buf, n, h1);
    hex_sha256(cfg, strlen(cfg), h2);
    char pol[8192];
    snprintf(pol, sizeof pol,
             "{\"modelgate_policy\":1,\"audit_log\":\"audit.jsonl\",\"models\":["
             "{\"name\":\"m\",\"source\":\"%s/model/\",\"files\":{"
             "\"model.safetensors\":{\"sha256\":\"%s\",\"size\":%zu},"
             "\"config.json\":{\"sha256\":\"%s\"}}},"
             "{\"name\":\"single\",\"source\":\"model/model.safetensors\",\"sha256\":\"%s\"}]}",
             f->dir, h1, n, h2, h1);
    tu_write_file(f->dir, "policy.json", pol, strlen(pol));
    snprintf(f->policy, sizeof f->policy, "%s/policy.json", f->dir);
    chmod(f->policy, 0600);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    tu_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* mg_load_options grows by appending fields; `size` says which the caller knows. */
static void load_options_size(void **state)
{
    fixture *f = *state;
    mg_policy *pol;
    mg_model *m;
    mg_error err;
    assert_int_equal(mg_policy_open(f->policy, NULL, &pol, &err), MG_OK);
    /* size 0 (a zero-initialised struct) and sizeof both work */
    mg_load_options zero = {0};
    assert_int_equal(mg_model_verify(pol, "m", &zero, &m, &err), MG_OK);
    mg_model_close(m);
    mg_load_options exact = {.size = sizeof exact, .threads = 2};
    assert_int_equal(mg_model_verify(pol, "m", &exact, &m, &err), MG_OK);
    mg_model_close(m);
    /* a caller built against a newer header: larger struct, unknown fields zero -> fine */
    struct {
        mg_load_options base;
        uint64_t future[4];
    } newer;
    memset(&newer, 0, sizeof newer);
    newer.base.size = sizeof newer;
    assert_int_equal(mg_model_verify(pol, "m", &newer.base, &m, &err), MG_OK);
    mg_model_close(m);
    /* ... but a field this library does not know, set: refused, nothing loaded */
    newer.future[2] = 1;
    m = (mg_model *)&newer;
    assert_int_equal(mg_model_load(pol, "m", &newer.base, &m, &err), MG_E_USAGE);
    assert_null(m);
    assert_non_null(strstr(err.message, "does not know"));
    /* a size too small to hold even `size` is refused */
    mg_load_options tiny = {.size = 1};
    assert_int_equal(mg_model_load(pol, "m", &tiny, &m, &err), MG_E_USAGE);
    assert_null(m);
    mg_policy_close(pol);
}

static void load_directory_model(void **state)
{
    fixture *f = *state;
    mg_policy *pol;
    mg_model *m;
    mg_error err;
    assert_int_equal(mg_policy_open(f->policy, NULL, &pol, &err), MG_OK);
    mg_load_options opts = {.threads = 1};
    assert_int_equal(mg_model_load(pol, "m", &opts, &m, &err), MG_OK);
    assert_string_equal(mg_model_name(m), "m");
    assert_int_equal(mg_model_file_count(m), 2);
    mg_file_info fi;
    assert_int_equal(mg_model_file(m, 0, &fi), MG_OK);
    assert_string_equal(fi.path, "config.json");
    assert_string_equal(fi.format, "asset");
    assert_int_equal(mg_model_file(m, 1, &fi), MG_OK);
    assert_string_equal(fi.format, "safetensors");
    assert_string_equal(fi.algorithm, "sha256");
    assert_int_equal(mg_model_file(m, 2, &fi), MG_E_USAGE);

    assert_int_equal(mg_model_tensor_count(m), 2);
    const mg_tensor *w = mg_model_find_tensor(m, "w");
    assert_non_null(w);
    assert_int_equal(w->dtype, MG_DTYPE_F32);
    assert_string_equal(w->dtype_name, "F32");
    assert_int_equal(w->ndim, 2);
    assert_int_equal(w->shape[0], 2);
    assert_int_equal(w->shape[1], 2);
    assert_int_equal(w->nbytes, 16);
    float vals[4];
    memcpy(vals, w->data, 16);
    assert_true(vals[0] == 1.0f && vals[3] == 4.0f);
    assert_string_equal(w->file, "model.safetensors");
    const mg_tensor *b = mg_model_find_tensor(m, "b");
    assert_non_null(b);
    assert_int_equal(b->offset, w->offset + 16);
    assert_null(mg_model_find_tensor(m, "nope"));
    assert_null(mg_model_tensor(m, 2));

    const void *data;
    size_t len;
    assert_int_equal(mg_model_asset(m, "config.json", &data, &len, &err), MG_OK);
    assert_int_equal(len, strlen("{\"hidden\": 2}"));
    assert_memory_equal(data, "{\"hidden\": 2}", len);
    assert_int_equal(mg_model_asset(m, "missing.json", &data, &len, &err), MG_E_USAGE);

    /* The verified memory is read-only: a write faults. */
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGSEGV, SIG_DFL);
        ((volatile uint8_t *)w->data)[0] = 0;
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGSEGV);
    mg_model_close(m);

    /* Relative sources resolve against the policy's folder; verify has no tensors. */
    assert_int_equal(mg_model_verify(pol, "single", NULL, &m, &err), MG_OK);
    assert_int_equal(mg_model_tensor_count(m), 0);
    assert_int_equal(mg_model_file(m, 0, &fi), MG_OK);
    assert_string_equal(fi.format, "safetensors");
    mg_model_close(m);
    mg_policy_close(pol);
}

static void all_or_nothing(void **state)
{
    fixture *f = *state;
    char path[4096];
    snprintf(path, sizeof path, "%s/model/config.json", f->dir);
    FILE *fp = fopen(path, "ab");
    fputs(" ", fp);
    fclose(fp);
    mg_policy *pol;
    mg_model *m = (mg_model *)0x1;
    mg_error err;
    assert_int_equal(mg_policy_open(f->policy, NULL, &pol, &err), MG_OK);
    assert_int_equal(mg_model_load(pol, "m", NULL, &m, &err), MG_E_INTEGRITY);
    assert_null(m);
    assert_string_equal(err.model, "m");
    assert_string_equal(err.file, "config.json");
    /* the digest was not pinned with a size: the mismatch carries both digests */
    assert_string_equal(err.algorithm, "sha256");
    assert_int_equal(strlen(err.expected), 64);
    assert_int_equal(strlen(err.actual), 64);
    assert_int_equal(mg_model_load(pol, "other", NULL, &m, &err), MG_E_UNTRUSTED);
    assert_null(m);
    mg_policy_close(pol);
    /* both attempts are in the audit log */
    char alog[4096];
    snprintf(alog, sizeof alog, "%s/audit.jsonl", f->dir);
    size_t n;
    uint8_t *text = tu_read_file(alog, &n);
    text = realloc(text, n + 1);
    text[n] = 0;
    assert_non_null(strstr((char *)text, "\"result\":\"rejected\",\"error\":\"integrity\",\"file\":\"config.json\""));
    assert_non_null(strstr((char *)text, "\"error\":\"untrusted\""));
    free(text);
}

static void tensor_copy_conversions(void **state)
{
    (void)state;
    /* a 2x3 big-endian, Fortran-order I16 array holding C-order values 1..6 */
    int16_t c_order[6] = {1, 2, 3, 4, 5, 6};
    uint8_t stored[12];
    uint64_t shape[2] = {2, 3};
    for (int col = 0, k = 0; col < 3; col++)
        for (int row = 0; row < 2; row++, k++) {
            uint16_t v = (uint16_t)c_order[row * 3 + col];
            stored[2 * k] = (uint8_t)(v >> 8);
            stored[2 * k + 1] = (uint8_t)v;
        }
    mg_tensor t = {.name = "x", .dtype = MG_DTYPE_I16, .ndim = 2, .shape = shape, .nbytes = 12,
                   .data = stored, .flags = MG_TENSOR_BIG_ENDIAN | MG_TENSOR_FORTRAN};
    int16_t out[6];
    mg_error err;
    assert_int_equal(mg_tensor_copy(&t, out, sizeof out, &err), MG_OK);
    assert_memory_equal(out, c_order, sizeof out);
    assert_int_equal(mg_tensor_copy(&t, out, 11, &err), MG_E_USAGE);
    /* complex64 big-endian: each float swapped on its own */
    float cplx[2] = {1.5f, -2.0f};
    uint8_t be[8];
    for (int i = 0; i < 2; i++) {
        uint32_t u;
        memcpy(&u, &cplx[i], 4);
        for (int j = 0; j < 4; j++)
            be[4 * i + j] = (uint8_t)(u >> (24 - 8 * j));
    }
    uint64_t one = 1;
    mg_tensor c = {.name = "c", .dtype = MG_DTYPE_C64, .ndim = 1, .shape = &one, .nbytes = 8,
                   .data = be, .flags = MG_TENSOR_BIG_ENDIAN};
    float back[2];
    assert_int_equal(mg_tensor_copy(&c, back, sizeof back, &err), MG_OK);
    assert_true(back[0] == 1.5f && back[1] == -2.0f);
}

static void safetensors_real_tables(void **state)
{
    (void)state;
    size_t len;
    uint8_t *data = tu_read_file(tu_source("tests/data/real/safetensors/overall.safetensors"), &len);
    assert_true(mg_format_safetensors.probe(data, len));
    assert_ptr_equal(mg_format_detect(data, len, "x"), &mg_format_safetensors);
    mg_parse_result res = {0};
    mg_error err;
    assert_int_equal(mg_format_safetensors.parse(data, len, &res, &err), MG_OK);
    static const struct {
        const char *name;
        mg_dtype dtype;
        uint64_t offset, nbytes;
    } want[] = {{"B", MG_DTYPE_U8, 534, 6},   {"H", MG_DTYPE_U16, 540, 12},
                {"I", MG_DTYPE_U32, 552, 24}, {"b", MG_DTYPE_I8, 576, 6},
                {"d", MG_DTYPE_F64, 582, 48}, {"e", MG_DTYPE_F16, 630, 12},
                {"f", MG_DTYPE_F32, 642, 24}, {"h", MG_DTYPE_I16, 666, 12},
                {"i", MG_DTYPE_I32, 678, 24}};
    assert_int_equal(res.count, 9);
    for (size_t i = 0; i < 9; i++) {
        assert_string_equal(res.tensors[i].name, want[i].name);
        assert_int_equal(res.tensors[i].dtype, want[i].dtype);
        assert_int_equal(res.tensors[i].offset, want[i].offset);
        assert_int_equal(res.tensors[i].nbytes, want[i].nbytes);
        assert_int_equal(res.tensors[i].ndim, 1);
        assert_int_equal(res.tensors[i].shape[0], 6);
    }
    mg_parse_result_free(&res);
    free(data);

    data = tu_read_file(tu_source("tests/data/real/safetensors/mlx-lora-adapters.safetensors"), &len);
    assert_int_equal(mg_format_safetensors.parse(data, len, &res, &err), MG_OK);
    assert_int_equal(res.count, 16);
    for (size_t i = 1; i < res.count; i++)
        assert_int_equal(res.tensors[i].data_offset,
                         res.tensors[i - 1].data_offset + res.tensors[i - 1].nbytes);
    mg_parse_result_free(&res);
    free(data);
}

/* Every bad safetensors file straight into the parser, with the code expected.tsv gives. */
static void safetensors_bad_inputs(void **state)
{
    (void)state;
    const char *dir = tu_source("tests/data/bad/safetensors");
    char tsv[4096];
    snprintf(tsv, sizeof tsv, "%s/expected.tsv", dir);
    FILE *fp = fopen(tsv, "r");
    assert_non_null(fp);
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, fp) != NULL) {
        char *tab = strchr(line, '\t');
        assert_non_null(tab);
        *tab = '\0';
        int code = (int)strtol(tab + 1, NULL, 10);
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, line);
        size_t len;
        uint8_t *data = tu_read_file(path, &len);
        mg_parse_result res = {0};
        mg_error err;
        mg_error_clear(&err);
        mg_status s = mg_format_safetensors.parse(data, len, &res, &err);
        if ((int)s != code)
            fail_msg("%s: expected %d, got %d (%s)", line, code, (int)s, err.message);
        mg_parse_result_free(&res);
        free(data);
        n++;
    }
    fclose(fp);
    assert_true(n > 50);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(load_directory_model, setup, teardown),
        cmocka_unit_test_setup_teardown(load_options_size, setup, teardown),
        cmocka_unit_test_setup_teardown(all_or_nothing, setup, teardown),
        cmocka_unit_test(tensor_copy_conversions),
        cmocka_unit_test(safetensors_real_tables),
        cmocka_unit_test(safetensors_bad_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
