"""OpenSSF model-signing (OMS) bundles through `modelgate verify`/`inspect` (issue 16).

- every key-mode and certificate-mode bundle of tests/data/oms (the reference's own
  cross-version fixtures and the OMS spec's test vectors) with its verdict and exact exit code;
- re-signed variants made here with Python `cryptography` (tests/cli/omsref.py, an
  independent writer/reader): payload whitespace, PAE length lies, curve/hash pairings,
  resources reordered, extra/missing files, symlinks, shards and moved shard boundaries,
  certificates outside their validity, wrong identities, thresholds and hints.
Exit codes: signature 5, integrity 1, policy 3.
"""
import base64
import datetime
import json
import os
import resource
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mgtest  # noqa: E402
import omsref  # noqa: E402
from mgtest import INTEGRITY, OK, POLICY, SIGNATURE  # noqa: E402

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402

DATA = os.path.join(mgtest.SOURCE_DIR, "tests", "data", "oms")
MT = os.path.join(DATA, "model-transparency", "scripts", "tests")
KEYS = os.path.join(MT, "keys", "certificate")
VECTORS = os.path.join(DATA, "model-signing-spec", "test-vectors", "v1.0")
if not os.path.isdir(MT):
    sys.exit("test_oms: %s is missing" % MT)


def pub_pem(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


class OmsCase(mgtest.TestCase):
    def setUp(self):
        super().setUp()
        self.ws.extra["keys"] = {}

    # -- workspace helpers -------------------------------------------------------------
    def add_key_pem(self, name, pem):
        self.ws.write("keys/%s.pem" % name, pem, 0o600)
        self.ws.extra["keys"][name] = {"public_key": "keys/%s.pem" % name}

    def add_reference_key(self, name="ref"):
        """signing-key-pub.pem is a certtool dump followed by the PEM block: take the block."""
        with open(os.path.join(KEYS, "signing-key-pub.pem"), "rb") as f:
            text = f.read()
        start = text.index(b"-----BEGIN PUBLIC KEY-----")
        self.add_key_pem(name, text[start:])

    def add_model(self, name, source, oms, ignore=None):
        entry = {"name": name, "source": source, "oms": oms}
        if ignore is not None:
            entry["ignore"] = ignore
        self.ws.models.append(entry)

    def copy_dir(self, src, name):
        dst = self.ws.path(name)
        shutil.copytree(src, dst, symlinks=True)
        return dst + "/"

    def make_model(self, name, files):
        for rel, data in files.items():
            self.ws.write(os.path.join(name, rel), data)
        return self.ws.path(name) + "/"

    def verify(self, name):
        self.ws.write_policy()
        return self.ws.run("verify", name)


class TestCorpusKeyMode(OmsCase):
    """Key mode with the reference's P-384 test key, for every bundle of the corpus."""

    CASES = [
        # (folder, single file?, policy ignore, expected exit)
        ("v0.3.1-elliptic-key", True, None, OK),
        ("v1.0.0-elliptic-key", True, None, OK),
        ("v1.0.1-elliptic-key", False, ["ignore-me"], OK),
        ("v1.0.1-elliptic-key", False, None, INTEGRITY),  # ignore-me is not recorded
        ("v1.1.0-elliptic-key", False, None, OK),  # ignore_paths recorded, hint checked
        # certificate bundles verify as key bundles with the leaf's key (as verify_test.py)
        ("v0.3.1-certificate", False, None, OK),
        ("v1.0.0-certificate", False, None, OK),
        ("v1.0.1-certificate", False, ["ignore-me"], OK),
        ("v1.1.0-certificate", False, None, OK),
        ("v0.2.0-certificate", False, None, SIGNATURE),  # legacy Digests/v0.1, compat PAE
        # Sigstore bundles are signed by a Fulcio key, not this one
        ("v0.3.1-sigstore", False, None, SIGNATURE),
        ("v1.0.0-sigstore", False, None, SIGNATURE),
        ("v1.0.1-sigstore", False, ["ignore-me"], SIGNATURE),
        ("v1.1.0-sigstore", False, None, SIGNATURE),
    ]

    def test_every_bundle(self):
        self.add_reference_key()
        for folder, single, ignore, want in self.CASES:
            d = os.path.join(MT, folder)
            self.ws.models = []
            if single:
                self.add_model("m", os.path.join(d, "signme-1"),
                               {"keys": ["ref"], "bundle": os.path.join(d, "model.sig")})
            else:
                self.add_model("m", d + "/", {"keys": ["ref"]}, ignore)
            with self.subTest(folder=folder, ignore=ignore):
                self.assertExit(self.verify("m"), want, folder)

    def test_bundle_of_another_folder_is_a_digest_mismatch(self):
        self.add_reference_key()
        d = self.copy_dir(os.path.join(MT, "v1.1.0-certificate"), "m")
        shutil.copy(os.path.join(MT, "v1.1.0-elliptic-key", "model.sig"), d + "model.sig")
        self.add_model("m", d, {"keys": ["ref"]})
        r = self.verify("m")
        self.assertExit(r, INTEGRITY)
        self.assertIn("signme-1", r.stderr)

    def test_spec_vectors(self):
        self.add_reference_key()
        cases = [("valid/key.bundle.json", OK), ("valid/certificate.bundle.json", OK),
                 ("valid/sigstore.bundle.json", SIGNATURE),
                 ("invalid/empty.bundle.json", SIGNATURE),
                 ("invalid/missing-envelope.bundle.json", SIGNATURE),
                 ("invalid/missing-tlog-entries.bundle.json", SIGNATURE),
                 ("invalid/missing-verification-material.bundle.json", SIGNATURE),
                 ("invalid-payload/wrong-predicate.bundle.json", SIGNATURE)]
        d = self.copy_dir(os.path.join(MT, "v1.1.0-elliptic-key"), "simple")
        os.remove(d + "model.sig")
        for i, (vec, _) in enumerate(cases):
            shutil.copy(os.path.join(VECTORS, vec), d + "b%d.json" % i)
        for i, (vec, want) in enumerate(cases):
            # every other bundle file is ignored, and so is ignore-me
            others = ["b%d.json" % j for j in range(len(cases)) if j != i]
            self.ws.models = []
            self.add_model("v", d, {"keys": ["ref"], "bundle": "b%d.json" % i},
                           ["ignore-me"] + others)
            with self.subTest(vector=vec):
                self.assertExit(self.verify("v"), want, vec)

    def test_missing_bundle_and_tampered_file(self):
        self.add_reference_key()
        d = self.copy_dir(os.path.join(MT, "v1.1.0-elliptic-key"), "m")
        self.add_model("m", d, {"keys": ["ref"]})
        self.ws.write_policy()
        self.assertExit(self.ws.run("verify", "m"), OK)
        with open(d + "signme-2", "ab") as f:
            f.write(b"x")
        r = self.ws.run("verify", "m")
        self.assertExit(r, INTEGRITY)
        self.assertIn("signme-2", r.stderr)
        os.remove(d + "model.sig")
        self.assertExit(self.ws.run("verify", "m"), SIGNATURE)

    def test_wrong_key_and_wrong_hint(self):
        other = ec.generate_private_key(ec.SECP384R1())
        self.add_key_pem("other", pub_pem(other))
        d = os.path.join(MT, "v1.1.0-elliptic-key") + "/"
        self.add_model("m", d, {"keys": ["other"]})
        self.assertExit(self.verify("m"), SIGNATURE)


class TestCorpusCertificateMode(OmsCase):
    def setUp(self):
        super().setUp()
        shutil.copy(os.path.join(KEYS, "ca-cert.pem"), self.ws.path("ca.pem"))
        os.chmod(self.ws.path("ca.pem"), 0o600)

    def test_every_certificate_bundle(self):
        cases = [("v0.3.1-certificate", None, OK), ("v1.0.0-certificate", None, OK),
                 ("v1.0.1-certificate", ["ignore-me"], OK), ("v1.1.0-certificate", None, OK),
                 ("v1.0.1-certificate", None, INTEGRITY),
                 ("v0.2.0-certificate", None, SIGNATURE),
                 ("v1.1.0-elliptic-key", None, SIGNATURE),  # no certificate chain
                 ("v1.1.0-sigstore", None, SIGNATURE)]     # Fulcio chain, not this CA
        for folder, ignore, want in cases:
            self.ws.models = []
            self.add_model("c", os.path.join(MT, folder) + "/", {"ca_file": "ca.pem"}, ignore)
            with self.subTest(folder=folder, ignore=ignore):
                self.assertExit(self.verify("c"), want, folder)

    def test_identity(self):
        d = os.path.join(MT, "v1.1.0-certificate") + "/"
        # the test leaf's subject is CN=intermediate-ca (sic)
        self.add_model("good", d, {"ca_file": "ca.pem", "identity": "intermediate-ca"})
        self.ws.models.append({"name": "bad", "source": os.path.join(MT, "v1.0.0-certificate") + "/",
                               "oms": {"ca_file": "ca.pem", "identity": "someone@example.com"}})
        self.ws.write_policy()
        self.assertExit(self.ws.run("verify", "good"), OK)
        r = self.ws.run("verify", "bad")
        self.assertExit(r, SIGNATURE)
        self.assertIn("identity", r.stderr)

    def test_intermediate_alone_is_not_a_root(self):
        shutil.copy(os.path.join(KEYS, "int-ca-cert.pem"), self.ws.path("int.pem"))
        os.chmod(self.ws.path("int.pem"), 0o600)
        self.add_model("m", os.path.join(MT, "v1.1.0-certificate") + "/", {"ca_file": "int.pem"})
        self.assertExit(self.verify("m"), SIGNATURE)

    def test_spec_certificate_vector(self):
        d = self.copy_dir(os.path.join(MT, "v1.1.0-elliptic-key"), "simple")
        shutil.copy(os.path.join(VECTORS, "valid", "certificate.bundle.json"), d + "model.sig")
        self.add_model("m", d, {"ca_file": "ca.pem"}, ["ignore-me"])
        self.assertExit(self.verify("m"), OK)


def make_ca(curve=ec.SECP256R1()):
    key = ec.generate_private_key(curve)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test root")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=3650))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                         False), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def make_leaf(ca_key, ca_cert, leaf_key, days_before=1, days_after=1, code_signing=True,
              email="signer@example.com"):
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leaf")]))
         .issuer_name(ca_cert.subject).public_key(leaf_key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(now + datetime.timedelta(days=days_before))
         .not_valid_after(now + datetime.timedelta(days=days_after))
         .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=False))
    if code_signing:
        b = b.add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False,
                                          False), critical=True)
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]),
                            critical=False)
    else:
        b = b.add_extension(x509.KeyUsage(False, False, True, False, False, False, False, False,
                                          False), critical=True)
    return b.sign(ca_key, hashes.SHA256())


