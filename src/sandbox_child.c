/*
 * The confined side of the sandbox (sandbox_child.h): confinement, the parse loop, and the
 * parser helper's main(). Kept apart from sandbox.c so that the helper executable links
 * only what parsing needs (no libseccomp, no libcurl: each shared library costs its exec).
 */
#define _GNU_SOURCE
#include "sandbox_child.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifdef MG_SANDBOX_TEST_TRIGGERS
#include <netinet/in.h>
#endif

#include "format/format.h"
#include "sandbox_wire.h"
#include "util/checked.h"
#include "util/fsutil.h"

const mg_format *const mg_sandbox_formats[] = {
    &mg_format_pickle,       &mg_format_safetensors,   &mg_format_npy,
    &mg_format_npz,          &mg_format_gguf,          &mg_format_mxnet_params,
    &mg_format_mxnet_symbol, &mg_format_safetensors_index,
};
const size_t mg_sandbox_format_count = sizeof mg_sandbox_formats / sizeof mg_sandbox_formats[0];

/* ---- the parse step, the same confined or not ----------------------------------------- */

#ifdef MG_SANDBOX_TEST_TRIGGERS
/* Test-only: misbehave when the file holds "MG_TEST_TRIGGER_<what>". */
static bool trigger_is(const uint8_t *p, size_t rest, const char *what)
{
    size_t n = strlen(what);
    return rest >= n && memcmp(p, what, n) == 0;
}

static mg_status test_trigger(const uint8_t *data, size_t len, mg_error *err)
{
    static const char mark[] = "MG_TEST_TRIGGER_";
    const uint8_t *p = data != NULL ? memmem(data, len, mark, sizeof mark - 1) : NULL;
    if (p == NULL)
        return MG_OK;
    p += sizeof mark - 1;
    size_t rest = len - (size_t)(p - data);
    if (trigger_is(p, rest, "crash")) {
        volatile uintptr_t where = 8; /* an address that is never mapped */
        *(volatile int *)where = 1;
    } else if (trigger_is(p, rest, "loop")) {
        for (volatile unsigned long i = 0;; i++)
            ;
    } else if (trigger_is(p, rest, "alloc")) {
        for (;;) {
            char *b = malloc(16u << 20);
            if (b == NULL)
                return mg_fail(err, MG_E_LIMIT, "out of memory (test trigger)");
            memset(b, 1, 16u << 20);
        }
    } else if (trigger_is(p, rest, "open")) {
        int fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
        if (fd >= 0)
            close(fd);
        return mg_fail(err, MG_E_FORMAT, "test trigger: open was not stopped");
    } else if (trigger_is(p, rest, "socket")) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0) {
            struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(9),
                                    .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
            (void)connect(fd, (struct sockaddr *)&a, sizeof a);
            close(fd);
        }
        return mg_fail(err, MG_E_FORMAT, "test trigger: socket was not stopped");
    } else if (trigger_is(p, rest, "execve")) {
        char *argv[] = {(char *)"/bin/true", NULL};
        execve("/bin/true", argv, environ);
        return mg_fail(err, MG_E_FORMAT, "test trigger: execve was not stopped");
    }
    return MG_OK;
}
#endif

mg_status mg_sandbox_parse_one(const mg_verified_file *f, mg_parse_result *out, mg_error *err)
{
    /* An empty file has no region memory: the parser gets a valid pointer all the same. */
    const uint8_t *data = f->region.data != NULL ? f->region.data : (const uint8_t *)"";
    /* The child parses into a result of its own: it charges the load's budget all the same. */
    if (out != &f->parsed && out->budget == NULL)
        out->budget = f->parsed.budget;
    /* The block CRCs the reader computed from the same bytes (region.h), for npz. */
    out->block_crc = f->region.block_crc;
    out->block_crc_count = f->region.block_crc_count;
#ifdef MG_SANDBOX_TEST_TRIGGERS
    mg_status t = test_trigger(data, f->region.len, err);
    if (t != MG_OK)
        return t;
#endif
    return f->format->parse(data, f->region.len, out, err);
}

/* ---- the answer: a buffered writer on the one descriptor ---------------------------- */

#define PIPE_BUF_BYTES (64u << 10)

typedef struct pipe_out {
    int fd;
    size_t len;
    uint8_t buf[PIPE_BUF_BYTES];
} pipe_out;

static bool pipe_flush(pipe_out *o)
{
    bool ok = mg_write_all(o->fd, o->buf, o->len);
    o->len = 0;
    return ok;
}

