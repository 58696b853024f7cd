/*
 * NumPy .npz: a ZIP archive of .npy members (reference/formats.md §2.2).
 *
 * Two readers look at every archive and must agree:
 *  - our own bounded parse of the end-of-central-directory record (and its zip64 form), of
 *    every central-directory entry (with its zip64 extra) and of every local header, which
 *    gives each member's absolute data offset (libzip does not expose it);
 *  - libzip, opened on the verified memory itself (zip_source_buffer_create, never a path),
 *    with ZIP_CHECKCONS, whose member names, sizes, methods and CRCs must equal ours, and
 *    which reads every member to its end, so that the CRC-32 is checked.
 *
 * STORED members are zero-copy: the tensor points into the file (blob 0) and its offset is
 * absolute in the .npz; the bytes libzip reads are compared with the bytes we point at.
 * DEFLATED members are inflated into a parser blob; their tensor's offset is the offset
 * inside the decompressed member (the .npy), as the README and mg_tensor document.
 *
 * Decisions:
 *  - Only methods 0 and 8 (numpy never writes others); encrypted members are refused. Bit 3
 *    (data descriptor) is accepted: the central directory is authoritative for sizes and CRC.
 *  - Decompression caps (MG_E_LIMIT): a member may inflate to at most NPZ_MAX_RATIO times its
 *    compressed size unless it is at most NPZ_RATIO_FREE_BYTES, and all inflated members of a
 *    file together to at most NPZ_MAX_INFLATED_TOTAL. An inflated stream longer or shorter
 *    than the central directory says is malformed.
 *  - Member names: must end in ".npy" with a non-empty stem other than "." or ".."; '/',
 *    '\\', NUL, control characters and invalid UTF-8 are refused (no folders, no paths);
 *    duplicates are refused (Python's zipfile would silently keep the last one).
 *  - Members must not overlap one another or the central directory; the central directory
 *    must hold exactly the entry count of the EOCD; the EOCD comment must end the file.
 *  - A member that is not a loadable array refuses the whole file: object arrays (pickles)
 *    and unsupported dtypes such as '<U3' (numpy's py3-arr-savez.npz) alike. Dropping a
 *    member silently would load a model that differs from what was pinned.
 *  - An archive with no members is accepted and has no tensors.
 */
#include <stdlib.h>
#include <string.h>
#include <zip.h>
#include <zlib.h>

#include "format/format.h"
#include "format/npy.h"
#include "util/utf8.h"
#include "util/checked.h"
#include "util/reader.h"

#define NPZ_MAX_RATIO 1000u
#define NPZ_RATIO_FREE_BYTES (UINT64_C(1) << 20)     /* 1 MiB */
#define NPZ_MAX_INFLATED_TOTAL (UINT64_C(4) << 30)   /* 4 GiB */

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_EOCD64_LOCATOR 0x07064b50u
#define EXTRA_ZIP64 0x0001u

#define FLAG_ENCRYPTED 0x0001u
#define FLAG_DATA_DESCRIPTOR 0x0008u
#define FLAG_STRONG_ENCRYPTION 0x0040u

typedef struct npz_entry {
    const uint8_t *name; /* raw bytes in the central directory */
    size_t name_len;
    uint16_t flags, method;
    uint32_t crc;
    uint64_t csize, usize, local_off;
    uint64_t data_start; /* absolute offset of the member data, from its local header */
    uint64_t span_end;   /* data_start + csize */
} npz_entry;

typedef struct npz_dir {
    uint64_t count, cd_off, cd_size;
    uint64_t cd_limit; /* where the central directory must end (the EOCD or zip64 EOCD) */
} npz_dir;

/* Find a zip64 extra field in `extra` and point a reader at its body. */
static bool find_zip64_extra(const uint8_t *extra, size_t len, mg_reader *body)
{
    mg_reader r;
    mg_reader_init(&r, extra, len);
    while (mg_reader_remaining(&r) >= 4) {
        uint16_t id, size;
        const uint8_t *p;
        if (!mg_reader_u16(&r, &id) || !mg_reader_u16(&r, &size) ||
            !mg_reader_bytes(&r, size, &p))
            return false;
        if (id == EXTRA_ZIP64) {
            mg_reader_init(body, p, size);
            return true;
        }
    }
    return false;
}

