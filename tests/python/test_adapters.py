"""pymodelgate.mlx and pymodelgate.mxnet, tested against STAND-IN modules, not the real
frameworks: MLX and MXNet cannot be installed here (not in Debian, no access to the Python
package index). tests/python/standins/ holds two tiny packages named `mlx` and `mxnet` that
provide the few functions the adapters call and record every call; these tests check what the
adapters hand to the framework (values, dtypes, names, the verified symbol JSON), and that
the frameworks are imported lazily."""
import json
import os
import struct
import sys

import pmgtest
from pmgtest import np, pymodelgate

STANDINS = os.path.join(pmgtest.HERE, "standins")


def standin(name):
    """Import the stand-in module `name` (and only it) from tests/python/standins."""
    sys.path.insert(0, STANDINS)
    try:
        __import__(name)
        return sys.modules[name]
    finally:
        sys.path.remove(STANDINS)


def safetensors_bytes(tensors, metadata=None):
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data


class Lazy(pmgtest.TestCase):
    def test_adapters_import_without_frameworks(self):
        for mod in ("mlx", "mlx.core", "mxnet"):
            sys.modules.pop(mod, None)
        import pymodelgate.mlx  # noqa: F401
        import pymodelgate.mxnet  # noqa: F401
        self.assertNotIn("mlx", sys.modules)
        self.assertNotIn("mxnet", sys.modules)
        self.ws.pin_file("m", os.path.join(pmgtest.REAL, "safetensors", "e.safetensors"))
        self.ws.write_policy()
        # No stand-in on the path and no real MLX: the import error surfaces at load().
        with self.assertRaises(ImportError):
            pymodelgate.mlx.load("m", policy=self.ws.policy_path)


class Examples(pmgtest.TestCase):
    def test_framework_examples_compile(self):
        """The MLX and MXNet examples cannot run here; they must at least compile (the numpy
        one runs in test_venv_install)."""
        import py_compile
        folder = os.path.join(pmgtest.SOURCE_DIR, "examples", "python")
        names = sorted(n for n in os.listdir(folder) if n.endswith(".py"))
        self.assertEqual(names, ["mlx_load.py", "mxnet_checkpoint.py", "numpy_load.py"])
        for n in names:
            py_compile.compile(os.path.join(folder, n), cfile=self.ws.path(n + "c"), doraise=True)


class MLXAdapter(pmgtest.TestCase):
    def setUp(self):
        super().setUp()
        self.mx = standin("mlx.core")
        self.mx.CALLS.clear()
        import pymodelgate.mlx
        self.adapter = pymodelgate.mlx

    def test_safetensors_dict_with_bf16_and_metadata(self):
        bf = np.arange(6, dtype="<u2") * 997
        f32 = np.linspace(-1, 1, 8, dtype="<f4").reshape(2, 4)
        path = self.ws.write("w.safetensors", safetensors_bytes(
            [("bf", "BF16", [2, 3], bf.tobytes()), ("w", "F32", [2, 4], f32.tobytes()),
             ("e4", "F8_E4M3", [2], b"\x01\x02")], metadata={"format": "mlx"}))
        self.ws.pin_file("m", path)
        self.ws.write_policy()
        arrays, meta = self.adapter.load("m", policy=self.ws.policy_path, return_metadata=True)
        self.assertEqual(meta, {"format": "mlx"})
        self.assertEqual(sorted(arrays), ["bf", "e4", "w"])
        self.assertTrue(np.array_equal(arrays["w"].np, f32))
        self.assertEqual(arrays["bf"].dtype, self.mx.bfloat16)
        self.assertTrue(np.array_equal(arrays["bf"].np, bf.reshape(2, 3)))
        self.assertEqual(arrays["e4"].np.dtype, np.uint8)
        views = [c for c in self.mx.CALLS if c[0] == "view"]
        self.assertEqual(len(views), 1)
        self.assertEqual(views[0][2], self.mx.bfloat16)
        # mx.array got numpy arrays (copies happen in the framework, as with mx.load)
        self.assertTrue(all(isinstance(c[1], np.ndarray) for c in self.mx.CALLS if c[0] == "array"))

    def test_npy_gives_the_array_and_big_endian_is_native(self):
        arr = np.asfortranarray(np.arange(12, dtype=">i4").reshape(3, 4))
        path = self.ws.path("a.npy")
        np.save(path, arr)
        self.ws.pin_file("m", path)
        self.ws.write_policy()
        got = self.adapter.load("m", policy=self.ws.policy_path)
        self.assertIsInstance(got, self.mx.array)
        given = self.mx.CALLS[0][1]
        self.assertTrue(given.dtype.isnative)
        self.assertTrue(given.flags.c_contiguous)
        self.assertTrue(np.array_equal(got.np, arr))

    def test_gguf_metadata_and_quantized_refused(self):
        self.ws.pin_file("g", os.path.join(pmgtest.REAL, "gguf", "llama-2-tiny-random.gguf"))
        self.ws.pin_file("q", os.path.join(pmgtest.BAD, "gguf", "good-quantized-q4_0-q8_0-q4_k.gguf"))
        self.ws.write_policy()
        arrays, meta = self.adapter.load("g", policy=self.ws.policy_path, return_metadata=True)
        self.assertEqual(len(arrays), 12)
        self.assertEqual(meta["general.architecture"], "llama")
        self.assertEqual(arrays["token_embd.weight"].np.shape, (32000, 8))
        with self.assertRaises(pymodelgate.UsageError) as cm:
            self.adapter.load("q", policy=self.ws.policy_path)
        self.assertIn("quantized", str(cm.exception))

    def test_refusal_is_typed(self):
        path = self.ws.write("t.safetensors", safetensors_bytes([("w", "F32", [1], b"\0\0\0\0")]))
        self.ws.pin_file("m", path)
        self.ws.write_policy()
        with open(path, "r+b") as f:
            f.seek(-1, 2)
            f.write(b"\1")
        with self.assertRaises(pymodelgate.IntegrityError):
            self.adapter.load("m", policy=self.ws.policy_path)
        self.assertEqual(self.mx.CALLS, [])


