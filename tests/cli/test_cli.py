"""The command-line contract of SPEC §5 on real files: every exit code, --json, one-line
errors, the tamper test, a concurrent writer, symlinks, the audit log (SPEC §7), hash, pin."""
import hashlib
import json
import os
import random
import resource
import shutil
import struct
import threading

import mgtest
from mgtest import INTEGRITY, IO, LIMIT, OK, POLICY, UNTRUSTED, USAGE, FORMAT

ST = os.path.join(mgtest.CORPUS, "safetensors")
EXPECTED_COUNTS = {"overall.safetensors": 9, "e.safetensors": 1, "d.safetensors": 1,
                   "jfk-codes.safetensors": 1, "voices.safetensors": 2,
                   "mlx-lora-adapters.safetensors": 16}


def read_safetensors(path):
    """Independent reader (stdlib only): name -> (dtype, shape, bytes)."""
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    hdr = json.loads(data[8:8 + n])
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        out[k] = (v["dtype"], v["shape"], data[8 + n + b:8 + n + e], 8 + n + b)
    return out


def make_safetensors(path, tensors):
    """tensors: list of (name, dtype, shape, bytes)."""
    hdr, off, blob = {}, 0, b""
    for name, dt, shape, data in tensors:
        hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(data)]}
        off += len(data)
        blob += data
    h = json.dumps(hdr).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + blob)


class RealFiles(mgtest.TestCase):
    def test_corpus_safetensors_load_and_dump(self):
        for name, count in EXPECTED_COUNTS.items():
            with self.subTest(file=name):
                path = os.path.join(ST, name)
                self.ws.models = []
                self.ws.pin_file("m", path)
                self.ws.write_policy()
                r, doc = self.ws.inspect_json("m")
                self.assertExit(r, OK)
                self.assertEqual(set(doc), {"ok", "model", "source", "parsing", "memory", "files", "tensors"})
                self.assertIs(doc["ok"], True)
                self.assertEqual(doc["model"], "m")
                self.assertEqual(doc["files"], [{"path": name, "format": "safetensors",
                                                 "size": os.path.getsize(path),
                                                 "sha256": mgtest.digest_file(path)}])
                self.assertEqual(len(doc["tensors"]), count)
                ref = read_safetensors(path)
                for t in doc["tensors"]:
                    self.assertEqual(set(t), {"name", "dtype", "shape", "nbytes", "file", "offset"})
                    dt, shape, data, off = ref[t["name"]]
                    self.assertEqual((t["dtype"], t["shape"], t["nbytes"], t["offset"], t["file"]),
                                     (dt, shape, len(data), off, name))
                    d = self.ws.run("dump", "m", t["name"])
                    self.assertExit(d, OK)
                    self.assertEqual(d.stdout, data, t["name"])

    def test_verify_text_and_json(self):
        path = os.path.join(ST, "voices.safetensors")
        self.ws.pin_file("voices", path, with_size=True)
        self.ws.write_policy()
        r = self.ws.run("verify", "voices")
        self.assertExit(r, OK)
        self.assertIn(b"voices", r.stdout)
        r = self.ws.run("verify", "--json", path)  # the exact source works as well as the name
        self.assertExit(r, OK)
        doc = json.loads(r.stdout)
        self.assertEqual(doc["files"][0]["format"], "safetensors")
        self.assertEqual(doc["tensors"], [])