def cert_bundle(leaf_key, chain, stmt):
    payload = omsref.payload_bytes(stmt)
    material = {"x509CertificateChain": {"certificates": [
        {"rawBytes": base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode()}
        for c in chain]}, "tlogEntries": []}
    return omsref.make_bundle(payload, [omsref.sign(leaf_key, omsref.pae(payload))], material)


class TestResignedCertificates(OmsCase):
    def cert_bundle(self, leaf_key, chain, stmt):
        return cert_bundle(leaf_key, chain, stmt)

    def test_validity_usage_identity(self):
        ca_key, ca = make_ca()
        self.ws.write("ca.pem", ca.public_bytes(serialization.Encoding.PEM), 0o600)
        cases = [  # name, leaf curve, leaf options, identity, expected
            ("valid", ec.SECP256R1(), dict(days_before=-1, days_after=30), None, OK),
            ("p521", ec.SECP521R1(), dict(days_before=-1, days_after=30), None, OK),
            ("email", ec.SECP384R1(), dict(days_before=-1, days_after=30),
             "signer@example.com", OK),
            ("wrong-identity", ec.SECP256R1(), dict(days_before=-1, days_after=30),
             "mallory@example.com", SIGNATURE),
            ("expired", ec.SECP256R1(), dict(days_before=-30, days_after=-1), None, SIGNATURE),
            ("not-yet-valid", ec.SECP256R1(), dict(days_before=2, days_after=30), None,
             SIGNATURE),
            ("no-code-signing", ec.SECP256R1(),
             dict(days_before=-1, days_after=30, code_signing=False), None, SIGNATURE),
        ]
        for name, curve, opts, identity, _ in cases:
            d = self.make_model(name, {"w.bin": b"weights of " + name.encode()})
            leaf_key = ec.generate_private_key(curve)
            leaf = make_leaf(ca_key, ca, leaf_key, **opts)
            st = omsref.statement(omsref.file_resources(d))
            self.ws.write(name + "/model.sig", self.cert_bundle(leaf_key, [leaf], st))
            oms = {"ca_file": "ca.pem"}
            if identity:
                oms["identity"] = identity
            self.add_model(name, d, oms)
        self.ws.write_policy()
        for name, _, _, _, want in cases:
            with self.subTest(case=name):
                self.assertExit(self.ws.run("verify", name), want, name)


def make_intermediate(ca_key, ca_cert, days_before, days_after):
    key = ec.generate_private_key(ec.SECP384R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "intermediate")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now + datetime.timedelta(days=days_before))
            .not_valid_after(now + datetime.timedelta(days=days_after))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                         False), critical=True)
            .sign(ca_key, hashes.SHA256()))
    return key, cert


