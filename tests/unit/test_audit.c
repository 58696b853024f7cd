/* The audit log and the order of a load's side effects (issue 14 §5-6): no FIFO blocks, a
 * record is a line of its own, a short write is cut back, and a log that cannot be opened
 * leaves the cache untouched; plus the policy lookup of a trailing-slash request. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "audit.h"
#include "digest.h"
#include "policy.h"
#include "testutil.h"
#include "util/hex.h"

/* A policy from JSON text, its relative paths taken from `dir`. */
static mg_policy *policy(const char *dir, const char *json)
{
    mg_policy *pol;
    mg_error err;
    if (mg_policy_from_buffer((const uint8_t *)json, strlen(json), dir, &pol, &err) != MG_OK)
        fail_msg("policy: %s", err.message);
    return pol;
}

static mg_policy *policy_with_audit(const char *dir, const char *audit_name)
{
    char json[8192];
    snprintf(json, sizeof json, "{\"modelgate_policy\":1,\"audit_log\":\"%s\",\"models\":[]}",
             audit_name);
    return policy(dir, json);
}

static void fifo_never_blocks(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    char path[4200];
    snprintf(path, sizeof path, "%s/audit.jsonl", dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    mg_policy *pol = policy_with_audit(dir, "audit.jsonl");
    alarm(20); /* a blocked open would hang the test: let it die instead */
    mg_error err;
    assert_int_equal(mg_audit_record(pol, "load", "m", "/x", NULL, &err), MG_E_IO);
    assert_non_null(strstr(err.message, "FIFO"));
    /* With a reader at the other end the open succeeds: still refused, not written to. */
    int reader = open(path, O_RDONLY | O_NONBLOCK);
    assert_true(reader >= 0);
    assert_int_equal(mg_audit_record(pol, "load", "m", "/x", NULL, &err), MG_E_IO);
    assert_non_null(strstr(err.message, "not a regular file"));
    char buf[16];
    assert_true(read(reader, buf, sizeof buf) <= 0);
    alarm(0);
    close(reader);
    mg_policy_close(pol);
    tu_rmtree(dir);
    free(dir);
}

static void record_starts_on_a_new_line(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    static const char fragment[] = "{\"torn\":";
    tu_write_file(dir, "audit.jsonl", fragment, sizeof fragment - 1);
    mg_policy *pol = policy_with_audit(dir, "audit.jsonl");
    mg_error err;
    assert_int_equal(mg_audit_record(pol, "verify", "m", "/x", NULL, &err), MG_OK);
    char path[4200];
    snprintf(path, sizeof path, "%s/audit.jsonl", dir);
    size_t len;
    uint8_t *data = tu_read_file(path, &len);
    assert_true(len > sizeof fragment);
    assert_memory_equal(data, "{\"torn\":\n{\"time\":", sizeof fragment + 8);
    assert_int_equal(data[len - 1], '\n');
    free(data);
    mg_policy_close(pol);
    tu_rmtree(dir);
    free(dir);
}

/* In a child under a file-size limit: the record does not fit, and nothing of it stays. */
static void short_write_is_cut_back(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    char pad[4000];
    memset(pad, 'x', sizeof pad);
    pad[sizeof pad - 1] = '\n';
    tu_write_file(dir, "audit.jsonl", pad, sizeof pad);
    mg_policy *pol = policy_with_audit(dir, "audit.jsonl");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {4096, 4096};
        setrlimit(RLIMIT_FSIZE, &rl);
        mg_error err;
        mg_status s = mg_audit_record(pol, "load", "m", "/x", NULL, &err);
        _exit(s == MG_E_IO && strstr(err.message, "audit log") != NULL ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    char path[4200];
    snprintf(path, sizeof path, "%s/audit.jsonl", dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, (off_t)sizeof pad);
    mg_policy_close(pol);
    tu_rmtree(dir);
    free(dir);
}

/* An audit log that cannot be opened fails the fetch before anything is published. */
static void no_side_effect_without_an_audit_log(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    static const char data[] = "some verified bytes";
    tu_write_file(dir, "m.bin", data, sizeof data - 1);
    tu_write_file(dir, "m2.bin", data, sizeof data - 1);
    char sub[4200];
    snprintf(sub, sizeof sub, "%s/audit-is-a-folder", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    uint8_t d[MG_DIGEST_MAX];
    mg_error err;
    assert_int_equal(mg_digest_buffer(MG_SHA256, data, sizeof data - 1, d, &err), MG_OK);
    char hex[65];
    mg_hex_encode(d, 32, hex);
    char json[8192];
    snprintf(json, sizeof json,
             "{\"modelgate_policy\":1,\"audit_log\":\"audit-is-a-folder\",\"cache_dir\":\"cache\","
             "\"models\":[{\"name\":\"m\",\"source\":\"m.bin\",\"sha256\":\"%s\"},"
             "{\"name\":\"bad\",\"source\":\"m2.bin\",\"sha512\":\"%0128d\"}]}", hex, 0);
    mg_policy *pol = policy(dir, json);
    mg_model *m = NULL;
    assert_int_equal(mg_model_fetch(pol, "m", NULL, &m, &err), MG_E_IO);
    assert_null(m);
    assert_non_null(strstr(err.message, "audit log"));
    char cache[4200];
    snprintf(cache, sizeof cache, "%s/cache", dir);
    struct stat st;
    assert_int_equal(stat(cache, &st), -1); /* nothing was published */
    /* A rejection keeps its own status; its message says that its record was lost. */
    assert_int_equal(mg_model_fetch(pol, "bad", NULL, &m, &err), MG_E_INTEGRITY);
    assert_non_null(strstr(err.message, "the audit record of this rejection was lost"));
    mg_policy_close(pol);
    tu_rmtree(dir);
    free(dir);
}

static void trailing_slash_never_matches_a_single_file(void **state)
{
    (void)state;
    mg_policy *pol = policy("/", "{\"modelgate_policy\":1,\"models\":["
                                 "{\"name\":\"f\",\"source\":\"https://h.example/m.npy\","
                                 "\"sha256\":\"" "0000000000000000000000000000000000000000000000000000000000000000" "\","
                                 "\"size\":1},"
                                 "{\"name\":\"l\",\"source\":\"/opt/m.npy\","
                                 "\"sha256\":\"" "0000000000000000000000000000000000000000000000000000000000000000" "\"},"
                                 "{\"name\":\"d\",\"source\":\"https://h.example/d/\","
                                 "\"files\":{\"a\":{\"sha256\":\"" "0000000000000000000000000000000000000000000000000000000000000000" "\",\"size\":1}}}]}");
    const mg_policy_model *e;
    mg_error err;
    assert_int_equal(mg_policy_find(pol, "https://h.example/m.npy", &e, &err), MG_OK);
    assert_string_equal(e->name, "f");
    assert_int_equal(mg_policy_find(pol, "https://h.example/m.npy/", &e, &err), MG_E_UNTRUSTED);
    assert_int_equal(mg_policy_find(pol, "/opt/m.npy", &e, &err), MG_OK);
    assert_int_equal(mg_policy_find(pol, "/opt/m.npy/", &e, &err), MG_E_UNTRUSTED);
    assert_int_equal(mg_policy_find(pol, "/opt/./m.npy/", &e, &err), MG_E_UNTRUSTED);
    /* a folder entry is still found with or without its slash */
    assert_int_equal(mg_policy_find(pol, "https://h.example/d/", &e, &err), MG_OK);
    assert_int_equal(mg_policy_find(pol, "https://h.example/d", &e, &err), MG_OK);
    mg_policy_close(pol);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fifo_never_blocks),
        cmocka_unit_test(record_starts_on_a_new_line),
        cmocka_unit_test(short_write_is_cut_back),
        cmocka_unit_test(no_side_effect_without_an_audit_log),
        cmocka_unit_test(trailing_slash_never_matches_a_single_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
