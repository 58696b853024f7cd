#!/usr/bin/env python3
"""Test writer for MXNet NDArray-list `.params` files and `-symbol.json` checkpoints.

Standard library only, written from reference/formats.md §4 (not from MXNet's code):

    list:   u64 0x112, u64 reserved 0, u64 n_arrays, records, u64 n_names, names (u64 len + bytes)
    legacy: u32 ndim, ndim x u32 dims, i32 dev_type, i32 dev_id, i32 type_flag, data
    V1:     u32 0xF993FAC8, i32 ndim, ndim x i64 dims, context, i32 type_flag, data
    V2:     u32 0xF993FAC9, i32 stype(0), i32 ndim, i64 dims, context, type_flag, data
    V3:     u32 0xF993FACA, i32 stype(0), i32 ndim, i64 dims, context, type_flag, data
    "none": the shape only (legacy/V1/V2 ndim 0, V2 ndim -1, V3 ndim -1 or a dim -1)

`python3 write_mxnet.py OUTDIR` writes a set of files covering every version, every type
flag 0..12, arg:/aux: names, large dims and zero-size arrays, none records and an unnamed
list, plus OUTDIR/expected.json describing, for each file, every tensor the parser must
report: name, dtype, shape, offset and nbytes of the data exactly where it was written, and
the `seed` of its bytes (byte j of the data is (seed + 13*j) % 256), the names of the none
records and the record versions present. It also writes a checkpoint directory
OUTDIR/ckpt/ (ckpt-symbol.json + ckpt-0000.params) and OUTDIR/ckpt.json (its expected
cross-check report). Importable: see write_params(), pattern(), write_checkpoint().
"""
import json
import os
import struct
import sys

LIST_MAGIC = 0x112
V1, V2, V3 = 0xF993FAC8, 0xF993FAC9, 0xF993FACA
MAGIC = {"v1": V1, "v2": V2, "v3": V3}

# mshadow type flag -> (dtype name, bytes per element), formats.md §4.3
FLAGS = {0: ("F32", 4), 1: ("F64", 8), 2: ("F16", 2), 3: ("U8", 1), 4: ("I32", 4),
         5: ("I8", 1), 6: ("I64", 8), 7: ("BOOL", 1), 8: ("I16", 2), 9: ("U16", 2),
         10: ("U32", 4), 11: ("U64", 8), 12: ("BF16", 2)}


def pattern(seed, n):
    return bytes((seed + 13 * j) % 256 for j in range(n))


def nelem(shape):
    n = 1
    for d in shape:
        n *= d
    return n


class Rec:
    """One record. kind: legacy|v1|v2|v3. none=True writes only the shape (then shape is
    written as given, e.g. [] or None meaning ndim -1)."""

    def __init__(self, kind, shape, flag=0, seed=0, none=False, dev=(1, 0), stype=0, data=None):
        self.kind, self.shape, self.flag, self.seed = kind, shape, flag, seed
        self.none, self.dev, self.stype, self.data = none, dev, stype, data

    def nbytes(self):
        return nelem(self.shape) * FLAGS[self.flag][1]

    def payload(self):
        if self.data is not None:
            return self.data
        return pattern(self.seed, self.nbytes())

    def head(self):
        """Bytes before the data."""
        out = bytearray()
        if self.kind == "legacy":
            out += struct.pack("<I", len(self.shape))
            out += b"".join(struct.pack("<I", d) for d in self.shape)
        else:
            out += struct.pack("<I", MAGIC[self.kind])
            if self.kind != "v1":
                out += struct.pack("<i", self.stype)
            if self.shape is None:
                out += struct.pack("<i", -1)
            else:
                out += struct.pack("<i", len(self.shape))
                out += b"".join(struct.pack("<q", d) for d in self.shape)
        if self.none:
            return bytes(out)
        out += struct.pack("<ii", *self.dev)
        out += struct.pack("<i", self.flag)
        return bytes(out)


