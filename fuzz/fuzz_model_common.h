/*
 * Shared body of the whole-model harnesses: one input is split at every "\n--8<--\n" into
 * the files of a model directory (fixed names per harness, missing parts are empty files),
 * the files are pinned by digest and size in a policy built in memory, and the directory is
 * loaded through mg_model_load(): detection, every parser, the cross-checks (sharded index,
 * MXNet checkpoint report), the parser budget and the tensor views, as a real load does.
 * Any input must load or fail with MG_E_FORMAT or MG_E_LIMIT; a loaded model's tensors are
 * read at both ends (ASan sees a view outside its memory). A violation traps.
 */
#ifndef MG_FUZZ_MODEL_COMMON_H
#define MG_FUZZ_MODEL_COMMON_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "digest.h"
#include "policy.h"
#include "util/hex.h"

#define MG_FUZZ_SEP "\n--8<--\n"
#define MG_FUZZ_MAX_PARTS 4
/* A small budget so that the budget path is reached by small inputs too. */
#define MG_FUZZ_PARSER_MEMORY (64u << 20)

static char mg_fuzz_dir[64];
static const char *const *mg_fuzz_names;

static void mg_fuzz_cleanup(void)
{
    char path[256];
    for (size_t i = 0; mg_fuzz_names != NULL && mg_fuzz_names[i] != NULL; i++) {
        snprintf(path, sizeof path, "%s/%s", mg_fuzz_dir, mg_fuzz_names[i]);
        unlink(path);
    }
    rmdir(mg_fuzz_dir);
}

static int mg_fuzz_write(const char *name, const uint8_t *data, size_t len)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", mg_fuzz_dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, data + done, len - done);
        if (w <= 0)
            break;
        done += (size_t)w;
    }
    close(fd);
    return done == len ? 0 : -1;
}

static const uint8_t *mg_fuzz_find(const uint8_t *p, const uint8_t *end)
{
    size_t sl = sizeof MG_FUZZ_SEP - 1;
    for (; (size_t)(end - p) >= sl; p++) {
        if (memcmp(p, MG_FUZZ_SEP, sl) == 0)
            return p;
    }
    return NULL;
}

/* `names`: NULL-terminated, at most MG_FUZZ_MAX_PARTS file names (no folders). */
static inline int mg_fuzz_model(const char *const *names, const uint8_t *data, size_t size)
{
    if (mg_fuzz_dir[0] == '\0') {
        snprintf(mg_fuzz_dir, sizeof mg_fuzz_dir, "/tmp/mg-fuzz-model-XXXXXX");
        if (mkdtemp(mg_fuzz_dir) == NULL)
            abort();
        mg_fuzz_names = names;
        atexit(mg_fuzz_cleanup);
    }
    /* The policy: every part pinned by SHA-256 and size. */
    static char policy[8192];
    int pn = snprintf(policy, sizeof policy, "{\"modelgate_policy\": 1, \"limits\": "
                      "{\"parser_memory\": %u}, \"models\": [{\"name\": \"m\", \"source\": "
                      "\"%s/\", \"files\": {", MG_FUZZ_PARSER_MEMORY, mg_fuzz_dir);
    const uint8_t *p = data, *end = data + size;
    for (size_t i = 0; names[i] != NULL; i++) {
        const uint8_t *q = names[i + 1] != NULL ? mg_fuzz_find(p, end) : NULL;
        size_t len = (size_t)((q != NULL ? q : end) - p);
        if (mg_fuzz_write(names[i], p, len) != 0)
            abort();
        uint8_t digest[MG_DIGEST_MAX];
        char hex[129];
        mg_error err;
        if (mg_digest_buffer(MG_SHA256, p, len, digest, &err) != MG_OK)
            abort();
        mg_hex_encode(digest, 32, hex);
        pn += snprintf(policy + pn, sizeof policy - (size_t)pn,
                       "%s\"%s\": {\"sha256\": \"%s\", \"size\": %zu}", i ? ", " : "", names[i],
                       hex, len);
        p = q != NULL ? q + sizeof MG_FUZZ_SEP - 1 : end;
    }
    pn += snprintf(policy + pn, sizeof policy - (size_t)pn, "}}]}");
    if (pn <= 0 || (size_t)pn >= sizeof policy)
        abort();

    mg_policy *pol = NULL;
    mg_error err;
    if (mg_policy_from_buffer((const uint8_t *)policy, (size_t)pn, mg_fuzz_dir, &pol, &err) !=
        MG_OK) {
        fprintf(stderr, "fuzz harness: policy refused: %s\n", err.message);
        abort();
    }
    mg_load_options opts = {sizeof opts, 1, NULL, NULL};
    mg_model *m = NULL;
    mg_status st = mg_model_load(pol, "m", &opts, &m, &err);
    if (st == MG_OK) {
        volatile uint8_t sink = 0;
        for (size_t i = 0; i < mg_model_tensor_count(m); i++) {
            const mg_tensor *t = mg_model_tensor(m, i);
            const uint8_t *d = t->data;
            if (t->nbytes > 0)
                sink ^= d[0] ^ d[t->nbytes - 1];
        }
        for (size_t i = 0; i < mg_model_file_count(m); i++) {
            mg_file_info fi;
            if (mg_model_file(m, i, &fi) != MG_OK)
                __builtin_trap();
            if (fi.metadata_json != NULL)
                sink ^= (uint8_t)fi.metadata_json[0];
        }
        (void)sink;
        mg_model_close(m);
    } else if (st != MG_E_FORMAT && st != MG_E_LIMIT) {
        fprintf(stderr, "fuzz harness: unexpected status %d: %s\n", (int)st, err.message);
        __builtin_trap();
    }
    mg_policy_close(pol);
    return 0;
}

#endif
