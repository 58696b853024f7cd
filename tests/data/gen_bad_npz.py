#!/usr/bin/env python3
"""Write the npz bad-input files of reference/formats.md §5.5 ("npz") into tests/data/bad/npz/.

Deterministic, standard library only: a small ZIP writer below builds every archive byte by
byte, so each defect is exactly the one named. Each file is listed in expected.tsv with the
exit code `modelgate inspect` must give when it is pinned as a single-file model (0 = an
accepted variant, 6 = MG_E_FORMAT, 8 = MG_E_LIMIT).
Run: /usr/bin/python3 tests/data/gen_bad_npz.py
"""
import os
import struct
import zlib

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bad", "npz")
OK, FORMAT, LIMIT = 0, 6, 8
entries = []


def npy(descr="<f4", shape=(2,), data=None, fortran=False):
    """A v1 .npy as numpy writes it (64-aligned header); data defaults to 0,1,2.. bytes."""
    shape_s = "(%s)" % "".join("%d, " % d for d in shape) if len(shape) != 1 else "(%d,)" % shape[0]
    h = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape_s)
    h = h.encode()
    h += b" " * ((-(10 + len(h) + 1)) % 64) + b"\n"
    if data is None:
        n = 1
        for d in shape:
            n *= d
        size = int(descr[2:]) if descr[2:].isdigit() else 1
        data = bytes(i & 0xFF for i in range(n * size))
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h + data


def deflate(raw):
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(raw) + c.flush()


class Member:
    def __init__(self, name, raw, method=0, **kw):
        self.name = name.encode("utf-8") if isinstance(name, str) else name
        self.raw = raw
        self.method = method
        if method == 8:
            self.payload = deflate(raw)
        else:
            self.payload = raw
        self.crc = zlib.crc32(raw)
        self.usize = len(raw)
        self.csize = len(self.payload)
        self.flags = 0
        # Variants (defaults: numpy's force_zip64 local header).
        self.local_style = "numpy"    # numpy | mlx | plain | descriptor
        self.local_name = None        # different name in the local header
        self.local_sig = 0x04034B50
        self.local_time = 0
        self.local_usize = None       # override sizes written in the local header
        self.local_crc = None
        self.local_zip64_len = None   # truncate the local zip64 extra
        self.cd_usize = None          # override sizes in the central directory
        self.cd_csize = None
        self.cd_crc = None
        self.cd_method = None
        self.cd_offset = None         # override local-header offset
        self.cd_zip64 = False         # put sizes/offset into a central zip64 extra
        self.cd_zip64_len = None
        self.cd_name = None
        for k, v in kw.items():
            setattr(self, k, v)


def local_header(m):
    name = m.local_name if m.local_name is not None else m.name
    crc = m.local_crc if m.local_crc is not None else m.crc
    usize = m.local_usize if m.local_usize is not None else m.usize
    csize = m.csize
    extra = b""
    version = 20
    if m.local_style == "numpy":
        extra = struct.pack("<HHQQ", 1, 16, usize, csize)
    elif m.local_style == "mlx":
        version = 45
        extra = struct.pack("<HHQQ", 1, 16, usize, csize)
        usize = csize = 0xFFFFFFFF
    elif m.local_style == "sentinel-no-extra":
        usize = csize = 0xFFFFFFFF
    elif m.local_style == "descriptor":
        crc = usize = csize = 0
    if m.local_zip64_len is not None:
        extra = extra[:4 + m.local_zip64_len]
        extra = struct.pack("<HH", 1, m.local_zip64_len) + extra[4:]
    hdr = struct.pack("<IHHHHHIIIHH", m.local_sig, version, m.flags, m.method, m.local_time, 0x21,
                      crc, csize & 0xFFFFFFFF, usize & 0xFFFFFFFF, len(name), len(extra))
    return hdr + name + extra


def central_entry(m, offset):
    name = m.cd_name if m.cd_name is not None else m.name
    usize = m.cd_usize if m.cd_usize is not None else m.usize
    csize = m.cd_csize if m.cd_csize is not None else m.csize
    crc = m.cd_crc if m.cd_crc is not None else m.crc
    method = m.cd_method if m.cd_method is not None else m.method
    off = m.cd_offset if m.cd_offset is not None else offset
    extra = b""
    if m.cd_zip64:
        body = struct.pack("<QQQ", usize, csize, off)
        if m.cd_zip64_len is not None:
            body = body[:m.cd_zip64_len]
        extra = struct.pack("<HH", 1, len(body)) + body
        usize = csize = off = 0xFFFFFFFF
    return struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, m.flags, method, 0, 0x21, crc,
                       csize, usize, len(name), len(extra), 0, 0, 0, 0, off) + name + extra


