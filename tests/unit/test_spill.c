/* Spill files (spill.h): a verified copy in an unnamed read-only file, the folder checks, the
 * memory room read from fake /proc and cgroup trees (v2, hybrid, v1), and the "auto" rule. */
#define _GNU_SOURCE
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spill.h"

static void mkdirs(const char *root, const char *rel)
{
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/%s", root, rel);
    assert_true(n > 0 && (size_t)n < sizeof path);
    for (char *p = path + strlen(root) + 1; *p != '\0'; p++) {
        if (*p == '/') {
            *p = '\0';
            (void)mkdir(path, 0700);
            *p = '/';
        }
    }
    (void)mkdir(path, 0700);
}

static void put(const char *root, const char *rel, const char *text)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", rel);
    char *slash = strrchr(dir, '/');
    if (slash != NULL) {
        *slash = '\0';
        mkdirs(root, dir);
        char full[4096];
        int n = snprintf(full, sizeof full, "%s/%s", root, dir);
        assert_true(n > 0 && (size_t)n < sizeof full);
        tu_write_file(full, slash + 1, text, strlen(text));
    } else {
        tu_write_file(root, rel, text, strlen(text));
    }
}

static size_t entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

/* ---- the copy ------------------------------------------------------------------------ */

static void copy_is_hashed_read_only_and_unnamed(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    char spill[4200];
    snprintf(spill, sizeof spill, "%s/spill", dir);
    assert_int_equal(mkdir(spill, 0700), 0);
    size_t len = (3u << 20) + 12345; /* several chunks and a partial page */
    uint8_t *data = malloc(len);
    assert_non_null(data);
    for (size_t i = 0; i < len; i++)
        data[i] = (uint8_t)(i * 2654435761u >> 13);
    tu_write_file(dir, "m.bin", data, len);
    char src[4200];
    snprintf(src, sizeof src, "%s/m.bin", dir);
    int fd = open(src, O_RDONLY);
    assert_true(fd >= 0);
    int dfd;
    mg_error e;
    assert_int_equal(mg_spill_open_dir(spill, "spill_dir", &dfd, &e), MG_OK);
    mg_region r;
    uint8_t digest[MG_DIGEST_MAX], want[32];
    _Atomic uint64_t done = 0;
    assert_int_equal(mg_spill_read_hashed(dfd, fd, len, true, MG_SHA256, &r, digest, &done, &e),
                     MG_OK);
    close(fd);
    SHA256(data, len, want);
    assert_memory_equal(digest, want, 32);
    assert_int_equal(r.len, len);
    assert_memory_equal(r.data, data, len);
    assert_int_equal(atomic_load(&done), len);
    /* Read-only for good: sealing has nothing to do, and the mapping is a shared read-only
     * mapping of a deleted (unnamed) file. */
    assert_true(r.memfd_sealed);
    assert_false(r.has_memfd);
    assert_int_equal(mg_region_seal(&r, &e), MG_OK);
    char line[512], want_addr[64];
    snprintf(want_addr, sizeof want_addr, "%lx-", (unsigned long)(uintptr_t)r.data);
    FILE *maps = fopen("/proc/self/maps", "r");
    assert_non_null(maps);
    bool found = false;
    while (fgets(line, sizeof line, maps) != NULL) {
        if (strncmp(line, want_addr, strlen(want_addr)) == 0) {
            found = true;
            assert_non_null(strstr(line, " r--s "));
            assert_non_null(strstr(line, "(deleted)"));
            assert_non_null(strstr(line, spill));
        }
    }
    fclose(maps);
    assert_true(found);
    /* Nothing in the folder, and no descriptor left open on the spill file. */
    assert_int_equal(entries(spill), 0);
    DIR *fds = opendir("/proc/self/fd");
    assert_non_null(fds);
    struct dirent *de;
    while ((de = readdir(fds)) != NULL) {
        char p[300], target[4200];
        snprintf(p, sizeof p, "/proc/self/fd/%s", de->d_name);
        ssize_t n = readlink(p, target, sizeof target - 1);
        if (n > 0) {
            target[n] = '\0';
            /* (the folder itself is still open, as dfd) */
            assert_false(strstr(target, spill) != NULL && strstr(target, "(deleted)") != NULL);
        }
    }
    closedir(fds);
    mg_region_free(&r);
    close(dfd);
    free(data);
    tu_rmtree(dir);
    free(dir);
}