/* ---- end of central directory -------------------------------------------------------- */

static mg_status find_directory(const uint8_t *data, size_t len, npz_dir *dir, mg_error *err)
{
    if (len < 22)
        return mg_fail(err, MG_E_FORMAT, "npz: too short for a ZIP archive");
    size_t lowest = len - 22 > 65535 ? len - 22 - 65535 : 0;
    size_t pos = len - 22;
    bool found = false;
    for (;;) {
        if (mg_load_u32le(data + pos) == SIG_EOCD &&
            (uint64_t)pos + 22 + mg_load_u16le(data + pos + 20) == len) {
            found = true;
            break;
        }
        if (pos == lowest)
            break;
        pos--;
    }
    if (!found)
        return mg_fail(err, MG_E_FORMAT, "npz: no end-of-central-directory record at the end");

    const uint8_t *e = data + pos;
    uint16_t disk = mg_load_u16le(e + 4), cd_disk = mg_load_u16le(e + 6);
    uint16_t n_here = mg_load_u16le(e + 8), n_total = mg_load_u16le(e + 10);
    uint32_t cd_size = mg_load_u32le(e + 12), cd_off = mg_load_u32le(e + 16);
    bool has_locator = pos >= 20 && mg_load_u32le(data + pos - 20) == SIG_EOCD64_LOCATOR;
    bool needs_zip64 = n_total == 0xffff || n_here == 0xffff || cd_size == 0xffffffffu ||
                       cd_off == 0xffffffffu;

    if (!has_locator) {
        if (needs_zip64)
            return mg_fail(err, MG_E_FORMAT, "npz: zip64 values without a zip64 end record");
        if (disk != 0 || cd_disk != 0 || n_here != n_total)
            return mg_fail(err, MG_E_FORMAT, "npz: multi-disk archives are not supported");
        dir->count = n_total;
        dir->cd_size = cd_size;
        dir->cd_off = cd_off;
        dir->cd_limit = pos;
        return MG_OK;
    }

    /* Zip64: locator (20 bytes) right before the EOCD, pointing at the zip64 EOCD record. */
    mg_reader r;
    uint32_t sig, loc_disk, total_disks, disk64, cd_disk64;
    uint64_t rec_off, rec_size, n_here64, n_total64, cd_size64, cd_off64;
    uint16_t made, need;
    mg_reader_init(&r, data + pos - 20, 20);
    if (!mg_reader_u32(&r, &sig) || !mg_reader_u32(&r, &loc_disk) ||
        !mg_reader_u64(&r, &rec_off) || !mg_reader_u32(&r, &total_disks))
        return mg_fail(err, MG_E_FORMAT, "npz: truncated zip64 locator");
    if (loc_disk != 0 || total_disks != 1)
        return mg_fail(err, MG_E_FORMAT, "npz: multi-disk archives are not supported");
    if (!mg_range_ok(rec_off, 56, pos - 20))
        return mg_fail(err, MG_E_FORMAT, "npz: zip64 end record lies outside the archive");
    mg_reader_init(&r, data + rec_off, pos - 20 - (size_t)rec_off);
    if (!mg_reader_u32(&r, &sig) || sig != SIG_EOCD64 || !mg_reader_u64(&r, &rec_size) ||
        rec_size < 44 || !mg_reader_u16(&r, &made) || !mg_reader_u16(&r, &need) ||
        !mg_reader_u32(&r, &disk64) || !mg_reader_u32(&r, &cd_disk64) ||
        !mg_reader_u64(&r, &n_here64) || !mg_reader_u64(&r, &n_total64) ||
        !mg_reader_u64(&r, &cd_size64) || !mg_reader_u64(&r, &cd_off64))
        return mg_fail(err, MG_E_FORMAT, "npz: malformed zip64 end record");
    if (rec_size - 44 > mg_reader_remaining(&r))
        return mg_fail(err, MG_E_FORMAT, "npz: zip64 end record runs past its locator");
    if (disk64 != 0 || cd_disk64 != 0 || n_here64 != n_total64)
        return mg_fail(err, MG_E_FORMAT, "npz: multi-disk archives are not supported");
    /* The 16/32-bit fields must be the sentinel or the same value. */
    if ((n_total != 0xffff && n_total != n_total64) ||
        (cd_size != 0xffffffffu && cd_size != cd_size64) ||
        (cd_off != 0xffffffffu && cd_off != cd_off64))
        return mg_fail(err, MG_E_FORMAT, "npz: the end record and the zip64 end record disagree");
    (void)made;
    (void)need;
    dir->count = n_total64;
    dir->cd_size = cd_size64;
    dir->cd_off = cd_off64;
    dir->cd_limit = rec_off;
    return MG_OK;
}

