/* MXNet checkpoint cross-check: which graph variables have no parameter, and which
 * parameters no variable uses (see format/mxnet.h), and the pairing of the files of a
 * model into checkpoints (format/mxnet_checkpoint.h). */
#include <stdlib.h>
#include <string.h>

#include "format/mxnet.h"
#include "format/mxnet_checkpoint.h"

typedef struct param_key {
    const char *bound; /* the name with one "arg:"/"aux:" prefix stripped */
    size_t index;
} param_key;

static const char *strip_prefix(const char *name)
{
    if (strncmp(name, "arg:", 4) == 0 || strncmp(name, "aux:", 4) == 0)
        return name + 4;
    return name;
}

static int key_cmp(const void *a, const void *b)
{
    return strcmp(((const param_key *)a)->bound, ((const param_key *)b)->bound);
}

static mg_status push_copy(json_t *arr, const char *s, mg_error *err)
{
    json_t *v = json_string(s);
    if (v == NULL || json_array_append_new(arr, v) != 0)
        return mg_fail(err, MG_E_LIMIT, "mxnet checkpoint: out of memory for the report");
    return MG_OK;
}

mg_status mg_mxnet_checkpoint_report(const json_t *symbol_summary,
                                     const char *const *param_names, size_t n_params,
                                     json_t **out_report, mg_error *err)
{
    *out_report = NULL;
    const json_t *vars = json_object_get(symbol_summary, "variables");
    if (!json_is_array(vars) || (n_params > 0 && param_names == NULL))
        return mg_fail(err, MG_E_USAGE, "mxnet checkpoint: not a symbol summary");
    for (size_t i = 0; i < json_array_size(vars); i++) {
        if (!json_is_string(json_array_get(vars, i)))
            return mg_fail(err, MG_E_USAGE, "mxnet checkpoint: not a symbol summary");
    }
    param_key *keys = mg_calloc(n_params > 0 ? n_params : 1, sizeof *keys);
    bool *used = mg_calloc(n_params > 0 ? n_params : 1, sizeof *used);
    json_t *report = json_object(), *unbound = json_array(), *unused = json_array();
    mg_status st = MG_OK;
    if (keys == NULL || used == NULL || report == NULL || unbound == NULL || unused == NULL ||
        json_object_set(report, "unbound_variables", unbound) != 0 ||
        json_object_set(report, "unused_parameters", unused) != 0)
        st = mg_fail(err, MG_E_LIMIT, "mxnet checkpoint: out of memory for the report");
    for (size_t i = 0; i < n_params && st == MG_OK; i++)
        keys[i] = (param_key){strip_prefix(param_names[i]), i};
    if (st == MG_OK)
        if (n_params > 1)
            qsort(keys, n_params, sizeof *keys, key_cmp);
    for (size_t v = 0; v < json_array_size(vars) && st == MG_OK; v++) {
        const char *name = json_string_value(json_array_get(vars, v));
        /* Find the first key equal to `name`; every equal key is used by it. */
        size_t lo = 0, hi = n_params;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (strcmp(keys[mid].bound, name) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo == n_params || strcmp(keys[lo].bound, name) != 0) {
            st = push_copy(unbound, name, err);
            continue;
        }
        for (size_t k = lo; k < n_params && strcmp(keys[k].bound, name) == 0; k++)
            used[keys[k].index] = true;
    }
    for (size_t i = 0; i < n_params && st == MG_OK; i++) {
        if (!used[i])
            st = push_copy(unused, param_names[i], err);
    }
    json_decref(unbound);
    json_decref(unused);
    free(keys);
    free(used);
    if (st != MG_OK) {
        json_decref(report);
        return st;
    }
    *out_report = report;
    return MG_OK;
}

/* ---- the checkpoints of a model ------------------------------------------------------ */

/* The symbol file of a checkpoint's parameters: "PREFIX-<digits>.params" (the names
 * mx.model.save_checkpoint writes) belongs to "PREFIX-symbol.json" and to no other, so reports
 * cannot multiply as parameters x symbol files. A malloc'd path, or NULL when `path` is not
 * of that form (or out of memory). */
