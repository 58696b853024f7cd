/*
 * mg_fetch_region and mg_cache_publish against a real TLS server: tests/tls/server.py, started
 * here on 127.0.0.1 with certificates made by tests/tls/make_certs.sh (a test CA; a good
 * certificate for 127.0.0.1/localhost; one for another host name; an expired one; a self-signed
 * one not under the CA). The server counts connections and requests in count.json, so every
 * refused case also shows how far the download got. The server stops by itself after 300 s.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "digest.h"
#include "fetch.h"
#include "region.h"
#include "util/hex.h"

extern char **environ;

#define SMALL_LEN 100000u
#define BIG_LEN (3u << 20)

static struct {
    char *work;
    char *certs;
    char *cache;
    pid_t server;
    int port_good, port_wronghost, port_expired, port_selfsigned;
    char ca[4096];
    uint8_t *small;
    uint8_t *big;
} S;

/* ---- helpers ------------------------------------------------------------------------- */

static uint8_t *pattern(size_t len, uint32_t seed)
{
    uint8_t *p = malloc(len);
    assert_non_null(p);
    uint32_t x = seed;
    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (uint8_t)(x >> 16);
    }
    return p;
}

static void run_checked(char *const argv[])
{
    pid_t pid;
    assert_int_equal(posix_spawn(&pid, argv[0], NULL, NULL, argv, environ), 0);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static json_t *load_json(const char *path)
{
    size_t len;
    uint8_t *buf = tu_read_file(path, &len);
    json_t *doc = json_loadb((const char *)buf, len, 0, NULL);
    free(buf);
    assert_non_null(doc);
    return doc;
}

/* A counter of one listener from count.json ("connections", "handshake_failures",
 * "requests"). The server rewrites the file before it answers, so it is current. */
static long count(const char *listener, const char *key)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/count.json", S.work);
    json_t *doc = load_json(path);
    json_t *v = json_object_get(json_object_get(doc, listener), key);
    assert_true(json_is_integer(v));
    long n = (long)json_integer_value(v);
    json_decref(doc);
    return n;
}

static void url_of(char *buf, size_t cap, const char *host, int port, const char *path)
{
    int n = snprintf(buf, cap, "https://%s:%d%s", host, port, path);
    assert_true(n > 0 && (size_t)n < cap);
}

/* A percent-encoded copy of `s` for a query value. */
static void encode(char *dst, size_t cap, const char *s)
{
    size_t o = 0;
    for (; *s != '\0'; s++) {
        assert_true(o + 4 < cap);
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_')
            dst[o++] = (char)c;
        else
            o += (size_t)snprintf(dst + o, cap - o, "%%%02X", c);
    }
    dst[o] = '\0';
}

/* https://127.0.0.1:PORT/redirect?to=<target> */
static void redirect_url(char *buf, size_t cap, int port, const char *target)
{
    char enc[3000];
    encode(enc, sizeof enc, target);
    int n = snprintf(buf, cap, "https://127.0.0.1:%d/redirect?to=%s", port, enc);
    assert_true(n > 0 && (size_t)n < cap);
}

static size_t dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static size_t open_fds(void)
{
    return dir_entries("/proc/self/fd");
}

static mg_fetch_config cfg_with(mg_redirects rule)
{
    mg_fetch_config c = {.ca_file = S.ca, .redirects = rule};
    return c;
}

/* The loader's contract in small: publish only what downloaded and verified. */
static mg_status fetch_then_publish(const mg_fetch_config *cfg, const char *url, uint64_t size,
                                    bool exact, mg_region *out, mg_error *err)
{
    uint8_t digest[MG_DIGEST_MAX];
    mg_status st = mg_fetch_region(cfg, url, size, exact, MG_SHA256, out, digest, NULL, err);
    if (st != MG_OK)
        return st;
    char path[4200];
    return mg_cache_publish(S.cache, out->data, out->len, path, sizeof path, err);
}

/* A refused download: the exact status, nothing kept, nothing published. */
static void expect_refused(const mg_fetch_config *cfg, const char *url, uint64_t size, bool exact,
                           mg_status want, const char *msg_part)
{
    mg_region r;
    mg_error err;
    mg_error_clear(&err);
    mg_status st = fetch_then_publish(cfg, url, size, exact, &r, &err);
    if (st != want)
        fail_msg("%s: status %d, want %d (%s)", url, st, want, err.message);
    assert_int_equal(err.status, want);
    assert_null(r.data);
    assert_int_equal(r.len, 0);
    if (msg_part != NULL && strstr(err.message, msg_part) == NULL)
        fail_msg("message '%s' lacks '%s'", err.message, msg_part);
    assert_int_equal(dir_entries(S.cache), 0);
}