/* ---- central directory and local headers --------------------------------------------- */

static mg_status read_central_entry(mg_reader *r, npz_entry *e, uint64_t index, mg_error *err)
{
    uint32_t sig, crc, csize, usize, ext_attr, local_off;
    uint16_t made, need, flags, method, mtime, mdate, name_len, extra_len, comment_len, disk,
        int_attr;
    const uint8_t *name, *extra, *comment;
    if (!mg_reader_u32(r, &sig) || sig != SIG_CENTRAL)
        return mg_fail(err, MG_E_FORMAT,
                       "npz: central directory entry %llu is missing or has a bad signature",
                       (unsigned long long)index);
    if (!mg_reader_u16(r, &made) || !mg_reader_u16(r, &need) || !mg_reader_u16(r, &flags) ||
        !mg_reader_u16(r, &method) || !mg_reader_u16(r, &mtime) || !mg_reader_u16(r, &mdate) ||
        !mg_reader_u32(r, &crc) || !mg_reader_u32(r, &csize) || !mg_reader_u32(r, &usize) ||
        !mg_reader_u16(r, &name_len) || !mg_reader_u16(r, &extra_len) ||
        !mg_reader_u16(r, &comment_len) || !mg_reader_u16(r, &disk) ||
        !mg_reader_u16(r, &int_attr) || !mg_reader_u32(r, &ext_attr) ||
        !mg_reader_u32(r, &local_off) || !mg_reader_bytes(r, name_len, &name) ||
        !mg_reader_bytes(r, extra_len, &extra) || !mg_reader_bytes(r, comment_len, &comment))
        return mg_fail(err, MG_E_FORMAT, "npz: central directory entry %llu is truncated",
                       (unsigned long long)index);
    /* Versions, times, attributes and the comment play no part in loading. */
    (void)made;
    (void)need;
    (void)mtime;
    (void)mdate;
    (void)int_attr;
    (void)ext_attr;
    (void)comment;
    e->name = name;
    e->name_len = name_len;
    e->flags = flags;
    e->method = method;
    e->crc = crc;
    e->usize = usize;
    e->csize = csize;
    e->local_off = local_off;
    if (usize == 0xffffffffu || csize == 0xffffffffu || local_off == 0xffffffffu ||
        disk == 0xffff) {
        mg_reader z;
        uint64_t v;
        uint32_t d32;
        if (!find_zip64_extra(extra, extra_len, &z))
            return mg_fail(err, MG_E_FORMAT,
                           "npz: central directory entry %llu has 0xFFFFFFFF sizes but no "
                           "zip64 extra", (unsigned long long)index);
        bool ok = true;
        if (usize == 0xffffffffu && (ok = mg_reader_u64(&z, &v)))
            e->usize = v;
        if (ok && csize == 0xffffffffu && (ok = mg_reader_u64(&z, &v)))
            e->csize = v;
        if (ok && local_off == 0xffffffffu && (ok = mg_reader_u64(&z, &v)))
            e->local_off = v;
        if (ok && disk == 0xffff && (ok = mg_reader_u32(&z, &d32)))
            disk = d32 == 0 ? 0 : 1;
        if (!ok)
            return mg_fail(err, MG_E_FORMAT,
                           "npz: zip64 extra of central directory entry %llu is too short",
                           (unsigned long long)index);
    }
    if (disk != 0)
        return mg_fail(err, MG_E_FORMAT, "npz: multi-disk archives are not supported");
    return MG_OK;
}

