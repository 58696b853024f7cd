/* libFuzzer harness: the first line of the input is an oci:// reference (parsed, and its
 * canonical form parsed back), the rest an OCI artifact manifest (oci.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"
#include "oci.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mg_pinned_file *files = NULL;
    size_t n = 0;
    mg_error err;
    const uint8_t *nl = memchr(data, '\n', size);
    const uint8_t *body = nl != NULL ? nl + 1 : data + size;
    size_t body_len = size - (size_t)(body - data);
    if (mg_oci_manifest_files(body, body_len, &files, &n, &err) == MG_OK) {
        /* Every accepted artifact has safe, unique, sorted file names and sized sha256 pins. */
        if (n == 0 || files == NULL)
            abort();
        for (size_t i = 0; i < n; i++) {
            if (!mg_manifest_path_ok(files[i].path) || !files[i].has_size ||
                files[i].alg != MG_SHA256 || files[i].size > MG_MAX_MODEL_FILE_BYTES)
                abort();
            if (i > 0 && strcmp(files[i - 1].path, files[i].path) >= 0)
                abort();
        }
        for (size_t i = 0; i < n; i++)
            free(files[i].path);
        free(files);
    } else if (err.status == MG_OK || files != NULL || n != 0) {
        abort();
    }
    size_t line = 0;
    while (line < size && line < 1200 && data[line] != '\n')
        line++;
    char *text = malloc(line + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, line);
    text[line] = '\0';
    mg_oci_ref ref, again;
    if (mg_oci_parse_ref(text, &ref, &err) == MG_OK) {
        if (ref.has_digest == ref.has_tag)
            abort();
        char *canon = mg_oci_canonical(&ref);
        if (ref.has_digest) {
            /* the canonical form parses back to the same reference */
            if (canon == NULL || mg_oci_parse_ref(canon, &again, &err) != MG_OK ||
                strcmp(again.host, ref.host) != 0 || strcmp(again.repo, ref.repo) != 0 ||
                memcmp(again.digest, ref.digest, 32) != 0)
                abort();
        }
        free(canon);
    }
    free(text);
    return 0;
}
