/* verify, inspect, dump: the commands that take a model through the one load path. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "util/json.h"

/* A file's metadata as the library wrote it, read back under the metadata caps (bounded
 * before jansson builds the tree, like every JSON the project parses); NULL when over. */
static json_t *load_metadata(const char *text)
{
    size_t len = strlen(text);
    mg_error err;
    if (mg_json_prescan((const uint8_t *)text, len, &mg_json_caps_metadata, "metadata", NULL,
                        &err) != MG_OK)
        return NULL;
    json_error_t jerr;
    return json_loadb(text, len, 0, &jerr);
}

static json_t *files_json(const mg_model *m)
{
    json_t *files = json_array();
    for (size_t i = 0; i < mg_model_file_count(m); i++) {
        mg_file_info fi;
        if (mg_model_file(m, i, &fi) != MG_OK)
            continue;
        json_t *f = json_object();
        json_object_set_new(f, "path", json_string(fi.path));
        json_object_set_new(f, "format", json_string(fi.format));
        json_object_set_new(f, "size", json_integer((json_int_t)fi.size));
        json_object_set_new(f, fi.algorithm, json_string(fi.digest));
        if (fi.metadata_json != NULL) {
            json_t *meta = load_metadata(fi.metadata_json);
            if (meta != NULL)
                json_object_set_new(f, "metadata", meta);
        }
        json_array_append_new(files, f);
    }
    return files;
}

static json_t *tensors_json(const mg_model *m)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < mg_model_tensor_count(m); i++) {
        const mg_tensor *t = mg_model_tensor(m, i);
        json_t *shape = json_array();
        for (uint32_t d = 0; d < t->ndim; d++)
            json_array_append_new(shape, json_integer((json_int_t)t->shape[d]));
        json_t *name = json_string(t->name);
        json_t *o = json_object();
        json_object_set_new(o, "name", name != NULL ? name : json_stringn(t->name, 0));
        json_object_set_new(o, "dtype", json_string(t->dtype_name));
        json_object_set_new(o, "shape", shape);
        json_object_set_new(o, "nbytes", json_integer((json_int_t)t->nbytes));
        json_object_set_new(o, "file", json_string(t->file));
        json_object_set_new(o, "offset", json_integer((json_int_t)t->offset));
        json_array_append_new(arr, o);
    }
    return arr;
}

static void print_json(json_t *doc)
{
    char *s = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (s != NULL)
        puts(s);
    free(s);
}

static void print_files_text(const mg_model *m)
{
    for (size_t i = 0; i < mg_model_file_count(m); i++) {
        mg_file_info fi;
        if (mg_model_file(m, i, &fi) == MG_OK)
            printf("  %-40s %-17s %12llu  %s:%s\n", fi.path, fi.format,
                   (unsigned long long)fi.size, fi.algorithm, fi.digest);
    }
}

static void print_tensors_text(const mg_model *m)
{
    for (size_t i = 0; i < mg_model_tensor_count(m); i++) {
        const mg_tensor *t = mg_model_tensor(m, i);
        char shape[256] = "[";
        size_t n = 1;
        for (uint32_t d = 0; d < t->ndim && n < sizeof shape - 24; d++)
            n += (size_t)snprintf(shape + n, sizeof shape - n, "%s%llu", d ? ", " : "",
                                  (unsigned long long)t->shape[d]);
        snprintf(shape + n, sizeof shape - n, "]");
        printf("  %-40s %-8s %-20s %12llu  %s @ %llu\n", t->name[0] ? t->name : "\"\"",
               t->dtype_name, shape, (unsigned long long)t->nbytes, t->file,
               (unsigned long long)t->offset);
    }
}

/* MXNet checkpoints: graph variables without a parameter, parameters the graph does not use. */
static void print_list(const char *label, json_t *arr)
{
    printf("  %s (%zu):", label, json_array_size(arr));
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) printf("%s %s", i ? "," : "", json_string_value(v));
    printf("\n");
}

static void print_checkpoints(const mg_model *m)
{
    for (size_t i = 0; i < mg_model_file_count(m); i++) {
        mg_file_info fi;
        if (mg_model_file(m, i, &fi) != MG_OK || fi.metadata_json == NULL ||
            strcmp(fi.format, "mxnet-symbol") != 0)
            continue;
        json_t *meta = load_metadata(fi.metadata_json);
        json_t *rep = json_object_get(meta, "checkpoint");
        if (rep != NULL) {
            printf("checkpoint %s:\n", fi.path);
            print_list("graph variables without a parameter",
                       json_object_get(rep, "unbound_variables"));
            print_list("parameters the graph does not use",
                       json_object_get(rep, "unused_parameters"));
        }
        json_decref(meta);
    }
}

