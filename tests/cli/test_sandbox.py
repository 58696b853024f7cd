#!/usr/bin/python3
"""Confined parsing (policy "sandbox"): the same answer confined and not, on every test file;
inspect and the audit log say where parsing ran; strace shows the child opening, connecting
and executing nothing."""
import json
import os
import re
import shutil
import subprocess
import unittest

import mgtest

# How strace shows the child installing its filter.
FILTER_LOAD = re.compile(r"prctl\(PR_SET_SECCOMP, SECCOMP_MODE_FILTER|seccomp\(SECCOMP_SET_MODE_FILTER, 0, \{")
from mgtest import FORMAT, OK, POLICY

DATA = os.path.join(mgtest.SOURCE_DIR, "tests", "data")


def every_test_file():
    """Every file of the real corpus (tests/data/real; the generated bad inputs are compared
    file by file in the unit test test_sandbox, without a process per run)."""
    out = []
    for root, dirs, names in os.walk(mgtest.CORPUS):
        dirs.sort()
        for n in sorted(names):
            if n.endswith((".py", ".md", ".tsv", ".pub", ".key", ".minisig", ".sig")):
                continue
            out.append(os.path.join(root, n))
    return out


def audit_lines(ws):
    with open(ws.path("audit.log")) as f:
        return [json.loads(l) for l in f]


class Equivalence(mgtest.TestCase):
    def test_every_file_same_answer_confined_and_not(self):
        files = every_test_file()
        self.assertGreater(len(files), 25)
        for i, path in enumerate(files):
            self.ws.pin_file("c%d" % i, path)
            off = dict(self.ws.pin_file("u%d" % i, path))
            # A second entry needs its own source: a copy of the file.
            with open(path, "rb") as f:
                copy = self.ws.write("copies/%d/%s" % (i, os.path.basename(path)), f.read())
            self.ws.models[-1] = dict(off, source=copy, sandbox="off")
        self.ws.write_policy()
        confined_ok = 0
        for i, path in enumerate(files):
            with self.subTest(file=os.path.relpath(path, DATA)):
                a = self.ws.run("inspect", "--json", "c%d" % i)
                b = self.ws.run("inspect", "--json", "u%d" % i)
                self.assertEqual(a.returncode, b.returncode, a.stderr + b.stderr)
                da, db = json.loads(a.stdout), json.loads(b.stdout)
                if a.returncode == OK:
                    confined_ok += 1
                    self.assertEqual(da.pop("parsing"), "confined")
                    self.assertEqual(db.pop("parsing"), "unconfined")
                    for d in (da, db):
                        d.pop("model"), d.pop("source")
                        for f in d["files"]:
                            f.pop("path")
                        for t in d["tensors"]:
                            t.pop("file")
                    self.assertEqual(da, db)
                else:
                    # The same refusal, word for word, but for the model and file names.
                    ma = da["error"]["message"].replace("'c%d'" % i, "M")
                    mb = db["error"]["message"].replace("'u%d'" % i, "M")
                    self.assertEqual(da["error"]["kind"], db["error"]["kind"])
                    self.assertEqual(ma, mb)
        self.assertGreater(confined_ok, 15)