class ExitCodes(mgtest.TestCase):
    def model(self, name="tiny"):
        path = self.ws.path("models", name + ".safetensors")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        make_safetensors(path, [("w", "F32", [4, 4], bytes(range(64))),
                                ("b", "I64", [2], struct.pack("<qq", -1, 7))])
        return path

    def test_1_integrity_digest_and_size(self):
        path = self.model()
        self.ws.pin_file("tiny", path, with_size=True)
        self.ws.extra["audit_log"] = self.ws.path("audit.jsonl")
        self.ws.write_policy()
        self.assertExit(self.ws.run("verify", "tiny"), OK)
        good = mgtest.digest_file(path)
        with open(path, "r+b") as f:
            f.seek(100)
            b = f.read(1)
            f.seek(100)
            f.write(bytes([b[0] ^ 1]))
        r = self.ws.run("inspect", "--json", "tiny")
        self.assertExit(r, INTEGRITY)
        doc = json.loads(r.stdout)
        self.assertEqual(doc["ok"], False)
        self.assertEqual(doc["error"]["kind"], "integrity")
        line = r.stderr.strip()
        self.assertEqual(len(line.splitlines()), 1)
        self.assertTrue(line.startswith("modelgate: integrity: model 'tiny', file 'tiny.safetensors'"), line)
        with open(self.ws.path("audit.jsonl")) as f:
            recs = [json.loads(l) for l in f]
        self.assertEqual(recs[0]["result"], "ok")
        self.assertEqual(recs[0]["event"], "verify")
        bad = recs[-1]
        self.assertEqual((bad["event"], bad["model"], bad["result"], bad["error"], bad["file"],
                          bad["algorithm"], bad["expected"]),
                         ("load", "tiny", "rejected", "integrity", "tiny.safetensors", "sha256", good))
        self.assertEqual(bad["actual"], mgtest.digest_file(path))
        self.assertEqual(set(recs[0]) >= {"time", "pid", "event", "model", "source", "result"}, True)
        # size: one byte appended
        with open(path, "ab") as f:
            f.write(b"\0")
        r = self.ws.run("verify", "tiny")
        self.assertExit(r, INTEGRITY)
        self.assertIn("size", r.stderr)

    def test_1_tamper_every_file_many_positions(self):
        d = self.ws.path("ckpt")
        os.makedirs(os.path.join(d, "tokenizer"))
        make_safetensors(os.path.join(d, "model.safetensors"),
                         [("emb", "F16", [64, 8], os.urandom(1024)), ("out", "F32", [8], os.urandom(32))])
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump({"hidden": 8, "layers": 1}, f)
        with open(os.path.join(d, "tokenizer", "tokenizer.json"), "w") as f:
            json.dump({"vocab": ["a", "b", "c"]}, f)
        self.ws.pin_dir("ckpt", d)
        self.ws.write_policy()
        r, doc = self.ws.inspect_json("ckpt")
        self.assertExit(r, OK)
        self.assertEqual({f["path"]: f["format"] for f in doc["files"]},
                         {"config.json": "asset", "model.safetensors": "safetensors",
                          "tokenizer/tokenizer.json": "asset"})
        rng = random.Random(7)
        flips = 0
        for rel in ("model.safetensors", "config.json", "tokenizer/tokenizer.json"):
            p = os.path.join(d, rel)
            size = os.path.getsize(p)
            positions = sorted({0, size - 1, size // 2} | {rng.randrange(size) for _ in range(9)})
            for pos in positions:
                with open(p, "r+b") as f:
                    f.seek(pos)
                    orig = f.read(1)
                    f.seek(pos)
                    f.write(bytes([orig[0] ^ (1 << rng.randrange(8))]))
                r = self.ws.run("inspect", "-q", "ckpt")
                self.assertExit(r, INTEGRITY, "%s byte %d" % (rel, pos))
                self.assertIn("file '%s'" % rel, r.stderr)
                with open(p, "r+b") as f:
                    f.seek(pos)
                    f.write(orig)
                flips += 1
        self.assertGreaterEqual(flips, 30)
        self.assertExit(self.ws.run("inspect", "ckpt"), OK)

    def test_1_directory_file_set(self):
        d = self.ws.path("dir")
        os.makedirs(d)
        make_safetensors(os.path.join(d, "a.safetensors"), [("x", "U8", [3], b"abc")])
        with open(os.path.join(d, "b.json"), "w") as f:
            f.write("{}")
        self.ws.pin_dir("dir", d)
        self.ws.write_policy()
        self.assertExit(self.ws.run("verify", "dir"), OK)
        with open(os.path.join(d, "extra.bin"), "wb") as f:
            f.write(b"x")
        r = self.ws.run("verify", "dir")
        self.assertExit(r, INTEGRITY)
        self.assertIn("unlisted", r.stderr)
        self.assertIn("extra.bin", r.stderr)
        os.remove(os.path.join(d, "extra.bin"))
        os.rename(os.path.join(d, "b.json"), os.path.join(d, "c.json"))
        r = self.ws.run("verify", "dir")
        self.assertExit(r, INTEGRITY)
        os.rename(os.path.join(d, "c.json"), os.path.join(d, "b.json"))
        os.remove(os.path.join(d, "b.json"))
        r = self.ws.run("verify", "dir")
        self.assertExit(r, INTEGRITY)
        self.assertIn("missing", r.stderr)

    def test_1_symlinks_refused(self):
        path = self.model()
        link = self.ws.path("link.safetensors")
        os.symlink(path, link)
        # The link itself pinned as a source: opened without following it.
        self.ws.pin_file("viaLink", link)
        self.ws.pin_file("real", path)
        self.ws.write_policy()
        self.assertExit(self.ws.run("verify", "real"), OK)
        self.assertExit(self.ws.run("verify", "viaLink"), INTEGRITY)
        # A directory model with a symlink inside.
        d = self.ws.path("d2")
        os.makedirs(d)
        shutil.copy(path, os.path.join(d, "m.safetensors"))
        self.ws.pin_dir("d2", d)
        self.ws.write_policy()
        self.assertExit(self.ws.run("verify", "d2"), OK)
        os.symlink(os.path.join(d, "m.safetensors"), os.path.join(d, "alias.safetensors"))
        r = self.ws.run("verify", "d2")
        self.assertExit(r, INTEGRITY)
        self.assertIn("symlink", r.stderr)
        # A symlinked folder on the way to the model.
        os.remove(os.path.join(d, "alias.safetensors"))
        os.symlink(d, self.ws.path("d2link"))
        self.ws.models = []
        self.ws.pin_dir("d2link", self.ws.path("d2link"))
        self.ws.write_policy()
        self.assertExit(self.ws.run("verify", "d2link"), INTEGRITY)

    def test_2_usage(self):
        self.assertExit(mgtest.run_bin(), USAGE)
        self.assertExit(mgtest.run_bin("frobnicate"), USAGE)
        self.assertExit(mgtest.run_bin("verify", "--bogus", "x"), USAGE)
        self.assertExit(mgtest.run_bin("verify"), USAGE)
        self.assertExit(mgtest.run_bin("hash", "-a", "md5", "x"), USAGE)
        path = self.model()
        self.ws.pin_file("tiny", path)
        self.ws.write_policy()
        self.assertExit(self.ws.run("dump", "tiny", "nope"), USAGE)
        self.assertExit(mgtest.run_bin("--help"), OK)

    def test_3_policy_errors_by_cli(self):
        path = self.model()
        self.ws.pin_file("tiny", path)
        self.ws.write_policy()
        os.chmod(self.ws.policy_path, 0o666)
        r = self.ws.run("verify", "tiny")
        self.assertExit(r, POLICY)
        self.assertIn("writable", r.stderr)
        self.ws.write_policy()
        self.assertExit(self.ws.run("verify", "tiny"), OK)
        # $MODELGATE_POLICY is used when -p is absent.
        r = mgtest.run_bin("verify", "tiny", env={"MODELGATE_POLICY": self.ws.policy_path})
        self.assertExit(r, OK)
        r = mgtest.run_bin("verify", "tiny", env={"MODELGATE_POLICY": self.ws.path("none.json")})
        self.assertExit(r, POLICY)

    def test_4_untrusted(self):
        path = self.model()
        other = self.model("other")
        self.ws.pin_file("tiny", path)
        self.ws.extra["audit_log"] = self.ws.path("audit.jsonl")
        self.ws.write_policy()
        for src in (other, "nosuchmodel", "https://models.example.com/tiny.safetensors",
                    "http://models.example.com/x", self.ws.path("models") + "/"):
            r = self.ws.run("verify", src)
            self.assertExit(r, UNTRUSTED, src)
            self.assertTrue(r.stderr.startswith("modelgate: untrusted: "), r.stderr)
        # lexically equal paths match: ./, .., //
        weird = self.ws.path("models", ".", "..", "models", "", "tiny.safetensors")
        self.assertExit(self.ws.run("verify", weird), OK)
        with open(self.ws.path("audit.jsonl")) as f:
            recs = [json.loads(l) for l in f]
        self.assertEqual(recs[0]["error"], "untrusted")
        self.assertNotIn("model", recs[0])

    def test_6_format(self):
        p = self.ws.write("models/x.pt", b"\x80\x02}q\x00.")
        self.ws.pin_file("pickle", p)
        txt = self.ws.write("models/notes.txt", b"just text")
        self.ws.pin_file("text", txt)
        self.ws.write_policy()
        r = self.ws.run("inspect", "pickle")
        self.assertExit(r, FORMAT)
        self.assertIn("pickle", r.stderr)
        self.assertIn("unsafe", r.stderr)
        r = self.ws.run("inspect", "text")
        self.assertExit(r, FORMAT)
        # verify checks integrity only: a malformed file still verifies
        self.assertExit(self.ws.run("verify", "pickle"), OK)

    def test_7_io(self):
        path = self.model()
        self.ws.pin_file("tiny", path)
        self.ws.write_policy()
        os.remove(path)
        r = self.ws.run("verify", "tiny")
        self.assertExit(r, IO)
        self.assertIn("not found", r.stderr)
        self.assertExit(mgtest.run_bin("hash", self.ws.path("missing")), IO)

    def test_7_audit_log_unwritable_fails_the_load(self):
        path = self.model()
        self.ws.pin_file("tiny", path)
        # A missing folder is a policy problem now (caught at policy load and by `policy
        # check`); a log that cannot be written at load time is an I/O error.
        self.ws.extra["audit_log"] = self.ws.path("no-such-dir", "audit.jsonl")
        self.ws.write_policy()
        r = self.ws.run("inspect", "tiny")
        self.assertExit(r, POLICY)
        self.assertIn("audit_log", r.stderr)
        os.mkdir(self.ws.path("no-such-dir"))
        os.mkdir(self.ws.path("no-such-dir", "audit.jsonl"))  # a folder: the open fails
        r = self.ws.run("inspect", "tiny")
        self.assertExit(r, POLICY)
        os.rmdir(self.ws.path("no-such-dir", "audit.jsonl"))
        with open(self.ws.path("no-such-dir", "audit.jsonl"), "wb") as f:
            f.write(b"x" * 8192)
        r = mgtest.run_bin("inspect", "-p", self.ws.policy_path, "tiny",
                           preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096)))
        self.assertExit(r, IO)
        self.assertIn("audit", r.stderr)

    def test_8_limit(self):
        p = os.path.join(mgtest.SOURCE_DIR, "tests", "data", "bad", "safetensors", "16-long-name.safetensors")
        self.ws.pin_file("long", p)
        self.ws.write_policy()
        self.assertExit(self.ws.run("inspect", "long"), LIMIT)