/* The member's local header must agree with its central entry; finds its data offset. */
static mg_status read_local_header(const uint8_t *data, uint64_t cd_off, npz_entry *e,
                                   uint64_t index, mg_error *err)
{
    mg_reader r;
    uint32_t sig, crc, csize, usize;
    uint16_t need, flags, method, mtime, mdate, name_len, extra_len;
    const uint8_t *name, *extra;
    if (!mg_range_ok(e->local_off, 30, cd_off))
        return mg_fail(err, MG_E_FORMAT, "npz: member %llu: local header offset out of range",
                       (unsigned long long)index);
    mg_reader_init(&r, data + e->local_off, (size_t)(cd_off - e->local_off));
    if (!mg_reader_u32(&r, &sig) || sig != SIG_LOCAL)
        return mg_fail(err, MG_E_FORMAT, "npz: member %llu: bad local header signature",
                       (unsigned long long)index);
    if (!mg_reader_u16(&r, &need) || !mg_reader_u16(&r, &flags) || !mg_reader_u16(&r, &method) ||
        !mg_reader_u16(&r, &mtime) || !mg_reader_u16(&r, &mdate) || !mg_reader_u32(&r, &crc) ||
        !mg_reader_u32(&r, &csize) || !mg_reader_u32(&r, &usize) ||
        !mg_reader_u16(&r, &name_len) || !mg_reader_u16(&r, &extra_len) ||
        !mg_reader_bytes(&r, name_len, &name) || !mg_reader_bytes(&r, extra_len, &extra))
        return mg_fail(err, MG_E_FORMAT, "npz: member %llu: truncated local header",
                       (unsigned long long)index);
    (void)need; /* libzip's ZIP_CHECKCONS compares version and time with the central entry */
    (void)mtime;
    (void)mdate;
    if (name_len != e->name_len || memcmp(name, e->name, name_len) != 0)
        return mg_fail(err, MG_E_FORMAT,
                       "npz: member %llu: local and central names disagree",
                       (unsigned long long)index);
    if (method != e->method ||
        (flags & (FLAG_ENCRYPTED | FLAG_DATA_DESCRIPTOR)) !=
            (e->flags & (FLAG_ENCRYPTED | FLAG_DATA_DESCRIPTOR)))
        return mg_fail(err, MG_E_FORMAT,
                       "npz: member %llu: local and central method or flags disagree",
                       (unsigned long long)index);
    if (!(flags & FLAG_DATA_DESCRIPTOR)) {
        uint64_t lus = usize, lcs = csize;
        mg_reader z;
        bool has_z = find_zip64_extra(extra, extra_len, &z);
        if (usize == 0xffffffffu || csize == 0xffffffffu) {
            /* MLX's savez: sentinels in the local header, real sizes in its zip64 extra. */
            bool ok = has_z;
            uint64_t v;
            if (ok && usize == 0xffffffffu && (ok = mg_reader_u64(&z, &v)))
                lus = v;
            if (ok && csize == 0xffffffffu && (ok = mg_reader_u64(&z, &v)))
                lcs = v;
            if (!ok)
                return mg_fail(err, MG_E_FORMAT,
                               "npz: member %llu: 0xFFFFFFFF local sizes without a complete "
                               "zip64 extra", (unsigned long long)index);
        } else if (has_z && mg_reader_remaining(&z) >= 16) {
            /* numpy's force_zip64: real sizes and a zip64 extra repeating them. */
            uint64_t zu, zc;
            if (!mg_reader_u64(&z, &zu) || !mg_reader_u64(&z, &zc) || zu != lus || zc != lcs)
                return mg_fail(err, MG_E_FORMAT,
                               "npz: member %llu: local zip64 extra disagrees with the header",
                               (unsigned long long)index);
        }
        if (lus != e->usize || lcs != e->csize || crc != e->crc)
            return mg_fail(err, MG_E_FORMAT,
                           "npz: member %llu: local and central sizes or CRC disagree",
                           (unsigned long long)index);
    }
    uint64_t start = e->local_off + r.pos; /* no wrap: r.pos <= cd_off - local_off */
    if (!mg_range_ok(start, e->csize, cd_off))
        return mg_fail(err, MG_E_FORMAT,
                       "npz: member %llu: data runs past the central directory",
                       (unsigned long long)index);
    e->data_start = start;
    e->span_end = start + e->csize;
    return MG_OK;
}

