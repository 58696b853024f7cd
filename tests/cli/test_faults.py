"""Files the library writes or trusts, and faults (issue 14, sections 5 and 6).

FIFOs in place of the audit log or the rollback state, owner and mode of state_dir, the audit
log's folder and ca_file, rollback state under parallel loads (and a forced interleaving),
leftover temporary files, `sign` replacing the manifest set, restricted RSA-PSS keys, a
trailing slash on a single-file source, torn audit lines on a full file system or under a
file-size limit, SIGXFSZ, one exit code per cap over HTTPS, and a lost audit record.
"""
import fcntl
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mgtest  # noqa: E402
from mgtest import IO, LIMIT, OK, POLICY, SIGNATURE, UNTRUSTED, run_bin  # noqa: E402

IS_ROOT = os.geteuid() == 0


def fsize_limit(n):
    """preexec_fn: a file-size limit of n bytes (ulimit -f) for the child."""
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (n, n))


def write_json(path, doc, mode=0o600):
    with open(path, "w") as f:
        json.dump(doc, f)
    os.chmod(path, mode)
    return path


def audit_lines(path):
    with open(path, "rb") as f:
        data = f.read()
    return data, [json.loads(line) for line in data.split(b"\n") if line]


class Base(mgtest.TestCase):
    def setUp(self):
        super().setUp()
        self.model = self.ws.write("model.bin", os.urandom(4096))
        self.ws.pin_file("tiny", self.model)


# ---- 5. files the library writes or trusts ---------------------------------------------

class Fifos(Base):
    def test_fifo_as_audit_log_does_not_block(self):
        audit = self.ws.path("audit.jsonl")
        os.mkfifo(audit)
        self.ws.extra["audit_log"] = audit
        self.ws.write_policy()
        r = self.ws.run("verify", "tiny", timeout=20)
        self.assertExit(r, POLICY)
        self.assertIn("not a regular file", r.stderr)
        r = self.ws.run("policy check", timeout=20)
        self.assertExit(r, POLICY)