class Concurrency(mgtest.TestCase):
    def test_concurrent_writer_never_yields_unverified_bytes(self):
        """A file rewritten while it is loaded: the load either fails with integrity or hands
        out exactly the pinned bytes."""
        path = self.ws.path("m.safetensors")
        payload = bytes(random.Random(1).randrange(256) for _ in range(1 << 16)) * 64  # 4 MiB
        make_safetensors(path, [("t", "U8", [len(payload)], payload)])
        self.ws.pin_file("m", path)
        self.ws.write_policy()
        stop = threading.Event()
        size = os.path.getsize(path)

        def writer():
            rng = random.Random(2)
            fd = os.open(path, os.O_RDWR)
            try:
                while not stop.is_set():
                    pos = rng.randrange(100, size)
                    orig = os.pread(fd, 1, pos)
                    os.pwrite(fd, bytes([orig[0] ^ 0xFF]), pos)
                    os.pwrite(fd, orig, pos)
            finally:
                os.close(fd)

        th = threading.Thread(target=writer)
        th.start()
        outcomes = {OK: 0, INTEGRITY: 0}
        try:
            for _ in range(30):
                r = self.ws.run("dump", "-q", "m", "t")
                self.assertIn(r.returncode, (OK, INTEGRITY), r.stderr)
                outcomes[r.returncode] += 1
                if r.returncode == OK:
                    self.assertEqual(hashlib.sha256(r.stdout).digest(), hashlib.sha256(payload).digest())
        finally:
            stop.set()
            th.join()
        self.assertGreater(outcomes[INTEGRITY], 0, "the writer never hit a load: %r" % outcomes)