static mg_status check_name(const npz_entry *e, uint64_t index, mg_error *err)
{
    const uint8_t *n = e->name;
    size_t len = e->name_len;
    for (size_t i = 0; i < len; i++) {
        if (n[i] < 0x20 || n[i] == 0x7f)
            return mg_fail(err, MG_E_FORMAT,
                           "npz: member %llu: name contains a NUL or control character",
                           (unsigned long long)index);
        if (n[i] == '/' || n[i] == '\\')
            return mg_fail(err, MG_E_FORMAT,
                           "npz: member %llu: name contains a path separator ('/' or '\\')",
                           (unsigned long long)index);
    }
    if (!mg_utf8_valid(n, len))
        return mg_fail(err, MG_E_FORMAT, "npz: member %llu: name is not valid UTF-8",
                       (unsigned long long)index);
    if (len < 4 || memcmp(n + len - 4, ".npy", 4) != 0)
        return mg_fail(err, MG_E_FORMAT, "npz: member '%.*s' is not a .npy file",
                       (int)(len < 200 ? len : 200), (const char *)n);
    size_t stem = len - 4;
    if (stem == 0 || (stem == 1 && n[0] == '.') || (stem == 2 && n[0] == '.' && n[1] == '.'))
        return mg_fail(err, MG_E_FORMAT, "npz: member %llu: empty, '.' or '..' name",
                       (unsigned long long)index);
    return MG_OK;
}

static int cmp_by_offset(const void *a, const void *b)
{
    const npz_entry *x = *(const npz_entry *const *)a, *y = *(const npz_entry *const *)b;
    return x->local_off < y->local_off ? -1 : x->local_off > y->local_off;
}

static int cmp_by_name(const void *a, const void *b)
{
    const npz_entry *x = *(const npz_entry *const *)a, *y = *(const npz_entry *const *)b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, n);
    if (c != 0)
        return c;
    return x->name_len < y->name_len ? -1 : x->name_len > y->name_len;
}

/* No two members share bytes, and no two share a name. */
static mg_status check_overlap_and_duplicates(npz_entry *entries, size_t count, mg_error *err)
{
    if (count < 2)
        return MG_OK;
    npz_entry **order = mg_calloc(count, sizeof *order); // NOLINT(bugprone-sizeof-expression): an array of pointers
    if (order == NULL)
        return mg_fail(err, MG_E_LIMIT, "npz: out of memory");
    for (size_t i = 0; i < count; i++)
        order[i] = &entries[i];
    mg_status st = MG_OK;
    qsort(order, count, sizeof *order, cmp_by_offset); // NOLINT(bugprone-sizeof-expression): an array of pointers
    for (size_t i = 1; i < count && st == MG_OK; i++) {
        if (order[i]->local_off < order[i - 1]->span_end)
            st = mg_fail(err, MG_E_FORMAT, "npz: members overlap in the archive");
    }
    if (st == MG_OK) {
        qsort(order, count, sizeof *order, cmp_by_name); // NOLINT(bugprone-sizeof-expression): an array of pointers
        for (size_t i = 1; i < count && st == MG_OK; i++) {
            if (cmp_by_name(&order[i - 1], &order[i]) == 0)
                st = mg_fail(err, MG_E_FORMAT, "npz: duplicate member name '%.*s'",
                             (int)(order[i]->name_len < 200 ? order[i]->name_len : 200),
                             (const char *)order[i]->name);
        }
    }
    free(order);
    return st;
}

