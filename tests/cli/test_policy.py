"""Policy rules of SPEC §2: each broken rule is refused with exit 3 and a message that names
the JSON path of the problem; `policy check` lists every problem; file permissions and
symlinks are checked for the policy, key files and their folders."""
import json
import os
import subprocess

import mgtest
from mgtest import OK, POLICY

HEX = "ab" * 32


def model(**kw):
    m = {"name": "m", "source": "/opt/models/m.safetensors", "sha256": HEX}
    m.update(kw)
    return m


# (description, policy document or raw bytes, a fragment the message must contain)
BAD = [
    ("invalid JSON", b"{", "$"),
    ("not an object", [], "$"),
    ("duplicate top-level key", b'{"modelgate_policy":1,"modelgate_policy":1,"models":[]}', "duplicate"),
    ("duplicate key in a model", b'{"modelgate_policy":1,"models":[{"name":"a","name":"b","source":"/x","sha256":"' + HEX.encode() + b'"}]}', "duplicate"),
    ("missing version", {"models": []}, "$.modelgate_policy"),
    ("version 2", {"modelgate_policy": 2, "models": []}, "$.modelgate_policy"),
    ("version as string", {"modelgate_policy": "1", "models": []}, "$.modelgate_policy"),
    ("missing models", {"modelgate_policy": 1}, "$.models"),
    ("models not an array", {"modelgate_policy": 1, "models": {}}, "$.models"),
    ("unknown top-level key", {"modelgate_policy": 1, "models": [], "extra": 1}, "$.extra"),
    ("unknown model key", {"modelgate_policy": 1, "models": [model(color="red")]}, "$.models[0].color"),
    ("name with a slash", {"modelgate_policy": 1, "models": [model(name="a/b")]}, "$.models[0].name"),
    ("empty name", {"modelgate_policy": 1, "models": [model(name="")]}, "$.models[0].name"),
    ("name of 129 characters", {"modelgate_policy": 1, "models": [model(name="a" * 129)]}, "$.models[0].name"),
    ("name not a string", {"modelgate_policy": 1, "models": [model(name=5)]}, "$.models[0].name"),
    ("duplicate names", {"modelgate_policy": 1, "models": [model(), model(source="/opt/other")]}, "duplicate model name"),
    ("http source", {"modelgate_policy": 1, "models": [model(source="http://models.example.com/m")]}, "https"),
    ("ftp source", {"modelgate_policy": 1, "models": [model(source="ftp://models.example.com/m")]}, "$.models[0].source"),
    ("file URL", {"modelgate_policy": 1, "models": [model(source="file:///opt/m")]}, "$.models[0].source"),
    ("user info", {"modelgate_policy": 1, "models": [model(source="https://user:pw@models.example.com/m")]}, "user information"),
    ("wildcard *", {"modelgate_policy": 1, "models": [model(source="/opt/models/*.safetensors")]}, "wildcard"),
    ("wildcard ?", {"modelgate_policy": 1, "models": [model(source="/opt/models/m?.safetensors")]}, "wildcard"),
    ("URL wildcard", {"modelgate_policy": 1, "models": [model(source="https://*.example.com/m")]}, "wildcard"),
    ("dot component", {"modelgate_policy": 1, "models": [model(source="/opt/./models/m")]}, "'.' and '..'"),
    ("dot-dot component", {"modelgate_policy": 1, "models": [model(source="/opt/models/../etc/m")]}, "'.' and '..'"),
    ("URL dot-dot", {"modelgate_policy": 1, "models": [model(source="https://h.example.com/a/../m")]}, "'.' and '..'"),
    ("duplicate sources", {"modelgate_policy": 1, "models": [model(), model(name="n", source="/opt//models/m.safetensors")]}, "duplicate source"),
    ("duplicate URLs after normalisation", {"modelgate_policy": 1, "models": [
        model(source="https://H.example.com:443/%6Dodel", size=1), model(name="n", source="https://h.example.com/model", size=1)]}, "duplicate source"),
    ("source not a string", {"modelgate_policy": 1, "models": [model(source=1)]}, "$.models[0].source"),
    ("missing source", {"modelgate_policy": 1, "models": [{"name": "m", "sha256": HEX}]}, "$.models[0].source"),
    ("no digest", {"modelgate_policy": 1, "models": [{"name": "m", "source": "/opt/m"}]}, "exactly one"),
    ("sha256 and sha512", {"modelgate_policy": 1, "models": [model(sha512="cd" * 64)]}, "exactly one"),
    ("sha256 and files", {"modelgate_policy": 1, "models": [model(files={"a": {"sha256": HEX}})]}, "exactly one"),
    ("short hex", {"modelgate_policy": 1, "models": [model(sha256="abc")]}, "64 hex"),
    ("non-hex", {"modelgate_policy": 1, "models": [model(sha256="zz" * 32)]}, "64 hex"),
    ("negative size", {"modelgate_policy": 1, "models": [model(size=-1)]}, "$.models[0].size"),
    ("files with file source", {"modelgate_policy": 1, "models": [{"name": "m", "source": "/opt/m", "files": {"a": {"sha256": HEX}}}]}, "directory"),
    ("sha256 with directory source", {"modelgate_policy": 1, "models": [model(source="/opt/m/")]}, "must not end"),
    ("files path with ..", {"modelgate_policy": 1, "models": [{"name": "m", "source": "/opt/m/", "files": {"../x": {"sha256": HEX}}}]}, "safe relative path"),
    ("files absolute path", {"modelgate_policy": 1, "models": [{"name": "m", "source": "/opt/m/", "files": {"/x": {"sha256": HEX}}}]}, "safe relative path"),
    ("files backslash", {"modelgate_policy": 1, "models": [{"name": "m", "source": "/opt/m/", "files": {"a\\b": {"sha256": HEX}}}]}, "safe relative path"),
    ("files empty", {"modelgate_policy": 1, "models": [{"name": "m", "source": "/opt/m/", "files": {}}]}, "non-empty"),
    ("file entry unknown key", {"modelgate_policy": 1, "models": [{"name": "m", "source": "/opt/m/", "files": {"a": {"sha256": HEX, "mode": 1}}}]}, "mode"),
    ("manifest with an unknown key name", {"modelgate_policy": 1, "models": [{"name": "m", "source": "/opt/m/", "manifest": {"keys": ["nobody"]}}]}, "nobody"),
    ("manifest without keys", {"modelgate_policy": 1, "models": [{"name": "m", "source": "/opt/m/", "manifest": {}}]}, "keys"),
    ("bad redirects", {"modelgate_policy": 1, "models": [model(source="https://h.example.com/m", redirects="any", size=1)]}, "redirects"),
    ("remote pin without size", {"modelgate_policy": 1, "models": [model(source="https://h.example.com/m")]}, "$.models[0].size: missing"),
    ("remote file without size", {"modelgate_policy": 1, "models": [{"name": "d", "source": "https://h.example.com/d/", "files": {"a.bin": {"sha256": HEX}}}]}, '$.models[0].files["a.bin"].size: missing'),
    ("limits not an object", {"modelgate_policy": 1, "models": [], "limits": 5}, "$.limits"),
    ("parser_memory zero", {"modelgate_policy": 1, "models": [], "limits": {"parser_memory": 0}}, "$.limits.parser_memory"),
    ("unknown limit", {"modelgate_policy": 1, "models": [], "limits": {"cpu": 1}}, "$.limits.cpu"),
    ("redirects on a local source", {"modelgate_policy": 1, "models": [model(redirects="none")]}, "redirects"),
    ("audit_log not a string", {"modelgate_policy": 1, "models": [], "audit_log": 3}, "$.audit_log"),
    ("keys not an object", {"modelgate_policy": 1, "models": [], "keys": []}, "$.keys"),
    ("key with both kinds", {"modelgate_policy": 1, "models": [], "keys": {"k": {"public_key": "a.pem", "minisign": "RW"}}}, "exactly one"),
    ("key file missing", {"modelgate_policy": 1, "models": [], "keys": {"k": {"public_key": "missing.pem"}}}, "$.keys.k"),
    ("bad minisign key", {"modelgate_policy": 1, "models": [], "keys": {"k": {"minisign": "RWnotakey"}}}, "$.keys.k"),
]


