"""Hugging Face layouts (issue 13, point 7), made the way the `hf` tool makes them:

- hub cache: models--ORG--NAME/{blobs,refs,snapshots/REV}/, every snapshot file a relative
  symlink ../../blobs/<sha256> (LFS files) or ../../blobs/<git sha1> (regular files), one
  more ../ per folder level;
- local-dir: the files themselves plus .cache/huggingface/download/<path>.metadata (rewritten
  by the hub tool), .cache/huggingface/.gitignore, and .gitattributes;
- a git checkout: .git/;
- published digests: a SHA256SUMS list (GNU and BSD forms) imported by `policy pin --sums`.
"""
import hashlib
import json
import os
import shutil

import mgtest
from mgtest import FORMAT, INTEGRITY, OK, POLICY, USAGE, run_bin

ST = os.path.join(mgtest.CORPUS, "safetensors")
REV = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"


def git_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def make_hub_repo(root, files, lfs=("model.safetensors",)):
    """A hub cache repository as `hf download` leaves it; returns the snapshot folder."""
    repo = os.path.join(root, "hub", "models--org--tiny-model")
    os.makedirs(os.path.join(repo, "blobs"))
    os.makedirs(os.path.join(repo, "refs"))
    snap = os.path.join(repo, "snapshots", REV)
    with open(os.path.join(repo, "refs", "main"), "w") as f:
        f.write(REV)
    for rel, data in files.items():
        blob = hashlib.sha256(data).hexdigest() if rel in lfs else git_sha1(data)
        with open(os.path.join(repo, "blobs", blob), "wb") as f:
            f.write(data)
        link = os.path.join(snap, rel)
        os.makedirs(os.path.dirname(link), exist_ok=True)
        depth = rel.count("/")
        os.symlink("../" * (depth + 2) + "blobs/" + blob, link)
    return snap


def make_local_dir(root, files):
    """An `hf download --local-dir` folder."""
    os.makedirs(root)
    for rel, data in files.items():
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
        meta = os.path.join(root, ".cache", "huggingface", "download", rel + ".metadata")
        os.makedirs(os.path.dirname(meta), exist_ok=True)
        with open(meta, "w") as f:
            f.write("%s\n%s\n1733000000.0\n" % (REV, hashlib.sha256(data).hexdigest()))
    with open(os.path.join(root, ".cache", "huggingface", ".gitignore"), "w") as f:
        f.write("*\n")
    with open(os.path.join(root, ".gitattributes"), "w") as f:
        f.write("*.safetensors filter=lfs diff=lfs merge=lfs -text\n")


