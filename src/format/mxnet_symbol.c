/*
 * MXNet `-symbol.json` graphs (mx.sym.save, save_checkpoint, Gluon export): formats.md §4.6.
 *
 * The graph is data: it is validated, never executed. Rules:
 *   - strict JSON (duplicate keys refused), at most MG_MAX_JSON_ASSET_BYTES and
 *     mg_json_caps_mxnet_symbol values and depth (MG_E_LIMIT, util/json.h);
 *   - top level: "nodes", "arg_nodes", "heads" required; "node_row_ptr", "attrs" optional;
 *     any other key is refused (NNVM's reader refuses unknown fields too);
 *   - nodes: a non-empty array of objects with "op" (1..256 chars of [A-Za-z0-9_.:-]; any
 *     such name is accepted, there is no op allow-list since nothing is run), "name" (a
 *     string) and "inputs"; optional "param"/"attr"/"attrs" objects whose values are all
 *     strings, "control_deps" (earlier node ids), "backward_source_id" (-1 or a node id);
 *     other node keys (e.g. "subgraphs") are accepted and ignored;
 *   - an input or head is [node_id, output_index] or [node_id, output_index, version] of
 *     non-negative integers; inputs only reference earlier nodes (so the graph is acyclic);
 *     a variable ("null" op) has exactly one output; with node_row_ptr the output index must
 *     be below the node's output count;
 *   - "null" nodes take no inputs; two variables may not share a name (parameters bind to
 *     variables by name);
 *   - arg_nodes: distinct ids of "null" nodes;
 *   - node_row_ptr: n_nodes + 1 non-decreasing integers starting at 0;
 *   - attrs: an object of typed values [type_name, value]; "mxnet_version" must be
 *     ["int", N] with 0 <= N <= MG_MXNET_MAX_VERSION (missing means 0.8.0, i.e. 800).
 * The summary set as metadata is described in format/mxnet.h.
 */
#include <stdlib.h>
#include <string.h>

#include "format/format.h"
#include "format/mxnet.h"
#include "util/json.h"

#define MAX_ENTRY_FIELD UINT64_C(0xFFFFFFFF) /* NNVM keeps output indices as uint32 */

typedef struct graph {
    size_t n_nodes;
    const json_t *nodes;
    const json_t *row_ptr; /* NULL when absent */
    bool *is_variable;     /* per node */
} graph;

static bool json_skip_ws_brace(const uint8_t *data, size_t len, size_t *pos)
{
    size_t i = 0;
    while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r'))
        i++;
    *pos = i;
    return i < len && data[i] == '{';
}

static bool contains(const uint8_t *data, size_t len, const char *needle)
{
    size_t m = strlen(needle);
    if (m == 0 || len < m)
        return false;
    for (size_t i = 0; i + m <= len; i++) {
        if (data[i] == (uint8_t)needle[0] && memcmp(data + i, needle, m) == 0)
            return true;
    }
    return false;
}

static bool probe(const uint8_t *data, size_t len)
{
    size_t pos;
    if (!json_skip_ws_brace(data, len, &pos))
        return false;
    return contains(data + pos, len - pos, "\"nodes\"") &&
           contains(data + pos, len - pos, "\"arg_nodes\"");
}

static bool op_char_ok(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == ':' || c == '-';
}

static mg_status check_op(const json_t *op, size_t i, mg_error *err)
{
    if (!json_is_string(op))
        return mg_fail(err, MG_E_FORMAT, "mxnet-symbol: node %zu: \"op\" is not a string", i);
    const char *s = json_string_value(op);
    size_t n = json_string_length(op);
    if (n == 0 || n > MG_MXNET_MAX_OP_LEN)
        return mg_fail(err, MG_E_FORMAT, "mxnet-symbol: node %zu: op name of %zu bytes (must be "
                       "1..%u)", i, n, MG_MXNET_MAX_OP_LEN);
    for (size_t k = 0; k < n; k++) {
        if (!op_char_ok(s[k]))
            return mg_fail(err, MG_E_FORMAT, "mxnet-symbol: node %zu: op name has a character "
                           "outside [A-Za-z0-9_.:-]", i);
    }
    return MG_OK;
}