class Sharded(mgtest.TestCase):
    def make(self, weight_map=None):
        d = self.ws.path("sharded")
        os.makedirs(d, exist_ok=True)
        make_safetensors(os.path.join(d, "model-00001-of-00002.safetensors"),
                         [("a", "F32", [2], b"\0" * 8), ("b", "F32", [1], b"\1" * 4)])
        make_safetensors(os.path.join(d, "model-00002-of-00002.safetensors"), [("c", "U8", [3], b"xyz")])
        wm = weight_map or {"a": "model-00001-of-00002.safetensors",
                            "b": "model-00001-of-00002.safetensors",
                            "c": "model-00002-of-00002.safetensors"}
        with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": 15}, "weight_map": wm}, f)
        self.ws.models = []
        self.ws.pin_dir("sharded", d)
        self.ws.write_policy()

    def test_good_set(self):
        self.make()
        r, doc = self.ws.inspect_json("sharded")
        self.assertExit(r, OK)
        self.assertEqual(sorted((t["name"], t["file"]) for t in doc["tensors"]),
                         [("a", "model-00001-of-00002.safetensors"), ("b", "model-00001-of-00002.safetensors"),
                          ("c", "model-00002-of-00002.safetensors")])
        self.assertEqual(self.ws.run("dump", "sharded", "c").stdout, b"xyz")

    def test_bad_sets(self):
        for wm in ({"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors",
                    "c": "model-00002-of-00002.safetensors"},  # b is not where the index says
                   {"a": "model-00001-of-00002.safetensors", "b": "model-00001-of-00002.safetensors"},  # c unlisted
                   {"a": "model-00001-of-00002.safetensors", "b": "model-00001-of-00002.safetensors",
                    "c": "model-00003-of-00002.safetensors"},  # a shard that is not there
                   {"a": "../x.safetensors"}):
            with self.subTest(wm=wm):
                self.make(wm)
                self.assertExit(self.ws.run("inspect", "sharded"), FORMAT)


