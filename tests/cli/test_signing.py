"""Signed manifests through the command line (SPEC §3, §5): keygen, sign, verify/inspect.

- interop both ways: signatures made by `modelgate sign` verify with the openssl CLI and
  Python cryptography; signatures made by the openssl CLI (RSA-PSS salt=max over the SHA-256,
  Ed25519 -rawin, ECDSA P-256/P-384), Python cryptography (PSS MAX_LENGTH) and Debian's
  `minisign` verify with `modelgate verify`.
- minisign cannot verify `manifest.json.sig` as it is: that file is a raw Ed25519 signature,
  while a .minisig is four text lines whose signature is over BLAKE2b-512(file) (or, legacy,
  over the file) plus a global signature over the trusted comment that only the private key can
  make. The raw Ed25519 signature bytes are exactly minisign's legacy "Ed" signature, so the
  test wraps them, adds the global signature with the same key, and has `minisign -V` check
  them: the bytes modelgate signs are what minisign verifies.
- the tamper matrix, each case with its exact exit code.

Run by ctest with MODELGATE_BIN set; needs openssl, minisign and /usr/bin/python3 with
python3-cryptography.
"""
import base64
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mgtest  # noqa: E402
from mgtest import INTEGRITY, OK, POLICY, SIGNATURE, FORMAT, USAGE, IO, run_bin  # noqa: E402

from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, padding  # noqa: E402


def sh(*args, check=True, input=None):
    p = subprocess.run(list(args), capture_output=True, input=input)
    if check and p.returncode != 0:
        raise AssertionError("%r failed: %s" % (args, p.stderr.decode(errors="replace")))
    return p


