#define _GNU_SOURCE
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <limits.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#ifdef MG_SANDBOX_TEST_TRIGGERS
#include <netinet/in.h>
#include <sys/socket.h>
#endif

#include "sandbox_wire.h"
#include "util/checked.h"

/* The child's pipe descriptor: every other one is closed before a byte is parsed. */
#define CHILD_FD 3

#define HELLO_OK 0x4b4f474du /* "MGOK": confined, parsing starts */
#define HELLO_NO 0x4f4e474du /* "MGNO": u32 step, u32 errno follow */

#ifdef MG_SANDBOX_TEST_TRIGGERS
#define DEFAULT_MEMORY (UINT64_C(256) << 20)
#define DEFAULT_CPU_BASE 2u
#else
#define DEFAULT_MEMORY (UINT64_C(16) << 30)
#define DEFAULT_CPU_BASE 60u
#endif
#define CPU_SECONDS_PER_GIB 4u

enum setup_step { STEP_FDS = 1, STEP_PARENT, STEP_RLIMIT, STEP_NNP, STEP_SECCOMP };

static const char *step_name(uint32_t step)
{
    switch (step) {
    case STEP_FDS: return "closing descriptors";
    case STEP_PARENT: return "parent-death signal";
    case STEP_RLIMIT: return "resource limits";
    case STEP_NNP: return "no_new_privs";
    case STEP_SECCOMP: return "seccomp filter";
    default: return "setup";
    }
}

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

static mg_status parse_one(const mg_verified_file *f, mg_parse_result *out, mg_error *err)
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

static mg_status parse_in_process(mg_verified_file *files, size_t count, mg_error *err)
{
    for (size_t i = 0; i < count; i++) {
        if (files[i].format == NULL)
            continue;
        mg_status s = parse_one(&files[i], &files[i].parsed, err);
        if (s != MG_OK) {
            mg_error_set_file(err, files[i].path);
            return s;
        }
    }
    return MG_OK;
}

/* ---- buffered pipe ends ---------------------------------------------------------------- */

#define PIPE_BUF_BYTES (64u << 10)

typedef struct pipe_out {
    int fd;
    size_t len;
    uint8_t buf[PIPE_BUF_BYTES];
} pipe_out;

static bool write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

static bool pipe_flush(pipe_out *o)
{
    bool ok = write_all(o->fd, o->buf, o->len);
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
            return write_all(o->fd, p, n);
    }
    memcpy(o->buf + o->len, p, n);
    o->len += n;
    return true;
}

/* The parent's end. Its buffer is mapped after the fork, so the child never shares it: the
 * parent fills it without a copy-on-write fault per page (each one a TLB shootdown). */
#define PIPE_IN_BYTES ((size_t)4 << 20)

typedef struct pipe_in {
    int fd;
    bool ended; /* end of stream: the child closed its end (it exited) */
    bool failed;
    bool ran_out; /* a read wanted more than the child sent */
    size_t pos, len;
    uint8_t *buf; /* PIPE_IN_BYTES */
} pipe_in;