class SignedModels(mgtest.TestCase):
    """Manifest models "m" of versions 5, 6 and 7 in three folders, one policy each, all
    sharing one state_dir."""

    def setUp(self):
        super().setUp()
        os.makedirs(self.ws.path("keys"))
        self.assertExit(run_bin("keygen", "-o", self.ws.path("keys", "ed")), OK)
        self.key = self.ws.path("keys", "ed.key")
        self.state = self.ws.path("state")
        os.mkdir(self.state, 0o700)
        self.policies = {}
        for v in (5, 6, 7):
            d = self.ws.path("m%d" % v)
            self.ws.write("m%d/w.bin" % v, b"version %d\n" % v)
            self.assertExit(run_bin("sign", "-k", self.key, "-n", "m", "-V", str(v), d), OK)
            self.policies[v] = write_json(self.ws.path("p%d.json" % v), {
                "modelgate_policy": 1, "state_dir": self.state,
                "keys": {"ed": {"public_key": self.ws.path("keys", "ed.pub")}},
                "models": [{"name": "m", "source": d + "/", "manifest": {"keys": ["ed"]}}]})

    def verify(self, v, **kw):
        return run_bin("verify", "-q", "-p", self.policies[v], "m", **kw)

    def popen(self, v):
        return subprocess.Popen([mgtest.BIN, "verify", "-q", "-p", self.policies[v], "m"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stored(self):
        with open(os.path.join(self.state, "m.version")) as f:
            return f.read()

    def reset_state(self):
        for n in os.listdir(self.state):
            os.unlink(os.path.join(self.state, n))


class Rollback(SignedModels):
    def test_fifo_as_version_file_does_not_block(self):
        os.mkfifo(os.path.join(self.state, "m.version"))
        r = self.verify(7, timeout=20)
        self.assertExit(r, IO)
        self.assertIn("not a regular file", r.stderr)

    def test_parallel_loads_never_lower_the_version(self):
        """40 pairs of loads of versions 5 and 7 started together on a fresh state_dir: once
        7 was accepted the stored version is 7, and a version-6 manifest is refused."""
        for _ in range(40):
            self.reset_state()
            p5, p7 = self.popen(5), self.popen(7)
            rc5, rc7 = p5.wait(timeout=60), p7.wait(timeout=60)
            p5.stderr.close()
            p7.stderr.close()
            self.assertEqual(rc7, OK)
            self.assertIn(rc5, (OK, SIGNATURE))
            self.assertEqual(self.stored(), "7\n")
            self.assertExit(self.verify(6), SIGNATURE)
            self.assertEqual(sorted(os.listdir(self.state)), ["m.version"])

    def test_forced_interleaving(self):
        """A load of version 5, checked against an empty state, has to wait for the lock of
        state_dir; meanwhile version 7 is stored. It must not replace 7 by 5."""
        fd = os.open(self.state, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            p5 = self.popen(5)
            time.sleep(1.5)
            self.assertIsNone(p5.poll(), "the version was stored without the state_dir lock")
            with open(os.path.join(self.state, "m.version"), "w") as f:
                f.write("7\n")
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        # OK when it verified before 7 was stored (the usual case), SIGNATURE (rollback) on a
        # machine so loaded that it had not yet read the state after 1.5 s.
        self.assertIn(p5.wait(timeout=60), (OK, SIGNATURE), p5.stderr.read())
        p5.stderr.close()
        self.assertEqual(self.stored(), "7\n")
        r = self.verify(6)
        self.assertExit(r, SIGNATURE)
        self.assertIn("rollback", r.stderr)

    def test_no_leftover_temporary_files(self):
        for n in (".m.version.tmp", ".m.version.0123456789abcdef.tmp"):
            with open(os.path.join(self.state, n), "w") as f:
                f.write("3\n")
        self.assertExit(self.verify(5), OK)
        self.assertEqual(sorted(os.listdir(self.state)), ["m.version"])
        self.assertEqual(self.stored(), "5\n")
        self.assertExit(self.verify(7), OK)
        self.assertEqual(sorted(os.listdir(self.state)), ["m.version"])
        self.assertEqual(self.stored(), "7\n")

    @unittest.skipUnless(IS_ROOT, "needs root to chown")
    def test_state_dir_owner_and_mode(self):
        os.chmod(self.state, 0o777)
        r = self.verify(7)
        self.assertExit(r, POLICY)
        self.assertIn("state_dir", r.stderr)
        self.assertIn("writable by group or others", r.stderr)
        os.chmod(self.state, 0o700)
        os.chown(self.state, 65534, -1)
        r = self.verify(7)
        self.assertExit(r, POLICY)
        self.assertIn("owned by uid 65534", r.stderr)
        os.chown(self.state, 0, -1)
        self.assertExit(self.verify(7), OK)


class Sign(SignedModels):
    def test_sign_replaces_the_whole_set(self):
        d = self.ws.path("m7")
        for n in ("manifest.json.sig.1", "manifest.json.minisig"):
            shutil.copy(os.path.join(d, "manifest.json.sig"), os.path.join(d, n))
        with open(os.path.join(d, ".manifest.json.0123456789abcdef.tmp"), "w") as f:
            f.write("left by a crash\n")
        self.assertExit(run_bin("sign", "-k", self.key, "-n", "m", "-V", "8", d), OK)
        self.assertEqual(sorted(os.listdir(d)), ["manifest.json", "manifest.json.sig", "w.bin"])
        with open(os.path.join(d, "manifest.json")) as f:
            doc = json.load(f)
        self.assertEqual([e["path"] for e in doc["files"]], ["w.bin"])
        self.assertEqual(doc["version"], 8)
        self.assertExit(self.verify(7), OK)

    def test_private_key_mode(self):
        d = self.ws.path("m7")
        with open(os.path.join(d, "manifest.json"), "rb") as f:
            before = f.read()
        os.chmod(self.key, 0o644)
        r = run_bin("sign", "-k", self.key, "-n", "m", "-V", "9", d)
        self.assertExit(r, POLICY)
        self.assertIn("group or others", r.stderr)
        with open(os.path.join(d, "manifest.json"), "rb") as f:
            self.assertEqual(f.read(), before)
        os.chmod(self.key, 0o600)
        self.assertExit(run_bin("sign", "-k", self.key, "-n", "m", "-V", "9", d), OK)


class RsaPss(mgtest.TestCase):
    def genpss(self, name, *opts):
        key = self.ws.path(name + ".key")
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA-PSS", "-pkeyopt",
                        "rsa_keygen_bits:2048", *opts, "-out", key], check=True,
                       capture_output=True)
        pub = self.ws.path(name + ".pub")
        subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-out", pub], check=True,
                       capture_output=True)
        return pub

    def test_restricted_key_refused_at_policy_load(self):
        restricted = self.genpss("sha512", "-pkeyopt", "rsa_pss_keygen_md:sha512")
        free = self.genpss("free")
        self.assertExit(run_bin("keygen", "-o", self.ws.path("ed")), OK)
        self.ws.write("m/w.bin", b"w")
        self.ws.models = [{"name": "m", "source": self.ws.path("m") + "/",
                           "manifest": {"keys": ["ed", "pss"], "threshold": 1}}]
        self.ws.extra = {"keys": {"ed": {"public_key": self.ws.path("ed.pub")},
                                  "pss": {"public_key": restricted}}}
        self.ws.write_policy()
        r = self.ws.run("policy check")
        self.assertExit(r, POLICY)
        out = r.stdout.decode()
        self.assertIn("$.keys.pss", out)
        self.assertIn("RSA-PSS key with parameter restrictions", out)
        self.assertIn("SHA2-512", out)
        self.assertExit(self.ws.run("verify", "m"), POLICY)
        # an RSA-PSS key without restrictions is fine
        self.ws.extra["keys"]["pss"] = {"public_key": free}
        self.ws.write_policy()
        self.assertExit(self.ws.run("policy check"), OK)


