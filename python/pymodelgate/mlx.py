"""pymodelgate.mlx: a verified replacement for `mlx.core.load` (MLX is imported lazily).

    import pymodelgate.mlx
    weights = pymodelgate.mlx.load("my-model")               # instead of mx.load(path)
    weights, metadata = pymodelgate.mlx.load("my-model", return_metadata=True)

The model is verified and parsed by libmodelgate; each tensor then goes to MLX with
`mx.array(...)`, which copies it into MLX's own memory (as mx.load does). BF16 becomes
mx.bfloat16 (the verified bits, reinterpreted with mx.view); F8 stays uint8 (MLX has no
F8 array type); big-endian npy data is byte-swapped first. Quantized GGUF tensors are refused
(UsageError): MLX's own GGUF loader re-packs them, which this adapter does not copy.
Metadata is the safetensors `__metadata__` (read from the verified header) or the GGUF
key/values as modelgate reports them (long arrays summarised), else {}.
"""
import json
import struct

import numpy as np

import pymodelgate

__all__ = ["load"]


def _native(a):
    """A C-ordered, native-endian numpy array with the values of `a` (copies only if needed)."""
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    return np.ascontiguousarray(a)


def _metadata(model):
    meta = {}
    for f in model.files:
        if f.format == "safetensors":
            raw = bytes(model.asset(f.path)[:8])
            (n,) = struct.unpack("<Q", raw)
            header = json.loads(bytes(model.asset(f.path)[8:8 + n]))
            meta.update(header.get("__metadata__") or {})
        elif f.format == "gguf" and f.metadata:
            meta.update(f.metadata)
    return meta


def load(source, policy=None, return_metadata=False, progress=None):
    """Like `mx.load(path)`: a dict of tensor name to mx.array (for a single .npy file the
    array itself), and with return_metadata also the metadata dict. `source` is a model name from the policy or its exact source;
    `policy` a pymodelgate.Policy, a policy path, or None for the default lookup."""
    import mlx.core as mx

    with pymodelgate.load(source, policy, progress=progress) as model:
        arrays = {}
        for name in model:
            dtype = model.tensor_info(name).dtype
            a = model[name]
            if dtype not in ("BOOL", "U8", "I8", "U16", "I16", "U32", "I32", "U64", "I64",
                             "F16", "BF16", "F32", "F64", "C64", "F8_E4M3", "F8_E5M2"):
                raise pymodelgate.UsageError("tensor '%s' is quantized (%s): not supported by "
                                             "pymodelgate.mlx" % (name, dtype), model=model.name)
            arr = mx.array(_native(a))
            if dtype == "BF16":
                arr = mx.view(arr, mx.bfloat16)
            arrays[name] = arr
        result = arrays
        if len(model.files) == 1 and model.files[0].format == "npy":
            result = arrays[""]  # mx.load of a .npy file gives the array itself
        if return_metadata:
            return result, _metadata(model)
        return result