def write_params(path, records, names, reserved=0, trailing=b""):
    """Write a list file; returns [(record, data offset)] for every record (offset None for
    none records). `names` may be [] (no names)."""
    out = bytearray(struct.pack("<QQQ", LIST_MAGIC, reserved, len(records)))
    where = []
    for r in records:
        out += r.head()
        if r.none:
            where.append((r, None))
            continue
        where.append((r, len(out)))
        out += r.payload()
    out += struct.pack("<Q", len(names))
    for n in names:
        b = n.encode("utf-8") if isinstance(n, str) else n
        out += struct.pack("<Q", len(b)) + b
    out += trailing
    with open(path, "wb") as f:
        f.write(out)
    return where


def describe(where, names):
    tensors, none = [], []
    for i, (r, off) in enumerate(where):
        name = names[i] if names else str(i)
        if off is None:
            none.append(name)
            continue
        tensors.append({"name": name, "dtype": FLAGS[r.flag][0], "shape": list(r.shape),
                        "offset": off, "nbytes": r.nbytes(), "seed": r.seed})
    versions = [v for v in ("legacy", "v1", "v2", "v3") if any(r.kind == v for r, _ in where)]
    return {"tensors": tensors, "none": none, "record_versions": versions,
            "arrays": len(where)}


def every_flag(kind, prefix, seed0):
    """One record per type flag, shapes varying in rank."""
    shapes = [[2, 3], [5], [1, 2, 3], [4, 1], [3], [2, 2, 2, 1], [7], [9], [2, 5], [3, 3],
              [1, 1, 1, 1, 1, 2], [6], [4, 2]]
    recs, names = [], []
    for flag in range(13):
        recs.append(Rec(kind, shapes[flag], flag, seed=seed0 + flag))
        names.append("%s:flag%d_%s" % (prefix, flag, FLAGS[flag][0].lower()))
    return recs, names


