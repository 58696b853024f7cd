#define _GNU_SOURCE
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <dlfcn.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <limits.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>


#include "sandbox_child.h"
#include "sandbox_wire.h"
#include "util/checked.h"
#include "util/fsutil.h"

#ifdef MG_SANDBOX_TEST_TRIGGERS
#define DEFAULT_MEMORY (UINT64_C(256) << 20)
#define DEFAULT_CPU_BASE 2u
#else
#define DEFAULT_MEMORY (UINT64_C(16) << 30)
#define DEFAULT_CPU_BASE 60u
#endif
#define CPU_SECONDS_PER_GIB 4u


static const char *step_name(uint32_t step)
{
    switch (step) {
    case MG_STEP_FDS: return "closing descriptors";
    case MG_STEP_PARENT: return "parent-death signal";
    case MG_STEP_RLIMIT: return "resource limits";
    case MG_STEP_NNP: return "no_new_privs";
    case MG_STEP_SECCOMP: return "seccomp filter";
    default: return "setup";
    }
}

/* ---- the parse step, the same confined or not ----------------------------------------- */

static mg_status parse_in_process(mg_verified_file *files, size_t count, mg_error *err)
{
    for (size_t i = 0; i < count; i++) {
        if (files[i].format == NULL)
            continue;
        mg_status s = mg_sandbox_parse_one(&files[i], &files[i].parsed, err);
        if (s != MG_OK) {
            mg_error_set_file(err, files[i].path);
            return s;
        }
    }
    return MG_OK;
}

/* ---- buffered pipe ends ---------------------------------------------------------------- */

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
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(write), 1, fd_is(MG_SANDBOX_FD));
    /* close of its one descriptor: the end of its answer comes before its exit. */
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(close), 1, fd_is(MG_SANDBOX_FD));
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

/* ---- the parent ------------------------------------------------------------------------ */

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

static mg_status read_hello(pipe_in *in, bool *silent, mg_error *err)
{
    uint8_t b[4];
    *silent = false;
    if (!pipe_read(in, b, 4)) {
        /* Not a byte (a helper that ended with the request unread resets the socket): it
         * never got to its filter. */
        *silent = in->len == 0 && (in->ended || in->failed);
        return mg_fail(err, MG_E_LIMIT, "cannot confine the parser: the child ended before "
                       "it was confined");
    }
    uint32_t v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                 (uint32_t)b[3] << 24;
    if (v == MG_SANDBOX_HELLO_OK)
        return MG_OK;
    uint8_t d[8];
    uint32_t step = 0, e = 0;
    if (v == MG_SANDBOX_HELLO_NO && pipe_read(in, d, 8)) {
        step = (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24;
        e = (uint32_t)d[4] | (uint32_t)d[5] << 8 | (uint32_t)d[6] << 16 | (uint32_t)d[7] << 24;
    }
    return mg_fail(err, MG_E_LIMIT, "cannot confine the parser (sandbox required): %s failed: %s",
                   step_name(step), strerror((int)e));
}

/*
 * Read the child's answer on `fd` (closed here) and reap it. `*silent` is set when a helper
 * ended without a single byte: it was never confined and never parsed, and the caller may
 * parse in a forked child instead.
 */
static mg_status collect(pid_t pid, int fd, mg_verified_file *files, size_t count,
                         const mg_sandbox_limits *lim, bool helper, bool *silent, mg_error *err)
{
    /* From here until the child has exited, every page this process writes that a forked
     * child also maps costs a copy (and, on a virtual machine, a costly TLB shootdown): the
     * child's output goes into memory mapped after the fork; when all of it fits, the
     * child is reaped before the table is decoded into this process's heap. */
    pipe_in in_ = {.fd = fd};
    pipe_in *in = &in_;
    *silent = false;
    void *buf = mmap(NULL, PIPE_IN_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    if (buf == MAP_FAILED) {
        close(fd);
        kill(pid, SIGKILL);
        int st;
        (void)wait_child(pid, &st);
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    }
    in->buf = buf;
    bool reaped = false;
    int status = 0;
    /* (A forked child only: its exit is what ends the sharing of pages; the helper shares
     * none. Reaping it in the background instead of here saved nothing measurable, and a
     * thread exiting while a later load forks is what an allocator without fork handlers,
     * ASan's, can deadlock the child on.) */
    if (!helper && pipe_prefill(in))
        reaped = wait_child(pid, &status) == MG_OK;
    mg_wire_in wi = {pipe_read, in};
    mg_status s = read_hello(in, silent, err);
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
        uint8_t end[4], extra;
        uint32_t v = 0;
        if (pipe_read(in, end, 4))
            v = (uint32_t)end[0] | (uint32_t)end[1] << 8 | (uint32_t)end[2] << 16 |
                (uint32_t)end[3] << 24;
        if (v != MG_SANDBOX_TABLES_END) {
            if (!reaped)
                reaped = wait_child(pid, &status) == MG_OK;
            s = reaped && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)
                    ? child_fate_from(status, lim, err)
                    : mg_fail(err, MG_E_FORMAT, "the confined parser ended without a table");
        } else if (pipe_read(in, &extra, 1) || !in->ended) {
            s = mg_fail(err, MG_E_FORMAT, "the confined parser sent more than its tables");
        }
    }
    close(fd);
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

static mg_status parse_forked(mg_verified_file *files, size_t count,
                              const mg_sandbox_limits *lim, const struct sock_fprog *prog,
                              mg_error *err)
{
    uint64_t vm = 0, as_limit = 0;
    if (!mg_sandbox_vm_bytes(&vm))
        return mg_fail(err, MG_E_LIMIT, "cannot confine the parser: cannot read this process's "
                       "size from /proc/self/statm");
#ifndef MG_SANITIZE
    /* (Sanitizer builds: ASan reserves terabytes of shadow memory; no address-space cap.) */
    if (!mg_add_u64(vm, lim->memory_bytes, &as_limit))
        as_limit = 0;
#endif
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return mg_fail(err, MG_E_LIMIT, "cannot confine the parser: pipe: %s", strerror(errno));
    mg_confine_args a = {p[1], getpid(), prog, as_limit, lim->cpu_seconds, false};
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        mg_sandbox_confine_and_serve(&a, files, count);
    }
    int fork_errno = errno;
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        return mg_fail(err, MG_E_LIMIT, "cannot confine the parser: fork: %s",
                       strerror(fork_errno));
    }
    bool silent;
    return collect(pid, p[0], files, count, lim, false, &silent, err);
}

