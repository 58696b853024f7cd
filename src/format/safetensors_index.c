/*
 * model.safetensors.index.json of a sharded safetensors set:
 *   {"metadata": {...}, "weight_map": {"<tensor>": "<shard file name>", ...}}
 * Parsed strictly here; the cross-check against the shards is done by the loader once every
 * shard is parsed (load.c, check_sharded_index). The weight map is kept as metadata.
 */
#include <string.h>

#include "format/format.h"
#include "util/json.h"

static bool probe(const uint8_t *data, size_t len)
{
    static const char key[] = "\"weight_map\"";
    size_t i = 0;
    while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r'))
        i++;
    if (i >= len || data[i] != '{')
        return false;
    size_t klen = sizeof key - 1;
    for (; i + klen <= len; i++) {
        if (data[i] == '"' && memcmp(data + i, key, klen) == 0)
            return true;
    }
    return false;
}

static bool safe_shard_name(const char *s)
{
    return s[0] != '\0' && strchr(s, '/') == NULL && strchr(s, '\\') == NULL &&
           strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

static mg_status parse(const uint8_t *data, size_t len, mg_parse_result *out, mg_error *err)
{
    if (len > MG_MAX_JSON_ASSET_BYTES)
        return mg_fail(err, MG_E_LIMIT, "safetensors index larger than %u bytes",
                       MG_MAX_JSON_ASSET_BYTES);
    json_t *root = mg_json_parse(data, len, "safetensors index", MG_E_FORMAT, err);
    if (root == NULL)
        return MG_E_FORMAT;
    mg_status s = MG_OK;
    const char *k;
    json_t *v;
    if (!json_is_object(root)) {
        s = mg_fail(err, MG_E_FORMAT, "safetensors index: not a JSON object");
        goto out;
    }
    json_object_foreach(root, k, v) {
        if (strcmp(k, "metadata") != 0 && strcmp(k, "weight_map") != 0) {
            s = mg_fail(err, MG_E_FORMAT, "safetensors index: unknown key '%.100s'", k);
            goto out;
        }
    }
    json_t *map = json_object_get(root, "weight_map");
    json_t *meta = json_object_get(root, "metadata");
    if (!json_is_object(map) || json_object_size(map) == 0) {
        s = mg_fail(err, MG_E_FORMAT, "safetensors index: weight_map must be a non-empty object");
        goto out;
    }
    if (meta != NULL && !json_is_object(meta) && !json_is_null(meta)) {
        s = mg_fail(err, MG_E_FORMAT, "safetensors index: metadata must be an object");
        goto out;
    }
    json_object_foreach(map, k, v) {
        if (!json_is_string(v) || !safe_shard_name(json_string_value(v))) {
            s = mg_fail(err, MG_E_FORMAT, "safetensors index: tensor '%.200s' names an unsafe "
                        "or invalid shard file", k);
            goto out;
        }
    }
    out->metadata = json_incref(root);
out:
    json_decref(root);
    return s;
}

const mg_format mg_format_safetensors_index = {"safetensors-index", probe, parse};