static mg_status check_string_map(const json_t *obj, const char *key, size_t i, mg_error *err)
{
    if (obj == NULL)
        return MG_OK;
    if (!json_is_object(obj))
        return mg_fail(err, MG_E_FORMAT, "mxnet-symbol: node %zu: \"%s\" is not an object", i,
                       key);
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)obj, k, v) {
        if (!json_is_string(v))
            return mg_fail(err, MG_E_FORMAT, "mxnet-symbol: node %zu: %s value '%.200s' is not "
                           "a string", i, key, k);
    }
    return MG_OK;
}

static bool get_index(const json_t *v, uint64_t max, uint64_t *out)
{
    return mg_json_u64(v, out) && *out <= max;
}

/* Outputs of node `id`: from node_row_ptr when present; a variable has exactly one. */
static bool output_ok(const graph *g, size_t id, uint64_t index)
{
    if (g->is_variable[id] && index != 0)
        return false;
    if (g->row_ptr != NULL) {
        uint64_t lo, hi;
        if (!mg_json_u64(json_array_get(g->row_ptr, id), &lo) ||
            !mg_json_u64(json_array_get(g->row_ptr, id + 1), &hi))
            return false;
        return index < hi - lo; /* hi >= lo was checked */
    }
    return index <= MAX_ENTRY_FIELD;
}

/* [node_id, output_index(, version)] with node_id < `limit`; `what` and `i` name it in
 * messages ("input of node 4", "head 0"). */
static mg_status check_entry(const graph *g, const json_t *e, size_t limit, const char *what,
                             size_t i, mg_error *err)
{
    size_t n = json_array_size(e);
    uint64_t id, index, version;
    if (!json_is_array(e) || (n != 2 && n != 3))
        return mg_fail(err, MG_E_FORMAT, "mxnet-symbol: %s %zu: entry must be [node_id, "
                       "output_index(, version)]", what, i);
    if (!mg_json_u64(json_array_get(e, 0), &id))
        return mg_fail(err, MG_E_FORMAT, "mxnet-symbol: %s %zu: node id is not a non-negative "
                       "integer", what, i);
    if (id >= limit)
        return mg_fail(err, MG_E_FORMAT, "mxnet-symbol: %s %zu: node id %llu %s", what, i,
                       (unsigned long long)id,
                       limit == g->n_nodes ? "is out of range" : "is not an earlier node");
    if (!get_index(json_array_get(e, 1), MAX_ENTRY_FIELD, &index) ||
        !output_ok(g, (size_t)id, index))
        return mg_fail(err, MG_E_FORMAT, "mxnet-symbol: %s %zu: invalid output index for node "
                       "%llu", what, i, (unsigned long long)id);
    if (n == 3 && !get_index(json_array_get(e, 2), MAX_ENTRY_FIELD, &version))
        return mg_fail(err, MG_E_FORMAT, "mxnet-symbol: %s %zu: invalid version", what, i);
    return MG_OK;
}

