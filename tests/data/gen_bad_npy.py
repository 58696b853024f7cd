#!/usr/bin/env python3
"""Write the npy bad-input files of reference/formats.md §5.5 ("npy") into tests/data/bad/npy/.

Deterministic, standard library only. Each file is listed in expected.tsv with the exit code
`modelgate inspect` must give when the file is pinned as a single-file model (0 = accepted
variant, 6 = MG_E_FORMAT, 8 = MG_E_LIMIT). Run: /usr/bin/python3 tests/data/gen_bad_npy.py
"""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bad", "npy")
MAGIC = b"\x93NUMPY"
OK, FORMAT, LIMIT = 0, 6, 8

entries = []


def header_bytes(text, version=1, align=64):
    """The preamble + padded header for dict text `text` (str or bytes), like numpy writes."""
    h = text.encode("latin1") if isinstance(text, str) else text
    lenfield = 2 if version == 1 else 4
    pre = 6 + 2 + lenfield
    if align:
        total = pre + len(h) + 1
        h = h + b" " * ((-total) % align)
    h = h + b"\n"
    fmt = "<H" if version == 1 else "<I"
    return MAGIC + bytes([version, 0]) + struct.pack(fmt, len(h)) + h


def npy(text, data=b"", version=1, align=64):
    return header_bytes(text, version, align) + data


def std(descr, shape, fortran="False"):
    return "{'descr': %s, 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape)


def add(name, data, code, why):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
    entries.append((name, code, why))


F4x2 = struct.pack("<2f", 1.0, 2.0)

# 1. magic and version
add("empty.npy", b"", FORMAT, "0-byte file")
add("magic-only.npy", MAGIC, FORMAT, "magic without version or header length")
add("bad-magic.npy", b"\x93NUMPZ" + npy(std("'<f4'", "(2,)"), F4x2)[6:], FORMAT, "wrong magic")
for v in (0, 4, 255):
    d = bytearray(npy(std("'<f4'", "(2,)"), F4x2))
    d[6] = v
    add("version-%d.npy" % v, bytes(d), FORMAT, "major version %d" % v)
d = bytearray(npy(std("'<f4'", "(2,)"), F4x2))
d[7] = 1
add("version-1.1.npy", bytes(d), FORMAT, "minor version 1")
add("v3-not-utf8.npy", npy(std("'<f4'", "(2,)") + " \xff\xfe", F4x2, version=3), FORMAT,
    "v3 header with bytes that are not UTF-8")
add("v2-ok.npy", npy(std("'<f4'", "(2,)"), F4x2, version=2), OK, "a v2.0 file")
add("v3-ok.npy", npy(std("'<f4'", "(2,)"), F4x2, version=3), OK, "a v3.0 file")

# 2. header length
add("header-len-past-eof.npy", MAGIC + b"\x01\x00" + struct.pack("<H", 200) + b"{'descr'", FORMAT,
    "header_len 200 in a 18-byte file")
add("v2-header-len-ffffffff.npy", MAGIC + b"\x02\x00\xff\xff\xff\xff", FORMAT,
    "v2 header_len 0xFFFFFFFF in a 12-byte file (mlx #3365)")
add("v2-header-len-fffffff0.npy", MAGIC + b"\x02\x00\xf0\xff\xff\xff" + b" " * 64, FORMAT,
    "v2 header_len 0xFFFFFFF0 (libnpy #44)")
add("npy-rs-signed-len.npy", MAGIC + b"\x01\x00\xf8\xff", FORMAT,
    "header_len 0xFFF8 read as signed elsewhere (npy-rs PR #2)")
add("header-len-zero.npy", MAGIC + b"\x01\x00\x00\x00", FORMAT, "header_len 0")
add("no-newline.npy", MAGIC + b"\x01\x00" + struct.pack("<H", 64) +
    std("'<f4'", "(2,)").encode().ljust(64) + F4x2, FORMAT, "header not terminated by a newline")
big = std("'<f4'", "(2,)") + " " * 70000
add("v2-header-over-cap.npy", npy(big, F4x2, version=2), LIMIT,
    "v2 header of 70 KB, over the 64 KiB cap")

# 3. the dict
add("not-a-dict.npy", npy("['<f4', False, (2,)]", F4x2), FORMAT, "header is a list, not a dict")
add("extra-key.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1, }", F4x2),
    FORMAT, "an extra key")
add("missing-descr.npy", npy("{'fortran_order': False, 'shape': (2,), }", F4x2), FORMAT,
    "no descr")