class MXNetCheckpoint(mgtest.TestCase):
    def test_checkpoint_report(self):
        mx = os.path.join(mgtest.CORPUS, "mxnet")
        self.ws.pin_dir("mnist", os.path.join(mx, "sagemaker-mnist-v1.4"))
        mixed = self.ws.path("mixed")
        os.makedirs(mixed)
        shutil.copy(os.path.join(mx, "sagemaker-linreg-v0.11", "model-symbol.json"), mixed)
        shutil.copy(os.path.join(mx, "go-test-v0.9", "go_test-0001.params"),
                    os.path.join(mixed, "model-0001.params"))
        self.ws.pin_dir("mixed", mixed)
        self.ws.write_policy()
        r, doc = self.ws.inspect_json("mnist")
        self.assertExit(r, OK)
        sym = [f for f in doc["files"] if f["format"] == "mxnet-symbol"][0]
        self.assertEqual(sym["metadata"]["checkpoint"],
                         {"unbound_variables": ["data", "softmax_label"], "unused_parameters": []})
        r, doc = self.ws.inspect_json("mixed")
        self.assertExit(r, OK)
        sym = [f for f in doc["files"] if f["format"] == "mxnet-symbol"][0]
        rep = sym["metadata"]["checkpoint"]
        self.assertEqual(sorted(rep["unused_parameters"]), ["arg:pred_bias", "arg:pred_weight"])
        self.assertIn("fc1_weight", rep["unbound_variables"])
        self.assertIn("fc1_bias", rep["unbound_variables"])
        text = self.ws.run("inspect", "mixed").stdout.decode()
        self.assertIn("parameters the graph does not use (2)", text)