/* ---- reading members through libzip -------------------------------------------------- */

static mg_status libzip_fail(mg_error *err, const char *what, zip_error_t *ze)
{
    return mg_fail(err, MG_E_FORMAT, "npz: %s (libzip: %s)", what, zip_error_strerror(ze));
}

/* Inflate member `index` into `dst` through libzip, which checks the CRC at its end. Exactly
 * `usize` bytes must come out. */
static mg_status read_member(zip_t *za, uint64_t index, uint64_t usize, uint8_t *dst,
                             mg_error *err)
{
    zip_file_t *zf = zip_fopen_index(za, index, 0);
    if (zf == NULL)
        return libzip_fail(err, "cannot open a member", zip_get_error(za));
    mg_status st = MG_OK;
    uint64_t done = 0;
    for (;;) {
        uint64_t want = usize - done;
        uint8_t probe_byte;
        uint8_t *buf;
        if (want == 0) {
            /* Everything expected was read: the stream must end here (and the CRC match). */
            buf = &probe_byte;
            want = 1;
        } else {
            buf = dst + done; /* dst holds usize > done bytes, so it is not NULL */
        }
        zip_int64_t got = zip_fread(zf, buf, want);
        if (got < 0) {
            st = mg_fail(err, MG_E_FORMAT,
                         "npz: member %llu cannot be read: bad CRC-32 or corrupt data (libzip: %s)",
                         (unsigned long long)index, zip_error_strerror(zip_file_get_error(zf)));
            break;
        }
        if (got == 0) {
            if (done != usize)
                st = mg_fail(err, MG_E_FORMAT,
                             "npz: member %llu is shorter than its stated size",
                             (unsigned long long)index);
            break;
        }
        if (done == usize || (uint64_t)got > want) {
            st = mg_fail(err, MG_E_FORMAT, "npz: member %llu is longer than its stated size",
                         (unsigned long long)index);
            break;
        }
        done += (uint64_t)got;
    }
    zip_fclose(zf);
    return st;
}

static uLong crc32_direct(uLong c, const uint8_t *bytes, uint64_t len)
{
    while (len > 0) {
        z_size_t n = len > ((z_size_t)1 << 30) ? ((z_size_t)1 << 30) : (z_size_t)len;
        c = crc32_z(c, bytes, n);
        bytes += n;
        len -= n;
    }
    return c;
}

/* The CRC-32 of data[off, off + len) (a range proven inside the file). With the reader's
 * block CRCs (out->block_crc), only the partial blocks at either end are read here; whole
 * blocks are combined from the table (crc32_combine: the same value, exactly). */
static uint32_t stored_crc32(const mg_parse_result *out, const uint8_t *data, size_t file_len,
                             uint64_t off, uint64_t len)
{
    const uint64_t block = MG_REGION_CRC_BLOCK;
    uLong c = crc32_z(0L, Z_NULL, 0);
    uint64_t end = off + len;
    if (out->block_crc == NULL || out->block_crc_count != (file_len + block - 1) / block ||
        len < 2 * block)
        return (uint32_t)crc32_direct(c, data + off, len);
    uint64_t head_end = (off + block - 1) / block * block;
    c = crc32_direct(c, data + off, head_end - off);
    uLong op = crc32_combine_gen((z_off_t)block);
    uint64_t pos = head_end;
    for (; end - pos >= block; pos += block) /* a whole block: never the file's short last */
        c = crc32_combine_op(c, out->block_crc[pos / block], op);
    return (uint32_t)crc32_direct(c, data + pos, end - pos);
}

static mg_status member_npy(const uint8_t *bytes, uint64_t len, const npz_entry *e,
                            mg_npy_array *a, mg_error *err)
{
    mg_error inner;
    mg_error_clear(&inner);
    mg_status st = mg_npy_parse_array(bytes, (size_t)len, a, &inner);
    if (st == MG_OK)
        return MG_OK;
    return mg_fail(err, st, "npz member '%.*s': %s",
                   (int)(e->name_len < 200 ? e->name_len : 200), (const char *)e->name,
                   inner.message);
}