class PolicyRules(mgtest.TestCase):
    def write_raw(self, doc):
        data = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        with open(self.ws.policy_path, "wb") as f:
            f.write(data)
        os.chmod(self.ws.policy_path, 0o600)

    def test_each_rule_refused_with_its_path(self):
        for desc, doc, fragment in BAD:
            with self.subTest(rule=desc):
                self.write_raw(doc)
                r = self.ws.run("verify", "m")
                self.assertExit(r, POLICY, desc)
                self.assertTrue(r.stderr.startswith("modelgate: policy: "), r.stderr)
                self.assertIn(fragment, r.stderr, desc)
                c = self.ws.run("policy check")
                self.assertExit(c, POLICY, desc)
                self.assertIn(fragment, c.stdout.decode(), desc)

    def test_good_policy_and_every_problem_listed(self):
        good = {"modelgate_policy": 1, "audit_log": "audit.jsonl", "state_dir": "state",
                "cache_dir": "/var/cache/modelgate", "ca_file": "/etc/ssl/certs/ca-certificates.crt",
                "models": [model(), model(name="remote", source="https://models.example.com/r/m.bin",
                                          redirects="none", size=10),
                           {"name": "dir", "source": "/opt/d/", "files": {"a/b.json": {"sha512": "cd" * 64, "size": 3}}}]}
        self.write_raw(good)
        r = self.ws.run("policy check")
        self.assertExit(r, OK)
        bad = {"modelgate_policy": 2, "models": [model(name="a/b"), model(source="http://x/y"), model(sha256="00")]}
        self.write_raw(bad)
        r = self.ws.run("policy check")
        self.assertExit(r, POLICY)
        out = r.stdout.decode()
        for frag in ("$.modelgate_policy", "$.models[0].name", "$.models[1].source", "$.models[2].sha256"):
            self.assertIn(frag, out)
        self.assertGreaterEqual(len(out.strip().splitlines()), 4)

    def test_permissions_and_symlinks(self):
        self.write_raw({"modelgate_policy": 1, "models": [model()]})
        self.assertExit(self.ws.run("policy check"), OK)
        for mode in (0o620, 0o602, 0o666):
            os.chmod(self.ws.policy_path, mode)
            self.assertExit(self.ws.run("policy check"), POLICY, oct(mode))
        os.chmod(self.ws.policy_path, 0o644)  # readable by others is fine
        self.assertExit(self.ws.run("policy check"), OK)
        os.chmod(self.ws.dir, 0o777)
        r = self.ws.run("policy check")
        self.assertExit(r, POLICY)
        self.assertIn("folder", r.stdout.decode() + r.stderr)
        os.chmod(self.ws.dir, 0o700)
        # a symlink to the policy, and a symlinked folder on the way
        link = self.ws.path("link.json")
        os.symlink(self.ws.policy_path, link)
        r = mgtest.run_bin("policy", "check", "-p", link)
        self.assertExit(r, POLICY)
        self.assertIn("symlink", r.stdout.decode() + r.stderr)
        os.makedirs(self.ws.path("real"))
        os.symlink(self.ws.path("real"), self.ws.path("dirlink"))
        with open(self.ws.path("real", "p.json"), "w") as f:
            json.dump({"modelgate_policy": 1, "models": []}, f)
        os.chmod(self.ws.path("real", "p.json"), 0o600)
        self.assertExit(mgtest.run_bin("policy", "check", "-p", self.ws.path("real", "p.json")), OK)
        self.assertExit(mgtest.run_bin("policy", "check", "-p", self.ws.path("dirlink", "p.json")), POLICY)
        # not a regular file
        self.assertExit(mgtest.run_bin("policy", "check", "-p", self.ws.dir), POLICY)

    def test_key_file_permissions(self):
        key = self.ws.path("keys", "release.pub.pem")
        os.makedirs(os.path.dirname(key))
        subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", self.ws.path("k.pem")], check=True,
                       capture_output=True)
        subprocess.run(["openssl", "pkey", "-in", self.ws.path("k.pem"), "-pubout", "-out", key], check=True,
                       capture_output=True)
        os.chmod(key, 0o644)
        doc = {"modelgate_policy": 1, "keys": {"release": {"public_key": "keys/release.pub.pem"}},
               "models": [{"name": "m", "source": "/opt/m/", "manifest": {"keys": ["release"]}}]}
        self.write_raw(doc)
        self.assertExit(self.ws.run("policy check"), OK)
        os.chmod(key, 0o666)
        r = self.ws.run("policy check")
        self.assertExit(r, POLICY)
        self.assertIn("$.keys.release", r.stdout.decode())
        os.chmod(key, 0o644)
        os.chmod(os.path.dirname(key), 0o777)
        self.assertExit(self.ws.run("policy check"), POLICY)
        os.chmod(os.path.dirname(key), 0o755)
        os.rename(key, key + ".real")
        os.symlink(key + ".real", key)
        self.assertExit(self.ws.run("policy check"), POLICY)


if __name__ == "__main__":
    mgtest.main()
