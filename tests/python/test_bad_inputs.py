"""Every input under tests/data/bad/<area>/ loads through pymodelgate with exactly the outcome
its expected.tsv gives: exit code 0 loads, any other code raises the exception class of that
status (IntegrityError ... LimitError), whose status, kind, model and message match; the
process never crashes (the whole run is in one interpreter)."""
import glob
import os

import pmgtest
from pmgtest import pymodelgate

KINDS = {1: "integrity", 2: "usage", 3: "policy", 4: "untrusted", 5: "signature",
         6: "format", 7: "io", 8: "limit"}


class BadInputs(pmgtest.TestCase):
    def test_every_bad_input(self):
        seen, refused = 0, 0
        areas = sorted(os.path.basename(os.path.dirname(p))
                       for p in glob.glob(os.path.join(pmgtest.BAD, "*", "expected.tsv")))
        self.assertEqual(areas, ["gguf", "mxnet", "npy", "npz", "safetensors", "symbol"])
        for area in areas:
            for path, code, desc in pmgtest.expected_tsv(area):
                with self.subTest(file="%s/%s" % (area, os.path.basename(path)), desc=desc):
                    seen += 1
                    if code == 0:
                        with self.load_file(path) as m:
                            self.assertEqual(len(m.files), 1)
                            for name in m:
                                m[name].tobytes()  # every byte readable
                        continue
                    with self.assertRaises(pymodelgate.Error) as cm:
                        self.load_file(path)
                    e = cm.exception
                    self.assertIs(type(e), pmgtest.ERROR_CLASSES[code],
                                  "%s: got %s (%s)" % (desc, type(e).__name__, e))
                    self.assertEqual(e.status, code)
                    self.assertEqual(e.kind, KINDS[code])
                    self.assertEqual(e.model, "m")
                    self.assertTrue(e.message)
                    self.assertTrue(str(e).startswith(KINDS[code] + ": "))
                    refused += 1
        self.assertGreater(seen, 400)
        self.assertGreater(refused, 300)


if __name__ == "__main__":
    pmgtest.mgtest.main()
