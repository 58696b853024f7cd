/* The model object: verified files, their parsed tensor tables, and the public tensor views. */
#ifndef MG_MODEL_H
#define MG_MODEL_H

#include <jansson.h>

#include "digest.h"
#include "format/format.h"
#include "region.h"

typedef struct mg_verified_file {
    char *path; /* inside the model */
    const mg_format *format; /* NULL: an asset */
    mg_region region;
    mg_digest_alg alg;
    uint8_t digest[MG_DIGEST_MAX];
    char digest_hex[129];
    mg_parse_result parsed;
    char *metadata_json;
    char *cache_path;
    /* verify and fetch stream the file through a window (stream.h): no bytes are kept,
     * `region` is empty and the size is here. */
    bool streamed;
    uint64_t streamed_size;
} mg_verified_file;

struct mg_model {
    char *name;
    char *source;
    mg_verified_file *files;
    size_t file_count;
    mg_tensor *tensors;
    size_t tensor_count;
    int parse_confined; /* see mg_model_parse_confined */
    bool file_backed;   /* see mg_model_file_backed */
};

/* Build the public tensor views from every file's parse result (ranges re-checked). */
MG_NODISCARD mg_status mg_model_build_tensors(mg_model *m, mg_error *err);

#endif