class TrailingSlash(Base):
    def test_single_file_entry_never_matches_a_folder_request(self):
        self.ws.write_policy()
        self.assertExit(self.ws.run("verify", self.model), OK)
        r = self.ws.run("verify", self.model + "/")
        self.assertExit(r, UNTRUSTED)
        r = self.ws.run("verify", self.model + "//")
        self.assertExit(r, UNTRUSTED)


class PolicyCheck(Base):
    def test_state_dir_that_is_a_file(self):
        self.ws.write("state", b"not a folder")
        self.ws.extra["state_dir"] = self.ws.path("state")
        self.ws.write_policy()
        r = self.ws.run("policy check")
        self.assertExit(r, POLICY)
        self.assertIn("$.state_dir", r.stdout.decode())
        self.assertIn("not a folder", r.stdout.decode())

    def test_state_dir_whose_folder_is_missing(self):
        self.ws.extra["state_dir"] = self.ws.path("no", "state")
        self.ws.write_policy()
        r = self.ws.run("policy check")
        self.assertExit(r, POLICY)
        self.assertIn("$.state_dir", r.stdout.decode())
        # a state_dir not made yet, in a folder that exists, is fine: created on first store
        self.ws.extra["state_dir"] = self.ws.path("state")
        self.ws.write_policy()
        self.assertExit(self.ws.run("policy check"), OK)

    def test_audit_log_whose_folder_is_missing(self):
        self.ws.extra["audit_log"] = self.ws.path("missing", "audit.jsonl")
        self.ws.write_policy()
        r = self.ws.run("policy check")
        self.assertExit(r, POLICY)
        self.assertIn("$.audit_log", r.stdout.decode())
        self.assertIn("does not exist", r.stdout.decode())

    @unittest.skipUnless(IS_ROOT, "needs root to chown")
    def test_audit_folder_and_ca_file_owner_and_mode(self):
        os.mkdir(self.ws.path("log"), 0o700)
        self.ws.extra["audit_log"] = self.ws.path("log", "audit.jsonl")
        self.ws.write_policy()
        self.assertExit(self.ws.run("verify", "tiny"), OK)
        os.chmod(self.ws.path("log"), 0o777)
        r = self.ws.run("verify", "tiny")
        self.assertExit(r, POLICY)
        self.assertIn("the folder of audit_log", r.stderr)
        os.chmod(self.ws.path("log"), 0o700)
        os.chown(self.ws.path("log"), 65534, -1)
        self.assertExit(self.ws.run("verify", "tiny"), POLICY)
        os.chown(self.ws.path("log"), 0, -1)
        ca = self.ws.write("ca.pem", b"-----BEGIN CERTIFICATE-----\n")
        self.ws.extra["ca_file"] = ca
        self.ws.write_policy()
        self.assertExit(self.ws.run("policy check"), OK)
        os.chmod(ca, 0o666)
        r = self.ws.run("policy check")
        self.assertExit(r, POLICY)
        self.assertIn("$.ca_file", r.stdout.decode())
        os.chmod(ca, 0o644)
        os.chown(ca, 65534, -1)
        self.assertExit(self.ws.run("verify", "tiny"), POLICY)
        os.unlink(ca)
        r = self.ws.run("policy check")
        self.assertExit(r, POLICY)
        self.assertIn("does not exist", r.stdout.decode())


