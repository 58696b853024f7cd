"""MXNet checkpoints through the command line: `inspect --json` lists exactly the tensors
tests/data/write_mxnet.py wrote (every record version and type flag), `dump` returns exactly
the bytes written, the real checkpoints of corpus/real/mxnet load as directory models, and a
checkpoint directory whose symbol file or .params file alone was changed is refused (exit 1).
"""
import json
import os
import shutil
import sys

import mgtest

sys.path.insert(0, os.path.join(mgtest.SOURCE_DIR, "tests", "data"))
import write_mxnet  # noqa: E402

REAL = os.path.join(mgtest.CORPUS, "mxnet")


def tensor_table(doc):
    return [(t["name"], t["dtype"], t["shape"], t["nbytes"], t["offset"]) for t in doc["tensors"]]


class MxnetCli(mgtest.TestCase):
    def test_written_files_inspect_and_dump(self):
        gen = self.ws.path("gen")
        expected = write_mxnet.build_set(gen)
        names = {}
        for i, fname in enumerate(sorted(expected)):
            names[fname] = "m%d" % i
            self.ws.pin_file(names[fname], os.path.join(gen, fname))
        self.ws.write_policy()
        dumped = 0
        for fname, want in sorted(expected.items()):
            model = names[fname]
            r, doc = self.ws.inspect_json(model)
            self.assertExit(r, mgtest.OK, fname)
            self.assertTrue(doc["ok"])
            self.assertEqual([f["format"] for f in doc["files"]], ["mxnet-params"], fname)
            meta = doc["files"][0]["metadata"]
            self.assertEqual(meta["none"], want["none"], fname)
            self.assertEqual(meta["record_versions"], want["record_versions"], fname)
            self.assertEqual(meta["arrays"], want["arrays"], fname)
            self.assertEqual(tensor_table(doc),
                             [(t["name"], t["dtype"], t["shape"], t["nbytes"], t["offset"])
                              for t in want["tensors"]], fname)
            for t in want["tensors"]:
                d = self.ws.run("dump", model, t["name"])
                self.assertExit(d, mgtest.OK, "%s %s" % (fname, t["name"]))
                self.assertEqual(d.stdout, write_mxnet.pattern(t["seed"], t["nbytes"]),
                                 "%s %s" % (fname, t["name"]))
                dumped += 1
            # A none record has no tensor to dump.
            for n in want["none"]:
                d = self.ws.run("dump", model, n)
                self.assertNotEqual(d.returncode, mgtest.OK, "%s none %s" % (fname, n))
        self.assertGreater(dumped, 80)

    def test_real_checkpoints(self):
        want = {
            "go-test-v0.9": [("arg:pred_bias", "F32", [10], 40, 44),
                             ("arg:pred_weight", "F32", [10, 1], 40, 108)],
            "sagemaker-linreg-v0.11": [("arg:fc1_weight", "F32", [1, 2], 8, 60),
                                       ("arg:fc1_bias", "F32", [1], 4, 96)],
            "sagemaker-mnist-v1.4": [
                ("arg:fullyconnected0_weight", "F32", [128, 784], 401408, 64),
                ("arg:fullyconnected0_bias", "F32", [128], 512, 401504),
                ("arg:fullyconnected1_weight", "F32", [64, 128], 32768, 402056),
                ("arg:fullyconnected1_bias", "F32", [64], 256, 434856),
                ("arg:fullyconnected2_weight", "F32", [10, 64], 2560, 435152),
                ("arg:fullyconnected2_bias", "F32", [10], 40, 437744)],
            "legacy-ndarray-v0": [(str(i), "F32", [128], 512, 44 + 532 * i) for i in range(6)],
        }
        for d in sorted(want):
            self.ws.pin_dir(d, os.path.join(REAL, d))
        self.ws.write_policy()
        for d, tensors in sorted(want.items()):
            r, doc = self.ws.inspect_json(d)
            self.assertExit(r, mgtest.OK, d)
            formats = {f["path"]: f["format"] for f in doc["files"]}
            for path, fmt in formats.items():
                if path.endswith("-symbol.json"):
                    self.assertEqual(fmt, "mxnet-symbol", path)
                elif path.endswith(".params") or path.endswith(".v0"):
                    self.assertEqual(fmt, "mxnet-params", path)
                else:
                    self.assertEqual(fmt, "asset", path)
            self.assertEqual(sorted(tensor_table(doc)), sorted(tensors), d)
        # The symbol summary is the file's metadata.
        r, doc = self.ws.inspect_json("sagemaker-mnist-v1.4")
        sym = [f for f in doc["files"] if f["path"] == "model-symbol.json"][0]
        self.assertEqual(sym["metadata"]["nodes"], 15)
        self.assertEqual(sym["metadata"]["mxnet_version"], 10400)
        self.assertEqual(sym["metadata"]["ops"],
                         ["Activation", "Flatten", "FullyConnected", "SoftmaxOutput"])
        # dump gives the file's bytes at the tensor's offset.
        with open(os.path.join(REAL, "sagemaker-mnist-v1.4", "model-0000.params"), "rb") as f:
            raw = f.read()
        d = self.ws.run("dump", "sagemaker-mnist-v1.4", "arg:fullyconnected1_weight")
        self.assertExit(d, mgtest.OK)
        self.assertEqual(d.stdout, raw[402056:402056 + 32768])

    def make_checkpoint(self, name):
        path = self.ws.path(name)
        write_mxnet.write_checkpoint(path, "ckpt")
        self.ws.pin_dir(name, path)
        return path

    def test_checkpoint_tampering(self):
        good = self.make_checkpoint("good")
        sym = self.make_checkpoint("sym-tampered")
        par = self.make_checkpoint("params-tampered")
        self.ws.write_policy()

        r, doc = self.ws.inspect_json("good")
        self.assertExit(r, mgtest.OK)
        self.assertEqual(sorted(f["format"] for f in doc["files"]), ["mxnet-params", "mxnet-symbol"])
        self.assertEqual(len(doc["tensors"]), 8)
        self.assertTrue(os.path.isdir(good))

        # Same size, one byte changed, still a valid graph: only the digest can tell.
        p = os.path.join(sym, "ckpt-symbol.json")
        with open(p, "rb") as f:
            data = f.read()
        with open(p, "wb") as f:
            f.write(data.replace(b'"num_hidden": "2"', b'"num_hidden": "3"'))
        with open(p, "rb") as f:
            self.assertNotEqual(f.read(), data)
        r = self.ws.run("inspect", "sym-tampered")
        self.assertExit(r, mgtest.INTEGRITY, "tampered symbol")
        self.assertIn("ckpt-symbol.json", r.stderr)

        # One weight byte changed in the .params file.
        p = os.path.join(par, "ckpt-0000.params")
        with open(p, "r+b") as f:
            f.seek(os.path.getsize(p) // 2)
            b = f.read(1)
            f.seek(-1, os.SEEK_CUR)
            f.write(bytes([b[0] ^ 0x01]))
        r = self.ws.run("inspect", "params-tampered")
        self.assertExit(r, mgtest.INTEGRITY, "tampered params")
        self.assertIn("ckpt-0000.params", r.stderr)
        r = self.ws.run("dump", "params-tampered", "arg:fc0_weight")
        self.assertExit(r, mgtest.INTEGRITY, "dump of a tampered checkpoint")
        self.assertEqual(r.stdout, b"")

    def test_checkpoint_malformed_but_pinned(self):
        """Digests prove only that the bytes are the pinned ones: a pinned but malformed
        symbol or .params inside a checkpoint directory is still refused as a format error."""
        for name, fname, data in (
                ("badsym", "ckpt-symbol.json",
                 b'{"nodes": [{"op": "null", "name": "x", "inputs": [[0, 0]]}], '
                 b'"arg_nodes": [0], "heads": [[0, 0]]}'),
                ("badparams", "ckpt-0000.params",
                 b"\x12\x01" + b"\x00" * 14 + b"\xff" * 8)):
            path = self.ws.path(name)
            write_mxnet.write_checkpoint(path, "ckpt")
            with open(os.path.join(path, fname), "wb") as f:
                f.write(data)
            self.ws.pin_dir(name, path)
        self.ws.write_policy()
        for name, fname in (("badsym", "ckpt-symbol.json"), ("badparams", "ckpt-0000.params")):
            r = self.ws.run("inspect", name)
            self.assertExit(r, mgtest.FORMAT, name)
            self.assertIn(fname, r.stderr)


if __name__ == "__main__":
    mgtest.main()
