"""Models from an OCI registry and authenticated HTTPS sources (issue 18).

The registry is the real one: Debian's docker-registry (the CNCF distribution registry),
started here on 127.0.0.1 with the test CA's certificate (tests/tls/make_certs.sh) and
htpasswd basic auth; a second instance on the same storage requires TLS client certificates.
Artifacts are pushed with the registry API (ORAS layout: one layer per file, titled by
org.opencontainers.image.title). The token flow and the cross-host redirect are checked
against tests/tls/server.py, which records every Authorization header it receives.
"""
import base64
import hashlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mgtest  # noqa: E402
from test_https import Server  # noqa: E402

REGISTRY_BIN = "/usr/bin/docker-registry"
HTPASSWD_BIN = "/usr/bin/htpasswd"
USER, PASSWORD = "mguser", "mg-secret-pw-4711"
TINY = os.path.join(mgtest.SOURCE_DIR, "examples", "models", "tiny-mlp")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"

for var in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "http_proxy", "HTTP_PROXY"):
    os.environ.pop(var, None)
os.environ["no_proxy"] = "*"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    """docker-registry on 127.0.0.1: `basic` (htpasswd) and `mtls` (client certificates)."""

    def __init__(self, certs):
        for b in (REGISTRY_BIN, HTPASSWD_BIN):
            if not os.access(b, os.X_OK):
                raise AssertionError("%s is missing (scripts/install-deps.sh installs "
                                     "docker-registry and apache2-utils)" % b)
        self.dir = tempfile.mkdtemp(prefix="mgreg.")
        self.storage = os.path.join(self.dir, "storage")
        self.certs = certs
        htp = subprocess.run([HTPASSWD_BIN, "-Bbn", USER, PASSWORD], check=True,
                             capture_output=True).stdout
        with open(os.path.join(self.dir, "htpasswd"), "wb") as f:
            f.write(htp)
        self.make_client_cert()
        self.procs = []
        self.port = self.start("basic", auth=True)
        self.mtls_port = self.start("mtls", auth=False, clientca=True)
        self.ctx = ssl.create_default_context(cafile=os.path.join(certs, "ca.pem"))

    def make_client_cert(self):
        c = self.certs
        self.client_key = os.path.join(self.dir, "client.key")
        self.client_cert = os.path.join(self.dir, "client.pem")
        run = lambda *a: subprocess.run(a, check=True, capture_output=True)  # noqa: E731
        run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-out", self.client_key)
        csr = os.path.join(self.dir, "client.csr")
        run("openssl", "req", "-new", "-key", self.client_key, "-subj", "/CN=mg-client", "-out", csr)
        ext = os.path.join(self.dir, "client.ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                    "extendedKeyUsage=clientAuth\n")
        run("openssl", "x509", "-req", "-in", csr, "-CA", os.path.join(c, "ca.pem"), "-CAkey",
            os.path.join(c, "ca.key"), "-CAcreateserial", "-days", "2", "-sha256", "-extfile", ext,
            "-out", self.client_cert)
        os.chmod(self.client_key, 0o600)

    def start(self, name, auth, clientca=False):
        port = free_port()
        cfg = ["version: 0.1", "log:", "  level: error", "  accesslog:", "    disabled: true",
               "storage:", "  filesystem:", "    rootdirectory: %s" % self.storage,
               "  delete:", "    enabled: true",
               "http:", "  addr: 127.0.0.1:%d" % port, "  secret: mgtest-secret",
               "  tls:", "    certificate: %s/good.pem" % self.certs,
               "    key: %s/good.key" % self.certs]
        if clientca:
            cfg += ["    clientcas:", "      - %s/ca.pem" % self.certs]
        if auth:
            cfg += ["auth:", "  htpasswd:", "    realm: mgtest",
                    "    path: %s/htpasswd" % self.dir]
        path = os.path.join(self.dir, name + ".yml")
        with open(path, "w") as f:
            f.write("\n".join(cfg) + "\n")
        with open(os.path.join(self.dir, name + ".log"), "wb") as log:
            p = subprocess.Popen([REGISTRY_BIN, "serve", path], stdout=log,
                                 stderr=subprocess.STDOUT)
        self.procs.append(p)
        for _ in range(200):  # at most 20 s
            if p.poll() is not None:
                break
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return port
            except OSError:
                time.sleep(0.1)
        with open(os.path.join(self.dir, name + ".log"), "rb") as f:
            raise AssertionError("docker-registry did not start: %s" % f.read()[-2000:])

    def stop(self):
        for p in self.procs:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    # ---- the registry API, as a pushing client uses it ----

    def request(self, method, path, data=None, headers=None, auth=True):
        h = dict(headers or {})
        if auth:
            h["Authorization"] = "Basic " + base64.b64encode(
                ("%s:%s" % (USER, PASSWORD)).encode()).decode()
        url = path if path.startswith("https://") else "https://127.0.0.1:%d%s" % (self.port, path)
        req = urllib.request.Request(url, data=data, method=method, headers=h)
        with urllib.request.urlopen(req, context=self.ctx, timeout=30) as r:
            return r.status, dict(r.headers), r.read()

    def push_blob(self, repo, data):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        _, hdrs, _ = self.request("POST", "/v2/%s/blobs/uploads/" % repo, data=b"")
        loc = hdrs["Location"]
        if not loc.startswith("https://"):
            loc = "https://127.0.0.1:%d%s" % (self.port, loc)
        sep = "&" if "?" in loc else "?"
        self.request("PUT", loc + sep + "digest=" + digest, data=data,
                     headers={"Content-Type": "application/octet-stream"})
        return digest

    def push_artifact(self, repo, tag, files, titles=None, extra_layer=None):
        """files: {title: bytes}. Returns the manifest digest (hex) and the manifest bytes."""
        config = b"{}"
        cdig = self.push_blob(repo, config)
        layers = []
        for i, (title, data) in enumerate(sorted(files.items())):
            d = self.push_blob(repo, data)
            t = titles[i] if titles else title
            layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d,
                           "size": len(data),
                           "annotations": {"org.opencontainers.image.title": t}})
        if extra_layer:
            layers.append(extra_layer)
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": cdig,
                               "size": len(config)},
                    "layers": layers}
        body = json.dumps(manifest, indent=1).encode()
        self.request("PUT", "/v2/%s/manifests/%s" % (repo, tag), data=body,
                     headers={"Content-Type": OCI_MANIFEST})
        return hashlib.sha256(body).hexdigest(), body

    def blob_path(self, digest_hex):
        return os.path.join(self.storage, "docker", "registry", "v2", "blobs", "sha256",
                            digest_hex[:2], digest_hex, "data")


