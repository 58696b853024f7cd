/*
 * Verified file-backed memory ("spill files"), for models that do not fit in the memory the
 * process may use, or when the policy asks ("memory": "file").
 *
 * Each file of the model is copied once into a private unnamed file of the policy's spill
 * folder (open(dir, O_TMPFILE | O_EXCL, 0400): it has no name, can never be given one, and
 * its mode refuses any later open for writing), hashed in the same pass, then mapped
 * read-only (MAP_SHARED, PROT_READ) and its only descriptor, the writer's, closed. Where the
 * file system can share blocks (FICLONE: btrfs, XFS), the file is cloned instead of copied
 * and hashed from the clone's read-only mapping. Either way what was hashed is what the
 * parsers and the tensors see, and nobody but the kernel (or root, through the block device)
 * can change it afterwards: the same property as a sealed memfd (region.h).
 *
 * The region this makes is an ordinary sealed region: mg_region_seal does nothing to it,
 * mg_region_free unmaps it, and the confined parser (sandbox.h) inherits its mapping by fork.
 */
#ifndef MG_SPILL_H
#define MG_SPILL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "digest.h"
#include "internal.h"
#include "region.h"

/* Open the spill folder `path` (absolute) with no symlink on its path; it must be a folder
 * owned by root or the effective user and not writable by group or others. MG_E_POLICY
 * otherwise, the message naming it as `what` (e.g. "spill_dir"). *dirfd is for
 * mg_spill_read_hashed; the caller closes it. */
MG_NODISCARD mg_status mg_spill_open_dir(const char *path, const char *what, int *dirfd,
                                         mg_error *err);

/*
 * Copy the open file `fd` into a new unnamed file of the folder `dirfd` and map it read-only
 * into `out`. With `hash`, the bytes are hashed with `alg` as they are copied (or from the
 * clone) into `digest`; without, the caller checks the mapping itself (sharded pins). Size
 * rules and errors as mg_region_read_hashed (MG_E_INTEGRITY when the size is not the
 * expected one or changes while it is read); MG_E_IO when the folder cannot hold an unnamed
 * file or the copy fails (a full disk). `done` (may be NULL) counts the bytes copied.
 */
MG_NODISCARD mg_status mg_spill_read_hashed(int dirfd, int fd, uint64_t expected_size,
                                            bool hash, mg_digest_alg alg, mg_region *out,
                                            uint8_t digest[MG_DIGEST_MAX],
                                            _Atomic uint64_t *done, mg_error *err);

/* The memory this process may still use, in bytes; UINT64_MAX where there is no limit or it
 * cannot be read. */
typedef struct mg_memory_room {
    uint64_t address_space; /* RLIMIT_AS less the current address space (/proc/self/statm) */
    uint64_t cgroup;        /* the tightest memory limit of this process's cgroup and its
                               ancestors, less what each uses but its inactive file pages */
    uint64_t available;     /* MemAvailable from /proc/meminfo */
} mg_memory_room;

/* Read the room from `proc` (normally "/proc") and the cgroup mount `cgroup_root` (normally
 * "/sys/fs/cgroup"; v2, hybrid "unified/" and v1 "memory/" layouts). Never fails: what
 * cannot be read counts as no limit. */
void mg_memory_room_read(const char *proc, const char *cgroup_root, mg_memory_room *out);

/* "auto": whether a model of `model_bytes` goes to spill files: when model_bytes plus
 * `parser_memory` plus MG_SPILL_MARGIN exceeds the smaller of room->cgroup and
 * room->available. (RLIMIT_AS is not part of the rule: file mappings count against it too.) */
#define MG_SPILL_MARGIN (UINT64_C(64) << 20)
bool mg_spill_wanted(uint64_t model_bytes, uint64_t parser_memory, const mg_memory_room *room);

#endif