def archive(members, count=None, comment=b"", cd_off=None, zip64_eocd=False, z64_count=None,
            extra_cd=b"", comment_len=None, trailing=b""):
    out = b""
    offsets = []
    for m in members:
        offsets.append(len(out))
        out += local_header(m) + m.payload
        if m.local_style == "descriptor":
            out += struct.pack("<IIII", 0x08074B50, m.crc, m.csize, m.usize)
    cd_start = len(out)
    cd = b"".join(central_entry(m, o) for m, o in zip(members, offsets)) + extra_cd
    out += cd
    n = len(members) if count is None else count
    off = cd_start if cd_off is None else cd_off
    if zip64_eocd:
        z64 = len(out)
        zn = n if z64_count is None else z64_count
        out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, zn, zn, len(cd), off)
        out += struct.pack("<IIQI", 0x07064B50, 0, z64, 1)
        eocd_n, eocd_size, eocd_off = 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF
    else:
        eocd_n, eocd_size, eocd_off = n, len(cd), off
    clen = len(comment) if comment_len is None else comment_len
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, eocd_n, eocd_n, eocd_size, eocd_off, clen)
    return out + comment + trailing


def add(name, data, code, why):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
    entries.append((name, code, why))


X = npy("<f4", (2, 3))
Y = npy("<i8", (4,))

# Accepted variants.
add("ok-stored-numpy.npz", archive([Member("x.npy", X), Member("y.npy", Y)]), OK,
    "stored members with numpy's force_zip64 local extra")
add("ok-deflated.npz", archive([Member("x.npy", X, 8), Member("y.npy", Y, 8)]), OK,
    "deflated members (savez_compressed)")
add("ok-mlx-variant.npz", archive([Member("x.npy", X, local_style="mlx"),
                                   Member("y.npy", Y, local_style="mlx")]), OK,
    "MLX savez: 0xFFFFFFFF local sizes, real sizes in the local zip64 extra only")
add("ok-plain-local.npz", archive([Member("x.npy", X, local_style="plain")]), OK,
    "no zip64 extra at all")
add("ok-central-zip64.npz", archive([Member("x.npy", X, cd_zip64=True), Member("y.npy", Y, 8, cd_zip64=True)]),
    OK, "central entries with sizes and offset in a zip64 extra")
add("ok-zip64-eocd.npz", archive([Member("x.npy", X)], zip64_eocd=True), OK,
    "zip64 end record and locator")
add("ok-data-descriptor.npz", archive([Member("x.npy", X, 8, flags=8, local_style="descriptor")]), OK,
    "flag bit 3: sizes and CRC only in the central directory and a data descriptor")
add("ok-empty.npz", archive([]), OK, "an archive with no members")
add("ok-comment-65535.npz", archive([Member("x.npy", X)], comment=b"c" * 65535), OK,
    "EOCD comment of 65535 bytes")
add("ok-scalar-and-empty.npz", archive([Member("s.npy", npy("<f8", ())), Member("e.npy", npy("<f4", (0,)))]),
    OK, "a scalar and an empty array")

zero_mib = npy("|u1", ((1 << 20) - 128,), data=b"\0" * ((1 << 20) - 128))
assert len(zero_mib) == 1 << 20
add("ok-small-high-ratio.npz", archive([Member("z.npy", zero_mib, 8)]), OK,
    "1 MiB member deflated about 1000:1: small members are exempt from the ratio cap")

# 1. EOCD
add("no-eocd.npz", archive([Member("x.npy", X)])[:-22], FORMAT, "no end-of-central-directory record")
add("eocd-cd-past-eof.npz", archive([Member("x.npy", X)], cd_off=0x7FFFFFF0), FORMAT,
    "EOCD points the central directory past EOF")
add("eocd-comment-len-too-big.npz", archive([Member("x.npy", X)], comment=b"abc", comment_len=100),
    FORMAT, "EOCD comment length larger than what follows")
add("trailing-garbage.npz", archive([Member("x.npy", X)], trailing=b"garbage"), FORMAT,
    "bytes after the EOCD that its comment length does not cover")
add("eocd-ffff-no-zip64.npz", archive([Member("x.npy", X)], count=0xFFFF), FORMAT,
    "EOCD count 0xFFFF without a zip64 end record")