/* ---- the parser helper (modelgate-parse) ------------------------------------------------ */

/* (Set by CMakeLists.txt from the install layout; these are the GNU defaults.) */
#ifndef MG_HELPER_FROM_LIBDIR
#define MG_HELPER_FROM_LIBDIR "../libexec/modelgate/modelgate-parse"
#endif
#ifndef MG_HELPER_FROM_BINDIR
#define MG_HELPER_FROM_BINDIR "../libexec/modelgate/modelgate-parse"
#endif
#ifndef MG_HELPER_INSTALLED
#define MG_HELPER_INSTALLED "/usr/local/libexec/modelgate/"
#endif

static pthread_once_t helper_once = PTHREAD_ONCE_INIT;
static char *helper_file; /* NULL: no helper; parse in a forked child */

static char *helper_at(const char *beside, const char *rel)
{
    const char *slash = strrchr(beside, '/');
    if (slash == NULL)
        return NULL;
    size_t dir = (size_t)(slash - beside);
    size_t n = dir + 1 + strlen(rel) + 1;
    char *p = malloc(n);
    if (p == NULL)
        return NULL;
    memcpy(p, beside, dir);
    p[dir] = '/';
    memcpy(p + dir + 1, rel, strlen(rel) + 1);
    char *real = realpath(p, NULL); /* (lib/pkgconfig/../../lib/../libexec/...: plain) */
    free(p);
    struct stat st;
    if (real != NULL && stat(real, &st) == 0 && S_ISREG(st.st_mode) && access(real, X_OK) == 0)
        return real;
    free(real);
    return NULL;
}

/*
 * Where the helper is: $MODELGATE_PARSER (an absolute path; anything else, "none" say: no
 * helper), else installed relative to this library (LIBDIR -> LIBEXECDIR/modelgate) or to
 * the executable (BINDIR -> same), else beside either (a build tree), else where the build
 * was configured to install it.
 */