class TestCertificateValidityTime(OmsCase):
    """Certificate mode checks the whole chain at the verification time: a key or certificate
    bundle carries no trusted signing time. The reference verifier up to 1.1.1 used the leaf's
    notBefore (a leaf then never expires, sigstore/model-transparency#663); PR #664 moved it to
    the current time, as OMS v1.0 §8.2 asks ("the leaf MUST be within its validity period")."""

    def test_chain_validity(self):
        ca_key, ca = make_ca()
        self.ws.write("ca.pem", ca.public_bytes(serialization.Encoding.PEM), 0o600)
        old_key, old_ca = make_ca()
        # a root that expired yesterday (it was valid when the leaf was issued)
        now = datetime.datetime.now(datetime.timezone.utc)
        old_ca = (x509.CertificateBuilder().subject_name(old_ca.subject)
                  .issuer_name(old_ca.subject).public_key(old_key.public_key())
                  .serial_number(x509.random_serial_number())
                  .not_valid_before(now - datetime.timedelta(days=300))
                  .not_valid_after(now - datetime.timedelta(days=1))
                  .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                  .sign(old_key, hashes.SHA256()))
        self.ws.write("old-ca.pem", old_ca.public_bytes(serialization.Encoding.PEM), 0o600)
        cases = [  # name, intermediate validity (days from now) or None, leaf validity, root
            ("via-intermediate", (-10, 100), (-1, 30), "ca.pem", OK),
            # the leaf expired yesterday; it was valid at its notBefore (the old reference rule)
            ("leaf-expired-now", (-10, 100), (-5, -1), "ca.pem", SIGNATURE),
            ("leaf-not-yet-valid", (-10, 100), (1, 30), "ca.pem", SIGNATURE),
            # the leaf is valid now, the intermediate expired (it was valid at the leaf's
            # notBefore)
            ("intermediate-expired", (-10, -1), (-5, 30), "ca.pem", SIGNATURE),
            ("intermediate-not-yet-valid", (1, 100), (-1, 30), "ca.pem", SIGNATURE),
            ("root-expired", None, (-5, 30), "old-ca.pem", SIGNATURE),
        ]
        for name, mid, leaf_days, root, _ in cases:
            d = self.make_model(name, {"w.bin": b"weights of " + name.encode()})
            leaf_key = ec.generate_private_key(ec.SECP256R1())
            if mid is None:
                leaf = make_leaf(old_key, old_ca, leaf_key, *leaf_days)
                chain = [leaf]
            else:
                mid_key, mid_cert = make_intermediate(ca_key, ca, *mid)
                leaf = make_leaf(mid_key, mid_cert, leaf_key, *leaf_days)
                chain = [leaf, mid_cert]
            st = omsref.statement(omsref.file_resources(d))
            self.ws.write(name + "/model.sig", cert_bundle(leaf_key, chain, st))
            self.add_model(name, d, {"ca_file": root})
        self.ws.write_policy()
        for name, _, _, _, want in cases:
            with self.subTest(case=name):
                r = self.ws.run("verify", name)
                self.assertExit(r, want, name)
                if want != OK:
                    self.assertRegex(r.stderr, "expired|not yet valid", name)


