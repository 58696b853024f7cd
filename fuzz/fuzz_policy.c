/* libFuzzer harness for the policy parser (strict JSON, every rule of SPEC §2): any input
 * gives a policy or MG_E_POLICY/MG_E_LIMIT, never a crash or leak; an accepted policy
 * answers lookups. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mg_policy *pol = NULL;
    mg_error err;
    mg_status st = mg_policy_from_buffer(data, size, "/nonexistent-fuzz-dir", &pol, &err);
    if (st == MG_OK) {
        const mg_policy_model *m;
        for (size_t i = 0; i < pol->model_count; i++) {
            if (mg_policy_find(pol, pol->models[i].name, &m, &err) != MG_OK ||
                mg_policy_find(pol, pol->models[i].source, &m, &err) != MG_OK)
                __builtin_trap();
        }
        if (mg_policy_find(pol, "https://x.example/y", &m, &err) == MG_OK && m == NULL)
            __builtin_trap();
        mg_policy_close(pol);
    } else if (st != MG_E_POLICY && st != MG_E_LIMIT) {
        __builtin_trap();
    }
    return 0;
}
