/* Format registry, detection by content, dtype table and the tensor-table helpers. */
#include "format/format.h"

#include <stdlib.h>
#include <string.h>

#include "util/checked.h"

static const struct {
    mg_dtype dtype;
    const char *name;
    size_t size;
} dtype_table[] = {
    {MG_DTYPE_BOOL, "BOOL", 1},       {MG_DTYPE_U8, "U8", 1},     {MG_DTYPE_I8, "I8", 1},
    {MG_DTYPE_U16, "U16", 2},         {MG_DTYPE_I16, "I16", 2},   {MG_DTYPE_U32, "U32", 4},
    {MG_DTYPE_I32, "I32", 4},         {MG_DTYPE_U64, "U64", 8},   {MG_DTYPE_I64, "I64", 8},
    {MG_DTYPE_F16, "F16", 2},         {MG_DTYPE_BF16, "BF16", 2}, {MG_DTYPE_F32, "F32", 4},
    {MG_DTYPE_F64, "F64", 8},         {MG_DTYPE_C64, "C64", 8},   {MG_DTYPE_F8_E4M3, "F8_E4M3", 1},
    {MG_DTYPE_F8_E5M2, "F8_E5M2", 1},
};

size_t mg_dtype_size(mg_dtype dtype)
{
    for (size_t i = 0; i < sizeof dtype_table / sizeof dtype_table[0]; i++) {
        if (dtype_table[i].dtype == dtype)
            return dtype_table[i].size;
    }
    return 0;
}

const char *mg_dtype_name(mg_dtype dtype)
{
    for (size_t i = 0; i < sizeof dtype_table / sizeof dtype_table[0]; i++) {
        if (dtype_table[i].dtype == dtype)
            return dtype_table[i].name;
    }
    return "?";
}

mg_dtype mg_dtype_from_name(const char *name)
{
    for (size_t i = 0; i < sizeof dtype_table / sizeof dtype_table[0]; i++) {
        if (strcmp(dtype_table[i].name, name) == 0)
            return dtype_table[i].dtype;
    }
    return MG_DTYPE_INVALID;
}

mg_status mg_budget_charge(mg_budget *budget, uint64_t bytes, const char *what, mg_error *err)
{
    if (budget == NULL || budget->limit == 0)
        return MG_OK;
    uint64_t used;
    if (__builtin_add_overflow(budget->used, bytes, &used) || used > budget->limit)
        return mg_fail(err, MG_E_LIMIT, "%s would take the memory parsers made in this load "
                       "over the budget of %llu bytes (policy limits.parser_memory)", what,
                       (unsigned long long)budget->limit);
    budget->used = used;
    return MG_OK;
}

json_t *mg_parse_json(mg_parse_result *res, const uint8_t *data, size_t len, const char *what,
                      const mg_json_caps *caps, mg_error *err)
{
    uint64_t cost = 0;
    if (mg_json_prescan(data, len, caps, what, &cost, err) != MG_OK ||
        mg_budget_charge(res->budget, cost, what, err) != MG_OK)
        return NULL;
    return mg_json_load_prescanned(data, len, what, MG_E_FORMAT, err);
}

mg_status mg_parse_add_tensor(mg_parse_result *res, const mg_tensor_entry *t, const char *name,
                              size_t name_len, mg_error *err)
{
    if (name_len > MG_MAX_NAME_LEN)
        return mg_fail(err, MG_E_LIMIT, "tensor name of %zu bytes exceeds the cap of %u", name_len,
                       MG_MAX_NAME_LEN);
    if (memchr(name, '\0', name_len) != NULL)
        return mg_fail(err, MG_E_FORMAT, "tensor name contains a NUL byte");
    if (t->ndim > MG_MAX_NDIM)
        return mg_fail(err, MG_E_FORMAT, "tensor has %u dimensions, more than %d", t->ndim,
                       MG_MAX_NDIM);
    if (res->count >= MG_MAX_TENSORS)
        return mg_fail(err, MG_E_LIMIT, "more than %u tensors in one file", MG_MAX_TENSORS);
    if (mg_budget_charge(res->budget, (uint64_t)name_len + 1, "a tensor name", err) != MG_OK)
        return MG_E_LIMIT;
    if (res->count == res->cap) {
        size_t cap = res->cap == 0 ? 16 : res->cap * 2;
        if (mg_budget_charge(res->budget, (uint64_t)(cap - res->cap) * sizeof *res->tensors,
                             "the tensor table", err) != MG_OK)
            return MG_E_LIMIT;
        mg_tensor_entry *n = mg_reallocarray(res->tensors, cap, sizeof *n);
        if (n == NULL)
            return mg_fail(err, MG_E_LIMIT, "out of memory for the tensor table");
        res->tensors = n;
        res->cap = cap;
    }
    char *copy = mg_strndup(name, name_len);
    if (copy == NULL)
        return mg_fail(err, MG_E_LIMIT, "out of memory for a tensor name");
    mg_tensor_entry *e = &res->tensors[res->count++];
    *e = *t;
    e->name = copy;
    return MG_OK;
}

