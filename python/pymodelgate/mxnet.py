"""pymodelgate.mxnet: verified replacements for Apache MXNet's loaders (MXNet is imported
lazily).

    import pymodelgate.mxnet as mgmx
    params = mgmx.load("mnist")                                # instead of mx.nd.load(path)
    sym, arg_params, aux_params = mgmx.load_checkpoint("mnist", epoch=0)
    net = mgmx.symbol_block("mnist", ["data"])                 # gluon.SymbolBlock.imports

`source` is a model name from the policy or its exact source (a `.params` file, or a folder
holding `PREFIX-symbol.json` and `PREFIX-NNNN.params`); `policy` a pymodelgate.Policy, a
policy path, or None for the default lookup. The graph is built from the verified
`-symbol.json` bytes (mx.sym.load_json), never from the file on disk. Each array goes to
MXNet with mx.nd.array(...), a copy into MXNet's memory (MXNet may write to its arrays, and
the verified memory is read-only). BF16 stays uint16.
"""
import re

import numpy as np

import pymodelgate

__all__ = ["load", "load_checkpoint", "symbol_block"]

_EPOCH = re.compile(r"^(.*)-(\d{4})\.params$")


def _nd(mx, a):
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    a = np.ascontiguousarray(a)
    return mx.nd.array(a, dtype=a.dtype)


def _params_file(model, epoch):
    params = [f.path for f in model.files if f.format == "mxnet-params"]
    if epoch is not None:
        params = [p for p in params if p.endswith("-%04d.params" % epoch)]
    if len(params) != 1:
        raise pymodelgate.UsageError("model has %d matching .params files %r: pass epoch=" %
                                     (len(params), params), model=model.name)
    return params[0]


def _convert(mx, model, path):
    """The arrays of one .params file: a dict by stored name, or a list when the file stores
    no names (the tensors are then named "0", "1", ... by modelgate), as mx.nd.load does."""
    arrays = model.file_tensors(path)
    names = list(arrays)
    if names and names == [str(i) for i in range(len(names))]:
        return [_nd(mx, arrays[n]) for n in names]
    return {n: _nd(mx, a) for n, a in arrays.items()}


def load(source, policy=None, epoch=None, progress=None):
    """Like `mx.nd.load(path)`: the arrays of the model's .params file (the one file, or the
    one of `epoch`), a dict with the stored `arg:`/`aux:` keys."""
    import mxnet as mx

    with pymodelgate.load(source, policy, progress=progress) as model:
        return _convert(mx, model, _params_file(model, epoch))


def load_checkpoint(source, epoch=None, policy=None, progress=None):
    """Like `mx.model.load_checkpoint(prefix, epoch)`: (symbol, arg_params, aux_params),
    the symbol from the verified PREFIX-symbol.json of the chosen .params file."""
    import mxnet as mx

    with pymodelgate.load(source, policy, progress=progress) as model:
        path = _params_file(model, epoch)
        m = _EPOCH.match(path)
        symbol_path = (m.group(1) if m else path[:-len(".params")]) + "-symbol.json"
        if symbol_path not in [f.path for f in model.files]:
            raise pymodelgate.UsageError("model has no %s next to %s" % (symbol_path, path),
                                         model=model.name)
        symbol = mx.sym.load_json(bytes(model.asset(symbol_path)).decode("utf-8"))
        saved = _convert(mx, model, path)
        if isinstance(saved, list):
            saved = {}
        arg_params, aux_params = {}, {}
        for key, value in saved.items():
            kind, _, name = key.partition(":")
            if kind == "arg":
                arg_params[name] = value
            elif kind == "aux":
                aux_params[name] = value
        return symbol, arg_params, aux_params


def symbol_block(source, input_names, epoch=None, policy=None, ctx=None, progress=None):
    """Like `gluon.SymbolBlock.imports(symbol_file, input_names, param_file, ctx)`: a
    SymbolBlock whose parameters are set from the verified checkpoint. Every parameter of the
    block must be in the file and every saved one used (ValueError otherwise)."""
    import mxnet as mx

    symbol, arg_params, aux_params = load_checkpoint(source, epoch, policy, progress)
    if isinstance(input_names, str):
        input_names = [input_names]
    inputs = [mx.sym.var(n) for n in input_names]
    net = mx.gluon.SymbolBlock(symbol, inputs)
    params = net.collect_params()
    saved = dict(arg_params)
    saved.update(aux_params)
    missing = sorted(set(params.keys()) - set(saved))
    extra = sorted(set(saved) - set(params.keys()))
    if missing or extra:
        raise ValueError("checkpoint does not match the graph: missing %r, unused %r" %
                         (missing, extra))
    for name, value in saved.items():
        params[name]._load_init(value, ctx if ctx is not None else mx.cpu())
    return net