SERVER = None
REG = None


def setUpModule():
    global SERVER, REG
    SERVER = Server()
    REG = Registry(SERVER.certs)


def tearDownModule():
    if REG is not None:
        REG.stop()
    if SERVER is not None:
        SERVER.stop()


def tiny_files():
    out = {}
    for n in sorted(os.listdir(TINY)):
        with open(os.path.join(TINY, n), "rb") as f:
            out[n] = f.read()
    return out


class OCIBase(mgtest.TestCase):
    def creds(self, hosts, mode=0o600):
        p = self.ws.write("creds.json", json.dumps({"hosts": hosts}).encode(), mode)
        self.ws.extra["credentials"] = p
        return p

    def basic_creds(self, password=PASSWORD, port=None):
        return self.creds({"127.0.0.1:%d" % (port or REG.port):
                           {"username": USER, "password": password}})

    def model(self, name, repo, digest, port=None, **kw):
        entry = {"name": name, "source": "oci://127.0.0.1:%d/%s@sha256:%s" %
                 (port or REG.port, repo, digest)}
        entry.update(kw)
        self.ws.models.append(entry)
        self.ws.extra["ca_file"] = SERVER.ca
        self.ws.write_policy()

    def assertNoSecret(self, r):
        text = r.stderr + r.stdout.decode("utf-8", "replace")
        self.assertNotIn(PASSWORD, text)
        audit = self.ws.path("audit.jsonl")
        if os.path.exists(audit):
            with open(audit) as f:
                self.assertNotIn(PASSWORD, f.read())