add("missing-shape.npy", npy("{'descr': '<f4', 'fortran_order': False, }", F4x2), FORMAT,
    "no shape")
add("missing-fortran-order.npy", npy("{'descr': '<f4', 'shape': (2,), }", F4x2), FORMAT,
    "no fortran_order")
add("duplicate-key.npy", npy("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", F4x2),
    FORMAT, "descr twice")
add("keys-reordered.npy", npy("{'shape': (2,), 'fortran_order': False, 'descr': '<f4'}", F4x2), OK,
    "keys in another order (a reader must not depend on the order)")
add("double-quotes.npy", npy('{"descr": "<f4", "fortran_order": False, "shape": (2,)}', F4x2), OK,
    "double-quoted strings")
add("nul-in-header.npy", npy("{'descr': '<u2', 'fo\0\0\0\0n_order': False, 'shape': (2,), }",
                             b"\0" * 4), FORMAT, "NUL bytes inside the header (CVE-2025-62608 PoC)")
add("backslash-escape.npy", npy("{'descr': '<f\\x34', 'fortran_order': False, 'shape': (2,), }", F4x2),
    FORMAT, "escape sequence in a string")
add("unterminated-dict.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)", F4x2),
    FORMAT, "dict without its closing brace")
add("trailing-junk.npy", npy(std("'<f4'", "(2,)") + " x", F4x2), FORMAT,
    "non-space text after the dict")
add("aligned-16.npy", npy(std("'<f4'", "(2,)"), F4x2, align=16), OK,
    "header padded to 16 bytes (numpy < 1.14)")
add("unaligned.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, )}", F4x2, align=0),
    OK, "unpadded header, 'shape': (2, ) as MLX writes")

# 4. descr
add("descr-object.npy", npy(std("'|O'", "(2,)"), b"\x80\x03N."), FORMAT,
    "object dtype: the data is a pickle")
add("descr-object8.npy", npy(std("'|O8'", "(2,)"), b"\x80\x02N."), FORMAT,
    "object dtype '|O8' (Python 2)")
add("descr-structured-object.npy", npy(std("[('a', '<i4'), ('b', '|O')]", "(1,)"), b"\x80\x03N."),
    FORMAT, "structured dtype with an object field")
add("descr-unicode.npy", npy(std("'<U3'", "()"), b"a\0\0\0b\0\0\0c\0\0\0"), FORMAT,
    "unicode dtype '<U3'")
add("descr-bytes.npy", npy(std("'|S5'", "()"), b"hello"), FORMAT, "bytes dtype 'S5'")
add("descr-datetime.npy", npy(std("'<M8[s]'", "(1,)"), b"\0" * 8), FORMAT, "datetime64 dtype")
add("descr-ixy.npy", npy(std("'<ixy'", "(2,)"), F4x2), FORMAT, "descr '<ixy' (stablehlo #2963)")
add("descr-empty.npy", npy(std("''", "(2,)"), F4x2), FORMAT, "empty descr")
add("descr-f-no-size.npy", npy(std("'<f'", "(2,)"), F4x2), FORMAT, "descr '<f' without a size")
add("descr-no-byteorder.npy", npy(std("'f4'", "(2,)"), F4x2), FORMAT, "descr 'f4' without a byte-order character")
add("descr-f16.npy", npy(std("'<f16'", "(1,)"), b"\0" * 16), FORMAT, "long double")
add("descr-c16.npy", npy(std("'<c16'", "(1,)"), b"\0" * 16), FORMAT, "complex128")
add("descr-structured.npy", npy(std("[('a', '<i4'), ('b', '<f4')]", "(1,)"), b"\0" * 8), FORMAT,
    "structured dtype")
add("descr-subarray.npy", npy(std("('<f4', (2,))", "(1,)"), F4x2), FORMAT, "subarray dtype")
add("descr-not-string.npy", npy(std("3", "(2,)"), F4x2), FORMAT, "descr is an integer")
add("descr-deep-nesting.npy", npy(std("[" * 40 + "]" * 40, "(1,)"), b""), LIMIT,
    "descr nested 40 levels deep")
add("descr-big-endian.npy", npy(std("'>f4'", "(2,)"), struct.pack(">2f", 1.0, 2.0)), OK,
    "big-endian float32 (byte-swapped on access)")
add("descr-bf16-v2.npy", npy(std("'<V2'", "(2,)"), b"\x80\x3f\x00\x40"), OK,
    "'<V2' read as bfloat16 (the MLX convention)")