add("too-short.npz", b"PK\x05\x06" + b"\0" * 10, FORMAT, "14 bytes")

# 2. counts
add("cd-count-more.npz", archive([Member("x.npy", X), Member("y.npy", Y)], count=3), FORMAT,
    "EOCD count 3, 2 entries present")
add("cd-count-less.npz", archive([Member("x.npy", X), Member("y.npy", Y)], count=1), FORMAT,
    "EOCD count 1, 2 entries present")
add("zip64-bogus-count.npz", archive([Member("x.npy", X)], zip64_eocd=True, z64_count=1 << 40), FORMAT,
    "zip64 end record claims 2**40 entries")
add("zip64-count-65536.npz", archive([Member("x.npy", X)], zip64_eocd=True, z64_count=65536), FORMAT,
    "zip64 end record claims 65536 entries, 1 present")

# 3. local headers
add("local-bad-signature.npz", archive([Member("x.npy", X, local_sig=0x04034B51)]), FORMAT,
    "local header signature wrong")
add("local-name-differs.npz", archive([Member("x.npy", X, local_name=b"z.npy")]), FORMAT,
    "local and central names disagree")
add("local-size-differs.npz", archive([Member("x.npy", X, local_style="plain", local_usize=len(X) - 1)]),
    FORMAT, "local and central sizes disagree")
add("local-crc-differs.npz", archive([Member("x.npy", X, local_crc=0x12345678)]), FORMAT,
    "local and central CRC disagree")
add("local-zip64-extra-differs.npz", archive([Member("x.npy", X, local_usize=len(X) + 1, cd_usize=len(X))]),
    FORMAT, "local zip64 extra repeats a wrong size")
add("local-sentinel-no-zip64.npz", archive([Member("x.npy", X, local_style="sentinel-no-extra")]), FORMAT,
    "0xFFFFFFFF local sizes without a zip64 extra")
add("local-zip64-too-short.npz", archive([Member("x.npy", X, local_style="mlx", local_zip64_len=8)]), FORMAT,
    "MLX-style local header whose zip64 extra holds only 8 bytes")
add("central-zip64-too-short.npz", archive([Member("x.npy", X, cd_zip64=True, cd_zip64_len=12)]), FORMAT,
    "central zip64 extra too short for the sentinel fields")
add("local-offset-past-cd.npz", archive([Member("x.npy", X, cd_offset=100000)]), FORMAT,
    "central directory points at a local header past the central directory")
add("cd-size-larger-than-data.npz", archive([Member("x.npy", X, cd_usize=len(X) * 10, cd_csize=len(X) * 10)]),
    FORMAT, "central sizes larger than the member data")

# 4. methods, flags, CRC
for meth in (12, 14, 99):
    add("method-%d.npz" % meth, archive([Member("x.npy", X, method=meth)]), FORMAT,
        "compression method %d" % meth)
add("encrypted-flag.npz", archive([Member("x.npy", X, flags=1)]), FORMAT, "encrypted flag set")
add("bad-crc-stored.npz", archive([Member("x.npy", X, crc=zlib.crc32(X) ^ 1)]), FORMAT,
    "stored member with a wrong CRC-32 (same in both headers)")
add("bad-crc-deflated.npz", archive([Member("x.npy", X, 8, crc=zlib.crc32(X) ^ 0x80000000)]), FORMAT,
    "deflated member with a wrong CRC-32")
add("local-mtime-differs.npz", archive([Member("x.npy", X, local_time=0x1234)]), FORMAT,
    "local and central modification times disagree (libzip's consistency check)")
add("method-mismatch.npz", archive([Member("x.npy", X, cd_method=8)]), FORMAT,
    "central says deflate, local says stored")

# 5. decompression
zeros = zlib.compressobj(9, zlib.DEFLATED, -15)
bomb_raw_len = 64 << 20
head = npy("|u1", (bomb_raw_len - 128,), data=b"")
assert len(head) == 128
payload = zeros.compress(head)
chunk = b"\0" * (1 << 20)
for _ in range(bomb_raw_len >> 20):
    payload += zeros.compress(chunk)