static bool pipe_write(void *ctx, const void *p, size_t n)
{
    pipe_out *o = ctx;
    if (n > sizeof o->buf - o->len) {
        if (!pipe_flush(o))
            return false;
        if (n >= sizeof o->buf)
            return mg_write_all(o->fd, p, n);
    }
    memcpy(o->buf + o->len, p, n);
    o->len += n;
    return true;
}

/* ---- confinement ---------------------------------------------------------------------- */

static _Noreturn void child_refuse(int fd, uint32_t step, int e)
{
    uint8_t b[12];
    uint32_t v[3] = {MG_SANDBOX_HELLO_NO, step, (uint32_t)e};
    for (int i = 0; i < 3; i++) {
        for (int k = 0; k < 4; k++)
            b[4 * i + k] = (uint8_t)(v[i] >> (8 * k));
    }
    (void)mg_write_all(fd, b, sizeof b);
    _exit(3);
}

static bool close_others(void)
{
#ifdef MG_SANITIZE
    int keep_stderr = 1;
#else
    int keep_stderr = 0;
#endif
    if (close_range(0, keep_stderr ? 1 : 2, 0) == 0 &&
        close_range(MG_SANDBOX_FD + 1, ~0u, 0) == 0)
        return true;
    if (errno != ENOSYS)
        return false;
    struct rlimit rl;
    long max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                   ? (long)rl.rlim_cur : 65536;
    for (long fd = 0; fd < max; fd++) {
        if (fd != MG_SANDBOX_FD && !(keep_stderr && fd == 2))
            close((int)fd);
    }
    return true;
}

_Noreturn void mg_sandbox_confine_and_serve(const mg_confine_args *a, mg_verified_file *files,
                                            size_t count)
{
    int fd = a->fd;
    if (fd != MG_SANDBOX_FD) {
        if (dup2(fd, MG_SANDBOX_FD) < 0)
            child_refuse(fd, MG_STEP_FDS, errno);
        fd = MG_SANDBOX_FD;
    }
    if (!close_others())
        child_refuse(fd, MG_STEP_FDS, errno);
    if ((!a->helper && prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) || getppid() != a->parent)
        child_refuse(fd, MG_STEP_PARENT, errno);
    (void)prctl(PR_SET_DUMPABLE, 0);
    struct rlimit zero = {0, 0};
    struct rlimit cpu = {(rlim_t)a->cpu_seconds, (rlim_t)a->cpu_seconds + 1};
    if (setrlimit(RLIMIT_CORE, &zero) != 0 || setrlimit(RLIMIT_FSIZE, &zero) != 0 ||
        setrlimit(RLIMIT_CPU, &cpu) != 0)
        child_refuse(fd, MG_STEP_RLIMIT, errno);
    if (a->as_limit != 0) {
        struct rlimit as = {(rlim_t)a->as_limit, (rlim_t)a->as_limit};
        if (setrlimit(RLIMIT_AS, &as) != 0)
            child_refuse(fd, MG_STEP_RLIMIT, errno);
    }
    /* libzip turns ZIP times into time_t with mktime, and glibc looks at /etc/localtime
     * again on every call while TZ is unset. The parent loaded the zone (tzset before the
     * fork); naming that same zone in TZ makes glibc keep what it loaded. */
    if (getenv("TZ") == NULL && setenv("TZ", ":/etc/localtime", 1) != 0)
        child_refuse(fd, MG_STEP_RLIMIT, errno);
    /* A new user namespace where the kernel allows it: no capability over anything of the
     * parent's, even when it runs as root. Optional; the filter does not depend on it. No
     * network namespace: creating one (and the kernel tearing it down afterwards) added
     * about 2 ms to every load here, and the filter already forbids socket(). */
    if (!a->helper)
        (void)unshare(CLONE_NEWUSER);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        child_refuse(fd, MG_STEP_NNP, errno);
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, a->filter, 0, 0) != 0)
        child_refuse(fd, MG_STEP_SECCOMP, errno);

    /* Confined from here on: nothing but writes on `fd` and memory. */
    static pipe_out out; /* static: 64 KiB is no stack object */
    out.fd = fd;
    out.len = 0;
    mg_wire_out w = {pipe_write, &out};
    const uint32_t ok = MG_SANDBOX_HELLO_OK;
    uint8_t hello[4] = {(uint8_t)ok, (uint8_t)(ok >> 8), (uint8_t)(ok >> 16), (uint8_t)(ok >> 24)};
    if (!pipe_write(&out, hello, sizeof hello) || !pipe_flush(&out))
        _exit(1);
    for (size_t i = 0; i < count; i++) {
        if (files[i].format == NULL)
            continue;
        mg_parse_result res;
        memset(&res, 0, sizeof res);
        mg_error e;
        mg_error_clear(&e);
        mg_status s = mg_sandbox_parse_one(&files[i], &res, &e);
        bool sent = s == MG_OK ? mg_wire_put_result(&w, &res)
                               : mg_wire_put_error(&w, s, e.message);
        if (!sent || !pipe_flush(&out))
            _exit(1);
        if (s != MG_OK)
            _exit(0);
        /* The parse result is left for the process exit to reclaim. */
    }
    const uint32_t end = MG_SANDBOX_TABLES_END;
    uint8_t mark[4] = {(uint8_t)end, (uint8_t)(end >> 8), (uint8_t)(end >> 16), (uint8_t)(end >> 24)};
    if (!pipe_write(&out, mark, sizeof mark) || !pipe_flush(&out))
        _exit(1);
    close(fd); /* the loader sees the end now, not after this process's teardown */
    _exit(0);
}