static void expect_bytes(const mg_fetch_config *cfg, const char *url, const uint8_t *want,
                         size_t len, uint64_t size, bool exact)
{
    mg_region r;
    mg_error err;
    mg_error_clear(&err);
    uint8_t digest[MG_DIGEST_MAX], ref[MG_DIGEST_MAX];
    _Atomic uint64_t done = 0;
    mg_status st = mg_fetch_region(cfg, url, size, exact, MG_SHA256, &r, digest, &done, &err);
    if (st != MG_OK)
        fail_msg("%s: %s", url, err.message);
    assert_int_equal(r.len, len);
    assert_int_equal(done, len);
    if (len > 0)
        assert_memory_equal(r.data, want, len);
    assert_int_equal(mg_digest_buffer(MG_SHA256, want, len, ref, &err), MG_OK);
    assert_memory_equal(digest, ref, 32);
    mg_region_free(&r);
}

/* ---- server lifecycle ------------------------------------------------------------------ */

static int port_of(json_t *ports, const char *name)
{
    json_t *v = json_object_get(ports, name);
    assert_true(json_is_integer(v));
    return (int)json_integer_value(v);
}

static int start_server(void **state)
{
    (void)state;
    /* The test talks to 127.0.0.1 only, never through a proxy. */
    unsetenv("https_proxy");
    unsetenv("HTTPS_PROXY");
    unsetenv("all_proxy");
    unsetenv("ALL_PROXY");
    setenv("no_proxy", "*", 1);

    S.work = tu_mkdtemp();
    char buf[4200];
    snprintf(buf, sizeof buf, "%s/certs", S.work);
    S.certs = strdup(buf);
    char *mk[] = {"/bin/sh", (char *)tu_source("tests/tls/make_certs.sh"), S.certs, NULL};
    run_checked(mk);
    snprintf(S.ca, sizeof S.ca, "%s/ca.pem", S.certs);

    snprintf(buf, sizeof buf, "%s/root", S.work);
    assert_int_equal(mkdir(buf, 0700), 0);
    S.small = pattern(SMALL_LEN, 1);
    S.big = pattern(BIG_LEN, 2);
    tu_write_file(buf, "small.bin", S.small, SMALL_LEN);
    tu_write_file(buf, "big.bin", S.big, BIG_LEN);
    tu_write_file(buf, "empty.bin", "", 0);
    snprintf(buf, sizeof buf, "%s/cache", S.work);
    S.cache = strdup(buf);

    char root[4200], l_good[9000], l_wrong[9000], l_exp[9000], l_self[9000];
    snprintf(root, sizeof root, "%s/root", S.work);
#define LISTENER(dst, name)                                                                   \
    snprintf(dst, sizeof dst, "%s=%s/%s.pem:%s/%s.key", name, S.certs, name, S.certs, name)
    LISTENER(l_good, "good");
    LISTENER(l_wrong, "wronghost");
    LISTENER(l_exp, "expired");
    LISTENER(l_self, "selfsigned");
#undef LISTENER
    char *argv[] = {"/usr/bin/python3", (char *)tu_source("tests/tls/server.py"), "--dir", S.work,
                    "--root", root, "--lifetime", "300", l_good, l_wrong, l_exp, l_self, NULL};
    assert_int_equal(posix_spawn(&S.server, argv[0], NULL, NULL, argv, environ), 0);

    char ports_path[4200];
    snprintf(ports_path, sizeof ports_path, "%s/ports.json", S.work);
    for (int i = 0; i < 200 && access(ports_path, F_OK) != 0; i++) { /* at most 20 s */
        int status;
        assert_int_equal(waitpid(S.server, &status, WNOHANG), 0); /* still running */
        usleep(100000);
    }
    json_t *ports = load_json(ports_path);
    S.port_good = port_of(ports, "good");
    S.port_wronghost = port_of(ports, "wronghost");
    S.port_expired = port_of(ports, "expired");
    S.port_selfsigned = port_of(ports, "selfsigned");
    json_decref(ports);
    return 0;
}

static int stop_server(void **state)
{
    (void)state;
    if (S.server > 0) {
        kill(S.server, SIGTERM);
        int status;
        bool gone = false;
        for (int i = 0; i < 100 && !gone; i++) { /* at most 10 s, then SIGKILL */
            gone = waitpid(S.server, &status, WNOHANG) == S.server;
            if (!gone)
                usleep(100000);
        }
        if (!gone) {
            kill(S.server, SIGKILL);
            waitpid(S.server, &status, 0);
        }
    }
    tu_rmtree(S.work);
    free(S.work);
    free(S.certs);
    free(S.cache);
    free(S.small);
    free(S.big);
    return 0;
}

/* Every test starts with an empty (absent) cache. */
static int clean_cache(void **state)
{
    (void)state;
    tu_rmtree(S.cache);
    unsetenv(MG_FETCH_TEST_LOW_SPEED_ENV);
    return 0;
}

/* ---- good downloads -------------------------------------------------------------------- */