static void size_and_limits(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    tu_write_file(dir, "m.bin", "0123456789", 10);
    tu_write_file(dir, "empty.bin", "", 0);
    char src[4200];
    snprintf(src, sizeof src, "%s/m.bin", dir);
    int dfd;
    mg_error e;
    assert_int_equal(mg_spill_open_dir(dir, "spill_dir", &dfd, &e), MG_OK);
    mg_region r;
    uint8_t digest[MG_DIGEST_MAX];
    int fd = open(src, O_RDONLY);
    assert_true(fd >= 0);
    /* A pinned size that differs: integrity, before any copy. */
    assert_int_equal(mg_spill_read_hashed(dfd, fd, 11, true, MG_SHA256, &r, digest, NULL, &e),
                     MG_E_INTEGRITY);
    assert_null(r.data);
    /* A file-size limit below the file: refused (MG_E_LIMIT), the process not signalled. */
    struct rlimit old, low;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    low = old;
    low.rlim_cur = 5;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &low), 0);
    mg_status s = mg_spill_read_hashed(dfd, fd, UINT64_MAX, true, MG_SHA256, &r, digest, NULL, &e);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    assert_int_equal(s, MG_E_LIMIT);
    assert_non_null(strstr(e.message, "RLIMIT_FSIZE"));
    close(fd);
    /* Without hashing (sharded pins check the mapping themselves). */
    fd = open(src, O_RDONLY);
    memset(digest, 0xAA, sizeof digest);
    assert_int_equal(mg_spill_read_hashed(dfd, fd, 10, false, MG_SHA256, &r, digest, NULL, &e),
                     MG_OK);
    assert_memory_equal(r.data, "0123456789", 10);
    assert_int_equal(digest[0], 0xAA);
    mg_region_free(&r);
    close(fd);
    /* An empty file: an empty region and the digest of nothing. */
    snprintf(src, sizeof src, "%s/empty.bin", dir);
    fd = open(src, O_RDONLY);
    assert_int_equal(mg_spill_read_hashed(dfd, fd, 0, true, MG_SHA512, &r, digest, NULL, &e),
                     MG_OK);
    uint8_t want[64];
    SHA512((const uint8_t *)"", 0, want);
    assert_memory_equal(digest, want, 64);
    assert_int_equal(r.len, 0);
    mg_region_free(&r);
    close(fd);
    close(dfd);
    tu_rmtree(dir);
    free(dir);
}

static void bad_folders_are_policy_errors(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    char p[4200], q[4200];
    int dfd = -1;
    mg_error e;
    snprintf(p, sizeof p, "%s/missing", dir);
    assert_int_equal(mg_spill_open_dir(p, "spill_dir", &dfd, &e), MG_E_POLICY);
    assert_non_null(strstr(e.message, "does not exist"));
    tu_write_file(dir, "file", "x", 1);
    snprintf(p, sizeof p, "%s/file", dir);
    assert_int_equal(mg_spill_open_dir(p, "spill_dir", &dfd, &e), MG_E_POLICY);
    snprintf(p, sizeof p, "%s/open", dir);
    assert_int_equal(mkdir(p, 0700), 0);
    assert_int_equal(chmod(p, 0777), 0);
    assert_int_equal(mg_spill_open_dir(p, "spill_dir", &dfd, &e), MG_E_POLICY);
    assert_non_null(strstr(e.message, "writable by group or others"));
    assert_int_equal(chmod(p, 0770), 0);
    assert_int_equal(mg_spill_open_dir(p, "spill_dir", &dfd, &e), MG_E_POLICY);
    assert_int_equal(chmod(p, 0700), 0);
    snprintf(q, sizeof q, "%s/link", dir);
    assert_int_equal(symlink(p, q), 0);
    assert_int_equal(mg_spill_open_dir(q, "spill_dir", &dfd, &e), MG_E_POLICY);
    assert_non_null(strstr(e.message, "symlink"));
    assert_int_equal(mg_spill_open_dir("relative", "spill_dir", &dfd, &e), MG_E_POLICY);
    assert_int_equal(dfd, -1);
    assert_int_equal(mg_spill_open_dir(p, "spill_dir", &dfd, &e), MG_OK);
    close(dfd);
    tu_rmtree(dir);
    free(dir);
}

/* ---- the room ------------------------------------------------------------------------ */

static void fake_proc(const char *root, const char *cgroup_lines)
{
    put(root, "proc/self/cgroup", cgroup_lines);
    put(root, "proc/self/statm", "1000 10 5 1 0 100 0\n");
    put(root, "proc/meminfo", "MemTotal:       24683548 kB\nMemFree:  1 kB\n"
                              "MemAvailable:    2000000 kB\nBuffers: 5 kB\n");
}

static void room_cgroup_v2(void **state)
{
    (void)state;
    char *root = tu_mkdtemp();
    char proc[4200], sys[4200];
    snprintf(proc, sizeof proc, "%s/proc", root);
    snprintf(sys, sizeof sys, "%s/sys", root);
    fake_proc(root, "0::/a/b\n");
    put(root, "sys/a/b/memory.max", "1000000000\n");
    put(root, "sys/a/b/memory.current", "600000000\n");
    put(root, "sys/a/b/memory.stat", "anon 400000000\nfile 200000000\ninactive_file 100000000\n"
                                     "active_file 100000000\n");
    put(root, "sys/a/memory.max", "max\n");
    put(root, "sys/a/memory.current", "900000000\n");
    mg_memory_room r;
    mg_memory_room_read(proc, sys, &r);
    /* 1e9 - (6e8 - 1e8 inactive file pages) */
    assert_int_equal(r.cgroup, 500000000u);
    assert_int_equal(r.available, UINT64_C(2000000) * 1024);
    /* A tighter parent wins. */
    put(root, "sys/a/memory.max", "1000000000\n");
    mg_memory_room_read(proc, sys, &r);
    assert_int_equal(r.cgroup, 100000000u);
    /* Usage over the limit: no room, not a wrap. */
    put(root, "sys/a/memory.current", "2000000000\n");
    mg_memory_room_read(proc, sys, &r);
    assert_int_equal(r.cgroup, 0);
    tu_rmtree(root);
    free(root);
}