static char *checkpoint_symbol_of(const char *path)
{
    static const char sym[] = "symbol.json";
    size_t fl = strlen(path);
    if (fl < 9 || strcmp(path + fl - 7, ".params") != 0)
        return NULL;
    size_t i = fl - 7;
    while (i > 0 && path[i - 1] >= '0' && path[i - 1] <= '9')
        i--;
    if (i == fl - 7 || i == 0 || path[i - 1] != '-')
        return NULL;
    char *out = malloc(i + sizeof sym);
    if (out != NULL) {
        memcpy(out, path, i);
        memcpy(out + i, sym, sizeof sym);
    }
    return out;
}

typedef struct path_ref {
    const char *path;
    size_t file;
} path_ref;

static int cmp_path_ref(const void *a, const void *b)
{
    return strcmp(((const path_ref *)a)->path, ((const path_ref *)b)->path);
}

typedef struct ckpt_pair {
    size_t sym, params; /* file indexes */
} ckpt_pair;

static int cmp_ckpt_pair(const void *a, const void *b)
{
    const ckpt_pair *x = a, *y = b;
    if (x->sym != y->sym)
        return x->sym < y->sym ? -1 : 1;
    return (x->params > y->params) - (x->params < y->params);
}

/* One symbol file's report over the .params files `pairs[0..n)` (same `sym`). */
static mg_status one_report(mg_verified_file *files, const ckpt_pair *pairs, size_t n,
                            mg_error *err)
{
    mg_verified_file *sym = &files[pairs[0].sym];
    size_t count = 0;
    for (size_t k = 0; k < n; k++)
        count += files[pairs[k].params].parsed.count; /* <= files x MG_MAX_TENSORS */
    if (count == 0)
        return MG_OK;
    const char **names = mg_calloc(count, sizeof *names);
    if (names == NULL)
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    size_t c = 0;
    for (size_t k = 0; k < n; k++) {
        const mg_parse_result *r = &files[pairs[k].params].parsed;
        for (size_t j = 0; j < r->count; j++)
            names[c++] = r->tensors[j].name;
    }
    json_t *report = NULL;
    mg_status s = mg_mxnet_checkpoint_report(sym->parsed.metadata, names, count, &report, err);
    free(names);
    if (s != MG_OK) {
        mg_error_set_file(err, sym->path);
        return s;
    }
    if (json_object_set_new(sym->parsed.metadata, "checkpoint", report) != 0)
        return mg_fail(err, MG_E_LIMIT, "out of memory");
    return MG_OK;
}

mg_status mg_mxnet_checkpoint_reports(mg_verified_file *files, size_t n, mg_error *err)
{
    path_ref *order = mg_calloc(n ? n : 1, sizeof *order);
    ckpt_pair *pairs = mg_calloc(n ? n : 1, sizeof *pairs);
    mg_status s = MG_OK;
    if (order == NULL || pairs == NULL) {
        s = mg_fail(err, MG_E_LIMIT, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        order[i] = (path_ref){files[i].path, i};
    qsort(order, n, sizeof *order, cmp_path_ref);
    size_t np = 0;
    for (size_t i = 0; i < n; i++) {
        const mg_verified_file *f = &files[i];
        if (f->format != &mg_format_mxnet_params && f->format != &mg_format_npz)
            continue;
        char *want = checkpoint_symbol_of(f->path);
        if (want == NULL)
            continue;
        path_ref key = {want, 0};
        const path_ref *hit = bsearch(&key, order, n, sizeof *order, cmp_path_ref);
        free(want);
        if (hit != NULL && files[hit->file].format == &mg_format_mxnet_symbol)
            pairs[np++] = (ckpt_pair){hit->file, i};
    }
    qsort(pairs, np, sizeof *pairs, cmp_ckpt_pair);
    for (size_t a = 0, b; a < np && s == MG_OK; a = b) {
        for (b = a + 1; b < np && pairs[b].sym == pairs[a].sym; b++)
            ;
        s = one_report(files, pairs + a, b - a, err);
    }
out:
    free(order);
    free(pairs);
    return s;
}
