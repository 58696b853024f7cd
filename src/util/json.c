#include "util/json.h"

#include <string.h>

/* Sized to what real files need, with room (README "Limits"); values are counted as
 * containers + commas + 1. A policy or manifest of 100,000 pinned files (the cap of files)
 * is 300,000-400,000 values; a safetensors header 8 values per 2-D tensor (8,000,000: about
 * a million tensors; the largest published files have tens of thousands); an index 1 value
 * per weight_map entry (the largest published, ~100k entries); MXNet symbols as before. No
 * real file of any of these nests deeper than 6. */
const mg_json_caps mg_json_caps_policy = {1000000u, 16u};
const mg_json_caps mg_json_caps_manifest = {1000000u, 16u};
const mg_json_caps mg_json_caps_st_header = {8000000u, 16u};
const mg_json_caps mg_json_caps_st_index = {4000000u, 16u};
const mg_json_caps mg_json_caps_mxnet_symbol = {1000000u, 32u};
const mg_json_caps mg_json_caps_metadata = {8000000u, 64u};

mg_status mg_json_prescan(const uint8_t *data, size_t len, const mg_json_caps *caps,
                          const char *what, uint64_t *cost, mg_error *err)
{
    size_t n = 1;
    unsigned depth = 0;
    bool in_string = false;
    /* Upper estimate of jansson's memory (measured with glibc malloc: an empty object 232
     * bytes, an empty array 135, a number 40, a short string 88, a member's key ~100). */
    uint64_t objects = 0, arrays = 0, strings = 0, keys = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = data[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == '"') {
            in_string = true;
            strings++;
            continue;
        }
        if (c == ':') {
            keys++;
            continue;
        }
        if (c == '[' || c == '{') {
            n++;
            if (c == '{')
                objects++;
            else
                arrays++;
            if (++depth > caps->depth)
                return mg_fail(err, MG_E_LIMIT, "%s: JSON nested deeper than %u levels", what,
                               caps->depth);
        } else if (c == ']' || c == '}') {
            if (depth > 0)
                depth--;
        } else if (c == ',') {
            n++;
        } else {
            continue;
        }
        if (n > caps->values)
            return mg_fail(err, MG_E_LIMIT, "%s: more than %zu JSON values", what, caps->values);
    }
    if (cost != NULL)
        *cost = objects * 256 + arrays * 160 + (uint64_t)n * 48 + keys * 48 + strings * 64 +
                len;
    return MG_OK;
}

json_t *mg_json_parse(const uint8_t *data, size_t len, const char *what, mg_status status,
                      const mg_json_caps *caps, mg_error *err)
{
    if (mg_json_prescan(data, len, caps, what, NULL, err) != MG_OK)
        return NULL;
    return mg_json_load_prescanned(data, len, what, status, err);
}

json_t *mg_json_load_prescanned(const uint8_t *data, size_t len, const char *what,
                                mg_status status, mg_error *err)
{
    if (len == 0 || data == NULL) {
        mg_fail_fmt(err, status, "%s: empty file, not JSON", what);
        return NULL;
    }
    if (memchr(data, '\0', len) != NULL) {
        mg_fail_fmt(err, status, "%s: a NUL byte is not allowed in JSON", what);
        return NULL;
    }
    json_error_t jerr;
    json_t *root = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        /* jansson quotes the offending token ("near '...'"): keep file bytes out of messages. */
        char *near = strstr(jerr.text, " near ");
        if (near != NULL)
            *near = '\0';
        mg_fail_fmt(err, status, "%s: invalid JSON at line %d column %d: %s", what, jerr.line,
                jerr.column, jerr.text);
        return NULL;
    }
    return root;
}

bool mg_json_u64(const json_t *v, uint64_t *out)
{
    if (!json_is_integer(v))
        return false;
    json_int_t i = json_integer_value(v);
    if (i < 0)
        return false;
    *out = (uint64_t)i;
    return true;
}
