#!/usr/bin/env python3
"""Load a model through modelgate and use its weights with numpy only.

Instead of

    path = download(url); check_sha256(path); weights = np.load(path)   # hash, then re-read

(two reads of the file, a window between hash and load, and the file parsed by a loader that
trusts it), the model is named in the policy, verified and parsed once by libmodelgate, and
the arrays are read-only views of the verified memory.

    MODELGATE_POLICY=policy.json python3 numpy_load.py tiny-mlp
"""
import argparse
import json
import sys

import numpy as np

import pymodelgate


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", help="model name in the policy, or its exact source")
    ap.add_argument("-p", "--policy", help="policy file (default: $MODELGATE_POLICY)")
    args = ap.parse_args()
    try:
        model = pymodelgate.load(args.source, policy=args.policy)
    except pymodelgate.Error as e:
        print("refused: %s" % e, file=sys.stderr)
        return e.status
    with model:
        for f in model.files:
            print("file %s (%s, %d bytes, %s %s)" % (f.path, f.format, f.size, f.algorithm, f.digest))
        if "config.json" in [f.path for f in model.files]:
            config = json.loads(bytes(model.asset("config.json")))  # the verified bytes
            print("config", json.dumps(config, sort_keys=True))
        for name, w in model.items():
            info = model.tensor_info(name)
            print("tensor %s %s %s sum=%.6g" % (name, info.dtype, list(w.shape),
                                                float(np.sum(w, dtype=np.float64))))
        # A tiny forward pass when the model is the example MLP (x @ W.T + b, ReLU between).
        if {"layers.0.weight", "layers.1.weight"} <= set(model):
            x = np.ones(model["layers.0.weight"].shape[1], dtype=np.float32)
            h = np.maximum(model["layers.0.weight"] @ x + model["layers.0.bias"], 0)
            y = model["layers.1.weight"] @ h + model["layers.1.bias"]
            print("forward", " ".join("%.6g" % v for v in y))
    return 0


if __name__ == "__main__":
    sys.exit(main())
