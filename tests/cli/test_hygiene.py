#!/usr/bin/python3
"""Output and log hygiene: names that come from files never reach a terminal raw.

Tensor names, graph-variable names, file paths and GGUF strings may hold ESC/OSC/BEL, CR/LF,
C1 and bidirectional controls, or bytes that are not UTF-8. Every human-readable output and
error message shows them escaped (backslash escapes, one line per record); --json keeps the
names exact; the audit log records a non-UTF-8 file name in escaped form instead of dropping
it; a GGUF string holding a NUL keeps the file's metadata in --json.
"""
import json
import os
import shutil
import struct
import sys

import mgtest
from mgtest import FORMAT, INTEGRITY, OK, USAGE

sys.path.insert(0, os.path.join(mgtest.SOURCE_DIR, "tests", "data"))
import gen_bad_gguf as gg  # noqa: E402

BIDI = {chr(c) for c in list(range(0x202A, 0x202F)) + list(range(0x2066, 0x206A))}

# A name that would clear the line, set the window title, and forge a "verified" line.
EVIL = "w\x1b]0;pwned\x07\x1b[2K\rloaded evil (/x): 1 file verified\n  fake"
NAMES = [EVIL, "rtl\u202egnp.exe", "iso\u2066x\u2069", "c1\u0085\u009b31m", "del\x7f", "nul-free\tTab"]


def safetensors_bytes(tensors):
    hdr, off, blob = {}, 0, b""
    for name, dt, shape, data in tensors:
        hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(data)]}
        off += len(data)
        blob += data
    h = json.dumps(hdr).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + blob