static void room_cgroup_hybrid_and_v1(void **state)
{
    (void)state;
    char *root = tu_mkdtemp();
    char proc[4200], sys[4200];
    snprintf(proc, sizeof proc, "%s/proc", root);
    snprintf(sys, sizeof sys, "%s/sys", root);
    /* v1 memory controller (here shared with another) and the v2 hybrid mount. */
    fake_proc(root, "9:name=systemd:/\n4:cpu,memory:/job/7\n0::/u\n");
    put(root, "sys/memory/job/7/memory.limit_in_bytes", "262144000\n");
    put(root, "sys/memory/job/7/memory.usage_in_bytes", "100000000\n");
    put(root, "sys/memory/job/7/memory.stat", "cache 5\ninactive_file 7\ntotal_inactive_file "
                                              "50000000\n");
    put(root, "sys/memory/job/memory.limit_in_bytes", "9223372036854771712\n");
    put(root, "sys/memory/job/memory.usage_in_bytes", "100000000\n");
    mg_memory_room r;
    mg_memory_room_read(proc, sys, &r);
    assert_int_equal(r.cgroup, 262144000u - 50000000u);
    put(root, "sys/unified/u/memory.max", "150000000\n");
    put(root, "sys/unified/u/memory.current", "100000000\n");
    mg_memory_room_read(proc, sys, &r);
    assert_int_equal(r.cgroup, 50000000u);
    tu_rmtree(root);
    free(root);
}

static void room_without_limits(void **state)
{
    (void)state;
    char *root = tu_mkdtemp();
    char proc[4200], sys[4200];
    snprintf(proc, sizeof proc, "%s/proc", root);
    snprintf(sys, sizeof sys, "%s/sys", root);
    mg_memory_room r;
    mg_memory_room_read(proc, sys, &r); /* nothing there at all */
    assert_int_equal(r.cgroup, UINT64_MAX);
    assert_int_equal(r.available, UINT64_MAX);
    fake_proc(root, "0::/\n");
    put(root, "sys/x/memory.max", "max\n");
    mg_memory_room_read(proc, sys, &r);
    assert_int_equal(r.cgroup, UINT64_MAX);
    /* No RLIMIT_AS (the tests run without one): no address-space limit. */
    struct rlimit as;
    assert_int_equal(getrlimit(RLIMIT_AS, &as), 0);
    if (as.rlim_cur == RLIM_INFINITY)
        assert_int_equal(r.address_space, UINT64_MAX);
    tu_rmtree(root);
    free(root);
}

static void auto_rule(void **state)
{
    (void)state;
    const uint64_t gib = UINT64_C(1) << 30;
    mg_memory_room r = {UINT64_MAX, UINT64_MAX, 8 * gib};
    /* 8 GiB available, 1 GiB parser budget, 64 MiB margin. */
    assert_false(mg_spill_wanted(7 * gib - MG_SPILL_MARGIN, gib, &r));
    assert_true(mg_spill_wanted(7 * gib - MG_SPILL_MARGIN + 1, gib, &r));
    r.cgroup = 2 * gib; /* the smaller of the cgroup's room and MemAvailable */
    assert_true(mg_spill_wanted(gib, gib, &r));
    assert_false(mg_spill_wanted(gib - MG_SPILL_MARGIN, gib, &r));
    /* RLIMIT_AS is not part of the rule: a file mapping counts against it too. */
    r.address_space = 1;
    assert_false(mg_spill_wanted(gib - MG_SPILL_MARGIN, gib, &r));
    /* Nothing known: never spill; a size that wraps: spill. */
    mg_memory_room none = {UINT64_MAX, UINT64_MAX, UINT64_MAX};
    assert_false(mg_spill_wanted(100 * gib, gib, &none));
    assert_true(mg_spill_wanted(UINT64_MAX - 1, gib, &none));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(copy_is_hashed_read_only_and_unnamed),
        cmocka_unit_test(size_and_limits),
        cmocka_unit_test(bad_folders_are_policy_errors),
        cmocka_unit_test(room_cgroup_v2),
        cmocka_unit_test(room_cgroup_hybrid_and_v1),
        cmocka_unit_test(room_without_limits),
        cmocka_unit_test(auto_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
