"""GGUF interop: modelgate's view of each GGUF file against an independent reader.

The reader is the npm package @huggingface/gguf (pinned in tests/gguf-reader/package-lock.json,
installed with `npm ci --prefix tests/gguf-reader`). tests/gguf-reader/read-gguf.mjs prints its
view of every file: tensor names, ggml types, ne (ggml order, innermost first), offsets, and
the metadata. The reader's tensor offset is relative to the data section; it also reports the
data section start (`tensorDataOffset`), and `file_offset = tensorDataOffset + offset` is what
modelgate reports as `offset` (from the start of the file).

For every file modelgate accepts, `modelgate inspect --json` must agree with the reader on:
the tensor list in file order, each type name, shape == reversed(ne), the absolute offset,
nbytes consistent with the reader's offsets (the gap to the next tensor is nbytes plus less
than one alignment of padding), and every metadata key and value (arrays over 1024 elements
and strings that modelgate summarises are compared by count/type).

The reader is lenient where modelgate is strict: it "reads" past the end of a file (zero
filled), so it parses the truncated and the UTF-8-mangled real files. For those, the test
checks that the reader's own numbers prove the damage (a data section starting past EOF).

If node or the node module is missing the test FAILS: the cross-check is part of the proof.
"""
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mgtest  # noqa: E402

READER_DIR = os.path.join(mgtest.SOURCE_DIR, "tests", "gguf-reader")
READER = os.path.join(READER_DIR, "read-gguf.mjs")
GEN_DIR = os.path.join(mgtest.SOURCE_DIR, "tests", "data", "bad", "gguf")
REAL_DIR = os.path.join(mgtest.CORPUS, "gguf")

# corpus/real/README.md verdicts.
REAL = {
    "llama-2-tiny-random.gguf": mgtest.OK,
    "ggml-vocab-bert-bge.gguf": mgtest.OK,
    "ggml-vocab-falcon.gguf-v2.gguf": mgtest.OK,
    "ggml-vocab-llama.gguf-v1.gguf": mgtest.FORMAT,
    "bad-truncated-6-bytes.gguf": mgtest.FORMAT,
    "bad-utf8-mangled-ggml-vocab-bert-bge.gguf": mgtest.FORMAT,
}
REAL_COUNTS = {  # (tensors, KV pairs), from the README
    "llama-2-tiny-random.gguf": (12, 18),
    "ggml-vocab-bert-bge.gguf": (0, 20),
    "ggml-vocab-falcon.gguf-v2.gguf": (0, 17),
}


def generated_files():
    """The generated inputs with their expected exit codes (expected.tsv)."""
    out = {}
    with open(os.path.join(GEN_DIR, "expected.tsv")) as f:
        for line in f:
            name, code, _ = line.rstrip("\n").split("\t", 2)
            out[name] = int(code)
    return out


def is_intlike(x):
    if isinstance(x, bool):
        return False
    return isinstance(x, int) or (isinstance(x, str) and x.lstrip("-").isdigit())


def run_reader(paths):
    node = shutil.which("node")
    if node is None:
        raise AssertionError("node is not installed: the GGUF interop check cannot run")
    if not os.path.isdir(os.path.join(READER_DIR, "node_modules", "@huggingface", "gguf")):
        raise AssertionError("@huggingface/gguf is not installed: run `npm ci --prefix tests/gguf-reader`")
    p = subprocess.run([node, READER, *paths], capture_output=True, cwd=READER_DIR, timeout=600)
    if p.returncode != 0:
        raise AssertionError("gguf reader failed: %s" % p.stderr.decode("utf-8", "replace"))
    return json.loads(p.stdout.decode())


