"""Signing conveniences (issue 13, point 8): `sign --add` co-signs for a threshold without
touching the other signatures, after checking the folder against the manifest; minisign
secret keys (from `minisign -G -W`, and encrypted ones with the password from
$MODELGATE_KEY_PASSWORD or a terminal prompt) sign manifest.json.minisig, which Debian's
`minisign -V -H` verifies; sign prints the name and version it signed.

Encrypted keys are made here with small scrypt costs (hashlib.scrypt, with minisign's mapping
of opslimit/memlimit to N, r, p): a key from `minisign -G` costs 1 GiB and ~30 s to open."""
import base64
import hashlib
import json
import os
import pty
import select
import struct
import subprocess
import time

import mgtest
from mgtest import INTEGRITY, OK, SIGNATURE, USAGE, run_bin

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402


def scrypt_cost(ops, mem):
    r = 8
    ops = max(ops, 32768)
    max_n = ops // (r * 4) if ops < mem // 32 else mem // (r * 128)
    log2n = 1
    while log2n < 63 and (1 << log2n) <= max_n // 2:
        log2n += 1
    p = 1 if ops < mem // 32 else min((ops // 4) >> log2n, 0x3fffffff) // r
    return 1 << log2n, r, p


def minisign_secret_key(path, password=None, ops=1 << 20, mem=1 << 24):
    """Write a minisign secret key; returns the public key as minisign prints it."""
    seed = os.urandom(32)
    pk = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    keyid = os.urandom(8)
    sk = seed + pk
    chk = hashlib.blake2b(b"Ed" + keyid + sk, digest_size=32).digest()
    keynum = keyid + sk + chk
    salt = os.urandom(32)
    if password is not None:
        n, r, p = scrypt_cost(ops, mem)
        if n * r * 128 > 256 << 20:  # a crafted cost: never computed here
            stream = os.urandom(104)
        else:
            stream = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p,
                                    maxmem=256 << 20, dklen=104)
        keynum = bytes(a ^ b for a, b in zip(keynum, stream))
        kdf = b"Sc"
    else:
        kdf, ops, mem = b"\0\0", 0, 0
    blob = b"Ed" + kdf + b"B2" + salt + struct.pack("<QQ", ops, mem) + keynum
    with open(path, "w") as f:
        f.write("untrusted comment: minisign encrypted secret key\n%s\n"
                % base64.b64encode(blob).decode())
    os.chmod(path, 0o600)
    return base64.b64encode(b"Ed" + keyid + pk).decode()


def read_text(path):
    with open(path) as f:
        return f.read()


def minisign_verify(pub, path):
    return subprocess.run(["minisign", "-V", "-H", "-P", pub, "-m", path, "-x", path + ".minisig"],
                          capture_output=True)