# ---- 6. faults ------------------------------------------------------------------------

class AuditFaults(Base):
    def setUp(self):
        super().setUp()
        self.audit = self.ws.path("audit.jsonl")
        self.ws.extra["audit_log"] = self.audit

    def fill(self, size):
        """Valid audit-like lines up to exactly `size` bytes."""
        line = b'{"pad":"' + b"x" * 90 + b'"}\n'
        with open(self.audit, "wb") as f:
            f.write(line * (size // len(line)))
            rest = size % len(line)
            if rest:
                f.write(b'{"p":"' + b"y" * (rest - 9) + b'"}\n' if rest >= 9 else b"\n" * rest)
        os.chmod(self.audit, 0o640)

    def test_short_write_under_a_file_size_limit_leaves_no_torn_line(self):
        self.ws.write_policy()
        self.fill(4000)
        r = self.ws.run("verify", "tiny", preexec_fn=fsize_limit(4096))
        self.assertExit(r, IO)  # a successful load whose record cannot be written fails
        self.assertIn("audit log", r.stderr)
        data, _ = audit_lines(self.audit)
        self.assertEqual(len(data), 4000, "a partial record was left in the audit log")
        # A rejection keeps its own exit code and says that its record was lost.
        r = self.ws.run("verify", "no-such-model", preexec_fn=fsize_limit(4096))
        self.assertExit(r, UNTRUSTED)
        self.assertIn("audit record of this rejection was lost", r.stderr)
        self.assertEqual(os.path.getsize(self.audit), 4000)
        # Without the limit, the next record is a line of its own.
        self.assertExit(self.ws.run("verify", "tiny"), OK)
        _, events = audit_lines(self.audit)
        self.assertEqual(events[-1]["result"], "ok")

    def test_full_filesystem_leaves_no_torn_line(self):
        if not IS_ROOT:
            self.skipTest("needs root to mount a tmpfs")
        mnt = self.ws.path("small")
        os.mkdir(mnt, 0o700)
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", mnt],
                          capture_output=True).returncode != 0:
            self.skipTest("cannot mount a tmpfs here")
        try:
            self.audit = os.path.join(mnt, "audit.jsonl")
            self.ws.extra["audit_log"] = self.audit
            self.ws.write_policy()
            filler = os.path.join(mnt, "filler")
            with open(filler, "wb") as f:
                f.write(b"f" * 8192)
            # Fill the rest with whole lines until the file system is full.
            line = b'{"pad":"' + b"x" * 40 + b'"}\n'
            fd = os.open(self.audit, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
            try:
                while True:
                    n = os.write(fd, line)
                    if n != len(line):
                        os.ftruncate(fd, os.fstat(fd).st_size - n)
                        break
            except OSError:
                pass
            os.close(fd)
            size = os.path.getsize(self.audit)
            r = self.ws.run("verify", "tiny")
            self.assertExit(r, IO)
            self.assertEqual(os.path.getsize(self.audit), size, "a partial record was left")
            r = self.ws.run("verify", "no-such-model")
            self.assertExit(r, UNTRUSTED)
            self.assertIn("was lost", r.stderr)
            os.unlink(filler)
            self.assertExit(self.ws.run("verify", "tiny"), OK)
            _, events = audit_lines(self.audit)  # every line parses
            self.assertEqual(events[-1]["result"], "ok")
        finally:
            subprocess.run(["umount", mnt], check=False)


class FileSizeLimit(Base):
    def test_sigxfsz_is_an_io_error(self):
        big = self.ws.write("big.bin", os.urandom(200000))
        self.ws.pin_file("big", big)
        self.ws.extra["cache_dir"] = self.ws.path("cache")
        self.ws.write_policy()
        r = self.ws.run("fetch", "-q", "big", preexec_fn=fsize_limit(65536))
        self.assertExit(r, IO)
        self.assertIn("File too large", r.stderr)
        self.assertFalse(os.path.exists(self.ws.path("cache")))
        r = self.ws.run("fetch", "-q", "big")
        self.assertExit(r, OK)


class CacheLeftovers(Base):
    def test_corrupt_entry_replaced_without_temporary_names(self):
        self.ws.extra["cache_dir"] = self.ws.path("cache")
        self.ws.write_policy()
        with open(self.model, "rb") as f:
            data = f.read()
        hexd = hashlib.sha256(data).hexdigest()
        sub = self.ws.path("cache", "sha256")
        os.makedirs(sub, 0o750)
        with open(os.path.join(sub, hexd), "wb") as f:
            f.write(b"corrupted")
        stale = ".tmp-%s-123-456-0" % hexd
        with open(os.path.join(sub, stale), "wb") as f:
            f.write(b"left by a crash")
        self.assertExit(self.ws.run("fetch", "-q", "tiny"), OK)
        self.assertEqual(os.listdir(sub), [hexd])
        with open(os.path.join(sub, hexd), "rb") as f:
            self.assertEqual(f.read(), data)


# ---- HTTPS: one cap, one code ---------------------------------------------------------

class HttpsCaps(mgtest.TestCase):
    server = None

    @classmethod
    def setUpClass(cls):
        from test_https import Server
        cls.server = Server()

    @classmethod
    def tearDownClass(cls):
        if cls.server is not None:
            cls.server.stop()

    def setUp(self):
        super().setUp()
        self.ws.extra = {"ca_file": self.server.ca}

    def manifest_model(self, name, url):
        os.makedirs(self.ws.path("keys"), exist_ok=True)
        if not os.path.exists(self.ws.path("keys", "ed.pub")):
            self.assertExit(run_bin("keygen", "-o", self.ws.path("keys", "ed")), OK)
        self.ws.extra["keys"] = {"ed": {"public_key": self.ws.path("keys", "ed.pub")}}
        self.ws.models.append({"name": name, "source": url, "manifest": {"keys": ["ed"]}})

    def test_oversized_manifest_is_a_limit_everywhere(self):
        big = b"{" + b" " * (16 << 20) + b"}"
        self.server.put("bigman/manifest.json", big)
        self.ws.write("bigman/manifest.json", big)
        self.manifest_model("remote", self.server.url("/f/bigman/"))
        self.manifest_model("local", self.ws.path("bigman") + "/")
        self.ws.write_policy()
        r = self.ws.run("verify", "local")
        self.assertExit(r, LIMIT)
        r = self.ws.run("verify", "remote")
        self.assertExit(r, LIMIT)
        self.assertIn("cap of 16777216 bytes", r.stderr)

    def test_truncated_download_without_a_size_names_the_real_cause(self):
        self.server.put("short/manifest.json", b"{" + b" " * 5000 + b"}")
        self.manifest_model("short", self.server.url("/truncated/short/"))
        self.ws.write_policy()
        r = self.ws.run("verify", "short")
        self.assertExit(r, IO)
        self.assertIn("the server announced", r.stderr)
        self.assertNotIn("expected 16777216", r.stderr)
        self.assertNotIn("1099511627776", r.stderr)

    def test_oversized_response_header_is_a_limit(self):
        self.ws.models.append({"name": "hdr", "source": self.server.url("/bigheader/200000"),
                               "sha256": hashlib.sha256(b"x").hexdigest(), "size": 1})
        self.ws.models.append({"name": "ok", "source": self.server.url("/bigheader/100"),
                               "sha256": hashlib.sha256(b"x").hexdigest(), "size": 1})
        self.ws.write_policy()
        self.assertExit(self.ws.run("verify", "ok"), OK)
        r = self.ws.run("verify", "hdr")
        self.assertExit(r, LIMIT)
        self.assertIn("response headers", r.stderr)
        self.assertNotIn("Out of memory", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
