/*
 * The one interface every file-format parser plugs into.
 *
 * A parser gets the verified bytes of one file and produces a tensor table: names, dtypes,
 * shapes, and byte ranges given as offsets (never raw pointers), so that a parser could run
 * in a separate, confined process and send the table back. The model builder turns offsets
 * into pointers after checking every range once more.
 *
 * Parsers must: read only through the bounded reader (util/reader.h); do all size arithmetic
 * with util/checked.h; check every count against the remaining bytes before allocating;
 * refuse duplicates; never form a pointer from a file offset before the bound is proven;
 * return MG_E_FORMAT for malformed input and MG_E_LIMIT for our own resource caps.
 */
#ifndef MG_FORMAT_H
#define MG_FORMAT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"
#include "region.h"
#include "util/json.h"

typedef struct mg_tensor_entry {
    char *name;        /* owned, NUL-terminated (names with an embedded NUL are refused) */
    mg_dtype dtype;
    uint32_t ggml_type; /* when dtype == MG_DTYPE_GGML_BLOCK */
    uint32_t ndim;      /* <= MG_MAX_NDIM */
    uint32_t flags;     /* MG_TENSOR_* */
    uint64_t shape[MG_MAX_NDIM]; /* outermost first */
    uint64_t nbytes;
    uint64_t offset;    /* reported offset: from the start of the file (see mg_tensor) */
    uint32_t blob;      /* 0: data is in the file itself; k > 0: in result->blobs[k-1] */
    uint64_t data_offset; /* where the data starts inside the file (blob 0) or the blob */
} mg_tensor_entry;

/*
 * Memory the parsers of one load may make (inflated members, tensor tables, names, JSON
 * trees), charged before it is allocated; `limit` 0 means no budget (per-file caps only).
 * Set by the loader (policy "limits": {"parser_memory": BYTES}); MG_E_LIMIT when over.
 */
typedef struct mg_budget {
    uint64_t limit;
    uint64_t used;
} mg_budget;

typedef struct mg_parse_result {
    mg_tensor_entry *tensors;
    size_t count;
    size_t cap;
    mg_region *blobs; /* buffers the parser made (e.g. inflated npz members); sealed later */
    size_t blob_count;
    size_t blob_cap;
    json_t *metadata; /* optional format metadata (owned), shown by inspect --json */
    mg_budget *budget; /* the load's budget while parsing, or NULL (not owned) */
    /* Input, may be NULL: the CRC-32 of each MG_REGION_CRC_BLOCK bytes of the data being
     * parsed, computed by the reader from the same verified bytes (region.h); a count that
     * does not fit the data's length is ignored. Not owned. */
    const uint32_t *block_crc;
    size_t block_crc_count;
} mg_parse_result;

/* Charge `bytes` of parser-made memory for `what` to `budget` (NULL: nothing to charge);
 * MG_E_LIMIT when the budget would be exceeded. */
MG_NODISCARD mg_status mg_budget_charge(mg_budget *budget, uint64_t bytes, const char *what,
                                        mg_error *err);

/* mg_json_parse() for a parser: the tree's estimated size is charged to `res->budget`
 * (after the pre-scan, before jansson builds it). */
json_t *mg_parse_json(mg_parse_result *res, const uint8_t *data, size_t len, const char *what,
                      const mg_json_caps *caps, mg_error *err);

/* Append a tensor (copying `name`, `name_len` bytes; a NUL in the name or a name longer
 * than MG_MAX_NAME_LEN is refused). `t->name` is ignored. */
MG_NODISCARD mg_status mg_parse_add_tensor(mg_parse_result *res, const mg_tensor_entry *t,
                                           const char *name, size_t name_len, mg_error *err);
/* Allocate a new blob of `len` bytes; `*index` receives its 1-based index for
 * mg_tensor_entry.blob and `*data` its writable memory. */
MG_NODISCARD mg_status mg_parse_add_blob(mg_parse_result *res, size_t len, uint32_t *index,
                                         uint8_t **data, mg_error *err);
void mg_parse_result_free(mg_parse_result *res);

typedef struct mg_format {
    const char *name; /* as in mg_file_info.format */
    /* True when the content looks like this format (cheap; must be bounds-safe on any input). */
    bool (*probe)(const uint8_t *data, size_t len);
    /* Parse; on failure the result may hold partial data that the caller frees. */
    mg_status (*parse)(const uint8_t *data, size_t len, mg_parse_result *out, mg_error *err);
} mg_format;

extern const mg_format mg_format_pickle;       /* refused: parse always fails (unsafe) */
extern const mg_format mg_format_safetensors;
extern const mg_format mg_format_npy;
extern const mg_format mg_format_npz;
extern const mg_format mg_format_gguf;
extern const mg_format mg_format_mxnet_params;
extern const mg_format mg_format_mxnet_symbol;
extern const mg_format mg_format_safetensors_index;

/*
 * Detect a file's format. Binary formats by content (where several probes match, the first
 * format whose strict parse accepts the bytes wins, so a two-byte pickle probe never beats
 * a valid safetensors file); a file whose name claims a format (`.safetensors`, `.npy`,
 * `-symbol.json`, `.safetensors.index.json`, `.pt`, ...) and whose content matches no
 * probe is that format, so that it fails with that parser's error. The JSON formats are
 * recognised by name only. Returns NULL for a plain asset (config.json, tokenizer.json, ...).
 * `data` may be NULL when `len` is 0.
 */
const mg_format *mg_format_detect(const uint8_t *data, size_t len, const char *path);
/* True when the safetensors header lies whole in `head` (the first head_len bytes of a file of
 * `size` bytes) and parses, its tensors tiling exactly `size` bytes. */
bool mg_safetensors_head_parses(const uint8_t *head, size_t head_len, uint64_t size);

/* Detection from the first `head_len` bytes of a file of `size` bytes (verify and fetch keep
 * no more, stream.h). A file no longer than its head is detected exactly as by
 * mg_format_detect. Of a longer one only the probes run, and one strict parse: a safetensors
 * header held whole in the head that tiles the file's size wins over the probes it overlaps.
 * Otherwise one match is the format; several, or a zip head, are settled by the name's claim
 * among them, else the strongest probe; a zip head whose name claims a PyTorch file is that
 * (its member list is at the end). */
const mg_format *mg_format_detect_head(const uint8_t *head, size_t head_len, uint64_t size,
                                       const char *path);

/* A dtype from its safetensors-style name ("F32"); MG_DTYPE_INVALID if unknown. */
mg_dtype mg_dtype_from_name(const char *name);

/* Check a tensor entry's byte range against its container of `size` bytes and that
 * nbytes == elements * dtype size (for non-block dtypes). */
MG_NODISCARD mg_status mg_tensor_entry_check(const mg_tensor_entry *t, uint64_t size,
                                             mg_error *err);

#endif
