"""Behaviour on a terminal (issue 13, point 5), with a real pseudo-terminal (pty): progress
lines on stderr (bytes, rate, ETA, redrawn in place with \\r, cleared at the end), silence
with -q or when stderr is not a terminal, and `dump` refusing to write binary to a terminal
unless -o is given."""
import hashlib
import os
import pty
import re
import subprocess
import threading

import mgtest
from mgtest import OK, USAGE

ST = os.path.join(mgtest.CORPUS, "safetensors")
BIG = 256 << 20


def run_tty(args, stdout_tty=False, env=None, cwd=None):
    """Run modelgate with stderr (and stdout if asked) on a pty; returns (rc, stdout, tty)."""
    master, slave = pty.openpty()
    full_env = dict(os.environ)
    full_env.update(env or {})
    p = subprocess.Popen([mgtest.BIN, *args], stdin=subprocess.DEVNULL,
                         stdout=slave if stdout_tty else subprocess.PIPE, stderr=slave,
                         env=full_env, cwd=cwd)
    os.close(slave)
    chunks = []

    def drain():
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)

    t = threading.Thread(target=drain)
    t.start()
    out = b""
    if not stdout_tty:
        out = p.stdout.read()
        p.stdout.close()
    rc = p.wait(timeout=300)
    t.join(timeout=30)
    os.close(master)
    return rc, out, b"".join(chunks)


class Terminal(mgtest.TestCase):
    def setUp(self):
        super().setUp()
        self.big = self.ws.path("big.bin")
        with open(self.big, "wb") as f:
            f.truncate(BIG)  # sparse: costs no disk
        h = hashlib.sha256()
        zero = bytes(1 << 20)
        for _ in range(BIG >> 20):
            h.update(zero)
        self.big_sha = h.hexdigest()

    def test_hash_progress_on_a_terminal(self):
        rc, out, tty = run_tty(["hash", self.big], env={"MODELGATE_PROGRESS_AFTER": "0"})
        self.assertEqual(rc, OK, tty)
        self.assertEqual(out.decode(), "%s  %s\n" % (self.big_sha, self.big))
        text = tty.decode()
        lines = [l for l in text.split("\r") if l.strip("\x1b[K\r\n")]
        self.assertGreaterEqual(len(lines), 1, repr(text))
        pat = re.compile(r"^modelgate: hashing [\d.]+ (B|KiB|MiB) / 256\.0 MiB \(\d+%\) "
                         r"[\d.]+ (B|KiB|MiB|GiB)/s ETA \d\d:\d\d\x1b\[K$")
        for l in lines:
            self.assertRegex(l, pat)
        self.assertTrue(text.startswith("\r"), repr(text[:40]))
        self.assertTrue(text.endswith("\r\x1b[K"), repr(text[-40:]))  # the line is cleared
        self.assertNotIn("\n", text)

    def test_pin_shows_progress_too(self):
        rc, out, tty = run_tty(["policy", "pin", self.big], env={"MODELGATE_PROGRESS_AFTER": "0"})
        self.assertEqual(rc, OK, tty)
        self.assertIn(self.big_sha.encode(), out)
        self.assertIn(b"modelgate: hashing", tty)

    def test_quiet_and_short_work_are_silent(self):
        rc, out, tty = run_tty(["hash", "-q", self.big], env={"MODELGATE_PROGRESS_AFTER": "0"})
        self.assertEqual((rc, out, tty), (OK, b"", b""))
        # The default: nothing for work under a second.
        small = os.path.join(ST, "e.safetensors")
        rc, out, tty = run_tty(["hash", small])
        self.assertEqual((rc, tty), (OK, b""))
        # Not a terminal: no progress even when asked for at once.
        r = mgtest.run_bin("hash", self.big, env={"MODELGATE_PROGRESS_AFTER": "0"})
        self.assertEqual(r.stderr, "")

    def test_verify_progress_is_well_formed_and_cleared(self):
        self.ws.pin_file("big", self.big, with_size=True)
        self.ws.write_policy()
        env = {"MODELGATE_PROGRESS_AFTER": "0"}
        rc, out, tty = run_tty(["verify", "-p", self.ws.policy_path, "big"], env=env)
        self.assertEqual(rc, OK, tty)
        text = tty.decode()
        for l in [l for l in text.split("\r") if l.strip("\x1b[K")]:
            self.assertRegex(l, r"^modelgate: verifying .* / 256\.0 MiB \(\d+%\) .*/s ETA ")
        if text:
            self.assertTrue(text.endswith("\r\x1b[K"))
        rc, out, tty = run_tty(["verify", "-q", "-p", self.ws.policy_path, "big"], env=env)
        self.assertEqual((rc, out, tty), (OK, b"", b""))

    def test_dump_refuses_binary_to_a_terminal(self):
        path = os.path.join(ST, "e.safetensors")
        self.ws.pin_file("m", path)
        self.ws.write_policy()
        name = self.ws.inspect_json("m")[1]["tensors"][0]["name"]
        want = self.ws.run("dump", "m", name).stdout
        self.assertGreater(len(want), 0)
        rc, _, tty = run_tty(["dump", "-p", self.ws.policy_path, "m", name], stdout_tty=True)
        self.assertEqual(rc, USAGE)
        self.assertIn(b"terminal", tty)
        self.assertIn(b"-o FILE", tty)
        rc, _, tty = run_tty(["dump", "-o", "-", "-p", self.ws.policy_path, "m", name],
                             stdout_tty=True)
        self.assertEqual(rc, OK)
        self.assertGreater(len(tty), 0)
        out = self.ws.path("t.bin")
        rc, _, tty = run_tty(["dump", "-p", self.ws.policy_path, "m", name, "--output=" + out],
                             stdout_tty=True)
        self.assertEqual((rc, tty), (OK, b""))
        with open(out, "rb") as f:
            self.assertEqual(f.read(), want)
        # A failure leaves no file behind.
        r = self.ws.run("dump", "-o", self.ws.path("none.bin"), "m", "no-such-tensor")
        self.assertEqual(r.returncode, USAGE)
        self.assertEqual([n for n in os.listdir(self.ws.dir) if n.startswith("none")], [])


if __name__ == "__main__":
    mgtest.main()