class Layouts(mgtest.TestCase):
    def setUp(self):
        super().setUp()
        with open(os.path.join(ST, "e.safetensors"), "rb") as f:
            self.weights = f.read()
        self.files = {"model.safetensors": self.weights, "config.json": b'{"hidden": 4}\n',
                      "tokenizer/tokenizer.json": b'{"vocab": {}}\n'}

    def pin(self, *args, expect=OK):
        r = run_bin("policy", "pin", "--json", *args)
        self.assertExit(r, expect)
        return r, json.loads(r.stdout) if r.stdout else None

    def use(self, entry):
        self.ws.models = [entry]
        self.ws.write_policy()

    # ---- hub cache -------------------------------------------------------------------

    def test_hub_snapshot_pin_verify_inspect(self):
        snap = make_hub_repo(self.ws.dir, self.files)
        r, doc = self.pin(snap)
        entry = doc["entry"]
        self.assertEqual(entry["name"], "org--tiny-model")
        self.assertEqual(entry["source"], snap + "/")
        self.assertEqual(set(entry["files"]), set(self.files))  # names, never blob paths
        for rel, data in self.files.items():
            self.assertEqual(entry["files"][rel], {"sha256": hashlib.sha256(data).hexdigest(),
                                                   "size": len(data)})
        self.assertTrue(any("1 file is an LFS blob" in n for n in doc["notes"]), doc["notes"])
        self.use(entry)
        r = self.ws.run("verify", "org--tiny-model")
        self.assertExit(r, OK)
        r, out = self.ws.inspect_json(snap + "/")
        self.assertExit(r, OK)
        self.assertEqual(sorted(f["path"] for f in out["files"]), sorted(self.files))
        self.assertEqual(len(out["tensors"]), 1)
        # sha512 pins work too: the LFS name is then checked by a second SHA-256 pass.
        r, doc = self.pin("-a", "sha512", snap)
        self.assertIn("sha512", doc["entry"]["files"]["model.safetensors"])
        self.use(doc["entry"])
        self.assertExit(self.ws.run("verify", "-q", "org--tiny-model"), OK)

    def test_hub_symlinks_outside_blobs_are_refused(self):
        snap = make_hub_repo(self.ws.dir, self.files)
        _, doc = self.pin(snap)
        self.use(doc["entry"])
        outside = self.ws.write("outside.json", b'{"hidden": 4}\n')
        link = os.path.join(snap, "config.json")
        blob = os.readlink(link)
        cases = {
            "absolute": outside,
            "escapes": "../../../../outside.json",
            "wrong depth": "../blobs/" + os.path.basename(blob),
            "into refs": "../../refs/main",
            "through blobs/..": "../../blobs/../refs/main",
        }
        for why, target in cases.items():
            with self.subTest(why=why):
                os.unlink(link)
                os.symlink(target, link)
                r = self.ws.run("verify", "--json", "org--tiny-model")
                self.assertExit(r, INTEGRITY)
                err = json.loads(r.stdout)["error"]
                self.assertEqual(err["file"], "config.json")
                self.assertIn("blobs", err["message"])
                self.assertExit(run_bin("policy", "pin", snap), INTEGRITY)
        # A blob that is itself a symlink is refused (O_NOFOLLOW beyond the one step).
        os.unlink(link)
        os.symlink(blob, link)
        blob_path = os.path.join(snap, "..", "..", "blobs", os.path.basename(blob))
        os.unlink(blob_path)
        os.symlink(outside, blob_path)
        self.assertExit(self.ws.run("verify", "org--tiny-model"), INTEGRITY)
        # So is a blobs folder reached through a symlink.
        repo = os.path.dirname(os.path.dirname(snap))
        os.rename(os.path.join(repo, "blobs"), os.path.join(repo, "real-blobs"))
        os.symlink("real-blobs", os.path.join(repo, "blobs"))
        r = self.ws.run("verify", "org--tiny-model")
        self.assertExit(r, INTEGRITY)
        self.assertIn("blobs/", r.stderr)

    def test_hub_lfs_blob_name_is_checked(self):
        snap = make_hub_repo(self.ws.dir, self.files)
        _, doc = self.pin(snap)
        self.use(doc["entry"])
        # The right bytes under another SHA-256 name: refused before reading, by the name.
        repo = os.path.dirname(os.path.dirname(snap))
        other = hashlib.sha256(b"other").hexdigest()
        shutil.copy(os.path.join(repo, "blobs", hashlib.sha256(self.weights).hexdigest()),
                    os.path.join(repo, "blobs", other))
        link = os.path.join(snap, "model.safetensors")
        os.unlink(link)
        os.symlink("../../blobs/" + other, link)
        r = self.ws.run("verify", "--json", "org--tiny-model")
        self.assertExit(r, INTEGRITY)
        err = json.loads(r.stdout)["error"]
        self.assertIn("named by its SHA-256", err["message"])
        self.assertEqual((err["expected"], err["actual"]),
                         (hashlib.sha256(self.weights).hexdigest(), other))
        # Pinning such a cache says it is corrupted.
        r = run_bin("policy", "pin", snap)
        self.assertExit(r, INTEGRITY)
        self.assertIn("corrupted hub cache", r.stderr)
        # A changed blob under its old name fails on the digest.
        os.unlink(link)
        os.symlink("../../blobs/" + hashlib.sha256(self.weights).hexdigest(), link)
        bad = bytearray(self.weights)
        bad[-1] ^= 1
        blob = os.path.join(repo, "blobs", hashlib.sha256(self.weights).hexdigest())
        with open(blob, "wb") as f:
            f.write(bad)
        self.assertExit(self.ws.run("verify", "org--tiny-model"), INTEGRITY)

    def test_hub_unlisted_snapshot_file_is_refused(self):
        snap = make_hub_repo(self.ws.dir, self.files)
        _, doc = self.pin(snap)
        self.use(doc["entry"])
        repo = os.path.dirname(os.path.dirname(snap))
        extra = b"new file\n"
        with open(os.path.join(repo, "blobs", git_sha1(extra)), "wb") as f:
            f.write(extra)
        os.symlink("../../blobs/" + git_sha1(extra), os.path.join(snap, "extra.txt"))
        r = self.ws.run("verify", "org--tiny-model")
        self.assertExit(r, INTEGRITY)
        self.assertIn("extra.txt", r.stderr)

    def test_hub_snapshot_of_a_signed_model(self):
        """A model signed by its publisher and downloaded into the hub cache: the manifest
        and its signature are snapshot symlinks too, read through the same one step."""
        src = self.ws.path("published")
        os.makedirs(src)
        for rel, data in self.files.items():
            self.ws.write(os.path.join("published", rel), data)
        key = self.ws.path("k")
        self.assertExit(run_bin("keygen", "-q", "-o", key), OK)
        self.assertExit(run_bin("sign", "-q", "-k", key + ".key", "-n", "hubbed", src), OK)
        files = {}
        for root, _, names in os.walk(src):
            for n in names:
                full = os.path.join(root, n)
                with open(full, "rb") as f:
                    files[os.path.relpath(full, src)] = f.read()
        snap = make_hub_repo(self.ws.path("c"), files)
        self.ws.extra["keys"] = {"k": {"public_key": key + ".pub"}}
        self.use({"name": "hubbed", "source": snap + "/", "manifest": {"keys": ["k"]}})
        r = self.ws.run("inspect", "--json", "hubbed")
        self.assertExit(r, OK)
        self.assertEqual(len(json.loads(r.stdout)["tensors"]), 1)
        # The signature's symlink pointing out of blobs/ is refused like any other.
        os.unlink(os.path.join(snap, "manifest.json.sig"))
        os.symlink(key + ".pub", os.path.join(snap, "manifest.json.sig"))
        r = self.ws.run("verify", "hubbed")
        self.assertExit(r, INTEGRITY)
        self.assertIn("manifest.json.sig", r.stderr)

    def test_symlinks_outside_a_snapshot_stay_refused(self):
        d = self.ws.path("plain")
        os.makedirs(os.path.join(d, "blobs"))
        self.ws.write("plain/blobs/x", b"x")
        self.ws.write("plain/real.bin", b"x")
        self.use({"name": "plain", "source": d + "/",
                  "files": {"real.bin": {"sha256": hashlib.sha256(b"x").hexdigest()},
                            "blobs/x": {"sha256": hashlib.sha256(b"x").hexdigest()}}})
        os.symlink("blobs/x", os.path.join(d, "link.bin"))
        r = self.ws.run("verify", "plain")
        self.assertExit(r, INTEGRITY)
        self.assertIn("symlink", r.stderr)

    # ---- local-dir and git checkouts ---------------------------------------------------

    def test_local_dir_ignores_hub_metadata_by_default(self):
        d = self.ws.path("local")
        make_local_dir(d, self.files)
        _, doc = self.pin(d)
        self.assertEqual(set(doc["entry"]["files"]), set(self.files))
        self.assertNotIn("ignore", doc["entry"])
        self.use(doc["entry"])
        self.assertExit(self.ws.run("verify", "local"), OK)
        # The hub tool rewrites its own metadata, and leaves a lock (here a FIFO: never opened).
        meta = os.path.join(d, ".cache", "huggingface", "download", "model.safetensors.metadata")
        with open(meta, "w") as f:
            f.write("rewritten\n")
        os.mkfifo(os.path.join(d, ".cache", "huggingface", "download", "model.lock"))
        with open(os.path.join(d, ".gitattributes"), "a") as f:
            f.write("*.bin filter=lfs\n")
        os.makedirs(os.path.join(d, ".git", "objects"))
        self.ws.write("local/.git/HEAD", b"ref: refs/heads/main\n")
        self.assertExit(self.ws.run("verify", "local"), OK)
        # Anything else that appears is still refused.
        self.ws.write("local/pytorch_model.bin", b"\x80\x02")
        r = self.ws.run("verify", "local")
        self.assertExit(r, INTEGRITY)
        self.assertIn("pytorch_model.bin", r.stderr)

    def test_ignore_patterns_in_policy_and_pin(self):
        d = self.ws.path("ckpt")
        make_local_dir(d, self.files)
        self.ws.write("ckpt/README.md", b"# model\n")
        self.ws.write("ckpt/docs/notes.md", b"notes\n")
        self.ws.write("ckpt/logs/run1/out.txt", b"log\n")
        _, doc = self.pin("--ignore", "*.md", "--ignore=logs/", d)
        entry = doc["entry"]
        self.assertEqual(entry["ignore"], ["*.md", "logs/"])
        self.assertEqual(set(entry["files"]), set(self.files))
        self.use(entry)
        self.ws.write("ckpt/README.md", b"# changed\n")
        os.chmod(self.ws.path("ckpt/docs/notes.md"), 0)  # never read, so unreadable is fine
        self.ws.write("ckpt/logs/run2/out.txt", b"more\n")
        self.assertExit(self.ws.run("verify", "ckpt"), OK)
        # An ignore pattern never removes a pinned file.
        entry["ignore"] = ["config.json"]
        self.use(entry)
        self.ws.write("ckpt/config.json", b"{}")
        self.assertExit(self.ws.run("verify", "ckpt"), INTEGRITY)

    def test_bad_ignore_patterns(self):
        d = self.ws.path("m")
        make_local_dir(d, self.files)
        for pattern in ("../x", "/abs", "a//b", "a\\b", ""):
            with self.subTest(pattern=pattern):
                self.assertExit(run_bin("policy", "pin", "--ignore", pattern, d), USAGE)
                self.ws.models = [{"name": "m", "source": d + "/", "ignore": [pattern],
                                   "files": {"config.json": {"sha256": "0" * 64}}}]
                self.ws.write_policy()
                r = self.ws.run("policy check")
                self.assertExit(r, POLICY)
                self.assertIn("ignore", r.stdout.decode())
        self.ws.models = [{"name": "f", "source": d + "/config.json", "ignore": ["x"],
                           "sha256": "0" * 64}]
        self.ws.write_policy()
        r = self.ws.run("policy check")
        self.assertExit(r, POLICY)
        self.assertIn("only a local directory model", r.stdout.decode())

    def test_sign_and_verify_a_git_checkout(self):
        d = self.ws.path("repo")
        make_local_dir(d, self.files)
        self.ws.write("repo/.git/config", b"[core]\n")
        key = self.ws.path("k")
        self.assertExit(run_bin("keygen", "-q", "-o", key), OK)
        r = run_bin("sign", "--json", "-k", key + ".key", "-n", "repo", d)
        self.assertExit(r, OK)
        self.assertEqual(json.loads(r.stdout)["files"], len(self.files))
        with open(os.path.join(d, "manifest.json")) as f:
            listed = {e["path"] for e in json.load(f)["files"]}
        self.assertEqual(listed, set(self.files))
        self.ws.extra["keys"] = {"k": {"public_key": key + ".pub"}}
        self.use({"name": "repo", "source": d + "/", "manifest": {"keys": ["k"]}})
        self.ws.write("repo/.git/HEAD", b"ref: refs/heads/x\n")
        self.assertExit(self.ws.run("verify", "repo"), OK)

    # ---- published digests -------------------------------------------------------------

    def sums_text(self, bsd=False, skip=(), extra=()):
        lines = []
        for rel, data in sorted(self.files.items()):
            if rel in skip:
                continue
            h = hashlib.sha256(data).hexdigest()
            lines.append("SHA256 (%s) = %s" % (rel, h) if bsd else "%s  ./%s" % (h, rel))
        for rel in extra:
            lines.append("%s  %s" % ("ab" * 32, rel))
        return ("\n".join(lines) + "\n").encode()

    def test_pin_from_sums_gnu_and_bsd(self):
        d = self.ws.path("local")
        make_local_dir(d, self.files)
        for bsd in (False, True):
            with self.subTest(bsd=bsd):
                sums = self.ws.write("SHA256SUMS", self.sums_text(bsd=bsd))
                _, doc = self.pin("--sums", sums, d)
                self.assertEqual(doc["entry"]["files"],
                                 {rel: {"sha256": hashlib.sha256(data).hexdigest()}
                                  for rel, data in self.files.items()})
                self.use(doc["entry"])
                self.assertExit(self.ws.run("verify", "local"), OK)
        # The list decides, not the disk: a file changed since publication fails verify.
        self.ws.write("local/config.json", b'{"hidden": 5}\n')
        self.assertExit(self.ws.run("verify", "local"), INTEGRITY)
        # A single file from the list.
        sums = self.ws.write("SHA256SUMS", self.sums_text())
        _, doc = self.pin("--sums", sums, os.path.join(d, "model.safetensors"))
        self.assertEqual(doc["entry"]["sha256"], hashlib.sha256(self.weights).hexdigest())

    def test_pin_from_sums_reports_differences(self):
        d = self.ws.path("local")
        make_local_dir(d, self.files)
        self.ws.write("local/extra.bin", b"unlisted")
        sums = self.ws.write("SHA256SUMS", self.sums_text(skip=("config.json",),
                                                          extra=("missing.bin",)))
        r, doc = self.pin("--sums", sums, d, expect=INTEGRITY)
        self.assertIs(doc["ok"], False)
        self.assertEqual(len(doc["mismatches"]), 3, doc["mismatches"])
        text = "\n".join(doc["mismatches"])
        for name in ("missing.bin", "config.json", "extra.bin"):
            self.assertIn(name, text)
        self.assertEqual(doc["error"]["kind"], "integrity")
        r = run_bin("policy", "pin", "--sums", sums, d)
        self.assertExit(r, INTEGRITY)
        self.assertIn("missing.bin: listed in", r.stderr)
        self.assertIn("extra.bin: in the folder but not listed", r.stderr)
        # A hub snapshot: an LFS blob whose name disagrees with the list is a difference.
        snap = make_hub_repo(self.ws.path("h"), self.files)
        wrong = self.sums_text().replace(hashlib.sha256(self.weights).hexdigest().encode(),
                                         b"cd" * 32)
        sums = self.ws.write("SUMS2", wrong)
        r, doc = self.pin("--sums", sums, snap, expect=INTEGRITY)
        self.assertTrue(any("hub blob is named" in m for m in doc["mismatches"]), doc)

    def test_bad_sums_lists(self):
        d = self.ws.path("local")
        make_local_dir(d, self.files)
        for text in (b"garbage\n", b"", ("%s  ../up\n" % ("ab" * 32)).encode(),
                     ("%s  /abs\n" % ("ab" * 32)).encode(),
                     ("%s  a\n%s  a\n" % ("ab" * 32, "ab" * 32)).encode()):
            with self.subTest(text=text):
                sums = self.ws.write("BAD", text)
                self.assertExit(run_bin("policy", "pin", "--sums", sums, d), FORMAT)


if __name__ == "__main__":
    mgtest.main()
