"""numpy writes, modelgate reads: every supported dtype, scalars and empty arrays, Fortran
order and big-endian data, npy v1/v2/v3, np.savez and np.savez_compressed, and BF16 as
'<V2' written by hand (the MLX convention).

For each array, `modelgate dump` must print exactly
arr.astype(arr.dtype.newbyteorder('<')).tobytes(order='C'), and `inspect --json` must give
the same dtype, shape, byte size and data offset as numpy's own files say. The real corpus
files get the verdicts corpus/real/README.md gives them.
"""
import io
import os
import struct
import sys
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mgtest  # noqa: E402

import numpy as np  # noqa: E402  (Debian's python3-numpy, /usr/bin/python3)

DTYPES = {
    "b1": "BOOL", "i1": "I8", "i2": "I16", "i4": "I32", "i8": "I64",
    "u1": "U8", "u2": "U16", "u4": "U32", "u8": "U64",
    "f2": "F16", "f4": "F32", "f8": "F64", "c8": "C64",
}


def make_array(code, shape, seed):
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape)) if shape else 1
    if code == "b1":
        a = rng.integers(0, 2, n).astype(np.bool_)
    elif code[0] in "iu":
        info = np.iinfo(np.dtype("<" + code))
        a = rng.integers(info.min, info.max, n, dtype=np.dtype("<" + code), endpoint=True)
    elif code == "c8":
        a = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64)
    else:
        a = (rng.standard_normal(n) * 100).astype(np.dtype("<" + code))
    return a.reshape(shape)


def expected_bytes(arr):
    return arr.astype(arr.dtype.newbyteorder("<")).tobytes(order="C")


def dtype_name(arr):
    return DTYPES[arr.dtype.str[1:]]


def npy_bytes(arr, version=None):
    buf = io.BytesIO()
    if version is None:
        np.save(buf, arr)
    else:
        np.lib.format.write_array(buf, arr, version=version)
    return buf.getvalue()


