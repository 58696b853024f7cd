"""pymodelgate against the CLI: every tensor of the safetensors, GGUF and MXNet files the tests
use (the real corpus, the accepted files of tests/data/bad, and safetensors with BF16 and F8
written here) has exactly the bytes `modelgate dump` prints, with the dtype name, shape, byte
size and offset `inspect --json` reports. Types numpy lacks come as raw integers: BF16 as
uint16, F8 as uint8, quantized GGUF blocks as a 1-D uint8 array of nbytes."""
import json
import os
import struct

import pmgtest
from pmgtest import np

RAW_TYPES = {"BF16": "<u2", "F8_E4M3": "|u1", "F8_E5M2": "|u1"}


def safetensors_bytes(tensors):
    """tensors: list of (name, dtype name, shape, raw bytes)."""
    header, data = {}, b""
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data


class FormatsAgainstDump(pmgtest.TestCase):

    def compare_with_cli(self, path, zero_copy=True):
        """Load `path` through pymodelgate and through the CLI; every tensor must agree.
        Returns the number of tensors compared."""
        model = self.load_file(path)
        r, doc = self.ws.inspect_json("m")
        self.assertExit(r, 0, path)
        tensors = {t["name"]: t for t in doc["tensors"]}
        self.assertEqual(sorted(model), sorted(tensors), path)
        for name, want in tensors.items():
            what = "%s:%r" % (os.path.basename(path), name)
            arr = model[name]
            info = model.tensor_info(name)
            self.assertEqual(info.dtype, want["dtype"], what)
            self.assertEqual(list(info.shape), want["shape"], what)
            self.assertEqual(info.nbytes, want["nbytes"], what)
            self.assertEqual(info.offset, want["offset"], what)
            if want["dtype"] in RAW_TYPES:
                self.assertEqual(arr.dtype, np.dtype(RAW_TYPES[want["dtype"]]), what)
            if info.nbytes and arr.dtype == np.uint8 and arr.shape != tuple(want["shape"]):
                self.assertEqual(arr.shape, (info.nbytes,), what)  # quantized blocks
                self.assertNotIn(want["dtype"], RAW_TYPES, what)
            self.assertReadOnly(arr)
            if zero_copy and info.nbytes:
                self.assertInsideFile(model, name, arr)
            dump = self.ws.run("dump", "m", name)
            self.assertExit(dump, 0, what)
            self.assertEqual(arr.tobytes(order="C"), dump.stdout, what)
        model.close()
        return len(tensors)

    def test_real_safetensors(self):
        n = 0
        for f in sorted(os.listdir(os.path.join(pmgtest.REAL, "safetensors"))):
            n += self.compare_with_cli(os.path.join(pmgtest.REAL, "safetensors", f))
        self.assertGreater(n, 25)

    def test_real_gguf(self):
        n = self.compare_with_cli(os.path.join(pmgtest.REAL, "gguf", "llama-2-tiny-random.gguf"))
        self.assertEqual(n, 12)
        with self.load_file(os.path.join(pmgtest.REAL, "gguf", "ggml-vocab-falcon.gguf-v2.gguf")) as m:
            self.assertEqual(len(m), 0)
            self.assertEqual(m.files[0].format, "gguf")
            self.assertEqual(m.files[0].metadata["general.architecture"], "falcon")

    def test_real_mxnet_params(self):
        n = 0
        for root, _dirs, names in os.walk(os.path.join(pmgtest.REAL, "mxnet")):
            for f in sorted(names):
                if f.endswith(".params") or f.endswith(".v0"):
                    n += self.compare_with_cli(os.path.join(root, f))
        self.assertGreater(n, 15)

    def test_accepted_bad_corpus_files(self):
        seen = 0
        quantized = set()
        for area in ("safetensors", "gguf", "mxnet"):
            for path, code, _desc in pmgtest.expected_tsv(area):
                if code != 0 or os.path.basename(path).startswith("15-20k"):
                    continue  # 20,000 tensors: one `dump` each is minutes, see below
                with self.subTest(file=path):
                    self.compare_with_cli(path)
                    seen += 1
                    with self.load_file(path) as m:
                        quantized |= {m.tensor_info(k).dtype for k in m
                                      if m.tensor_info(k).dtype.startswith(("Q", "IQ", "TQ"))}
        self.assertGreater(seen, 25)
        self.assertGreaterEqual(len(quantized), 10, quantized)

    def test_many_tensors(self):
        path = os.path.join(pmgtest.BAD, "safetensors", "15-20k-tensors.safetensors")
        with self.load_file(path) as m:
            self.assertEqual(len(m), 20000)
            with open(path, "rb") as f:
                raw = f.read()
            for name in m:
                info = m.tensor_info(name)
                self.assertEqual(m[name].tobytes(), raw[info.offset:info.offset + info.nbytes])

    def test_bf16_and_f8_safetensors(self):
        rng = np.random.default_rng(7)
        bf = rng.integers(0, 1 << 16, 12, dtype=np.uint16)
        e4 = rng.integers(0, 256, 10, dtype=np.uint8)
        e5 = rng.integers(0, 256, 6, dtype=np.uint8)
        path = self.ws.write("raw.safetensors", safetensors_bytes([
            ("bf", "BF16", [3, 4], bf.astype("<u2").tobytes()),
            ("e4", "F8_E4M3", [2, 5], e4.tobytes()),
            ("e5", "F8_E5M2", [6], e5.tobytes())]))
        self.assertEqual(self.compare_with_cli(path), 3)
        with self.load_file(path) as m:
            self.assertTrue(np.array_equal(m["bf"], bf.reshape(3, 4)))
            self.assertTrue(np.array_equal(m["e4"], e4.reshape(2, 5)))
            self.assertEqual(m.tensor_info("e5").dtype, "F8_E5M2")


if __name__ == "__main__":
    pmgtest.mgtest.main()