class Signing(mgtest.TestCase):

    def setUp(self):
        super().setUp()
        ws = self.ws
        self.model = ws.path("models", "m")
        os.makedirs(os.path.join(self.model, "sub", "deeper"))
        ws.write("models/m/weights.bin", bytes(range(256)) * 40)
        ws.write("models/m/config.json", b'{"hidden": 64}\n')
        ws.write("models/m/sub/tokenizer.txt", b"a b c\n")
        ws.write("models/m/sub/deeper/z.bin", b"\x00" * 17)
        os.makedirs(ws.path("keys"))
        self.key = self.keygen("ed")
        self.state = ws.path("state")
        self.keys = {"ed": {"public_key": "keys/ed.pub"}}
        self.use_manifest_model()

    # ---- helpers ----------------------------------------------------------------------

    def keygen(self, name, *args):
        r = run_bin("keygen", *args, "-o", self.ws.path("keys", name))
        self.assertExit(r, OK, "keygen")
        return self.ws.path("keys", name + ".key")

    def use_manifest_model(self, keys=("ed",), threshold=1, name="m"):
        self.ws.models = [{"name": name, "source": self.model + "/",
                           "manifest": {"keys": list(keys), "threshold": threshold}}]
        self.write_policy()

    def write_policy(self):
        self.ws.extra = {"keys": self.keys, "state_dir": self.state}
        self.ws.write_policy()

    def sign(self, *args, key=None, expect=OK):
        r = run_bin("sign", "-k", key or self.key, *args, self.model)
        self.assertExit(r, expect, "sign")
        return r

    def verify(self, expect, msg=""):
        r = self.ws.run("verify", "m")
        self.assertExit(r, expect, msg)
        return r

    def manifest_path(self, suffix=""):
        return os.path.join(self.model, "manifest.json" + suffix)

    def read(self, path):
        with open(path, "rb") as f:
            return f.read()

    def write_file(self, path, data):
        with open(path, "wb") as f:
            f.write(data)

    def flip(self, path, offset=0):
        data = bytearray(self.read(path))
        data[offset] ^= 1
        self.write_file(path, bytes(data))

    def openssl_ed25519_sign(self, key, suffix=".sig"):
        sh("openssl", "pkeyutl", "-sign", "-rawin", "-inkey", key, "-in", self.manifest_path(),
           "-out", self.manifest_path(suffix))

    def rewrite_manifest(self, edit):
        """Change the manifest's JSON and sign it again with the Ed25519 key (openssl CLI)."""
        doc = json.loads(self.read(self.manifest_path()))
        edit(doc)
        self.write_file(self.manifest_path(), json.dumps(doc, indent=1).encode() + b"\n")
        self.openssl_ed25519_sign(self.key)

    # ---- keygen ------------------------------------------------------------------------

    def test_keygen_files_and_no_overwrite(self):
        st = os.stat(self.key)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        self.assertTrue(self.read(self.key).startswith(b"-----BEGIN PRIVATE KEY-----\n"))
        self.assertTrue(self.read(self.ws.path("keys", "ed.pub")).startswith(
            b"-----BEGIN PUBLIC KEY-----\n"))
        # openssl reads both and they are one pair.
        pub_from_priv = sh("openssl", "pkey", "-in", self.key, "-pubout").stdout
        self.assertEqual(pub_from_priv, self.read(self.ws.path("keys", "ed.pub")))
        before = self.read(self.key)
        r = run_bin("keygen", "-o", self.ws.path("keys", "ed"))
        self.assertExit(r, USAGE, "keygen over an existing key")
        self.assertEqual(self.read(self.key), before)
        self.assertNotIn("PRIVATE", r.stderr)
        # Either file existing is enough to refuse.
        self.ws.write("keys/half.pub", b"x")
        self.assertExit(run_bin("keygen", "-o", self.ws.path("keys", "half")), USAGE)
        self.assertFalse(os.path.exists(self.ws.path("keys", "half.key")))
        for t, header in (("ecdsa-p256", "EC"), ("rsa-3072", "RSA")):
            self.keygen(t, "-t", t)
            text = sh("openssl", "pkey", "-in", self.ws.path("keys", t + ".key"), "-noout",
                      "-text").stdout.decode()
            self.assertIn("3072 bit" if t == "rsa-3072" else "prime256v1", text)
        self.assertExit(run_bin("keygen", "-t", "dsa", "-o", self.ws.path("keys", "d")), USAGE)
        self.assertExit(run_bin("keygen"), USAGE)

    # ---- sign ----------------------------------------------------------------------------

    def test_sign_writes_sorted_manifest_and_verifies(self):
        self.sign("-V", "4", "--expires", "2099-01-01T00:00:00Z")
        doc = json.loads(self.read(self.manifest_path()))
        self.assertEqual(doc["modelgate_manifest"], 1)
        self.assertEqual(doc["name"], "m")
        self.assertEqual(doc["version"], 4)
        self.assertEqual(doc["expires"], "2099-01-01T00:00:00Z")
        paths = [f["path"] for f in doc["files"]]
        self.assertEqual(paths, sorted(paths, key=lambda p: p.encode()))
        self.assertEqual(paths, ["config.json", "sub/deeper/z.bin", "sub/tokenizer.txt",
                                 "weights.bin"])
        for f in doc["files"]:
            full = os.path.join(self.model, f["path"])
            self.assertEqual(f["size"], os.path.getsize(full))
            self.assertEqual(f["sha256"], mgtest.digest_file(full))
            self.assertEqual(set(f), {"path", "size", "sha256"})
        r = self.verify(OK)
        r, doc = self.ws.inspect_json("m")
        self.assertExit(r, OK)
        self.assertEqual(sorted(f["path"] for f in doc["files"]), paths)
        # Signing again (the manifest and its signature exist now) gives the same manifest.
        before = self.read(self.manifest_path())
        self.sign("-V", "4", "--expires", "2099-01-01T00:00:00Z")
        self.assertEqual(self.read(self.manifest_path()), before)
        leftovers = [n for n in os.listdir(self.model) if n.endswith(".tmp")]
        self.assertEqual(leftovers, [])

    def test_sign_sha512_and_name(self):
        self.sign("-a", "sha512", "-n", "m")
        doc = json.loads(self.read(self.manifest_path()))
        for f in doc["files"]:
            self.assertEqual(f["sha512"], mgtest.digest_file(os.path.join(self.model, f["path"]),
                                                             "sha512"))
        self.verify(OK)

    def test_sign_usage_and_unsafe_directories(self):
        self.assertExit(run_bin("sign", self.model), USAGE)
        self.sign("-V", "0", expect=USAGE)
        self.sign("-V", "x", expect=USAGE)
        self.sign("-V", "99999999999999999999", expect=USAGE)
        self.sign("--expires", "2099-01-01", expect=USAGE)
        self.sign("-a", "md5", expect=USAGE)
        self.sign("-n", "bad/name", expect=USAGE)
        self.sign(key=self.ws.path("keys", "missing.key"), expect=IO)
        self.sign(key=self.ws.path("keys", "ed.pub"), expect=USAGE)
        # The private key inside the model directory is never signed into the model.
        shutil.copy(self.key, os.path.join(self.model, "oops.key"))
        self.sign(key=os.path.join(self.model, "oops.key"), expect=USAGE)
        os.unlink(os.path.join(self.model, "oops.key"))
        # Symlinks and special files below DIR: unsafe model directory (6).
        os.symlink("weights.bin", os.path.join(self.model, "sub", "link.bin"))
        r = self.sign(expect=FORMAT)
        self.assertIn("symlink", r.stderr)
        os.unlink(os.path.join(self.model, "sub", "link.bin"))
        os.mkfifo(os.path.join(self.model, "fifo"))
        r = self.sign(expect=FORMAT)
        self.assertIn("special file", r.stderr)
        os.unlink(os.path.join(self.model, "fifo"))
        self.ws.write("models/m/bad\\name", b"x")
        self.sign(expect=FORMAT)
        os.unlink(os.path.join(self.model, "bad\\name"))
        self.assertFalse(os.path.exists(self.manifest_path()))
        self.sign()
        self.verify(OK)

    # ---- interop: modelgate -> openssl, cryptography, minisign ----------------------------

    def test_modelgate_signatures_verify_with_openssl_and_cryptography(self):
        cases = (("ed", None), ("p256", "ecdsa-p256"), ("rsa", "rsa-3072"))
        for name, t in cases:
            key = self.key if t is None else self.keygen(name, "-t", t)
            pub = self.ws.path("keys", name + ".pub")
            self.sign(key=key)
            m, sig = self.manifest_path(), self.manifest_path(".sig")
            if name == "ed":
                cmd = ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin",
                       "-in", m, "-sigfile", sig]
            elif name == "p256":
                cmd = ["openssl", "dgst", "-sha256", "-verify", pub, "-signature", sig, m]
            else:
                cmd = ["openssl", "dgst", "-sha256", "-verify", pub, "-sigopt",
                       "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:auto", "-signature",
                       sig, m]
            sh(*cmd)
            self.flip(m, 3)
            self.assertNotEqual(subprocess.run(cmd, capture_output=True).returncode, 0)
            self.flip(m, 3)
            pk = serialization.load_pem_public_key(self.read(pub))
            data, s = self.read(m), self.read(sig)
            if name == "ed":
                pk.verify(s, data)
            elif name == "p256":
                pk.verify(s, data, ec.ECDSA(hashes.SHA256()))
            else:
                # modelgate uses salt length 32 (the digest length); cryptography checks it.
                pk.verify(s, data, padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                                               salt_length=32), hashes.SHA256())
            self.keys[name] = {"public_key": "keys/%s.pub" % name}
            self.use_manifest_model(keys=(name,))
            self.verify(OK, name)

    def test_modelgate_ed25519_signature_is_minisign_legacy_signature(self):
        self.sign()
        sk = serialization.load_pem_private_key(self.read(self.key), None)
        pk = sk.public_key().public_bytes(serialization.Encoding.Raw,
                                          serialization.PublicFormat.Raw)
        keyid = b"\x11\x22\x33\x44\x55\x66\x77\x88"
        raw_sig = self.read(self.manifest_path(".sig"))
        self.assertEqual(len(raw_sig), 64)
        comment = b"file:manifest.json"
        pub_line = base64.b64encode(b"Ed" + keyid + pk).decode()
        minisig = (b"untrusted comment: modelgate signature wrapped\n"
                   + base64.b64encode(b"Ed" + keyid + raw_sig) + b"\n"
                   + b"trusted comment: " + comment + b"\n"
                   + base64.b64encode(sk.sign(raw_sig + comment)) + b"\n")
        legacy = self.ws.write("legacy.minisig", minisig)
        sh("minisign", "-V", "-P", pub_line, "-m", self.manifest_path(), "-x", legacy, "-q")
        # modelgate itself refuses the legacy form by design (prehashed "ED" only).
        shutil.copy(legacy, self.manifest_path(".minisig"))
        os.unlink(self.manifest_path(".sig"))
        self.keys = {"ed": {"minisign": pub_line}}
        self.use_manifest_model()
        r = self.verify(SIGNATURE)
        self.assertIn("legacy", r.stderr)

    # ---- interop: openssl, cryptography, minisign -> modelgate ----------------------------

    def replace_signature(self, keyname, keyfile_pub, make_sig):
        self.sign()  # the manifest; its .sig is replaced
        os.unlink(self.manifest_path(".sig"))
        make_sig(self.manifest_path(), self.manifest_path(".sig"))
        self.keys[keyname] = {"public_key": keyfile_pub}
        self.use_manifest_model(keys=(keyname,))
        self.verify(OK, keyname)
        self.flip(self.manifest_path(".sig"), 10)
        self.verify(SIGNATURE, keyname + " flipped")

    def test_openssl_rsa_pss_saltmax_over_digest(self):
        key = self.ws.path("keys", "rsa.key")
        sh("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
           "-out", key)
        sh("openssl", "pkey", "-in", key, "-pubout", "-out", self.ws.path("keys", "rsa.pub"))

        def make(m, out):
            digest = self.ws.write("digest.bin", hashlib.sha256(self.read(m)).digest())
            sh("openssl", "pkeyutl", "-sign", "-inkey", key, "-in", digest, "-out", out,
               "-pkeyopt", "rsa_padding_mode:pss", "-pkeyopt", "rsa_pss_saltlen:max",
               "-pkeyopt", "digest:sha256")
        self.replace_signature("rsa", "keys/rsa.pub", make)

    def test_openssl_dgst_rsa_pss(self):
        key = self.ws.path("keys", "rsa.key")
        sh("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072",
           "-out", key)
        sh("openssl", "pkey", "-in", key, "-pubout", "-out", self.ws.path("keys", "rsa.pub"))
        self.replace_signature("rsa", "keys/rsa.pub", lambda m, out: sh(
            "openssl", "dgst", "-sha256", "-sign", key, "-sigopt", "rsa_padding_mode:pss",
            "-sigopt", "rsa_pss_saltlen:max", "-out", out, m))

    def test_cryptography_rsa_pss_max_length(self):
        from cryptography.hazmat.primitives.asymmetric import rsa
        sk = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ws.write("keys/py.pub", sk.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))

        def make(m, out):
            self.write_file(out, sk.sign(self.read(m), padding.PSS(
                mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH),
                hashes.SHA256()))
        self.replace_signature("py", "keys/py.pub", make)

    def test_openssl_ed25519_and_ecdsa(self):
        for name, alg, curve, dgst in (("o-ed", "ED25519", None, None),
                                       ("o-p256", "EC", "P-256", "-sha256"),
                                       ("o-p384", "EC", "P-384", "-sha384")):
            key = self.ws.path("keys", name + ".key")
            args = ["openssl", "genpkey", "-algorithm", alg, "-out", key]
            if curve:
                args += ["-pkeyopt", "ec_paramgen_curve:" + curve]
            sh(*args)
            sh("openssl", "pkey", "-in", key, "-pubout", "-out",
               self.ws.path("keys", name + ".pub"))
            if dgst is None:
                make = (lambda k: lambda m, out: sh("openssl", "pkeyutl", "-sign", "-rawin",
                                                    "-inkey", k, "-in", m, "-out", out))(key)
            else:
                make = (lambda k, d: lambda m, out: sh("openssl", "dgst", d, "-sign", k,
                                                       "-out", out, m))(key, dgst)
            self.replace_signature(name, "keys/%s.pub" % name, make)

    def test_minisign_tool_signature(self):
        pub, sec = self.ws.path("keys", "mini.pub"), self.ws.path("keys", "mini.sec")
        sh("minisign", "-G", "-W", "-p", pub, "-s", sec)
        self.sign()
        os.unlink(self.manifest_path(".sig"))
        sh("minisign", "-S", "-s", sec, "-m", self.manifest_path())
        self.assertTrue(os.path.exists(self.manifest_path(".minisig")))
        with open(pub) as f:
            pub_line = f.read().splitlines()[1]
        self.keys = {"mini": {"minisign": pub_line}}
        self.use_manifest_model(keys=("mini",))
        self.verify(OK)
        r, doc = self.ws.inspect_json("m")
        self.assertExit(r, OK)
        # The trusted comment is covered by the global signature.
        lines = self.read(self.manifest_path(".minisig")).split(b"\n")
        good = self.read(self.manifest_path(".minisig"))
        lines[2] = lines[2] + b" edited"
        self.write_file(self.manifest_path(".minisig"), b"\n".join(lines))
        self.verify(SIGNATURE, "trusted comment edited")
        self.write_file(self.manifest_path(".minisig"), good)
        # A legacy (-l) signature is refused: modelgate requires prehashed "ED".
        sh("minisign", "-S", "-l", "-s", sec, "-m", self.manifest_path())
        r = self.verify(SIGNATURE, "legacy minisig")
        self.assertIn("legacy", r.stderr)
        # A .minisig and a .sig together: the minisign key alone meets threshold 1.
        sh("minisign", "-S", "-s", sec, "-m", self.manifest_path())
        self.openssl_ed25519_sign(self.key)
        self.verify(OK, "minisig and an extra raw sig by an unlisted key")
        # Both keys required, both present: threshold 2 met by two distinct keys.
        self.keys["ed"] = {"public_key": "keys/ed.pub"}
        self.use_manifest_model(keys=("mini", "ed"), threshold=2)
        self.verify(OK, "threshold 2, minisign + Ed25519")

    # ---- the tamper matrix ---------------------------------------------------------------

    def fresh(self):
        self.sign()
        self.verify(OK, "fresh signature")

    def test_tamper_files(self):
        self.fresh()
        for rel in ("weights.bin", "config.json", "sub/deeper/z.bin"):
            p = os.path.join(self.model, rel)
            for off in (0, os.path.getsize(p) - 1):
                self.flip(p, off)
                r = self.verify(INTEGRITY, "byte flipped in %s at %d" % (rel, off))
                self.assertIn(rel, r.stderr)
                self.flip(p, off)
        self.verify(OK)
        # Added, at the top and below.
        for rel in ("extra.bin", "sub/extra.bin", "manifest.json.sig.10"):
            self.ws.write("models/m/" + rel, b"x")
            self.verify(INTEGRITY, "file added: " + rel)
            os.unlink(os.path.join(self.model, rel))
        # Removed.
        p = os.path.join(self.model, "sub", "tokenizer.txt")
        data = self.read(p)
        os.unlink(p)
        self.verify(INTEGRITY, "file removed")
        # Renamed.
        self.write_file(os.path.join(self.model, "sub", "tokenizer2.txt"), data)
        self.verify(INTEGRITY, "file renamed")
        os.rename(os.path.join(self.model, "sub", "tokenizer2.txt"), p)
        # Grown by a byte (same prefix).
        self.write_file(p, data + b"\n")
        self.verify(INTEGRITY, "file grown")
        self.write_file(p, data)
        self.verify(OK)
        # A symlink in the directory (the lead's directory walk refuses it: integrity).
        os.symlink("weights.bin", os.path.join(self.model, "sub", "link.bin"))
        self.verify(INTEGRITY, "symlink in the directory")
        os.unlink(os.path.join(self.model, "sub", "link.bin"))
        self.verify(OK)

    def test_tamper_manifest_and_signature(self):
        self.fresh()
        for off in (0, 30, os.path.getsize(self.manifest_path()) - 1):
            self.flip(self.manifest_path(), off)
            self.verify(SIGNATURE, "byte flipped in the manifest at %d" % off)
            self.flip(self.manifest_path(), off)
        for off in (0, 31, 63):
            self.flip(self.manifest_path(".sig"), off)
            self.verify(SIGNATURE, "byte flipped in the signature at %d" % off)
            self.flip(self.manifest_path(".sig"), off)
        self.write_file(self.manifest_path(".sig"), self.read(self.manifest_path(".sig")) + b"\0")
        self.verify(SIGNATURE, "signature with a byte appended")
        os.unlink(self.manifest_path(".sig"))
        r = self.verify(SIGNATURE, "signature removed")
        self.assertIn("not signed", r.stderr)
        self.sign()
        os.unlink(self.manifest_path())
        self.verify(SIGNATURE, "manifest removed")

    def test_manifest_of_another_model(self):
        self.sign("-n", "other")
        r = self.verify(SIGNATURE)
        self.assertIn("other", r.stderr)

    def test_rollback_needs_state_dir(self):
        self.sign("-V", "2")
        self.verify(OK)
        with open(os.path.join(self.state, "m.version")) as f:
            self.assertEqual(f.read(), "2\n")
        self.sign("-V", "1")
        r = self.verify(SIGNATURE, "older version after a newer one")
        self.assertIn("rollback", r.stderr)
        self.sign("-V", "2")
        self.verify(OK, "same version again")
        self.sign("-V", "3")
        self.verify(OK)
        self.sign("-V", "2")
        self.verify(SIGNATURE, "rollback to 2 after 3")
        # Without state_dir there is no memory of versions.
        self.ws.extra = {"keys": self.keys}
        self.ws.write_policy()
        self.verify(OK)

    def test_expired_manifest(self):
        r = self.sign("--expires", "2001-01-01T00:00:00Z")
        self.assertIn("past", r.stderr)
        r = self.verify(SIGNATURE)
        self.assertIn("expired", r.stderr)
        self.sign("--expires", "2099-12-31T23:59:59Z")
        self.verify(OK)

    def test_key_not_in_policy(self):
        other = self.keygen("other")
        self.sign(key=other)
        self.verify(SIGNATURE)
        # The other key exists in the policy but is not listed for this model.
        self.keys["other"] = {"public_key": "keys/other.pub"}
        self.use_manifest_model(keys=("ed",))
        self.verify(SIGNATURE)
        self.use_manifest_model(keys=("ed", "other"))
        self.verify(OK)

    def test_threshold_two_distinct_keys(self):
        second = self.keygen("second")
        self.keys["second"] = {"public_key": "keys/second.pub"}
        self.use_manifest_model(keys=("ed", "second"), threshold=2)
        self.sign()
        self.verify(SIGNATURE, "one signature, threshold 2")
        # One key signing twice counts once.
        shutil.copy(self.manifest_path(".sig"), self.manifest_path(".sig.1"))
        self.verify(SIGNATURE, "the same key signing twice")
        # The second key's signature, made by the openssl CLI over the same manifest.
        self.openssl_ed25519_sign(second, ".sig.1")
        self.verify(OK, "two distinct keys")
        # Two policy names for one public key count once.
        shutil.copy(self.ws.path("keys", "ed.pub"), self.ws.path("keys", "ed-copy.pub"))
        self.keys["ed-copy"] = {"public_key": "keys/ed-copy.pub"}
        self.use_manifest_model(keys=("ed", "ed-copy"), threshold=2)
        self.openssl_ed25519_sign(self.key, ".sig.1")
        self.verify(SIGNATURE, "one key under two names")

    def test_unsafe_paths_in_a_signed_manifest(self):
        self.sign()
        for bad in ("../outside.bin", "/etc/passwd", "sub\\tokenizer.txt", "sub/./x",
                    "sub//x", "a\u0001b"):
            def edit(doc, bad=bad):
                doc["files"][0]["path"] = bad
            saved = self.read(self.manifest_path())
            self.rewrite_manifest(edit)
            r = self.verify(SIGNATURE, "manifest path %r" % bad)
            self.assertIn("path", r.stderr)
            self.write_file(self.manifest_path(), saved)
            self.openssl_ed25519_sign(self.key)
        self.verify(OK)
        # Signed, well-formed, but listing a file that is not there, or missing one.
        self.rewrite_manifest(lambda d: d["files"].append(
            {"path": "ghost.bin", "size": 1, "sha256": "00" * 32}))
        self.verify(INTEGRITY, "listed file missing")
        self.rewrite_manifest(lambda d: d["files"].pop())
        self.rewrite_manifest(lambda d: d["files"].pop())
        self.verify(INTEGRITY, "unlisted file")
        self.rewrite_manifest(lambda d: d.update(extra=1))
        self.verify(SIGNATURE, "unknown key in a signed manifest")

    def test_signed_policy(self):
        """A policy with --policy-key must carry POLICY.sig (read as the policy file's name
        plus ".sig"), a raw signature by that key."""
        self.sign()
        pol = self.ws.policy_path
        sig = pol + ".sig"
        sh("openssl", "pkeyutl", "-sign", "-rawin", "-inkey", self.key, "-in", pol, "-out", sig)
        os.chmod(sig, 0o600)
        pub = self.ws.path("keys", "ed.pub")
        r = self.ws.run("verify", "--policy-key", pub, "m")
        self.assertExit(r, OK, "signed policy")
        other = self.keygen("other")
        sh("openssl", "pkeyutl", "-sign", "-rawin", "-inkey", other, "-in", pol, "-out", sig)
        r = self.ws.run("verify", "--policy-key", pub, "m")
        self.assertExit(r, POLICY, "policy signed by another key")
        os.unlink(sig)
        r = self.ws.run("verify", "--policy-key", pub, "m")
        self.assertExit(r, POLICY, "policy signature missing")


if __name__ == "__main__":
    mgtest.main()
