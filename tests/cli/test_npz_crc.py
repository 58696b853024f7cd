#!/usr/bin/python3
"""A stored npz big enough for the reader's block CRCs (4 MiB and more, region.c): the load
checks each stored member's CRC-32 from them, with the same verdict as the parser's own pass:
the intact file loads, one changed byte in a whole block in the middle is refused (exit 6,
bad CRC-32), confined and in the process alike."""
import io
import os
import struct
import unittest
import zipfile

import mgtest
from mgtest import FORMAT, OK


def stored_npz(n):
    """numpy.savez's layout (a stored '|u1' array "w"), written with zipfile (no numpy)."""
    dict_ = "{'descr': '|u1', 'fortran_order': False, 'shape': (%d,), }" % n
    hlen = -(-(10 + len(dict_) + 1) // 64) * 64 - 10
    header = b"\x93NUMPY\x01\x00" + struct.pack("<H", hlen) + (dict_.ljust(hlen - 1) + "\n").encode()
    body = bytes((i * 7 + 3) & 0xFF for i in range(256)) * (n // 256)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("w.npy", header + body)
    return buf.getvalue()


class StoredCrcFromBlocks(mgtest.TestCase):
    def check(self, data, sandbox):
        path = self.ws.write("m-%s.npz" % sandbox, data)
        self.ws.models = []
        self.ws.pin_file("m", path)
        doc = self.ws.policy()
        doc["sandbox"] = sandbox
        self.ws.write_policy(doc)
        return self.ws.run("inspect", "-q", "m")

    def test_intact_and_changed(self):
        data = stored_npz(6 << 20)
        self.assertEqual(data[:4], b"PK\x03\x04")
        changed = bytearray(data)
        changed[(3 << 20) + 100] ^= 0x40
        # (valgrind cannot run the seccomp filter: memcheck looks at the in-process parse.)
        for sandbox in ("off",) if mgtest.VALGRIND else ("required", "off"):
            with self.subTest(sandbox=sandbox):
                self.assertExit(self.check(data, sandbox), OK)
                r = self.check(bytes(changed), sandbox)
                self.assertExit(r, FORMAT)
                self.assertIn("bad CRC-32", r.stderr)


if __name__ == "__main__":
    mgtest.main()
