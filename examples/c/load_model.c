/*
 * The README's library example as a whole program: open a policy, load a model by name or
 * exact source, list its tensors, read a verified asset. Built against the installed library
 * three ways by `make check` (pkg-config shared, pkg-config --static, CMake find_package).
 *
 *     load_model [POLICY] MODEL        (POLICY "-" or absent: $MODELGATE_POLICY or the default)
 *
 * Prints one line per tensor: name, dtype, shape, bytes, and the SHA-256-free checksum
 * "sum" (the sum of the data's bytes mod 2^32), then "asset config.json N bytes" if the model
 * has one. On a refusal prints "refused: KIND: FILE: MESSAGE" to stderr and exits with the
 * status (the same numbers as the command-line tool).
 */
#include <modelgate.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    const char *policy_path = argc > 2 && strcmp(argv[1], "-") != 0 ? argv[1] : NULL;
    const char *source = argc > 2 ? argv[2] : argc > 1 ? argv[1] : "tiny-mlp";
    mg_policy *pol;
    mg_model *m;
    mg_error err; /* caller-owned: status, message, model, file, digests */

    if (mg_policy_open(policy_path, NULL, &pol, &err) != MG_OK) {
        fprintf(stderr, "refused: %s: %s\n", mg_status_kind(err.status), err.message);
        return err.status;
    }
    if (mg_model_load(pol, source, NULL, &m, &err) != MG_OK) {
        fprintf(stderr, "refused: %s: %s: %s\n", mg_status_kind(err.status), err.file,
                err.message);
        mg_policy_close(pol);
        return err.status;
    }
    printf("model %s: %zu files, %zu tensors (libmodelgate %s)\n", mg_model_name(m),
           mg_model_file_count(m), mg_model_tensor_count(m), mg_version());
    for (size_t i = 0; i < mg_model_tensor_count(m); i++) {
        const mg_tensor *t = mg_model_tensor(m, i);
        uint32_t sum = 0;
        const unsigned char *p = t->data; /* read-only view of verified memory */
        for (uint64_t j = 0; j < t->nbytes; j++)
            sum += p[j];
        printf("tensor %s %s [", t->name, t->dtype_name);
        for (uint32_t d = 0; d < t->ndim; d++)
            printf(d ? ",%" PRIu64 : "%" PRIu64, t->shape[d]);
        printf("] %" PRIu64 " bytes sum %" PRIu32 "\n", t->nbytes, sum);
    }
    const void *cfg;
    size_t cfg_len;
    if (mg_model_asset(m, "config.json", &cfg, &cfg_len, &err) == MG_OK) {
        /* the verified bytes of config.json, not the file on disk */
        printf("asset config.json %zu bytes\n", cfg_len);
    }
    mg_model_close(m);
    mg_policy_close(pol);
    return 0;
}
