/* Pickle and PyTorch files: detected so that they are refused, never executed. */
#include "format/format.h"

#include <string.h>
#include <zip.h>

/* A pickle stream starts with the PROTO opcode 0x80 and a protocol number 2..5 (what torch
 * and numpy write), and old torch files are such a stream. */
static bool is_pickle_stream(const uint8_t *data, size_t len)
{
    return len >= 2 && data[0] == 0x80 && data[1] >= 2 && data[1] <= 5;
}

/* A PyTorch zip (torch.save since 1.6) is a zip archive holding "<archive>/data.pkl".
 * The member names are read from the central directory through libzip. */
static bool is_torch_zip(const uint8_t *data, size_t len)
{
    if (len < 4 || memcmp(data, "PK\x03\x04", 4) != 0)
        return false;
    zip_error_t zerr;
    zip_error_init(&zerr);
    zip_source_t *src = zip_source_buffer_create(data, len, 0, &zerr);
    if (src == NULL) {
        zip_error_fini(&zerr);
        return false;
    }
    zip_t *za = zip_open_from_source(src, ZIP_RDONLY, &zerr);
    if (za == NULL) {
        zip_source_free(src);
        zip_error_fini(&zerr);
        return false;
    }
    bool found = false;
    zip_int64_t n = zip_get_num_entries(za, 0);
    for (zip_int64_t i = 0; i < n && !found; i++) {
        const char *name = zip_get_name(za, (zip_uint64_t)i, ZIP_FL_ENC_RAW);
        if (name == NULL)
            continue;
        size_t nl = strlen(name);
        found = strcmp(name, "data.pkl") == 0 ||
                (nl > 9 && strcmp(name + nl - 9, "/data.pkl") == 0);
    }
    zip_discard(za);
    zip_error_fini(&zerr);
    return found;
}

static bool probe(const uint8_t *data, size_t len)
{
    return is_pickle_stream(data, len) || is_torch_zip(data, len);
}

static mg_status parse(const uint8_t *data, size_t len, mg_parse_result *out, mg_error *err)
{
    (void)out;
    if (is_torch_zip(data, len))
        return mg_fail(err, MG_E_FORMAT,
                       "unsafe format: a PyTorch zip holds a pickle (data.pkl), and loading a "
                       "pickle runs code; refused");
    return mg_fail(err, MG_E_FORMAT,
                   "unsafe format: a Python pickle runs code when it is loaded; refused");
}

const mg_format mg_format_pickle = {"pickle", probe, parse};