static int run_model_command(int argc, char **argv, bool load)
{
    mg_cli_opts o;
    const char *usage = load ? "modelgate inspect [-p POLICY] [--json] [-q] SOURCE"
                             : "modelgate verify [-p POLICY] [--json] [-q] SOURCE";
    int rc = mg_cli_parse_common(argc, argv, &o, 1, 1, usage);
    if (rc != 0)
        return rc;
    mg_policy *pol;
    mg_model *m;
    if ((rc = mg_cli_open_model(&o, load ? MG_CLI_LOAD : MG_CLI_VERIFY, &pol, &m)) != 0)
        return rc;
    if (o.json) {
        json_t *doc = json_object();
        json_object_set_new(doc, "ok", json_true());
        json_object_set_new(doc, "model", json_string(mg_model_name(m)));
        json_object_set_new(doc, "source", json_string(mg_model_source(m)));
        json_object_set_new(doc, "files", files_json(m));
        json_object_set_new(doc, "tensors", load ? tensors_json(m) : json_array());
        print_json(doc);
        json_decref(doc);
    } else {
        printf("%s %s (%s): %zu file%s verified\n", load ? "loaded" : "verified",
               mg_model_name(m), mg_model_source(m), mg_model_file_count(m),
               mg_model_file_count(m) == 1 ? "" : "s");
        print_files_text(m);
        if (load) {
            print_checkpoints(m);
            printf("%zu tensor%s:\n", mg_model_tensor_count(m),
                   mg_model_tensor_count(m) == 1 ? "" : "s");
            print_tensors_text(m);
        }
    }
    mg_model_close(m);
    mg_policy_close(pol);
    return fflush(stdout) == 0 ? 0 : MG_E_IO;
}

int mg_cmd_verify(int argc, char **argv)
{
    return run_model_command(argc, argv, false);
}

int mg_cmd_inspect(int argc, char **argv)
{
    return run_model_command(argc, argv, true);
}

static int write_all(const void *data, uint64_t len)
{
    const uint8_t *p = data;
    while (len > 0) {
        size_t chunk = len > (1u << 30) ? (1u << 30) : (size_t)len;
        ssize_t n = write(STDOUT_FILENO, p, chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(stderr, "modelgate: io: cannot write to standard output: %s\n",
                    n < 0 ? strerror(errno) : "short write");
            return MG_E_IO;
        }
        p += n;
        len -= (uint64_t)n;
    }
    return 0;
}

int mg_cmd_dump(int argc, char **argv)
{
    mg_cli_opts o;
    int rc = mg_cli_parse_common(argc, argv, &o, 2, 2,
                                 "modelgate dump [-p POLICY] [-q] SOURCE TENSOR");
    if (rc != 0)
        return rc;
    if (o.json)
        return mg_cli_usage("dump writes raw bytes; --json is not available");
    mg_policy *pol;
    mg_model *m;
    if ((rc = mg_cli_open_model(&o, MG_CLI_LOAD, &pol, &m)) != 0)
        return rc;
    mg_error err;
    const mg_tensor *t = mg_model_find_tensor(m, o.pos[1]);
    if (t == NULL) {
        rc = mg_cli_usage("model '%s' has no tensor named '%.200s'", mg_model_name(m), o.pos[1]);
    } else if ((t->flags & (MG_TENSOR_BIG_ENDIAN | MG_TENSOR_FORTRAN)) == 0) {
        rc = write_all(t->data, t->nbytes);
    } else if (t->nbytes > SIZE_MAX) {
        rc = MG_E_LIMIT;
    } else {
        void *buf = malloc(t->nbytes ? (size_t)t->nbytes : 1);
        if (buf == NULL) {
            fprintf(stderr, "modelgate: limit: out of memory for the converted tensor\n");
            rc = MG_E_LIMIT;
        } else if (mg_tensor_copy(t, buf, (size_t)t->nbytes, &err) != MG_OK) {
            rc = mg_cli_report(&err, false);
        } else {
            rc = write_all(buf, t->nbytes);
        }
        free(buf);
    }
    mg_model_close(m);
    mg_policy_close(pol);
    return rc;
}
