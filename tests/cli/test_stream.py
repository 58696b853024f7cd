"""Streaming verify and fetch in bounded memory, parallel range downloads and resumed fetches
(issue 17, points 1 and 5).

The bound: `verify` and `fetch` of a file far larger than the hashing window (a sparse file of
3.5 GiB; 256 MiB under the sanitizers, where hashing is slow) peak below 64 MiB of resident
memory, measured as ru_maxrss of the tool's process. Remote files come from tests/tls/server.py
on 127.0.0.1 (its /range/, /norange/, /lierange/ and /flaky/ routes).
"""
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mgtest  # noqa: E402
from mgtest import INTEGRITY, OK  # noqa: E402
import test_https  # noqa: E402  (its Server class; its tests are not collected here)

MiB = 1 << 20
GiB = 1 << 30
BOUND = 64 * MiB
HUGE = 256 * MiB if mgtest.SANITIZED else 3 * GiB + 512 * MiB
RANGED = 80 * MiB    # above the 64 MiB parallel-range threshold
RESUMABLE = 12 * MiB  # above the 8 MiB partial-file threshold, below the range threshold
DROP_AFTER = 5000000


def measured(*args):
    """(exit code, peak RSS in bytes, stdout) of one run of the tool in a fresh parent (so
    that RUSAGE_CHILDREN holds this run alone)."""
    with tempfile.TemporaryFile() as out:
        code = ("import resource, subprocess, sys\n"
                "p = subprocess.run(sys.argv[1:], stdout=sys.stdout, stderr=subprocess.DEVNULL)\n"
                "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
                "sys.stderr.write('%d %d\\n' % (p.returncode, u.ru_maxrss))\n")
        p = subprocess.run([sys.executable, "-c", code, mgtest.BIN, *args], stdout=out,
                           stderr=subprocess.PIPE, timeout=900, check=True)
        out.seek(0)
        rc, rss = p.stderr.split()[-2:]
        return int(rc), int(rss) * 1024, out.read()


def safetensors_head(total):
    """The header of a safetensors file of `total` bytes holding one U8 tensor."""
    n = total
    for _ in range(3):  # the header's length depends on the numbers in it
        hdr = json.dumps({"w": {"dtype": "U8", "shape": [n], "data_offsets": [0, n]}},
                         separators=(",", ":")).encode()
        hdr += b" " * (-len(hdr) % 8)
        n = total - 8 - len(hdr)
    return struct.pack("<Q", len(hdr)) + hdr


def openssl_sha256(path):
    out = subprocess.run(["openssl", "dgst", "-sha256", "-r", path], capture_output=True,
                         check=True, timeout=600).stdout
    return out.split()[0].decode()


