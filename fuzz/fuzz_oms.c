/* libFuzzer harness: OMS bundles. The input is tried as a decoded in-toto statement (the
 * checks after the signature), as a whole bundle for a key-mode entry with no keys (the
 * JSON, base64 and DSSE layers up to the signature check, which then fails), and as a Rekor
 * checkpoint (the signed-note parser, with no key: it never verifies). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "oms.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mg_oms o;
    mg_error err;
    for (int single = 0; single < 2; single++) {
        mg_error_clear(&err);
        mg_status s = mg_oms_parse_statement_unverified(data, size, single ? "model.bin" : NULL,
                                                        &o, &err);
        if (s == MG_OK) {
            /* Every accepted statement gives what the load path relies on. */
            if (o.file_count == 0)
                abort();
            for (size_t i = 0; i < o.file_count; i++) {
                const mg_pinned_file *f = &o.files[i];
                if (i > 0 && strcmp(o.files[i - 1].path, f->path) >= 0)
                    abort();
                if (single && strcmp(f->path, "model.bin") != 0)
                    abort();
                if (f->shard_count > 0 &&
                    (!f->has_size || f->shard_size == 0 ||
                     (f->size + f->shard_size - 1) / f->shard_size != f->shard_count))
                    abort();
            }
        } else if (err.status == MG_OK) {
            abort();
        }
        mg_oms_free(&o);
    }
    mg_oms_policy op = {.bundle = "model.sig"};
    mg_policy_model entry = {.kind = MG_MODEL_OMS, .threshold = 1, .oms = &op};
    struct mg_policy pol;
    memset(&pol, 0, sizeof pol);
    mg_error_clear(&err);
    if (mg_oms_verify(&pol, &entry, data, size, NULL, &o, &err) == MG_OK)
        abort(); /* no key can verify anything */
    mg_oms_free(&o);
    uint8_t id[32] = {0xc0, 0xd2, 0x3d, 0x6a}, root[32] = {0};
    char why[160];
    if (mg_oms_checkpoint_check((const char *)data, size, NULL, 0, id, 1, root, why, sizeof why))
        abort(); /* no key: no checkpoint is signed */
    return 0;
}
