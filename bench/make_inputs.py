#!/usr/bin/env python3
"""Write the benchmark inputs into bench/work/ (not committed): a 1 GiB safetensors file, a
model of 4 x 256 MiB safetensors files, a 1 GiB stored npz (written by numpy), a 1 GiB GGUF
and a small model (4 MiB safetensors, 64 tensors) for the per-load cost of confinement.
Random bytes, so that nothing compresses or dedups. Skips files that already exist."""
import json
import os
import struct
import sys

WORK = sys.argv[1]
GiB = 1 << 30
CHUNK = 64 << 20


def random_stream(n):
    left = n
    while left:
        k = min(left, CHUNK)
        yield os.urandom(k)
        left -= k


def safetensors(path, nbytes):
    if os.path.exists(path):
        return
    hdr = json.dumps({"w": {"dtype": "U8", "shape": [nbytes], "data_offsets": [0, nbytes]}}).encode()
    hdr += b" " * (-len(hdr) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(hdr)) + hdr)
        for b in random_stream(nbytes):
            f.write(b)
    os.rename(path + ".tmp", path)


def small_safetensors(path, tensors, each):
    if os.path.exists(path):
        return
    meta = {"layer.%02d.weight" % i: {"dtype": "U8", "shape": [each],
                                      "data_offsets": [i * each, (i + 1) * each]}
            for i in range(tensors)}
    hdr = json.dumps(meta).encode()
    hdr += b" " * (-len(hdr) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(hdr)) + hdr + os.urandom(tensors * each))
    os.rename(path + ".tmp", path)


def npz(path, nbytes):
    if os.path.exists(path):
        return
    import numpy as np
    arr = np.frombuffer(os.urandom(nbytes), dtype=np.uint8)
    np.savez(path[:-4] + ".tmp.npz", w=arr)
    os.rename(path[:-4] + ".tmp.npz", path)


def gguf(path, nbytes):
    if os.path.exists(path):
        return
    def s(x):
        b = x.encode()
        return struct.pack("<Q", len(b)) + b
    n = nbytes // 4
    out = b"GGUF" + struct.pack("<IQQ", 3, 1, 1)
    out += s("general.architecture") + struct.pack("<I", 8) + s("bench")
    out += s("w") + struct.pack("<I", 1) + struct.pack("<Q", n) + struct.pack("<I", 0) + struct.pack("<Q", 0)
    out += b"\0" * (-len(out) % 32)
    with open(path + ".tmp", "wb") as f:
        f.write(out)
        for b in random_stream(n * 4):
            f.write(b)
    os.rename(path + ".tmp", path)


safetensors(os.path.join(WORK, "one.safetensors"), GiB - 4096)
if sys.argv[2:] == ["one"]:  # bench/shards.sh needs only the 1 GiB file
    sys.exit(0)
os.makedirs(os.path.join(WORK, "four"), exist_ok=True)
for i in range(4):
    safetensors(os.path.join(WORK, "four", "part-%d.safetensors" % i), (256 << 20) - 4096)
npz(os.path.join(WORK, "one.npz"), GiB - 4096)
gguf(os.path.join(WORK, "one.gguf"), GiB - 4096)
small_safetensors(os.path.join(WORK, "small.safetensors"), 64, 64 << 10)