static void test_good_download(void **state)
{
    (void)state;
    mg_fetch_config cfg = cfg_with(MG_REDIRECTS_SAME_HOST);
    char url[512];
    long before = count("good", "requests");
    url_of(url, sizeof url, "127.0.0.1", S.port_good, "/f/small.bin");
    expect_bytes(&cfg, url, S.small, SMALL_LEN, SMALL_LEN, true);
    assert_int_equal(count("good", "requests"), before + 1);

    /* chunked, localhost (the certificate names both), a cap instead of an exact size */
    url_of(url, sizeof url, "localhost", S.port_good, "/chunked/small.bin");
    expect_bytes(&cfg, url, S.small, SMALL_LEN, SMALL_LEN, true);
    expect_bytes(&cfg, url, S.small, SMALL_LEN, SMALL_LEN * 4, false);
    url_of(url, sizeof url, "127.0.0.1", S.port_good, "/f/big.bin");
    expect_bytes(&cfg, url, S.big, BIG_LEN, BIG_LEN, true);
    expect_bytes(&cfg, url, S.big, BIG_LEN, 16u << 20, false);
    url_of(url, sizeof url, "127.0.0.1", S.port_good, "/chunked/big.bin");
    expect_bytes(&cfg, url, S.big, BIG_LEN, BIG_LEN + 1, false);
    url_of(url, sizeof url, "127.0.0.1", S.port_good, "/f/empty.bin");
    expect_bytes(&cfg, url, NULL, 0, 0, true);
    expect_bytes(&cfg, url, NULL, 0, 100, false);
}

static void test_sha512_digest(void **state)
{
    (void)state;
    mg_fetch_config cfg = cfg_with(MG_REDIRECTS_SAME_HOST);
    char url[512];
    url_of(url, sizeof url, "127.0.0.1", S.port_good, "/f/small.bin");
    mg_region r;
    mg_error err;
    uint8_t digest[MG_DIGEST_MAX], ref[MG_DIGEST_MAX];
    assert_int_equal(
        mg_fetch_region(&cfg, url, SMALL_LEN, true, MG_SHA512, &r, digest, NULL, &err), MG_OK);
    assert_int_equal(mg_digest_buffer(MG_SHA512, S.small, SMALL_LEN, ref, &err), MG_OK);
    assert_memory_equal(digest, ref, 64);
    /* the region is writable until sealed, then read-only */
    assert_int_equal(mg_region_seal(&r, &err), MG_OK);
    mg_region_free(&r);
}

typedef struct par_job {
    const char *url;
    const uint8_t *want;
    size_t len;
    mg_status st;
    bool same;
    _Atomic uint64_t *done;
} par_job;

static void *par_fetch(void *arg)
{
    par_job *j = arg;
    mg_fetch_config cfg = cfg_with(MG_REDIRECTS_SAME_HOST);
    mg_region r;
    mg_error err;
    uint8_t digest[MG_DIGEST_MAX];
    j->st = mg_fetch_region(&cfg, j->url, j->len, true, MG_SHA256, &r, digest, j->done, &err);
    j->same = j->st == MG_OK && r.len == j->len && memcmp(r.data, j->want, j->len) == 0;
    mg_region_free(&r);
    return NULL;
}

static void test_parallel(void **state)
{
    (void)state;
    char u1[512], u2[512];
    url_of(u1, sizeof u1, "127.0.0.1", S.port_good, "/f/big.bin");
    url_of(u2, sizeof u2, "127.0.0.1", S.port_good, "/chunked/small.bin");
    _Atomic uint64_t done = 0;
    par_job jobs[6];
    pthread_t th[6];
    for (int i = 0; i < 6; i++) {
        jobs[i] = (par_job){.url = i % 2 ? u2 : u1, .want = i % 2 ? S.small : S.big,
                            .len = i % 2 ? SMALL_LEN : BIG_LEN, .done = &done};
        assert_int_equal(pthread_create(&th[i], NULL, par_fetch, &jobs[i]), 0);
    }
    for (int i = 0; i < 6; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(jobs[i].st, MG_OK);
        assert_true(jobs[i].same);
    }
    assert_int_equal(done, 3 * (uint64_t)BIG_LEN + 3 * (uint64_t)SMALL_LEN);
}

/* ---- redirects ------------------------------------------------------------------------- */

static void test_redirect_to_http_refused(void **state)
{
    (void)state;
    mg_fetch_config cfg = cfg_with(MG_REDIRECTS_HTTPS); /* even the loosest rule */
    char target[512], url[4096];
    snprintf(target, sizeof target, "http://127.0.0.1:%d/f/small.bin", S.port_good);
    redirect_url(url, sizeof url, S.port_good, target);
    long conns = count("good", "connections"), reqs = count("good", "requests");
    expect_refused(&cfg, url, SMALL_LEN, true, MG_E_IO, "not https");
    /* the http:// hop was never contacted */
    assert_int_equal(count("good", "connections"), conns + 1);
    assert_int_equal(count("good", "requests"), reqs + 1);
}