static mg_status check_node(const graph *g, size_t i, mg_error *err)
{
    const json_t *node = json_array_get(g->nodes, i);
    const json_t *name = json_object_get(node, "name");
    const json_t *inputs = json_object_get(node, "inputs");
    mg_status st;
    if (!json_is_string(name))
        return mg_fail(err, MG_E_FORMAT, "mxnet-symbol: node %zu: \"name\" missing or not a "
                       "string", i);
    if (json_string_length(name) > MG_MAX_NAME_LEN)
        return mg_fail(err, MG_E_LIMIT, "mxnet-symbol: node %zu: name exceeds the cap of %u "
                       "bytes", i, MG_MAX_NAME_LEN);
    if (!json_is_array(inputs))
        return mg_fail(err, MG_E_FORMAT, "mxnet-symbol: node %zu: \"inputs\" missing or not an "
                       "array", i);
    if (g->is_variable[i] && json_array_size(inputs) != 0)
        return mg_fail(err, MG_E_FORMAT, "mxnet-symbol: node %zu: a variable has inputs", i);
    for (size_t k = 0; k < json_array_size(inputs); k++) {
        st = check_entry(g, json_array_get(inputs, k), i, "input of node", i, err);
        if (st != MG_OK)
            return st;
    }
    static const char *const maps[] = {"param", "attr", "attrs"};
    for (size_t k = 0; k < sizeof maps / sizeof maps[0]; k++) {
        st = check_string_map(json_object_get(node, maps[k]), maps[k], i, err);
        if (st != MG_OK)
            return st;
    }
    const json_t *deps = json_object_get(node, "control_deps");
    if (deps != NULL) {
        if (!json_is_array(deps))
            return mg_fail(err, MG_E_FORMAT, "mxnet-symbol: node %zu: \"control_deps\" is not "
                           "an array", i);
        for (size_t k = 0; k < json_array_size(deps); k++) {
            uint64_t id;
            if (!mg_json_u64(json_array_get(deps, k), &id) || id >= i)
                return mg_fail(err, MG_E_FORMAT, "mxnet-symbol: node %zu: control dependency "
                               "is not an earlier node", i);
        }
    }
    const json_t *bsid = json_object_get(node, "backward_source_id");
    if (bsid != NULL) {
        json_int_t v = json_integer_value(bsid);
        if (!json_is_integer(bsid) || v < -1 || (v >= 0 && (uint64_t)v >= g->n_nodes))
            return mg_fail(err, MG_E_FORMAT, "mxnet-symbol: node %zu: invalid "
                           "\"backward_source_id\"", i);
    }
    return MG_OK;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Refuse two variables with the same name: parameters bind to variables by name. */
static mg_status check_variable_names(const graph *g, size_t n_vars, mg_error *err)
{
    if (n_vars < 2)
        return MG_OK;
    const char **names = mg_calloc(n_vars, sizeof *names);
    if (names == NULL)
        return mg_fail(err, MG_E_LIMIT, "mxnet-symbol: out of memory");
    size_t k = 0;
    for (size_t i = 0; i < g->n_nodes; i++) {
        if (g->is_variable[i])
            names[k++] = json_string_value(json_object_get(json_array_get(g->nodes, i), "name"));
    }
    if (k > 1)
        qsort(names, k, sizeof *names, str_cmp);
    mg_status st = MG_OK;
    for (size_t i = 1; i < k && st == MG_OK; i++) {
        if (strcmp(names[i - 1], names[i]) == 0)
            st = mg_fail(err, MG_E_FORMAT, "mxnet-symbol: two variables are named '%.200s'",
                         names[i]);
    }
    free(names);
    return st;
}

static mg_status check_row_ptr(const graph *g, mg_error *err)
{
    if (g->row_ptr == NULL)
        return MG_OK;
    if (!json_is_array(g->row_ptr) || json_array_size(g->row_ptr) != g->n_nodes + 1)
        return mg_fail(err, MG_E_FORMAT, "mxnet-symbol: \"node_row_ptr\" must be an array of "
                       "n_nodes + 1 integers");
    uint64_t prev = 0;
    for (size_t i = 0; i <= g->n_nodes; i++) {
        uint64_t v;
        if (!mg_json_u64(json_array_get(g->row_ptr, i), &v) || (i == 0 && v != 0) || v < prev)
            return mg_fail(err, MG_E_FORMAT, "mxnet-symbol: \"node_row_ptr\" must start at 0 "
                           "and never decrease");
        prev = v;
    }
    return MG_OK;
}

static mg_status check_arg_nodes(const graph *g, const json_t *arg_nodes, mg_error *err)
{
    if (!json_is_array(arg_nodes))
        return mg_fail(err, MG_E_FORMAT, "mxnet-symbol: \"arg_nodes\" missing or not an array");
    bool *seen = mg_calloc(g->n_nodes, sizeof *seen);
    if (seen == NULL)
        return mg_fail(err, MG_E_LIMIT, "mxnet-symbol: out of memory");
    mg_status st = MG_OK;
    for (size_t k = 0; k < json_array_size(arg_nodes) && st == MG_OK; k++) {
        uint64_t id;
        if (!mg_json_u64(json_array_get(arg_nodes, k), &id) || id >= g->n_nodes)
            st = mg_fail(err, MG_E_FORMAT, "mxnet-symbol: arg_nodes[%zu] is not a node id", k);
        else if (!g->is_variable[id])
            st = mg_fail(err, MG_E_FORMAT, "mxnet-symbol: arg_nodes[%zu] (node %llu) is not a "
                         "variable", k, (unsigned long long)id);
        else if (seen[id])
            st = mg_fail(err, MG_E_FORMAT, "mxnet-symbol: arg_nodes lists node %llu twice",
                         (unsigned long long)id);
        else
            seen[id] = true;
    }
    free(seen);
    return st;
}

/* Top-level "attrs": typed values; mxnet_version ["int", N]. */
static mg_status check_graph_attrs(const json_t *attrs, json_int_t *version, mg_error *err)
{
    *version = MG_MXNET_DEFAULT_VERSION;
    if (attrs == NULL)
        return MG_OK;
    if (!json_is_object(attrs))
        return mg_fail(err, MG_E_FORMAT, "mxnet-symbol: \"attrs\" is not an object");
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)attrs, k, v) {
        if (!json_is_array(v) || json_array_size(v) != 2 || !json_is_string(json_array_get(v, 0)))
            return mg_fail(err, MG_E_FORMAT, "mxnet-symbol: graph attribute '%.200s' is not a "
                           "[type, value] pair", k);
    }
    const json_t *mv = json_object_get(attrs, "mxnet_version");
    if (mv == NULL)
        return MG_OK;
    const json_t *n = json_array_get(mv, 1);
    if (strcmp(json_string_value(json_array_get(mv, 0)), "int") != 0 || !json_is_integer(n))
        return mg_fail(err, MG_E_FORMAT, "mxnet-symbol: \"mxnet_version\" must be [\"int\", N]");
    json_int_t ver = json_integer_value(n);
    if (ver < 0 || ver > MG_MXNET_MAX_VERSION)
        return mg_fail(err, MG_E_FORMAT, "mxnet-symbol: mxnet_version %lld is not a released "
                       "MXNet version (at most %d)", (long long)ver, MG_MXNET_MAX_VERSION);
    *version = ver;
    return MG_OK;
}

