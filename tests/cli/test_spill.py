#!/usr/bin/python3
"""Verified file-backed loads (policy "memory" and "spill_dir"): the same tensors as from
memory for every test file, nothing left in the spill folder (not even after SIGKILL), bad
folders refused as policy errors, tampered files refused, RLIMIT_AS, and (where a memory cgroup can be made)
a model 1.5x larger than a cgroup memory limit."""
import json
import os
import resource
import shutil
import signal
import struct
import subprocess
import time
import unittest

import mgtest
from mgtest import INTEGRITY, LIMIT, OK, POLICY

MIB = 1 << 20


def every_test_file():
    """Every file of the real corpus, as test_sandbox takes it."""
    out = []
    for root, dirs, names in os.walk(mgtest.CORPUS):
        dirs.sort()
        for n in sorted(names):
            if n.endswith((".py", ".md", ".tsv", ".pub", ".key", ".minisig", ".sig")):
                continue
            out.append(os.path.join(root, n))
    return out


def write_safetensors(path, nbytes, seed):
    """One U8 tensor "t<seed>" of `nbytes` bytes (a cheap pattern that differs per seed)."""
    hdr = json.dumps({"t%d" % seed: {"dtype": "U8", "shape": [nbytes], "data_offsets": [0, nbytes]}}).encode()
    hdr += b" " * (-len(hdr) % 8)
    block = bytes((i * 131 + seed * 7) & 0xFF for i in range(MIB - 1)) + bytes([seed])
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hdr)) + hdr)
        left = nbytes
        while left > 0:
            n = min(left, len(block))
            f.write(block[:n])
            left -= n
    return len(hdr) + 8


class Base(mgtest.TestCase):
    def spill_dir(self, mode=0o700):
        d = self.ws.path("spill")
        os.makedirs(d, exist_ok=True)
        os.chmod(d, mode)
        return d

    def big_model(self, files, nbytes, name="big"):
        d = self.ws.path(name)
        os.makedirs(d, exist_ok=True)
        offsets = {}
        for i in range(files):
            p = os.path.join(d, "part-%d.safetensors" % i)
            offsets[p] = write_safetensors(p, nbytes, i)
        self.ws.pin_dir(name, d)
        return offsets


class SameTensors(Base):
    def test_every_file_same_answer_file_and_ram(self):
        files = every_test_file()
        self.assertGreater(len(files), 25)
        self.ws.extra["spill_dir"] = self.spill_dir()
        for i, path in enumerate(files):
            self.ws.pin_file("r%d" % i, path)["memory"] = "ram"
            entry = dict(self.ws.pin_file("f%d" % i, path))
            with open(path, "rb") as f:
                copy = self.ws.write("copies/%d/%s" % (i, os.path.basename(path)), f.read())
            self.ws.models[-1] = dict(entry, source=copy, memory="file")
        self.ws.write_policy()
        loaded = dumped = 0
        for i, path in enumerate(files):
            with self.subTest(file=os.path.relpath(path, mgtest.CORPUS)):
                a, da = self.ws.inspect_json("r%d" % i)
                b, db = self.ws.inspect_json("f%d" % i)
                self.assertEqual(a.returncode, b.returncode, a.stderr + b.stderr)
                if a.returncode != OK:
                    self.assertEqual(da["error"]["kind"], db["error"]["kind"])
                    continue
                loaded += 1
                self.assertEqual(da.pop("memory"), "ram")
                self.assertEqual(db.pop("memory"), "file")
                for d in (da, db):
                    d.pop("model"), d.pop("source")
                self.assertEqual(da, db)
                # The bytes of the first and the last tensor, from each.
                names = [t["name"] for t in da["tensors"]]
                for name in sorted(set(names[:1] + names[-1:])):
                    x = self.ws.run("dump", "r%d" % i, name)
                    y = self.ws.run("dump", "f%d" % i, name)
                    self.assertExit(x, OK)
                    self.assertExit(y, OK)
                    self.assertEqual(x.stdout, y.stdout)
                    dumped += 1
        self.assertGreater(loaded, 15)
        self.assertGreater(dumped, 15)
        self.assertEqual(os.listdir(self.ws.path("spill")), [])

    def test_cache_dir_is_the_default_folder_and_text_says_file(self):
        cache = self.ws.path("cache")
        os.mkdir(cache, 0o700)
        self.ws.extra.update(cache_dir=cache, memory="file")
        self.ws.pin_file("m", os.path.join(mgtest.CORPUS, "gguf", "llama-2-tiny-random.gguf"))
        self.ws.write_policy()
        r = self.ws.run("inspect", "m")
        self.assertExit(r, OK)
        self.assertIn(b"memory: file", r.stdout)
        self.assertEqual(os.listdir(cache), [])
        # "ram" per model wins over the policy's "file"; "auto" keeps a small model in memory.
        for mode in ("ram", "auto"):
            self.ws.models[0]["memory"] = mode
            self.ws.write_policy()
            self.assertEqual(self.ws.inspect_json("m")[1]["memory"], "ram")


