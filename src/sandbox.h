/*
 * Confined parsing. The parsers run in a forked child that, before it reads a byte of a
 * model, closes every descriptor but one pipe, sets PR_SET_NO_NEW_PRIVS, limits its CPU
 * time and address space, enters a new user namespace where the kernel allows (optional),
 * and loads a seccomp filter (libseccomp) that allows only: write on its pipe,
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

#endif