def build_set(outdir):
    os.makedirs(outdir, exist_ok=True)
    expected = {}

    def emit(fname, recs, names, **kw):
        where = write_params(os.path.join(outdir, fname), recs, names, **kw)
        expected[fname] = describe(where, names)

    for i, kind in enumerate(("legacy", "v1", "v2", "v3")):
        recs, names = every_flag(kind, "arg", 10 + 20 * i)
        # aux: states, a zero-size array, a large dim and (but in legacy) a huge zero-size dim
        recs.append(Rec(kind, [3], 0, seed=100 + i))
        names.append("aux:bn_moving_mean")
        recs.append(Rec(kind, [3], 0, seed=110 + i))
        names.append("aux:bn_moving_var")
        recs.append(Rec(kind, [0, 5], 0, seed=0))
        names.append("arg:empty")
        recs.append(Rec(kind, [1, 70001], 3, seed=120 + i))
        names.append("arg:large_u8")
        if kind != "legacy":
            recs.append(Rec(kind, [0, 1 << 40], 1, seed=0))
            names.append("arg:empty_huge_dim")
        recs.append(Rec(kind, [2, 2], 4, seed=130 + i, dev=(2, 1)))
        names.append("arg:saved_on_gpu")
        recs.append(Rec(kind, [5], 0, seed=140 + i))
        names.append("plain_gluon_name")
        emit("%s.params" % kind, recs, names)

    # none records keep their name's place; V3 0-d scalars are real tensors
    emit("none_v2.params",
         [Rec("v2", [2], 0, seed=1), Rec("v2", [], none=True), Rec("v2", None, none=True),
          Rec("v2", [3], 6, seed=2)],
         ["arg:a", "arg:none0", "arg:none_minus1", "arg:b"])
    emit("none_v3.params",
         [Rec("v3", [], 0, seed=3), Rec("v3", None, none=True), Rec("v3", [2, -1], none=True),
          Rec("v3", [2], 12, seed=4)],
         ["arg:scalar", "arg:unknown_ndim", "arg:unknown_dim", "arg:bf16"])
    emit("none_legacy_v1.params",
         [Rec("legacy", [], none=True), Rec("v1", [], none=True), Rec("v1", [4], 2, seed=5)],
         ["x", "y", "z"])
    # unnamed list of mixed legacy/V1/V2 records: names are the indices
    emit("unnamed_mixed.params",
         [Rec("legacy", [2, 2], 0, seed=6), Rec("v1", [3], 1, seed=7),
          Rec("v2", [1], 4, seed=8), Rec("v2", [], none=True)], [])
    emit("empty_list.params", [], [])
    emit("unicode_names.params", [Rec("v2", [1], 0, seed=9), Rec("v2", [1], 0, seed=10)],
         ["arg:gewicht_ä", "arg:重み"])

    with open(os.path.join(outdir, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, ensure_ascii=False)
    report = write_checkpoint(os.path.join(outdir, "ckpt"), "ckpt")
    with open(os.path.join(outdir, "ckpt.json"), "w") as f:
        json.dump(report, f, indent=1)
    return expected


def symbol_json(version=10400):
    """A small conv + batchnorm + fc graph (1.x style: attrs, 3-element inputs)."""
    nodes = [
        {"op": "null", "name": "data", "inputs": []},
        {"op": "null", "name": "conv0_weight", "attrs": {"kernel": "(3, 3)", "num_filter": "4"},
         "inputs": []},
        {"op": "null", "name": "conv0_bias", "inputs": []},
        {"op": "Convolution", "name": "conv0", "attrs": {"kernel": "(3, 3)", "num_filter": "4"},
         "inputs": [[0, 0, 0], [1, 0, 0], [2, 0, 0]]},
        {"op": "null", "name": "bn0_gamma", "inputs": []},
        {"op": "null", "name": "bn0_beta", "inputs": []},
        {"op": "null", "name": "bn0_moving_mean", "inputs": []},
        {"op": "null", "name": "bn0_moving_var", "inputs": []},
        {"op": "BatchNorm", "name": "bn0", "attrs": {"eps": "0.001"},
         "inputs": [[3, 0, 0], [4, 0, 0], [5, 0, 0], [6, 0, 1], [7, 0, 1]]},
        {"op": "Flatten", "name": "flat0", "inputs": [[8, 0, 0]]},
        {"op": "null", "name": "fc0_weight", "inputs": []},
        {"op": "null", "name": "fc0_bias", "inputs": []},
        {"op": "FullyConnected", "name": "fc0", "attrs": {"num_hidden": "2"},
         "inputs": [[9, 0, 0], [10, 0, 0], [11, 0, 0]]},
        {"op": "null", "name": "softmax_label", "inputs": []},
        {"op": "SoftmaxOutput", "name": "softmax", "inputs": [[12, 0, 0], [13, 0, 0]]},
    ]
    doc = {"nodes": nodes,
           "arg_nodes": [i for i, n in enumerate(nodes) if n["op"] == "null"],
           "node_row_ptr": list(range(len(nodes) + 1)),
           "heads": [[14, 0, 0]],
           "attrs": {"mxnet_version": ["int", version]}}
    return json.dumps(doc, indent=2).encode()


def write_checkpoint(dirpath, prefix):
    """prefix-symbol.json + prefix-0000.params (arg:/aux: names, one stray parameter)."""
    os.makedirs(dirpath, exist_ok=True)
    with open(os.path.join(dirpath, prefix + "-symbol.json"), "wb") as f:
        f.write(symbol_json())
    recs = [Rec("v2", [4, 1, 3, 3], 0, seed=21), Rec("v2", [4], 0, seed=22),
            Rec("v2", [4], 0, seed=23), Rec("v2", [4], 0, seed=24),
            Rec("v2", [4], 0, seed=25), Rec("v2", [4], 0, seed=26),
            Rec("v2", [2, 16], 0, seed=27), Rec("v2", [3], 0, seed=28)]
    names = ["arg:conv0_weight", "arg:conv0_bias", "arg:bn0_gamma", "arg:bn0_beta",
             "aux:bn0_moving_mean", "aux:bn0_moving_var", "arg:fc0_weight", "arg:stray"]
    where = write_params(os.path.join(dirpath, prefix + "-0000.params"), recs, names)
    return {"params": describe(where, names),
            "report": {"unbound_variables": ["data", "fc0_bias", "softmax_label"],
                       "unused_parameters": ["arg:stray"]}}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: write_mxnet.py OUTDIR")
    build_set(sys.argv[1])