bool mg_sandbox_vm_bytes(uint64_t *out)
{
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    char buf[128];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    uint64_t pages = 0;
    for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++) {
        if (!mg_mul_u64(pages, 10, &pages) || !mg_add_u64(pages, (uint64_t)(buf[i] - '0'), &pages))
            return false;
    }
    long ps = sysconf(_SC_PAGESIZE);
    return pages != 0 && mg_mul_u64(pages, ps > 0 ? (uint64_t)ps : 4096, out);
}


/* ---- the parser helper (modelgate-parse) ----------------------------------------------- */

/*
 * The helper is a fresh process image: none of the loader's memory is in it. Before it is
 * confined it only reads the loader's request and maps the sealed memfds it was handed; not
 * a byte of a model is looked at until the filter is on. Any problem with the request ends it
 * without a word (exit 2), and the loader then parses in a forked child.
 */

static bool read_full(int fd, void *p, size_t n)
{
    uint8_t *d = p;
    while (n > 0) {
        ssize_t r = read(fd, d, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        d += r;
        n -= (size_t)r;
    }
    return true;
}

static bool get_u32(int fd, uint32_t *v)
{
    uint8_t b[4];
    if (!read_full(fd, b, 4))
        return false;
    *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    return true;
}

static bool get_u64(int fd, uint64_t *v)
{
    uint32_t lo, hi;
    if (!get_u32(fd, &lo) || !get_u32(fd, &hi))
        return false;
    *v = (uint64_t)hi << 32 | lo;
    return true;
}

/* Receive `want` descriptors in order into fds[]. */
static bool recv_fds(int fd, int *fds, size_t want)
{
    size_t got = 0;
    while (got < want) {
        union {
            struct cmsghdr h;
            char b[CMSG_SPACE(MG_SANDBOX_FDS_PER_MSG * sizeof(int))];
        } cbuf;
        uint8_t byte;
        struct iovec iov = {&byte, 1};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.b,
                             .msg_controllen = sizeof cbuf.b};
        ssize_t r = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
        if (r < 0 && errno == EINTR)
            continue;
        if (r != 1 || (msg.msg_flags & MSG_CTRUNC))
            return false;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
                c->cmsg_len < CMSG_LEN(0))
                return false;
            size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t k = 0; k < n; k++) {
                int v;
                memcpy(&v, CMSG_DATA(c) + k * sizeof(int), sizeof v);
                if (got < want)
                    fds[got++] = v;
                else
                    close(v);
            }
        }
    }
    return true;
}

/* Map a sealed memfd of at least `len` bytes read-only. */
static bool map_sealed(int fd, size_t len, mg_region *r)
{
    struct stat st;
    int seals = fcntl(fd, F_GET_SEALS);
    int need = F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
    if (seals < 0 || (seals & need) != need || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        st.st_size < 0 || (uint64_t)st.st_size < len)
        return false;
    void *p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return false;
    r->data = p;
    r->len = len;
    r->map_len = len;
    return true;
}

