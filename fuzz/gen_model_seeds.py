#!/usr/bin/python3
"""Seed corpora of the whole-model harnesses (fuzz_model_*.c): each seed is the files of one
model directory joined by "\\n--8<--\\n", in the harness's file order. Deterministic.
Run: /usr/bin/python3 fuzz/gen_model_seeds.py"""
import hashlib
import io
import json
import os
import struct
import sys
import tempfile

import numpy as np

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "data"))
import write_mxnet  # noqa: E402

SEP = b"\n--8<--\n"


def safetensors(tensors, metadata=None):
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def index(wm, total=0):
    return json.dumps({"metadata": {"total_size": total}, "weight_map": wm}).encode()


def npz(arrays, compressed=False):
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


def save(name, seeds):
    d = os.path.join(TOP, "fuzz", "corpus", name)
    os.makedirs(d, exist_ok=True)
    for parts in seeds:
        blob = SEP.join(parts)
        with open(os.path.join(d, hashlib.sha1(blob).hexdigest()), "wb") as f:
            f.write(blob)


S1, S2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
a = safetensors([("a", "F32", [2], b"\0" * 8), ("b", "F32", [1], b"\1" * 4)], {"format": "pt"})
b = safetensors([("c", "U8", [3], b"xyz")])
good = {"a": S1, "b": S1, "c": S2}
save("model_sharded", [
    [index(good, 15), a, b],
    [index({"a": S1, "b": S2, "c": S2}), a, b],            # b is not where the index says
    [index({"a": S1, "b": S1}), a, b],                      # c unlisted
    [index({"a": S1, "b": S1, "c": "model-00003-of-00002.safetensors"}), a, b],
    [index({"a": S1, "b": S1, "c": S2}), a, safetensors([("a", "U8", [3], b"xyz")])],  # dup
    [index({"t%d" % i: (S1 if i % 2 else S2) for i in range(64)}),
     safetensors([("t%d" % i, "U8", [1], bytes([i])) for i in range(1, 64, 2)]),
     safetensors([("t%d" % i, "U8", [1], bytes([i])) for i in range(0, 64, 2)])],
    [index(good), a],
])

with tempfile.TemporaryDirectory() as tmp:
    write_mxnet.write_checkpoint(tmp, "ckpt")
    sym = open(os.path.join(tmp, "ckpt-symbol.json"), "rb").read()
    params = open(os.path.join(tmp, "ckpt-0000.params"), "rb").read()
names = ["arg:conv0_weight", "arg:fc0_weight"]
small = write_mxnet.Rec("v2", [2], 0, seed=3)
with tempfile.TemporaryDirectory() as tmp:
    p = os.path.join(tmp, "p")
    write_mxnet.write_params(p, [small, small], names)
    params2 = open(p, "rb").read()
save("model_checkpoint", [
    [sym, params, params2],
    [sym, params, params],
    [sym, params2, b""],
    [write_mxnet.symbol_json(10200), params, params2],
])

w = {"arg:conv0_weight": np.arange(36, dtype=np.float32).reshape(4, 1, 3, 3),
     "arg:fc0_weight": np.ones((2, 16), dtype=np.float16), "aux:bn0_moving_var": np.zeros(4)}
save("model_npz", [
    [sym, npz(w), npz({"x": np.arange(10, dtype=np.int64)}, compressed=True)],
    [sym, npz(w, compressed=True), npz({"y": np.array([[1, 2], [3, 4]], dtype=">i4")})],
    [sym, npz({}), npz({"z": np.asfortranarray(np.arange(6, dtype=np.uint8).reshape(2, 3))})],
])