class OCITest(OCIBase):
    def test_good_pull_by_digest(self):
        files = tiny_files()
        digest, _ = REG.push_artifact("models/tiny-mlp", "v1", files)
        self.basic_creds()
        self.ws.extra["audit_log"] = self.ws.path("audit.jsonl")
        self.model("tiny", "models/tiny-mlp", digest)
        r, doc = self.ws.inspect_json("tiny")
        self.assertExit(r, mgtest.OK)
        self.assertEqual(sorted(f["path"] for f in doc["files"]), sorted(files))
        for f in doc["files"]:
            self.assertEqual(f["sha256"], hashlib.sha256(files[f["path"]]).hexdigest())
        names = [t["name"] for t in doc["tensors"]]
        self.assertIn("layers.0.weight", names)
        # the same model by its exact source
        r = self.ws.run("verify", "oci://127.0.0.1:%d/models/tiny-mlp@sha256:%s" % (REG.port, digest))
        self.assertExit(r, mgtest.OK)
        # dump gives the bytes of the pushed file
        r = self.ws.run("dump", "tiny", "layers.0.bias")
        self.assertExit(r, mgtest.OK)
        self.assertIn(r.stdout, files["model.safetensors"])
        self.assertNoSecret(r)
        with open(self.ws.path("audit.jsonl")) as f:
            lines = [json.loads(l) for l in f]
        self.assertTrue(all(l["source"].startswith("oci://127.0.0.1:") for l in lines))

    def test_policy_pin_resolves_a_tag_once(self):
        digest, _ = REG.push_artifact("models/pinme", "release-1", tiny_files())
        self.basic_creds()
        self.ws.extra["ca_file"] = SERVER.ca
        self.ws.write_policy()
        r = mgtest.run_bin("policy", "pin", "-p", self.ws.policy_path, "-n", "pinned",
                           "oci://127.0.0.1:%d/models/pinme:release-1" % REG.port)
        self.assertExit(r, mgtest.OK)
        entry = json.loads(r.stdout)
        self.assertEqual(entry["source"],
                         "oci://127.0.0.1:%d/models/pinme@sha256:%s" % (REG.port, digest))
        self.ws.models.append(entry)
        self.ws.write_policy()
        self.assertExit(self.ws.run("inspect", "pinned"), mgtest.OK)

    def test_tag_in_policy_is_refused(self):
        self.ws.models.append({"name": "t", "source": "oci://127.0.0.1:%d/models/x:latest" % REG.port})
        self.ws.write_policy()
        r = self.ws.run("policy check")
        self.assertExit(r, mgtest.POLICY)
        self.assertIn("tag is not a pin", r.stderr + r.stdout.decode())
        for bad in ("oci://127.0.0.1/Models/x@sha256:" + "a" * 64,       # upper case
                    "oci://127.0.0.1/models/x@sha512:" + "a" * 128,       # not sha256
                    "oci://127.0.0.1/models/x@sha256:" + "A" * 64,
                    "oci://user@127.0.0.1/models/x@sha256:" + "a" * 64,
                    "oci://127.0.0.1/models/../x@sha256:" + "a" * 64):
            self.ws.models[:] = [{"name": "t", "source": bad}]
            self.ws.write_policy()
            self.assertExit(self.ws.run("policy check"), mgtest.POLICY, bad)

    def test_unknown_manifest_digest(self):
        self.basic_creds()
        self.model("nope", "models/tiny-mlp", "0" * 64)
        self.assertExit(self.ws.run("verify", "nope"), mgtest.IO)

    def test_blob_swapped_in_storage_is_integrity(self):
        files = tiny_files()
        digest, manifest = REG.push_artifact("models/swap", "v1", files)
        layer = [l for l in json.loads(manifest)["layers"]
                 if l["annotations"]["org.opencontainers.image.title"] == "model.safetensors"][0]
        path = REG.blob_path(layer["digest"][7:])
        with open(path, "rb") as f:
            data = bytearray(f.read())
        data[500] ^= 0xFF  # same length, other bytes: the registry serves them as they are
        with open(path, "wb") as f:
            f.write(data)
        try:
            self.basic_creds()
            self.model("swap", "models/swap", digest)
            r = self.ws.run("verify", "--json", "swap")
            self.assertExit(r, mgtest.INTEGRITY)
            err = json.loads(r.stdout)["error"]
            self.assertEqual(err.get("file"), "model.safetensors")
        finally:
            data[500] ^= 0xFF
            with open(path, "wb") as f:
                f.write(data)

    def test_unsafe_titles_are_manifest_failures(self):
        self.basic_creds()
        for i, titles in enumerate((["../evil", "model.safetensors"],
                                    ["/etc/passwd", "model.safetensors"],
                                    ["same", "same"],
                                    ["a/./b", "model.safetensors"])):
            digest, _ = REG.push_artifact("models/bad%d" % i, "v1", tiny_files(), titles=titles)
            self.ws.models[:] = []
            self.model("bad", "models/bad%d" % i, digest)
            self.assertExit(self.ws.run("verify", "bad"), mgtest.SIGNATURE, titles)

    def test_layer_without_title_and_unpack_layers(self):
        self.basic_creds()
        d = REG.push_blob("models/untitled", b"x" * 10)
        digest, _ = REG.push_artifact("models/untitled", "v1", tiny_files(), extra_layer={
            "mediaType": "application/octet-stream", "digest": d, "size": 10})
        self.model("u", "models/untitled", digest)
        self.assertExit(self.ws.run("verify", "u"), mgtest.SIGNATURE)

    def test_missing_or_wrong_credentials(self):
        digest, _ = REG.push_artifact("models/auth", "v1", tiny_files())
        self.model("m", "models/auth", digest)            # no credentials file
        r = self.ws.run("verify", "m")
        self.assertExit(r, mgtest.IO)
        self.assertIn("401", r.stderr)
        self.assertIn("no credentials for this host", r.stderr)
        self.basic_creds(password="wrong-password-123")
        self.ws.write_policy()
        r = self.ws.run("verify", "m")
        self.assertExit(r, mgtest.IO)
        self.assertIn("were refused", r.stderr)
        self.assertNotIn("wrong-password-123", r.stderr)

    def test_bad_credentials_file_is_policy_error(self):
        digest, _ = REG.push_artifact("models/credfile", "v1", tiny_files())
        self.model("m", "models/credfile", digest)
        cases = [({"hosts": {"127.0.0.1:1": {"username": "u"}}}, 0o600),          # no password
                 ({"hosts": {"127.0.0.1:1": {"token": "t", "username": "u", "password": "p"}}}, 0o600),
                 ({"hosts": {"bad host": {"token": "t"}}}, 0o600),
                 ({"hosts": {"127.0.0.1:1": {"token": "a\nb"}}}, 0o600),
                 ({"nothosts": {}}, 0o600),
                 ({"hosts": {"127.0.0.1:1": {"token": "t"}}}, 0o666)]           # writable by others
        for doc, mode in cases:
            p = self.ws.write("creds.json", json.dumps(doc).encode(), mode)
            os.chmod(p, mode)
            self.ws.extra["credentials"] = p
            self.ws.write_policy()
            r = self.ws.run("verify", "m")
            self.assertExit(r, mgtest.POLICY, doc)
        self.ws.extra["credentials"] = self.ws.path("missing.json")
        self.ws.write_policy()
        self.assertExit(self.ws.run("verify", "m"), mgtest.POLICY)

    def test_client_certificate(self):
        digest, _ = REG.push_artifact("models/mtls", "v1", tiny_files())
        self.model("m", "models/mtls", digest, port=REG.mtls_port)
        self.assertExit(self.ws.run("verify", "m"), mgtest.IO)   # no client certificate
        with open(REG.client_key, "rb") as f:
            key = self.ws.write("client.key", f.read(), 0o600)
        self.creds({"127.0.0.1:%d" % REG.mtls_port: {"client_cert": REG.client_cert,
                                                      "client_key": key}})
        self.ws.write_policy()
        self.assertExit(self.ws.run("inspect", "m"), mgtest.OK)
        os.chmod(key, 0o644 | 0o020)                               # a group-writable key
        self.assertExit(self.ws.run("inspect", "m"), mgtest.POLICY)