class Auto(Base):
    def test_auto_takes_the_parser_budget_into_account(self):
        """"auto": model + parser_memory + 64 MiB against the memory there is; a budget of
        1 PiB cannot fit anywhere, so even a small model goes to a spill file."""
        self.ws.extra["spill_dir"] = self.spill_dir()
        self.ws.pin_file("m", os.path.join(mgtest.CORPUS, "gguf", "llama-2-tiny-random.gguf"))
        self.ws.write_policy()
        self.assertEqual(self.ws.inspect_json("m")[1]["memory"], "ram")
        self.ws.extra["limits"] = {"parser_memory": 1 << 50}
        self.ws.write_policy()
        self.assertEqual(self.ws.inspect_json("m")[1]["memory"], "file")
        self.ws.models[0]["memory"] = "ram"
        self.ws.write_policy()
        self.assertEqual(self.ws.inspect_json("m")[1]["memory"], "ram")
        # Without a spill folder "auto" keeps the model in memory.
        self.ws.models[0].pop("memory")
        self.ws.extra.pop("spill_dir")
        self.ws.write_policy()
        self.assertEqual(self.ws.inspect_json("m")[1]["memory"], "ram")
        # A cache_dir standing in that cannot serve: the refusal says why a spill was wanted.
        self.ws.extra["cache_dir"] = self.ws.path("no-cache")
        self.ws.write_policy()
        r = self.ws.run("inspect", "m")
        self.assertExit(r, POLICY)
        self.assertIn("need spill files (memory \"auto\")", r.stderr)
        self.assertIn("does not exist", r.stderr)


