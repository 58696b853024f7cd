/* The MXNet checkpoints among the files of a model (format/mxnet_checkpoint.c). */
#ifndef MG_MXNET_CHECKPOINT_H
#define MG_MXNET_CHECKPOINT_H

#include "model.h"

/*
 * Every PREFIX-symbol.json among `files` (all parsed) with PREFIX-<digits>.params files beside
 * it (mxnet-params or npz) gets the report of mg_mxnet_checkpoint_report() over their tensor
 * names, in file order, in its metadata as "checkpoint". A .params file belongs to one symbol
 * file at most. O(n log n) in files. MG_E_LIMIT when out of memory.
 */
MG_NODISCARD mg_status mg_mxnet_checkpoint_reports(mg_verified_file *files, size_t n,
                                                   mg_error *err);

#endif