class GGUFInterop(mgtest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.real = {os.path.join(REAL_DIR, n): c for n, c in REAL.items()}
        cls.gen = {os.path.join(GEN_DIR, n): c for n, c in generated_files().items() if c == 0}
        cls.view = run_reader(sorted(cls.real) + sorted(cls.gen))

    def inspect(self, path):
        name = "m%d" % len(self.ws.models)
        self.ws.pin_file(name, path)
        self.ws.write_policy()
        return self.ws.inspect_json(name)

    def compare_value(self, where, mine, theirs):
        if isinstance(mine, dict) and mine.get("type") == "array":
            self.assertEqual(theirs, {"count": mine["count"]}, where)
        elif isinstance(mine, dict) and mine.get("type") == "string":
            self.assertIsInstance(theirs, str, where)
            if mine.get("utf8", True):
                self.assertEqual(len(theirs.encode()), mine["length"], where)
        elif isinstance(mine, list):
            self.assertIsInstance(theirs, list, where)
            self.assertEqual(len(mine), len(theirs), where)
            for i, (a, b) in enumerate(zip(mine, theirs)):
                self.compare_value("%s[%d]" % (where, i), a, b)
        elif isinstance(mine, bool) or isinstance(theirs, bool):
            self.assertIs(mine, theirs, where)
        elif isinstance(mine, str) and mine in ("NaN", "Infinity", "-Infinity"):
            self.assertEqual(mine, theirs, where)
        elif is_intlike(mine) and is_intlike(theirs):
            # the reader gives 64-bit integers as decimal strings, modelgate JSON integers (or
            # a decimal string above INT64_MAX)
            self.assertEqual(int(mine), int(theirs), where)
        elif isinstance(mine, float) or isinstance(theirs, float):
            self.assertEqual(float(mine), float(theirs), where)
        else:
            self.assertEqual(mine, theirs, where)

    def check_agrees(self, path, doc, view):
        where = os.path.basename(path)
        self.assertTrue(view["ok"], "%s: the reader failed: %s" % (where, view.get("error")))
        self.assertEqual(len(doc["files"]), 1)
        fi = doc["files"][0]
        self.assertEqual(fi["format"], "gguf")
        size = os.path.getsize(path)
        # tensors, in file order
        mine = doc["tensors"]
        theirs = view["tensors"]
        self.assertEqual([t["name"] for t in mine], [t["name"] for t in theirs], where)
        self.assertEqual(len(mine), int(view["tensor_count"]))
        meta = fi.get("metadata")
        self.assertIsNotNone(meta, "%s: inspect --json shows no GGUF metadata" % where)
        alignment = int(view["metadata"].get("general.alignment", 32))
        for i, (a, b) in enumerate(zip(mine, theirs)):
            w = "%s: %s" % (where, a["name"])
            self.assertEqual(a["dtype"], b["type"], w)
            self.assertEqual(a["shape"], [int(d) for d in reversed(b["ne"])], w)
            self.assertEqual(a["offset"], int(b["file_offset"]), w)
            self.assertEqual(a["offset"], int(view["tensor_data_offset"]) + int(b["offset"]), w)
            self.assertEqual(a["offset"] % alignment, 0, w)
            if i + 1 < len(mine):
                gap = int(theirs[i + 1]["file_offset"]) - a["offset"]
            else:
                gap = size - a["offset"]  # the final pad may be missing
            self.assertTrue(a["nbytes"] <= gap < a["nbytes"] + alignment,
                            "%s: nbytes %d vs gap %d" % (w, a["nbytes"], gap))
        # metadata: same keys in the same order, same values
        self.assertEqual(list(meta.keys()), view["metadata_keys"], where)
        self.assertEqual(len(meta), int(view["kv_count"]), where)
        for k, v in meta.items():
            self.compare_value("%s: %s" % (where, k), v, view["metadata"][k])

    def test_real_files(self):
        for path, code in sorted(self.real.items()):
            with self.subTest(file=os.path.basename(path)):
                r, doc = self.inspect(path)
                self.assertExit(r, code, path)
                view = self.view[path]
                name = os.path.basename(path)
                if code == mgtest.OK:
                    self.check_agrees(path, doc, view)
                    nt, nkv = REAL_COUNTS[name]
                    self.assertEqual(len(doc["tensors"]), nt)
                    self.assertEqual(len(doc["files"][0]["metadata"]), nkv)
                elif name == "ggml-vocab-llama.gguf-v1.gguf":
                    self.assertEqual(view["version"], 1)
                    self.assertIn("GGUF v1 is not supported", r.stderr)
                else:
                    # The reader only got this far by reading zeros past the end of the file.
                    self.assertTrue(view["ok"])
                    self.assertGreater(int(view["tensor_data_offset"]), os.path.getsize(path), name)

    def test_dump_bytes_at_reader_offsets(self):
        """`modelgate dump` gives exactly the file bytes at the reader's offset."""
        for path in (os.path.join(REAL_DIR, "llama-2-tiny-random.gguf"),
                     os.path.join(GEN_DIR, "good-quantized-q4_0-q8_0-q4_k.gguf")):
            r, doc = self.inspect(path)
            self.assertExit(r, mgtest.OK, path)
            model = self.ws.models[-1]["name"]
            with open(path, "rb") as f:
                raw = f.read()
            for mine, theirs in zip(doc["tensors"], self.view[path]["tensors"]):
                d = self.ws.run("dump", model, mine["name"])
                self.assertExit(d, mgtest.OK, mine["name"])
                start = int(theirs["file_offset"])
                self.assertEqual(d.stdout, raw[start:start + mine["nbytes"]], mine["name"])

    def test_generated_valid_files(self):
        self.assertGreaterEqual(len(self.gen), 10)
        quantized = set()
        for path in sorted(self.gen):
            with self.subTest(file=os.path.basename(path)):
                r, doc = self.inspect(path)
                self.assertExit(r, mgtest.OK, path)
                self.check_agrees(path, doc, self.view[path])
                quantized.update(t["dtype"] for t in doc["tensors"])
        # every ggml type of formats.md §3.3 was seen by both readers
        for t in ("Q4_0", "Q8_0", "Q4_K", "Q6_K", "IQ4_NL", "MXFP4", "TQ2_0", "Q2_0", "BF16", "F64", "I64"):
            self.assertIn(t, quantized)
        self.assertEqual(len(quantized), 35)


if __name__ == "__main__":
    mgtest.main()