static mg_status add_new(json_t *obj, const char *key, json_t *value, mg_error *err)
{
    if (value == NULL || json_object_set_new(obj, key, value) != 0)
        return mg_fail(err, MG_E_LIMIT, "mxnet-symbol: out of memory for the summary");
    return MG_OK;
}

static mg_status push_new(json_t *arr, json_t *value, mg_error *err)
{
    if (value == NULL || json_array_append_new(arr, value) != 0)
        return mg_fail(err, MG_E_LIMIT, "mxnet-symbol: out of memory for the summary");
    return MG_OK;
}

static mg_status build_summary(const graph *g, const json_t *heads, json_int_t version,
                               json_t **out, mg_error *err)
{
    json_t *sum = json_object();
    if (sum == NULL)
        return mg_fail(err, MG_E_LIMIT, "mxnet-symbol: out of memory for the summary");
    json_t *ops = json_array(), *vars = json_array(), *hs = json_array();
    mg_status st = add_new(sum, "nodes", json_integer((json_int_t)g->n_nodes), err);
    if (st == MG_OK)
        st = add_new(sum, "ops", ops, err);
    else
        json_decref(ops);
    if (st == MG_OK)
        st = add_new(sum, "variables", vars, err);
    else
        json_decref(vars);
    if (st == MG_OK)
        st = add_new(sum, "heads", hs, err);
    else
        json_decref(hs);
    if (st == MG_OK)
        st = add_new(sum, "mxnet_version", json_integer(version), err);

    const char **opnames = st == MG_OK ? mg_calloc(g->n_nodes, sizeof *opnames) : NULL;
    if (st == MG_OK && opnames == NULL)
        st = mg_fail(err, MG_E_LIMIT, "mxnet-symbol: out of memory for the summary");
    size_t n_ops = 0;
    for (size_t i = 0; i < g->n_nodes && st == MG_OK; i++) {
        const json_t *node = json_array_get(g->nodes, i);
        if (g->is_variable[i])
            st = push_new(vars, json_copy(json_object_get(node, "name")), err);
        else
            opnames[n_ops++] = json_string_value(json_object_get(node, "op"));
    }
    if (st == MG_OK && n_ops > 0) {
        if (n_ops > 1)
            qsort(opnames, n_ops, sizeof *opnames, str_cmp);
        for (size_t i = 0; i < n_ops && st == MG_OK; i++) {
            if (i == 0 || strcmp(opnames[i - 1], opnames[i]) != 0)
                st = push_new(ops, json_string(opnames[i]), err);
        }
    }
    free(opnames);
    for (size_t k = 0; k < json_array_size(heads) && st == MG_OK; k++) {
        const json_t *e = json_array_get(heads, k);
        size_t id = (size_t)json_integer_value(json_array_get(e, 0));
        json_t *h = json_object();
        st = push_new(hs, h, err);
        if (st == MG_OK)
            st = add_new(h, "name", json_copy(json_object_get(json_array_get(g->nodes, id),
                                                              "name")), err);
        if (st == MG_OK)
            st = add_new(h, "output", json_copy(json_array_get(e, 1)), err);
    }
    if (st != MG_OK) {
        json_decref(sum);
        return st;
    }
    *out = sum;
    return MG_OK;
}

