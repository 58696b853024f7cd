#!/usr/bin/env python3
"""Write examples/models/tiny-mlp/: a two-layer MLP in safetensors plus its config.json.
Deterministic, standard library only (the weights are a fixed pseudo-random sequence)."""
import json
import os
import random
import struct

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models", "tiny-mlp")


def f32(values):
    return struct.pack("<%df" % len(values), *values)


def main():
    rng = random.Random(2026)
    tensors = [
        ("layers.0.weight", "F32", [16, 8], f32([rng.uniform(-0.5, 0.5) for _ in range(128)])),
        ("layers.0.bias", "F32", [16], f32([0.0] * 16)),
        ("layers.1.weight", "F32", [4, 16], f32([rng.uniform(-0.5, 0.5) for _ in range(64)])),
        ("layers.1.bias", "F32", [4], f32([0.1, 0.2, 0.3, 0.4])),
        ("step", "I64", [], struct.pack("<q", 1000)),
    ]
    header, off, blob = {"__metadata__": {"format": "pt", "example": "modelgate"}}, 0, b""
    for name, dt, shape, data in tensors:
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(data)]}
        off += len(data)
        blob += data
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    os.makedirs(HERE, exist_ok=True)
    with open(os.path.join(HERE, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + blob)
    with open(os.path.join(HERE, "config.json"), "w") as f:
        json.dump({"architecture": "mlp", "inputs": 8, "hidden": 16, "outputs": 4}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