static void test_redirect_other_host(void **state)
{
    (void)state;
    char target[512], url[4096];
    url_of(target, sizeof target, "localhost", S.port_good, "/f/small.bin");
    redirect_url(url, sizeof url, S.port_good, target);

    mg_fetch_config same = cfg_with(MG_REDIRECTS_SAME_HOST);
    long reqs = count("good", "requests");
    expect_refused(&same, url, SMALL_LEN, true, MG_E_IO, "same host");
    assert_int_equal(count("good", "requests"), reqs + 1);

    mg_fetch_config none = cfg_with(MG_REDIRECTS_NONE);
    expect_refused(&none, url, SMALL_LEN, true, MG_E_IO, "no redirects");
    assert_int_equal(count("good", "requests"), reqs + 2);

    mg_fetch_config any = cfg_with(MG_REDIRECTS_HTTPS);
    expect_bytes(&any, url, S.small, SMALL_LEN, SMALL_LEN, true);
    assert_int_equal(count("good", "requests"), reqs + 4);

    /* another port of the same address is another host too */
    char t2[512], u2[4096];
    url_of(t2, sizeof t2, "127.0.0.1", S.port_expired, "/f/small.bin");
    redirect_url(u2, sizeof u2, S.port_good, t2);
    long exp_conns = count("expired", "connections");
    expect_refused(&same, u2, SMALL_LEN, true, MG_E_IO, "same host");
    assert_int_equal(count("expired", "connections"), exp_conns);
    /* with "https" it is followed, and the expired certificate there still fails TLS */
    expect_refused(&any, u2, SMALL_LEN, true, MG_E_IO, "TLS");
    assert_int_equal(count("expired", "connections"), exp_conns + 1);
    assert_int_equal(count("expired", "requests"), 0);
}

static void test_redirect_same_host(void **state)
{
    (void)state;
    char target[512], url[4096];
    /* case and an explicit path: same scheme, host and port after normalisation */
    url_of(target, sizeof target, "127.0.0.1", S.port_good, "/f/small.bin");
    redirect_url(url, sizeof url, S.port_good, target);
    mg_fetch_config same = cfg_with(MG_REDIRECTS_SAME_HOST);
    long reqs = count("good", "requests");
    expect_bytes(&same, url, S.small, SMALL_LEN, SMALL_LEN, true);
    assert_int_equal(count("good", "requests"), reqs + 2);
    /* a relative Location */
    char rel[4096];
    redirect_url(rel, sizeof rel, S.port_good, "/chunked/small.bin");
    expect_bytes(&same, rel, S.small, SMALL_LEN, SMALL_LEN, true);
    /* "none" refuses even a same-host redirect */
    mg_fetch_config none = cfg_with(MG_REDIRECTS_NONE);
    reqs = count("good", "requests");
    expect_refused(&none, url, SMALL_LEN, true, MG_E_IO, "no redirects");
    assert_int_equal(count("good", "requests"), reqs + 1);
}

static void test_redirect_limit(void **state)
{
    (void)state;
    mg_fetch_config any = cfg_with(MG_REDIRECTS_HTTPS);
    char url[512];
    url_of(url, sizeof url, "127.0.0.1", S.port_good, "/loop/0");
    long reqs = count("good", "requests");
    expect_refused(&any, url, 100, false, MG_E_IO, "more than 5 redirects");
    /* the first request and 5 redirects, not one more */
    assert_int_equal(count("good", "requests"), reqs + 6);

    /* exactly 5 redirects are followed: nest 5 /redirect hops around the file */
    char cur[8192], next[8192];
    url_of(cur, sizeof cur, "127.0.0.1", S.port_good, "/f/small.bin");
    for (int i = 0; i < 5; i++) {
        redirect_url(next, sizeof next, S.port_good, cur);
        memcpy(cur, next, sizeof cur);
    }
    reqs = count("good", "requests");
    expect_bytes(&any, cur, S.small, SMALL_LEN, SMALL_LEN, true);
    assert_int_equal(count("good", "requests"), reqs + 6);
    /* and 6 are not */
    redirect_url(next, sizeof next, S.port_good, cur);
    expect_refused(&any, next, SMALL_LEN, true, MG_E_IO, "more than 5 redirects");
}

/* ---- TLS ------------------------------------------------------------------------------- */

static void test_tls_failures(void **state)
{
    (void)state;
    mg_fetch_config cfg = cfg_with(MG_REDIRECTS_SAME_HOST);
    char url[512];
    struct {
        const char *name;
        int port;
    } bad[] = {{"wronghost", S.port_wronghost},
               {"expired", S.port_expired},
               {"selfsigned", S.port_selfsigned}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        long conns = count(bad[i].name, "connections");
        url_of(url, sizeof url, "127.0.0.1", bad[i].port, "/f/small.bin");
        expect_refused(&cfg, url, SMALL_LEN, true, MG_E_IO, "TLS failure");
        assert_int_equal(count(bad[i].name, "connections"), conns + 1);
        assert_int_equal(count(bad[i].name, "requests"), 0);
    }
    /* the good server with the system store instead of the test CA: not trusted either */
    mg_fetch_config sys = {.ca_file = NULL, .redirects = MG_REDIRECTS_SAME_HOST};
    url_of(url, sizeof url, "127.0.0.1", S.port_good, "/f/small.bin");
    long reqs = count("good", "requests");
    expect_refused(&sys, url, SMALL_LEN, true, MG_E_IO, "TLS failure");
    url_of(url, sizeof url, "127.0.0.1", S.port_selfsigned, "/f/small.bin");
    expect_refused(&sys, url, SMALL_LEN, true, MG_E_IO, "TLS failure");
    assert_int_equal(count("good", "requests"), reqs);
    /* a CA file that does not exist */
    mg_fetch_config missing = {.ca_file = "/nonexistent/ca.pem"};
    url_of(url, sizeof url, "127.0.0.1", S.port_good, "/f/small.bin");
    expect_refused(&missing, url, SMALL_LEN, true, MG_E_IO, NULL);
}

