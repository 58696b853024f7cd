"""Shared helpers for modelgate's command-line and interop tests.

Standard library only (plus numpy/cryptography where a test needs them, from Debian's
python3-numpy / python3-cryptography at /usr/bin/python3).

    ws = Workspace()                       # private temp dir (0700) with a policy in it
    ws.pin_file("tiny", "/path/to/model.safetensors")
    ws.pin_dir("ckpt", "/path/to/dir/")
    ws.write_policy()
    r = ws.run("inspect", "--json", "tiny")   # runs $MODELGATE_BIN with -p <policy>
    assert r.returncode == 0, r.stderr
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

BIN = os.environ.get("MODELGATE_BIN", "")
SOURCE_DIR = os.environ.get("MG_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

CORPUS = os.path.join(SOURCE_DIR, "tests", "data", "real")
# Fail at once, with the reason, when the tool or the test data is not where it should be.
if not BIN or not os.access(BIN, os.X_OK):
    sys.exit("mgtest: MODELGATE_BIN=%r is not an executable (run through ctest or set it)" % BIN)
if not os.path.isdir(CORPUS):
    sys.exit("mgtest: the test data folder %s is missing" % CORPUS)
SANITIZED = os.environ.get("MG_SANITIZE", "OFF") in ("ON", "1", "TRUE", "true")
# MG_VALGRIND=1: every run of the tool goes through valgrind memcheck, and any error it
# reports (invalid access, uninitialised use, a definite leak) fails the run.
VALGRIND = os.environ.get("MG_VALGRIND", "") == "1"
VALGRIND_CMD = ["valgrind", "--quiet", "--error-exitcode=99", "--leak-check=full",
                "--errors-for-leak-kinds=definite", "--track-fds=no"]

# Exit codes, SPEC §5.
OK, INTEGRITY, USAGE, POLICY, UNTRUSTED, SIGNATURE, FORMAT, IO, LIMIT = range(9)


def digest_file(path, alg="sha256"):
    h = hashlib.new(alg)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run_bin(*args, env=None, input=None, timeout=300, preexec_fn=None):
    """Run the modelgate binary; returns CompletedProcess with bytes stdout, str stderr.
    `preexec_fn` runs in the child before exec (e.g. to set a resource limit)."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    cmd = [BIN, *args]
    if VALGRIND:
        cmd = VALGRIND_CMD + cmd
        timeout *= 20
    p = subprocess.run(cmd, capture_output=True, env=full_env, input=input, timeout=timeout,
                       preexec_fn=preexec_fn)
    if VALGRIND and p.returncode == 99:
        raise AssertionError("valgrind reported errors for %r:\n%s" % (args, p.stderr.decode("utf-8", "replace")))
    p.stderr = p.stderr.decode("utf-8", "replace")
    if SANITIZED and ("AddressSanitizer" in p.stderr or "runtime error:" in p.stderr
                      or "LeakSanitizer" in p.stderr):
        raise AssertionError("sanitizer report from %r:\n%s" % (args, p.stderr))
    return p


class Workspace:
    """A private temporary folder holding a policy file and whatever models a test makes."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="mgcli.")
        os.chmod(self.dir, 0o700)
        self.policy_path = os.path.join(self.dir, "policy.json")
        self.models = []
        self.extra = {}

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def write(self, rel, data, mode=0o644):
        p = self.path(rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
        os.chmod(p, mode)
        return p

    def pin_file(self, name, path, alg="sha256", with_size=False):
        """Add a single-file model pinned to the file's current digest."""
        entry = {"name": name, "source": os.path.abspath(path), alg: digest_file(path, alg)}
        if with_size:
            entry["size"] = os.path.getsize(path)
        self.models.append(entry)
        return entry

    def pin_dir(self, name, path, alg="sha256"):
        """Add a directory model with every regular file below it pinned."""
        path = os.path.abspath(path)
        files = {}
        for root, dirs, names in os.walk(path):
            for n in names:
                full = os.path.join(root, n)
                rel = os.path.relpath(full, path)
                files[rel] = {alg: digest_file(full, alg), "size": os.path.getsize(full)}
        entry = {"name": name, "source": path.rstrip("/") + "/", "files": files}
        self.models.append(entry)
        return entry

    def policy(self):
        doc = {"modelgate_policy": 1, "models": self.models}
        if VALGRIND:
            # valgrind cannot run a seccomp filter (the confined load then fails closed):
            # memcheck looks at the same parsers in the process itself.
            doc["sandbox"] = "off"
        doc.update(self.extra)
        return doc

    def write_policy(self, doc=None, mode=0o600):
        with open(self.policy_path, "w") as f:
            json.dump(self.policy() if doc is None else doc, f, indent=1)
        os.chmod(self.policy_path, mode)
        return self.policy_path

    def run(self, cmd, *args, **kw):
        """Run `modelgate CMD -p POLICY ARGS...` (policy subcommands: pass cmd='policy check')."""
        words = cmd.split()
        return run_bin(*words, "-p", self.policy_path, *args, **kw)

    def inspect_json(self, source):
        r = self.run("inspect", "--json", source)
        doc = json.loads(r.stdout.decode()) if r.stdout else None
        return r, doc


class TestCase(unittest.TestCase):
    """unittest.TestCase with a fresh Workspace in self.ws."""

    def setUp(self):
        if not BIN:
            self.fail("MODELGATE_BIN is not set (run through ctest)")
        self.ws = Workspace()

    def tearDown(self):
        self.ws.close()

    def assertExit(self, proc, code, msg=""):
        self.assertEqual(proc.returncode, code,
                         "%s\nexpected exit %d, got %d; stderr: %s" % (msg, code, proc.returncode, proc.stderr))


def main():
    unittest.main(verbosity=2)
