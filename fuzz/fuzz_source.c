/* libFuzzer harness for source canonicalisation: URL and path normalisation never crash,
 * and their results are fixed points (normalising twice changes nothing). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "source.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    mg_source_info info, info2;
    mg_error err;
    char *out = NULL, *again = NULL;
    if (mg_source_normalize_url(s, &out, &info, &err) == MG_OK) {
        if (mg_source_normalize_url(out, &again, &info2, &err) != MG_OK || strcmp(out, again) != 0)
            __builtin_trap();
        free(again);
        free(out);
    }
    again = NULL;
    out = NULL;
    if (mg_source_normalize_path(s, "/base/dir", &out, &info, &err) == MG_OK) {
        if (out[0] != '/' || strstr(out, "//") != NULL)
            __builtin_trap();
        if (mg_source_normalize_path(out, NULL, &again, &info2, &err) != MG_OK ||
            strcmp(out, again) != 0 || info2.dot_segments)
            __builtin_trap();
        free(again);
        free(out);
    }
    free(s);
    return 0;
}