/* ---- size caps ------------------------------------------------------------------------- */

static void test_oversize(void **state)
{
    (void)state;
    mg_fetch_config cfg = cfg_with(MG_REDIRECTS_SAME_HOST);
    char url[512];
    /* with Content-Length */
    url_of(url, sizeof url, "127.0.0.1", S.port_good, "/f/small.bin");
    expect_refused(&cfg, url, SMALL_LEN - 1, true, MG_E_INTEGRITY, NULL);
    /* without an exact size the bound is a cap: a limit (8), as for a local file */
    expect_refused(&cfg, url, SMALL_LEN - 1, false, MG_E_LIMIT, "cap of");
    expect_refused(&cfg, url, 0, true, MG_E_INTEGRITY, NULL);
    /* chunked: no length up front, the cap holds while receiving */
    url_of(url, sizeof url, "127.0.0.1", S.port_good, "/chunked/small.bin");
    expect_refused(&cfg, url, SMALL_LEN - 1, true, MG_E_INTEGRITY, "longer than");
    expect_refused(&cfg, url, SMALL_LEN - 1, false, MG_E_LIMIT, "longer than the cap of");
    expect_refused(&cfg, url, 0, false, MG_E_LIMIT, "longer than the cap of");
    /* a big chunked body stops at the cap: no more than the cap was ever taken in */
    url_of(url, sizeof url, "127.0.0.1", S.port_good, "/chunked/big.bin");
    mg_region r;
    mg_error err;
    uint8_t digest[MG_DIGEST_MAX];
    _Atomic uint64_t done = 0;
    assert_int_equal(mg_fetch_region(&cfg, url, 1u << 20, false, MG_SHA256, &r, digest, &done,
                                     &err),
                     MG_E_LIMIT);
    assert_null(r.data);
    assert_true(done <= (1u << 20));
}

static void test_undersize(void **state)
{
    (void)state;
    mg_fetch_config cfg = cfg_with(MG_REDIRECTS_SAME_HOST);
    char url[512];
    /* the server's own Content-Length and the pinned size disagree with the body */
    url_of(url, sizeof url, "127.0.0.1", S.port_good, "/f/small.bin");
    expect_refused(&cfg, url, SMALL_LEN + 1, true, MG_E_INTEGRITY, NULL);
    url_of(url, sizeof url, "127.0.0.1", S.port_good, "/chunked/small.bin");
    expect_refused(&cfg, url, SMALL_LEN + 1, true, MG_E_INTEGRITY, "received");
    /* truncated: Content-Length 1000 bytes more than what is sent, then close */
    url_of(url, sizeof url, "127.0.0.1", S.port_good, "/truncated/small.bin");
    expect_refused(&cfg, url, SMALL_LEN + 1000, true, MG_E_INTEGRITY, "transfer ended");
    expect_refused(&cfg, url, SMALL_LEN, true, MG_E_INTEGRITY, "announced");
    /* a capped download cut short of its own Content-Length is a transport failure */
    expect_refused(&cfg, url, SMALL_LEN + 5000, false, MG_E_IO, "transfer ended");
}

static void test_stalled(void **state)
{
    (void)state;
    setenv(MG_FETCH_TEST_LOW_SPEED_ENV, "2", 1);
    mg_fetch_config cfg = cfg_with(MG_REDIRECTS_SAME_HOST);
    char url[512];
    url_of(url, sizeof url, "127.0.0.1", S.port_good, "/stall/small.bin");
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    expect_refused(&cfg, url, SMALL_LEN, true, MG_E_IO, "stalled");
    clock_gettime(CLOCK_MONOTONIC, &b);
    double secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    assert_true(secs >= 1.5);
    assert_true(secs < 12.0); /* the server would stall 20 s */
    /* "0" is clamped to 1 s, not "no limit" */
    setenv(MG_FETCH_TEST_LOW_SPEED_ENV, "0", 1);
    clock_gettime(CLOCK_MONOTONIC, &a);
    expect_refused(&cfg, url, SMALL_LEN, true, MG_E_IO, "stalled");
    clock_gettime(CLOCK_MONOTONIC, &b);
    secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    assert_true(secs < 12.0);
}

/* ---- HTTP status ----------------------------------------------------------------------- */

