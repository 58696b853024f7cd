#!/usr/bin/env python3
"""Write the safetensors bad inputs of reference/formats.md §5.5 (and a few accepted variants)
into tests/data/bad/safetensors/, with expected.tsv: file, expected exit code, description.

Deterministic; standard library only. Run: /usr/bin/python3 tests/data/gen_bad_safetensors.py
"""
import json
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bad", "safetensors")
rows = []


def st(header, data=b"", n=None, raw_header=False):
    h = header if raw_header else json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(h) if n is None else n) + h + data


def add(name, blob, code, desc):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(blob)
    rows.append((name, code, desc))


def t(dtype="F32", shape=(2,), offs=(0, 8)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offs)}


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))
    good = st({"a": t()}, b"\0" * 8)
    # 1. short files
    add("01-empty.safetensors", b"", 6, "0 bytes")
    add("01-short7.safetensors", b"\x10\0\0\0\0\0\0", 6, "7 bytes, shorter than the length field")
    # 2. N = 0, N = 1
    add("02-n0.safetensors", struct.pack("<Q", 0), 6, "header length 0")
    add("02-n1.safetensors", struct.pack("<Q", 1) + b"{", 6, "header length 1: '{'")
    # 3. huge N
    add("03-n100m1.safetensors", struct.pack("<Q", 100_000_001) + b"{}", 6, "N = 100,000,001")
    add("03-nmax.safetensors", struct.pack("<Q", 2**64 - 1) + b"{}", 6, "N = 2^64-1 (8+N wraps)")
    # 4. N larger than the file
    add("04-n-past-eof.safetensors", struct.pack("<Q", 4096) + b'{"a":1}', 6, "N larger than the file")
    # 5. encoding
    add("05-bad-utf8.safetensors", st(b'{"\xff":' + json.dumps(t()).encode() + b"}", b"\0" * 8, raw_header=True), 6, "invalid UTF-8 in the header")
    add("05-nul.safetensors", st(b'{"a\x00b":' + json.dumps(t()).encode() + b"}", b"\0" * 8, raw_header=True), 6, "NUL inside the JSON")
    add("05-bom.safetensors", st(b"\xef\xbb\xbf" + json.dumps({"a": t()}).encode(), b"\0" * 8, raw_header=True), 6, "UTF-8 BOM before the JSON")
    # 6. top level not an object
    for i, top in enumerate([b"[]", b'"x"', b"null", b"1"]):
        add("06-top-%d.safetensors" % i, st(top, raw_header=True), 6, "top level %s" % top.decode())
    # 7. whitespace accepted; trailing NUL / garbage refused
    add("07-ws-lead-trail.safetensors", st(b" \n\t" + json.dumps({"a": t()}).encode() + b"   ", b"\0" * 8, raw_header=True), 0, "JSON whitespace around the header (accepted)")
    add("07-trailing-nul.safetensors", st(json.dumps({"a": t()}).encode() + b"\0", b"\0" * 8, raw_header=True), 6, "NUL after the JSON inside N")
    add("07-trailing-garbage.safetensors", st(json.dumps({"a": t()}).encode() + b"xyz", b"\0" * 8, raw_header=True), 6, "garbage after the JSON inside N")
    # 8. fields
    for field in ("dtype", "shape", "data_offsets"):
        d = t()
        del d[field]
        add("08-missing-%s.safetensors" % field, st({"a": d}, b"\0" * 8), 6, "tensor without %s" % field)
    add("08-offsets-1.safetensors", st({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0]}}, b"\0" * 8), 6, "data_offsets of length 1")
    add("08-offsets-3.safetensors", st({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8, 8]}}, b"\0" * 8), 6, "data_offsets of length 3")
    add("08-shape-not-array.safetensors", st({"a": {"dtype": "F32", "shape": 2, "data_offsets": [0, 8]}}, b"\0" * 8), 6, "shape not an array")
    for i, dim in enumerate([b"-1", b"1.0", b"1e3", b"18446744073709551616"]):
        hdr = b'{"a":{"dtype":"U8","shape":[' + dim + b'],"data_offsets":[0,1]}}'
        add("08-dim-%d.safetensors" % i, st(hdr, b"\0", raw_header=True), 6, "dim %s" % dim.decode())
    add("08-extra-field.safetensors", st({"a": dict(t(), extra=1)}, b"\0" * 8), 6, "unknown tensor field (refused: stricter than the reference)")
    # 9. dtypes
    for i, dt in enumerate(["f32", "Q4", ""]):
        add("09-dtype-%d.safetensors" % i, st({"a": t(dtype=dt)}, b"\0" * 8), 6, "unknown dtype %r" % dt)
    # 10. __metadata__
    add("10-meta-int.safetensors", st({"__metadata__": {"x": 1}, "a": t()}, b"\0" * 8), 6, "__metadata__ with a non-string value")
    add("10-meta-null.safetensors", st({"__metadata__": None, "a": t()}, b"\0" * 8), 0, "__metadata__ null (accepted, as MLX writes)")
    add("10-meta-dup.safetensors", st(b'{"__metadata__":{},"__metadata__":{},"a":' + json.dumps(t()).encode() + b"}", b"\0" * 8, raw_header=True), 6, "__metadata__ twice")
    add("10-meta-array.safetensors", st({"__metadata__": [], "a": t()}, b"\0" * 8), 6, "__metadata__ as an array")
    add("10-meta-dup-key.safetensors", st(b'{"__metadata__":{"k":"a","k":"b"},"a":' + json.dumps(t()).encode() + b"}", b"\0" * 8, raw_header=True), 6, "duplicate key inside __metadata__")
    # 11. duplicate names
    tj = json.dumps(t()).encode()
    add("11-dup-identical.safetensors", st(b'{"a":' + tj + b',"a":' + tj + b"}", b"\0" * 8, raw_header=True), 6, "two identical tensors of one name")
    add("11-dup-different.safetensors", st(b'{"a":' + tj + b',"a":' + json.dumps(t(offs=(8, 16))).encode() + b"}", b"\0" * 16, raw_header=True), 6, "one name, two offsets")
    # 12. tiling
    add("12-not-from-0.safetensors", st({"a": t(offs=(4, 12))}, b"\0" * 12), 6, "offsets do not start at 0")
    add("12-gap.safetensors", st({"a": t(offs=(0, 8)), "b": t(offs=(12, 20))}, b"\0" * 20), 6, "gap between tensors")
    add("12-overlap.safetensors", st({"a": t(offs=(0, 8)), "b": t(offs=(4, 12))}, b"\0" * 12), 6, "overlapping tensors")
    add("12-end-before-begin.safetensors", st({"a": t(offs=(8, 0))}, b"\0" * 8), 6, "END < BEGIN")
    many = {"t%d" % i: t(offs=(0, 8)) for i in range(50)}
    add("12-aliasing.safetensors", st(many, b"\0" * 8), 6, "50 tensors all at [0,8] (aliasing DoS)")
    # 13. sizes
    add("13-size-mismatch.safetensors", st({"a": t(dtype="I32", shape=(2, 2), offs=(0, 4))}, b"\0" * 4), 6, "[2,2] I32 with 4 bytes")
    add("13-mlx3363.safetensors", st({"a": t(shape=(1000, 1000), offs=(0, 4))}, b"\0" * 4), 6, "[1000,1000] F32 covering 4 bytes (mlx #3363)")
    add("13-overflow-u64.safetensors", st({"a": t(shape=(2**62, 8), offs=(0, 8))}, b"\0" * 8), 6, "shape product overflows u64")
    add("13-overflow-i63.safetensors", st(b'{"a":{"dtype":"F32","shape":[2,9223372036854775807],"data_offsets":[0,8]}}', b"\0" * 8, raw_header=True), 6, "[2, 2^63-1]")
    add("13-wrap-to-zero.safetensors", st({"a": t(dtype="U8", shape=(2**32, 2**32), offs=(0, 0))}), 6, "[2^32,2^32] wraps to exactly 0")
    add("13-past-eof.safetensors", st({"a": t(shape=(4,), offs=(0, 16))}, b"\0" * 8), 6, "offsets consistent with the shape but past EOF (mlx #3409)")
    add("13-zero-size.safetensors", st({"a": t(shape=(2, 0), offs=(0, 0)), "b": t()}, b"\0" * 8), 0, "a [2,0] tensor (accepted)")
    add("13-scalar.safetensors", st({"s": t(shape=(), offs=(0, 4))}, b"\0" * 4), 0, "a 0-rank scalar (accepted)")
    add("13-f4.safetensors", st({"a": t(dtype="F4", shape=(3,), offs=(0, 2))}, b"\0" * 2), 6, "sub-byte F4 (not a supported dtype)")
    # 14. polyglot / truncation
    add("14-trailing.safetensors", good + b"PK\x03\x04", 6, "trailing bytes after the last tensor (polyglot)")
    add("14-missing-byte.safetensors", good[:-1], 6, "one byte missing")
    # 15. many tiny tensors (a budget test, kept to 100k so the suite stays fast)
    big = {"t%06d" % i: {"dtype": "U8", "shape": [1], "data_offsets": [i, i + 1]} for i in range(20_000)}
    add("15-20k-tensors.safetensors", st(big, b"\0" * 20_000), 0, "20,000 one-byte tensors (accepted within budget)")
    # 16. names
    add("16-empty-name.safetensors", st({"": t()}, b"\0" * 8), 0, "empty tensor name (accepted)")
    add("16-nul-name.safetensors", st(b'{"a\\u0000b":' + tj + b"}", b"\0" * 8, raw_header=True), 6, "tensor name with an escaped NUL")
    add("16-long-name.safetensors", st({"n" * (1 << 20): t()}, b"\0" * 8), 8, "1 MiB tensor name (over the 64 KiB name cap)")
    with open(os.path.join(OUT, "expected.tsv"), "w") as f:
        for name, code, desc in rows:
            f.write("%s\t%d\t%s\n" % (name, code, desc))


if __name__ == "__main__":
    main()