class MXNetAdapter(pmgtest.TestCase):
    def setUp(self):
        super().setUp()
        self.mx = standin("mxnet")
        self.mx.CALLS.clear()
        import pymodelgate.mxnet
        self.adapter = pymodelgate.mxnet
        real = os.path.join(pmgtest.REAL, "mxnet")
        self.ws.pin_dir("mnist", os.path.join(real, "sagemaker-mnist-v1.4"))
        self.ws.pin_dir("linreg", os.path.join(pmgtest.SOURCE_DIR, "examples", "models", "linreg-mxnet"))
        self.ws.pin_file("legacy", os.path.join(real, "legacy-ndarray-v0", "legacy_ndarray.v0"))
        self.ws.write_policy()
        self.policy = self.ws.policy_path

    def test_nd_load_dict_and_list(self):
        params = self.adapter.load("mnist", policy=self.policy)
        self.assertEqual(sorted(params), sorted("arg:fullyconnected%d_%s" % (i, k)
                                                for i in range(3) for k in ("weight", "bias")))
        with pymodelgate.load("mnist", policy=self.policy) as m:
            for k, v in params.items():
                self.assertTrue(np.array_equal(v.asnumpy(), m[k]))
                self.assertEqual(v.np.dtype, np.float32)
        arrays = self.adapter.load("legacy", policy=self.policy)
        self.assertIsInstance(arrays, list)  # no names stored: mx.nd.load gives a list
        self.assertEqual([a.shape for a in arrays], [(128,)] * 6)

    def test_load_checkpoint_uses_verified_symbol(self):
        sym, args, auxs = self.adapter.load_checkpoint("linreg", epoch=0, policy=self.policy)
        with open(os.path.join(pmgtest.SOURCE_DIR, "examples", "models", "linreg-mxnet",
                               "model-symbol.json"), "rb") as f:
            self.assertEqual(sym.json, f.read().decode())
        self.assertEqual(sorted(args), ["fc1_bias", "fc1_weight"])
        self.assertEqual(auxs, {})
        self.assertEqual(args["fc1_weight"].shape, (1, 2))
        with self.assertRaises(pymodelgate.UsageError):
            self.adapter.load_checkpoint("linreg", epoch=3, policy=self.policy)
        with self.assertRaises(pymodelgate.UntrustedSourceError):
            self.adapter.load_checkpoint("/nowhere/model", policy=self.policy)

    def test_symbol_block(self):
        net = self.adapter.symbol_block("mnist", ["data", "softmax_label"], policy=self.policy)
        params = net.collect_params()
        self.assertEqual(len(params), 6)
        for name, p in params.items():
            data, ctx = p.loaded
            self.assertEqual(ctx, ("cpu", 0))
            with pymodelgate.load("mnist", policy=self.policy) as m:
                self.assertTrue(np.array_equal(data.asnumpy(), m["arg:" + name]))
        inputs = [c for c in self.mx.CALLS if c[0] == "sym.var"]
        self.assertEqual([c[1] for c in inputs], ["data", "softmax_label"])
        # As Gluon: a graph variable with no saved parameter is an error.
        with self.assertRaises(ValueError) as cm:
            self.adapter.symbol_block("mnist", "data", policy=self.policy)
        self.assertIn("softmax_label", str(cm.exception))


if __name__ == "__main__":
    pmgtest.mgtest.main()