static void helper_find(void)
{
    const char *env = secure_getenv("MODELGATE_PARSER");
    if (env != NULL) {
        struct stat st;
        if (env[0] == '/' && stat(env, &st) == 0 && S_ISREG(st.st_mode) && access(env, X_OK) == 0)
            helper_file = strdup(env);
        return;
    }
    Dl_info info;
    if (dladdr((void *)mg_sandbox_parse_files, &info) != 0 && info.dli_fname != NULL &&
        info.dli_fname[0] == '/') {
        helper_file = helper_at(info.dli_fname, MG_HELPER_FROM_LIBDIR);
        if (helper_file == NULL)
            helper_file = helper_at(info.dli_fname, "modelgate-parse");
        if (helper_file != NULL)
            return;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        helper_file = helper_at(exe, MG_HELPER_FROM_BINDIR);
        if (helper_file == NULL)
            helper_file = helper_at(exe, "modelgate-parse");
    }
    /* A program linked with the static library, anywhere: the configured place. */
    if (helper_file == NULL)
        helper_file = helper_at(MG_HELPER_INSTALLED, "modelgate-parse");
}

bool mg_sandbox_has_helper(void)
{
    return pthread_once(&helper_once, helper_find) == 0 && helper_file != NULL;
}

/* Wait until a helper being started by its thread is started (or not). */
static void spawn_wait(mg_sandbox_child *c)
{
    if (c != NULL && c->starting) {
        pthread_join(c->thread, NULL);
        c->starting = false;
    }
}

void mg_sandbox_child_discard(mg_sandbox_child *c)
{
    spawn_wait(c);
    if (c == NULL || c->pid <= 0)
        return;
    close(c->sock);
    kill(c->pid, SIGKILL);
    int st;
    (void)wait_child(c->pid, &st);
    c->pid = 0;
    c->sock = -1;
}

static bool spawn_now(mg_sandbox_child *c, bool zip)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return false;
    if (sv[1] == MG_SANDBOX_FD) { /* dup2 onto itself would leave close-on-exec set */
        int moved = fcntl(sv[1], F_DUPFD_CLOEXEC, MG_SANDBOX_FD + 1);
        close(sv[1]);
        if (moved < 0) {
            close(sv[0]);
            return false;
        }
        sv[1] = moved;
    }
    /* Its environment: the time zone and where the shared libraries are, nothing else (a
     * sanitizer build also passes its runtime's options). */
    static const char *const pass[] = {"TZ", "LD_LIBRARY_PATH",
#ifdef MG_SANITIZE
                                       "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS",
#endif
    };
    char *envp[sizeof pass / sizeof pass[0] + 1];
    size_t ne = 0;
    for (size_t i = 0; i < sizeof pass / sizeof pass[0]; i++) {
        size_t k = strlen(pass[i]);
        for (char **e = environ; e != NULL && *e != NULL; e++) {
            if (strncmp(*e, pass[i], k) == 0 && (*e)[k] == '=') {
                envp[ne++] = *e;
                break;
            }
        }
    }
    envp[ne] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    bool ok = posix_spawn_file_actions_init(&fa) == 0;
    if (!ok) {
        close(sv[0]);
        close(sv[1]);
        return false;
    }
    ok = posix_spawnattr_init(&at) == 0;
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    ok = ok && posix_spawn_file_actions_adddup2(&fa, sv[1], MG_SANDBOX_FD) == 0 &&
         posix_spawn_file_actions_addclosefrom_np(&fa, MG_SANDBOX_FD + 1) == 0 &&
         posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF) == 0 &&
         posix_spawnattr_setsigmask(&at, &none) == 0 &&
         posix_spawnattr_setsigdefault(&at, &all) == 0;
    char *argv[] = {(char *)"modelgate-parse", zip ? (char *)"--zip" : NULL, NULL};
    pid_t pid = 0;
    if (ok)
        ok = posix_spawn(&pid, helper_file, &fa, &at, argv, envp) == 0;
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(sv[1]);
    if (!ok) {
        close(sv[0]);
        return false;
    }
    c->pid = pid;
    c->sock = sv[0];
    return true;
}

static void *spawn_main(void *arg)
{
    mg_sandbox_child *c = arg;
    (void)spawn_now(c, c->zip);
    return NULL;
}

