/* Overflow-checked arithmetic. Every size computed from input goes through these. */
#ifndef MG_CHECKED_H
#define MG_CHECKED_H

#include <stdbool.h>
#include <stdint.h>

/* Each returns true on success and stores the result; false if it would wrap. */
static inline bool mg_add_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

static inline bool mg_mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

/* The element count of a shape: the product of `dims` (1 for ndim 0). False on overflow. */
static inline bool mg_shape_elements(const uint64_t *dims, uint32_t ndim, uint64_t *out)
{
    uint64_t n = 1;
    for (uint32_t i = 0; i < ndim; i++) {
        if (!mg_mul_u64(n, dims[i], &n))
            return false;
    }
    *out = n;
    return true;
}

/* True when [off, off+len) lies inside a buffer of `size` bytes, computed without wrap. */
static inline bool mg_range_ok(uint64_t off, uint64_t len, uint64_t size)
{
    return off <= size && len <= size - off;
}

#endif