def bf16_npy(shape, raw):
    h = "{'descr': '<V2', 'fortran_order': False, 'shape': %s, }" % (
        "(%s)" % "".join("%d," % d for d in shape))
    h = h.encode()
    h += b" " * ((-(10 + len(h) + 1)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h + raw


def npz_offsets(path):
    """Tensor offset per member as SPEC §4 defines it: absolute for stored members, inside the
    decompressed member for deflated ones."""
    out = {}
    with open(path, "rb") as f:
        data = f.read()
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            member = z.read(info.filename)
            hlen = struct.unpack("<H", member[8:10])[0] + 10 if member[6] == 1 else \
                struct.unpack("<I", member[8:12])[0] + 12
            if info.compress_type == zipfile.ZIP_STORED:
                lh = info.header_offset
                nlen, elen = struct.unpack("<HH", data[lh + 26:lh + 30])
                out[info.filename[:-4]] = lh + 30 + nlen + elen + hlen
            else:
                out[info.filename[:-4]] = hlen
    return out


class NumpyInterop(mgtest.TestCase):

    def setUp(self):
        super().setUp()
        self.n = 0

    def add_model(self, filename, data):
        path = self.ws.write(filename, data)
        self.n += 1
        name = "m%d" % self.n
        self.ws.pin_file(name, path)
        return name

    def check_tensor(self, model, tensor, want, doc, offset=None):
        """`want`: (dtype name, shape list, expected bytes)."""
        dtype, shape, raw = want
        entries = [t for t in doc["tensors"] if t["name"] == tensor]
        self.assertEqual(len(entries), 1, "%s/%r in %r" % (model, tensor, doc["tensors"]))
        t = entries[0]
        self.assertEqual(t["dtype"], dtype, "%s/%r" % (model, tensor))
        self.assertEqual(t["shape"], shape, "%s/%r" % (model, tensor))
        self.assertEqual(t["nbytes"], len(raw), "%s/%r" % (model, tensor))
        if offset is not None:
            self.assertEqual(t["offset"], offset, "%s/%r" % (model, tensor))
        r = self.ws.run("dump", model, tensor)
        self.assertExit(r, 0, "dump %s %r" % (model, tensor))
        self.assertEqual(r.stdout, raw, "dump %s %r: bytes differ" % (model, tensor))

    def inspect_ok(self, model):
        r, doc = self.ws.inspect_json(model)
        self.assertExit(r, 0, "inspect %s" % model)
        self.assertTrue(doc["ok"])
        return doc

    def test_npy_files(self):
        cases = []  # (model, want, offset)
        seed = 0
        for code in DTYPES:
            for shape, fortran, big in [((2, 3), False, False), ((2, 3, 4), True, False),
                                        ((3, 2), False, True), ((2, 2, 3), True, True),
                                        ((), False, False), ((0,), False, False), ((5,), True, False)]:
                if big and code in ("b1", "i1", "u1"):
                    continue
                seed += 1
                arr = make_array(code, shape, seed)
                if big:
                    arr = arr.astype(arr.dtype.newbyteorder(">"))
                if fortran:
                    arr = np.asfortranarray(arr)
                data = npy_bytes(arr)
                model = self.add_model("a%d.npy" % seed, data)
                raw = expected_bytes(arr)
                cases.append((model, (dtype_name(arr), list(shape), raw), len(data) - len(raw)))
        for version in ((1, 0), (2, 0), (3, 0)):
            for code in ("f4", "i8", "u2"):
                seed += 1
                arr = np.asfortranarray(make_array(code, (3, 4), seed))
                data = npy_bytes(arr, version)
                self.assertEqual(data[6], version[0])
                model = self.add_model("v%d.npy" % seed, data)
                raw = expected_bytes(arr)
                cases.append((model, (dtype_name(arr), [3, 4], raw), len(data) - len(raw)))
        bf = bytes(range(12))
        data = bf16_npy((2, 3), bf)
        model = self.add_model("bf16.npy", data)
        cases.append((model, ("BF16", [2, 3], bf), len(data) - len(bf)))
        self.ws.write_policy()
        for model, want, offset in cases:
            doc = self.inspect_ok(model)
            self.assertEqual(len(doc["tensors"]), 1)
            self.assertEqual(doc["files"][0]["format"], "npy")
            self.check_tensor(model, "", want, doc, offset)

    def test_npz_files(self):
        arrays = {}
        seed = 1000
        for code in DTYPES:
            for tag, shape, fortran, big in [("c", (2, 3), False, False), ("f", (3, 2, 2), True, False),
                                             ("be", (4, 3), False, True), ("bef", (2, 5), True, True),
                                             ("s", (), False, False), ("e", (0,), False, False),
                                             ("e2", (3, 0), False, False)]:
                if big and code in ("b1", "i1", "u1"):
                    continue
                seed += 1
                arr = make_array(code, shape, seed)
                if big:
                    arr = arr.astype(arr.dtype.newbyteorder(">"))
                if fortran:
                    arr = np.asfortranarray(arr)
                arrays["%s_%s" % (code, tag)] = arr
        bf = bytes(range(40))
        for writer in (np.savez, np.savez_compressed):
            buf = io.BytesIO()
            writer(buf, **arrays)
            data = buf.getvalue()
            # A BF16 member written by hand, like MLX does.
            out = io.BytesIO(data)
            with zipfile.ZipFile(out, "a", zipfile.ZIP_STORED if writer is np.savez
                                 else zipfile.ZIP_DEFLATED) as z:
                z.writestr("bf16.npy", bf16_npy((4, 5), bf))
            path_name = "%s.npz" % writer.__name__
            model = self.add_model(path_name, out.getvalue())
            self.ws.write_policy()
            offsets = npz_offsets(self.ws.path(path_name))
            doc = self.inspect_ok(model)
            self.assertEqual(doc["files"][0]["format"], "npz")
            self.assertEqual(sorted(t["name"] for t in doc["tensors"]),
                             sorted(list(arrays) + ["bf16"]))
            for name, arr in arrays.items():
                self.check_tensor(model, name, (dtype_name(arr), list(arr.shape), expected_bytes(arr)),
                                  doc, offsets[name])
            self.check_tensor(model, "bf16", ("BF16", [4, 5], bf), doc, offsets["bf16"])

    def test_real_corpus_verdicts(self):
        accepted = ["npy/test.npy", "npy/python3.npy", "npy/win64python2.npy",
                    "npz/test.npz", "npz/mel_filters.npz", "npz/mlx-cvae-savez.npz"]
        refused = ["npy/py3-objarr.npy", "npy/py2-objarr.npy", "npz/py3-objarr.npz",
                   "npz/py3-arr-savez.npz", "npz/py3-arr-savez-compressed.npz"]
        models = {}
        for i, rel in enumerate(accepted + refused):
            models[rel] = "c%d" % i
            self.ws.pin_file(models[rel], os.path.join(mgtest.CORPUS, rel))
        self.ws.write_policy()
        for rel in refused:
            r = self.ws.run("inspect", models[rel])
            self.assertExit(r, mgtest.FORMAT, rel)
            if "objarr" in rel:
                self.assertIn("pickle", r.stderr)
        for rel in accepted:
            path = os.path.join(mgtest.CORPUS, rel)
            doc = self.inspect_ok(models[rel])
            if rel.endswith(".npy"):
                arr = np.load(path)
                with open(path, "rb") as f:
                    size = len(f.read())
                raw = expected_bytes(arr)
                self.check_tensor(models[rel], "", (dtype_name(arr), list(arr.shape), raw), doc,
                                  size - len(raw))
            else:
                offsets = npz_offsets(path)
                with np.load(path) as z:
                    self.assertEqual(len(doc["tensors"]), len(z.files))
                    for name in z.files:
                        arr = z[name]
                        self.check_tensor(models[rel], name,
                                          (dtype_name(arr), list(arr.shape), expected_bytes(arr)),
                                          doc, offsets[name])


if __name__ == "__main__":
    mgtest.main()