class Unnamed(Base):
    def test_nothing_left_after_sigkill_mid_load(self):
        spill = self.spill_dir()
        self.ws.extra.update(spill_dir=spill, memory="file")
        self.big_model(3, 64 * MIB)
        self.ws.write_policy()
        p = subprocess.Popen([mgtest.BIN, "inspect", "-p", self.ws.policy_path, "big"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        seen = None
        deadline = time.monotonic() + 60
        try:
            while seen is None and p.poll() is None and time.monotonic() < deadline:
                try:
                    for fd in os.listdir("/proc/%d/fd" % p.pid):
                        try:
                            t = os.readlink("/proc/%d/fd/%s" % (p.pid, fd))
                        except OSError:
                            continue
                        if t.startswith(spill + "/"):
                            seen = t
                except OSError:
                    pass
                time.sleep(0.002)
            if seen is not None:
                p.send_signal(signal.SIGKILL)
        finally:
            p.wait()
        self.assertIsNotNone(seen, "no spill file was seen open during the load")
        # An unnamed file: "(deleted)" from its birth, and gone with its last descriptor.
        self.assertTrue(seen.endswith("(deleted)"), seen)
        self.assertEqual(p.returncode, -signal.SIGKILL)
        self.assertEqual(os.listdir(spill), [])


class BadFolders(Base):
    def model(self):
        return os.path.join(mgtest.CORPUS, "gguf", "llama-2-tiny-random.gguf")

    def refused(self, where, *words):
        self.ws.write_policy()
        r = self.ws.run("inspect", "m")
        self.assertExit(r, POLICY)
        self.assertEqual(r.stdout, b"")
        self.assertIn(where, r.stderr)
        for w in words:
            self.assertIn(w, r.stderr)

    def test_bad_spill_dir_is_a_policy_error(self):
        self.ws.pin_file("m", self.model())
        target = self.spill_dir()
        os.symlink(target, self.ws.path("link"))
        self.ws.write("afile", b"x")
        cases = [(self.ws.path("missing"), "does not exist"),
                 (self.ws.path("afile"), "non-folder"),
                 (self.ws.path("link"), "symlink")]
        for path, word in cases:
            with self.subTest(path=path):
                self.ws.extra["spill_dir"] = path
                self.refused("$.spill_dir", word)
        for mode in (0o777, 0o770, 0o1777):
            with self.subTest(mode=oct(mode)):
                os.chmod(target, mode)
                self.ws.extra["spill_dir"] = target
                self.refused("$.spill_dir", "writable by group or others")
        os.chmod(target, 0o700)
        self.ws.write_policy()
        self.assertExit(self.ws.run("inspect", "m"), OK)

    def test_cache_dir_standing_in_is_checked_at_load(self):
        cache = self.ws.path("cache")
        os.mkdir(cache)
        os.chmod(cache, 0o777)
        self.ws.pin_file("m", self.model())
        self.ws.extra.update(cache_dir=cache, memory="file")
        self.refused("cache_dir", "writable by group or others")
        self.ws.extra["memory"] = "ram"  # not used: not checked
        self.ws.write_policy()
        self.assertExit(self.ws.run("inspect", "m"), OK)

    def test_refused_memory_values(self):
        self.ws.pin_file("m", self.model())
        self.ws.extra["memory"] = "file"  # no spill_dir, no cache_dir
        self.refused("$.memory", "spill_dir or cache_dir")
        self.ws.extra["memory"] = "disk"
        self.refused("$.memory", "\"auto\", \"ram\" or \"file\"")
        self.ws.extra.pop("memory")
        self.ws.models[0]["memory"] = True
        self.refused("$.models[0].memory")
        self.ws.models[0].pop("memory")
        self.ws.models.append({"name": "r", "source": "https://example.invalid/m.gguf",
                               "sha256": "0" * 64, "size": 10, "memory": "file"})
        self.ws.extra["spill_dir"] = self.spill_dir()
        self.refused("$.models[1].memory", "local")


class Tampered(Base):
    def test_tampered_file_refused_and_nothing_left(self):
        spill = self.spill_dir()
        self.ws.extra.update(spill_dir=spill, memory="file",
                             audit_log=self.ws.path("audit.log"))
        offsets = self.big_model(2, 4 * MIB)
        self.ws.write_policy()
        self.assertExit(self.ws.run("inspect", "big"), OK)
        victim = sorted(offsets)[1]
        with open(victim, "r+b") as f:
            f.seek(offsets[victim] + 3 * MIB)
            f.write(b"\x00")
        r = self.ws.run("inspect", "--json", "big")
        self.assertExit(r, INTEGRITY)
        doc = json.loads(r.stdout)
        self.assertEqual(doc["error"]["file"], "part-1.safetensors")
        self.assertNotIn("tensors", doc)
        self.assertEqual(os.listdir(spill), [])
        with open(self.ws.path("audit.log")) as f:
            last = json.loads(f.readlines()[-1])
        self.assertEqual((last["result"], last["error"]), ("rejected", "integrity"))


@unittest.skipIf(mgtest.SANITIZED or mgtest.VALGRIND, "an address-space limit needs the plain build")
class AddressSpace(Base):
    """RLIMIT_AS counts every mapping, file-backed ones too: a spill file cannot get a model
    past it, and the load says so (exit 8) instead of failing somewhere inside."""

    def test_rlimit_as(self):
        self.ws.extra["spill_dir"] = self.spill_dir()
        self.big_model(3, 100 * MIB)
        self.ws.write_policy()
        limit = 250 * MIB

        def cap():  # the soft limit: the confined child sets its own below the hard one
            resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))

        for mode in ("file", "ram"):
            with self.subTest(memory=mode):
                self.ws.extra["memory"] = mode
                self.ws.write_policy()
                r = self.ws.run("inspect", "big", preexec_fn=cap)
                self.assertExit(r, LIMIT)
                if mode == "file":
                    self.assertIn("RLIMIT_AS", r.stderr)
        self.assertEqual(os.listdir(self.ws.path("spill")), [])
        # Under the same limit a model that fits loads from spill files.
        self.big_model(1, 64 * MIB, "small")
        self.ws.extra["memory"] = "file"
        self.ws.write_policy()
        r = self.ws.run("inspect", "--json", "small", preexec_fn=cap)
        self.assertExit(r, OK)
        self.assertEqual(json.loads(r.stdout)["memory"], "file")


