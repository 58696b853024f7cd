"""Bounded memory and time (issue 14, sections 1-2): every JSON is capped before its tree is
built, parser-made memory has a per-load budget (policy "limits"), reports do not multiply,
the sharded-index cross-check is O(n log n), and the peak memory of a load stays within the
model's size plus the parser budget plus 64 MiB."""
import io
import json
import os
import struct
import subprocess
import sys

import mgtest
from mgtest import FORMAT, LIMIT, OK

sys.path.insert(0, os.path.join(mgtest.SOURCE_DIR, "tests", "data"))
import write_mxnet  # noqa: E402

MiB = 1 << 20
BUDGET = 32 * MiB  # limits.parser_memory of the measured runs


def safetensors(tensors):
    hdr, data = {}, b""
    for name, dtype, shape, raw in tensors:
        hdr[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(hdr, separators=(",", ":")).encode()
    return struct.pack("<Q", len(h)) + h + data


def measured(*args):
    """(exit code, peak RSS in bytes, CPU seconds) of one run of the tool, measured in a fresh
    process (RUSAGE_CHILDREN keeps the largest child, so each run needs its own parent). CPU
    time, not wall time: this machine is shared, and a slow neighbour must not fail a test."""
    code = ("import resource, subprocess, sys\n"
            "p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
            "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
            "print(p.returncode, u.ru_maxrss, u.ru_utime + u.ru_stime)\n")
    out = subprocess.run([sys.executable, "-c", code, mgtest.BIN, *args], capture_output=True,
                         timeout=900, check=True).stdout.split()
    return int(out[0]), int(out[1]) * 1024, float(out[2])


def tree_size(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(r, n)) for r, _, ns in os.walk(path) for n in ns)


