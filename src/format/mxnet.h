/*
 * Apache MXNet checkpoints: internal declarations shared by the `.params` parser
 * (mxnet_params.c), the `-symbol.json` parser (mxnet_symbol.c) and the checkpoint
 * cross-check (mxnet_checkpoint.c). The parsers themselves are reached through
 * mg_format_mxnet_params / mg_format_mxnet_symbol (format/format.h).
 *
 * `.params` (formats.md §4.1-4.3): list magic 0x112, reserved u64 (must be 0, as MXNet
 * writes it: this also tells a .params file from a safetensors file with a 0x112-byte
 * header), u64 n_arrays,
 * the records, u64 n_names (0 or n_arrays), the names; nothing may follow. Records in the
 * legacy (u32 dims), V1, V2 (stype 0 only) and V3 layouts are read; a file may mix legacy,
 * V1 and V2 records but not those with V3 (np-shape) records, which MXNet cannot load
 * together either. Every dense type flag 0..12 is mapped. Sparse storage is refused.
 *   - "none" records (an array with no value: legacy/V1/V2 ndim 0, V2 ndim -1, V3 ndim -1
 *     or a dim of -1) produce no tensor, but keep their place in the name list: the name at
 *     the same index is consumed, counted for duplicates and listed in the metadata "none".
 *   - Without names (n_names 0) tensors are named by their record index: "0", "1", ...
 *   - Names are kept exactly as written ("arg:"/"aux:" prefixes kept); they must be
 *     non-empty, valid UTF-8, without NUL, and unique.
 *   - The device context is not trusted: dev_type must be one MXNet defines (1 cpu, 2 gpu,
 *     3 cpu_pinned, 5 cpu_shared); dev_id is ignored.
 *   - Tensors are views into the file (blob 0).
 *   - Metadata: {"arrays": N, "record_versions": ["legacy","v1","v2","v3" present],
 *                "none": [names of none records]}.
 *
 * `-symbol.json` (formats.md §4.6): strict JSON validated as an NNVM graph; produces no
 * tensors; its metadata is the graph summary
 *   {"nodes": N, "ops": [sorted unique op names but "null"],
 *    "variables": [names of "null"-op nodes, in node order],
 *    "heads": [{"name": node name, "output": output index}, ...],
 *    "mxnet_version": N (800 when the file carries none)}.
 */
#ifndef MG_FORMAT_MXNET_H
#define MG_FORMAT_MXNET_H

#include <jansson.h>
#include <stddef.h>

#include "internal.h"

/* Op names longer than this are refused (CVE-2022-24294: crafted op names). */
#define MG_MXNET_MAX_OP_LEN 256u
/* JSON values in one symbol file (a real 1000-layer graph has ~100k): bounds the parse
 * tree's memory (about 128 bytes per empty array, so at most ~128 MiB). */
#define MG_MXNET_MAX_JSON_VALUES 1000000u
/* The highest mxnet_version accepted: 2.0.x (MXNet is retired; nothing newer exists). */
#define MG_MXNET_MAX_VERSION 20099
/* mxnet_version assumed for a symbol file without one (MXNet's own rule: 0.8.0). */
#define MG_MXNET_DEFAULT_VERSION 800

/*
 * Cross-check a checkpoint: the graph summary of its `-symbol.json` (the metadata that
 * mg_format_mxnet_symbol produced) against the tensor names of its `.params` files.
 * A parameter binds to a graph variable when its name, with one leading "arg:" or "aux:"
 * stripped, equals the variable's name. `*out_report` receives a new object
 *   {"unbound_variables": [variables no parameter binds to, in graph order; the graph's
 *                          inputs such as "data" are among them],
 *    "unused_parameters": [parameter names as written that bind to no variable, in the
 *                          given order]}
 * which the caller owns. Returns MG_E_USAGE when `symbol_summary` is not such a summary,
 * MG_E_LIMIT when out of memory.
 */
MG_NODISCARD mg_status mg_mxnet_checkpoint_report(const json_t *symbol_summary,
                                                  const char *const *param_names,
                                                  size_t n_params, json_t **out_report,
                                                  mg_error *err);

#endif