class CoSign(mgtest.TestCase):
    def setUp(self):
        super().setUp()
        self.model = self.ws.path("m")
        os.makedirs(os.path.join(self.model, "sub"))
        self.ws.write("m/weights.bin", bytes(range(256)) * 8)
        self.ws.write("m/sub/config.json", b'{"a": 1}\n')
        self.keys = {}
        for k in ("a", "b", "c"):
            self.assertExit(run_bin("keygen", "-q", "-o", self.ws.path(k)), OK)
            self.keys[k] = {"public_key": self.ws.path(k + ".pub")}

    def policy(self, keys, threshold):
        self.ws.extra["keys"] = {k: self.keys[k] for k in keys}
        self.ws.models = [{"name": "m", "source": self.model + "/",
                           "manifest": {"keys": keys, "threshold": threshold}}]
        self.ws.write_policy()

    def read(self, name):
        with open(os.path.join(self.model, name), "rb") as f:
            return f.read()

    def test_add_writes_the_next_free_signature(self):
        r = run_bin("sign", "-k", self.ws.path("a.key"), "-V", "3", "-n", "m", self.model)
        self.assertExit(r, OK)
        self.assertIn(b"signed m version 3 (2 files)", r.stdout)
        manifest, sig = self.read("manifest.json"), self.read("manifest.json.sig")
        self.policy(["a", "b", "c"], 2)
        self.assertExit(self.ws.run("verify", "m"), SIGNATURE)  # 1 of 2
        r = run_bin("sign", "--add", "--json", "-k", self.ws.path("b.key"), self.model)
        self.assertExit(r, OK)
        doc = json.loads(r.stdout)
        self.assertEqual((doc["name"], doc["version"]), ("m", 3))
        self.assertTrue(doc["signature"].endswith("manifest.json.sig.1"))
        self.assertEqual((self.read("manifest.json"), self.read("manifest.json.sig")), (manifest, sig))
        self.assertExit(self.ws.run("verify", "m"), OK)
        r = run_bin("sign", "--add", "-k", self.ws.path("c.key"), self.model)
        self.assertExit(r, OK)
        self.assertIn(b"manifest.json.sig.2", r.stdout)
        self.assertEqual(self.read("manifest.json.sig"), sig)
        self.policy(["a", "b", "c"], 3)
        self.assertExit(self.ws.run("verify", "m"), OK)

    def test_add_checks_the_folder_first(self):
        self.assertExit(run_bin("sign", "-q", "-k", self.ws.path("a.key"), self.model), OK)
        before = sorted(os.listdir(self.model))
        self.ws.write("m/weights.bin", b"changed")
        r = run_bin("sign", "--add", "--json", "-k", self.ws.path("b.key"), self.model)
        self.assertExit(r, INTEGRITY)
        self.assertEqual(json.loads(r.stdout)["error"]["file"], "weights.bin")
        self.ws.write("m/weights.bin", bytes(range(256)) * 8)
        self.ws.write("m/extra.txt", b"x")
        r = run_bin("sign", "--add", "-k", self.ws.path("b.key"), self.model)
        self.assertExit(r, INTEGRITY)
        self.assertIn("extra.txt", r.stderr)
        os.unlink(os.path.join(self.model, "extra.txt"))
        self.assertEqual(sorted(os.listdir(self.model)), before)
        # Ignored files (a git checkout) do not stop a co-signature.
        self.ws.write("m/.git/HEAD", b"ref: x\n")
        self.assertExit(run_bin("sign", "--add", "-q", "-k", self.ws.path("b.key"), self.model), OK)

    def test_add_usage(self):
        r = run_bin("sign", "--add", "-k", self.ws.path("a.key"), self.model)
        self.assertExit(r, SIGNATURE)
        self.assertIn("sign without --add first", r.stderr)
        for extra in (["-V", "2"], ["-n", "x"], ["-a", "sha512"],
                      ["--expires", "2099-01-01T00:00:00Z"]):
            with self.subTest(extra=extra):
                self.assertExit(run_bin("sign", "--add", *extra, "-k", self.ws.path("a.key"),
                                        self.model), USAGE)

    def test_unencrypted_minisign_key_from_minisign(self):
        key, pubf = self.ws.path("ms.key"), self.ws.path("ms.pub")
        p = subprocess.run(["minisign", "-G", "-W", "-p", pubf, "-s", key], capture_output=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        pub = read_text(pubf).splitlines()[1]
        r = run_bin("sign", "-k", key, "-V", "5", "-n", "m", self.model)
        self.assertExit(r, OK)
        self.assertIn(b"signed m version 5", r.stdout)
        self.assertIn(b"manifest.json.minisig", r.stdout)
        v = minisign_verify(pub, os.path.join(self.model, "manifest.json"))
        self.assertEqual(v.returncode, 0, v.stderr)
        self.assertIn(b"model:m\tversion:5", v.stdout)
        self.ws.extra["keys"] = {"ms": {"minisign": pub}}
        self.ws.models = [{"name": "m", "source": self.model + "/", "manifest": {"keys": ["ms"]}}]
        self.ws.write_policy()
        self.assertExit(self.ws.run("verify", "m"), OK)

    def test_encrypted_minisign_key_password_from_env(self):
        key = self.ws.path("enc.key")
        pub = minisign_secret_key(key, password="correct horse")
        r = run_bin("sign", "-q", "-k", key, self.model, env={"MODELGATE_KEY_PASSWORD": "correct horse"})
        self.assertExit(r, OK)
        self.assertEqual(minisign_verify(pub, os.path.join(self.model, "manifest.json")).returncode, 0)
        r = run_bin("sign", "-k", key, self.model, env={"MODELGATE_KEY_PASSWORD": "wrong"})
        self.assertExit(r, USAGE)
        self.assertIn("wrong password", r.stderr)
        # No password and no terminal: say how to give one.
        env = dict(os.environ)
        env.pop("MODELGATE_KEY_PASSWORD", None)
        p = subprocess.run([mgtest.BIN, "sign", "-k", key, self.model], capture_output=True,
                           env=env, start_new_session=True)
        self.assertEqual(p.returncode, USAGE)
        self.assertIn(b"MODELGATE_KEY_PASSWORD", p.stderr)

    def test_encrypted_minisign_key_password_prompt(self):
        key = self.ws.path("enc.key")
        pub = minisign_secret_key(key, password="s3cret")
        env = dict(os.environ)
        env.pop("MODELGATE_KEY_PASSWORD", None)
        pid, fd = pty.fork()
        if pid == 0:
            os.execve(mgtest.BIN, [mgtest.BIN, "sign", "-k", key, self.model], env)
        seen = b""
        deadline = time.time() + 60
        while b"Password for" not in seen and time.time() < deadline:
            if select.select([fd], [], [], 0.5)[0]:
                seen += os.read(fd, 4096)
        self.assertIn(b"Password for " + key.encode(), seen)
        os.write(fd, b"s3cret\n")
        rest = b""
        while True:
            try:
                d = os.read(fd, 4096)
            except OSError:
                break
            if not d:
                break
            rest += d
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), OK, rest)
        self.assertNotIn(b"s3cret", seen + rest)  # not echoed
        self.assertEqual(minisign_verify(pub, os.path.join(self.model, "manifest.json")).returncode, 0)

    def test_cosign_with_a_minisign_key(self):
        key = self.ws.path("ms.key")
        pub = minisign_secret_key(key)
        self.assertExit(run_bin("sign", "-q", "-k", self.ws.path("a.key"), self.model), OK)
        r = run_bin("sign", "--add", "-k", key, self.model)
        self.assertExit(r, OK)
        self.assertIn(b"manifest.json.minisig", r.stdout)
        self.keys["ms"] = {"minisign": pub}
        self.policy(["a", "ms"], 2)
        self.assertExit(self.ws.run("verify", "m"), OK)
        # Only one .minisig: a second minisign co-signature is refused, the first kept.
        sig = self.read("manifest.json.minisig")
        self.assertExit(run_bin("sign", "--add", "-k", key, self.model), USAGE)
        self.assertEqual(self.read("manifest.json.minisig"), sig)

    def test_bad_minisign_keys(self):
        key = self.ws.path("bad.key")
        for text in ("untrusted comment: x\nnot base64\n",
                     "untrusted comment: x\n%s\n" % base64.b64encode(b"Ed\0\0B2" + bytes(10)).decode()):
            with self.subTest(text=text):
                with open(key, "w") as f:
                    f.write(text)
                self.assertExit(run_bin("sign", "-k", key, self.model), USAGE)
        # A secret half that does not match its public half.
        minisign_secret_key(key)
        lines = read_text(key).splitlines()
        blob = bytearray(base64.b64decode(lines[1]))
        blob[54 + 8 + 40] ^= 1  # a byte of the stored public key
        with open(key, "w") as f:
            f.write("%s\n%s\n" % (lines[0], base64.b64encode(bytes(blob)).decode()))
        r = run_bin("sign", "-k", key, self.model)
        self.assertExit(r, USAGE)
        self.assertIn("public half", r.stderr)
        # A crafted scrypt cost is refused before any memory is taken.
        minisign_secret_key(key, password="x", ops=1 << 40, mem=1 << 45)
        r = run_bin("sign", "-k", key, self.model, env={"MODELGATE_KEY_PASSWORD": "x"})
        self.assertExit(r, mgtest.LIMIT)


if __name__ == "__main__":
    mgtest.main()