class HugeLocal(mgtest.TestCase):
    """A sparse safetensors file of HUGE bytes: a header, a few written bytes, holes (made and
    hashed once for the class)."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="mgstream.")
        cls.big = os.path.join(cls.dir, "huge.safetensors")
        with open(cls.big, "wb") as f:
            f.write(safetensors_head(HUGE))
            for off in (HUGE // 3, HUGE // 2, HUGE - 1):
                f.seek(off)
                f.write(b"\x5a")
            f.truncate(HUGE)
        cls.digest = openssl_sha256(cls.big)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def setUp(self):
        super().setUp()
        self.cache = self.ws.path("cache")
        self.ws.models.append({"name": "huge", "source": self.big, "sha256": self.digest,
                               "size": HUGE})
        self.ws.extra = {"cache_dir": self.cache}
        self.ws.write_policy()

    def test_verify_and_fetch_in_bounded_memory(self):
        rc, rss, out = measured("verify", "--json", "-p", self.ws.policy_path, "huge")
        self.assertEqual(rc, OK)
        doc = json.loads(out)
        self.assertEqual(doc["files"], [{"path": "huge.safetensors", "format": "safetensors",
                                         "size": HUGE, "sha256": self.digest}])
        self.assertFalse(os.path.exists(self.cache), "verify wrote to the cache")
        if not mgtest.SANITIZED:
            self.assertLess(rss, BOUND, "verify of %d bytes peaked at %d bytes" % (HUGE, rss))

        rc, rss, out = measured("fetch", "--json", "-p", self.ws.policy_path, "huge")
        self.assertEqual(rc, OK)
        if not mgtest.SANITIZED:
            self.assertLess(rss, BOUND, "fetch of %d bytes peaked at %d bytes" % (HUGE, rss))
        path = json.loads(out)["files"][0]["cache_path"]
        self.assertEqual(path, os.path.join(self.cache, "sha256", self.digest))
        st = os.stat(path)
        self.assertEqual(st.st_size, HUGE)
        self.assertEqual(st.st_mode & 0o7777, 0o640)
        # The copy keeps the holes (all-zero pieces are not written) and the written bytes.
        self.assertLess(st.st_blocks * 512, 16 * MiB)
        with open(path, "rb") as f:
            self.assertEqual(f.read(8 + 64), safetensors_head(HUGE)[:72])
            for off in (HUGE // 3, HUGE // 2, HUGE - 1):
                f.seek(off)
                self.assertEqual(f.read(1), b"\x5a")
        self.assertEqual(sorted(os.listdir(self.cache)), ["sha256"])

    def test_changed_byte_is_refused_and_nothing_published(self):
        with open(self.big, "r+b") as f:
            f.seek(HUGE // 2 + 1)
            f.write(b"\x01")
        try:
            r = self.ws.run("fetch", "huge")
        finally:
            with open(self.big, "r+b") as f:
                f.seek(HUGE // 2 + 1)
                f.write(b"\x00")
        self.assertExit(r, INTEGRITY)
        self.assertIn("sha256 mismatch", r.stderr)
        self.assertFalse(os.path.exists(self.cache), "a refused fetch left the cache behind")


class SmallLocal(mgtest.TestCase):
    def test_sha512_pin_is_published_under_its_sha256(self):
        data = os.urandom(3 * MiB + 17)
        p = self.ws.write("m.bin", data)
        self.ws.pin_file("m", p, alg="sha512")
        self.ws.extra = {"cache_dir": self.ws.path("cache")}
        self.ws.write_policy()
        r = self.ws.run("fetch", "--json", "m")
        self.assertExit(r, OK)
        f = json.loads(r.stdout)["files"][0]
        self.assertEqual(f["sha512"], hashlib.sha512(data).hexdigest())
        self.assertEqual(f["cache_path"], self.ws.path("cache", "sha256",
                                                       hashlib.sha256(data).hexdigest()))
        with open(f["cache_path"], "rb") as fh:
            self.assertEqual(fh.read(), data)

    def test_verify_detects_formats_from_the_head(self):
        d = self.ws.path("dir")
        os.makedirs(d)
        # large enough that only its head is kept (64 KiB); a zip head named as a PyTorch file
        with open(os.path.join(d, "model.safetensors"), "wb") as f:
            f.write(safetensors_head(2 * MiB))
            f.truncate(2 * MiB)
        with open(os.path.join(d, "weights.pt"), "wb") as f:
            f.write(b"PK\x03\x04" + b"\x00" * (1 * MiB))
        with open(os.path.join(d, "config.json"), "wb") as f:
            f.write(b'{"a": 1}')
        self.ws.pin_dir("d", d)
        self.ws.write_policy()
        r = self.ws.run("verify", "--json", "d")
        self.assertExit(r, OK)
        formats = {f["path"]: f["format"] for f in json.loads(r.stdout)["files"]}
        self.assertEqual(formats, {"model.safetensors": "safetensors", "weights.pt": "pickle",
                                   "config.json": "asset"})


SERVER = None


def setUpModule():
    global SERVER
    SERVER = test_https.Server()
    # a parsable safetensors file of RANGED bytes with random contents
    head = safetensors_head(RANGED)
    SERVER.put("big.safetensors", head + os.urandom(RANGED - len(head)))
    SERVER.put("mid.bin", os.urandom(RESUMABLE))


def tearDownModule():
    if SERVER is not None:
        SERVER.stop()


def read(path):
    with open(os.path.join(SERVER.root, path), "rb") as f:
        return f.read()


class Remote(mgtest.TestCase):
    def setUp(self):
        super().setUp()
        self.cache = self.ws.path("cache")
        self.ws.extra = {"ca_file": SERVER.ca, "cache_dir": self.cache}

    def pin(self, name, route, path):
        data = read(path)
        self.ws.models.append({"name": name, "source": SERVER.url("/%s/%s" % (route, path)),
                               "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)})
        self.ws.write_policy()
        return data

    def published(self):
        sub = os.path.join(self.cache, "sha256")
        return sorted(os.listdir(sub)) if os.path.isdir(sub) else []

    def partials(self):
        sub = os.path.join(self.cache, "partial")
        return sorted(os.listdir(sub)) if os.path.isdir(sub) else []

    def ranges_since(self, before, route, path):
        got = SERVER.counts()["ranges"][before:]
        return [r for p, r in got if p == "/%s/%s" % (route, path)]

    def test_parallel_ranges_fetch_in_bounded_memory(self):
        data = self.pin("big", "range", "big.safetensors")
        before = len(SERVER.counts()["ranges"])
        rc, rss, out = measured("fetch", "--json", "-p", self.ws.policy_path, "big")
        self.assertEqual(rc, OK)
        if not mgtest.SANITIZED:
            self.assertLess(rss, BOUND)
        path = json.loads(out)["files"][0]["cache_path"]
        with open(path, "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).digest(), hashlib.sha256(data).digest())
        ranges = self.ranges_since(before, "range", "big.safetensors")
        self.assertEqual(ranges[0], "bytes=0-0")  # the probe
        spans = sorted(tuple(int(x) for x in r[6:].split("-")) for r in ranges[1:])
        self.assertGreaterEqual(len(spans), 2)
        self.assertEqual(spans[0][0], 0)
        self.assertEqual(spans[-1][1], RANGED - 1)
        for a, b in zip(spans, spans[1:]):
            self.assertEqual(a[1] + 1, b[0], spans)
        self.assertEqual(self.partials(), [])
        # fetched again: found in the cache, hashed there, nothing asked of the server
        before = SERVER.counts()["requests"]
        r = self.ws.run("fetch", "big")
        self.assertExit(r, OK)
        self.assertEqual(r.stdout.decode().splitlines(), [path])
        self.assertEqual(SERVER.counts()["requests"], before)

    def test_load_over_ranges(self):
        data = self.pin("big", "range", "big.safetensors")
        before = len(SERVER.counts()["ranges"])
        r, doc = self.ws.inspect_json("big")
        self.assertExit(r, OK)
        self.assertEqual(doc["files"][0]["sha256"], hashlib.sha256(data).hexdigest())
        self.assertEqual(doc["tensors"][0]["name"], "w")
        self.assertGreaterEqual(len(self.ranges_since(before, "range", "big.safetensors")), 3)
        r = self.ws.run("dump", "-q", "big", "w")
        self.assertExit(r, OK)
        self.assertEqual(hashlib.sha256(r.stdout).digest(),
                         hashlib.sha256(data[len(safetensors_head(RANGED)):]).digest())

    def test_verify_streams_one_request(self):
        self.pin("big", "range", "big.safetensors")
        before = SERVER.counts()["requests"]
        rc, rss, out = measured("verify", "--json", "-p", self.ws.policy_path, "big")
        self.assertEqual(rc, OK)
        if not mgtest.SANITIZED:
            self.assertLess(rss, BOUND)
        self.assertEqual(json.loads(out)["files"][0]["format"], "safetensors")
        self.assertEqual(SERVER.counts()["requests"], before + 1)
        self.assertFalse(os.path.exists(self.cache))

    def test_server_without_ranges_falls_back_to_one_stream(self):
        data = self.pin("big", "norange", "big.safetensors")
        before = SERVER.counts()
        r = self.ws.run("fetch", "big")
        self.assertExit(r, OK)
        after = SERVER.counts()
        paths = after["paths"][len(before["paths"]):]
        self.assertEqual(paths, ["/norange/big.safetensors"] * 2)  # the probe, then the file
        self.assertEqual(self.published(), [hashlib.sha256(data).hexdigest()])

    def test_lying_content_range_is_refused(self):
        self.pin("big", "lierange", "big.safetensors")
        r = self.ws.run("fetch", "big")
        self.assertExit(r, INTEGRITY)
        self.assertIn("Content-Range", r.stderr)
        self.assertEqual(self.published(), [])
        self.assertEqual(self.partials(), [])
        r = self.ws.run("inspect", "big")
        self.assertExit(r, INTEGRITY)

    def drop(self, n):
        p = os.path.join(SERVER.root, "mid.bin.drop")
        if n is None:
            os.unlink(p)
        else:
            with open(p, "w") as f:
                f.write(str(n))

    def interrupted(self):
        data = self.pin("mid", "flaky", "mid.bin")
        self.drop(DROP_AFTER)
        try:
            r = self.ws.run("fetch", "mid")
        finally:
            self.drop(None)
        self.assertNotEqual(r.returncode, OK)
        self.assertEqual(self.published(), [])
        parts = self.partials()
        self.assertEqual(parts, ["sha256-" + hashlib.sha256(data).hexdigest()])
        part = os.path.join(self.cache, "partial", parts[0])
        st = os.stat(part)
        self.assertEqual(st.st_mode & 0o7777, 0o600)
        self.assertEqual(os.stat(os.path.dirname(part)).st_mode & 0o7777, 0o700)
        self.assertGreater(st.st_size, 0)
        self.assertLessEqual(st.st_size, DROP_AFTER)
        with open(part, "rb") as f:
            self.assertEqual(f.read(), data[:st.st_size])
        return data, part, st.st_size

    def test_interrupted_fetch_resumes(self):
        data, part, have = self.interrupted()
        before = len(SERVER.counts()["ranges"])
        r = self.ws.run("fetch", "mid")
        self.assertExit(r, OK)
        self.assertEqual(self.ranges_since(before, "flaky", "mid.bin"),
                         ["bytes=%d-%d" % (have, RESUMABLE - 1)])
        self.assertEqual(self.published(), [hashlib.sha256(data).hexdigest()])
        self.assertEqual(self.partials(), [])
        with open(os.path.join(self.cache, "sha256", hashlib.sha256(data).hexdigest()), "rb") as f:
            self.assertEqual(f.read(), data)

    def test_tampered_partial_is_discarded_and_fetched_again(self):
        data, part, have = self.interrupted()
        with open(part, "r+b") as f:
            f.seek(have // 2)
            b = f.read(1)
            f.seek(have // 2)
            f.write(bytes([b[0] ^ 1]))
        before = SERVER.counts()
        r = self.ws.run("fetch", "mid")
        self.assertExit(r, OK)
        after = SERVER.counts()
        # the resumed range, then one clean download from the start (no Range)
        self.assertEqual(after["paths"][len(before["paths"]):], ["/flaky/mid.bin"] * 2)
        self.assertEqual(self.ranges_since(len(before["ranges"]), "flaky", "mid.bin"),
                         ["bytes=%d-%d" % (have, RESUMABLE - 1)])
        name = hashlib.sha256(data).hexdigest()
        self.assertEqual(self.published(), [name])
        self.assertEqual(self.partials(), [])
        with open(os.path.join(self.cache, "sha256", name), "rb") as f:
            self.assertEqual(f.read(), data)

    def test_sharded_manifest_file_resumes_and_is_checked_per_shard(self):
        # a signed manifest with sha256_shards (1 MiB) for a 12 MiB file: its partial file is
        # named by the shard root, and a resumed file is hashed shard by shard
        key = self.ws.path("release")
        self.assertExit(mgtest.run_bin("keygen", "-t", "ed25519", "-o", key), OK)
        rel = "sharded-%d" % os.getpid()
        d = os.path.join(SERVER.root, rel)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        data = os.urandom(RESUMABLE)
        with open(os.path.join(d, "w.bin"), "wb") as f:
            f.write(data)
        self.assertExit(mgtest.run_bin("sign", "-k", key + ".key", "-n", "sh", "--shard-size",
                                       str(MiB), d), OK)
        self.ws.extra["keys"] = {"release": {"public_key": key + ".pub"}}
        self.ws.models.append({"name": "sh", "source": SERVER.url("/flaky/%s/" % rel),
                               "manifest": {"keys": ["release"]}})
        self.ws.write_policy()
        drop = os.path.join(d, "w.bin.drop")
        with open(drop, "w") as f:
            f.write(str(DROP_AFTER))
        try:
            r = self.ws.run("fetch", "sh")
        finally:
            os.unlink(drop)
        self.assertNotEqual(r.returncode, OK)
        parts = self.partials()
        self.assertEqual(len(parts), 1)
        self.assertTrue(parts[0].startswith("shards-"), parts)
        part = os.path.join(self.cache, "partial", parts[0])
        have = os.path.getsize(part)
        self.assertGreater(have, MiB + 10)
        with open(part, "r+b") as f:  # shard 1 changed: found when the whole file is hashed
            f.seek(MiB + 7)
            b = f.read(1)
            f.seek(MiB + 7)
            f.write(bytes([b[0] ^ 1]))
        before = len(SERVER.counts()["ranges"])
        r = self.ws.run("fetch", "sh")
        self.assertExit(r, OK)
        self.assertEqual(self.ranges_since(before, "flaky", rel + "/w.bin"),
                         ["bytes=%d-%d" % (have, RESUMABLE - 1)])
        self.assertIn(hashlib.sha256(data).hexdigest(), self.published())
        self.assertEqual(self.partials(), [])
        with open(os.path.join(self.cache, "sha256", hashlib.sha256(data).hexdigest()), "rb") as f:
            self.assertEqual(f.read(), data)

    def test_partial_of_other_bytes_never_published(self):
        # a partial file as long as the whole file, but not its bytes: refused by its digest,
        # then downloaded cleanly
        data = self.pin("mid", "flaky", "mid.bin")
        name = "sha256-" + hashlib.sha256(data).hexdigest()
        os.makedirs(os.path.join(self.cache, "partial"), 0o700)
        with open(os.path.join(self.cache, "partial", name), "wb") as f:
            f.write(b"\x00" * RESUMABLE)
        before = SERVER.counts()["requests"]
        r = self.ws.run("fetch", "mid")
        self.assertExit(r, OK)
        self.assertEqual(SERVER.counts()["requests"], before + 1)
        self.assertEqual(self.partials(), [])
        with open(os.path.join(self.cache, "sha256", hashlib.sha256(data).hexdigest()), "rb") as f:
            self.assertEqual(f.read(), data)


if __name__ == "__main__":
    mgtest.main()