class MXNet2Checkpoint(mgtest.TestCase):
    def test_npz_params_go_through_the_npz_parser(self):
        """MXNet 2.x writes .params as npz: same checkpoint handling, tensors from the npz."""
        import numpy as np
        mx = os.path.join(mgtest.CORPUS, "mxnet", "sagemaker-linreg-v0.11")
        d = self.ws.path("mx2")
        os.makedirs(d)
        shutil.copy(os.path.join(mx, "model-symbol.json"), d)
        w = np.arange(2, dtype=np.float32).reshape(1, 2)
        b = np.array([0.5], dtype=np.float32)
        with open(os.path.join(d, "model-0003.params"), "wb") as f:
            np.savez(f, **{"arg:fc1_weight": w, "arg:fc1_bias": b})
        self.ws.pin_dir("mx2", d)
        self.ws.write_policy()
        r, doc = self.ws.inspect_json("mx2")
        self.assertExit(r, OK)
        fmt = {f["path"]: f["format"] for f in doc["files"]}
        self.assertEqual(fmt["model-0003.params"], "npz")
        self.assertEqual(sorted((t["name"], t["dtype"], t["shape"]) for t in doc["tensors"]),
                         [("arg:fc1_bias", "F32", [1]), ("arg:fc1_weight", "F32", [1, 2])])
        sym = [f for f in doc["files"] if f["format"] == "mxnet-symbol"][0]
        self.assertEqual(sym["metadata"]["checkpoint"]["unused_parameters"], [])
        self.assertNotIn("fc1_weight", sym["metadata"]["checkpoint"]["unbound_variables"])
        self.assertEqual(self.ws.run("dump", "mx2", "arg:fc1_weight").stdout, w.tobytes())


class HashAndPin(mgtest.TestCase):
    def test_hash(self):
        files = [os.path.join(ST, n) for n in ("e.safetensors", "d.safetensors")]
        r = mgtest.run_bin("hash", *files)
        self.assertExit(r, OK)
        self.assertEqual(r.stdout.decode(), "".join("%s  %s\n" % (mgtest.digest_file(f), f) for f in files))
        r = mgtest.run_bin("hash", "-a", "sha512", files[0])
        self.assertEqual(r.stdout.decode(), "%s  %s\n" % (mgtest.digest_file(files[0], "sha512"), files[0]))

    def test_pin_then_load(self):
        d = self.ws.path("pinme")
        os.makedirs(os.path.join(d, "sub"))
        make_safetensors(os.path.join(d, "sub", "w.safetensors"), [("w", "U8", [2], b"hi")])
        with open(os.path.join(d, "config.json"), "w") as f:
            f.write('{"a": 1}')
        r = mgtest.run_bin("policy", "pin", "-n", "pinned", "-a", "sha512", d)
        self.assertExit(r, OK)
        entry = json.loads(r.stdout)
        self.assertEqual(entry["name"], "pinned")
        self.assertEqual(entry["files"]["sub/w.safetensors"]["sha512"],
                         mgtest.digest_file(os.path.join(d, "sub", "w.safetensors"), "sha512"))
        single = mgtest.run_bin("policy", "pin", os.path.join(d, "sub", "w.safetensors"))
        self.assertExit(single, OK)
        e2 = json.loads(single.stdout)
        self.assertEqual(e2["name"], "w")
        self.ws.models = [entry, e2]
        self.ws.write_policy()
        self.assertExit(self.ws.run("policy check"), OK)
        r, doc = self.ws.inspect_json("pinned")
        self.assertExit(r, OK)
        self.assertEqual(doc["files"][1]["sha512"], entry["files"]["sub/w.safetensors"]["sha512"])
        self.assertEqual(self.ws.run("dump", "w", "w").stdout, b"hi")


if __name__ == "__main__":
    mgtest.main()
