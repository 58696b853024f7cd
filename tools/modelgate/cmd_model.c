/* verify, inspect, dump: the commands that take a model through the one load path. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
    /* A GGUF string may hold a NUL (written as \u0000): keep it. */
    return json_loadb(text, len, JSON_ALLOW_NUL, &jerr);
}

static json_t *files_json(const mg_model *m)
{
    json_t *files = json_array();
    for (size_t i = 0; i < mg_model_file_count(m); i++) {
        mg_file_info fi;
        if (mg_model_file(m, i, &fi) != MG_OK)
            continue;
        json_t *f = json_object();
        json_object_set_new(f, "path", mg_cli_json_text(fi.path));
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
        json_t *o = json_object();
        json_object_set_new(o, "name", mg_cli_json_text(t->name));
        json_object_set_new(o, "dtype", json_string(t->dtype_name));
        json_object_set_new(o, "shape", shape);
        json_object_set_new(o, "nbytes", json_integer((json_int_t)t->nbytes));
        json_object_set_new(o, "file", mg_cli_json_text(t->file));
        json_object_set_new(o, "offset", json_integer((json_int_t)t->offset));
        json_array_append_new(arr, o);
    }
    return arr;
}

static void print_files_text(const mg_model *m)
{
    for (size_t i = 0; i < mg_model_file_count(m); i++) {
        mg_file_info fi;
        if (mg_model_file(m, i, &fi) == MG_OK)
            printf("  %-40s %-17s %12llu  %s:%s\n", mg_cli_esc(fi.path), fi.format,
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
        printf("  %-40s %-8s %-20s %12llu  %s @ %llu\n", t->name[0] ? mg_cli_esc(t->name) : "\"\"",
               t->dtype_name, shape, (unsigned long long)t->nbytes, mg_cli_esc(t->file),
               (unsigned long long)t->offset);
    }
}

/* MXNet checkpoints: graph variables without a parameter, parameters the graph does not use. */
static void print_list(const char *label, json_t *arr)
{
    printf("  %s (%zu):", label, json_array_size(arr));
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) printf("%s %s", i ? "," : "", mg_cli_esc(json_string_value(v)));
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
            printf("checkpoint %s:\n", mg_cli_esc(fi.path));
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
    int rc = mg_cli_parse_common(argc, argv, &o, 1, 1, load ? "inspect" : "verify");
    if (rc != 0)
        return rc;
    mg_policy *pol;
    mg_model *m;
    if ((rc = mg_cli_open_model(&o, load ? MG_CLI_LOAD : MG_CLI_VERIFY, &pol, &m)) != 0)
        return rc;
    if (o.quiet) {
        /* -q: the exit status says it all. */
    } else if (o.json) {
        json_t *doc = json_object();
        json_object_set_new(doc, "ok", json_true());
        json_object_set_new(doc, "model", json_string(mg_model_name(m)));
        json_object_set_new(doc, "source", mg_cli_json_text(mg_model_source(m)));
        if (load) {
            json_object_set_new(doc, "parsing", json_string(mg_model_parse_confined(m) == 1
                                                                ? "confined" : "unconfined"));
            json_object_set_new(doc, "memory", json_string(mg_model_file_backed(m) ? "file"
                                                                                   : "ram"));
        }
        json_object_set_new(doc, "files", files_json(m));
        json_object_set_new(doc, "tensors", load ? tensors_json(m) : json_array());
        rc = mg_cli_print_json(doc);
        json_decref(doc);
    } else {
        printf("%s %s (%s): %zu file%s verified\n", load ? "loaded" : "verified",
               mg_cli_esc(mg_model_name(m)), mg_cli_esc(mg_model_source(m)), mg_model_file_count(m),
               mg_model_file_count(m) == 1 ? "" : "s");
        if (load)
            printf("parsing: %s\n", mg_model_parse_confined(m) == 1
                                        ? "confined (child process, seccomp)"
                                        : "unconfined (in this process: policy \"sandbox\": \"off\")");
        if (load)
            printf("memory: %s\n", mg_model_file_backed(m) ? "file (unnamed spill files, read-only)"
                                                            : "ram");
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
    return fflush(stdout) == 0 ? rc : MG_E_IO;
}

int mg_cmd_verify(int argc, char **argv)
{
    return run_model_command(argc, argv, false);
}

int mg_cmd_inspect(int argc, char **argv)
{
    return run_model_command(argc, argv, true);
}

static int write_all(int fd, const void *data, uint64_t len)
{
    const uint8_t *p = data;
    while (len > 0) {
        size_t chunk = len > (1u << 30) ? (1u << 30) : (size_t)len;
        ssize_t n = write(fd, p, chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(stderr, "modelgate: io: cannot write the tensor: %s\n",
                    n < 0 ? strerror(errno) : "short write");
            return MG_E_IO;
        }
        p += n;
        len -= (uint64_t)n;
    }
    return 0;
}

static int write_tensor(int fd, const mg_tensor *t)
{
    if ((t->flags & (MG_TENSOR_BIG_ENDIAN | MG_TENSOR_FORTRAN)) == 0)
        return write_all(fd, t->data, t->nbytes);
    if (t->nbytes > SIZE_MAX)
        return mg_cli_fail(MG_E_LIMIT, false, NULL, "the tensor is too large to convert");
    void *buf = malloc(t->nbytes ? (size_t)t->nbytes : 1);
    if (buf == NULL)
        return mg_cli_fail(MG_E_LIMIT, false, NULL, "out of memory for the converted tensor");
    mg_error err;
    int rc = mg_tensor_copy(t, buf, (size_t)t->nbytes, &err) != MG_OK ? mg_cli_report(&err, false)
                                                                      : write_all(fd, buf, t->nbytes);
    free(buf);
    return rc;
}

/* -o FILE: written beside itself and renamed, so a failure leaves no partial file. */
static int dump_to_file(const char *path, const mg_tensor *t)
{
    char tmp[4096];
    int n = snprintf(tmp, sizeof tmp, "%s.XXXXXX", path);
    if (n < 0 || (size_t)n >= sizeof tmp)
        return mg_cli_usage("-o: the path is too long");
    int fd = mkstemp(tmp);
    if (fd < 0)
        return mg_cli_fail(MG_E_IO, false, NULL, "cannot create %s: %s", path, strerror(errno));
    int rc = write_tensor(fd, t);
    if (rc == 0 && (fchmod(fd, 0644) != 0 || fsync(fd) != 0))
        rc = mg_cli_fail(MG_E_IO, false, NULL, "cannot write %s: %s", path, strerror(errno));
    if (close(fd) != 0 && rc == 0)
        rc = mg_cli_fail(MG_E_IO, false, NULL, "cannot write %s: %s", path, strerror(errno));
    if (rc == 0 && rename(tmp, path) != 0)
        rc = mg_cli_fail(MG_E_IO, false, NULL, "cannot rename onto %s: %s", path, strerror(errno));
    if (rc != 0)
        unlink(tmp);
    return rc;
}

int mg_cmd_dump(int argc, char **argv)
{
    mg_cli_opts o;
    memset(&o, 0, sizeof o);
    const char *output = NULL;
    static const struct option longopts[] = {
        MG_CLI_COMMON_LONGOPTS, {"output", required_argument, NULL, 'o'}, {NULL, 0, NULL, 0}};
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":" MG_CLI_COMMON_SHORTOPTS "o:", longopts, NULL)) != -1) {
        if (c == 'o')
            output = optarg;
        else if (!mg_cli_common_option(c, &o))
            return mg_cli_bad_option(c, argv, "dump");
    }
    if (argc - optind != 2)
        return mg_cli_usage("%s operand; %s", argc - optind < 2 ? "missing" : "extra",
                            mg_cli_usage_text("dump"));
    o.pos[0] = argv[optind];
    o.pos[1] = argv[optind + 1];
    o.npos = 2;
    if (o.json)
        return mg_cli_usage("dump writes raw bytes; --json is not available");
    bool to_stdout = output == NULL || strcmp(output, "-") == 0;
    /* Raw tensor bytes on a terminal are noise at best: ask for -o (as gzip and openssl do). */
    if (output == NULL && isatty(STDOUT_FILENO))
        return mg_cli_usage("dump writes binary data and standard output is a terminal; "
                            "redirect it, or give -o FILE (or -o - to force it)");
    mg_policy *pol;
    mg_model *m;
    int rc;
    if ((rc = mg_cli_open_model(&o, MG_CLI_LOAD, &pol, &m)) != 0)
        return rc;
    const mg_tensor *t = mg_model_find_tensor(m, o.pos[1]);
    if (t == NULL) {
        char hint[1024];
        mg_cli_tensor_hint(m, o.pos[1], hint, sizeof hint);
        rc = mg_cli_usage("model '%s' has no tensor named '%.200s'; %s", mg_model_name(m),
                          o.pos[1], hint);
    } else if (to_stdout) {
        rc = write_tensor(STDOUT_FILENO, t);
    } else {
        rc = dump_to_file(output, t);
    }
    mg_model_close(m);
    mg_policy_close(pol);
    return rc;
}