static void test_http_errors(void **state)
{
    (void)state;
    mg_fetch_config cfg = cfg_with(MG_REDIRECTS_SAME_HOST);
    char url[512];
    url_of(url, sizeof url, "127.0.0.1", S.port_good, "/f/missing.bin");
    expect_refused(&cfg, url, 10, false, MG_E_IO, "404");
    const char *codes[] = {"/status/500", "/status/403", "/status/401", "/status/204",
                           "/status/206", "/status/300", "/status/304"};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        url_of(url, sizeof url, "127.0.0.1", S.port_good, codes[i]);
        expect_refused(&cfg, url, 100, false, MG_E_IO, "HTTP status");
    }
    /* a redirect without Location */
    url_of(url, sizeof url, "127.0.0.1", S.port_good, "/status/302");
    expect_refused(&cfg, url, 100, false, MG_E_IO, NULL);
}

static void test_optional_404(void **state)
{
    (void)state;
    mg_fetch_config cfg = cfg_with(MG_REDIRECTS_SAME_HOST);
    char url[512];
    mg_region r;
    mg_error err;
    mg_error_clear(&err);
    uint8_t digest[MG_DIGEST_MAX];
    bool found = true;
    url_of(url, sizeof url, "127.0.0.1", S.port_good, "/f/missing.minisig");
    assert_int_equal(mg_fetch_region_optional(&cfg, url, 65536, false, MG_SHA256, &r, digest,
                                              NULL, &found, &err),
                     MG_OK);
    assert_false(found);
    assert_null(r.data);
    assert_int_equal(err.status, MG_OK);
    url_of(url, sizeof url, "127.0.0.1", S.port_good, "/f/small.bin");
    assert_int_equal(mg_fetch_region_optional(&cfg, url, SMALL_LEN, false, MG_SHA256, &r, digest,
                                              NULL, &found, &err),
                     MG_OK);
    assert_true(found);
    assert_int_equal(r.len, SMALL_LEN);
    mg_region_free(&r);
    /* other failures stay failures */
    url_of(url, sizeof url, "127.0.0.1", S.port_good, "/status/500");
    assert_int_equal(mg_fetch_region_optional(&cfg, url, 100, false, MG_SHA256, &r, digest, NULL,
                                              &found, &err),
                     MG_E_IO);
    url_of(url, sizeof url, "127.0.0.1", S.port_expired, "/f/missing.minisig");
    assert_int_equal(mg_fetch_region_optional(&cfg, url, 100, false, MG_SHA256, &r, digest, NULL,
                                              &found, &err),
                     MG_E_IO);
}

/* The bytes hashed are the bytes sent: nothing asks for or undoes a content encoding. */
static void test_no_content_decoding(void **state)
{
    (void)state;
    mg_fetch_config cfg = cfg_with(MG_REDIRECTS_SAME_HOST);
    char url[512];
    url_of(url, sizeof url, "127.0.0.1", S.port_good, "/headers");
    mg_region r;
    mg_error err;
    uint8_t digest[MG_DIGEST_MAX];
    assert_int_equal(mg_fetch_region(&cfg, url, 65536, false, MG_SHA256, &r, digest, NULL, &err),
                     MG_OK);
    char *headers = strndup((const char *)r.data, r.len);
    assert_non_null(headers);
    assert_null(strcasestr(headers, "accept-encoding"));
    assert_non_null(strcasestr(headers, "user-agent: modelgate/"));
    free(headers);
    mg_region_free(&r);

    url_of(url, sizeof url, "127.0.0.1", S.port_good, "/gzip/small.bin");
    /* the decoded length is refused: what arrives is the compressed body */
    expect_refused(&cfg, url, SMALL_LEN, true, MG_E_INTEGRITY, NULL);
    assert_int_equal(mg_fetch_region(&cfg, url, SMALL_LEN * 2, false, MG_SHA256, &r, digest,
                                     NULL, &err),
                     MG_OK);
    assert_true(r.len > 18 && r.len != SMALL_LEN);
    assert_int_equal(r.data[0], 0x1f);
    assert_int_equal(r.data[1], 0x8b);
    mg_region_free(&r);
}

static void test_bad_urls(void **state)
{
    (void)state;
    mg_fetch_config cfg = cfg_with(MG_REDIRECTS_HTTPS);
    char url[512];
    long conns = count("good", "connections");
    snprintf(url, sizeof url, "http://127.0.0.1:%d/f/small.bin", S.port_good);
    expect_refused(&cfg, url, SMALL_LEN, true, MG_E_USAGE, NULL);
    snprintf(url, sizeof url, "ftp://127.0.0.1:%d/f/small.bin", S.port_good);
    expect_refused(&cfg, url, SMALL_LEN, true, MG_E_USAGE, NULL);
    snprintf(url, sizeof url, "https://user:pw@127.0.0.1:%d/f/small.bin", S.port_good);
    expect_refused(&cfg, url, SMALL_LEN, true, MG_E_USAGE, NULL);
    expect_refused(&cfg, "not a url", SMALL_LEN, true, MG_E_USAGE, NULL);
    assert_int_equal(count("good", "connections"), conns);
    /* a redirect carrying user info */
    char target[512];
    snprintf(target, sizeof target, "https://user@127.0.0.1:%d/f/small.bin", S.port_good);
    redirect_url(url, sizeof url, S.port_good, target);
    expect_refused(&cfg, url, SMALL_LEN, true, MG_E_IO, "user info");
    /* a closed port */
    expect_refused(&cfg, "https://127.0.0.1:1/f/small.bin", SMALL_LEN, true, MG_E_IO, NULL);
}