mg_status mg_parse_add_blob(mg_parse_result *res, size_t len, uint32_t *index, uint8_t **data,
                            mg_error *err)
{
    if (res->blob_count >= UINT32_MAX - 1)
        return mg_fail(err, MG_E_LIMIT, "too many buffers");
    if (mg_budget_charge(res->budget, len, "an inflated buffer", err) != MG_OK)
        return MG_E_LIMIT;
    if (res->blob_count == res->blob_cap) {
        size_t cap = res->blob_cap == 0 ? 8 : res->blob_cap * 2;
        mg_region *n = mg_reallocarray(res->blobs, cap, sizeof *n);
        if (n == NULL)
            return mg_fail(err, MG_E_LIMIT, "out of memory");
        res->blobs = n;
        res->blob_cap = cap;
    }
    mg_region *r = &res->blobs[res->blob_count];
    memset(r, 0, sizeof *r);
    mg_status st = mg_region_alloc(r, len, err);
    if (st != MG_OK)
        return st;
    res->blob_count++;
    *index = (uint32_t)res->blob_count;
    *data = r->data;
    return MG_OK;
}

void mg_parse_result_free(mg_parse_result *res)
{
    if (res == NULL)
        return;
    for (size_t i = 0; i < res->count; i++)
        free(res->tensors[i].name);
    free(res->tensors);
    for (size_t i = 0; i < res->blob_count; i++)
        mg_region_free(&res->blobs[i]);
    free(res->blobs);
    json_decref(res->metadata);
    memset(res, 0, sizeof *res);
}

mg_status mg_tensor_entry_check(const mg_tensor_entry *t, uint64_t size, mg_error *err)
{
    if (!mg_range_ok(t->data_offset, t->nbytes, size))
        return mg_fail(err, MG_E_FORMAT, "tensor '%.200s' data lies outside its file", t->name);
    if (t->dtype != MG_DTYPE_GGML_BLOCK) {
        uint64_t elements, bytes;
        size_t esize = mg_dtype_size(t->dtype);
        if (esize == 0)
            return mg_fail(err, MG_E_FORMAT, "tensor '%.200s' has no valid dtype", t->name);
        if (!mg_shape_elements(t->shape, t->ndim, &elements) ||
            !mg_mul_u64(elements, esize, &bytes))
            return mg_fail(err, MG_E_FORMAT, "tensor '%.200s' size overflows", t->name);
        if (bytes != t->nbytes)
            return mg_fail(err, MG_E_FORMAT, "tensor '%.200s' byte size does not match its shape",
                           t->name);
    }
    return MG_OK;
}

/* ---- detection ---------------------------------------------------------------------- */

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/*
 * Formats recognised by content, strongest probe first: full magic numbers (npy, GGUF, the
 * MXNet list magic with its zero reserved word), then pickle (a PyTorch zip is recognised
 * by its data.pkl member, but a pickle stream only by two bytes, 0x80 0x02..0x05), then the
 * zip signature of npz and the length-plus-brace of safetensors. Probes can overlap: a
 * safetensors header of 640 bytes starts with 0x80 0x02, one of 67,324,752 bytes with
 * "PK\3\4". Where several probes match, a strict parse decides (see mg_format_detect).
 */
