/* libFuzzer harness: the manifest parser (schema, paths, times) without signatures, and the
 * path and time helpers on the first line of the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mg_manifest m;
    mg_error err;
    if (mg_manifest_parse_unverified(data, size, INT64_C(1800000000), &m, &err) == MG_OK) {
        /* Every accepted manifest satisfies the rules the load path relies on. */
        if (m.file_count == 0 || m.version < 1 || m.name == NULL)
            abort();
        for (size_t i = 0; i < m.file_count; i++) {
            if (!mg_manifest_path_ok(m.files[i].path) || mg_manifest_is_own_file(m.files[i].path))
                abort();
            if (i > 0 && strcmp(m.files[i - 1].path, m.files[i].path) >= 0)
                abort();
        }
        mg_manifest_free(&m);
    } else if (err.status == MG_OK || m.files != NULL) {
        abort();
    }
    size_t line = 0;
    while (line < size && line < 4200 && data[line] != '\n')
        line++;
    char *text = malloc(line + 1);
    if (text != NULL) {
        memcpy(text, data, line);
        text[line] = '\0';
        int64_t t;
        (void)mg_manifest_path_ok(text);
        (void)mg_manifest_parse_time(text, &t);
        (void)mg_manifest_is_own_file(text);
        free(text);
    }
    return 0;
}
