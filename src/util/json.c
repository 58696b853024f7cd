#include "util/json.h"

#include <string.h>

json_t *mg_json_parse(const uint8_t *data, size_t len, const char *what, mg_status status,
                      mg_error *err)
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