def clone_tools():
    """What the clone test needs: root, mkfs.btrfs, unshare, mount, strace; None if all there."""
    if os.geteuid() != 0:
        return "not root"
    for tool in ("mkfs.btrfs", "unshare", "mount", "strace"):
        if shutil.which(tool) is None:
            return "%s is not installed" % tool
    with open("/proc/filesystems") as f:
        if "btrfs" not in f.read():
            return "the kernel has no btrfs"
    return None


@unittest.skipIf(mgtest.VALGRIND or mgtest.SANITIZED, "strace does not mix with valgrind or LeakSanitizer")
class Clone(Base):
    """Where the file system shares blocks (btrfs here, on a loop device in a private mount
    namespace), the spill file is a FICLONE clone, hashed from its mapping: no copy."""

    def test_clone_on_btrfs(self):
        why = clone_tools()
        if why is not None:
            self.skipTest(why)
        img, mnt = self.ws.path("btrfs.img"), self.ws.path("mnt")
        os.mkdir(mnt)
        with open(img, "wb") as f:
            f.truncate(256 * MIB)
        r = subprocess.run(["mkfs.btrfs", "-q", img], capture_output=True)
        if r.returncode != 0:
            self.skipTest("mkfs.btrfs failed: %s" % r.stderr.decode()[-200:])
        model = os.path.join(mgtest.CORPUS, "gguf", "llama-2-tiny-random.gguf")
        inner = os.path.join(mnt, os.path.basename(model))
        digest = mgtest.digest_file(model)
        self.ws.extra["spill_dir"] = os.path.join(mnt, "spill")
        self.ws.models = [{"name": "c", "source": inner, "sha256": digest, "memory": "file"},
                          {"name": "r", "source": model, "sha256": digest, "memory": "ram"}]
        # (the policy is checked inside the namespace, where spill_dir exists)
        self.ws.write_policy()
        trace = self.ws.path("trace")
        script = ("mount -o loop \"$1\" \"$2\" || exit 90; mkdir -m 700 \"$2/spill\"; "
                  "cp \"$3\" \"$2/\"; "
                  "strace -f -qq -e trace=ioctl,copy_file_range -o \"$4\" "
                  "\"$5\" inspect --json -p \"$6\" c > \"$4.c\" || exit 91; "
                  "\"$5\" inspect --json -p \"$6\" r > \"$4.r\" || exit 92; "
                  "ls -A \"$2/spill\" > \"$4.left\"")
        r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
                            img, mnt, model, trace, mgtest.BIN, self.ws.policy_path],
                           capture_output=True)
        if r.returncode == 90:
            self.skipTest("cannot mount a loop device here: %s" % r.stderr.decode()[-200:])
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        with open(trace) as f:
            calls = f.read()
        self.assertRegex(calls, r"FICLONE[^\n]*\) = 0")
        self.assertNotIn("copy_file_range", calls)
        with open(trace + ".c") as f:
            dc = json.load(f)
        with open(trace + ".r") as f:
            dr = json.load(f)
        self.assertEqual((dc.pop("memory"), dr.pop("memory")), ("file", "ram"))
        for d in (dc, dr):
            d.pop("model"), d.pop("source")
        self.assertEqual(dc, dr)
        with open(trace + ".left") as f:
            self.assertEqual(f.read(), "")