/* ---- the cache ------------------------------------------------------------------------- */

static void expect_cached(const char *path, const uint8_t *data, size_t len)
{
    char hex[65], want[4200];
    uint8_t d[MG_DIGEST_MAX];
    mg_error err;
    assert_int_equal(mg_digest_buffer(MG_SHA256, data, len, d, &err), MG_OK);
    mg_hex_encode(d, 32, hex);
    snprintf(want, sizeof want, "%s/sha256/%s", S.cache, hex);
    assert_string_equal(path, want);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0640);
    assert_int_equal((size_t)st.st_size, len);
    size_t got_len;
    uint8_t *got = tu_read_file(path, &got_len);
    assert_int_equal(got_len, len);
    if (len > 0)
        assert_memory_equal(got, data, len);
    free(got);
}

static void test_cache_publish(void **state)
{
    (void)state;
    mg_error err;
    char path[4200], sub[4200];
    snprintf(sub, sizeof sub, "%s/sha256", S.cache);
    size_t fds = open_fds();
    mode_t old = umask(077); /* the file is 0640 whatever the umask */
    assert_int_equal(mg_cache_publish(S.cache, S.small, SMALL_LEN, path, sizeof path, &err),
                     MG_OK);
    umask(old);
    expect_cached(path, S.small, SMALL_LEN);
    assert_int_equal(dir_entries(S.cache), 1);
    assert_int_equal(dir_entries(sub), 1);
    struct stat st;
    assert_int_equal(stat(sub, &st), 0);
    assert_int_equal(st.st_mode & 07777, MG_CACHE_DIR_MODE);
    assert_int_equal(open_fds(), fds);

    /* again: kept, one file */
    ino_t ino = 0;
    assert_int_equal(stat(path, &st), 0);
    ino = st.st_ino;
    assert_int_equal(mg_cache_publish(S.cache, S.small, SMALL_LEN, path, sizeof path, &err),
                     MG_OK);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_ino, ino);
    assert_int_equal(dir_entries(sub), 1);

    /* wrong bytes under the name: replaced atomically, no temporary name left */
    int fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "tampered", 8), 8);
    close(fd);
    assert_int_equal(mg_cache_publish(S.cache, S.small, SMALL_LEN, path, sizeof path, &err),
                     MG_OK);
    expect_cached(path, S.small, SMALL_LEN);
    assert_int_equal(dir_entries(sub), 1);

    /* a symlink under the name is replaced, its target untouched */
    char victim[4200];
    snprintf(victim, sizeof victim, "%s/victim", S.work);
    tu_write_file(S.work, "victim", "keep", 4);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(symlink(victim, path), 0);
    assert_int_equal(mg_cache_publish(S.cache, S.small, SMALL_LEN, path, sizeof path, &err),
                     MG_OK);
    expect_cached(path, S.small, SMALL_LEN);
    size_t vlen;
    uint8_t *v = tu_read_file(victim, &vlen);
    assert_int_equal(vlen, 4);
    assert_memory_equal(v, "keep", 4);
    free(v);

    /* an empty file and a second file */
    assert_int_equal(mg_cache_publish(S.cache, (const uint8_t *)"", 0, path, sizeof path, &err),
                     MG_OK);
    expect_cached(path, (const uint8_t *)"", 0);
    assert_int_equal(mg_cache_publish(S.cache, S.big, BIG_LEN, path, sizeof path, &err), MG_OK);
    expect_cached(path, S.big, BIG_LEN);
    assert_int_equal(dir_entries(sub), 3);
    assert_int_equal(open_fds(), fds);

    /* lookup */
    uint8_t d[MG_DIGEST_MAX];
    assert_int_equal(mg_digest_buffer(MG_SHA256, S.big, BIG_LEN, d, &err), MG_OK);
    int cfd = -2;
    assert_int_equal(mg_cache_lookup(S.cache, d, &cfd, &err), MG_OK);
    assert_true(cfd >= 0);
    mg_region r;
    uint8_t digest[MG_DIGEST_MAX];
    assert_int_equal(mg_region_read_hashed(cfd, BIG_LEN, MG_SHA256, &r, digest, NULL, &err),
                     MG_OK);
    assert_memory_equal(digest, d, 32);
    mg_region_free(&r);
    close(cfd);
    d[0] ^= 1;
    assert_int_equal(mg_cache_lookup(S.cache, d, &cfd, &err), MG_OK);
    assert_int_equal(cfd, -1);
    assert_int_equal(open_fds(), fds);
}

