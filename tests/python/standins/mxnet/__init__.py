"""Stand-in for the `mxnet` package (see ../README.md): NOT MXNet. Records the calls the
adapter makes; the SymbolBlock's parameters are the graph's variables that are not inputs,
as in Gluon."""
import json
import types

import numpy as np

CALLS = []


class NDArray:
    def __init__(self, value, dtype):
        CALLS.append(("nd.array", value, dtype))
        self.np = np.array(value, dtype=dtype, copy=True)
        self.shape = self.np.shape

    def asnumpy(self):
        return self.np


class Symbol:
    def __init__(self, text):
        self.json = text
        self.graph = json.loads(text)


def load_json(text):
    CALLS.append(("sym.load_json", text))
    if not isinstance(text, str):
        raise TypeError("load_json takes a str")
    return Symbol(text)


def var(name):
    CALLS.append(("sym.var", name))
    return ("var", name)


class Parameter:
    def __init__(self, name):
        self.name = name
        self.loaded = None

    def _load_init(self, data, ctx):
        CALLS.append(("_load_init", self.name, data, ctx))
        self.loaded = (data, ctx)


class SymbolBlock:
    def __init__(self, outputs, inputs):
        CALLS.append(("SymbolBlock", outputs, inputs))
        names = {n for kind, n in inputs}
        self.params = {node["name"]: Parameter(node["name"]) for node in outputs.graph["nodes"]
                       if node["op"] == "null" and node["name"] not in names}

    def collect_params(self):
        return self.params


def cpu(device_id=0):
    return ("cpu", device_id)


nd = types.SimpleNamespace(array=NDArray)
sym = types.SimpleNamespace(load_json=load_json, var=var)
gluon = types.SimpleNamespace(SymbolBlock=SymbolBlock)
