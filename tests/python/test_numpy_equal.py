"""pymodelgate against numpy's own reader: every npy/npz the project's tests use (the real
corpus, the accepted files of tests/data/bad/npy and npz, and files numpy writes here with
every dtype, Fortran order, big-endian data, npy v1/v2/v3, savez and savez_compressed) loads
with arrays equal to numpy.load of the same file: same dtype, shape, values and memory order.
BF16 ('<V2', the MLX convention) comes back as uint16 with numpy's bytes.
Every array is read-only, and for npy and stored npz members it is a zero-copy view at the
tensor's offset in the verified file bytes (Fortran and big-endian ones included)."""
import io
import os
import zipfile

import pmgtest
from pmgtest import np

CODES = ["b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8", "c8"]


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


def stored_members(path):
    with zipfile.ZipFile(path) as z:
        return {i.filename[:-4] for i in z.infolist() if i.compress_type == zipfile.ZIP_STORED}


class NumpyEqual(pmgtest.TestCase):

    def assertSameArray(self, got, want, what):
        if want.dtype.kind == "V" and want.dtype.itemsize == 2:  # BF16: raw bits as uint16
            self.assertEqual(got.dtype, np.dtype("<u2"), what)
            self.assertEqual(got.shape, want.shape, what)
            self.assertEqual(got.tobytes(), want.tobytes(), what)
            return
        self.assertEqual(got.dtype, want.dtype, what)
        self.assertEqual(got.shape, want.shape, what)
        self.assertTrue(np.array_equal(got, want, equal_nan=want.dtype.kind in "fc"), what)
        if want.ndim > 1 and want.size > 1:
            self.assertEqual(got.flags.f_contiguous, want.flags.f_contiguous, what)
            self.assertEqual(got.flags.c_contiguous, want.flags.c_contiguous, what)

    def check_npy(self, path):
        want = np.load(path, allow_pickle=False)
        with self.load_file(path) as model:
            self.assertEqual(list(model), [""])
            got = model[""]
            self.assertSameArray(got, want, path)
            self.assertReadOnly(got)
            self.assertInsideFile(model, "", got)
            info = model.tensor_info("")
            self.assertEqual(bool(info.flags & info.BIG_ENDIAN), want.dtype.byteorder == ">")
        return 1

    def check_npz(self, path):
        stored = stored_members(path)
        with np.load(path, allow_pickle=False) as z, self.load_file(path) as model:
            self.assertEqual(sorted(model), sorted(z.files), path)
            for name in z.files:
                got = model[name]
                self.assertSameArray(got, z[name], "%s:%s" % (path, name))
                self.assertReadOnly(got)
                if name in stored:
                    self.assertInsideFile(model, name, got)
            return len(z.files)

    def test_real_corpus(self):
        n = 0
        for rel in ["npy/test.npy", "npy/python3.npy", "npy/win64python2.npy"]:
            n += self.check_npy(os.path.join(pmgtest.REAL, rel))
        for rel in ["npz/test.npz", "npz/mel_filters.npz", "npz/mlx-cvae-savez.npz"]:
            n += self.check_npz(os.path.join(pmgtest.REAL, rel))
        self.assertGreater(n, 40)

    def test_accepted_bad_corpus_files(self):
        seen = 0
        for area, check in (("npy", self.check_npy), ("npz", self.check_npz)):
            for path, code, _desc in pmgtest.expected_tsv(area):
                if code == 0:
                    with self.subTest(file=path):
                        check(path)
                        seen += 1
        self.assertGreaterEqual(seen, 25)

    def test_numpy_written_npy(self):
        seed = 0
        for code in CODES:
            for shape, fortran, big in [((2, 3), False, False), ((2, 3, 4), True, False),
                                        ((3, 2), False, True), ((2, 2, 3), True, True),
                                        ((), False, False), ((0,), False, False),
                                        ((3, 0), True, False), ((5,), True, False)]:
                if big and code in ("b1", "i1", "u1"):
                    continue
                seed += 1
                arr = make_array(code, shape, seed)
                if big:
                    arr = arr.astype(arr.dtype.newbyteorder(">"))
                if fortran:
                    arr = np.asfortranarray(arr)
                path = self.ws.path("a%d.npy" % seed)
                np.save(path, arr)
                with self.subTest(code=code, shape=shape, fortran=fortran, big=big):
                    self.check_npy(path)
        for version in ((1, 0), (2, 0), (3, 0)):
            for code in ("f4", "i8", "u2"):
                seed += 1
                arr = np.asfortranarray(make_array(code, (3, 4), seed))
                path = self.ws.path("v%d.npy" % seed)
                with open(path, "wb") as f:
                    np.lib.format.write_array(f, arr, version=version)
                self.check_npy(path)

    def test_numpy_written_npz(self):
        arrays = {}
        seed = 1000
        for code in CODES:
            for tag, shape, fortran, big in [("c", (2, 3), False, False), ("f", (3, 2, 2), True, False),
                                             ("be", (4, 3), False, True), ("bef", (2, 5), True, True),
                                             ("s", (), False, False), ("e", (0,), False, False)]:
                if big and code in ("b1", "i1", "u1"):
                    continue
                seed += 1
                arr = make_array(code, shape, seed)
                if big:
                    arr = arr.astype(arr.dtype.newbyteorder(">"))
                if fortran:
                    arr = np.asfortranarray(arr)
                arrays["%s_%s" % (code, tag)] = arr
        for writer in (np.savez, np.savez_compressed):
            buf = io.BytesIO()
            writer(buf, **arrays)
            path = self.ws.write("%s.npz" % writer.__name__, buf.getvalue())
            self.assertEqual(self.check_npz(path), len(arrays))

    def test_fortran_and_big_endian_are_views(self):
        arr = np.asfortranarray(np.arange(24, dtype=">f8").reshape(2, 3, 4))
        path = self.ws.path("fb.npy")
        np.save(path, arr)
        with self.load_file(path) as model:
            got = model[""]
            self.assertEqual(got.dtype.str, ">f8")
            self.assertEqual(got.strides, (8, 16, 48))
            self.assertIsNotNone(got.base)
            self.assertInsideFile(model, "", got)
            self.assertEqual(got[1, 2, 3], 23.0)


if __name__ == "__main__":
    pmgtest.mgtest.main()
