/*
 * The npy header parser, shared by the lone-.npy parser and the npz parser (which runs it
 * on each member). Internal to the format/ module.
 */
#ifndef MG_FORMAT_NPY_H
#define MG_FORMAT_NPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* npy header caps (see npy.c). */
#define MG_NPY_MAX_HEADER_BYTES (64u << 10) /* the header dict, after the length field */
#define MG_NPY_MAX_NESTING 16u               /* brackets inside a descr we only refuse */

/* One array described by an npy header, checked against the bytes that follow it. */
typedef struct mg_npy_array {
    mg_dtype dtype;
    uint32_t ndim;
    uint64_t shape[MG_MAX_NDIM]; /* as written, outermost first */
    uint32_t flags;              /* MG_TENSOR_BIG_ENDIAN, MG_TENSOR_FORTRAN */
    uint64_t data_offset;        /* bytes of magic + version + length field + header */
    uint64_t nbytes;             /* elements * dtype size == len - data_offset */
} mg_npy_array;

/*
 * Parse the npy file held in `data` (`len` bytes: the whole .npy, nothing more) and check
 * that exactly `nbytes` of array data follow the header. MG_E_FORMAT for malformed or
 * unsupported input (object dtypes are refused as pickles), MG_E_LIMIT for our caps.
 */
MG_NODISCARD mg_status mg_npy_parse_array(const uint8_t *data, size_t len, mg_npy_array *out,
                                          mg_error *err);


#endif
