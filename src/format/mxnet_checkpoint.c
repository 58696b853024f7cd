/* MXNet checkpoint cross-check: which graph variables have no parameter, and which
 * parameters no variable uses (see format/mxnet.h). */
#include <stdlib.h>
#include <string.h>

#include "format/mxnet.h"

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
