#!/usr/bin/python3
"""A parser that misbehaves on a verified file (run by scripts/test-sandbox-triggers.sh on a
build with -DMG_SANDBOX_TEST_TRIGGERS=ON): a crash, an endless loop, unbounded allocation, or
an attempt to open a file, make a socket or run a program is a clean refusal. Only the child
is stopped; the tool itself ends normally with the exit code of the error kind, prints no
model, and strace shows the child killed at the forbidden call. scripts/test-sandbox-triggers.sh
runs it twice: with the parser helper (modelgate-parse), and with MODELGATE_PARSER=none (a
forked child)."""
import os
import re
import subprocess
import time

import mgtest

# How strace shows the child installing its filter.
FILTER_LOAD = re.compile(r"prctl\(PR_SET_SECCOMP, SECCOMP_MODE_FILTER|seccomp\(SECCOMP_SET_MODE_FILTER, 0, \{")
from mgtest import FORMAT, LIMIT, OK

# Whether the confined parser is the helper (else a forked child).
HELPER = os.environ.get("MODELGATE_PARSER") != "none"


def safetensors_with(meta_value):
    import json
    header = json.dumps({"__metadata__": {"note": meta_value},
                         "w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    header += b" " * (-len(header) % 8)
    return len(header).to_bytes(8, "little") + header + b"\0" * 8


class Triggers(mgtest.TestCase):
    def load(self, what, *args):
        path = self.ws.write("m-%s.safetensors" % what, safetensors_with("MG_TEST_TRIGGER_" + what))
        self.ws.pin_file("m", path)
        self.ws.extra["audit_log"] = self.ws.path("audit.log")
        self.ws.write_policy()
        t = time.monotonic()
        r = self.ws.run("inspect", "--json", "m", *args)
        return r, time.monotonic() - t

    def refused(self, what, code, words):
        r, secs = self.load(what)
        self.assertExit(r, code, what)
        self.assertIn(words, r.stderr)
        doc = __import__("json").loads(r.stdout)
        self.assertFalse(doc["ok"])
        self.assertNotIn("tensors", doc)
        with open(self.ws.path("audit.log")) as f:
            line = __import__("json").loads(f.read().splitlines()[-1])
        self.assertEqual((line["result"], line["parse"]), ("rejected", "confined"))
        return secs

    def test_control_no_trigger_loads(self):
        path = self.ws.write("ok.safetensors", safetensors_with("harmless"))
        self.ws.pin_file("m", path)
        self.ws.write_policy()
        self.assertExit(self.ws.run("inspect", "m"), OK)

    def test_crash(self):
        self.refused("crash", FORMAT, "crashed (signal 11")

    def test_loop_stopped_by_cpu_limit(self):
        secs = self.refused("loop", LIMIT, "CPU time")
        self.assertLess(secs, 30)

    def test_unbounded_allocation(self):
        self.refused("alloc", LIMIT, "out of memory")

    def test_open(self):
        self.refused("open", FORMAT, "forbidden system call")

    def test_socket(self):
        self.refused("socket", FORMAT, "forbidden system call")

    def test_execve(self):
        self.refused("execve", FORMAT, "forbidden system call")

    def test_unconfined_trigger_would_have_run(self):
        # Control: with "sandbox": "off" the same open succeeds in the process itself (the
        # trigger then reports that it was not stopped), so the confined refusals above are
        # the sandbox's doing.
        path = self.ws.write("o.safetensors", safetensors_with("MG_TEST_TRIGGER_open"))
        self.ws.pin_file("m", path)["sandbox"] = "off"
        self.ws.write_policy()
        r = self.ws.run("inspect", "m")
        self.assertExit(r, FORMAT)
        self.assertIn("open was not stopped", r.stderr)

    def test_strace_child_killed_at_the_call(self):
        for what, call in (("open", "openat"), ("socket", "socket"), ("execve", "execve")):
            path = self.ws.write("s-%s.safetensors" % what,
                                 safetensors_with("MG_TEST_TRIGGER_" + what))
            self.ws.models = []
            self.ws.pin_file("m", path)
            self.ws.write_policy()
            log = self.ws.path("strace-%s" % what)
            p = subprocess.run(["strace", "-f", "-o", log, mgtest.BIN, "inspect", "-p",
                                self.ws.policy_path, "m"], capture_output=True)
            self.assertEqual(p.returncode, FORMAT, p.stderr)
            with open(log) as f:
                lines = f.read().splitlines()
            child = {l.split()[0] for l in lines if FILTER_LOAD.search(l)}
            self.assertEqual(len(child), 1)
            pid = child.pop()
            mine = [l for l in lines if l.split()[0] == pid]
            # The call is the child's last: the kernel kills it there (strace then shows the
            # call's number, or '?', where a result would be), and it is its only such call.
            self.assertIn("+++ killed by SIGSYS", mine[-1])
            self.assertRegex(mine[-2], r"^%s\s+(%s\(|<\.\.\. %s resumed)" % (pid, call, call))
            execs = [l for l in mine if re.search(r"\bexecve\(", l)]
            if HELPER:  # the helper was executed once, before its filter
                self.assertRegex(execs[0], r'execve\("[^"]*/modelgate-parse"')
            else:
                self.assertEqual(len(execs), 1 if what == "execve" else 0, execs)
            at = [i for i, l in enumerate(mine) if FILTER_LOAD.search(l)][0]
            before = mine[at + 1:-2]
            if "resumed" in mine[-2]:  # strace split the call: drop its first half too
                before = before[:max(i for i, l in enumerate(before) if "%s(" % call in l)]
            self.assertFalse([l for l in before if re.search(
                r"\b(open|openat|socket|connect|execve)(\(| resumed)", l)])


if __name__ == "__main__":
    mgtest.main()