def own_memory_cgroup():
    """(kind, folder) of this process's memory cgroup, or None."""
    with open("/proc/self/cgroup") as f:
        lines = [l.rstrip("\n").split(":", 2) for l in f]
    for hid, ctrls, path in lines:
        if "memory" in ctrls.split(","):
            d = "/sys/fs/cgroup/memory" + path
            if os.path.exists(os.path.join(d, "memory.limit_in_bytes")):
                return "v1", d
    for hid, ctrls, path in lines:
        if hid == "0":
            d = "/sys/fs/cgroup" + path
            if os.path.exists(os.path.join(d, "cgroup.subtree_control")):
                return "v2", d
    return None


def cgroup_unavailable():
    """Why the cgroup test cannot run here, or None. It runs wherever a writable memory cgroup
    is (as root on the build machine and in CI); MG_TEST_CGROUP=1 makes its absence a failure,
    MG_TEST_CGROUP=0 skips it."""
    if os.environ.get("MG_TEST_CGROUP") == "0":
        return "MG_TEST_CGROUP=0"
    if mgtest.VALGRIND:
        return "valgrind's own memory does not fit the cgroup"
    if os.environ.get("MG_TEST_CGROUP") == "1":
        return None
    found = own_memory_cgroup()
    if found is None or not os.access(found[1], os.W_OK):
        return "no writable memory cgroup below this process's own (MG_TEST_CGROUP=1 to insist)"
    return None


@unittest.skipIf(cgroup_unavailable(), cgroup_unavailable())
class LargerThanMemory(Base):
    """A model 1.5x larger than a memory cgroup's limit loads from spill files (the memfd of
    "ram" cannot be reclaimed, the pages of a spill file can). The test makes a cgroup below
    its own, runs the tool in it and removes it."""

    def setUp(self):
        super().setUp()
        found = own_memory_cgroup()
        if found is None or not os.access(found[1], os.W_OK):
            self.fail("no writable memory cgroup below this process's own")
        self.kind, parent = found
        self.cg = os.path.join(parent, "modelgate-test-%d" % os.getpid())
        os.mkdir(self.cg)
        if self.kind == "v2":
            with open(os.path.join(parent, "cgroup.subtree_control"), "w") as f:
                f.write("+memory")

    def tearDown(self):
        for _ in range(50):
            try:
                os.rmdir(self.cg)
                break
            except OSError:
                time.sleep(0.1)
        super().tearDown()

    def test_model_larger_than_cgroup_limit(self):
        limit = 200 * MIB
        name = "memory.limit_in_bytes" if self.kind == "v1" else "memory.max"
        with open(os.path.join(self.cg, name), "w") as f:
            f.write(str(limit))
        if self.kind == "v2":
            with open(os.path.join(self.cg, "memory.swap.max"), "w") as f:
                f.write("0")
        procs = os.path.join(self.cg, "cgroup.procs")

        def enter():
            with open(procs, "w") as f:
                f.write(str(os.getpid()))

        self.ws.extra["spill_dir"] = self.spill_dir()
        offsets = self.big_model(3, 100 * MIB)  # 1.5x the limit
        for mode, want in (("auto", OK), ("file", OK), ("ram", None)):
            with self.subTest(memory=mode):
                self.ws.extra["memory"] = mode
                self.ws.write_policy()
                r = self.ws.run("inspect", "--json", "big", preexec_fn=enter)
                if want is None:
                    # The memfd pages cannot be reclaimed: a limit error (exit 8) or the
                    # kernel's OOM killer, never a load.
                    self.assertIn(r.returncode, (LIMIT, -signal.SIGKILL), r.stderr)
                    continue
                self.assertExit(r, OK)
                self.assertEqual(json.loads(r.stdout)["memory"], "file")
                # The tensor's bytes are the file's.
                out = self.ws.path("t2.bin")
                d = self.ws.run("dump", "-o", out, "big", "t2", preexec_fn=enter)
                self.assertExit(d, OK)
                part = self.ws.path("big", "part-2.safetensors")
                with open(part, "rb") as a, open(out, "rb") as b:
                    a.seek(offsets[part])
                    while True:
                        x, y = a.read(MIB), b.read(MIB)
                        self.assertEqual(x, y)
                        if not x:
                            break
                os.remove(out)
        self.assertEqual(os.listdir(self.ws.path("spill")), [])


if __name__ == "__main__":
    mgtest.main()