static ssize_t read_some(pipe_in *in, uint8_t *p, size_t n)
{
    for (;;) {
        ssize_t r = read(in->fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            in->ended = true;
        if (r < 0)
            in->failed = true;
        return r;
    }
}

static bool pipe_read(void *ctx, void *p, size_t n)
{
    pipe_in *in = ctx;
    uint8_t *dst = p;
    while (n > 0) {
        if (in->pos < in->len) {
            size_t k = in->len - in->pos < n ? in->len - in->pos : n;
            memcpy(dst, in->buf + in->pos, k);
            in->pos += k;
            dst += k;
            n -= k;
            continue;
        }
        ssize_t r = n >= PIPE_IN_BYTES ? read_some(in, dst, n)
                                       : read_some(in, in->buf, PIPE_IN_BYTES);
        if (r <= 0) {
            in->ran_out = true;
            return false;
        }
        if (n >= PIPE_IN_BYTES) {
            dst += r;
            n -= (size_t)r;
        } else {
            in->pos = 0;
            in->len = (size_t)r;
        }
    }
    return true;
}

/* ---- the child ------------------------------------------------------------------------- */

/* Argument 0 equals `fd` (spelled out: the SCMP_A0 shorthand leaves a field unset). */
static struct scmp_arg_cmp fd_is(int fd)
{
    struct scmp_arg_cmp c = {0, SCMP_CMP_EQ, (scmp_datum_t)fd, 0};
    return c;
}

static scmp_filter_ctx build_filter(void)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
    if (ctx == NULL)
        return NULL;
    int rc = 0;
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(write), 1, fd_is(CHILD_FD));
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
                           SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
                           SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    /* sysinfo: glibc's qsort sizes its buffer by the machine's memory (read-only facts). */
    static const int plain[] = {SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(brk),
                                SCMP_SYS(madvise), SCMP_SYS(sysinfo), SCMP_SYS(exit),
                                SCMP_SYS(exit_group)};
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
        rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, plain[i], 0);
#ifdef MG_SANITIZE
    /* ASan/UBSan builds: the runtime reports on standard error and may yield or ask for
     * its own id while it does; nothing here opens, connects, forks or signals. */
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(write), 1, fd_is(2));
    static const int asan[] = {SCMP_SYS(sched_yield), SCMP_SYS(getpid), SCMP_SYS(gettid),
                               SCMP_SYS(futex), SCMP_SYS(sigaltstack),
                               SCMP_SYS(rt_sigprocmask)};
    for (size_t i = 0; i < sizeof asan / sizeof asan[0]; i++)
        rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, asan[i], 0);
#endif
    if (rc != 0) {
        seccomp_release(ctx);
        return NULL;
    }
    return ctx;
}

/*
 * The filter as a BPF program, generated once per process (libseccomp's generation costs
 * more than the rest of the child's setup) and installed by the child with one prctl.
 */
static pthread_once_t filter_once = PTHREAD_ONCE_INIT;
static struct sock_filter *filter_prog;
static unsigned short filter_len;

static void filter_generate(void)
{
    scmp_filter_ctx ctx = build_filter();
    if (ctx == NULL)
        return;
    int fd = memfd_create("modelgate-bpf", MFD_CLOEXEC);
    struct stat st;
    if (fd >= 0 && seccomp_export_bpf(ctx, fd) == 0 && fstat(fd, &st) == 0 &&
        st.st_size > 0 && st.st_size % (off_t)sizeof(struct sock_filter) == 0 &&
        st.st_size / (off_t)sizeof(struct sock_filter) <= USHRT_MAX) {
        struct sock_filter *p = malloc((size_t)st.st_size);
        if (p != NULL && pread(fd, p, (size_t)st.st_size, 0) == st.st_size) {
            filter_prog = p;
            filter_len = (unsigned short)(st.st_size / (off_t)sizeof(struct sock_filter));
        } else {
            free(p);
        }
    }
    if (fd >= 0)
        close(fd);
    seccomp_release(ctx);
}

/* Generate the filter on a thread of its own, once per process, while the files are read. */
static atomic_bool prepare_started;

static void *prepare_main(void *arg)
{
    (void)arg;
    (void)pthread_once(&filter_once, filter_generate);
    return NULL;
}

void mg_sandbox_prepare(void)
{
    if (atomic_exchange(&prepare_started, true))
        return;
    pthread_attr_t attr;
    pthread_t t;
    if (pthread_attr_init(&attr) != 0)
        return;
    /* (If the thread cannot be made, the parse generates the filter itself.) */
    if (pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) == 0)
        (void)pthread_create(&t, &attr, prepare_main, NULL);
    pthread_attr_destroy(&attr);
}

static _Noreturn void child_refuse(int fd, uint32_t step, int e)
{
    uint8_t b[12];
    uint32_t v[3] = {HELLO_NO, step, (uint32_t)e};
    for (int i = 0; i < 3; i++) {
        for (int k = 0; k < 4; k++)
            b[4 * i + k] = (uint8_t)(v[i] >> (8 * k));
    }
    (void)write_all(fd, b, sizeof b);
    _exit(3);
}

