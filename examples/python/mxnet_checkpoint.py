#!/usr/bin/env python3
"""An Apache MXNet program that loads its checkpoint through modelgate.

The unsafe sequence this replaces:

    download(url_of("model-symbol.json")); download(url_of("model-0000.params"))
    check_sha256("model-0000.params")                     # read once ...
    sym, args, auxs = mx.model.load_checkpoint("model", 0)  # ... and again, unchecked parser
                                                          # (and the symbol file never hashed)
The policy pins both files (or a signed manifest covers the folder); pymodelgate verifies and
parses them once; the graph is built from the verified -symbol.json bytes.

    MODELGATE_POLICY=policy.json python3 mxnet_checkpoint.py linreg-mxnet
"""
import sys

import mxnet as mx

import pymodelgate
import pymodelgate.mxnet as mgmx


def main(source):
    try:
        sym, arg_params, aux_params = mgmx.load_checkpoint(source, epoch=0)
    except pymodelgate.Error as e:
        print("refused: %s" % e, file=sys.stderr)
        return e.status
    mod = mx.mod.Module(symbol=sym, data_names=["data"], label_names=None, context=mx.cpu())
    # The first layer's weight is (outputs, inputs): one sample of `inputs` values.
    first = next(v for k, v in sorted(arg_params.items()) if k.endswith("_weight"))
    data_shape = first.shape[1:]
    mod.bind(for_training=False, data_shapes=[("data", (1,) + tuple(data_shape))],
             label_shapes=mod._label_shapes)
    mod.set_params(arg_params, aux_params, allow_missing=True)
    # Gluon instead: net = mgmx.symbol_block(source, input_names) (SymbolBlock.imports)
    print(mod.predict(mx.nd.ones((1,) + tuple(data_shape))).asnumpy())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "linreg-mxnet"))