static mg_status add_member(mg_parse_result *out, zip_t *za, const uint8_t *data,
                            size_t data_len, const npz_entry *e, uint64_t index, uint64_t *inflated,
                            mg_error *err)
{
    mg_npy_array a;
    mg_tensor_entry t;
    mg_status st;
    memset(&t, 0, sizeof t);

    if (e->method == 0) {
        if (e->csize != e->usize)
            return mg_fail(err, MG_E_FORMAT,
                           "npz: stored member %llu has different stored and real sizes",
                           (unsigned long long)index);
        const uint8_t *bytes = data + e->data_start; /* range proven in read_local_header */
        /* Stored bytes are used in place: check their CRC-32 here (from the reader's block
         * CRCs where it made them, else one zlib pass) rather than copying them out through
         * libzip, which would read the member twice more. */
        if (stored_crc32(out, data, data_len, e->data_start, e->usize) != e->crc)
            return mg_fail(err, MG_E_FORMAT,
                           "npz: member %llu cannot be read: bad CRC-32 or corrupt data",
                           (unsigned long long)index);
        if ((st = member_npy(bytes, e->usize, e, &a, err)) != MG_OK)
            return st;
        t.blob = 0;
        t.data_offset = e->data_start + a.data_offset;
    } else {
        uint64_t ratio_cap, total;
        if (!mg_mul_u64(e->csize, NPZ_MAX_RATIO, &ratio_cap))
            ratio_cap = UINT64_MAX;
        if (e->usize > NPZ_RATIO_FREE_BYTES && e->usize > ratio_cap)
            return mg_fail(err, MG_E_LIMIT,
                           "npz: member %llu would inflate %llu bytes into %llu (over %ux): "
                           "refused as a decompression bomb",
                           (unsigned long long)index, (unsigned long long)e->csize,
                           (unsigned long long)e->usize, NPZ_MAX_RATIO);
        if (!mg_add_u64(*inflated, e->usize, &total) || total > NPZ_MAX_INFLATED_TOTAL)
            return mg_fail(err, MG_E_LIMIT,
                           "npz: inflated members exceed the cap of %llu bytes",
                           (unsigned long long)NPZ_MAX_INFLATED_TOTAL);
        *inflated = total;
        uint32_t blob;
        uint8_t *buf;
        if ((st = mg_parse_add_blob(out, (size_t)e->usize, &blob, &buf, err)) != MG_OK)
            return st;
        if ((st = read_member(za, index, e->usize, buf, err)) != MG_OK)
            return st;
        if ((st = member_npy(buf, e->usize, e, &a, err)) != MG_OK)
            return st;
        t.blob = blob;
        t.data_offset = a.data_offset; /* inside the inflated member */
    }
    t.offset = t.data_offset;
    t.dtype = a.dtype;
    t.ndim = a.ndim;
    t.flags = a.flags;
    memcpy(t.shape, a.shape, sizeof t.shape);
    t.nbytes = a.nbytes;
    return mg_parse_add_tensor(out, &t, (const char *)e->name, e->name_len - 4, err);
}

/* libzip's view of each member must be ours. */
static mg_status cross_check(zip_t *za, const npz_entry *e, uint64_t index, mg_error *err)
{
    zip_stat_t sb;
    zip_stat_init(&sb);
    if (zip_stat_index(za, index, ZIP_FL_ENC_RAW, &sb) != 0)
        return libzip_fail(err, "cannot stat a member", zip_get_error(za));
    const zip_uint64_t need =
        ZIP_STAT_NAME | ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD | ZIP_STAT_CRC;
    if ((sb.valid & need) != need || sb.name == NULL || strlen(sb.name) != e->name_len ||
        memcmp(sb.name, e->name, e->name_len) != 0 || sb.size != e->usize ||
        sb.comp_size != e->csize || sb.comp_method != (zip_int32_t)e->method ||
        sb.crc != e->crc)
        return mg_fail(err, MG_E_FORMAT,
                       "npz: member %llu: libzip and the central directory disagree",
                       (unsigned long long)index);
    return MG_OK;
}

