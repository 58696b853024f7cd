/*
 * The bounded reader every binary parser reads through: a position and what remains.
 * A read past the end fails and leaves the reader unchanged; no pointer is formed into the
 * buffer before the bound was proven.
 */
#ifndef MG_READER_H
#define MG_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct mg_reader {
    const uint8_t *base;
    size_t size;
    size_t pos;
} mg_reader;

static inline void mg_reader_init(mg_reader *r, const uint8_t *base, size_t size)
{
    r->base = base;
    r->size = size;
    r->pos = 0;
}

static inline size_t mg_reader_remaining(const mg_reader *r)
{
    return r->size - r->pos;
}

/* Point `*out` at the next `n` bytes and advance; false if fewer remain. */
static inline bool mg_reader_bytes(mg_reader *r, uint64_t n, const uint8_t **out)
{
    if (n > mg_reader_remaining(r))
        return false;
    *out = r->base + r->pos;
    r->pos += (size_t)n;
    return true;
}

static inline bool mg_reader_skip(mg_reader *r, uint64_t n)
{
    const uint8_t *p;
    return mg_reader_bytes(r, n, &p);
}

static inline bool mg_reader_u8(mg_reader *r, uint8_t *v)
{
    const uint8_t *p;
    if (!mg_reader_bytes(r, 1, &p))
        return false;
    *v = p[0];
    return true;
}

static inline uint16_t mg_load_u16le(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t mg_load_u32le(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline uint64_t mg_load_u64le(const uint8_t *p)
{
    return (uint64_t)mg_load_u32le(p) | ((uint64_t)mg_load_u32le(p + 4) << 32);
}

static inline bool mg_reader_u16(mg_reader *r, uint16_t *v)
{
    const uint8_t *p;
    if (!mg_reader_bytes(r, 2, &p))
        return false;
    *v = mg_load_u16le(p);
    return true;
}

static inline bool mg_reader_u32(mg_reader *r, uint32_t *v)
{
    const uint8_t *p;
    if (!mg_reader_bytes(r, 4, &p))
        return false;
    *v = mg_load_u32le(p);
    return true;
}

static inline bool mg_reader_u64(mg_reader *r, uint64_t *v)
{
    const uint8_t *p;
    if (!mg_reader_bytes(r, 8, &p))
        return false;
    *v = mg_load_u64le(p);
    return true;
}

static inline bool mg_reader_i32(mg_reader *r, int32_t *v)
{
    uint32_t u;
    if (!mg_reader_u32(r, &u))
        return false;
    memcpy(v, &u, sizeof u);
    return true;
}

static inline bool mg_reader_i64(mg_reader *r, int64_t *v)
{
    uint64_t u;
    if (!mg_reader_u64(r, &u))
        return false;
    memcpy(v, &u, sizeof u);
    return true;
}

#endif