class SignedArtifact(OCIBase):
    """An artifact that carries a modelgate manifest and its signature as layers, with the
    policy requiring them on top of the digest pin."""

    def signed_dir(self, name, version=3):
        d = self.ws.path("pub", name)
        shutil.copytree(TINY, d)
        os.makedirs(self.ws.path("keys"), mode=0o700, exist_ok=True)
        r = mgtest.run_bin("keygen", "-o", self.ws.path("keys", "rel"))
        if r.returncode != 0 and not os.path.exists(self.ws.path("keys", "rel.key")):
            self.fail(r.stderr)
        r = mgtest.run_bin("sign", "-k", self.ws.path("keys", "rel.key"), "-n", name,
                           "-V", str(version), d)
        self.assertExit(r, mgtest.OK, "sign")
        out = {}
        for n in sorted(os.listdir(d)):
            with open(os.path.join(d, n), "rb") as f:
                out[n] = f.read()
        return out

    def signed_model(self, name, repo, digest):
        self.ws.extra["keys"] = {"rel": {"public_key": self.ws.path("keys", "rel.pub")}}
        self.model(name, repo, digest, manifest={"keys": ["rel"]})

    def test_signed_artifact(self):
        files = self.signed_dir("sig")
        self.assertIn("manifest.json.sig", files)
        digest, _ = REG.push_artifact("models/signed", "v3", files)
        self.basic_creds()
        self.ws.extra["state_dir"] = self.ws.path("state")
        os.makedirs(self.ws.path("state"), mode=0o700)
        self.signed_model("sig", "models/signed", digest)
        r, doc = self.ws.inspect_json("sig")
        self.assertExit(r, mgtest.OK)
        # the manifest's own layers are not files of the model
        self.assertEqual(sorted(f["path"] for f in doc["files"]),
                         ["config.json", "model.safetensors"])

    def test_layer_swapped_under_a_signed_manifest(self):
        files = self.signed_dir("sig")
        files["model.safetensors"] = files["model.safetensors"][:-4] + b"\0\0\0\1"
        digest, _ = REG.push_artifact("models/swapped", "v3", files)  # digest pin is honest
        self.basic_creds()
        self.signed_model("sig", "models/swapped", digest)
        r = self.ws.run("verify", "--json", "sig")
        self.assertExit(r, mgtest.INTEGRITY)
        self.assertEqual(json.loads(r.stdout)["error"].get("file"), "model.safetensors")

    def test_unsigned_or_extra_layers(self):
        files = self.signed_dir("sig")
        unsigned = {k: v for k, v in files.items() if not k.startswith("manifest.json")}
        digest, _ = REG.push_artifact("models/unsigned", "v1", unsigned)
        self.basic_creds()
        self.signed_model("sig", "models/unsigned", digest)
        self.assertExit(self.ws.run("verify", "sig"), mgtest.SIGNATURE)
        nosig = {k: v for k, v in files.items() if k != "manifest.json.sig"}
        digest, _ = REG.push_artifact("models/nosig", "v1", nosig)
        self.ws.models[:] = []
        self.signed_model("sig", "models/nosig", digest)
        self.assertExit(self.ws.run("verify", "sig"), mgtest.SIGNATURE)
        extra = dict(files, **{"extra.bin": b"not in the manifest"})
        digest, _ = REG.push_artifact("models/extra", "v1", extra)
        self.ws.models[:] = []
        self.signed_model("sig", "models/extra", digest)
        r = self.ws.run("verify", "--json", "sig")
        self.assertExit(r, mgtest.INTEGRITY)
        self.assertEqual(json.loads(r.stdout)["error"].get("file"), "extra.bin")


