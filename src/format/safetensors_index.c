/*
 * model.safetensors.index.json of a sharded safetensors set:
 *   {"metadata": {...}, "weight_map": {"<tensor>": "<shard file name>", ...}}
 * Parsed strictly here; the cross-check against the shards (mg_safetensors_index_check, at
 * the end) is run by the loader once every shard is parsed. The weight map is kept as
 * metadata.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/format.h"
#include "format/safetensors_index.h"
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
    json_t *root = mg_parse_json(out, data, len, "safetensors index",
                                 &mg_json_caps_st_index, err);
    if (root == NULL)
        return err->status;
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

/* ---- the cross-check against the shards ---------------------------------------------- */

typedef struct tensor_ref {
    const char *name;
    size_t file;  /* index into the model's files */
    bool listed;  /* named for this file by the weight map */
} tensor_ref;

typedef struct file_ref {
    const char *path;
    size_t file;
} file_ref;

static int cmp_file_ref(const void *a, const void *b)
{
    return strcmp(((const file_ref *)a)->path, ((const file_ref *)b)->path);
}

static int cmp_tensor_ref(const void *a, const void *b)
{
    const tensor_ref *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c != 0 ? c : (x->file > y->file) - (x->file < y->file);
}

/* The file whose path is `path`, by binary search over `order` (sorted by path). */
static const size_t *find_path(const file_ref *order, size_t n, const char *path)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(order[mid].path, path);
        if (c == 0)
            return &order[mid].file;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* The first tensor_ref named `name`, or `n` when there is none. */
static size_t first_named(const tensor_ref *refs, size_t n, const char *name)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(refs[mid].name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && strcmp(refs[lo].name, name) == 0 ? lo : n;
}

/* True when `name` is "STEM-NNNNN-of-NNNNN.safetensors" with STEM the index's name
 * ("STEM.safetensors.index.json"): a file named as a shard of that set. */
static bool is_shard_of(const char *name, const char *index_name)
{
    static const char isuffix[] = ".safetensors.index.json";
    size_t il = strlen(index_name);
    if (il < sizeof isuffix - 1)
        return false;
    size_t stem = il - (sizeof isuffix - 1);
    if (strcmp(index_name + stem, isuffix) != 0 || strncmp(name, index_name, stem) != 0 ||
        name[stem] != '-')
        return false;
    const char *p = name + stem + 1;
    size_t d = strspn(p, "0123456789");
    if (d == 0 || strncmp(p + d, "-of-", 4) != 0)
        return false;
    p += d + 4;
    d = strspn(p, "0123456789");
    return d > 0 && strcmp(p + d, ".safetensors") == 0;
}

static bool in_folder(const mg_verified_file *f, const char *base, size_t blen)
{
    return f->format == &mg_format_safetensors && strncmp(f->path, base, blen) == 0;
}

mg_status mg_safetensors_index_check(const mg_verified_file *files, size_t nfiles,
                                     const mg_verified_file *index, mg_error *err)
{
    json_t *map = json_object_get(index->parsed.metadata, "weight_map");
    char base[4096] = "", path[4096];
    const char *slash = strrchr(index->path, '/');
    size_t blen = 0;
    if (slash != NULL) {
        blen = (size_t)(slash - index->path) + 1;
        if (blen >= sizeof base)
            return mg_fail(err, MG_E_LIMIT, "path too long");
        memcpy(base, index->path, blen);
        base[blen] = '\0';
    }
    size_t total = 0;
    for (size_t i = 0; i < nfiles; i++) {
        if (in_folder(&files[i], base, blen) &&
            __builtin_add_overflow(total, files[i].parsed.count, &total))
            return mg_fail(err, MG_E_LIMIT, "too many tensors");
    }
    file_ref *order = mg_calloc(nfiles ? nfiles : 1, sizeof *order);
    bool *named = mg_calloc(nfiles ? nfiles : 1, sizeof *named);
    tensor_ref *refs = mg_calloc(total ? total : 1, sizeof *refs);
    mg_status s = MG_OK;
    if (order == NULL || named == NULL || refs == NULL) {
        s = mg_fail(err, MG_E_LIMIT, "out of memory for the index cross-check");
        goto out;
    }
    for (size_t i = 0; i < nfiles; i++)
        order[i] = (file_ref){files[i].path, i};
    qsort(order, nfiles, sizeof *order, cmp_file_ref);
    size_t k = 0;
    for (size_t i = 0; i < nfiles; i++) {
        if (!in_folder(&files[i], base, blen))
            continue;
        for (size_t j = 0; j < files[i].parsed.count; j++)
            refs[k++] = (tensor_ref){files[i].parsed.tensors[j].name, i, false};
    }
    qsort(refs, total, sizeof *refs, cmp_tensor_ref);

    mg_error_set_file(err, index->path);
    const char *tensor;
    json_t *shard;
    json_object_foreach(map, tensor, shard) {
        const char *sname = json_string_value(shard);
        int pn = snprintf(path, sizeof path, "%s%s", base, sname);
        const size_t *fi = pn < 0 || (size_t)pn >= sizeof path
                               ? NULL : find_path(order, nfiles, path);
        if (fi == NULL) {
            s = mg_fail(err, MG_E_FORMAT, "index names shard '%.200s', which is not in the "
                        "model", sname);
            goto out;
        }
        if (files[*fi].format != &mg_format_safetensors) {
            s = mg_fail(err, MG_E_FORMAT, "index names shard '%.200s', which is not a "
                        "safetensors file", sname);
            goto out;
        }
        named[*fi] = true;
        bool found = false;
        for (size_t r = first_named(refs, total, tensor);
             r < total && !found && strcmp(refs[r].name, tensor) == 0; r++) {
            if (refs[r].file == *fi)
                found = refs[r].listed = true;
        }
        if (!found) {
            s = mg_fail(err, MG_E_FORMAT, "tensor '%.200s' is not in shard '%.200s' as the "
                        "index says", tensor, sname);
            goto out;
        }
    }
    /* Other safetensors files beside the index (a consolidated.safetensors, an adapters/
     * folder) are not part of the set and load as files of their own, unless they are named
     * like its shards (STEM-0000K-of-0000N.safetensors): then the index left one out. */
    for (size_t i = 0; i < nfiles; i++) {
        if (in_folder(&files[i], base, blen) && !named[i] &&
            is_shard_of(files[i].path + blen, index->path + blen)) {
            s = mg_fail(err, MG_E_FORMAT, "safetensors file '%.200s' is named as a shard of "
                        "this index but the index does not name it", files[i].path);
            goto out;
        }
    }
    /* Weight-map keys are unique, so each marks one (name, file): every unmarked one of a
     * named shard is a tensor the index does not list for its file (missing, or a name in
     * two shards). */
    for (size_t r = 0; r < total; r++) {
        if (!refs[r].listed && named[refs[r].file]) {
            s = mg_fail(err, MG_E_FORMAT, "tensor '%.200s' of '%.200s' is not listed for that "
                        "shard in the index (duplicate across shards?)", refs[r].name,
                        files[refs[r].file].path);
            goto out;
        }
    }
    err->file[0] = '\0';
out:
    free(order);
    free(named);
    free(refs);
    return s;
}