static const mg_format *const by_content[] = {
    &mg_format_npy,    &mg_format_gguf, &mg_format_mxnet_params,
    &mg_format_pickle, &mg_format_npz,  &mg_format_safetensors,
};

/* A file whose name claims a format is parsed as that format even when its content does not
 * match, so that it fails with that parser's precise error instead of passing as an asset.
 * The JSON formats are recognised by their name only: JSON content alone (a tokenizer whose
 * vocabulary holds "weight_map", a config with "nodes" and "arg_nodes" keys, a
 * pytorch_model.bin.index.json) never makes a file anything but an asset. */
static const struct {
    const char *suffix;
    const mg_format *format;
} claimed[] = {
    {".safetensors", &mg_format_safetensors}, {".npy", &mg_format_npy},
    {".npz", &mg_format_npz},                 {".gguf", &mg_format_gguf},
    {".params", &mg_format_mxnet_params},     {"-symbol.json", &mg_format_mxnet_symbol},
    {".safetensors.index.json", &mg_format_safetensors_index},
    {".pt", &mg_format_pickle},               {".pth", &mg_format_pickle},
    {".pkl", &mg_format_pickle},              {".pickle", &mg_format_pickle},
    {".ckpt", &mg_format_pickle},
};

static const mg_format *claimed_by_name(const char *path)
{
    for (size_t i = 0; path != NULL && i < sizeof claimed / sizeof claimed[0]; i++) {
        if (ends_with(path, claimed[i].suffix))
            return claimed[i].format;
    }
    return NULL;
}

static bool parses_as(const mg_format *f, const uint8_t *data, size_t len)
{
    mg_parse_result res;
    mg_error err;
    memset(&res, 0, sizeof res);
    memset(&err, 0, sizeof err);
    mg_status st = f->parse(data, len, &res, &err);
    mg_parse_result_free(&res);
    return st == MG_OK;
}

const mg_format *mg_format_detect(const uint8_t *data, size_t len, const char *path)
{
    static const uint8_t empty[1];
    if (data == NULL)
        data = empty, len = 0;
    enum { N = sizeof by_content / sizeof by_content[0] };
    const mg_format *cand[N];
    size_t n = 0;
    for (size_t i = 0; i < N; i++) {
        if (by_content[i]->probe(data, len))
            cand[n++] = by_content[i];
    }
    const mg_format *named = claimed_by_name(path);
    if (n == 0)
        return named;
    if (n == 1)
        return cand[0];
    /* Several probes match: a weak probe must never beat a strict parse. The first format
     * (in the order above) that parses the bytes wins; pickle never parses. When none does,
     * the name's claim among them decides, else the strongest probe, so that the error is
     * the most telling one (every one of them refuses the file). */
    for (size_t i = 0; i < n; i++) {
        if (cand[i] != &mg_format_pickle && parses_as(cand[i], data, len))
            return cand[i];
    }
    for (size_t i = 0; i < n; i++) {
        if (cand[i] == named)
            return named;
    }
    return cand[0];
}

const mg_format *mg_format_detect_head(const uint8_t *head, size_t head_len, uint64_t size,
                                       const char *path)
{
    if (size <= head_len)
        return mg_format_detect(head, head_len, path);
    enum { N = sizeof by_content / sizeof by_content[0] };
    const mg_format *cand[N];
    size_t n = 0;
    for (size_t i = 0; i < N; i++) {
        if (by_content[i]->probe(head, head_len))
            cand[n++] = by_content[i];
    }
    const mg_format *named = claimed_by_name(path);
    if (n == 0)
        return named;
    /* The one strict parse a head allows: a safetensors header held whole in the head, whose
     * tensors tile the file's size exactly, beats the weaker probes it can overlap (a header of
     * 640 bytes starts with the pickle protocol bytes 0x80 0x02). */
    if (n > 1 && cand[n - 1] == &mg_format_safetensors &&
        mg_safetensors_head_parses(head, head_len, size))
        return &mg_format_safetensors;
    for (size_t i = 0; i < n; i++) {
        if (cand[i] == named || (cand[i] == &mg_format_npz && named == &mg_format_pickle))
            return named;
    }
    return cand[0];
}