static void test_cache_refuses_symlinks(void **state)
{
    (void)state;
    mg_error err;
    char path[4200], real[4200], link[4200];
    /* cache_dir itself a symlink */
    snprintf(real, sizeof real, "%s/realcache", S.work);
    assert_int_equal(mkdir(real, 0700), 0);
    assert_int_equal(symlink(real, S.cache), 0);
    assert_int_equal(mg_cache_publish(S.cache, S.small, SMALL_LEN, path, sizeof path, &err),
                     MG_E_IO);
    assert_int_equal(dir_entries(real), 0);
    assert_string_equal(path, "");
    int fd = 0;
    assert_int_equal(mg_cache_lookup(S.cache, (const uint8_t *)"0123456789abcdef0123456789abcdef",
                                     &fd, &err),
                     MG_E_IO);
    assert_int_equal(fd, -1);
    assert_int_equal(unlink(S.cache), 0);

    /* a symlink on the way to cache_dir */
    snprintf(link, sizeof link, "%s/via", S.work);
    assert_int_equal(symlink(real, link), 0);
    snprintf(path, sizeof path, "%s/via/cache", S.work);
    char out[4200];
    assert_int_equal(mg_cache_publish(path, S.small, SMALL_LEN, out, sizeof out, &err), MG_E_IO);
    assert_int_equal(dir_entries(real), 0);
    assert_int_equal(unlink(link), 0);

    /* cache_dir/sha256 a symlink */
    assert_int_equal(mkdir(S.cache, 0700), 0);
    snprintf(link, sizeof link, "%s/sha256", S.cache);
    assert_int_equal(symlink(real, link), 0);
    assert_int_equal(mg_cache_publish(S.cache, S.small, SMALL_LEN, out, sizeof out, &err),
                     MG_E_IO);
    assert_int_equal(dir_entries(real), 0);
    assert_int_equal(dir_entries(S.cache), 1);
    tu_rmtree(real);

    /* relative cache_dir, a parent that does not exist, a path that does not fit */
    assert_int_equal(mg_cache_publish("rel/cache", S.small, 1, out, sizeof out, &err),
                     MG_E_USAGE);
    snprintf(path, sizeof path, "%s/no/such/cache", S.work);
    assert_int_equal(mg_cache_publish(path, S.small, 1, out, sizeof out, &err), MG_E_IO);
    char tiny[16];
    assert_int_equal(mg_cache_publish("/tmp", S.small, 1, tiny, sizeof tiny, &err), MG_E_LIMIT);
}

/* A download that fails after the cache folder already exists leaves it as it was. */
static void test_refused_leaves_cache_alone(void **state)
{
    (void)state;
    mg_error err;
    char path[4200], sub[4200], url[512];
    assert_int_equal(mg_cache_publish(S.cache, S.big, BIG_LEN, path, sizeof path, &err), MG_OK);
    snprintf(sub, sizeof sub, "%s/sha256", S.cache);
    mg_fetch_config cfg = cfg_with(MG_REDIRECTS_SAME_HOST);
    url_of(url, sizeof url, "127.0.0.1", S.port_good, "/chunked/small.bin");
    mg_region r;
    assert_int_equal(fetch_then_publish(&cfg, url, SMALL_LEN - 1, true, &r, &err),
                     MG_E_INTEGRITY);
    assert_int_equal(dir_entries(sub), 1);
    assert_int_equal(dir_entries(S.cache), 1);
    /* and a good one adds exactly its file */
    assert_int_equal(fetch_then_publish(&cfg, url, SMALL_LEN, true, &r, &err), MG_OK);
    mg_region_free(&r);
    assert_int_equal(dir_entries(sub), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_good_download, clean_cache),
        cmocka_unit_test_setup(test_sha512_digest, clean_cache),
        cmocka_unit_test_setup(test_parallel, clean_cache),
        cmocka_unit_test_setup(test_redirect_to_http_refused, clean_cache),
        cmocka_unit_test_setup(test_redirect_other_host, clean_cache),
        cmocka_unit_test_setup(test_redirect_same_host, clean_cache),
        cmocka_unit_test_setup(test_redirect_limit, clean_cache),
        cmocka_unit_test_setup(test_tls_failures, clean_cache),
        cmocka_unit_test_setup(test_oversize, clean_cache),
        cmocka_unit_test_setup(test_undersize, clean_cache),
        cmocka_unit_test_setup(test_stalled, clean_cache),
        cmocka_unit_test_setup(test_http_errors, clean_cache),
        cmocka_unit_test_setup(test_optional_404, clean_cache),
        cmocka_unit_test_setup(test_no_content_decoding, clean_cache),
        cmocka_unit_test_setup(test_bad_urls, clean_cache),
        cmocka_unit_test_setup(test_cache_publish, clean_cache),
        cmocka_unit_test_setup(test_cache_refuses_symlinks, clean_cache),
        cmocka_unit_test_setup(test_refused_leaves_cache_alone, clean_cache),
    };
    return cmocka_run_group_tests(tests, start_server, stop_server);
}