static bool close_others(void)
{
#ifdef MG_SANITIZE
    int keep_stderr = 1;
#else
    int keep_stderr = 0;
#endif
    if (close_range(0, keep_stderr ? 1 : 2, 0) == 0 && close_range(CHILD_FD + 1, ~0u, 0) == 0)
        return true;
    if (errno != ENOSYS)
        return false;
    struct rlimit rl;
    long max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                   ? (long)rl.rlim_cur : 65536;
    for (long fd = 0; fd < max; fd++) {
        if (fd != CHILD_FD && !(keep_stderr && fd == 2))
            close((int)fd);
    }
    return true;
}

typedef struct child_args {
    int fd;
    pid_t parent;
    const struct sock_fprog *filter;
    uint64_t as_limit; /* 0: none */
    uint64_t cpu_seconds;
} child_args;

static _Noreturn void child_main(const child_args *a, mg_verified_file *files, size_t count)
{
    int fd = a->fd;
    if (fd != CHILD_FD) {
        if (dup2(fd, CHILD_FD) < 0)
            child_refuse(fd, STEP_FDS, errno);
        fd = CHILD_FD;
    }
    if (!close_others())
        child_refuse(fd, STEP_FDS, errno);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != a->parent)
        child_refuse(fd, STEP_PARENT, errno);
    (void)prctl(PR_SET_DUMPABLE, 0);
    struct rlimit zero = {0, 0};
    struct rlimit cpu = {(rlim_t)a->cpu_seconds, (rlim_t)a->cpu_seconds + 1};
    if (setrlimit(RLIMIT_CORE, &zero) != 0 || setrlimit(RLIMIT_FSIZE, &zero) != 0 ||
        setrlimit(RLIMIT_CPU, &cpu) != 0)
        child_refuse(fd, STEP_RLIMIT, errno);
    if (a->as_limit != 0) {
        struct rlimit as = {(rlim_t)a->as_limit, (rlim_t)a->as_limit};
        if (setrlimit(RLIMIT_AS, &as) != 0)
            child_refuse(fd, STEP_RLIMIT, errno);
    }
    /* libzip turns ZIP times into time_t with mktime, and glibc looks at /etc/localtime
     * again on every call while TZ is unset. The parent loaded the zone (tzset before the
     * fork); naming that same zone in TZ makes glibc keep what it loaded. */
    if (getenv("TZ") == NULL && setenv("TZ", ":/etc/localtime", 1) != 0)
        child_refuse(fd, STEP_RLIMIT, errno);
    /* A new user namespace where the kernel allows it: no capability over anything of the
     * parent's, even when it runs as root. Optional; the filter does not depend on it. No
     * network namespace: creating one (and the kernel tearing it down afterwards) added
     * about 2 ms to every load here, and the filter already forbids socket(). */
    (void)unshare(CLONE_NEWUSER);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        child_refuse(fd, STEP_NNP, errno);
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, a->filter, 0, 0) != 0)
        child_refuse(fd, STEP_SECCOMP, errno);

    /* Confined from here on: nothing but writes on `fd` and memory. */
    static pipe_out out; /* static: 64 KiB is no stack object */
    out.fd = fd;
    out.len = 0;
    mg_wire_out w = {pipe_write, &out};
    uint8_t hello[4] = {(uint8_t)HELLO_OK, (uint8_t)(HELLO_OK >> 8), (uint8_t)(HELLO_OK >> 16),
                        (uint8_t)(HELLO_OK >> 24)};
    if (!pipe_write(&out, hello, sizeof hello) || !pipe_flush(&out))
        _exit(1);
    for (size_t i = 0; i < count; i++) {
        if (files[i].format == NULL)
            continue;
        mg_parse_result res;
        memset(&res, 0, sizeof res);
        mg_error e;
        mg_error_clear(&e);
        mg_status s = parse_one(&files[i], &res, &e);
        bool ok = s == MG_OK ? mg_wire_put_result(&w, &res)
                             : mg_wire_put_error(&w, s, e.message);
        if (!ok || !pipe_flush(&out))
            _exit(1);
        if (s != MG_OK)
            _exit(0);
        /* The parse result is left for the process exit to reclaim. */
    }
    _exit(0);
}