class Bounds(mgtest.TestCase):
    def setUp(self):
        super().setUp()
        self.ws.extra = {"limits": {"parser_memory": BUDGET}}

    def model_dir(self, name, files):
        d = self.ws.path(name)
        os.makedirs(d, exist_ok=True)
        for rel, data in files.items():
            with open(os.path.join(d, rel), "wb") as f:
                f.write(data)
        self.ws.pin_dir(name, d)
        return d

    def model_file(self, name, data):
        p = self.ws.write(name + ".bin", data)
        self.ws.pin_file(name, p, with_size=True)
        return p

    def check_peak(self, name, path, want):
        """Exit code `want`, and (outside the sanitizer build, whose shadow memory and
        quarantine inflate RSS) a peak within model size + parser budget + 64 MiB."""
        code, rss, cpu = measured("inspect", "-p", self.ws.policy_path, name)
        self.assertEqual(code, want, name)
        bound = tree_size(path) + BUDGET + 64 * MiB
        if not mgtest.SANITIZED:
            self.assertLessEqual(rss, bound, "%s: peak RSS %.1f MiB over %.1f MiB" % (name, rss / MiB, bound / MiB))
        return rss, cpu

    # ---- 1. JSON capped before the tree ----------------------------------------------

    def test_json_bombs_refused_before_the_tree(self):
        # 100 MB of empty objects took 7.5 GiB: now the pre-scan stops at 8,000,000 values.
        n = 8_100_000
        hdr = b'{"a":[' + b"{}," * (n - 1) + b"{}]}"
        st = self.model_file("stbomb", struct.pack("<Q", len(hdr)) + hdr)
        # An index under the values cap (containers + commas: 2 per "[],") whose tree would
        # still cost ~500 MB: the budget refuses it before the tree.
        idx = b'{"weight_map":{"a":[' + b"[]," * 1_900_000 + b"[]]}}"
        d = self.model_dir("idxbomb", {"model.safetensors.index.json": idx})
        # A symbol file nested 100,000 deep.
        sym = b'{"nodes":' + b"[" * 100000 + b"]" * 100000 + b',"arg_nodes":[],"heads":[]}'
        s = self.model_dir("symbomb", {"m-symbol.json": sym})
        self.ws.write_policy()
        for name, path, frag in (("stbomb", st, "more than 8000000 JSON values"),
                                 ("idxbomb", d, "limits.parser_memory"),
                                 ("symbomb", s, "deeper than 32")):
            with self.subTest(model=name):
                r = self.ws.run("inspect", name)
                self.assertExit(r, LIMIT, name)
                self.assertIn(frag, r.stderr)
                _, cpu = self.check_peak(name, path, LIMIT)
                self.assertLess(cpu, 30 if mgtest.SANITIZED else 5, name)

    # ---- 1. reports do not multiply ------------------------------------------------------

    def test_checkpoint_reports_do_not_multiply(self):
        """61 symbol files whose prefixes all prefix one .params of 3000 parameters: only the
        symbol file of that checkpoint (same PREFIX, epoch digits) reports on it."""
        k, n = 60, 3000
        prefix = "x-" + "a-" * k
        files = {"x-" + "a-" * i + "symbol.json": write_mxnet.symbol_json() for i in range(k + 1)}
        p = self.ws.path("p.params")
        write_mxnet.write_params(p, [write_mxnet.Rec("v2", [1], 0, seed=i) for i in range(n)],
                                 ["arg:p%d" % i for i in range(n)])
        with open(p, "rb") as f:
            files[prefix + "0000.params"] = f.read()
        os.unlink(p)
        d = self.model_dir("ckpts", files)
        self.ws.write_policy()
        r, doc = self.ws.inspect_json("ckpts")
        self.assertExit(r, OK)
        reports = [f["metadata"]["checkpoint"] for f in doc["files"]
                   if f["format"] == "mxnet-symbol" and "checkpoint" in f.get("metadata", {})]
        self.assertEqual(len(reports), 1)
        self.assertEqual(sum(len(rep["unused_parameters"]) for rep in reports), n)
        self.assertLess(len(r.stdout), 4 * MiB)
        self.check_peak("ckpts", d, OK)

    # ---- 1. the per-load parser budget ---------------------------------------------------

    def test_parser_budget_is_per_load(self):
        import numpy as np
        rng = np.random.default_rng(14)

        def npz(name):
            buf = io.BytesIO()
            np.savez_compressed(buf, **{name: rng.integers(0, 2**31, size=(3 * MiB) // 4, dtype=np.int32)})
            return buf.getvalue()

        one = self.model_dir("one", {"a.npz": npz("a")})
        two = self.model_dir("two", {"a.npz": npz("a"), "b.npz": npz("b")})
        self.ws.extra = {"limits": {"parser_memory": 5 * MiB}}
        self.ws.write_policy()
        self.assertExit(self.ws.run("inspect", "one"), OK)  # 3 MiB inflated: within 5 MiB
        r = self.ws.run("inspect", "two")                     # 6 MiB in one load: over
        self.assertExit(r, LIMIT)
        self.assertIn("limits.parser_memory", r.stderr)
        self.assertIn("b.npz", r.stderr)
        self.ws.extra = {"limits": {"parser_memory": 8 * MiB}}
        self.ws.write_policy()
        self.assertExit(self.ws.run("inspect", "two"), OK)
        self.ws.extra = {}  # the default (1 GiB) holds both
        self.ws.write_policy()
        self.assertExit(self.ws.run("inspect", "two"), OK)
        # A tensor table is parser memory too: 20,000 tensors under a 1 MiB budget.
        t = safetensors([("t%d" % i, "U8", [1], b"x") for i in range(20000)])
        self.model_file("table", t)
        self.ws.extra = {"limits": {"parser_memory": MiB}}
        self.ws.write_policy()
        r = self.ws.run("inspect", "table")
        self.assertExit(r, LIMIT)
        self.assertIn("limits.parser_memory", r.stderr)
        self.ws.extra = {"limits": {"parser_memory": BUDGET}}
        self.ws.write_policy()
        self.check_peak("two", two, OK)
        self.check_peak("one", one, OK)

    # ---- 1. peak memory of a load --------------------------------------------------------

    def test_peak_memory_of_valid_loads(self):
        rng_bytes = os.urandom(8 * MiB)
        st = self.model_file("plain", safetensors([("w", "U8", [8 * MiB], rng_bytes)]))
        many = self.model_file("many", safetensors([("t%d" % i, "F32", [4], b"\0" * 16) for i in range(10000)]))
        self.ws.write_policy()
        for name, path in (("plain", st), ("many", many)):
            with self.subTest(model=name):
                self.check_peak(name, path, OK)

    # ---- 2. time linear ------------------------------------------------------------------

    def test_sharded_index_of_200k_entries(self):
        n = 200_000
        s1, s2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
        wm = {"model.layers.%d.weight" % i: (s1 if i % 2 else s2) for i in range(n)}
        files = {
            "model.safetensors.index.json": json.dumps({"metadata": {}, "weight_map": wm}).encode(),
            s1: safetensors([("model.layers.%d.weight" % i, "U8", [1], b"x") for i in range(1, n, 2)]),
            s2: safetensors([("model.layers.%d.weight" % i, "U8", [1], b"y") for i in range(0, n, 2)]),
        }
        d = self.model_dir("big", files)
        self.ws.extra = {}
        self.ws.write_policy()
        r = mgtest.run_bin("inspect", "-p", self.ws.policy_path, "big")
        self.assertExit(r, OK)
        self.assertEqual(r.stdout.count(b"model.layers."), n)
        code, _, cpu = measured("inspect", "-p", self.ws.policy_path, "big")
        self.assertEqual(code, OK)
        self.assertLess(cpu, 15.0, "200k-entry index took %.1f CPU s" % cpu)
        # One tensor in the wrong shard is still found, as fast.
        wm["model.layers.7.weight"] = s2
        with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {}, "weight_map": wm}, f)
        self.ws.models = []
        self.ws.pin_dir("big", d)
        self.ws.write_policy()
        r = mgtest.run_bin("inspect", "-p", self.ws.policy_path, "big")
        self.assertExit(r, FORMAT)
        self.assertIn("model.layers.7.weight", r.stderr)
        code, _, cpu = measured("inspect", "-p", self.ws.policy_path, "big")
        self.assertEqual(code, FORMAT)
        self.assertLess(cpu, 15.0)

    def test_policy_of_35k_models(self):
        """Duplicate names and sources are found through hash sets: a policy near its 4 MiB cap
        (35,000 models) took 38 CPU seconds with pairwise comparisons."""
        models = [{"name": "m%d" % i, "source": "/opt/m/%d" % i, "sha256": "ab" * 32} for i in range(35000)]
        doc = {"modelgate_policy": 1, "models": models}

        def write():
            with open(self.ws.policy_path, "w") as f:
                json.dump(doc, f, separators=(",", ":"))
            os.chmod(self.ws.policy_path, 0o600)
        write()
        code, _, cpu = measured("policy", "check", "-p", self.ws.policy_path)
        self.assertEqual(code, OK)
        self.assertLess(cpu, 10.0, "policy check of 35k models took %.1f CPU s" % cpu)
        models.append({"name": "m7", "source": "/opt/m/7/", "sha256": "ab" * 32})
        write()
        r = self.ws.run("policy check")
        self.assertExit(r, mgtest.POLICY)
        out = r.stdout.decode()
        self.assertIn("$.models[35000].name: duplicate model name 'm7'", out)
        self.assertIn("$.models[35000].source: duplicate source (also $.models[7])", out)


if __name__ == "__main__":
    mgtest.main()
