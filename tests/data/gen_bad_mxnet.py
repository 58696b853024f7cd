#!/usr/bin/env python3
"""Bad (and borderline) MXNet inputs from reference/formats.md §5.4/§5.5, deterministic.

Writes tests/data/bad/mxnet/*.params and tests/data/bad/symbol/*-symbol.json, each folder
with expected.tsv: `<file>\t<exit code>\t<what>` (0 = accepted variant, 6 = malformed,
8 = our own cap). Run: /usr/bin/python3 tests/data/gen_bad_mxnet.py
"""
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from write_mxnet import Rec, V1, V2, V3  # noqa: E402

OK, FORMAT, LIMIT = 0, 6, 8


def fresh(dirpath):
    os.makedirs(dirpath, exist_ok=True)
    for n in os.listdir(dirpath):
        os.unlink(os.path.join(dirpath, n))


def lst(records, names, n_arrays=None, n_names=None, reserved=0, trailing=b""):
    """Raw list bytes; records are Rec objects or raw bytes."""
    out = bytearray(struct.pack("<QQQ", 0x112, reserved,
                                len(records) if n_arrays is None else n_arrays))
    for r in records:
        out += r if isinstance(r, (bytes, bytearray)) else r.head() + (b"" if r.none else r.payload())
    out += struct.pack("<Q", len(names) if n_names is None else n_names)
    for n in names:
        b = n.encode("utf-8") if isinstance(n, str) else n
        out += struct.pack("<Q", len(b)) + b
    return bytes(out + trailing)


def v2_raw(stype=0, ndim=1, dims=(4,), dev=(1, 0), flag=0, data=None):
    out = struct.pack("<Ii", V2, stype) + struct.pack("<i", ndim)
    out += b"".join(struct.pack("<q", d) for d in dims)
    out += struct.pack("<ii", *dev) + struct.pack("<i", flag)
    return out + (data if data is not None else b"\x00" * 16)