/* ---- the parent ------------------------------------------------------------------------ */

/* The address space this process has mapped now (the child starts with the same). */
static bool current_vm_bytes(uint64_t *out)
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

static mg_status wait_child(pid_t pid, int *status)
{
    for (;;) {
        pid_t r = waitpid(pid, status, 0);
        if (r == pid)
            return MG_OK;
        if (r < 0 && errno == EINTR)
            continue;
        return MG_E_IO;
    }
}

/* How the child ended (a wait status), as the error of the file it was parsing. */
static mg_status child_fate_from(int st, const mg_sandbox_limits *lim, mg_error *err)
{
    if (WIFSIGNALED(st)) {
        int sig = WTERMSIG(st);
        if (sig == SIGSYS)
            return mg_fail(err, MG_E_FORMAT, "the confined parser was stopped: it made a "
                           "forbidden system call (seccomp)");
        if (sig == SIGXCPU || sig == SIGKILL)
            return mg_fail(err, MG_E_LIMIT, "the confined parser was stopped: it ran out of "
                           "its CPU time (%llu s) or memory",
                           (unsigned long long)lim->cpu_seconds);
        return mg_fail(err, MG_E_FORMAT, "the confined parser crashed (signal %d, %s)", sig,
                       strsignal(sig));
    }
    return mg_fail(err, MG_E_FORMAT, "the confined parser ended without a table (exit %d)",
                   WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

/* Read what the child sends until it ends or the buffer is full; true when it ended. */
static bool pipe_prefill(pipe_in *in)
{
    while (in->len < PIPE_IN_BYTES) {
        ssize_t r = read_some(in, in->buf + in->len, PIPE_IN_BYTES - in->len);
        if (r <= 0)
            return in->ended;
        in->len += (size_t)r;
    }
    return false;
}

static mg_status read_hello(pipe_in *in, mg_error *err)
{
    uint8_t b[4];
    if (!pipe_read(in, b, 4))
        return mg_fail(err, MG_E_LIMIT, "cannot confine the parser: the child ended before "
                       "it was confined");
    uint32_t v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                 (uint32_t)b[3] << 24;
    if (v == HELLO_OK)
        return MG_OK;
    uint8_t d[8];
    uint32_t step = 0, e = 0;
    if (v == HELLO_NO && pipe_read(in, d, 8)) {
        step = (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24;
        e = (uint32_t)d[4] | (uint32_t)d[5] << 8 | (uint32_t)d[6] << 16 | (uint32_t)d[7] << 24;
    }
    return mg_fail(err, MG_E_LIMIT, "cannot confine the parser (sandbox required): %s failed: %s",
                   step_name(step), strerror((int)e));
}

static mg_status parse_confined(mg_verified_file *files, size_t count,
                                const mg_sandbox_limits *lim, mg_error *err)
{
    /* jansson seeds its hash function from /dev/urandom on first use: do it here, where
     * opening a file is allowed. */
    json_object_seed(0);
    tzset();
    uint64_t vm = 0, as_limit = 0;
    if (!current_vm_bytes(&vm))
        return mg_fail(err, MG_E_LIMIT, "cannot confine the parser: cannot read this process's "
                       "size from /proc/self/statm");
#ifndef MG_SANITIZE
    /* (Sanitizer builds: ASan reserves terabytes of shadow memory; no address-space cap.) */
    if (!mg_add_u64(vm, lim->memory_bytes, &as_limit))
        as_limit = 0;
#endif
    if (pthread_once(&filter_once, filter_generate) != 0 || filter_prog == NULL)
        return mg_fail(err, MG_E_LIMIT, "cannot confine the parser: cannot build the seccomp "
                       "filter");
    struct sock_fprog prog = {filter_len, filter_prog};
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return mg_fail(err, MG_E_LIMIT, "cannot confine the parser: pipe: %s", strerror(errno));
    child_args a = {p[1], getpid(), &prog, as_limit, lim->cpu_seconds};
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        child_main(&a, files, count);
    }
    int fork_errno = errno;
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        return mg_fail(err, MG_E_LIMIT, "cannot confine the parser: fork: %s",
                       strerror(fork_errno));
    }
    /* From here until the child has exited, every page this process writes that the child
     * also maps costs a copy (and, on a virtual machine, a costly TLB shootdown): the
     * child's output goes into memory mapped after the fork; when all of it fits, the
     * child is reaped before the table is decoded into this process's heap. */
    pipe_in in_ = {.fd = p[0]};
    pipe_in *in = &in_;
    void *buf = mmap(NULL, PIPE_IN_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    if (buf == MAP_FAILED) {
        close(p[0]);
        kill(pid, SIGKILL);
        int st;
        (void)wait_child(pid, &st);
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    }
    in->buf = buf;
    bool reaped = false;
    int status = 0;
    if (pipe_prefill(in))
        reaped = wait_child(pid, &status) == MG_OK;
    mg_wire_in wi = {pipe_read, in};
    mg_status s = read_hello(in, err);
    for (size_t i = 0; s == MG_OK && i < count; i++) {
        if (files[i].format == NULL)
            continue;
        s = mg_wire_get_result(&wi, files[i].region.len, &files[i].parsed, err);
        if (s != MG_OK && in->ran_out && in->ended) {
            /* The child is gone before its table was complete: say how. */
            if (!reaped)
                reaped = wait_child(pid, &status) == MG_OK;
            mg_error_clear(err);
            s = reaped ? child_fate_from(status, lim, err)
                       : mg_fail(err, MG_E_FORMAT, "the confined parser ended without a table");
        }
        if (s != MG_OK)
            mg_error_set_file(err, files[i].path);
    }
    if (s == MG_OK) {
        uint8_t extra;
        if (pipe_read(in, &extra, 1) || !in->ended)
            s = mg_fail(err, MG_E_FORMAT, "the confined parser sent more than its tables");
    }
    close(p[0]);
    munmap(buf, PIPE_IN_BYTES);
    mg_status w = MG_OK;
    if (!reaped) {
        if (s != MG_OK)
            kill(pid, SIGKILL);
        w = wait_child(pid, &status);
    }
    /* All tables arrived and checked: the child must also have ended cleanly (an
     * application that ignores SIGCHLD leaves no status to look at). */
    if (s == MG_OK && w == MG_OK && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        mg_error_clear(err);
        s = child_fate_from(status, lim, err);
    }
    return s;
}

mg_status mg_sandbox_parse_files(mg_verified_file *files, size_t count, bool confined,
                                 const mg_sandbox_limits *limits, mg_error *err)
{
    bool any = false;
    for (size_t i = 0; i < count; i++) {
        mg_status s = mg_region_seal(&files[i].region, err);
        if (s != MG_OK) {
            mg_error_set_file(err, files[i].path);
            return s;
        }
        any = any || files[i].format != NULL;
    }
    if (!any)
        return MG_OK;
    if (!confined)
        return parse_in_process(files, count, err);
    uint64_t total = 0;
    for (size_t i = 0; i < count; i++)
        total += files[i].region.len; /* each <= 1 TiB, count <= MG_MAX_FILES: no wrap */
    mg_sandbox_limits lim = {DEFAULT_MEMORY, DEFAULT_CPU_BASE + CPU_SECONDS_PER_GIB * (total >> 30)};
    if (limits != NULL && limits->memory_bytes != 0)
        lim.memory_bytes = limits->memory_bytes;
    if (limits != NULL && limits->cpu_seconds != 0)
        lim.cpu_seconds = limits->cpu_seconds;
    return parse_confined(files, count, &lim, err);
}