# 5. shape
add("shape-negative.npy", npy(std("'<f4'", "(-1,)"), b""), FORMAT, "shape (-1,) (ClickHouse #99812)")
add("shape-long-suffix-v1.npy", npy(std("'<f4'", "(2L,)"), F4x2), OK,
    "Python-2 long suffix (2L,) in v1, accepted like numpy's _filter_header")
add("shape-long-suffix-v3.npy", npy(std("'<f4'", "(2L,)"), F4x2, version=3), FORMAT,
    "long suffix in a v3 header (numpy does not filter v3)")
add("shape-2pow63.npy", npy(std("'<u1'", "(9223372036854775808,)"), b""), FORMAT,
    "dimension 2**63 (above INT64_MAX)")
add("shape-2pow64.npy", npy(std("'<u1'", "(18446744073709551616,)"), b""), FORMAT,
    "dimension 2**64 (not a u64)")
add("shape-expression.npy", npy(std("'<u1'", "(2**63,)"), b""), FORMAT, "an expression, not a literal")
add("shape-float.npy", npy(std("'<u1'", "(1e3,)"), b""), FORMAT, "a float dimension")
add("shape-float-dot.npy", npy(std("'<u1'", "(2.0,)"), b"\0\0"), FORMAT, "a float dimension 2.0")
add("shape-33-dims.npy", npy(std("'<u1'", "(" + "1, " * 33 + ")"), b"\0"), LIMIT,
    "33 dimensions (over the 8-dim cap)")
add("shape-9-dims.npy", npy(std("'<u1'", "(" + "1, " * 9 + ")"), b"\0"), LIMIT,
    "9 dimensions (over the 8-dim cap)")
add("shape-8-dims.npy", npy(std("'<u1'", "(" + "1, " * 7 + "2, )"), b"\0\0"), OK, "8 dimensions")
add("shape-overflow.npy", npy(std("'<f4'", "(4294967296, 4294967296, 4294967296)"), b""), FORMAT,
    "element count overflows u64")
add("shape-wraps-to-zero.npy", npy(std("'<u1'", "(4294967296, 4294967296)"), b""), FORMAT,
    "element count 2**64 wraps to exactly 0")
add("shape-bytes-overflow.npy", npy(std("'<f8'", "(4611686018427387904,)"), b""), FORMAT,
    "elements fit u64 but bytes (x8) do not")
add("shape-scalar.npy", npy(std("'<f4'", "()"), F4x2[:4]), OK, "a scalar, shape ()")
add("shape-empty.npy", npy(std("'<f4'", "(0,)"), b""), OK, "an empty array, shape (0,)")
add("shape-int-not-tuple.npy", npy(std("'<f4'", "(2)"), F4x2), FORMAT,
    "shape (2) is an int in Python, not a tuple")
add("shape-list.npy", npy(std("'<f4'", "[2]"), F4x2), FORMAT, "shape as a list")
add("shape-leading-zero.npy", npy(std("'<f4'", "(02,)"), F4x2), FORMAT, "integer with a leading zero")

# 6. fortran_order
add("fortran-int.npy", npy(std("'<f4'", "(2,)", "1"), F4x2), FORMAT, "fortran_order: 1")
add("fortran-string.npy", npy(std("'<f4'", "(2,)", "'True'"), F4x2), FORMAT, "fortran_order: 'True'")
add("fortran-none.npy", npy(std("'<f4'", "(2,)", "None"), F4x2), FORMAT, "fortran_order: None")
add("fortran-2d.npy", npy(std("'<f4'", "(2, 3)", "True"), struct.pack("<6f", *range(6))), OK,
    "a Fortran-order 2-D array (reordered on access)")
add("fortran-1d.npy", npy(std("'<f4'", "(2,)", "True"), F4x2), OK, "fortran_order True on 1-D (MLX)")

# 7. data length
add("data-short.npy", npy(std("'<f4'", "(3,)"), F4x2), FORMAT, "one element missing")
add("data-short-by-one-byte.npy", npy(std("'<f4'", "(2,)"), F4x2[:7]), FORMAT, "one byte missing")
add("data-long.npy", npy(std("'<f4'", "(2,)"), F4x2 + b"\0"), FORMAT,
    "one trailing byte (strict: refused)")
add("data-big-claim.npy", npy(std("'<f8'", "(1000000000000,)"), F4x2), FORMAT,
    "8 TB claimed in a 136-byte file")

with open(os.path.join(OUT, "expected.tsv"), "w") as f:
    for name, code, why in entries:
        f.write("%s\t%d\t%s\n" % (name, code, why))
