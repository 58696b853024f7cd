"""Remote models over HTTPS through the command line (SPEC §2, §5, §6, §7).

Every test talks to tests/tls/server.py, started here on 127.0.0.1 (never any other address)
with certificates made by tests/tls/make_certs.sh: a test CA (the policy's ca_file), a good
certificate for 127.0.0.1/localhost, one for another host name, an expired one and a
self-signed one. The server counts connections and requests, so refused cases can show that
nothing was asked for; it stops by itself after 600 s.
"""
import atexit
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mgtest  # noqa: E402

TLS_DIR = os.path.join(mgtest.SOURCE_DIR, "tests", "tls")
REAL = os.path.join(mgtest.CORPUS, "safetensors")
SINGLE = "voices.safetensors"
DIR_FILES = ["mlx-lora-adapters.safetensors", "overall.safetensors", "e.safetensors"]

# Never through a proxy: the server is on 127.0.0.1.
for var in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "http_proxy", "HTTP_PROXY"):
    os.environ.pop(var, None)
os.environ["no_proxy"] = "*"


def sha256_bytes(data):
    return hashlib.sha256(data).hexdigest()


class Server:
    """tests/tls/server.py with four listeners, serving `root`."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="mgtls.")
        self.certs = os.path.join(self.dir, "certs")
        self.root = os.path.join(self.dir, "root")
        os.makedirs(self.root)
        subprocess.run(["/bin/sh", os.path.join(TLS_DIR, "make_certs.sh"), self.certs], check=True,
                       timeout=60)
        self.ca = os.path.join(self.certs, "ca.pem")
        names = ["good", "wronghost", "expired", "selfsigned"]
        listeners = ["%s=%s/%s.pem:%s/%s.key" % (n, self.certs, n, self.certs, n) for n in names]
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", os.path.join(TLS_DIR, "server.py"), "--dir", self.dir,
             "--root", self.root, "--lifetime", "600", *listeners])
        # However this process ends (a failed setUpModule included), the server goes with it:
        # a server left running holds ctest's pipe open until its lifetime ends.
        atexit.register(self.stop)
        ports = os.path.join(self.dir, "ports.json")
        for _ in range(200):  # at most 20 s
            if os.path.exists(ports) or self.proc.poll() is not None:
                break
            time.sleep(0.1)
        with open(ports) as f:
            self.ports = json.load(f)

    def put(self, rel, data):
        p = os.path.join(self.root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)

    def url(self, path, listener="good", host="127.0.0.1"):
        return "https://%s:%d%s" % (host, self.ports[listener], path)

    def counts(self, listener="good"):
        with open(os.path.join(self.dir, "count.json")) as f:
            return json.load(f)[listener]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


SERVER = None


def setUpModule():
    global SERVER
    SERVER = Server()
    with open(os.path.join(REAL, SINGLE), "rb") as f:
        data = f.read()
    SERVER.put(SINGLE, data)
    tampered = bytearray(data)
    tampered[len(data) // 2] ^= 0x01
    SERVER.put("tampered/" + SINGLE, bytes(tampered))
    for name in DIR_FILES:
        with open(os.path.join(REAL, name), "rb") as f:
            SERVER.put("dir/" + name, f.read())


def tearDownModule():
    if SERVER is not None:
        SERVER.stop()


class Https(mgtest.TestCase):
    def setUp(self):
        super().setUp()
        self.cache = self.ws.path("cache")
        self.audit = self.ws.path("audit.jsonl")
        self.ws.extra = {"ca_file": SERVER.ca, "cache_dir": self.cache, "audit_log": self.audit}
        with open(os.path.join(REAL, SINGLE), "rb") as f:
            self.single = f.read()

    # ---- helpers ----------------------------------------------------------------------

    def pin_remote(self, name, url, data, size=True, **extra):
        entry = {"name": name, "source": url, "sha256": sha256_bytes(data)}
        if size:
            entry["size"] = len(data)
        entry.update(extra)
        self.ws.models.append(entry)
        return entry

    def cache_files(self):
        found = []
        for root, dirs, files in os.walk(self.cache):
            found += [os.path.join(root, f) for f in files]
        return found

    def assert_cache_empty(self):
        self.assertEqual(self.cache_files(), [], "a refused fetch left files in cache_dir")

    def audit_events(self):
        if not os.path.exists(self.audit):
            return []
        with open(self.audit) as f:
            return [json.loads(line) for line in f if line.strip()]

    def assert_fetch_audited(self, result, error=None, model=None):
        ev = [e for e in self.audit_events() if e.get("event") == "fetch"]
        self.assertTrue(ev, "no fetch event in the audit log: %r" % self.audit_events())
        last = ev[-1]
        self.assertEqual(last["result"], result, last)
        if error is not None:
            self.assertEqual(last.get("error"), error, last)
        if model is not None:
            self.assertEqual(last.get("model"), model, last)
        return last

    def refused(self, source, code, error_kind, model=None, env=None):
        r = self.ws.run("fetch", source, env=env)
        self.assertExit(r, code, source)
        self.assertEqual(r.stdout, b"")
        self.assertIn("modelgate: %s:" % error_kind, r.stderr)
        self.assert_cache_empty()
        return r

    # ---- success ----------------------------------------------------------------------

    def test_fetch_single_file(self):
        url = SERVER.url("/f/" + SINGLE)
        self.pin_remote("voices", url, self.single)
        self.ws.write_policy()
        before = SERVER.counts()["requests"]
        r = self.ws.run("fetch", "voices")
        self.assertExit(r, 0)
        lines = r.stdout.decode().splitlines()
        want = os.path.join(self.cache, "sha256", sha256_bytes(self.single))
        self.assertEqual(lines, [want])
        with open(want, "rb") as f:
            self.assertEqual(f.read(), self.single)
        self.assertEqual(os.stat(want).st_mode & 0o7777, 0o640)
        self.assertEqual(self.cache_files(), [want])
        self.assertEqual(SERVER.counts()["requests"], before + 1)
        ev = self.assert_fetch_audited("ok", model="voices")
        self.assertEqual(ev["source"], url)
        # by its exact source too, and again: the same single path
        r = self.ws.run("fetch", url)
        self.assertExit(r, 0)
        self.assertEqual(r.stdout.decode().splitlines(), [want])
        self.assertEqual(self.cache_files(), [want])

    def test_libcurl_opened_only_to_fetch(self):
        """libcurl is not linked (src/curl_api.c opens it at the first HTTPS transfer): a
        local load never loads it and works without it; a fetch loads it, and is exit 7 with
        the reason when the library by that name cannot be loaded."""
        url = SERVER.url("/f/" + SINGLE)
        self.pin_remote("voices", url, self.single)
        self.ws.pin_file("local", os.path.join(REAL, SINGLE))
        self.ws.write_policy()
        bad = tempfile.mkdtemp(prefix="mgnocurl.")
        self.addCleanup(shutil.rmtree, bad)
        for soname in ("libcurl.so.4", "libcurl-gnutls.so.4"):
            with open(os.path.join(bad, soname), "w") as f:
                f.write("not a library\n")
        before = SERVER.counts()["requests"]
        r = self.ws.run("fetch", "voices", env={"LD_LIBRARY_PATH": bad})
        self.assertExit(r, 7)
        self.assertIn("HTTPS is not available: cannot open libcurl", r.stderr)
        self.assertEqual(SERVER.counts()["requests"], before)
        self.assert_cache_empty()
        r = self.ws.run("inspect", "-q", "local", env={"LD_LIBRARY_PATH": bad})
        self.assertExit(r, 0)
        # LD_DEBUG=libs names every library as its initialiser runs
        r = self.ws.run("inspect", "-q", "local", env={"LD_DEBUG": "libs"})
        self.assertExit(r, 0)
        self.assertIn("calling init: ", r.stderr)
        self.assertNotIn("libcurl", r.stderr)
        r = self.ws.run("fetch", "voices", env={"LD_DEBUG": "libs"})
        self.assertExit(r, 0)
        self.assertRegex(r.stderr, r"calling init: \S*libcurl")
        self.assertEqual(SERVER.counts()["requests"], before + 1)

    def test_remote_loads_like_local(self):
        url = SERVER.url("/f/" + SINGLE)
        self.pin_remote("remote", url, self.single)
        self.ws.pin_file("local", os.path.join(REAL, SINGLE))
        self.ws.write_policy()
        r1, remote = self.ws.inspect_json("remote")
        self.assertExit(r1, 0)
        r2, local = self.ws.inspect_json("local")
        self.assertExit(r2, 0)
        self.assertEqual(remote["tensors"], local["tensors"])
        self.assertEqual([f["sha256"] for f in remote["files"]],
                         [sha256_bytes(self.single)])
        for t in local["tensors"]:
            a = self.ws.run("dump", "-q", "remote", t["name"])
            b = self.ws.run("dump", "-q", "local", t["name"])
            self.assertExit(a, 0)
            self.assertExit(b, 0)
            self.assertEqual(a.stdout, b.stdout)
            self.assertEqual(len(a.stdout), t["nbytes"])

    def test_fetch_directory(self):
        files = {}
        for name in DIR_FILES:
            with open(os.path.join(REAL, name), "rb") as f:
                data = f.read()
            files[name] = {"sha256": sha256_bytes(data), "size": len(data)}
        self.ws.models.append({"name": "dir", "source": SERVER.url("/f/dir/"), "files": files})
        self.ws.write_policy()
        r = self.ws.run("fetch", "dir")
        self.assertExit(r, 0)
        got = sorted(r.stdout.decode().splitlines())
        want = sorted(os.path.join(self.cache, "sha256", f["sha256"]) for f in files.values())
        self.assertEqual(got, want)
        self.assertEqual(sorted(self.cache_files()), want)
        r, doc = self.ws.inspect_json("dir")
        self.assertExit(r, 0)
        self.assertEqual(sorted(f["path"] for f in doc["files"]), sorted(DIR_FILES))

    def test_same_host_redirect_followed(self):
        self.pin_remote("viaredirect", SERVER.url("/r/" + SINGLE), self.single)
        self.ws.write_policy()
        before = SERVER.counts()["requests"]
        r = self.ws.run("fetch", "viaredirect")
        self.assertExit(r, 0)
        self.assertEqual(SERVER.counts()["requests"], before + 2)

    # ---- refused before any byte ------------------------------------------------------

    def test_3_http_source_is_a_policy_error(self):
        self.pin_remote("plain", "http://127.0.0.1:%d/f/%s" % (SERVER.ports["good"], SINGLE),
                        self.single)
        self.ws.write_policy()
        before = SERVER.counts()
        r = self.ws.run("fetch", "plain")
        self.assertExit(r, mgtest.POLICY)
        self.assertEqual(SERVER.counts()["connections"], before["connections"])
        self.assert_cache_empty()

    def test_4_unlisted_url(self):
        self.pin_remote("voices", SERVER.url("/f/" + SINGLE), self.single)
        self.ws.write_policy()
        before = SERVER.counts()
        for src in (SERVER.url("/f/tampered/" + SINGLE), SERVER.url("/f/" + SINGLE + "x"),
                    SERVER.url("/f/" + SINGLE, host="localhost"), "unknown-model"):
            self.refused(src, mgtest.UNTRUSTED, "untrusted")
        self.assertEqual(SERVER.counts()["connections"], before["connections"])
        self.assertEqual(SERVER.counts()["requests"], before["requests"])
        self.assert_fetch_audited("rejected", "untrusted")

    # ---- integrity ----------------------------------------------------------------------

    def test_1_tampered_mirror(self):
        # pinned to the real bytes, served a copy with one bit flipped
        self.pin_remote("mirror", SERVER.url("/f/tampered/" + SINGLE), self.single)
        self.ws.write_policy()
        self.refused("mirror", mgtest.INTEGRITY, "integrity")
        ev = self.assert_fetch_audited("rejected", "integrity", model="mirror")
        self.assertEqual(ev.get("expected"), sha256_bytes(self.single))
        r = self.ws.run("inspect", "mirror")
        self.assertExit(r, mgtest.INTEGRITY)

    def test_1_oversize_and_truncated(self):
        small = dict(sha256=sha256_bytes(self.single[:-1]), size=len(self.single) - 1)
        for route in ("/f/", "/chunked/"):
            self.ws.models = [{"name": "big", "source": SERVER.url(route + SINGLE), **small}]
            self.ws.write_policy()
            self.refused("big", mgtest.INTEGRITY, "integrity")
            self.assert_fetch_audited("rejected", "integrity")
        self.ws.models = []
        self.pin_remote("cut", SERVER.url("/truncated/" + SINGLE), self.single)
        self.ws.write_policy()
        self.refused("cut", mgtest.INTEGRITY, "integrity")

    # ---- transport ----------------------------------------------------------------------

    def test_7_tls_failures(self):
        for listener in ("wronghost", "expired", "selfsigned"):
            self.ws.models = []
            self.pin_remote("tls", SERVER.url("/f/" + SINGLE, listener=listener), self.single)
            self.ws.write_policy()
            before = SERVER.counts(listener)
            r = self.refused("tls", mgtest.IO, "io")
            self.assertIn("TLS", r.stderr)
            self.assertEqual(SERVER.counts(listener)["requests"], before["requests"])
            self.assertGreater(SERVER.counts(listener)["connections"], before["connections"])
            self.assert_fetch_audited("rejected", "io")
        # the good server is not trusted without the test CA (system store)
        self.ws.models = []
        self.pin_remote("tls", SERVER.url("/f/" + SINGLE), self.single)
        del self.ws.extra["ca_file"]
        self.ws.write_policy()
        before = SERVER.counts()
        self.refused("tls", mgtest.IO, "io")
        self.assertEqual(SERVER.counts()["requests"], before["requests"])

    def test_7_http_failures_and_redirects(self):
        cases = [
            ("missing", "/f/missing.safetensors", {}),
            ("tohttp", "/rhttp/" + SINGLE, {"redirects": "https"}),
            ("otherhost", "/rlocalhost/" + SINGLE, {}),
            ("noredirects", "/r/" + SINGLE, {"redirects": "none"}),
            ("loop", "/loop/0", {"redirects": "same-host"}),
        ]
        for name, path, extra in cases:
            self.ws.models = []
            self.pin_remote(name, SERVER.url(path), self.single, **extra)
            self.ws.write_policy()
            before = SERVER.counts()
            self.refused(name, mgtest.IO, "io")
            self.assert_fetch_audited("rejected", "io", model=name)
            self.assertLessEqual(SERVER.counts()["requests"] - before["requests"], 6, name)
        # the https rule lets the other host name through (the certificate names it)
        self.ws.models = []
        self.pin_remote("otherhost", SERVER.url("/rlocalhost/" + SINGLE), self.single,
                        redirects="https")
        self.ws.write_policy()
        r = self.ws.run("fetch", "otherhost")
        self.assertExit(r, 0)

    def test_7_stalled(self):
        self.pin_remote("slow", SERVER.url("/stall/" + SINGLE), self.single)
        self.ws.write_policy()
        start = time.monotonic()
        r = self.refused("slow", mgtest.IO, "io", env={"MODELGATE_TEST_LOW_SPEED_TIME": "1"})
        self.assertIn("stalled", r.stderr)
        self.assertLess(time.monotonic() - start, 15)  # the server stalls for 20 s

    # ---- policy pin URL ---------------------------------------------------------------

    def test_policy_pin_url(self):
        url = SERVER.url("/f/" + SINGLE)
        r = mgtest.run_bin("policy", "pin", "-n", "pinned", url, env={"SSL_CERT_FILE": SERVER.ca})
        self.assertExit(r, 0)
        entry = json.loads(r.stdout.decode())
        self.assertEqual(entry, {"name": "pinned", "source": url,
                                 "sha256": sha256_bytes(self.single), "size": len(self.single)})
        self.ws.models.append(entry)
        self.ws.write_policy()
        self.assertExit(self.ws.run("fetch", "pinned"), 0)
        # the same HTTPS rules: an untrusted certificate is refused
        r = mgtest.run_bin("policy", "pin", SERVER.url("/f/" + SINGLE, listener="expired"),
                           env={"SSL_CERT_FILE": SERVER.ca})
        self.assertExit(r, mgtest.IO)
        self.assertEqual(r.stdout, b"")

    # ---- signed manifest, remote ------------------------------------------------------

    def signed_model(self, name, sign_with="release", sign_args=()):
        """A model directory on the server, signed by keys/<sign_with>; returns its URL."""
        os.makedirs(self.ws.path("keys"), mode=0o700, exist_ok=True)
        for k in ("release", "other"):
            if not os.path.exists(self.ws.path("keys", k + ".pub")):
                self.assertExit(mgtest.run_bin("keygen", "-t", "ed25519", "-o",
                                               self.ws.path("keys", k)), 0)
        rel = "signed-%s-%d" % (name, os.getpid())
        d = os.path.join(SERVER.root, rel)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        for f in DIR_FILES[1:]:
            shutil.copy(os.path.join(REAL, f), os.path.join(d, f))
        self.assertExit(mgtest.run_bin("sign", "-k", self.ws.path("keys", sign_with + ".key"),
                                       "-n", name, *sign_args, d), 0)
        self.ws.extra["keys"] = {"release": {"public_key": "keys/release.pub"}}
        self.ws.models.append({"name": name, "source": SERVER.url("/f/%s/" % rel),
                               "manifest": {"keys": ["release"]}})
        return d

    def test_manifest_remote(self):
        d = self.signed_model("signed")
        self.ws.write_policy()
        r = self.ws.run("fetch", "signed")
        self.assertExit(r, 0)
        want = []
        for f in DIR_FILES[1:]:
            with open(os.path.join(d, f), "rb") as fh:
                want.append(os.path.join(self.cache, "sha256", sha256_bytes(fh.read())))
        self.assertEqual(sorted(r.stdout.decode().splitlines()), sorted(want))
        self.assert_fetch_audited("ok", model="signed")
        r, doc = self.ws.inspect_json("signed")
        self.assertExit(r, 0)
        self.assertEqual(sorted(f["path"] for f in doc["files"]), sorted(DIR_FILES[1:]))

    def test_sharded_manifest_remote(self):
        """sha256_shards entries (sign --shard-size) are checked shard by shard when fetched."""
        d = self.signed_model("sharded", sign_args=("--shard-size", "256"))
        with open(os.path.join(d, "manifest.json")) as f:
            self.assertTrue(any("sha256_shards" in e for e in json.load(f)["files"]))
        self.ws.write_policy()
        self.assertExit(self.ws.run("verify", "sharded"), 0)
        big = max(DIR_FILES[1:], key=lambda n: os.path.getsize(os.path.join(d, n)))
        with open(os.path.join(d, big), "r+b") as f:
            f.seek(256 + 1)
            b = f.read(1)
            f.seek(256 + 1)
            f.write(bytes([b[0] ^ 1]))
        r = self.ws.run("verify", "sharded")
        self.assertExit(r, 1)
        self.assertIn("shard 256:512", r.stderr)

    def test_manifest_remote_refused(self):
        d = self.signed_model("tampered")
        with open(os.path.join(d, DIR_FILES[1]), "r+b") as f:
            f.seek(-1, 2)
            last = f.read(1)
            f.seek(-1, 2)
            f.write(bytes([last[0] ^ 1]))
        self.ws.write_policy()
        self.refused("tampered", mgtest.INTEGRITY, "integrity")
        self.assert_fetch_audited("rejected", "integrity", model="tampered")
        # signed by a key the policy does not list for the model
        self.ws.models = []
        self.signed_model("forged", sign_with="other")
        self.ws.write_policy()
        self.refused("forged", mgtest.SIGNATURE, "signature")
        self.assert_fetch_audited("rejected", "signature", model="forged")


if __name__ == "__main__":
    mgtest.main()