class Hygiene(mgtest.TestCase):
    def assertClean(self, out, what=""):
        """`out` (bytes or str) is valid UTF-8 with no control other than the line ends."""
        text = out.decode("utf-8") if isinstance(out, bytes) else out
        for ch in text:
            c = ord(ch)
            if ch != "\n" and (c < 0x20 or c == 0x7F or 0x80 <= c <= 0x9F or ch in BIDI):
                self.fail("%s: raw control U+%04X in output:\n%r" % (what, c, text))
        return text

    def test_tensor_names_in_inspect(self):
        p = self.ws.write("evil.safetensors",
                          safetensors_bytes([(n, "U8", [1], bytes([i])) for i, n in enumerate(NAMES)]))
        self.ws.pin_file("evil", p)
        self.ws.write_policy()
        r = self.ws.run("inspect", "evil")
        self.assertExit(r, OK)
        text = self.assertClean(r.stdout, "inspect")
        # One header line, one file line, one tensor count line, one line per tensor.
        # header, "parsing: ...", "memory: ...", the file line, "N tensors:", one line per tensor
        self.assertEqual(len(text.splitlines()), 5 + len(NAMES), text)
        self.assertEqual(sum(1 for line in text.splitlines() if line.startswith("loaded ")), 1, text)
        self.assertIn("w\\x1b]0;pwned\\x07\\x1b[2K\\rloaded evil (/x): 1 file verified\\n  fake", text)
        self.assertIn("rtl\\u202egnp.exe", text)
        self.assertIn("iso\\u2066x\\u2069", text)
        self.assertIn("c1\\u0085\\u009b31m", text)
        self.assertIn("del\\x7f", text)
        self.assertIn("nul-free\\tTab", text)
        # --json keeps the exact names (JSON escapes them).
        r, doc = self.ws.inspect_json("evil")
        self.assertExit(r, OK)
        self.assertEqual(sorted(t["name"] for t in doc["tensors"]), sorted(NAMES))
        # dump of a name that is not there: the usage message is escaped too.
        r = self.ws.run("dump", "evil", "no\x1b[31mpe\nx")
        self.assertExit(r, USAGE)
        self.assertClean(r.stderr.rstrip("\n"), "dump")
        self.assertIn("no\\x1b[31mpe\\nx", r.stderr)

    def test_names_in_error_messages(self):
        # A parser error quoting a tensor name (the library already turns C0 controls into
        # '?' in messages; C1 and bidirectional controls reach the CLI).
        name = "rtl\u202e\u0085" + EVIL
        bad = safetensors_bytes([(name, "U8", [2], b"\1")])  # 1 byte for 2 elements
        p = self.ws.write("bad.safetensors", bad)
        self.ws.pin_file("bad", p)
        self.ws.write_policy()
        for args in (("inspect", "bad"), ("inspect", "--json", "bad")):
            r = self.ws.run(*args)
            self.assertExit(r, FORMAT)
            self.assertEqual(r.stderr.count("\n"), 1, r.stderr)
            self.assertClean(r.stderr.rstrip("\n"), "stderr")
            self.assertIn("rtl\\u202e\\u0085", r.stderr)
        self.assertIn("rtl\u202e\u0085", json.loads(r.stdout)["error"]["message"])

    def test_file_paths(self):
        d = self.ws.path("dir")
        self.ws.write("dir/model.safetensors", safetensors_bytes([("w", "U8", [1], b"\1")]))
        self.ws.write("dir/conf\u202eig\u2066.json", b"{}")  # the policy refuses C0 in paths
        self.ws.pin_dir("dir", d)
        self.ws.extra["audit_log"] = self.ws.path("audit.jsonl")
        self.ws.write_policy()
        r = self.ws.run("inspect", "dir")
        self.assertExit(r, OK)
        text = self.assertClean(r.stdout, "inspect")
        self.assertIn("conf\\u202eig\\u2066.json", text)
        r, doc = self.ws.inspect_json("dir")
        self.assertIn("conf\u202eig\u2066.json", [f["path"] for f in doc["files"]])
        # A file whose name is not UTF-8 is unlisted: the error shows it escaped, and the
        # audit line records it escaped instead of dropping the field.
        with open(os.path.join(d.encode(), b"x\xff\xc2\x85.bin"), "wb") as f:
            f.write(b"junk")
        r = self.ws.run("verify", "dir")
        self.assertExit(r, INTEGRITY)
        self.assertClean(r.stderr.rstrip("\n"), "stderr")
        self.assertIn("x\\xff\\u0085.bin", r.stderr)
        r = self.ws.run("verify", "--json", "dir")
        self.assertEqual(json.loads(r.stdout)["error"]["file"], "x\\xff\\u0085.bin")
        with open(self.ws.path("audit.jsonl"), "rb") as f:
            lines = [json.loads(line) for line in f.read().decode("ascii").splitlines()]
        rejected = [rec for rec in lines if rec["result"] == "rejected"]
        self.assertTrue(rejected)
        for rec in rejected:
            self.assertEqual(rec["file"], "x\\xff\\u0085.bin", rec)
            self.assertEqual(rec["escaped"], ["file"], rec)
        self.assertNotIn("escaped", [k for rec in lines if rec["result"] == "ok" for k in rec])

    def test_graph_variable_names(self):
        # An MXNet checkpoint whose graph has a variable no parameter binds: it is listed.
        mx = os.path.join(mgtest.CORPUS, "mxnet", "sagemaker-linreg-v0.11")
        d = self.ws.path("ckpt")
        os.makedirs(d)
        with open(os.path.join(mx, "model-symbol.json")) as f:
            sym = f.read()
        self.assertIn('"fc1_weight"', sym)
        sym = sym.replace('"fc1_weight"', json.dumps("fc1\x1b]8;;http://x\x07weight\r\n"))
        with open(os.path.join(d, "model-symbol.json"), "w") as f:
            f.write(sym)
        shutil.copy(os.path.join(mx, "model-0000.params"), d)
        self.ws.pin_dir("ckpt", d)
        self.ws.write_policy()
        r = self.ws.run("inspect", "ckpt")
        self.assertExit(r, OK)
        text = self.assertClean(r.stdout, "inspect")
        self.assertIn("fc1\\x1b]8;;http://x\\x07weight\\r\\n", text)

    def test_gguf_strings(self):
        # A GGUF tensor name with controls, and a metadata string holding a NUL.
        kvs = [gg.kv("general.architecture", gg.STRING, "llama"),
               gg.kv("general.name", gg.STRING, b"tiny\0model\x1b[31m")]
        data = gg.gguf(kvs, [("blk.0\x1b[2J\u202e.weight", [4], gg.F32)])
        p = self.ws.write("evil.gguf", data)
        self.ws.pin_file("g", p)
        self.ws.write_policy()
        r = self.ws.run("inspect", "g")
        self.assertExit(r, OK)
        text = self.assertClean(r.stdout, "inspect")
        self.assertIn("blk.0\\x1b[2J\\u202e.weight", text)
        r, doc = self.ws.inspect_json("g")
        self.assertExit(r, OK)
        meta = doc["files"][0].get("metadata")
        self.assertIsNotNone(meta, "metadata dropped from --json")
        self.assertEqual(json.dumps(meta).count("tiny\\u0000model\\u001b[31m"), 1, meta)
        self.assertEqual(doc["tensors"][0]["name"], "blk.0\x1b[2J\u202e.weight")

    def test_hash_file_names(self):
        p = self.ws.write("a\nb\x1b[0m.bin", b"x")
        plain = self.ws.write("plain.bin", b"x")
        r = mgtest.run_bin("hash", p, plain)
        self.assertExit(r, OK)
        lines = self.assertClean(r.stdout).splitlines()
        self.assertEqual(len(lines), 2)
        self.assertTrue(lines[0].startswith("\\"), lines[0])
        self.assertTrue(lines[0].endswith("a\\nb\\x1b[0m.bin"), lines[0])
        self.assertEqual(lines[0][1:65], lines[1][:64], lines)
        self.assertTrue(lines[1].endswith("  " + plain))


if __name__ == "__main__":
    mgtest.main()
