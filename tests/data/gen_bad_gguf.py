#!/usr/bin/python3
"""Write the GGUF test inputs into tests/data/bad/gguf/ plus expected.tsv.

One file per bad input of formats.md §5.5 (GGUF, items 1-9), each with the exit code that
`modelgate inspect` must give (6 format, 8 limit), and valid files (exit 0) that must be
accepted: every ggml type incl. the quantized ones, every metadata value type, v2, the final
pad missing, n_tensors = 0 with and without padding, zero dims and dims above 2^31.

Deterministic, standard library only, written to the layout of formats.md §3 (not with a
GGUF library). Run: /usr/bin/python3 tests/data/gen_bad_gguf.py
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "bad", "gguf")

UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)
FMT = {UINT8: "B", INT8: "b", UINT16: "H", INT16: "h", UINT32: "I", INT32: "i", FLOAT32: "f",
       BOOL: "B", UINT64: "Q", INT64: "q", FLOAT64: "d"}

# id: (name, elements per block, bytes per block), formats.md §3.3
GGML = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22), 7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 36),
    10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110), 12: ("Q4_K", 256, 144), 13: ("Q5_K", 256, 176),
    14: ("Q6_K", 256, 210), 15: ("Q8_K", 256, 292), 16: ("IQ2_XXS", 256, 66),
    17: ("IQ2_XS", 256, 74), 18: ("IQ3_XXS", 256, 98), 19: ("IQ1_S", 256, 50),
    20: ("IQ4_NL", 32, 18), 21: ("IQ3_S", 256, 110), 22: ("IQ2_S", 256, 82),
    23: ("IQ4_XS", 256, 136), 24: ("I8", 1, 1), 25: ("I16", 1, 2), 26: ("I32", 1, 4),
    27: ("I64", 1, 8), 28: ("F64", 1, 8), 29: ("IQ1_M", 256, 56), 30: ("BF16", 1, 2),
    34: ("TQ1_0", 256, 54), 35: ("TQ2_0", 256, 66), 39: ("MXFP4", 32, 17),
    40: ("NVFP4", 64, 36), 41: ("Q1_0", 128, 18), 42: ("Q2_0", 64, 18),
}
F32, F16, Q4_0, Q8_0, Q4_K = 0, 1, 2, 8, 12


def u32(v):
    return struct.pack("<I", v & 0xFFFFFFFF)


def u64(v):
    return struct.pack("<Q", v & 0xFFFFFFFFFFFFFFFF)


def gstr(b):
    if isinstance(b, str):
        b = b.encode()
    return u64(len(b)) + b


def scalar(t, v):
    if t == STRING:
        return gstr(v)
    return struct.pack("<" + FMT[t], v)


def kv(key, t, v):
    """A KV pair; for ARRAY, v = (element_type, [values])."""
    if t == ARRAY:
        et, items = v
        return gstr(key) + u32(ARRAY) + u32(et) + u64(len(items)) + b"".join(scalar(et, x) for x in items)
    return gstr(key) + u32(t) + scalar(t, v)


def kv_raw(key, t, payload):
    return gstr(key) + u32(t) + payload


def nbytes_of(ne, t):
    name, blck, size = GGML[t]
    ne = list(ne) + [1] * (4 - len(ne))  # unused dims are 1, as in ggml
    n = 1
    for d in ne[1:]:
        n *= d
    return ne[0] // blck * size * n


def pad(x, a):
    return x + (a - x % a) % a


def data_bytes(n, seed):
    return bytes(((i * 131 + seed * 17) >> 1) & 0xFF for i in range(n))


def tinfo(name, ne, t, off):
    return gstr(name) + u32(len(ne)) + b"".join(u64(d) for d in ne) + u32(t) + u64(off)


def gguf(kvs=(), tensors=(), version=3, alignment=32, final_pad=True, n_tensors=None, n_kv=None,
         offsets=None, infos=None, tail=b""):
    """A GGUF file. tensors: (name, ne, type) with data generated and offsets computed by the
    reference rule, unless `offsets` overrides them; `infos` replaces the tensor-info bytes."""
    kvs = list(kvs)
    tensors = list(tensors)
    head = b"GGUF" + u32(version) + u64(len(tensors) if n_tensors is None else n_tensors) + \
        u64(len(kvs) if n_kv is None else n_kv) + b"".join(kvs)
    sizes = [nbytes_of(ne, t) for _, ne, t in tensors]
    offs, run = [], 0
    for n in sizes:
        offs.append(run)
        run += pad(n, alignment)
    if offsets is not None:
        offs = offsets
    ti = b"".join(tinfo(n, ne, t, o) for (n, ne, t), o in zip(tensors, offs)) if infos is None else infos
    body = head + ti
    if not tensors:
        return body + (b"\0" * (pad(len(body), alignment) - len(body)) if final_pad else b"") + tail
    body += b"\0" * (pad(len(body), alignment) - len(body))
    data = b""
    for i, n in enumerate(sizes):
        data += data_bytes(n, i)
        if i + 1 < len(sizes) or final_pad:
            data += b"\0" * (pad(n, alignment) - n)
    return body + data + tail


BASIC_KV = [kv("general.architecture", STRING, "llama"), kv("general.name", STRING, "modelgate-test")]
BASIC_T = [("a.weight", [4, 2], F32), ("b.weight", [32, 2], Q4_0)]

FILES = []


def add(name, code, desc, content):
    FILES.append((name, code, desc, content))


def v1_file():
    # GGUF v1: u32 counts and u32 string lengths
    key = b"general.name"
    return b"GGUF" + u32(1) + u32(0) + u32(1) + u32(len(key)) + key + u32(STRING) + u32(2) + b"v1"


def build():
    # ---- valid inputs (exit 0) ----------------------------------------------------------
    all_kv = [
        kv("t.u8", UINT8, 200), kv("t.i8", INT8, -100), kv("t.u16", UINT16, 60000),
        kv("t.i16", INT16, -30000), kv("t.u32", UINT32, 4000000000), kv("t.i32", INT32, -2000000000),
        kv("t.f32", FLOAT32, 0.5), kv("t.bool", BOOL, 1), kv("t.str", STRING, "h\u00e9llo"),
        kv("t.u64", UINT64, 2**64 - 1), kv("t.u64small", UINT64, 42), kv("t.i64", INT64, -2**63),
        kv("t.f64", FLOAT64, -1.25), kv("t.nan", FLOAT32, float("nan")),
        kv("t.inf", FLOAT64, float("-inf")),
        kv("t.arr_i32", ARRAY, (INT32, [1, -2, 3])), kv("t.arr_bool", ARRAY, (BOOL, [1, 0])),
        kv("t.arr_str", ARRAY, (STRING, ["a", "", "\u00fc"])), kv("t.arr_empty", ARRAY, (UINT8, [])),
        kv("t.arr_big", ARRAY, (UINT32, list(range(2000)))),
        kv("t.arr_bigstr", ARRAY, (STRING, ["x%d" % i for i in range(1500)])),
        kv("t.badutf8", STRING, b"\xff\xfe"),
        kv("general.alignment", UINT32, 64),
    ]
    plain = [("p.f32", [3, 2], 0), ("p.f16", [4], 1), ("p.bf16", [2, 2], 30), ("p.f64", [2], 28),
             ("p.i8", [5], 24), ("p.i16", [3], 25), ("p.i32", [1, 1, 2], 26), ("p.i64", [2, 1, 1, 1], 27)]
    add("good-v3-all-kv-types.gguf", 0, "v3, every KV type (0-12), alignment 64, every plain type",
        gguf(all_kv, plain, alignment=64))
    quant = []
    for t in sorted(GGML):
        name, blck, size = GGML[t]
        if blck > 1:
            quant.append(("q.%s" % name.lower(), [blck * 2, 3], t))
    add("good-quantized-all-types.gguf", 0, "one tensor of every block-quantized ggml type",
        gguf(BASIC_KV, quant))
    add("good-quantized-q4_0-q8_0-q4_k.gguf", 0, "Q4_0 [2,64], Q8_0 [3,32], Q4_K [1,512] with F32",
        gguf(BASIC_KV, [("blk.0.q4_0", [64, 2], Q4_0), ("blk.0.q8_0", [32, 3], Q8_0),
                        ("blk.0.q4_k", [512, 1], Q4_K), ("norm", [7], F32)]))
    add("good-v2.gguf", 0, "GGUF v2 with two tensors", gguf(BASIC_KV, BASIC_T, version=2))
    add("good-no-final-pad.gguf", 0, "last tensor not padded (gguflib/MLX writer; llama.cpp mmap accepts)",
        gguf(BASIC_KV, [("a", [3], F32), ("b", [5], F32)], final_pad=False))
    add("good-final-pad.gguf", 0, "last tensor padded with zeros (ggml writer)",
        gguf(BASIC_KV, [("a", [3], F32), ("b", [5], F32)], final_pad=True))
    add("good-ntensors0-nopad.gguf", 0, "n_tensors = 0, file ends after the KV section (real vocab files)",
        gguf(BASIC_KV, [], final_pad=False))
    add("good-ntensors0-padded.gguf", 0, "n_tensors = 0 with zero padding to the alignment (gguf-py)",
        gguf(BASIC_KV, [], final_pad=True))
    add("good-empty.gguf", 0, "no KV, no tensor: the 24-byte header alone", gguf([], [], final_pad=False))
    add("good-alignment-1.gguf", 0, "general.alignment = 1",
        gguf([kv("general.alignment", UINT32, 1)], [("a", [3], 24), ("b", [2], 25)], alignment=1))
    add("good-zero-dim.gguf", 0, "dim 0: an empty tensor of 0 bytes",
        gguf(BASIC_KV, [("empty", [0, 4], F32), ("after", [2], F32)]))
    add("good-dim-above-int32.gguf", 0, "dims 2^31+1 and 2^32 with a 0 dim (no int32 truncation of shapes)",
        gguf(BASIC_KV, [("wide", [2**31 + 1, 0], F32), ("wideq", [2**32, 0], Q4_0), ("x", [1], F32)]))
    add("good-scalar.gguf", 0, "n_dims = 0: a scalar F32", gguf(BASIC_KV, [("s", [], F32)]))
    add("good-name-63.gguf", 0, "tensor name of 63 bytes (the longest allowed)",
        gguf(BASIC_KV, [("n" * 63, [2], F32)]))

    # ---- 1. header ----------------------------------------------------------------------
    add("bad-short-23-bytes.gguf", 6, "23 bytes: header truncated", gguf([], [])[:23])
    add("bad-short-8-bytes.gguf", 6, "magic and version only", b"GGUF" + u32(3))
    add("bad-magic.gguf", 6, "wrong magic", b"GGUG" + gguf(BASIC_KV, BASIC_T)[4:])
    add("bad-version-0.gguf", 6, "version 0", gguf(BASIC_KV, BASIC_T, version=0))
    add("bad-version-1.gguf", 6, "GGUF v1 (u32 counts) is not supported", v1_file())
    add("bad-version-4.gguf", 6, "version 4", gguf(BASIC_KV, BASIC_T, version=4))
    add("bad-version-byteswapped.gguf", 6, "version 0x03000000 (big-endian writer)",
        gguf(BASIC_KV, BASIC_T, version=0x03000000))
    # ---- 2. counts ----------------------------------------------------------------------
    add("bad-ntensors-negative.gguf", 6, "n_tensors = -1 as int64", gguf(BASIC_KV, BASIC_T, n_tensors=-1))
    add("bad-nkv-negative.gguf", 6, "n_kv = -1 as int64", gguf(BASIC_KV, BASIC_T, n_kv=-1))
    add("bad-ntensors-2e60.gguf", 6, "n_tensors = 2^60", gguf(BASIC_KV, BASIC_T, n_tensors=2**60))
    add("bad-nkv-2e60.gguf", 6, "n_kv = 2^60", gguf(BASIC_KV, BASIC_T, n_kv=2**60))
    add("bad-ntensors-too-many.gguf", 6, "n_tensors = 1000, more than the file could hold",
        gguf(BASIC_KV, BASIC_T, n_tensors=1000))
    add("bad-nkv-too-many.gguf", 6, "n_kv = 100, more than the file could hold",
        gguf(BASIC_KV, BASIC_T, n_kv=100))
    add("bad-nkv-one-more.gguf", 6, "n_kv one more than present: the tensor infos are read as a KV",
        gguf(BASIC_KV, BASIC_T, n_kv=3))
    # ---- 3. KV --------------------------------------------------------------------------
    add("bad-key-len-0.gguf", 6, "empty key", gguf([kv_raw(b"", UINT8, b"\x01")]))
    add("bad-key-len-max.gguf", 6, "key length 2^64-1",
        gguf([u64(2**64 - 1) + b"general.name" + u32(UINT8) + b"\x01"]))
    add("bad-key-len-past-eof.gguf", 6, "key length 100 past EOF", gguf([u64(100) + b"gen"], n_kv=1))
    add("bad-key-too-long.gguf", 6, "key of 65536 bytes (spec: at most 65535)",
        gguf([kv("k" * 65536, UINT8, 1)]))
    add("bad-key-not-utf8.gguf", 6, "key bytes not UTF-8", gguf([kv(b"gen\xff", UINT8, 1)]))
    add("bad-key-nul.gguf", 6, "key with a NUL byte", gguf([kv(b"gen\x00x", UINT8, 1)]))
    add("bad-key-duplicate.gguf", 6, "duplicate key",
        gguf([kv("general.name", STRING, "a"), kv("general.name", STRING, "b")]))
    add("bad-value-type-13.gguf", 6, "value type 13", gguf([kv_raw("k", 13, b"\0" * 8)]))
    add("bad-value-type-ffffffff.gguf", 6, "value type 0xFFFFFFFF", gguf([kv_raw("k", 0xFFFFFFFF, b"\0" * 8)]))
    add("bad-array-of-array.gguf", 6, "ARRAY of ARRAY (nested)",
        gguf([kv_raw("k", ARRAY, u32(ARRAY) + u64(1) + u32(UINT8) + u64(1) + b"\x01")]))
    add("bad-array-elem-type-13.gguf", 6, "ARRAY of type 13", gguf([kv_raw("k", ARRAY, u32(13) + u64(1) + b"\0" * 8)]))
    add("bad-array-count-2e30p1.gguf", 6, "array of 2^30+1 uint8 in a small file",
        gguf([kv_raw("k", ARRAY, u32(UINT8) + u64(2**30 + 1) + b"\0" * 64)]))
    add("bad-array-count-past-eof.gguf", 6, "array count 1000 of uint32, past EOF",
        gguf([kv_raw("k", ARRAY, u32(UINT32) + u64(1000) + b"\0" * 64)]))
    add("bad-array-count-wraps.gguf", 6, "array count 2^62 of uint64: count*8 wraps",
        gguf([kv_raw("k", ARRAY, u32(UINT64) + u64(2**62) + b"\0" * 64)]))
    add("bad-array-string-past-eof.gguf", 6, "array of strings, the second one's length runs past EOF",
        gguf([kv_raw("k", ARRAY, u32(STRING) + u64(3) + gstr("ok") + u64(1000) + b"abc" + b"\0" * 16)]))
    add("bad-string-len-max.gguf", 6, "string value length 2^64-1",
        gguf([kv_raw("k", STRING, u64(2**64 - 1) + b"abc")]))
    add("bad-bool-2.gguf", 6, "BOOL value 2", gguf([kv_raw("k", BOOL, b"\x02")]))
    add("bad-bool-array-2.gguf", 6, "BOOL array holding 2",
        gguf([kv_raw("k", ARRAY, u32(BOOL) + u64(3) + b"\x01\x02\x00")]))
    add("bad-value-truncated.gguf", 6, "UINT64 value cut by EOF", gguf([kv_raw("k", UINT64, b"\1\2\3")], final_pad=False))
    # ---- 4. general.alignment -----------------------------------------------------------
    add("bad-alignment-int32.gguf", 6, "general.alignment as INT32",
        gguf([kv("general.alignment", INT32, 32)], BASIC_T))
    add("bad-alignment-0.gguf", 6, "general.alignment 0", gguf([kv("general.alignment", UINT32, 0)], BASIC_T))
    add("bad-alignment-3.gguf", 6, "general.alignment 3 (not a power of two)",
        gguf([kv("general.alignment", UINT32, 3)], BASIC_T))
    add("bad-alignment-2e31.gguf", 8, "general.alignment 0x80000000 (over our 1 MiB cap)",
        gguf([kv("general.alignment", UINT32, 0x80000000)], BASIC_T))
    add("bad-alignment-2e40-u64.gguf", 6, "general.alignment 1<<40 as UINT64",
        gguf([kv("general.alignment", UINT64, 1 << 40)], BASIC_T))
    add("bad-alignment-string.gguf", 6, "general.alignment as a string",
        gguf([kv("general.alignment", STRING, "32")], BASIC_T))
    add("bad-alignment-duplicate.gguf", 6, "general.alignment twice",
        gguf([kv("general.alignment", UINT32, 32), kv("general.alignment", UINT32, 64)], BASIC_T))
    # ---- 5. tensor infos ----------------------------------------------------------------
    add("bad-name-64.gguf", 6, "tensor name of 64 bytes", gguf(BASIC_KV, [("n" * 64, [2], F32)]))
    add("bad-name-nul.gguf", 6, "tensor name with a NUL", gguf(BASIC_KV, [("a\0b", [2], F32)]))
    add("bad-name-not-utf8.gguf", 6, "tensor name bytes not UTF-8 (names are shown as JSON strings)",
        gguf(BASIC_KV, [(b"w\xc3(", [2], F32)]))
    add("bad-name-control-duplicate.gguf", 6, "duplicate tensor name with a newline and ESC (message stays one line)",
        gguf(BASIC_KV, [("a\nb\x1b[2J", [2], F32), ("a\nb\x1b[2J", [2], F32)]))
    add("bad-key-control-duplicate.gguf", 6, "duplicate 300-character key with newlines and multibyte UTF-8",
        gguf([kv("\n" + "\u00e9" * 150, UINT8, 1), kv("\n" + "\u00e9" * 150, UINT8, 2)]))
    add("bad-name-len-past-eof.gguf", 6, "tensor name length past EOF",
        gguf(BASIC_KV, [("a", [2], F32)], infos=u64(5000) + b"abc"))
    add("bad-name-duplicate.gguf", 6, "two tensors named the same (different offsets)",
        gguf(BASIC_KV, [("w", [2], F32), ("w", [4], F32)]))
    add("bad-name-duplicate-nonadjacent.gguf", 6, "the same name at tensors 1 and 3",
        gguf(BASIC_KV, [("w", [2], F32), ("v", [4], F32), ("w", [4], F32)]))
    add("bad-ndims-5.gguf", 6, "n_dims 5", gguf(BASIC_KV, [("a", [1, 1, 1, 1, 2], F32)]))
    add("bad-ndims-ffffffff.gguf", 6, "n_dims 0xFFFFFFFF",
        gguf(BASIC_KV, [("a", [2], F32)], infos=gstr("a") + u32(0xFFFFFFFF) + u64(2) + u32(0) + u64(0)))
    add("bad-dim-negative.gguf", 6, "dim -1", gguf(BASIC_KV, [("a", [2], F32)],
                                                  infos=tinfo("a", [2**64 - 1], F32, 0)))
    add("bad-dim-2e63.gguf", 6, "dim 2^63 (negative as int64)",
        gguf(BASIC_KV, [("a", [2], F32)], infos=tinfo("a", [2**63], F32, 0)))
    add("bad-dims-overflow.gguf", 6, "ne0*ne1 = 2^32*2^32 overflows int64",
        gguf(BASIC_KV, [("a", [2], F32)], infos=tinfo("a", [2**32, 2**32], F32, 0)))
    add("bad-dims-int64max-x2.gguf", 6, "ne = (INT64_MAX, 2, 1, 1): the ggml_nelements bypass",
        gguf(BASIC_KV, [("a", [2], F32)], infos=tinfo("a", [2**63 - 1, 2, 1, 1], 24, 0)))
    add("bad-bytes-overflow.gguf", 6, "F64 with 2^62 elements: byte size overflows int64",
        gguf(BASIC_KV, [("a", [2], F32)], infos=tinfo("a", [2**62], 28, 0)))
    # ---- 6. types -----------------------------------------------------------------------
    for t in (4, 5, 31, 32, 33, 36, 37, 38):
        add("bad-type-removed-%d.gguf" % t, 6, "removed ggml type %d" % t,
            gguf(BASIC_KV, [("a", [2], F32)], infos=tinfo("a", [256], t, 0)))
    add("bad-type-43.gguf", 6, "unknown ggml type 43", gguf(BASIC_KV, [("a", [2], F32)], infos=tinfo("a", [256], 43, 0)))
    add("bad-type-minus1.gguf", 6, "ggml type -1", gguf(BASIC_KV, [("a", [2], F32)], infos=tinfo("a", [256], -1, 0)))
    add("bad-q4_0-ne0-33.gguf", 6, "Q4_0 with ne0 = 33 (not a multiple of 32)",
        gguf(BASIC_KV, [("a", [2], F32)], infos=tinfo("a", [33, 2], Q4_0, 0)))
    add("bad-q4_k-ne0-128.gguf", 6, "Q4_K with ne0 = 128 (block size 256)",
        gguf(BASIC_KV, [("a", [2], F32)], infos=tinfo("a", [128], Q4_K, 0)))
    add("bad-q4_0-scalar.gguf", 6, "Q4_0 with n_dims 0 (ne0 = 1)",
        gguf(BASIC_KV, [("a", [2], F32)], infos=tinfo("a", [], Q4_0, 0)))
    # ---- 7. offsets ---------------------------------------------------------------------
    two = [("a", [3], F32), ("b", [5], F32)]
    add("bad-offset-gap.gguf", 6, "second offset 64 instead of 32 (gap)", gguf(BASIC_KV, two, offsets=[0, 64]))
    add("bad-offset-overlap.gguf", 6, "second offset 0 (overlap)", gguf(BASIC_KV, two, offsets=[0, 0]))
    add("bad-offset-first-nonzero.gguf", 6, "first offset 32", gguf(BASIC_KV, two, offsets=[32, 64]))
    add("bad-offset-unaligned.gguf", 6, "second offset 12 (the unpadded end of the first)",
        gguf(BASIC_KV, two, offsets=[0, 12]))
    add("bad-offset-reversed.gguf", 6, "offsets in reverse file order", gguf(BASIC_KV, two, offsets=[32, 0]))
    add("bad-data-past-eof.gguf", 6, "last tensor's data cut by EOF",
        gguf(BASIC_KV, two, final_pad=False)[:-1])
    add("bad-data-huge.gguf", 6, "I8 tensor of 2^40 bytes in a small file",
        gguf(BASIC_KV, [("a", [2], F32)], infos=tinfo("a", [2**40], 24, 0)))
    big = 2**63 - 32
    add("bad-padded-size-wraps.gguf", 6, "CVE-2025-53630 shape: sizes whose padded sum wraps",
        gguf(BASIC_KV, [("a", [2], F32)], n_tensors=2,
             infos=tinfo("a", [big], 24, 0) + tinfo("b", [big], 24, big)))
    one = [("a", [3], F32)]
    info_end = len(b"GGUF") + 4 + 16 + len(b"".join(BASIC_KV)) + len(tinfo("a", [3], F32, 0))
    assert info_end % 32 != 0, "choose BASIC_KV so that the tensor infos do not end aligned"
    add("bad-data-start-past-eof.gguf", 6, "n_tensors > 0 and the file ends before the aligned data start",
        gguf(BASIC_KV, one)[:info_end])
    # ---- 8. padding policy ---------------------------------------------------------------
    padded = gguf(BASIC_KV, two, final_pad=True)
    add("bad-final-pad-partial.gguf", 6, "final pad present but one byte short", padded[:-1])
    add("bad-trailing-after-pad.gguf", 6, "one byte after the complete final pad", padded + b"\0")
    add("bad-trailing-no-pad.gguf", 6, "a non-pad trailing byte after the unpadded last tensor",
        gguf(BASIC_KV, two, final_pad=False) + b"X")
    add("bad-final-pad-nonzero.gguf", 6, "final pad holds a non-zero byte", padded[:-1] + b"\x01")
    nz = bytearray(gguf(BASIC_KV, two, final_pad=True))
    nz[len(nz) - 64 + 12] = 0x55  # inside the pad after tensor a (3 floats = 12 bytes)
    add("bad-pad-between-nonzero.gguf", 6, "non-zero byte in the pad between two tensors", bytes(nz))
    hp = bytearray(gguf(BASIC_KV, one))
    assert info_end % 32 != 0
    hp[len(hp) - 32 - 1] = 0x7F  # last byte of the pad before the data section
    add("bad-pad-before-data-nonzero.gguf", 6, "non-zero byte in the pad before the data section", bytes(hp))
    add("bad-ntensors0-trailing.gguf", 6, "n_tensors = 0 with 3 bytes of garbage after the KV section",
        gguf(BASIC_KV, [], final_pad=False, tail=b"abc"))
    # ---- 9. quantized sizes beyond 2^32 elements ------------------------------------------
    add("bad-q4_0-2e33-elements.gguf", 6, "Q4_0 with 2^33+64 elements (mlx #4244), data past EOF",
        gguf(BASIC_KV, [("a", [2], F32)], infos=tinfo("q", [64, 2**27 + 1], Q4_0, 0)))
    add("bad-q8_0-int32-truncation.gguf", 6, "Q8_0 ne1 = 2^32+1 (int32 truncation would make it 1), past EOF",
        gguf(BASIC_KV, [("a", [2], F32)], infos=tinfo("q", [32, 2**32 + 1], Q8_0, 0)))


def main():
    build()
    os.makedirs(OUT, exist_ok=True)
    names = set()
    lines = []
    for name, code, desc, content in FILES:
        assert name not in names, name
        names.add(name)
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(content)
        lines.append("%s\t%d\t%s\n" % (name, code, desc))
    for old in os.listdir(OUT):
        if old.endswith(".gguf") and old not in names:
            os.remove(os.path.join(OUT, old))
    with open(os.path.join(OUT, "expected.tsv"), "w") as f:
        f.writelines(lines)
    print("wrote %d files to %s" % (len(FILES), OUT))


if __name__ == "__main__":
    main()
