/*
 * The confined side of sandbox.h: what runs in the forked child or in the parser helper
 * (`modelgate-parse`, installed in libexec beside the library). Both confine themselves the
 * same way before a byte of a model is parsed, then answer on one descriptor (fd 3) in the
 * wire format of sandbox_wire.h.
 *
 * The helper's request, on fd 3 (a Unix stream socket), little-endian:
 *
 *   u32 'MGRQ'  u32 protocol (MG_SANDBOX_PROTOCOL)  u32 parent pid  u32 file count
 *   u32 filter length (BPF instructions)  u32 flags (MG_REQ_*)
 *   u64 address space to add  u64 CPU seconds  u64 parser budget limit  u64 budget used
 *   filter: length x 8 bytes (struct sock_filter)
 *   per file: u32 format index (mg_sandbox_formats)  u32 has_fd  u64 length
 *             u64 CRC count, count x u32 block CRCs (region.h)
 *   then one sealed memfd per file with has_fd, in order, in messages of one byte that carry
 *   up to MG_SANDBOX_FDS_PER_MSG descriptors each (SCM_RIGHTS)
 *
 * The helper answers u32 HELLO_OK once confined (or HELLO_NO, u32 step, u32 errno), then one
 * record per file (the first failure is the last record), then u32 TABLES_END when every file
 * parsed, and closes its socket before it exits (a forked child answers the same way). A helper that ends before its first word never parsed anything: the
 * parent may then parse in a forked child instead.
 */
#ifndef MG_SANDBOX_CHILD_H
#define MG_SANDBOX_CHILD_H

#include <linux/filter.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "model.h"

#define MG_SANDBOX_FD 3
#define MG_SANDBOX_HELLO_OK 0x4b4f474du /* "MGOK": confined, parsing starts */
#define MG_SANDBOX_HELLO_NO 0x4f4e474du /* "MGNO": u32 step, u32 errno follow */
#define MG_SANDBOX_REQUEST 0x5152474du  /* "MGRQ" */
#define MG_SANDBOX_TABLES_END 0x4e45474du /* "MGEN": every record sent */
#define MG_SANDBOX_PROTOCOL 1u
#define MG_SANDBOX_FDS_PER_MSG 64u
#define MG_SANDBOX_MAX_FILTER 4096u      /* BPF_MAXINSNS */
#define MG_REQ_NO_AS_LIMIT 0x1u          /* do not cap the address space (sanitizer builds) */

enum mg_sandbox_step {
    MG_STEP_FDS = 1,
    MG_STEP_PARENT,
    MG_STEP_RLIMIT,
    MG_STEP_NNP,
    MG_STEP_SECCOMP
};

/* The formats a helper can be asked for, by index. */
extern const mg_format *const mg_sandbox_formats[];
extern const size_t mg_sandbox_format_count;

typedef struct mg_confine_args {
    int fd; /* the answer goes here; it becomes MG_SANDBOX_FD */
    pid_t parent;
    const struct sock_fprog *filter;
    uint64_t as_limit; /* 0: none */
    uint64_t cpu_seconds;
    /* The helper: started by a thread that does not wait for it (no parent-death signal,
     * which follows the starting thread; the end of its socket stops it instead), and
     * already in its own user namespace. */
    bool helper;
} mg_confine_args;

/* Parse one file (with the test triggers in a MG_SANDBOX_TEST_TRIGGERS build). */
MG_NODISCARD mg_status mg_sandbox_parse_one(const mg_verified_file *f, mg_parse_result *out,
                                            mg_error *err);

/* Confine this process (a forked child or the helper), then parse every file that has a
 * format and send the records. Never returns. */
_Noreturn void mg_sandbox_confine_and_serve(const mg_confine_args *a, mg_verified_file *files,
                                            size_t count);

/* The address space this process has mapped now, in bytes. */
bool mg_sandbox_vm_bytes(uint64_t *out);

/* main() of modelgate-parse. `load_zip` (may be NULL: libzip is linked) opens libzip, which
 * the helper does only for ZIP-based formats (npz, pickle): at once when started with
 * "--zip" (the loader expects an npz), else when a request holds one. */
typedef bool (*mg_helper_load_zip_fn)(void);
int mg_sandbox_helper_main(int argc, char **argv, mg_helper_load_zip_fn load_zip);

#endif
