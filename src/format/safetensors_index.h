/* The cross-check of a sharded safetensors set against its index (format/safetensors_index.c). */
#ifndef MG_SAFETENSORS_INDEX_H
#define MG_SAFETENSORS_INDEX_H

#include "model.h"

/*
 * `index` (a parsed model.safetensors.index.json among `files`, which are all parsed): every
 * shard the index names is a safetensors file of the model, every tensor of the weight map is
 * in the shard the index says, every tensor of the safetensors files in the index's folder is
 * listed for its own file, and no tensor name appears in two shards. O(n log n) in tensors and
 * files. MG_E_FORMAT naming the index when not.
 */
MG_NODISCARD mg_status mg_safetensors_index_check(const mg_verified_file *files, size_t nfiles,
                                                  const mg_verified_file *index, mg_error *err);

#endif
