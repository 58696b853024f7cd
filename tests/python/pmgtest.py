"""Shared helpers for the pymodelgate tests (tests/python/test_*.py, ctest `python.*`).

They run with /usr/bin/python3 (Debian's numpy), the package from python/ in the source tree
and the built library: ctest sets MODELGATE_LIBRARY to it and MODELGATE_BIN to the tool (the
tests compare with `modelgate dump` and reuse tests/cli/mgtest.py's policy workspace)."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("MG_SOURCE_DIR", os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "cli"))
sys.path.insert(0, os.path.join(SOURCE_DIR, "python"))

import mgtest  # noqa: E402

LIBRARY = os.environ.get("MODELGATE_LIBRARY", "")
if not LIBRARY or not os.path.isfile(LIBRARY):
    sys.exit("pmgtest: MODELGATE_LIBRARY=%r is not the built library (run through ctest)" % LIBRARY)

import numpy as np  # noqa: E402
import pymodelgate  # noqa: E402

REAL = mgtest.CORPUS
BAD = os.path.join(SOURCE_DIR, "tests", "data", "bad")
ERROR_CLASSES = {1: pymodelgate.IntegrityError, 2: pymodelgate.UsageError,
                 3: pymodelgate.PolicyError, 4: pymodelgate.UntrustedSourceError,
                 5: pymodelgate.SignatureError, 6: pymodelgate.FormatError,
                 7: pymodelgate.ModelIOError, 8: pymodelgate.LimitError}


def expected_tsv(area):
    """(path, exit code, description) for every line of tests/data/bad/<area>/expected.tsv."""
    tsv = os.path.join(BAD, area, "expected.tsv")
    with open(tsv) as f:
        for line in f:
            line = line.rstrip("\n")
            if line and not line.startswith("#"):
                name, code, desc = line.split("\t", 2)
                yield os.path.join(BAD, area, name), int(code), desc


def address(arr):
    return arr.__array_interface__["data"][0]


class TestCase(mgtest.TestCase):
    """mgtest.TestCase (a fresh Workspace with a policy in self.ws) plus loading helpers."""

    def load_file(self, path, name="m"):
        """Pin one file as the only model of the policy and load it."""
        self.ws.models = [e for e in self.ws.models if e["name"] != name]
        self.ws.pin_file(name, path)
        self.ws.write_policy()
        return pymodelgate.load(name, policy=self.ws.policy_path)

    def assertReadOnly(self, arr):
        self.assertFalse(arr.flags.writeable)
        with self.assertRaises(ValueError):
            arr.flags.writeable = True
        if arr.size:
            with self.assertRaises(ValueError):
                arr[(0,) * arr.ndim] = arr[(0,) * arr.ndim]

    def assertInsideFile(self, model, name, arr):
        """Zero-copy: the array starts in the model's verified file bytes, at the tensor's
        offset, and ends inside them."""
        info = model.tensor_info(name)
        base = np.asarray(model.asset(info.file))
        lo = address(base)
        self.assertEqual(address(arr) - lo, info.offset, name)
        self.assertLessEqual(info.offset + info.nbytes, base.size, name)