bool mg_sandbox_spawn(mg_sandbox_child *c, bool zip)
{
    c->pid = 0;
    c->sock = -1;
    c->starting = false;
    c->zip = zip;
    if (!mg_sandbox_has_helper())
        return false;
    /* posix_spawn holds its thread until the helper's execve is done (milliseconds on a
     * virtual machine): a thread of its own does it while the load goes on. */
    if (pthread_create(&c->thread, NULL, spawn_main, c) == 0) {
        c->starting = true;
        return true;
    }
    return spawn_now(c, zip);
}

/* The request (sandbox_child.h), in one buffer. */
typedef struct req_buf {
    uint8_t *p;
    size_t len, cap;
    bool failed;
} req_buf;

static void put(req_buf *b, const void *src, size_t n)
{
    if (b->failed)
        return;
    if (n > b->cap - b->len) {
        size_t cap = b->cap == 0 ? 4096 : b->cap;
        while (cap - b->len < n) {
            if (cap > SIZE_MAX / 2) {
                b->failed = true;
                return;
            }
            cap *= 2;
        }
        uint8_t *np = realloc(b->p, cap);
        if (np == NULL) {
            b->failed = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void put_u32(req_buf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(b, x, 4);
}

static void put_u64(req_buf *b, uint64_t v)
{
    put_u32(b, (uint32_t)v);
    put_u32(b, (uint32_t)(v >> 32));
}

static bool send_fds(int sock, const int *fds, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t k = n - i < MG_SANDBOX_FDS_PER_MSG ? n - i : MG_SANDBOX_FDS_PER_MSG;
        union {
            struct cmsghdr h;
            char b[CMSG_SPACE(MG_SANDBOX_FDS_PER_MSG * sizeof(int))];
        } cbuf;
        memset(&cbuf, 0, sizeof cbuf);
        uint8_t byte = 0;
        struct iovec iov = {&byte, 1};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.b,
                             .msg_controllen = CMSG_SPACE(k * sizeof(int))};
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(k * sizeof(int));
        memcpy(CMSG_DATA(c), fds + i, k * sizeof(int));
        ssize_t w;
        do
            w = sendmsg(sock, &msg, MSG_NOSIGNAL);
        while (w < 0 && errno == EINTR);
        if (w != 1)
            return false;
        i += k;
    }
    return true;
}

/* The index of `f` in mg_sandbox_formats, or -1. */
static int format_index(const mg_format *f)
{
    for (size_t i = 0; i < mg_sandbox_format_count; i++) {
        if (mg_sandbox_formats[i] == f)
            return (int)i;
    }
    return -1;
}

/* Whether the helper can be handed these files: each one to parse is a sealed memfd whose
 * descriptor was kept (MG_REGION_KEEP_FD), or empty. */
static bool helper_can_take(const mg_verified_file *files, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (files[i].format == NULL)
            continue;
        if (format_index(files[i].format) < 0 ||
            (files[i].region.len > 0 && !files[i].region.has_sealed_fd))
            return false;
    }
    return true;
}

static mg_status parse_by_helper(mg_sandbox_child *c, mg_verified_file *files, size_t count,
                                 const mg_sandbox_limits *lim, const struct sock_fprog *prog,
                                 bool *silent, mg_error *err)
{
    req_buf b = {0};
    uint32_t n = 0, nfd = 0;
    const mg_budget *budget = NULL;
    for (size_t i = 0; i < count; i++) {
        if (files[i].format == NULL)
            continue;
        n++;
        nfd += files[i].region.len > 0;
        if (budget == NULL)
            budget = files[i].parsed.budget;
    }
    int *fds = calloc(nfd > 0 ? nfd : 1, sizeof *fds);
    put_u32(&b, MG_SANDBOX_REQUEST);
    put_u32(&b, MG_SANDBOX_PROTOCOL);
    put_u32(&b, (uint32_t)getpid());
    put_u32(&b, n);
    put_u32(&b, prog->len);
#ifdef MG_SANITIZE
    put_u32(&b, MG_REQ_NO_AS_LIMIT);
#else
    put_u32(&b, 0);
#endif
    put_u64(&b, lim->memory_bytes);
    put_u64(&b, lim->cpu_seconds);
    put_u64(&b, budget != NULL ? budget->limit : 0);
    put_u64(&b, budget != NULL ? budget->used : 0);
    put(&b, prog->filter, (size_t)prog->len * sizeof prog->filter[0]);
    for (size_t i = 0, k = 0; i < count; i++) {
        const mg_verified_file *f = &files[i];
        if (f->format == NULL)
            continue;
        put_u32(&b, (uint32_t)format_index(f->format));
        put_u32(&b, f->region.len > 0);
        put_u64(&b, f->region.len);
        bool crcs = f->region.block_crc != NULL;
        put_u64(&b, crcs ? f->region.block_crc_count : 0);
        for (size_t j = 0; crcs && j < f->region.block_crc_count; j++)
            put_u32(&b, f->region.block_crc[j]);
        if (f->region.len > 0 && fds != NULL)
            fds[k++] = f->region.memfd;
    }
    bool sent = !b.failed && fds != NULL && mg_send_all(c->sock, b.p, b.len) &&
                send_fds(c->sock, fds, nfd);
    free(b.p);
    free(fds);
    if (b.failed || fds == NULL) {
        mg_sandbox_child_discard(c);
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    }
    if (!sent) { /* it is gone, or its socket is: it never saw a byte of a model */
        mg_sandbox_child_discard(c);
        *silent = true;
        return MG_E_IO;
    }
    pid_t pid = c->pid;
    int sock = c->sock;
    c->pid = 0;
    c->sock = -1;
    return collect(pid, sock, files, count, lim, true, silent, err);
}