class AuthenticatedHTTPS(mgtest.TestCase):
    """Credentials for plain https sources, the token flow, and redirects to other hosts."""

    def setUp(self):
        super().setUp()
        with open(os.path.join(TINY, "model.safetensors"), "rb") as f:
            self.data = f.read()
        SERVER.put("auth.safetensors", self.data)
        self.host = "127.0.0.1:%d" % SERVER.ports["good"]
        self.ws.extra["ca_file"] = SERVER.ca

    def pin(self, name, path, **kw):
        e = {"name": name, "source": SERVER.url(path),
             "sha256": hashlib.sha256(self.data).hexdigest(), "size": len(self.data)}
        e.update(kw)
        self.ws.models.append(e)

    def auth_seen(self):
        return SERVER.counts()["auth"]

    def test_token_flow(self):
        self.pin("tok", "/tokenauth/auth.safetensors")
        self.ws.write_policy()
        r = self.ws.run("verify", "tok")
        self.assertExit(r, mgtest.IO)        # the token endpoint wants credentials
        p = self.ws.write("creds.json", json.dumps({"hosts": {self.host: {
            "username": "mguser", "password": "mgpass"}}}).encode(), 0o600)
        self.ws.extra["credentials"] = p
        self.ws.write_policy()
        before = len(self.auth_seen())
        r = self.ws.run("inspect", "tok")
        self.assertExit(r, mgtest.OK)
        seen = self.auth_seen()[before:]
        paths = [(s[1], (s[2] or "").split(" ")[0]) for s in seen]
        self.assertIn(("/token", "Basic"), paths)
        self.assertIn(("/tokenauth/auth.safetensors", "Bearer"), paths)

    def test_static_bearer_token(self):
        self.pin("tok", "/tokenauth/auth.safetensors")
        p = self.ws.write("creds.json", json.dumps({"hosts": {self.host: {
            "token": "mg-good-token"}}}).encode(), 0o600)
        self.ws.extra["credentials"] = p
        self.ws.write_policy()
        self.assertExit(self.ws.run("verify", "tok"), mgtest.OK)

    def test_credentials_never_follow_a_redirect_to_another_host(self):
        # 127.0.0.1:PORT redirects to localhost:PORT: another host (same server, so it can
        # tell what arrived there).
        self.pin("r", "/rlocalhost/auth.safetensors", redirects="https")
        p = self.ws.write("creds.json", json.dumps({"hosts": {self.host: {
            "username": "mguser", "password": "mgpass"}}}).encode(), 0o600)
        self.ws.extra["credentials"] = p
        self.ws.write_policy()
        before = len(self.auth_seen())
        r = self.ws.run("verify", "r")
        self.assertExit(r, mgtest.OK)
        seen = self.auth_seen()[before:]
        first = [s for s in seen if s[1] == "/rlocalhost/auth.safetensors"]
        second = [s for s in seen if s[1] == "/f/auth.safetensors"]
        self.assertTrue(first and second, seen)
        self.assertTrue(all(s[2] and s[2].startswith("Basic ") for s in first), first)
        self.assertTrue(all(s[0].startswith("localhost:") for s in second), second)
        self.assertTrue(all(s[2] is None for s in second), "credentials crossed a redirect: %r" % second)


if __name__ == "__main__":
    unittest.main()
