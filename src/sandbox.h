/*
 * Confined parsing. The parsers run in a confined process: the parser helper
 * `modelgate-parse` (installed in LIBEXECDIR/modelgate, sandbox_child.h), started with
 * posix_spawn and handed the sealed memfds over a Unix socket, or, where there is no helper
 * or the files are not all sealed memfds, a forked child. Either one, before it reads a byte
 * of a model, closes every descriptor but one pipe, sets PR_SET_NO_NEW_PRIVS, limits its CPU
 * time and address space, enters a new user namespace where the kernel allows (optional),
 * and loads a seccomp filter (libseccomp) that allows only: write on its pipe (and its close),
 * mmap/mprotect without PROT_EXEC, munmap, mremap, brk, madvise, sysinfo (glibc's qsort asks
 * for the memory size), exit. Anything else (open,
 * socket, connect, execve, fork, kill, ...) kills it. The child sees the verified bytes
 * through the parent's read-only mappings of the sealed memfds (inherited by fork) and sends
 * back each file's tensor table in the wire format of sandbox_wire.h; the parent checks
 * every entry against the file's bounds before any pointer is formed. The parent reads the
 * child's output into memory mapped after the fork and, when it all fits (4 MiB), reaps the
 * child before decoding: no page the two share is written while both live (each such write
 * is a copy and, on a virtual machine, a TLB shootdown).
 */
#ifndef MG_SANDBOX_H
#define MG_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <sys/types.h>

#include "model.h"

/* Resource limits of the confined parser; 0 takes the built-in default. */
typedef struct mg_sandbox_limits {
    uint64_t memory_bytes; /* address space the child may add to what it inherits */
    uint64_t cpu_seconds;  /* CPU time of the whole parse */
} mg_sandbox_limits;

/*
 * Seal every file's region and parse every file that has a format (files[i].format) into
 * files[i].parsed: in a confined child when `confined` (`limits` may be NULL), else in this
 * process. The first failure wins, with its file set in `err`: the parser's own status,
 * MG_E_FORMAT when the child crashed, was stopped by its filter or sent a malformed table,
 * MG_E_LIMIT when it ran out of its CPU time, or when confinement could not be set up (a
 * confined parse never falls back to parsing in this process).
 */
/* Optional: start building what confinement needs (the seccomp filter, once per process) on a
 * thread of its own, so that it is ready when mg_sandbox_parse_files forks. */
void mg_sandbox_prepare(void);

MG_NODISCARD mg_status mg_sandbox_parse_files(mg_verified_file *files, size_t count,
                                              bool confined, const mg_sandbox_limits *limits,
                                              mg_error *err);

/* The most files a load hands the helper (each one's descriptor stays open until then). */
#define MG_SANDBOX_HELPER_FILES 64u

/* A started parser helper, waiting for its request. */
typedef struct mg_sandbox_child {
    pid_t pid; /* 0: none */
    int sock;
    bool starting; /* `thread` is starting it */
    bool zip;      /* it opens libzip at once (an npz is expected) */
    pthread_t thread;
} mg_sandbox_child;

/* Whether the parser helper was found ($MODELGATE_PARSER, "none" for no helper; else
 * installed relative to the library or the executable; else beside either). */
bool mg_sandbox_has_helper(void);
/* Start the helper early, on a thread of its own (its exec then overlaps the rest of the
 * load); false when there is none. `zip`: an npz is expected (the helper opens libzip while it
 * waits, not after the request). */
bool mg_sandbox_spawn(mg_sandbox_child *c, bool zip);
/* Stop and reap a helper that will not be used (NULL or an empty one: nothing). */
void mg_sandbox_child_discard(mg_sandbox_child *c);
/* How many parses the helper answered in this process (for the tests). */
size_t mg_sandbox_helper_answers(void);
/* As mg_sandbox_parse_files, handing the files to `early` (may be NULL) when it can take
 * them; `early` is used up either way. */
MG_NODISCARD mg_status mg_sandbox_parse_files_ex(mg_verified_file *files, size_t count,
                                                 bool confined,
                                                 const mg_sandbox_limits *limits,
                                                 mg_sandbox_child *early, mg_error *err);

#endif
