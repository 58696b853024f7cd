"""The pymodelgate API: read-only arrays, lifetime (arrays keep the model's memory alive, and
release it when the last is gone), closed objects, typed errors with their fields, policy
checks, progress, verify/fetch, threads, and random call sequences that must never crash."""
import gc
import hashlib
import json
import os
import subprocess
import sys
import threading
import weakref

import pmgtest
from pmgtest import np, pymodelgate

TINY = os.path.join(pmgtest.SOURCE_DIR, "examples", "models", "tiny-mlp")
NPZ = os.path.join(pmgtest.REAL, "npz", "mel_filters.npz")  # deflated members


def handle_ref(arr):
    """A weak reference to the C model handle an array keeps alive."""
    base = arr.base
    while isinstance(base, np.ndarray):
        base = base.base
    return weakref.ref(base._owner)


class API(pmgtest.TestCase):

    def setUp(self):
        super().setUp()
        self.ws.pin_dir("tiny", TINY)
        self.ws.pin_file("npz", NPZ)
        self.ws.write_policy()
        self.policy = self.ws.policy_path

    def load(self, name="tiny"):
        return pymodelgate.load(name, policy=self.policy)

    # ---- read-only -----------------------------------------------------------------------

    def test_arrays_and_views_are_read_only(self):
        with self.load() as m:
            w = m["layers.0.weight"]
            for a in (w, w[1:], w.T, w.reshape(-1), w[::2, ::3], np.asarray(w.base), w.view(np.uint32)):
                self.assertReadOnly(a)
            with self.assertRaises(ValueError):
                w.setflags(write=True)
            with self.assertRaises(ValueError):
                np.add(w, 1, out=w)
            with self.assertRaises(ValueError):
                w.fill(0)
            cfg = m.asset("config.json")
            self.assertTrue(cfg.readonly)
            with self.assertRaises(TypeError):
                cfg[0] = 1
            with open(os.path.join(TINY, "config.json"), "rb") as f:
                self.assertEqual(bytes(cfg), f.read())
            c = w.copy()  # a copy is the caller's own, writable
            c[0, 0] = 1
            self.assertTrue(c.flags.writeable)

    # ---- lifetime ------------------------------------------------------------------------

    def test_array_outlives_model(self):
        m = self.load()
        w = m["layers.0.weight"]
        want = w.copy()
        ref = handle_ref(w)
        del m
        gc.collect()
        self.assertIsNotNone(ref())  # the array holds the memory
        self.assertTrue(np.array_equal(w, want))
        del w
        gc.collect()
        self.assertIsNone(ref())  # ... and releases it with the last array

    def test_close_defers_release_until_last_view(self):
        m = self.load("npz")
        v = m["mel_80"][10:20, ::3]
        want = v.copy()
        mv = m.asset("mel_filters.npz")
        ref = handle_ref(v)
        m.close()
        self.assertTrue(m.closed)
        gc.collect()
        self.assertIsNotNone(ref())
        self.assertTrue(np.array_equal(v, want))
        del v
        gc.collect()
        self.assertIsNotNone(ref())  # the asset view still holds it
        self.assertEqual(bytes(mv[:2]), b"PK")
        mv.release()
        del mv
        gc.collect()
        self.assertIsNone(ref())

    def test_release_when_nothing_holds_it(self):
        m = self.load()
        ref = weakref.ref(m._h)
        m.close()
        self.assertIsNone(ref())

    def test_closed_model_raises(self):
        m = self.load()
        m.close()
        m.close()  # twice is fine
        for call in (lambda: m["step"], lambda: len(m), lambda: list(m), lambda: "step" in m,
                     lambda: m.files, lambda: m.asset("config.json"),
                     lambda: m.tensor_info("step"), lambda: m.file_tensors("model.safetensors")):
            with self.assertRaises(ValueError):
                call()
        self.assertIn("closed", repr(m))

    def test_policy_close_keeps_models(self):
        pol = pymodelgate.Policy(self.policy)
        m = pol.load("tiny")
        ref = weakref.ref(pol._h)
        pol.close()
        gc.collect()
        self.assertIsNotNone(ref())  # the model keeps its policy
        self.assertEqual(int(m["step"]), 1000)
        with self.assertRaises(ValueError):
            pol.load("tiny")
        del m
        gc.collect()
        self.assertIsNone(ref())

    # ---- mapping and descriptions --------------------------------------------------------

    def test_mapping_info_files(self):
        with self.load() as m:
            self.assertEqual(list(m.keys()), ["layers.0.weight", "layers.0.bias",
                                              "layers.1.weight", "layers.1.bias", "step"])
            self.assertEqual(len(m), 5)
            self.assertEqual(dict(m.items()).keys(), set(m.keys()))
            with self.assertRaises(KeyError):
                m["nope"]
            self.assertIsNone(m.get("nope"))
            info = m.tensor_info("layers.0.weight")
            self.assertEqual((info.dtype, info.shape, info.nbytes, info.file, info.flags),
                             ("F32", (16, 8), 512, "model.safetensors", 0))
            self.assertEqual(m["step"].shape, ())
            self.assertEqual(m.name, "tiny")
            self.assertEqual(m, m)
            self.assertNotEqual(m, self.load())  # identity, never an element-wise compare
            self.assertEqual(len({m}), 1)
            self.assertTrue(m.source.endswith("tiny-mlp/"))
            files = {f.path: f for f in m.files}
            self.assertEqual(files["config.json"].format, "asset")
            st = files["model.safetensors"]
            with open(os.path.join(TINY, "model.safetensors"), "rb") as f:
                raw = f.read()
            self.assertEqual((st.format, st.size, st.algorithm, st.digest),
                             ("safetensors", len(raw), "sha256", hashlib.sha256(raw).hexdigest()))
            self.assertEqual(bytes(m.asset("model.safetensors")), raw)
            self.assertEqual(list(m.file_tensors("model.safetensors")), list(m))
            self.assertEqual(m.file_tensors("config.json"), {})
            with self.assertRaises(KeyError):
                m.file_tensors("nope")
            with self.assertRaises(pymodelgate.UsageError):
                m.asset("nope.json")

    # ---- errors --------------------------------------------------------------------------

    def test_integrity_error_fields(self):
        d = os.path.join(self.ws.dir, "copy")
        os.mkdir(d)
        for f in os.listdir(TINY):
            with open(os.path.join(TINY, f), "rb") as src:
                self.ws.write(os.path.join("copy", f), src.read())
        entry = self.ws.pin_dir("copy", d)
        self.ws.write_policy()
        self.ws.write(os.path.join("copy", "config.json"), b'{"architecture": "evil"}')
        with self.assertRaises(pymodelgate.IntegrityError) as cm:
            self.load("copy")
        e = cm.exception
        self.assertEqual((e.status, e.kind, e.model, e.file), (1, "integrity", "copy", "config.json"))
        if e.algorithm:  # a size mismatch is found before any digest
            self.assertEqual(e.expected, entry["files"]["config.json"]["sha256"])
        # same size, other bytes: a digest mismatch with both digests
        with open(os.path.join(TINY, "config.json"), "rb") as f:
            good = f.read()
        bad = good[:-2] + b"0}"
        self.ws.write(os.path.join("copy", "config.json"), bad)
        with self.assertRaises(pymodelgate.IntegrityError) as cm:
            self.load("copy")
        e = cm.exception
        self.assertEqual(e.algorithm, "sha256")
        self.assertEqual(e.expected, hashlib.sha256(good).hexdigest())
        self.assertEqual(e.actual, hashlib.sha256(bad).hexdigest())
        self.assertIsInstance(e, pymodelgate.Error)

    def test_untrusted_usage_type_errors(self):
        with self.assertRaises(pymodelgate.UntrustedSourceError) as cm:
            self.load("/etc/passwd")
        self.assertEqual(cm.exception.status, 4)
        with self.assertRaises(TypeError):
            self.load(42)
        with self.assertRaises(ValueError):
            self.load("tiny\0x")
        with self.assertRaises(TypeError):
            pymodelgate.load("tiny", policy=3.5)
        with self.assertRaises(TypeError):
            pymodelgate.load("tiny", policy=self.policy, threads=-1)
        with self.assertRaises(TypeError):
            pymodelgate.load("tiny", policy=self.policy, progress="no")

    def test_policy_errors_and_check(self):
        self.assertEqual(pymodelgate.Policy(self.policy).check(), [])
        with pymodelgate.Policy(self.policy) as pol:
            self.assertEqual(pol.path, os.path.realpath(self.policy))
        bad = self.ws.write("bad.json", json.dumps(
            {"modelgate_policy": 1, "models": [{"name": "x", "source": 7},
                                               {"name": "y", "source": "/a", "sha256": "zz"}]}).encode(), 0o600)
        with self.assertRaises(pymodelgate.PolicyError) as cm:
            pymodelgate.Policy(bad)
        self.assertEqual(cm.exception.kind, "policy")
        problems = pymodelgate.check_policy(bad)
        self.assertGreaterEqual(len(problems), 2, problems)
        self.assertTrue(all(p.startswith("$") for p in problems), problems)
        self.assertTrue(any("models[1]" in p for p in problems), problems)
        os.chmod(self.policy, 0o666)
        with self.assertRaises(pymodelgate.PolicyError):
            pymodelgate.load("tiny", policy=self.policy)
        os.chmod(self.policy, 0o600)
        env = dict(os.environ, MODELGATE_POLICY=self.policy)
        code = "import pymodelgate; print(len(pymodelgate.load('tiny')))"
        env["PYTHONPATH"] = os.path.join(pmgtest.SOURCE_DIR, "python")
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        self.assertEqual(out.stdout.strip(), "5", out.stderr)

    # ---- progress, verify, fetch, hash ---------------------------------------------------

    def test_progress(self):
        # 32 MiB: long enough that the library reports progress while it hashes (a file
        # hashed before the loading thread first waits gets no call at all).
        rng = np.random.default_rng(1)
        big = rng.standard_normal(4 << 20).astype("<f8")
        path = self.ws.path("big.npy")
        np.save(path, big)
        self.ws.pin_file("big", path, with_size=True)  # the size gives the progress total
        self.ws.write_policy()
        size = os.path.getsize(path)
        calls = []
        with pymodelgate.load("big", policy=self.policy, progress=lambda d, t: calls.append((d, t)),
                              threads=1) as m:
            self.assertTrue(np.array_equal(m[""], big))
        self.assertTrue(calls)
        self.assertTrue(all(t == size and 0 <= d <= size for d, t in calls), calls)
        self.assertEqual(calls, sorted(calls))

        class Stop(Exception):
            pass

        def boom(done, total):
            raise Stop()

        with self.assertRaises(Stop):
            pymodelgate.load("big", policy=self.policy, progress=boom)

    def test_verify_fetch_hash(self):
        with pymodelgate.verify("tiny", policy=self.policy) as m:
            self.assertEqual(len(m), 0)
            self.assertEqual(sorted(f.path for f in m.files), ["config.json", "model.safetensors"])
            self.assertEqual(m.files[0].format, "asset")
        self.ws.extra["cache_dir"] = "cache"
        self.ws.write_policy()
        with pymodelgate.fetch("tiny", policy=self.policy) as m:
            for f in m.files:
                self.assertTrue(f.cache_path.startswith(os.path.join(os.path.realpath(self.ws.dir), "cache")))
                with open(f.cache_path, "rb") as fh:
                    self.assertEqual(hashlib.sha256(fh.read()).hexdigest(), f.digest)
        path = os.path.join(TINY, "model.safetensors")
        with open(path, "rb") as f:
            raw = f.read()
        self.assertEqual(pymodelgate.hash_file(path), hashlib.sha256(raw).hexdigest())
        self.assertEqual(pymodelgate.hash_file(path, "sha512"), hashlib.sha512(raw).hexdigest())
        with self.assertRaises(pymodelgate.Error):
            pymodelgate.hash_file(os.path.join(self.ws.dir, "missing"))
        self.assertRegex(pymodelgate.library_version(), r"^\d+\.\d+\.\d+$")

    # ---- threads and call sequences ------------------------------------------------------

    def test_threads_read_while_model_is_dropped(self):
        m = self.load("npz")
        arrays = [m["mel_80"], m["mel_128"]]
        want = [float(a.sum()) for a in arrays]
        errors = []

        def reader(a, s):
            try:
                for _ in range(200):
                    if float(a.sum()) != s:
                        errors.append("changed")
            except Exception as e:  # pragma: no cover
                errors.append(e)

        threads = [threading.Thread(target=reader, args=(arrays[i % 2], want[i % 2])) for i in range(4)]
        for t in threads:
            t.start()
        m.close()
        del m, arrays
        gc.collect()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])

    def test_random_call_sequences_never_crash(self):
        """Thousands of random operations in a child interpreter: the child must end with
        exit 0 (a use of freed memory would crash it or make values differ)."""
        script = r'''
import gc, random, sys
import numpy as np
import pymodelgate
policy = sys.argv[1]
rng = random.Random(int(sys.argv[2]))
want = {}
models, arrays, views = [], [], []
for step in range(2000):
    op = rng.randrange(9)
    try:
        if op == 0 or not models:
            models.append(pymodelgate.load(rng.choice(["tiny", "npz"]), policy=policy))
        elif op == 1:
            m = rng.choice(models)
            k = rng.choice(list(m))
            a = m[k]
            arrays.append((m.name, k, a))
        elif op == 2:
            rng.choice(models).close()
        elif op == 3:
            models.pop(rng.randrange(len(models)))
        elif op == 4 and arrays:
            name, k, a = arrays.pop(rng.randrange(len(arrays)))
            views.append((name, k, a.reshape(-1)[::2]))
        elif op == 5:
            gc.collect()
        elif op == 6 and (arrays or views):
            name, k, a = rng.choice(arrays + views)
            s = a.tobytes()
            key = (name, k, a.shape, a.strides)
            if want.setdefault(key, s) != s:
                sys.exit("values changed")
        elif op == 7:
            m = rng.choice(models)
            mv = m.asset(rng.choice([f.path for f in m.files]))
            arrays.append((m.name, "asset", np.asarray(mv)))
        elif op == 8 and views:
            views.pop(rng.randrange(len(views)))
    except ValueError as e:
        if "closed" not in str(e):
            raise
print("ok", len(want))
'''
        env = dict(os.environ)
        env["PYTHONPATH"] = os.path.join(pmgtest.SOURCE_DIR, "python")
        for seed in range(3):
            p = subprocess.run([sys.executable, "-c", script, self.policy, str(seed)], env=env,
                               capture_output=True, text=True, timeout=600)
            self.assertEqual(p.returncode, 0, p.stderr[-2000:])
            self.assertTrue(p.stdout.startswith("ok"), p.stdout)


if __name__ == "__main__":
    pmgtest.mgtest.main()