class TestResignedKeyMode(OmsCase):
    def setUp(self):
        super().setUp()
        self.keys = {}
        for curve in (ec.SECP256R1(), ec.SECP384R1(), ec.SECP521R1()):
            k = ec.generate_private_key(curve)
            name = "p%d" % curve.key_size
            self.keys[name] = k
            self.add_key_pem(name, pub_pem(k))

    def model(self, name, files=None):
        return self.make_model(name, files or {"a.bin": b"alpha" * 7, "sub/b.bin": b"bravo",
                                               "sub/c.txt": b""})

    def put(self, name, bundle, keys=("p256",), **oms):
        self.ws.write(name + "/model.sig", bundle)
        self.add_model(name, self.ws.path(name) + "/", dict({"keys": list(keys)}, **oms))

    def check(self, cases):
        self.ws.write_policy()
        for name, want in cases:
            with self.subTest(case=name):
                r = self.ws.run("verify", name)
                self.assertExit(r, want, name)

    def test_every_curve_and_hash_pairing(self):
        cases = []
        for kname, key in self.keys.items():
            for hname, h in (("sha256", hashes.SHA256()), ("sha384", hashes.SHA384()),
                             ("sha512", hashes.SHA512())):
                name = "%s-%s" % (kname, hname)
                d = self.model(name)
                payload = omsref.payload_bytes(omsref.statement(omsref.file_resources(d)))
                b = omsref.make_bundle(payload, [omsref.sign(key, omsref.pae(payload), h)])
                self.put(name, b, keys=(kname,))
                right = {"p256": "sha256", "p384": "sha384", "p521": "sha512"}[kname]
                cases.append((name, OK if hname == right else SIGNATURE))
        self.check(cases)

    def test_payload_bytes_are_signed_not_the_json(self):
        k = self.keys["p256"]
        cases = []
        # whitespace changed after signing: the signature no longer covers the bytes
        d = self.model("ws-changed")
        st = omsref.statement(omsref.file_resources(d))
        payload = omsref.payload_bytes(st, indent=2)
        sig = omsref.sign(k, omsref.pae(payload))
        self.put("ws-changed", omsref.make_bundle(omsref.payload_bytes(st, indent=None), [sig]))
        cases.append(("ws-changed", SIGNATURE))
        # the same statement compact and re-signed: fine (no canonical form is assumed)
        d = self.model("compact")
        self.put("compact", omsref.sign_statement(k, omsref.statement(
            omsref.file_resources(d)), indent=None))
        cases.append(("compact", OK))
        # PAE with a wrong length (one more, one less)
        for lie in (1, -1):
            name = "pae-lie-%s" % ("more" if lie > 0 else "less")
            d = self.model(name)
            payload = omsref.payload_bytes(omsref.statement(omsref.file_resources(d)))
            sig = omsref.sign(k, omsref.pae(payload, len(payload) + lie))
            self.put(name, omsref.make_bundle(payload, [sig]))
            cases.append((name, SIGNATURE))
        # a wrong hint, and a bad media type / payload type, each correctly signed
        d = self.model("bad-hint")
        payload = omsref.payload_bytes(omsref.statement(omsref.file_resources(d)))
        sig = omsref.sign(k, omsref.pae(payload))
        self.put("bad-hint", omsref.make_bundle(payload, [sig], {"publicKey": {"hint": "00" * 32}}))
        cases.append(("bad-hint", SIGNATURE))
        d = self.model("media")
        self.put("media", omsref.make_bundle(payload.replace(b"", b""), [sig],
                                             media_type="application/vnd.dev.sigstore.bundle+json;version=0.2"))
        cases.append(("media", SIGNATURE))
        for name, sigs in (("empty-sig", [b""]), ("no-sig", []), ("second-empty", [sig, b""])):
            self.model(name)
            self.put(name, omsref.make_bundle(payload, sigs))
            cases.append((name, SIGNATURE))
        self.check(cases)

    def test_resources(self):
        k = self.keys["p384"]
        cases = []

        def resign(name, res, root=None, **kw):
            self.put(name, omsref.sign_statement(k, omsref.statement(res, root=root, **kw)),
                     keys=("p384",))

        d = self.model("reordered")
        res = omsref.file_resources(d)
        resign("reordered", list(reversed(res)))
        cases.append(("reordered", OK))
        d = self.model("stale-root")
        res = omsref.file_resources(d)
        resign("stale-root", list(reversed(res)), root=omsref.root_digest(res))
        cases.append(("stale-root", SIGNATURE))
        d = self.model("extra")
        resign("extra", omsref.file_resources(d))
        self.ws.write("extra/sub/new.bin", b"new")
        cases.append(("extra", INTEGRITY))
        d = self.model("missing")
        resign("missing", omsref.file_resources(d))
        os.remove(self.ws.path("missing/sub/b.bin"))
        cases.append(("missing", INTEGRITY))
        d = self.model("duplicate")
        res = omsref.file_resources(d)
        resign("duplicate", res + [res[0]])
        cases.append(("duplicate", SIGNATURE))
        d = self.model("dotdot")
        res = omsref.file_resources(d)
        resign("dotdot", res + [dict(res[0], name="../a.bin")])
        cases.append(("dotdot", SIGNATURE))
        self.model("empty")
        resign("empty", [])
        cases.append(("empty", SIGNATURE))
        # blake2b (64-byte digests; the root is still SHA-256), files and shards
        d = self.model("blake2b")
        st = omsref.statement(omsref.file_resources(d, hash_name="blake2b"), hash_type="blake2b")
        self.put("blake2b", omsref.sign_statement(k, st), keys=("p384",))
        cases.append(("blake2b", OK))
        d = self.model("blake2b-shards", {"w.bin": bytes(range(200)) * 3})
        st = omsref.statement(omsref.shard_resources(d, 256, hash_name="blake2b"),
                              method="shards", shard_size=256, hash_type="blake2b")
        self.put("blake2b-shards", omsref.sign_statement(k, st), keys=("p384",))
        cases.append(("blake2b-shards", OK))
        d = self.model("blake2b-tampered")
        st = omsref.statement(omsref.file_resources(d, hash_name="blake2b"), hash_type="blake2b")
        self.put("blake2b-tampered", omsref.sign_statement(k, st), keys=("p384",))
        self.ws.write("blake2b-tampered/a.bin", b"changed")
        cases.append(("blake2b-tampered", INTEGRITY))
        d = self.model("blake3")
        st = omsref.statement(omsref.file_resources(d), hash_type="blake3")
        self.put("blake3", omsref.sign_statement(k, st), keys=("p384",))
        cases.append(("blake3", SIGNATURE))
        # ignore paths recorded in the bundle, and the policy's own
        d = self.model("recorded-ignore", {"a.bin": b"a", "notes/x": b"x", "notes2": b"y"})
        resign("recorded-ignore", omsref.file_resources(d, ["notes"]) , ignore_paths=["notes"])
        cases.append(("recorded-ignore", OK))
        d = self.model("policy-ignore", {"a.bin": b"a", "scratch/x": b"x"})
        resign("policy-ignore", omsref.file_resources(d, ["scratch"]))
        self.ws.models[-1]["ignore"] = ["scratch"]
        cases.append(("policy-ignore", OK))
        self.check(cases)

    def test_symlinks(self):
        k = self.keys["p256"]
        target = self.ws.write("outside.bin", b"outside the model")
        cases = []
        for name, in_bundle, in_policy, want in (("sym-none", False, False, INTEGRITY),
                                                  ("sym-bundle-only", True, False, INTEGRITY),
                                                  ("sym-policy-only", False, True, INTEGRITY),
                                                  ("sym-both", True, True, OK)):
            d = self.model(name, {"a.bin": b"a"})
            os.symlink(target, d + "link.bin")
            res = omsref.file_resources(d)
            self.assertEqual(len(res), 2)
            self.put(name, omsref.sign_statement(k, omsref.statement(res, allow_symlinks=in_bundle)),
                     allow_symlinks=in_policy)
            cases.append((name, want))
        self.check(cases)

    def test_shards(self):
        k = self.keys["p256"]
        big = bytes(range(256)) * 5  # 1280 bytes
        files = {"big.bin": big, "small.bin": b"tiny", "empty.bin": b""}
        cases = []
        d = self.model("shards", files)
        self.put("shards", omsref.sign_statement(k, omsref.statement(
            omsref.shard_resources(d, 100), method="shards", shard_size=100)))
        cases.append(("shards", OK))
        # the reference writes shard_size as a float and algorithm "sha256-sharded-N"
        d = self.model("shards-float", files)
        self.put("shards-float", omsref.sign_statement(k, omsref.statement(
            omsref.shard_resources(d, 100), method="shards", shard_size=100.0)))
        cases.append(("shards-float", OK))
        # a boundary moved: 0:100,100:200 -> 0:90,90:200, digests of those ranges
        d = self.model("moved", files)
        res = omsref.shard_resources(d, 100)
        res[0] = dict(res[0], name="big.bin:0:90", digest=__import__("hashlib").sha256(big[:90]).hexdigest())
        res[1] = dict(res[1], name="big.bin:90:200",
                      digest=__import__("hashlib").sha256(big[90:200]).hexdigest())
        self.put("moved", omsref.sign_statement(k, omsref.statement(res, method="shards",
                                                                     shard_size=100)))
        cases.append(("moved", INTEGRITY))
        # a shard left out (the file would be longer than the bundle says)
        d = self.model("short", files)
        res = [r for r in omsref.shard_resources(d, 100) if r["name"] != "big.bin:1200:1280"]
        self.put("short", omsref.sign_statement(k, omsref.statement(res, method="shards",
                                                                     shard_size=100)))
        cases.append(("short", INTEGRITY))
        # one shard's content changed on disk
        d = self.model("tampered", files)
        self.put("tampered", omsref.sign_statement(k, omsref.statement(
            omsref.shard_resources(d, 100), method="shards", shard_size=100)))
        with open(d + "big.bin", "r+b") as f:
            f.seek(750)
            f.write(b"\xff")
        cases.append(("tampered", INTEGRITY))
        # shard_size of the algorithm differs from the serialization's
        d = self.model("algo", files)
        res = [dict(r, algorithm="sha256-sharded-99") for r in omsref.shard_resources(d, 100)]
        self.put("algo", omsref.sign_statement(k, omsref.statement(res, method="shards",
                                                                    shard_size=100)))
        cases.append(("algo", SIGNATURE))
        self.check(cases)
        r = self.ws.run("verify", "tampered")
        self.assertIn("700:800", r.stderr)

    def test_single_file_sharded_model_loads(self):
        k = self.keys["p521"]
        src = os.path.join(mgtest.CORPUS, "safetensors", "d.safetensors")
        path = self.ws.path("one.safetensors")
        shutil.copy(src, path)
        size = os.path.getsize(path)
        st = omsref.statement(omsref.shard_resources(path, max(1, size // 5)), method="shards",
                              shard_size=max(1, size // 5), name="one.safetensors")
        self.ws.write("one.sig", omsref.sign_statement(k, st))
        self.add_model("one", path, {"keys": ["p521"], "bundle": "one.sig"})
        self.ws.write_policy()
        r = self.ws.run("inspect", "--json", "one")
        self.assertExit(r, OK)
        doc = json.loads(r.stdout)
        self.assertEqual(doc["files"][0]["format"], "safetensors")
        self.assertGreater(len(doc["tensors"]), 0)
        with open(path, "ab") as f:
            f.write(b"\0")
        self.assertExit(self.ws.run("verify", "one"), INTEGRITY)

    def test_sharded_file_of_several_chunks(self):
        """Shards longer than the workers' 256 KiB read chunk, the last one shorter; the
        verified memory is a memfd, or private memory when RLIMIT_FSIZE (which memfd writes
        count against) is below the file's size."""
        k = self.keys["p256"]
        n = 3 * 600000 - 1234
        hdr = json.dumps({"w": {"dtype": "U8", "shape": [n], "data_offsets": [0, n]}}).encode()
        hdr += b" " * (-len(hdr) % 8)
        path = self.ws.path("big.safetensors")
        with open(path, "wb") as f:
            f.write(len(hdr).to_bytes(8, "little") + hdr + os.urandom(n))
        size = os.path.getsize(path)
        st = omsref.statement(omsref.shard_resources(path, 600000), method="shards",
                              shard_size=600000, name="big.safetensors")
        self.assertEqual(len(st["predicate"]["resources"]), 3)
        self.ws.write("big.sig", omsref.sign_statement(k, st))
        self.add_model("big", path, {"keys": ["p256"], "bundle": "big.sig"})
        self.ws.write_policy()
        r = self.ws.run("inspect", "--json", "big")
        self.assertExit(r, OK)
        self.assertEqual(json.loads(r.stdout)["tensors"][0]["name"], "w")
        r = mgtest.run_bin("inspect", "-p", self.ws.policy_path, "big", preexec_fn=lambda:
                           resource.setrlimit(resource.RLIMIT_FSIZE, (size // 2, size // 2)))
        self.assertExit(r, OK, "private memory under a low RLIMIT_FSIZE")
        with open(path, "r+b") as f:
            f.seek(900000)
            b = f.read(1)
            f.seek(900000)
            f.write(bytes([b[0] ^ 1]))
        r = self.ws.run("verify", "big")
        self.assertExit(r, INTEGRITY)
        self.assertIn("600000:1200000", r.stderr)

    def test_threshold(self):
        a, b = self.keys["p256"], self.keys["p384"]
        d = self.model("two")
        payload = omsref.payload_bytes(omsref.statement(omsref.file_resources(d)))
        m = omsref.pae(payload)
        self.put("two", omsref.make_bundle(payload, [omsref.sign(a, m), omsref.sign(b, m)]),
                 keys=("p256", "p384"), threshold=2)
        d = self.model("one-of-two")
        payload = omsref.payload_bytes(omsref.statement(omsref.file_resources(d)))
        m = omsref.pae(payload)
        self.put("one-of-two", omsref.make_bundle(payload, [omsref.sign(a, m), omsref.sign(a, m)]),
                 keys=("p256", "p384"), threshold=2)
        # signatures[0] is what the reference checks: a good second one alone is not enough
        d = self.model("second-only")
        payload = omsref.payload_bytes(omsref.statement(omsref.file_resources(d)))
        m = omsref.pae(payload)
        self.put("second-only", omsref.make_bundle(payload, [omsref.sign(a, b"other"),
                                                             omsref.sign(a, m)]))
        self.check([("two", OK), ("one-of-two", SIGNATURE), ("second-only", SIGNATURE)])


TRUST = os.path.join(DATA, "sigstore-trust", "trusted_root.prod.json")
ID = "stefanb@us.ibm.com"
ISSUER = "https://sigstore.verify.ibm.com/oauth2"


class TestSigstoreMode(OmsCase):
    """Offline against the production trusted root: Fulcio chain at the Rekor time, SET,
    RFC 6962 inclusion proof, the Rekor body bound to the envelope, identity and issuer."""

    def setUp(self):
        super().setUp()
        shutil.copy(TRUST, self.ws.path("root.json"))
        os.chmod(self.ws.path("root.json"), 0o600)

    def check_one(self, source, want, identity=ID, issuer=ISSUER, ignore=None, bundle=None,
                  msg=""):
        oms = {"sigstore_root": "root.json", "identity": identity, "issuer": issuer}
        if bundle:
            oms["bundle"] = bundle
        self.ws.models = []
        self.add_model("s", source, oms, ignore)
        r = self.verify("s")
        self.assertExit(r, want, msg)
        return r

    def test_corpus(self):
        for v in ("v0.3.1", "v1.0.0", "v1.0.1", "v1.1.0"):
            with self.subTest(version=v):
                self.check_one(os.path.join(MT, v + "-sigstore") + "/", OK, ignore=["ignore-me"],
                               msg=v)
        with self.subTest(version="v1.0.1 without the ignore"):
            self.check_one(os.path.join(MT, "v1.0.1-sigstore") + "/", INTEGRITY)
        for other in ("v1.1.0-elliptic-key", "v1.1.0-certificate"):
            with self.subTest(bundle=other):
                self.check_one(os.path.join(MT, other) + "/", SIGNATURE)
        d = self.copy_dir(os.path.join(MT, "v1.1.0-sigstore"), "spec")
        shutil.copy(os.path.join(VECTORS, "valid", "sigstore.bundle.json"), d + "model.sig")
        with self.subTest(vector="valid/sigstore.bundle.json"):
            self.check_one(d, OK)
        shutil.copy(os.path.join(VECTORS, "invalid", "missing-tlog-entries.bundle.json"),
                    d + "model.sig")
        with self.subTest(vector="invalid/missing-tlog-entries.bundle.json"):
            self.check_one(d, SIGNATURE)

    def test_identity_and_issuer(self):
        d = os.path.join(MT, "v1.1.0-sigstore") + "/"
        r = self.check_one(d, SIGNATURE, identity="someone@example.com")
        self.assertIn("identity", r.stderr)
        r = self.check_one(d, SIGNATURE, issuer="https://accounts.google.com")
        self.assertIn("issuer", r.stderr)

    def tampered(self, name, change, want=SIGNATURE, words=None):
        d = self.copy_dir(os.path.join(MT, "v1.1.0-sigstore"), name)
        with open(d + "model.sig") as f:
            b = json.load(f)
        change(b)
        with open(d + "model.sig", "w") as f:
            json.dump(b, f)
        r = self.check_one(d, want, msg=name)
        if words:
            self.assertIn(words, r.stderr, name)

    def test_rekor_entry_tampering(self):
        with open(os.path.join(MT, "v1.0.0-sigstore", "model.sig")) as f:
            other = json.load(f)["verificationMaterial"]["tlogEntries"][0]

        def entry(b):
            return b["verificationMaterial"]["tlogEntries"][0]

        def swap_entry(b):  # a valid Rekor entry, but for another envelope
            b["verificationMaterial"]["tlogEntries"] = [other]

        def time_moved(b):
            entry(b)["integratedTime"] = str(int(entry(b)["integratedTime"]) + 1)

        def set_flipped(b):
            s = bytearray(__import__("base64").b64decode(entry(b)["inclusionPromise"]["signedEntryTimestamp"]))
            s[-1] ^= 1
            entry(b)["inclusionPromise"]["signedEntryTimestamp"] = __import__("base64").b64encode(bytes(s)).decode()

        def proof_hash(b):
            h = entry(b)["inclusionProof"]["hashes"]
            h[0], h[1] = h[1], h[0]

        def proof_index(b):
            p = entry(b)["inclusionProof"]
            p["logIndex"] = str(int(p["logIndex"]) + 1)

        def no_entries(b):
            b["verificationMaterial"]["tlogEntries"] = []

        def two_entries(b):  # its own entry, and a valid one of another bundle
            b["verificationMaterial"]["tlogEntries"].append(other)

        def unknown_log(b):
            entry(b)["logId"]["keyId"] = __import__("base64").b64encode(b"\1" * 32).decode()

        def other_cert(b):
            with open(os.path.join(KEYS, "signing-key-cert.pem"), "rb") as f:
                pem = f.read()
            der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
            b["verificationMaterial"]["certificate"]["rawBytes"] = __import__("base64").b64encode(der).decode()

        def proof_of_other_entry(b):  # this entry and SET, the inclusion proof of another
            entry(b)["inclusionProof"] = other["inclusionProof"]

        def checkpoint_of_other_tree(b):  # a genuine checkpoint, signed by the log, of another
            entry(b)["inclusionProof"]["checkpoint"] = other["inclusionProof"]["checkpoint"]

        def checkpoint_edit(fn):
            def change(b):
                cp = entry(b)["inclusionProof"]["checkpoint"]
                cp["envelope"] = fn(cp["envelope"])
            return change

        def resign_line(env, edit):
            note, lines = env.split("\n\n", 1)
            head, sig = lines.rstrip("\n").rsplit(" ", 1)
            raw = bytearray(base64.b64decode(sig))
            edit(raw)
            return note + "\n\n" + head + " " + base64.b64encode(bytes(raw)).decode() + "\n"

        def flip_last(raw):
            raw[-1] ^= 1

        def other_hint(raw):
            raw[0] ^= 0xff

        def no_checkpoint(b):
            del entry(b)["inclusionProof"]["checkpoint"]

        cases = [("proof-of-another-entry", proof_of_other_entry, "inclusion proof"),
                 ("checkpoint-of-another-tree", checkpoint_of_other_tree,
                  "checkpoint is for another tree"),
                 ("checkpoint-signature-flipped",
                  checkpoint_edit(lambda e: resign_line(e, flip_last)), "not signed by the log"),
                 ("checkpoint-other-key-hint",
                  checkpoint_edit(lambda e: resign_line(e, other_hint)), "not signed by the log"),
                 ("checkpoint-root-line-changed",
                  checkpoint_edit(lambda e: e.replace("V0NA1e", "V0NA1f", 1)),
                  "checkpoint is for another tree"),
                 ("checkpoint-not-a-note", checkpoint_edit(lambda e: e.replace("\n\n", "\n")),
                  "not a signed note"),
                 ("checkpoint-missing", no_checkpoint, "no checkpoint"),
                 ("swap-entry", swap_entry, "not about this envelope"),
                 ("time-moved", time_moved, "signed entry timestamp"),
                 ("set-flipped", set_flipped, "signed entry timestamp"),
                 ("proof-hash", proof_hash, "inclusion proof"),
                 ("proof-index", proof_index, "inclusion proof"),
                 ("no-entries", no_entries, "tlogEntries"),
                 ("two-entries", two_entries, "exactly one Rekor entry"),
                 ("unknown-log", unknown_log, "not in the trusted root"),
                 ("other-cert", other_cert, "not about this envelope")]
        for name, change, words in cases:
            with self.subTest(case=name):
                self.tampered(name, change, SIGNATURE, words)

    def test_checkpoint_cosignature_of_another_key_is_ignored(self):
        def witness(b):
            cp = b["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["checkpoint"]
            cp["envelope"] += "\u2014 witness.example " + base64.b64encode(
                b"\1\2\3\4" + b"\0" * 64).decode() + "\n"
        self.tampered("witness", witness, OK)

    def root_variant(self, change):
        with open(TRUST) as f:
            root = json.load(f)
        change(root)
        self.ws.write("root.json", json.dumps(root).encode(), 0o600)

    def test_trusted_root(self):
        """The Fulcio CA and the Rekor log must be in the trusted root, valid at the Rekor
        integrated time (2025-10-10 for v1.1.0), with their own keys."""
        d = os.path.join(MT, "v1.1.0-sigstore") + "/"
        other = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

        def no_cas(root):
            root["certificateAuthorities"] = []

        def cas_later(root):  # the CAs start after the entry was logged
            for ca in root["certificateAuthorities"]:
                ca["validFor"] = {"start": "2026-01-01T00:00:00Z"}

        def cas_ended(root):  # ... or had ended before
            for ca in root["certificateAuthorities"]:
                ca["validFor"]["end"] = "2025-01-01T00:00:00Z"

        def log_later(root):
            for log in root["tlogs"]:
                log["publicKey"]["validFor"] = {"start": "2026-01-01T00:00:00Z"}

        def log_key_replaced(root):  # same log id, another key: the SET fails
            for log in root["tlogs"]:
                log["publicKey"]["rawBytes"] = base64.b64encode(other).decode()

        cases = [("no-cas", no_cas, "Fulcio CA"), ("cas-later", cas_later, "Fulcio CA"),
                 ("cas-ended", cas_ended, "Fulcio CA"),
                 ("log-later", log_later, "not in the trusted root"),
                 ("log-key-replaced", log_key_replaced, "signed entry timestamp")]
        for name, change, words in cases:
            with self.subTest(case=name):
                self.root_variant(change)
                r = self.check_one(d, SIGNATURE, ignore=["ignore-me"], msg=name)
                self.assertIn(words, r.stderr, name)

    def test_certificate_transparency(self):
        """The Fulcio leaf's embedded SCT must verify with a CT log of the trusted root."""
        d = os.path.join(MT, "v1.1.0-sigstore") + "/"
        other = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

        def no_ctlogs(root):
            root["ctlogs"] = []

        def key_replaced(root):  # same log id, another key: the SCT signature fails
            for log in root["ctlogs"]:
                log["publicKey"]["rawBytes"] = base64.b64encode(other).decode()

        def not_yet_valid(root):  # the logs start after the SCT was issued
            for log in root["ctlogs"]:
                log["publicKey"]["validFor"] = {"start": "2030-01-01T00:00:00Z"}

        def extra_log(root):  # an unrelated log besides the real ones changes nothing
            root["ctlogs"].append({"baseUrl": "https://ct.example", "hashAlgorithm": "SHA2_256",
                                   "publicKey": {"rawBytes": base64.b64encode(other).decode(),
                                                 "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                                                 "validFor": {"start": "2020-01-01T00:00:00Z"}},
                                   "logId": {"keyId": base64.b64encode(b"\7" * 32).decode()}})

        cases = [("no-ctlogs", no_ctlogs, SIGNATURE, "no SCT is from a CT log"),
                 ("key-replaced", key_replaced, SIGNATURE, "SCT does not verify"),
                 ("not-yet-valid", not_yet_valid, SIGNATURE, "no SCT is from a CT log"),
                 ("extra-log", extra_log, OK, None)]
        for name, change, want, words in cases:
            with self.subTest(case=name):
                self.root_variant(change)
                r = self.check_one(d, want, ignore=["ignore-me"], msg=name)
                if words:
                    self.assertIn("certificate transparency", r.stderr, name)
                    self.assertIn(words, r.stderr, name)

    def test_policy_needs_identity_and_issuer(self):
        d = os.path.join(MT, "v1.1.0-sigstore") + "/"
        for oms in ({"sigstore_root": "root.json", "identity": ID},
                    {"sigstore_root": "root.json", "issuer": ISSUER},
                    {"sigstore_root": "root.json", "identity": ID, "issuer": ISSUER,
                     "threshold": 1},
                    {"sigstore_root": "missing.json", "identity": ID, "issuer": ISSUER}):
            with self.subTest(oms=oms):
                self.ws.models = [{"name": "s", "source": d, "oms": oms}]
                self.ws.write_policy()
                self.assertExit(self.ws.run("policy check"), POLICY)


class TestCorpusEveryMode(OmsCase):
    """Every bundle of tests/data/oms in each of the three modes, with its exit code: the key
    mode with the reference's P-384 key, the certificate mode with its ca-cert.pem, the
    Sigstore mode with the production trusted root and the fixtures' identity and issuer."""

    KEY, CERT, SIGSTORE = range(3)
    ELLIPTIC = os.path.join(MT, "v1.1.0-elliptic-key")
    # (bundle, model folder or single file, verdict in key, certificate, Sigstore mode)
    ROWS = [
        ("v0.3.1-elliptic-key", "single", (OK, SIGNATURE, SIGNATURE)),
        ("v1.0.0-elliptic-key", "single", (OK, SIGNATURE, SIGNATURE)),
        ("v1.0.1-elliptic-key", None, (OK, SIGNATURE, SIGNATURE)),
        ("v1.1.0-elliptic-key", None, (OK, SIGNATURE, SIGNATURE)),
        ("v0.2.0-certificate", None, (SIGNATURE, SIGNATURE, SIGNATURE)),
        ("v0.3.1-certificate", None, (OK, OK, SIGNATURE)),
        ("v1.0.0-certificate", None, (OK, OK, SIGNATURE)),
        ("v1.0.1-certificate", None, (OK, OK, SIGNATURE)),
        ("v1.1.0-certificate", None, (OK, OK, SIGNATURE)),
        ("v0.3.1-sigstore", None, (SIGNATURE, SIGNATURE, OK)),
        ("v1.0.0-sigstore", None, (SIGNATURE, SIGNATURE, OK)),
        ("v1.0.1-sigstore", None, (SIGNATURE, SIGNATURE, OK)),
        ("v1.1.0-sigstore", None, (SIGNATURE, SIGNATURE, OK)),
        ("valid/key.bundle.json", ELLIPTIC, (OK, SIGNATURE, SIGNATURE)),
        ("valid/certificate.bundle.json", ELLIPTIC, (OK, OK, SIGNATURE)),
        ("valid/sigstore.bundle.json", os.path.join(MT, "v1.1.0-sigstore"),
         (SIGNATURE, SIGNATURE, OK)),
        ("invalid/empty.bundle.json", ELLIPTIC, (SIGNATURE,) * 3),
        ("invalid/missing-envelope.bundle.json", ELLIPTIC, (SIGNATURE,) * 3),
        ("invalid/missing-tlog-entries.bundle.json", ELLIPTIC, (SIGNATURE,) * 3),
        ("invalid/missing-verification-material.bundle.json", ELLIPTIC, (SIGNATURE,) * 3),
        ("invalid-payload/wrong-predicate.bundle.json", ELLIPTIC, (SIGNATURE,) * 3),
    ]

    def test_every_bundle_in_every_mode(self):
        self.add_reference_key()
        shutil.copy(os.path.join(KEYS, "ca-cert.pem"), self.ws.path("ca.pem"))
        shutil.copy(TRUST, self.ws.path("root.json"))
        anchors = ({"keys": ["ref"]}, {"ca_file": "ca.pem"},
                   {"sigstore_root": "root.json", "identity": ID, "issuer": ISSUER})
        models = []
        for i, (bundle, model, verdicts) in enumerate(self.ROWS):
            if model == "single":  # the bundle beside a single-file model
                models.append((os.path.join(MT, bundle, "signme-1"),
                               {"bundle": os.path.join(MT, bundle, "model.sig")}, None))
            elif model is None:
                models.append((os.path.join(MT, bundle) + "/", {}, ["ignore-me"]))
            else:  # a spec vector over a copy of the folder it signs
                source = self.copy_dir(model, "vector%d" % i)
                shutil.copy(os.path.join(VECTORS, bundle), source + "model.sig")
                models.append((source, {}, ["ignore-me"]))
        for mode, anchor in enumerate(anchors):  # one policy per mode (one entry per source)
            self.ws.models = []
            for i, (source, where, ignore) in enumerate(models):
                self.add_model("b%d" % i, source, dict(anchor, **where), ignore)
            self.ws.write_policy()
            for i, (bundle, _, verdicts) in enumerate(self.ROWS):
                with self.subTest(bundle=bundle, mode=("key", "certificate", "sigstore")[mode]):
                    self.assertExit(self.ws.run("verify", "b%d" % i), verdicts[mode],
                                    "%s, mode %d" % (bundle, mode))


GOLDEN = os.path.join(DATA, "model-transparency", "tests", "_signing", "testdata", "signing",
                      "TestPayload")


class TestSignOms(OmsCase):
    """`modelgate sign --format oms`, checked by omsref (independent) and the reference's
    own golden statements."""

    def keypair(self, curve, name):
        k = ec.generate_private_key(curve)
        self.ws.write(name + ".key", k.private_bytes(serialization.Encoding.PEM,
                                                     serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()), 0o600)
        self.add_key_pem(name, pub_pem(k))
        return k

    def sign(self, key_name, d, *extra):
        return mgtest.run_bin("sign", "--format", "oms", "-k", self.ws.path(key_name + ".key"),
                              *extra, d)

    def test_sign_check_independently_and_verify(self):
        files = {"a/a": b"1", "a/b": b"2", "a-c": b"3", "a.b": b"4", "big.bin": os.urandom(2500),
                 "empty": b"", ".git/HEAD": b"ref", ".gitignore": b"*.tmp"}
        for curve in (ec.SECP256R1(), ec.SECP384R1(), ec.SECP521R1()):
            for shard in (None, 1000):
                name = "m%d-%s" % (curve.key_size, shard)
                k = self.keypair(curve, name)
                d = self.make_model(name, files)
                r = self.sign(name, d, *(["--shard-size", str(shard)] if shard else []))
                self.assertExit(r, OK, name)
                with open(d + "model.sig", "rb") as f:
                    st = omsref.read_bundle(f.read(), k.public_key())
                omsref.check_model(st, d)
                names = [x["name"] for x in st["predicate"]["resources"]]
                if shard:
                    self.assertEqual(names, ["a/a:0:1", "a/b:0:1", "a-c:0:1", "a.b:0:1",
                                             "big.bin:0:1000", "big.bin:1000:2000",
                                             "big.bin:2000:2500"])
                    self.assertEqual(st["predicate"]["serialization"]["shard_size"], 1000)
                else:  # component order, as the reference signer sorts
                    self.assertEqual(names, ["a/a", "a/b", "a-c", "a.b", "big.bin", "empty"])
                self.ws.models = []
                self.add_model(name, d, {"keys": [name]})
                self.assertExit(self.verify(name), OK, name)
                with open(d + "big.bin", "r+b") as f:
                    f.write(b"\0\1")
                self.assertExit(self.verify(name), 1, name)

    def build_sample(self, name):
        files = {}
        for i in range(2):
            for j in range(3):
                files["d%d/f%d%d" % (i, i, j)] = b"This is file f%d%d in d%d." % (i, j, i)
        for i in range(4):
            files["f%d" % i] = b"This is file f%d in root." % i
        return self.make_model(name, files)

    def build_deep(self, name):
        return self.make_model(name, {"d0/d1/d2/d3/d4/f%d" % i: b"This is file f%d." % i
                                      for i in range(4)})

    def test_same_statement_as_the_reference_signer(self):
        self.keypair(ec.SECP256R1(), "k")
        for golden, build, shard in (("sample_model_folder", self.build_sample, None),
                                     ("sample_model_folder_small_shards", self.build_sample, 8),
                                     ("deep_model_folder", self.build_deep, None),
                                     ("deep_model_folder_small_shards", self.build_deep, 8)):
            with self.subTest(golden=golden):
                d = build(golden)
                self.assertExit(self.sign("k", d, *(["--shard-size", "8"] if shard else [])), OK)
                with open(d + "model.sig", "rb") as f:
                    b = json.load(f)
                mine = json.loads(__import__("base64").b64decode(b["dsseEnvelope"]["payload"]))
                with open(os.path.join(GOLDEN, golden)) as f:
                    ref = json.load(f)
                self.assertEqual(mine["predicate"]["resources"], ref["predicate"]["resources"])
                self.assertEqual(mine["subject"][0]["digest"], ref["subject"][0]["digest"])
                self.assertEqual(mine["predicateType"], ref["predicateType"])

    def test_sign_usage(self):
        from cryptography.hazmat.primitives.asymmetric import ed25519
        ed = ed25519.Ed25519PrivateKey.generate()
        self.ws.write("ed.key", ed.private_bytes(serialization.Encoding.PEM,
                                                 serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()), 0o600)
        d = self.make_model("m", {"a": b"a"})
        self.assertExit(self.sign("ed", d), mgtest.USAGE)
        self.assertFalse(os.path.exists(d + "model.sig"))
        self.keypair(ec.SECP256R1(), "k")
        self.assertExit(self.sign("k", d, "-V", "2"), mgtest.USAGE)
        self.assertExit(self.sign("k", d, "--shard-size", "0"), mgtest.USAGE)
        e = self.make_model("e", {"empty": b""})
        self.assertExit(self.sign("k", e, "--shard-size", "8"), mgtest.USAGE)
        os.symlink("a", d + "link")
        self.assertExit(self.sign("k", d), mgtest.FORMAT)


class TestShardedManifest(OmsCase):
    """modelgate's own manifests with `sign --shard-size`: sha256_shards per big file."""

    def test_sign_verify_tamper(self):
        import hashlib
        k = ec.generate_private_key(ec.SECP256R1())
        self.ws.write("k.key", k.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()), 0o600)
        self.add_key_pem("k", pub_pem(k))
        big = os.urandom(2500)
        d = self.make_model("m", {"big.bin": big, "one.bin": os.urandom(1000), "small": b"s",
                                  "empty": b""})
        r = mgtest.run_bin("sign", "-k", self.ws.path("k.key"), "-n", "m", "--shard-size", "1000",
                           d)
        self.assertExit(r, OK)
        with open(d + "manifest.json") as f:
            man = json.load(f)
        entries = {e["path"]: e for e in man["files"]}
        self.assertEqual(entries["big.bin"]["shard_size"], 1000)
        self.assertEqual(entries["big.bin"]["sha256_shards"],
                         [hashlib.sha256(big[i:i + 1000]).hexdigest() for i in (0, 1000, 2000)])
        self.assertNotIn("sha256", entries["big.bin"])
        for name in ("one.bin", "small", "empty"):  # one shard or none: the plain digest
            self.assertEqual(entries[name]["sha256"], mgtest.digest_file(d + name))
        self.ws.models = [{"name": "m", "source": d, "manifest": {"keys": ["k"]}}]
        self.ws.write_policy()
        self.assertExit(self.ws.run("verify", "m"), OK)
        with open(d + "big.bin", "r+b") as f:
            f.seek(2100)
            f.write(b"\0" if big[2100] else b"\1")
        r = self.ws.run("verify", "m")
        self.assertExit(r, INTEGRITY)
        self.assertIn("2000:2500", r.stderr)
        # a signed manifest with a wrong number of shards is refused before any file is read
        entries["big.bin"]["sha256_shards"].pop()
        text = json.dumps(man, indent=2).encode()
        self.ws.write("m/manifest.json", text)
        self.ws.write("m/manifest.json.sig", k.sign(text, ec.ECDSA(hashes.SHA256())))
        self.assertExit(self.ws.run("verify", "m"), SIGNATURE)
        self.assertExit(mgtest.run_bin("sign", "-k", self.ws.path("k.key"), "-a", "sha512",
                                       "--shard-size", "10", d), mgtest.USAGE)


class TestOmsPolicy(OmsCase):
    def test_policy_errors(self):
        k = ec.generate_private_key(ec.SECP256R1())
        self.add_key_pem("ec", pub_pem(k))
        from cryptography.hazmat.primitives.asymmetric import ed25519
        ed = ed25519.Ed25519PrivateKey.generate()
        self.add_key_pem("ed", pub_pem(ed))
        d = self.ws.path("m") + "/"
        os.makedirs(d)
        bad = [
            {"keys": ["ed"]},                                 # not ECDSA
            {"keys": ["ec"], "ca_file": "ca.pem"},            # two anchors
            {},                                               # no anchor
            {"keys": ["nope"]},
            {"keys": ["ec"], "bundle": "../model.sig"},
            {"keys": ["ec"], "identity": "x"},
            {"keys": ["ec"], "allow_symlinks": "yes"},
        ]
        for i, oms in enumerate(bad):
            with self.subTest(oms=oms):
                self.ws.models = [{"name": "m", "source": d, "oms": oms}]
                self.ws.write_policy()
                self.assertExit(self.ws.run("policy check"), POLICY, json.dumps(oms))
        # "ignore" is not only for OMS: any local directory entry may have it (README)
        self.ws.models = [{"name": "m", "source": d, "files": {"a": {"sha256": "00" * 32}},
                           "ignore": ["x"]}]
        self.ws.write_policy()
        self.assertExit(self.ws.run("policy check"), OK)
        # a single file needs the bundle's path
        self.ws.models = [{"name": "m", "source": self.ws.path("f.bin"), "oms": {"keys": ["ec"]}}]
        self.ws.write_policy()
        self.assertExit(self.ws.run("policy check"), POLICY)


if __name__ == "__main__":
    mgtest.main()