static mg_status parse_members(const uint8_t *data, size_t len, npz_entry *entries, size_t count,
                               mg_parse_result *out, mg_error *err)
{
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(data, len, 0, &ze);
    if (src == NULL) {
        mg_status st = mg_fail(err, MG_E_LIMIT, "npz: cannot create a libzip source (%s)",
                               zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return st;
    }
    zip_t *za = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze);
    if (za == NULL) {
        zip_source_free(src);
        mg_status st = libzip_fail(err, "invalid ZIP archive", &ze);
        zip_error_fini(&ze);
        return st;
    }
    zip_error_fini(&ze);

    mg_status st = MG_OK;
    zip_int64_t n = zip_get_num_entries(za, 0);
    if (n < 0 || (uint64_t)n != count)
        st = mg_fail(err, MG_E_FORMAT, "npz: libzip and the central directory disagree on "
                                       "the member count");
    uint64_t inflated = 0;
    for (size_t i = 0; i < count && st == MG_OK; i++) {
        st = cross_check(za, &entries[i], i, err);
        if (st == MG_OK)
            st = add_member(out, za, data, len, &entries[i], i, &inflated, err);
    }
    zip_discard(za);
    return st;
}

static mg_status parse(const uint8_t *data, size_t len, mg_parse_result *out, mg_error *err)
{
    npz_dir dir = {0, 0, 0, 0};
    mg_status st = find_directory(data, len, &dir, err);
    if (st != MG_OK)
        return st;
    if (!mg_range_ok(dir.cd_off, dir.cd_size, dir.cd_limit))
        return mg_fail(err, MG_E_FORMAT, "npz: central directory lies outside the archive");
    if (dir.count > dir.cd_size / 46)
        return mg_fail(err, MG_E_FORMAT,
                       "npz: %llu entries cannot fit a central directory of %llu bytes",
                       (unsigned long long)dir.count, (unsigned long long)dir.cd_size);
    if (dir.count == 0 && dir.cd_size != 0)
        return mg_fail(err, MG_E_FORMAT, "npz: bytes in an empty central directory");
    size_t count = (size_t)dir.count;
    npz_entry *entries = count ? mg_calloc(count, sizeof *entries) : NULL;
    if (count != 0 && entries == NULL)
        return mg_fail(err, MG_E_LIMIT, "npz: out of memory for %zu entries", count);

    mg_reader r;
    mg_reader_init(&r, data + dir.cd_off, (size_t)dir.cd_size);
    for (size_t i = 0; i < count && st == MG_OK; i++)
        st = read_central_entry(&r, &entries[i], i, err);
    if (st == MG_OK && mg_reader_remaining(&r) != 0)
        st = mg_fail(err, MG_E_FORMAT,
                     "npz: the central directory holds more than its %zu counted entries",
                     count);
    for (size_t i = 0; i < count && st == MG_OK; i++) {
        const npz_entry *e = &entries[i];
        if (e->flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION))
            st = mg_fail(err, MG_E_FORMAT, "npz: member %zu is encrypted", i);
        else if (e->method != 0 && e->method != 8)
            st = mg_fail(err, MG_E_FORMAT,
                         "npz: member %zu uses compression method %u (only stored and deflate)",
                         i, e->method);
        else
            st = check_name(e, i, err);
        if (st == MG_OK)
            st = read_local_header(data, dir.cd_off, &entries[i], i, err);
    }
    if (st == MG_OK)
        st = check_overlap_and_duplicates(entries, count, err);
    if (st == MG_OK)
        st = parse_members(data, len, entries, count, out, err);
    free(entries);
    return st;
}

static bool probe(const uint8_t *data, size_t len)
{
    return len >= 4 && data[0] == 'P' && data[1] == 'K' &&
           ((data[2] == 3 && data[3] == 4) || (data[2] == 5 && data[3] == 6));
}

const mg_format mg_format_npz = {"npz", probe, parse};
