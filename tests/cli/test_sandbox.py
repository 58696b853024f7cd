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


CALL = re.compile(r"\d+\s+(<\.\.\. )?(\w+)")
CONFINED_CALLS = {"write", "close", "mmap", "munmap", "mremap", "brk", "madvise", "mprotect", "sysinfo",
                  "exit_group", "exit"}
FORBIDDEN = re.compile(r"\b(open|openat|openat2|connect|socket|execve|execveat|clone|clone3|"
                       r"fork|vfork|kill|tgkill)\(")
MODELS = ("gguf/llama-2-tiny-random.gguf", "npz/mel_filters.npz",
          "safetensors/voices.safetensors")


def calls_of(lines):
    return {CALL.match(l).group(2) for l in lines if CALL.match(l)}


@unittest.skipIf(mgtest.VALGRIND or mgtest.SANITIZED, "strace of the plain build only")
class Strace(mgtest.TestCase):
    """What the confined parser does, seen from outside with strace -f."""

    def setUp(self):
        super().setUp()
        if shutil.which("strace") is None:
            self.fail("strace is not installed (scripts/install-deps.sh)")
        for rel in MODELS:
            self.ws.pin_file(os.path.basename(rel), os.path.join(mgtest.CORPUS, rel))
        self.ws.write_policy()

    def trace(self, model, env=None):
        """strace -f of one load: (the confined process's id, all lines, its own lines)."""
        log = self.ws.path("strace.%s" % model)
        full_env = dict(os.environ)
        full_env.pop("MODELGATE_PARSER", None)
        full_env.update(env or {})
        p = subprocess.run(["strace", "-f", "-qq", "-o", log, mgtest.BIN, "inspect", "-p",
                            self.ws.policy_path, "--json", model], capture_output=True,
                           env=full_env)
        self.assertEqual(p.returncode, OK, p.stderr)
        self.assertEqual(json.loads(p.stdout)["parsing"], "confined")
        with open(log) as f:
            lines = f.read().splitlines()
        # The confined process: the one that loads the seccomp filter (exactly one).
        child = {l.split()[0] for l in lines if FILTER_LOAD.search(l)}
        self.assertEqual(len(child), 1, "no confined child in the trace")
        pid = child.pop()
        return pid, lines, [l for l in lines if l.split()[0] == pid]

    def after_filter(self, mine):
        at = [i for i, l in enumerate(mine) if FILTER_LOAD.search(l)][0]
        # (strace may print the filter's own prctl as unfinished, then resumed)
        return mine[:at], [l for l in mine[at + 1:] if "prctl resumed>" not in l]

    def test_helper_is_executed_and_confined_before_it_parses(self):
        for rel in MODELS:
            m = os.path.basename(rel)
            pid, lines, mine = self.trace(m)
            before, after = self.after_filter(mine)
            # Started by posix_spawn: the one program it executes is the installed helper.
            execs = [l for l in mine if re.search(r"\bexecve\(", l)]
            self.assertEqual(len(execs), 1, execs)
            npz = m.endswith(".npz")  # then it opens libzip while it waits
            self.assertRegex(execs[0], r'execve\("[^"]*/modelgate-parse", \["modelgate-parse"%s\]'
                             % (', "--zip"' if npz else ""))
            # Its environment holds nothing of the caller's but TZ and LD_LIBRARY_PATH.
            env = re.search(r"\], 0x[0-9a-f]+ /\* (\d+) vars \*/", execs[0])
            self.assertIsNotNone(env, execs[0])
            self.assertLessEqual(int(env.group(1)), 2, execs[0])
            # Before its filter: only what the dynamic loader needs, the files handed over
            # the socket, jansson's seed, the time zone and its own size. No network.
            opened = [re.search(r'open(at)?\((AT_FDCWD, )?"([^"]*)"', l).group(3)
                      for l in before if re.search(r'\bopen(at)?\(', l)]
            for path in opened:
                self.assertRegex(path, r"^(/etc/ld\.so\.cache|/(usr/)?lib[^ ]*\.so[.0-9]*|"
                                       r"/dev/urandom|/etc/localtime|/proc/self/statm)$")
            self.assertFalse([l for l in before if re.search(r"\b(connect|socket|bind)\(", l)])
            # libzip (and the libcrypto it brings) only for a ZIP-based format.
            self.assertEqual(any("libzip" in p for p in opened), npz, opened)
            self.assertEqual(any("libcrypto" in p for p in opened), npz, opened)
            self.assertIn("recvmsg", calls_of(before))
            # After it: memory and writes on its one socket, nothing else.
            calls = calls_of(after)
            self.assertTrue(calls <= CONFINED_CALLS, calls)
            self.assertIn("write", calls)
            self.assertFalse([l for l in after if FORBIDDEN.search(l)])
            self.assertTrue(all(re.search(r"\b(write|close)\(3\b", l) for l in after
                                if re.search(r"\b(write|close)\(", l)))
            # The loader itself made no other process.
            spawned = [l for l in lines if re.search(r"\b(clone3?|vfork|fork)\(", l)
                       and l.split()[0] != pid and "CLONE_THREAD" not in l]
            self.assertEqual(len(spawned), 1, spawned)

    def test_forked_child_opens_connects_and_executes_nothing(self):
        for rel in MODELS:
            m = os.path.basename(rel)
            pid, lines, mine = self.trace(m, {"MODELGATE_PARSER": "none"})
            before, after = self.after_filter(mine)
            calls = calls_of(after)
            self.assertTrue(calls <= CONFINED_CALLS, calls)
            self.assertIn("write", calls)
            self.assertEqual([l for l in mine if re.search(r"\b(open|openat|openat2|connect|socket|"
                                                           r"execve|execveat)\(", l)], [])

    def test_a_helper_that_does_not_answer_falls_back_to_a_forked_child(self):
        for helper in ("/bin/true", "/nonexistent/modelgate-parse", "relative/path"):
            pid, lines, mine = self.trace("voices.safetensors", {"MODELGATE_PARSER": helper})
            self.assertFalse([l for l in mine if re.search(r"\bexecve\(", l)], helper)
            _, after = self.after_filter(mine)
            self.assertTrue(calls_of(after) <= CONFINED_CALLS)


if __name__ == "__main__":
    mgtest.main()
