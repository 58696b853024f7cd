/* libFuzzer harness for the MXNet -symbol.json parser and the checkpoint cross-check: any
 * input must parse or fail cleanly. For an accepted graph the summary must serialise, and
 * the cross-check must bind every variable when given each variable's name with an "arg:"
 * prefix, and none when given no parameters. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format/format.h"
#include "format/mxnet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_report(const json_t *summary)
{
    const json_t *vars = json_object_get(summary, "variables");
    size_t n = json_array_size(vars);
    char **names = calloc(n + 1, sizeof *names);
    if (names == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        const char *v = json_string_value(json_array_get(vars, i));
        size_t len = strlen(v);
        names[i] = malloc(len + 5);
        if (names[i] == NULL)
            __builtin_trap();
        memcpy(names[i], "arg:", 4);
        memcpy(names[i] + 4, v, len + 1);
    }
    json_t *report = NULL;
    mg_error err;
    if (mg_mxnet_checkpoint_report(summary, (const char *const *)names, n, &report, &err) !=
        MG_OK)
        __builtin_trap();
    if (json_array_size(json_object_get(report, "unbound_variables")) != 0 ||
        json_array_size(json_object_get(report, "unused_parameters")) != 0)
        __builtin_trap();
    json_decref(report);
    if (mg_mxnet_checkpoint_report(summary, NULL, 0, &report, &err) != MG_OK ||
        json_array_size(json_object_get(report, "unbound_variables")) != n)
        __builtin_trap();
    json_decref(report);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mg_parse_result res = {0};
    mg_error err;
    (void)mg_format_mxnet_symbol.probe(data, size);
    if (mg_format_mxnet_symbol.parse(data, size, &res, &err) == MG_OK) {
        if (res.count != 0 || res.metadata == NULL)
            __builtin_trap();
        char *dump = json_dumps(res.metadata, JSON_COMPACT);
        if (dump == NULL)
            __builtin_trap();
        free(dump);
        check_report(res.metadata);
    }
    mg_parse_result_free(&res);
    return 0;
}