def params_cases():
    good = Rec("v2", [4], 0, seed=1)
    c = []
    c.append(("bad-list-magic.params", FORMAT, "list magic 0x113 instead of 0x112",
              struct.pack("<QQQ", 0x113, 0, 0) + struct.pack("<Q", 0)))
    c.append(("empty.params", FORMAT, "0-byte file", b""))
    c.append(("short-23-bytes.params", FORMAT, "file shorter than the 24-byte header",
              struct.pack("<QQ", 0x112, 0) + b"\x00" * 7))
    c.append(("n-arrays-2p63.params", FORMAT, "n_arrays = 2^63",
              lst([good], ["arg:a"], n_arrays=1 << 63)))
    c.append(("n-arrays-u64-max.params", FORMAT, "n_arrays = 2^64-1",
              lst([good], ["arg:a"], n_arrays=(1 << 64) - 1)))
    body = lst([good], ["arg:a"])
    c.append(("n-arrays-over-remaining.params", FORMAT, "n_arrays > remaining bytes / 4",
              lst([good], ["arg:a"], n_arrays=(len(body) - 24) // 4 + 1)))
    c.append(("legacy-ndim-deadbeef.params", FORMAT, "record magic 0xDEADBEEF taken as legacy ndim",
              lst([struct.pack("<I", 0xDEADBEEF) + b"\x00" * 64], ["arg:a"])))
    c.append(("legacy-ndim-9.params", FORMAT, "legacy ndim 9 (cap 8)",
              lst([struct.pack("<I", 9) + struct.pack("<9I", *([1] * 9)) +
                   struct.pack("<iii", 1, 0, 0) + b"\x00" * 4], ["arg:a"])))
    for st, what in ((1, "row_sparse"), (2, "csr"), (3, "unknown 3"), (-2, "unknown -2"),
                     (-1, "undefined -1")):
        c.append(("stype-%s.params" % str(st).replace("-", "minus"), FORMAT,
                  "storage type %d (%s)" % (st, what), lst([v2_raw(stype=st)], ["arg:a"])))
    c.append(("v3-stype-1.params", FORMAT, "V3 record with sparse storage",
              lst([struct.pack("<Ii", V3, 1) + v2_raw()[8:]], ["arg:a"])))
    for nd in (-2, 9, 33, 1 << 30):
        c.append(("v2-ndim-%s.params" % str(nd).replace("-", "minus"), FORMAT, "V2 ndim %d" % nd,
                  lst([v2_raw(ndim=nd, dims=())], ["arg:a"])))
    c.append(("v1-ndim-minus1.params", FORMAT, "V1 ndim -1 (no np semantics before V3)",
              lst([struct.pack("<Ii", V1, -1)], ["arg:a"])))
    c.append(("v2-dim-minus1.params", FORMAT, "V2 dim -1",
              lst([v2_raw(ndim=2, dims=(4, -1))], ["arg:a"])))
    c.append(("v2-dim-minus5.params", FORMAT, "V2 dim -5",
              lst([v2_raw(ndim=1, dims=(-5,))], ["arg:a"])))
    c.append(("v3-dim-minus2.params", FORMAT, "V3 dim -2",
              lst([struct.pack("<Iii", V3, 0, 1) + struct.pack("<q", -2) +
                   struct.pack("<iii", 1, 0, 0)], ["arg:a"])))
    c.append(("v2-product-overflows-i64.params", FORMAT, "dims 2^62 x 4: product overflows int64 bytes",
              lst([v2_raw(ndim=2, dims=(1 << 62, 4))], ["arg:a"])))
    c.append(("v2-product-wraps-to-0.params", FORMAT, "dims 2^32 x 2^32: product wraps to 0 in u64",
              lst([v2_raw(ndim=2, dims=(1 << 32, 1 << 32))], ["arg:a"])))
    c.append(("v2-huge-shape.params", FORMAT, "shape [2^40] F32 with 16 bytes of data",
              lst([v2_raw(ndim=1, dims=(1 << 40,))], ["arg:a"])))
    c.append(("data-past-eof.params", FORMAT, "shape [1000] F32, data cut short",
              lst([v2_raw(ndim=1, dims=(1000,))], ["arg:a"])))
    c.append(("truncated-in-shape.params", FORMAT, "file ends inside the dims",
              struct.pack("<QQQ", 0x112, 0, 1) + struct.pack("<Iii", V2, 0, 3) + b"\x01" * 10))
    c.append(("truncated-in-context.params", FORMAT, "file ends inside the context",
              struct.pack("<QQQ", 0x112, 0, 1) + struct.pack("<Iii", V2, 0, 1) +
              struct.pack("<q", 1) + b"\x01\x00"))
    c.append(("no-name-count.params", FORMAT, "file ends before the name count",
              lst([good], [])[:-8]))
    for fl in (13, -1, 255):
        c.append(("type-flag-%s.params" % str(fl).replace("-", "minus"), FORMAT,
                  "type_flag %d" % fl, lst([v2_raw(flag=fl)], ["arg:a"])))
    c.append(("type-flag-12-bf16.params", OK, "type_flag 12 (bfloat16): accepted as BF16",
              lst([v2_raw(flag=12, dims=(8,))], ["arg:a"])))
    c.append(("dev-type-2-gpu.params", OK, "saved from a gpu context: context ignored",
              lst([v2_raw(dev=(2, 7))], ["arg:a"])))
    c.append(("dev-type-99.params", FORMAT, "device type 99",
              lst([v2_raw(dev=(99, 0))], ["arg:a"])))
    c.append(("dev-id-negative.params", OK, "dev_id -1: ignored",
              lst([v2_raw(dev=(1, -1))], ["arg:a"])))
    c.append(("reserved-nonzero.params", FORMAT, "reserved header word not 0 (MXNet writes 0)",
              lst([good], ["arg:a"], reserved=0xFFFFFFFFFFFFFFFF)))
    two = [Rec("v2", [4], 0, seed=1), Rec("v2", [2], 0, seed=2)]
    c.append(("n-names-1-of-2.params", FORMAT, "n_names 1 for 2 arrays", lst(two, ["arg:a"])))
    c.append(("n-names-3-of-2.params", FORMAT, "n_names 3 for 2 arrays (ncnn overflow)",
              lst(two, ["arg:a", "arg:b", "arg:c"])))
    c.append(("n-names-huge.params", FORMAT, "n_names = 2^63",
              lst(two, ["arg:a", "arg:b"], n_names=1 << 63)))
    c.append(("name-len-past-eof.params", FORMAT, "name length past EOF",
              lst(two, ["arg:a"], n_names=2) + struct.pack("<Q", 1 << 40) + b"abc"))
    c.append(("name-len-u64-max.params", FORMAT, "name length 2^64-1",
              lst(two, ["arg:a"], n_names=2) + struct.pack("<Q", (1 << 64) - 1)))
    c.append(("name-empty.params", FORMAT, "a name of 0 bytes", lst(two, ["arg:a", ""])))
    c.append(("name-nul.params", FORMAT, "a name with a NUL byte", lst(two, ["arg:a", b"arg:b\x00x"])))
    c.append(("name-bad-utf8.params", FORMAT, "a name that is not UTF-8",
              lst(two, ["arg:a", b"arg:\xff\xfe"])))
    c.append(("name-overlong-utf8.params", FORMAT, "a name with an overlong UTF-8 '/'",
              lst(two, ["arg:a", b"arg:\xc0\xaf"])))
    c.append(("names-duplicate.params", FORMAT, "two arrays named arg:a", lst(two, ["arg:a", "arg:a"])))
    c.append(("names-duplicate-none.params", FORMAT, "a none record shares a name with a tensor",
              lst([Rec("v2", [4], 0, seed=1), Rec("v2", [], none=True)], ["arg:a", "arg:a"])))
    c.append(("names-gluon-no-prefix.params", OK, "names without arg:/aux: (Gluon save_parameters)",
              lst(two, ["dense0.weight", "dense0.bias"])))
    c.append(("names-other-prefix.params", OK, "names with another prefix: kept as written",
              lst(two, ["foo:a", "state:b"])))
    c.append(("names-zero.params", OK, "no names: tensors named 0, 1", lst(two, [])))
    c.append(("v3-none-ndim-minus1.params", OK, "V3 none (ndim -1) followed by the next record",
              lst([struct.pack("<Iii", V3, 0, -1), Rec("v3", [2], 0, seed=3)], ["arg:none", "arg:b"])))
    c.append(("v3-none-dim-minus1.params", OK, "V3 none (a dim -1) followed by the next record",
              lst([struct.pack("<Iii", V3, 0, 2) + struct.pack("<qq", 3, -1),
                   Rec("v3", [2], 0, seed=3)], ["arg:none", "arg:b"])))
    c.append(("v2-none-ndim-minus1.params", OK, "V2 none written with ndim -1 (np-aware 1.5+)",
              lst([struct.pack("<Iii", V2, 0, -1), Rec("v2", [2], 0, seed=3)], ["arg:none", "arg:b"])))
    c.append(("v3-mixed-with-v2.params", FORMAT, "V3 (np-shape) and V2 records in one file",
              lst([Rec("v3", [2], 0, seed=1), Rec("v2", [2], 0, seed=2)], ["arg:a", "arg:b"])))
    c.append(("trailing-bytes.params", FORMAT, "bytes after the names (polyglot)",
              lst(two, ["arg:a", "arg:b"], trailing=b"PK\x03\x04")))
    c.append(("trailing-bytes-unnamed.params", FORMAT, "bytes after an empty name list",
              lst(two, [], trailing=b"\x00")))
    c.append(("zero-arrays.params", OK, "an empty list", lst([], [])))
    return c


def base_graph():
    nodes = [
        {"op": "null", "name": "data", "inputs": []},
        {"op": "null", "name": "fc1_weight", "attrs": {"num_hidden": "4"}, "inputs": []},
        {"op": "null", "name": "fc1_bias", "inputs": []},
        {"op": "FullyConnected", "name": "fc1", "attrs": {"num_hidden": "4"},
         "inputs": [[0, 0, 0], [1, 0, 0], [2, 0, 0]]},
        {"op": "Activation", "name": "relu1", "attrs": {"act_type": "relu"},
         "inputs": [[3, 0, 0]]},
        {"op": "null", "name": "softmax_label", "inputs": []},
        {"op": "SoftmaxOutput", "name": "softmax", "inputs": [[4, 0, 0], [5, 0, 0]]},
    ]
    return {"nodes": nodes, "arg_nodes": [0, 1, 2, 5], "node_row_ptr": list(range(8)),
            "heads": [[6, 0, 0]], "attrs": {"mxnet_version": ["int", 10400]}}


def mutate(fn):
    g = base_graph()
    fn(g)
    return json.dumps(g, indent=1).encode()


def symbol_cases():
    c = []

    def add(name, code, what, data):
        c.append((name + "-symbol.json", code, what, data))

    add("base", OK, "the valid base graph the mutations start from", mutate(lambda g: None))
    add("invalid-json", FORMAT, "truncated JSON", mutate(lambda g: None)[:-20])
    add("deep-nesting", LIMIT, "100000 nested arrays (over the depth cap)",
        b'{"nodes": ' + b"[" * 100000 + b"]" * 100000 + b', "arg_nodes": [], "heads": []}')
    add("trailing-garbage", FORMAT, "text after the JSON object", mutate(lambda g: None) + b" x")
    add("nul-byte", FORMAT, "a NUL byte in the JSON", mutate(lambda g: None).replace(b'"fc1"', b'"f\x00c"'))
    add("bad-utf8", FORMAT, "invalid UTF-8 in a string", mutate(lambda g: None).replace(b'"fc1"', b'"f\xffc"'))
    add("duplicate-key", FORMAT, "a duplicated top-level key",
        mutate(lambda g: None)[:-2] + b', "heads": [[6, 0, 0]]}')
    add("top-level-array", FORMAT, "the top level is an array", b'[{"nodes": [], "arg_nodes": []}]')
    add("unknown-top-key", FORMAT, "an unknown top-level key", mutate(lambda g: g.update(extra=1)))
    for k in ("nodes", "arg_nodes", "heads"):
        add("no-" + k.replace("_", "-"), FORMAT, '"%s" missing' % k, mutate(lambda g, k=k: g.pop(k)))
    add("nodes-empty", FORMAT, "no nodes", mutate(lambda g: g.update(nodes=[], arg_nodes=[], heads=[],
                                                                     node_row_ptr=[0])))
    add("nodes-not-array", FORMAT, '"nodes" is an object', mutate(lambda g: g.update(nodes={})))
    add("node-not-object", FORMAT, "a node that is a string", mutate(lambda g: g["nodes"].__setitem__(4, "x")))
    add("node-no-name", FORMAT, "a node without name", mutate(lambda g: g["nodes"][4].pop("name")))
    add("node-no-op", FORMAT, "a node without op", mutate(lambda g: g["nodes"][4].pop("op")))
    add("node-no-inputs", FORMAT, "a node without inputs", mutate(lambda g: g["nodes"][4].pop("inputs")))
    add("node-name-number", FORMAT, "a node name that is a number", mutate(lambda g: g["nodes"][4].update(name=3)))
    add("input-id-out-of-range", FORMAT, "input node_id >= n_nodes",
        mutate(lambda g: g["nodes"][4].update(inputs=[[99, 0, 0]])))
    add("input-self-reference", FORMAT, "a node that is its own input",
        mutate(lambda g: g["nodes"][4].update(inputs=[[4, 0, 0]])))
    add("input-forward-reference", FORMAT, "an input that is a later node (cycle)",
        mutate(lambda g: g["nodes"][4].update(inputs=[[6, 0, 0]])))
    add("input-negative-id", FORMAT, "input node_id -1",
        mutate(lambda g: g["nodes"][4].update(inputs=[[-1, 0, 0]])))
    add("input-huge-id", FORMAT, "input node_id 2^63-1",
        mutate(lambda g: g["nodes"][4].update(inputs=[[(1 << 63) - 1, 0, 0]])))
    add("input-output-index-too-large", FORMAT, "output_index >= the node's outputs (node_row_ptr)",
        mutate(lambda g: g["nodes"][4].update(inputs=[[3, 1, 0]])))
    add("input-output-index-variable", FORMAT, "output_index 1 of a variable (no node_row_ptr)",
        mutate(lambda g: (g.pop("node_row_ptr"), g["nodes"][3]["inputs"].__setitem__(1, [1, 1, 0]))))
    add("input-output-index-negative", FORMAT, "output_index -1",
        mutate(lambda g: g["nodes"][4].update(inputs=[[3, -1, 0]])))
    add("input-version-negative", FORMAT, "input version -1",
        mutate(lambda g: g["nodes"][4].update(inputs=[[3, 0, -1]])))
    add("input-one-element", FORMAT, "input [3]", mutate(lambda g: g["nodes"][4].update(inputs=[[3]])))
    add("input-four-elements", FORMAT, "input [3,0,0,0]",
        mutate(lambda g: g["nodes"][4].update(inputs=[[3, 0, 0, 0]])))
    add("input-float-id", FORMAT, "input [3.0,0,0]",
        mutate(lambda g: g["nodes"][4].update(inputs=[[3.0, 0, 0]])))
    add("input-two-elements", OK, "2-element inputs [id, idx] (v0.8 style)",
        mutate(lambda g: [n.update(inputs=[e[:2] for e in n["inputs"]]) for n in g["nodes"]]))
    add("variable-with-inputs", FORMAT, "a null-op node with inputs",
        mutate(lambda g: g["nodes"][5].update(inputs=[[0, 0, 0]])))
    add("variables-same-name", FORMAT, "two variables named data",
        mutate(lambda g: g["nodes"][5].update(name="data")))
    add("control-deps-forward", FORMAT, "control_deps naming a later node",
        mutate(lambda g: g["nodes"][4].update(control_deps=[5])))
    add("control-deps-backward", OK, "control_deps naming an earlier node",
        mutate(lambda g: g["nodes"][4].update(control_deps=[3])))
    add("backward-source-out-of-range", FORMAT, "backward_source_id 99",
        mutate(lambda g: g["nodes"][4].update(backward_source_id=99)))
    add("head-id-out-of-range", FORMAT, "head node_id >= n_nodes", mutate(lambda g: g.update(heads=[[7, 0, 0]])))
    add("head-negative-id", FORMAT, "head node_id -1", mutate(lambda g: g.update(heads=[[-1, 0, 0]])))
    add("head-output-index", FORMAT, "head output_index beyond node_row_ptr",
        mutate(lambda g: g.update(heads=[[6, 5, 0]])))
    add("arg-node-not-variable", FORMAT, "arg_nodes entry pointing at an op node",
        mutate(lambda g: g["arg_nodes"].append(3)))
    add("arg-node-out-of-range", FORMAT, "arg_nodes entry >= n_nodes",
        mutate(lambda g: g["arg_nodes"].append(70)))
    add("arg-node-negative", FORMAT, "arg_nodes entry -1", mutate(lambda g: g["arg_nodes"].append(-1)))
    add("arg-nodes-duplicate", FORMAT, "arg_nodes lists a node twice", mutate(lambda g: g["arg_nodes"].append(0)))
    add("row-ptr-short", FORMAT, "node_row_ptr of n_nodes entries", mutate(lambda g: g["node_row_ptr"].pop()))
    add("row-ptr-decreasing", FORMAT, "node_row_ptr decreasing",
        mutate(lambda g: g.update(node_row_ptr=[0, 1, 2, 3, 2, 5, 6, 7])))
    add("row-ptr-not-zero", FORMAT, "node_row_ptr starting at 1",
        mutate(lambda g: g.update(node_row_ptr=list(range(1, 9)))))
    add("unknown-op", OK, "an op name MXNet does not have (ops are data, never run)",
        mutate(lambda g: g["nodes"][4].update(op="MyCustomOp_v2")))
    add("op-regex-1mb", FORMAT, "1 MB op name of regex meta-characters (CVE-2022-24294)",
        mutate(lambda g: g["nodes"][4].update(op="(a+)+$" * ((1 << 20) // 6) + "!")))
    add("op-regex-short", FORMAT, "op name with regex meta-characters",
        mutate(lambda g: g["nodes"][4].update(op="(a|aa)*b")))
    add("op-257-chars", FORMAT, "op name of 257 characters (cap 256)",
        mutate(lambda g: g["nodes"][4].update(op="A" * 257)))
    add("op-empty", FORMAT, "empty op name", mutate(lambda g: g["nodes"][4].update(op="")))
    add("op-number", FORMAT, "op that is a number", mutate(lambda g: g["nodes"][4].update(op=7)))
    add("attr-value-number", FORMAT, "attrs value 4 (not a string)",
        mutate(lambda g: g["nodes"][3]["attrs"].update(num_hidden=4)))
    add("attr-value-null", FORMAT, "attr value null",
        mutate(lambda g: g["nodes"][3].update(attr={"x": None})))
    add("param-value-list", FORMAT, "param value a list",
        mutate(lambda g: g["nodes"][3].update(param={"kernel": [3, 3]})))
    add("attrs-not-object", FORMAT, "attrs is a string", mutate(lambda g: g["nodes"][3].update(attrs="x")))
    add("param-attr-attrs", OK, "param + attr + attrs on one node (all strings)",
        mutate(lambda g: g["nodes"][3].update(param={"a": "1"}, attr={"b": "2"})))
    add("node-subgraphs-key", OK, "an extra node key (subgraphs): ignored",
        mutate(lambda g: g["nodes"][4].update(subgraphs=[])))
    add("mxnet-version-missing", OK, "no attrs: version 0.8.0", mutate(lambda g: g.pop("attrs")))
    add("mxnet-version-str", FORMAT, 'mxnet_version ["str", "x"]',
        mutate(lambda g: g["attrs"].update(mxnet_version=["str", "x"])))
    add("mxnet-version-int-string", FORMAT, 'mxnet_version ["int", "10400"]',
        mutate(lambda g: g["attrs"].update(mxnet_version=["int", "10400"])))
    add("mxnet-version-bare-int", FORMAT, "mxnet_version 10400 (not a typed pair)",
        mutate(lambda g: g["attrs"].update(mxnet_version=10400)))
    add("mxnet-version-future", FORMAT, "mxnet_version 3.0.0 (30000): no such release",
        mutate(lambda g: g["attrs"].update(mxnet_version=["int", 30000])))
    add("mxnet-version-negative", FORMAT, "mxnet_version -1",
        mutate(lambda g: g["attrs"].update(mxnet_version=["int", -1])))
    add("mxnet-version-2-0", OK, "mxnet_version 2.0.0 (20000)",
        mutate(lambda g: g["attrs"].update(mxnet_version=["int", 20000])))
    add("graph-attrs-not-object", FORMAT, "top-level attrs is a list", mutate(lambda g: g.update(attrs=[])))
    return c


def emit(dirpath, cases):
    fresh(dirpath)
    lines = []
    for name, code, what, data in cases:
        with open(os.path.join(dirpath, name), "wb") as f:
            f.write(data)
        lines.append("%s\t%d\t%s\n" % (name, code, what))
    with open(os.path.join(dirpath, "expected.tsv"), "w") as f:
        f.writelines(lines)


if __name__ == "__main__":
    emit(os.path.join(HERE, "bad", "mxnet"), params_cases())
    emit(os.path.join(HERE, "bad", "symbol"), symbol_cases())