int mg_sandbox_helper_main(int argc, char **argv, mg_helper_load_zip_fn load_zip)
{
    const int fd = MG_SANDBOX_FD;
    /* Nothing but the socket (and standard error in a sanitizer build) from here on. */
#ifdef MG_SANITIZE
    (void)close_range(0, 1, 0);
#else
    (void)close_range(0, 2, 0);
#endif
    (void)close_range(MG_SANDBOX_FD + 1, ~0u, 0);
    /* What needs no request is done while the loader still reads the files: what a parser
     * may want from the file system (jansson's hash seed from /dev/urandom, the time zone
     * for libzip's mktime), and a user namespace of its own where the kernel allows. */
    json_object_seed(0);
    if (getenv("TZ") == NULL)
        (void)setenv("TZ", ":/etc/localtime", 1);
    tzset();
    (void)unshare(CLONE_NEWUSER);
    bool zip_loaded = load_zip == NULL;
    if (!zip_loaded && argc == 2 && strcmp(argv[1], "--zip") == 0)
        zip_loaded = load_zip();
    uint32_t magic, proto, parent, count, filter_len, flags;
    uint64_t as_add, cpu, budget_limit, budget_used;
    if (!get_u32(fd, &magic) || magic != MG_SANDBOX_REQUEST || !get_u32(fd, &proto) ||
        proto != MG_SANDBOX_PROTOCOL || !get_u32(fd, &parent) || !get_u32(fd, &count) ||
        !get_u32(fd, &filter_len) || !get_u32(fd, &flags) || !get_u64(fd, &as_add) ||
        !get_u64(fd, &cpu) || !get_u64(fd, &budget_limit) || !get_u64(fd, &budget_used))
        _exit(2);
    if (count == 0 || count > MG_MAX_FILES || filter_len == 0 ||
        filter_len > MG_SANDBOX_MAX_FILTER || (pid_t)parent != getppid())
        _exit(2);
    static struct sock_filter prog[MG_SANDBOX_MAX_FILTER];
    if (!read_full(fd, prog, (size_t)filter_len * sizeof prog[0]))
        _exit(2);
    mg_verified_file *files = calloc(count, sizeof *files);
    uint32_t *has_fd = calloc(count, sizeof *has_fd);
    int *fds = calloc(count, sizeof *fds);
    if (files == NULL || has_fd == NULL || fds == NULL)
        _exit(2);
    static mg_budget budget;
    budget.limit = budget_limit;
    budget.used = budget_used;
    size_t nfd = 0;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t fmt;
        uint64_t len, crcs;
        if (!get_u32(fd, &fmt) || fmt >= mg_sandbox_format_count || !get_u32(fd, &has_fd[i]) ||
            has_fd[i] > 1 || !get_u64(fd, &len) || len > MG_MAX_MODEL_FILE_BYTES ||
            len > SIZE_MAX || (len > 0) != (has_fd[i] == 1) || !get_u64(fd, &crcs) ||
            crcs > len / MG_REGION_CRC_BLOCK + 1)
            _exit(2);
        files[i].format = mg_sandbox_formats[fmt];
        if (!zip_loaded && (files[i].format == &mg_format_npz ||
                            files[i].format == &mg_format_pickle)) {
            if (!load_zip())
                _exit(2);
            zip_loaded = true;
        }
        files[i].region.len = (size_t)len;
        files[i].parsed.budget = &budget;
        if (crcs > 0) {
            uint32_t *c = calloc((size_t)crcs, sizeof *c);
            if (c == NULL || !read_full(fd, c, (size_t)crcs * sizeof *c))
                _exit(2);
            for (size_t k = 0; k < crcs; k++) { /* little-endian on the wire */
                uint8_t *b = (uint8_t *)&c[k];
                c[k] = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                       (uint32_t)b[3] << 24;
            }
            files[i].region.block_crc = c;
            files[i].region.block_crc_count = (size_t)crcs;
        }
        nfd += has_fd[i];
    }
    if (!recv_fds(fd, fds, nfd))
        _exit(2);
    for (uint32_t i = 0, k = 0; i < count; i++) {
        if (!has_fd[i])
            continue;
        size_t len = files[i].region.len;
        files[i].region.len = 0;
        if (!map_sealed(fds[k], len, &files[i].region))
            _exit(2);
        close(fds[k++]);
    }
    uint64_t vm = 0, as_limit = 0;
    if (!(flags & MG_REQ_NO_AS_LIMIT)) {
        if (!mg_sandbox_vm_bytes(&vm))
            _exit(2);
        if (!mg_add_u64(vm, as_add, &as_limit))
            as_limit = 0; /* beyond any address space: no cap, as in the loader */
    }
    struct sock_fprog fprog = {(unsigned short)filter_len, prog};
    mg_confine_args a = {fd, (pid_t)parent, &fprog, as_limit, cpu, true};
    mg_sandbox_confine_and_serve(&a, files, count);
}