class Reporting(mgtest.TestCase):
    def model(self):
        return os.path.join(mgtest.CORPUS, "gguf", "llama-2-tiny-random.gguf")

    def test_default_is_confined_in_inspect_and_audit(self):
        self.ws.pin_file("m", self.model())
        self.ws.extra["audit_log"] = self.ws.path("audit.log")
        self.ws.write_policy()
        r = self.ws.run("inspect", "m")
        self.assertExit(r, OK)
        self.assertIn(b"parsing: confined", r.stdout)
        r, doc = self.ws.inspect_json("m")
        self.assertEqual(doc["parsing"], "confined")
        r = self.ws.run("verify", "m")
        self.assertExit(r, OK)
        lines = audit_lines(self.ws)
        self.assertEqual([l.get("parse") for l in lines], ["confined", "confined", None])

    def test_off_at_top_level_and_per_model(self):
        self.ws.pin_file("a", self.model())
        with open(self.model(), "rb") as f:
            copy = self.ws.write("b.gguf", f.read())
        self.ws.pin_file("b", copy)["sandbox"] = "required"
        self.ws.extra["sandbox"] = "off"
        self.ws.extra["audit_log"] = self.ws.path("audit.log")
        self.ws.write_policy()
        self.assertEqual(self.ws.inspect_json("a")[1]["parsing"], "unconfined")
        self.assertEqual(self.ws.inspect_json("b")[1]["parsing"], "confined")
        self.assertIn(b"parsing: unconfined", self.ws.run("inspect", "a").stdout)
        lines = audit_lines(self.ws)
        self.assertEqual([l["parse"] for l in lines], ["unconfined", "confined", "unconfined"])

    def test_refused_values(self):
        self.ws.pin_file("a", self.model())["sandbox"] = "maybe"
        self.ws.write_policy()
        r = self.ws.run("inspect", "a")
        self.assertExit(r, POLICY)
        self.assertIn("$.models[0].sandbox", r.stderr)
        self.ws.models[0].pop("sandbox")
        self.ws.extra["sandbox"] = False
        self.ws.write_policy()
        r = self.ws.run("inspect", "a")
        self.assertExit(r, POLICY)
        self.assertIn("$.sandbox", r.stderr)

    def test_refused_parse_is_audited_as_confined(self):
        bad = self.ws.write("bad.safetensors", b"\x08\x00\x00\x00\x00\x00\x00\x00{\"a\":1}  ")
        self.ws.pin_file("m", bad)
        self.ws.extra["audit_log"] = self.ws.path("audit.log")
        self.ws.write_policy()
        r = self.ws.run("inspect", "m")
        self.assertExit(r, FORMAT)
        self.assertEqual(r.stdout, b"")
        line = audit_lines(self.ws)[-1]
        self.assertEqual((line["result"], line["error"], line["parse"]),
                         ("rejected", "format", "confined"))


@unittest.skipIf(mgtest.VALGRIND or mgtest.SANITIZED, "strace of the plain build only")
class Strace(mgtest.TestCase):
    def test_child_opens_connects_and_executes_nothing(self):
        if shutil.which("strace") is None:
            self.fail("strace is not installed (scripts/install-deps.sh)")
        for rel in ("gguf/llama-2-tiny-random.gguf", "npz/mel_filters.npz",
                    "safetensors/voices.safetensors"):
            self.ws.pin_file(os.path.basename(rel), os.path.join(mgtest.CORPUS, rel))
        self.ws.write_policy()
        for m in ("llama-2-tiny-random.gguf", "mel_filters.npz", "voices.safetensors"):
            log = self.ws.path("strace.%s" % m)
            p = subprocess.run(["strace", "-f", "-qq", "-o", log, mgtest.BIN, "inspect", "-p",
                                self.ws.policy_path, "--json", m], capture_output=True)
            self.assertEqual(p.returncode, OK, p.stderr)
            with open(log) as f:
                lines = f.read().splitlines()
            # The child: the process that loads the seccomp filter.
            child = {l.split()[0] for l in lines if FILTER_LOAD.search(l)}
            self.assertEqual(len(child), 1, "no confined child in the trace")
            pid = child.pop()
            mine = [l for l in lines if l.split()[0] == pid]
            after = mine[[i for i, l in enumerate(mine) if FILTER_LOAD.search(l)][0] + 1:]
            calls = {re.match(r"\d+\s+(<\.\.\. )?(\w+)", l).group(2) for l in after
                     if re.match(r"\d+\s+(<\.\.\. )?\w+", l)}
            self.assertTrue(calls <= {"write", "mmap", "munmap", "mremap", "brk", "madvise",
                                      "mprotect", "sysinfo", "exit_group", "exit"}, calls)
            self.assertIn("write", calls)
            forbidden = [l for l in mine if re.search(r"\b(open|openat|openat2|connect|socket|"
                                                      r"execve|execveat)\(", l)]
            self.assertEqual(forbidden, [])


if __name__ == "__main__":
    mgtest.main()