static atomic_size_t helper_answers;

size_t mg_sandbox_helper_answers(void)
{
    return atomic_load(&helper_answers);
}

static mg_status parse_confined(mg_verified_file *files, size_t count,
                                const mg_sandbox_limits *lim, mg_sandbox_child *early,
                                mg_error *err)
{
    /* jansson seeds its hash function from /dev/urandom on first use: do it here, where
     * opening a file is allowed. */
    json_object_seed(0);
    tzset();
    if (pthread_once(&filter_once, filter_generate) != 0 || filter_prog == NULL) {
        mg_sandbox_child_discard(early);
        return mg_fail(err, MG_E_LIMIT, "cannot confine the parser: cannot build the seccomp "
                       "filter");
    }
    struct sock_fprog prog = {filter_len, filter_prog};
    mg_sandbox_child late = {.pid = 0, .sock = -1};
    spawn_wait(early);
    mg_sandbox_child *c = early != NULL && early->pid > 0 ? early : &late;
    if (helper_can_take(files, count) && (c->pid > 0 || (mg_sandbox_has_helper() &&
                                                         spawn_now(c, false)))) {
        bool silent = false;
        mg_status s = parse_by_helper(c, files, count, lim, &prog, &silent, err);
        if (!silent) {
            atomic_fetch_add(&helper_answers, 1);
            return s;
        }
        /* The helper never got to its filter (not the helper of this version, say): the
         * files are parsed in a forked child, as confined. */
        mg_error_clear(err);
    }
    mg_sandbox_child_discard(c);
    return parse_forked(files, count, lim, &prog, err);
}

mg_status mg_sandbox_parse_files_ex(mg_verified_file *files, size_t count, bool confined,
                                    const mg_sandbox_limits *limits, mg_sandbox_child *early,
                                    mg_error *err)
{
    bool any = false;
    for (size_t i = 0; i < count; i++) {
        mg_status s = mg_region_seal(&files[i].region, err);
        if (s != MG_OK) {
            mg_sandbox_child_discard(early);
            mg_error_set_file(err, files[i].path);
            return s;
        }
        any = any || files[i].format != NULL;
    }
    if (!any || !confined) {
        mg_sandbox_child_discard(early);
        return any ? parse_in_process(files, count, err) : MG_OK;
    }
    uint64_t total = 0;
    for (size_t i = 0; i < count; i++)
        total += files[i].region.len; /* each <= 1 TiB, count <= MG_MAX_FILES: no wrap */
    mg_sandbox_limits lim = {DEFAULT_MEMORY, DEFAULT_CPU_BASE + CPU_SECONDS_PER_GIB * (total >> 30)};
    if (limits != NULL && limits->memory_bytes != 0)
        lim.memory_bytes = limits->memory_bytes;
    if (limits != NULL && limits->cpu_seconds != 0)
        lim.cpu_seconds = limits->cpu_seconds;
    return parse_confined(files, count, &lim, early, err);
}

mg_status mg_sandbox_parse_files(mg_verified_file *files, size_t count, bool confined,
                                 const mg_sandbox_limits *limits, mg_error *err)
{
    return mg_sandbox_parse_files_ex(files, count, confined, limits, NULL, err);
}