payload += zeros.flush()
# The npy declares bomb_raw_len - 128 data bytes; the stream inflates to 128 + 64 MiB.
m = Member("bomb.npy", b"", 8)
m.payload, m.usize, m.csize = payload, bomb_raw_len + 128, len(payload)
m.crc = 0  # never reached: refused by the ratio cap first
add("deflate-bomb.npz", archive([m]), LIMIT, "64 MiB of zeros deflated about 1030:1 (ratio cap 1000)")
t = Member("x.npy", X, 8)
t.payload = t.payload[:-3]
t.csize = len(t.payload)
add("deflate-truncated.npz", archive([t]), FORMAT, "DEFLATE stream cut short")
t = Member("x.npy", X, 8, cd_usize=len(X) - 10, local_usize=len(X) - 10)
t.usize = len(X) - 10
add("deflate-longer-than-stated.npz", archive([t]), FORMAT, "stream inflates to more than usize")
t = Member("x.npy", X, 8)
t.usize = len(X) + 10
add("deflate-shorter-than-stated.npz", archive([t]), FORMAT, "stream inflates to less than usize")

# 6. overlap
a = archive([Member("x.npy", X), Member("y.npy", Y)])
# Second central entry pointing at the first local header (and so the first member's name).
two = [Member("x.npy", X), Member("y.npy", Y)]
two[1].cd_offset = 0
two[1].cd_name = b"x.npy"
two[1].crc, two[1].usize, two[1].csize = two[0].crc, two[0].usize, two[0].csize
add("overlap-same-local.npz", archive(two), FORMAT, "two central entries share one local header")
# A stored member whose data range covers the next member's local header.
inner = Member("y.npy", Y)
inner_bytes = local_header(inner) + inner.payload
outer = Member("x.npy", X + inner_bytes)
outer_hdr = local_header(outer)
ov = outer_hdr + X + inner_bytes
cd = central_entry(outer, 0) + central_entry(inner, len(outer_hdr) + len(X))
ov += cd + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 2, 2, len(cd), len(ov), 0)
add("overlap-nested.npz", ov, FORMAT, "a member's data contains the next member's local header")

# 7. names
add("duplicate-name.npz", archive([Member("x.npy", X), Member("x.npy", Y)]), FORMAT,
    "two members named x.npy")
for fname, name, why in [
        ("name-slash.npz", "a/x.npy", "name with '/'"),
        ("name-absolute.npz", "/x.npy", "absolute name"),
        ("name-dotdot.npz", "../x.npy", "name with '..'"),
        ("name-dotdot-stem.npz", "...npy", "stem '..'"),
        ("name-backslash.npz", "a\\x.npy", "name with a backslash"),
        ("name-nul.npz", b"x\0.npy", "name with NUL"),
        ("name-control.npz", b"x\n.npy", "name with a newline"),
        ("name-not-utf8.npz", b"x\xff.npy", "name not UTF-8"),
        ("name-no-npy.npz", "x.txt", "member without .npy"),
        ("name-empty-stem.npz", ".npy", "member named just .npy"),
        ("name-empty.npz", b"", "empty member name")]:
    add(fname, archive([Member(name, X)]), FORMAT, why)
add("name-utf8-ok.npz", archive([Member("w\u00e9ight.npy", X, flags=0x800)]), OK,
    "a UTF-8 member name (flag bit 11)")

# 8. member contents
bad_hl = bytearray(npy("<f4", (2,)))
bad_hl[8:10] = struct.pack("<H", 0xFFFF)
add("member-header-len-past-end.npz", archive([Member("x.npy", bytes(bad_hl))]), FORMAT,
    "member npy header_len runs past the member (cnpy #106), stored")
add("member-header-len-past-end-deflated.npz", archive([Member("x.npy", bytes(bad_hl), 8)]), FORMAT,
    "same, deflated")
add("member-pickle.npz", archive([Member("x.npy", npy("|O", (1,), data=b"\x80\x03N."))]), FORMAT,
    "object-dtype member: a pickle")
add("member-unicode.npz", archive([Member("x.npy", X), Member("foo.npy", npy("<U3", (), data=b"a\0\0\0" * 3))]),
    FORMAT, "a '<U3' member refuses the whole file")
add("member-not-npy.npz", archive([Member("x.npy", b"hello world")]), FORMAT, "member is not an npy")
add("member-trailing-bytes.npz", archive([Member("x.npy", X + b"\0")]), FORMAT,
    "member npy with a trailing byte")
add("member-empty.npz", archive([Member("x.npy", b"")]), FORMAT, "empty member")

with open(os.path.join(OUT, "expected.tsv"), "w") as f:
    for name, code, why in entries:
        f.write("%s\t%d\t%s\n" % (name, code, why))
