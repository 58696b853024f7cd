#!/usr/bin/env python3
"""An MLX program that loads its weights through modelgate.

The unsafe sequence this replaces:

    path = hf_hub_download(repo, "model.safetensors")    # or urllib, or a copied file
    assert sha256(path) == PINNED                         # read once ...
    weights = mx.load(path)                               # ... and again, by a loader that
                                                          # trusts whatever is there now
The policy names the model and pins its digests (or a signed manifest); pymodelgate reads
every file once, proves it, parses it with the hardened C parsers, and only then gives MLX
the verified values. config.json is read from the verified bytes too.

    MODELGATE_POLICY=policy.json python3 mlx_load.py my-model
"""
import json
import sys

import mlx.core as mx
import mlx.nn as nn

import pymodelgate
import pymodelgate.mlx


class MLP(nn.Module):
    """The example model of examples/models/tiny-mlp: two Linear layers, ReLU between."""

    def __init__(self, inputs, hidden, outputs):
        super().__init__()
        self.layers = [nn.Linear(inputs, hidden), nn.Linear(hidden, outputs)]

    def __call__(self, x):
        return self.layers[1](nn.relu(self.layers[0](x)))


def main(source):
    try:
        weights, metadata = pymodelgate.mlx.load(source, return_metadata=True)
        with pymodelgate.load(source) as model:    # the verified config, not the file on disk
            config = json.loads(bytes(model.asset("config.json")))
    except pymodelgate.Error as e:                 # IntegrityError, UntrustedSourceError, ...
        print("refused: %s" % e, file=sys.stderr)
        return e.status
    model = MLP(config["inputs"], config["hidden"], config["outputs"])
    model.load_weights([(k, v) for k, v in weights.items() if k.startswith("layers.")])
    print(metadata, model(mx.ones((1, config["inputs"]))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "tiny-mlp"))