static mg_status check_graph(const json_t *root, graph *g, json_int_t *version, mg_error *err)
{
    if (!json_is_object(root))
        return mg_fail(err, MG_E_FORMAT, "mxnet-symbol: the top level is not an object");
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)root, key, val) {
        if (strcmp(key, "nodes") != 0 && strcmp(key, "arg_nodes") != 0 &&
            strcmp(key, "heads") != 0 && strcmp(key, "node_row_ptr") != 0 &&
            strcmp(key, "attrs") != 0)
            return mg_fail(err, MG_E_FORMAT, "mxnet-symbol: unknown top-level key '%.200s'",
                           key);
    }
    g->nodes = json_object_get(root, "nodes");
    if (!json_is_array(g->nodes) || json_array_size(g->nodes) == 0)
        return mg_fail(err, MG_E_FORMAT, "mxnet-symbol: \"nodes\" missing, empty or not an "
                       "array");
    g->n_nodes = json_array_size(g->nodes);
    const json_t *arg_nodes = json_object_get(root, "arg_nodes");
    const json_t *heads = json_object_get(root, "heads");
    if (arg_nodes == NULL)
        return mg_fail(err, MG_E_FORMAT, "mxnet-symbol: \"arg_nodes\" missing");
    if (!json_is_array(heads))
        return mg_fail(err, MG_E_FORMAT, "mxnet-symbol: \"heads\" missing or not an array");
    g->row_ptr = json_object_get(root, "node_row_ptr");
    mg_status st = check_row_ptr(g, err);
    if (st != MG_OK)
        return st;
    st = check_graph_attrs(json_object_get(root, "attrs"), version, err);
    if (st != MG_OK)
        return st;

    g->is_variable = mg_calloc(g->n_nodes, sizeof *g->is_variable);
    if (g->is_variable == NULL)
        return mg_fail(err, MG_E_LIMIT, "mxnet-symbol: out of memory for %zu nodes", g->n_nodes);
    size_t n_vars = 0;
    for (size_t i = 0; i < g->n_nodes; i++) {
        const json_t *node = json_array_get(g->nodes, i);
        if (!json_is_object(node))
            return mg_fail(err, MG_E_FORMAT, "mxnet-symbol: node %zu is not an object", i);
        st = check_op(json_object_get(node, "op"), i, err);
        if (st != MG_OK)
            return st;
        g->is_variable[i] = strcmp(json_string_value(json_object_get(node, "op")), "null") == 0;
        n_vars += g->is_variable[i];
    }
    for (size_t i = 0; i < g->n_nodes; i++) {
        st = check_node(g, i, err);
        if (st != MG_OK)
            return st;
    }
    st = check_variable_names(g, n_vars, err);
    if (st != MG_OK)
        return st;
    st = check_arg_nodes(g, arg_nodes, err);
    if (st != MG_OK)
        return st;
    for (size_t k = 0; k < json_array_size(heads); k++) {
        st = check_entry(g, json_array_get(heads, k), g->n_nodes, "head", k, err);
        if (st != MG_OK)
            return st;
    }
    return MG_OK;
}

static mg_status parse(const uint8_t *data, size_t len, mg_parse_result *out, mg_error *err)
{
    if (len > MG_MAX_JSON_ASSET_BYTES)
        return mg_fail(err, MG_E_LIMIT, "mxnet-symbol: file of %zu bytes exceeds the cap of %u",
                       len, MG_MAX_JSON_ASSET_BYTES);
    json_t *root = mg_parse_json(out, data, len, "mxnet-symbol",
                                 &mg_json_caps_mxnet_symbol, err);
    if (root == NULL)
        return err != NULL ? err->status : MG_E_FORMAT;
    graph g = {0};
    json_int_t version = MG_MXNET_DEFAULT_VERSION;
    mg_status st = check_graph(root, &g, &version, err);
    if (st == MG_OK)
        st = build_summary(&g, json_object_get(root, "heads"), version, &out->metadata, err);
    free(g.is_variable);
    json_decref(root);
    return st;
}

const mg_format mg_format_mxnet_symbol = {"mxnet-symbol", probe, parse};
