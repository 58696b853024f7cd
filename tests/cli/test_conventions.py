"""The conventions users of sha256sum, openssl, minisign and the hf CLI expect (issue 13):
help on every command, --version, GNU long options with '=', options after operands, '--',
--json and -q on every command that reports (with the JSON error object on failure), hash
like sha256sum ('-', -c, --tag), and errors that say what to do next."""
import hashlib
import json
import os

import mgtest
from mgtest import FORMAT, INTEGRITY, IO, OK, POLICY, UNTRUSTED, USAGE, run_bin

ST = os.path.join(mgtest.CORPUS, "safetensors")
COMMANDS = ["hash", "keygen", "sign", "verify", "inspect", "dump", "fetch", "policy",
            "policy check", "policy pin"]
ERROR_KEYS = {"status", "kind", "message", "model", "file", "algorithm", "expected", "actual",
              "hint"}


def sha(data, alg="sha256"):
    return hashlib.new(alg, data).hexdigest()


class Help(mgtest.TestCase):
    def test_every_command_has_help(self):
        for cmd in COMMANDS:
            for flag in ("--help", "-h"):
                with self.subTest(cmd=cmd, flag=flag):
                    r = run_bin(*cmd.split(), flag)
                    self.assertExit(r, OK)
                    self.assertTrue(r.stdout.startswith(b"usage: modelgate " + cmd.split()[0].encode()),
                                    r.stdout)
                    self.assertEqual(r.stderr, "")
            with self.subTest(cmd=cmd, form="help"):
                r = run_bin("help", *cmd.split())
                self.assertExit(r, OK)
                self.assertIn(b"usage: modelgate " + cmd.encode(), r.stdout)

    def test_help_after_operands_and_not_after_double_dash(self):
        r = run_bin("verify", "some-model", "--help")
        self.assertExit(r, OK)
        self.assertIn(b"SOURCE", r.stdout)
        # After '--' a word is an operand: hash must try to open a file named --help.
        r = run_bin("hash", "--", "--help")
        self.assertExit(r, IO)
        self.assertIn("--help", r.stderr)

    def test_version_and_top_help(self):
        r = run_bin("--version")
        self.assertExit(r, OK)
        self.assertRegex(r.stdout.decode(), r"^modelgate \d+\.\d+\.\d+\n$")
        r = run_bin("--help")
        self.assertExit(r, OK)
        for cmd in ("hash", "verify", "policy pin"):
            self.assertIn(cmd.encode(), r.stdout)
        self.assertExit(run_bin("help", "frobnicate"), USAGE)


class Options(mgtest.TestCase):
    def setUp(self):
        super().setUp()
        self.path = os.path.join(ST, "e.safetensors")
        self.ws.pin_file("tiny", self.path)
        self.ws.write_policy()

    def test_long_option_with_equals_and_after_operand(self):
        for args in (["verify", "--policy=" + self.ws.policy_path, "tiny"],
                     ["verify", "tiny", "--policy", self.ws.policy_path],
                     ["verify", "tiny", "-p", self.ws.policy_path, "--json"],
                     ["verify", "-p" + self.ws.policy_path, "--", "tiny"]):
            with self.subTest(args=args):
                r = run_bin(*args)
                self.assertExit(r, OK)
        r = run_bin("verify", "tiny", "--policy=" + self.ws.policy_path, "--json")
        self.assertEqual(json.loads(r.stdout)["model"], "tiny")

    def test_unknown_option_and_missing_value(self):
        r = run_bin("verify", "--bogus", "x")
        self.assertExit(r, USAGE)
        self.assertIn("unknown option '--bogus'", r.stderr)
        self.assertIn("usage", r.stderr)
        r = run_bin("verify", "x", "-p")
        self.assertExit(r, USAGE)
        self.assertIn("needs a value", r.stderr)
        r = run_bin("verify", "--json", "--bogus", "x")
        self.assertExit(r, USAGE)
        doc = json.loads(r.stdout)
        self.assertEqual(doc["error"]["kind"], "usage")
        self.assertEqual(doc["error"]["status"], USAGE)


class JsonAndQuiet(mgtest.TestCase):
    def setUp(self):
        super().setUp()
        self.path = os.path.join(ST, "e.safetensors")
        self.ws.pin_file("tiny", self.path)
        self.ws.extra["cache_dir"] = self.ws.path("cache")
        os.mkdir(self.ws.path("cache"), 0o700)
        self.ws.write_policy()

    def test_json_on_every_reporting_command(self):
        key = self.ws.path("k")
        model = self.ws.path("signme")
        os.mkdir(model)
        self.ws.write("signme/w.bin", b"\x01" * 100)
        cases = {
            "hash": (["hash", "--json", self.path], {"ok", "algorithm", "files"}),
            "verify": (["verify", "--json", "-p", self.ws.policy_path, "tiny"],
                       {"ok", "model", "source", "files", "tensors"}),
            "inspect": (["inspect", "--json", "-p", self.ws.policy_path, "tiny"],
                        {"ok", "model", "source", "parsing", "memory", "files", "tensors"}),
            "fetch": (["fetch", "--json", "-p", self.ws.policy_path, "tiny"],
                      {"ok", "model", "source", "files"}),
            "policy check": (["policy", "check", "--json", "-p", self.ws.policy_path],
                             {"ok", "policy", "problems"}),
            "policy pin": (["policy", "pin", "--json", self.path], {"ok", "entry", "notes"}),
            "keygen": (["keygen", "--json", "-o", key], {"ok", "type", "private_key", "public_key"}),
            "sign": (["sign", "--json", "-k", key + ".key", model],
                     {"ok", "name", "version", "files", "manifest", "signature"}),
        }
        for name, (args, keys) in cases.items():
            with self.subTest(command=name):
                r = run_bin(*args)
                self.assertExit(r, OK)
                lines = r.stdout.decode().splitlines()
                self.assertEqual(len(lines), 1, r.stdout)
                doc = json.loads(lines[0])
                self.assertEqual(set(doc), keys)
                self.assertIs(doc["ok"], True)
        doc = json.loads(run_bin("hash", "--json", self.path).stdout)
        self.assertEqual(doc["files"], [{"file": self.path, "sha256": mgtest.digest_file(self.path)}])
        doc = json.loads(run_bin("policy", "pin", "--json", "-n", "x", self.path).stdout)
        self.assertEqual(doc["entry"]["sha256"], mgtest.digest_file(self.path))
        doc = json.loads(run_bin("sign", "--json", "-V", "7", "-n", "nm", "-k", key + ".key",
                                 model).stdout)
        self.assertEqual((doc["name"], doc["version"], doc["files"]), ("nm", 7, 1))

    def test_json_error_object_has_every_field(self):
        with open(self.path, "rb") as f:
            data = bytearray(f.read())
        bad = self.ws.write("bad.safetensors", bytes(data))
        self.ws.pin_file("bad", bad)
        self.ws.write_policy()
        data[-1] ^= 1
        self.ws.write("bad.safetensors", bytes(data))
        r = self.ws.run("verify", "--json", "bad")
        self.assertExit(r, INTEGRITY)
        err = json.loads(r.stdout)["error"]
        self.assertEqual(set(err), ERROR_KEYS)
        self.assertEqual((err["status"], err["kind"], err["model"], err["file"], err["algorithm"]),
                         (INTEGRITY, "integrity", "bad", "bad.safetensors", "sha256"))
        self.assertEqual(err["actual"], sha(bytes(data)))
        self.assertEqual(err["expected"], mgtest.digest_file(self.path))
        # Failures of every reporting command come as the same object.
        for args, code in ((["hash", "--json", self.ws.path("nope")], IO),
                           (["policy", "check", "--json", "-p", self.ws.path("nope.json")], POLICY),
                           (["policy", "pin", "--json", self.ws.path("nope")], IO),
                           (["fetch", "--json", "-p", self.ws.policy_path, "unknown"], UNTRUSTED),
                           (["inspect", "--json", "-p", self.ws.policy_path, "unknown"], UNTRUSTED),
                           (["keygen", "--json", "-t", "ed25519", "-o", self.ws.path("no/dir/k")], IO),
                           (["sign", "--json", "-k", self.ws.path("nokey"), self.ws.path("cache")], None)):
            with self.subTest(args=args):
                r = run_bin(*args)
                self.assertNotEqual(r.returncode, OK)
                if code is not None:
                    self.assertExit(r, code)
                doc = json.loads(r.stdout.decode().splitlines()[-1])
                self.assertIs(doc["ok"], False)
                self.assertEqual(set(doc["error"]), ERROR_KEYS)
                self.assertEqual(doc["error"]["status"], r.returncode)

    def test_policy_check_json_lists_problems(self):
        self.ws.models.append({"name": "bad name!", "source": "relative", "sha256": "00"})
        self.ws.write_policy()
        r = self.ws.run("policy check", "--json")
        self.assertExit(r, POLICY)
        doc = json.loads(r.stdout)
        self.assertIs(doc["ok"], False)
        self.assertGreaterEqual(len(doc["problems"]), 2)
        self.assertTrue(all(p.startswith("$.models[1]") for p in doc["problems"]), doc)
        self.assertEqual(doc["error"]["kind"], "policy")

    def test_quiet_prints_nothing_on_success(self):
        key = self.ws.path("qk")
        model = self.ws.path("qm")
        os.mkdir(model)
        self.ws.write("qm/w.bin", b"\x02" * 10)
        p = self.ws.policy_path
        for args in (["hash", "-q", self.path], ["verify", "-q", "-p", p, "tiny"],
                     ["inspect", "tiny", "-q", "-p", p], ["fetch", "--quiet", "-p", p, "tiny"],
                     ["policy", "check", "-q", "-p", p], ["policy", "pin", "-q", self.path],
                     ["keygen", "-q", "-o", key], ["sign", "-q", "-k", key + ".key", model],
                     ["inspect", "--json", "-q", "-p", p, "tiny"]):
            with self.subTest(args=args):
                r = run_bin(*args)
                self.assertExit(r, OK)
                self.assertEqual(r.stdout, b"")
                self.assertEqual(r.stderr, "")
        r = self.ws.run("verify", "-q", "nope")
        self.assertExit(r, UNTRUSTED)
        self.assertEqual(r.stdout, b"")
        self.assertIn("untrusted", r.stderr)


class HashLikeSha256sum(mgtest.TestCase):
    def setUp(self):
        super().setUp()
        self.a = self.ws.write("a.bin", b"alpha\n")
        self.b = self.ws.write("b b.bin", b"beta" * 1000)

    def test_stdin_and_files(self):
        r = run_bin("hash", "-", input=b"from stdin")
        self.assertExit(r, OK)
        self.assertEqual(r.stdout, ("%s  -\n" % sha(b"from stdin")).encode())
        r = run_bin("hash", input=b"x")
        self.assertEqual(r.stdout, ("%s  -\n" % sha(b"x")).encode())
        r = run_bin("hash", "-a", "sha512", "--tag", self.a)
        self.assertEqual(r.stdout.decode(), "SHA512 (%s) = %s\n" % (self.a, sha(b"alpha\n", "sha512")))
        r = run_bin("hash", "--algorithm=sha512", self.a)
        self.assertEqual(r.stdout.decode(), "%s  %s\n" % (sha(b"alpha\n", "sha512"), self.a))

    def test_check_gnu_bsd_and_binary_forms(self):
        lines = ["%s  a.bin" % sha(b"alpha\n"),
                 "%s *b b.bin" % sha(b"beta" * 1000, "sha512").upper(),
                 "SHA256 (b b.bin) = %s" % sha(b"beta" * 1000),
                 "", "# a comment"]
        sums = self.ws.write("SHA256SUMS", ("\n".join(lines) + "\n").encode())
        r = mgtest.subprocess.run([mgtest.BIN, "hash", "-c", sums], cwd=self.ws.dir,
                                  capture_output=True)
        self.assertEqual(r.returncode, OK, r.stderr)
        self.assertEqual(r.stdout.decode(), "a.bin: OK\nb b.bin: OK\nb b.bin: OK\n")
        # A list on standard input, with --json.
        r = mgtest.subprocess.run([mgtest.BIN, "hash", "--json", "-c", "-"], cwd=self.ws.dir,
                                  capture_output=True, input=open(sums, "rb").read())
        doc = json.loads(r.stdout)
        self.assertEqual((doc["ok"], doc["checked"], doc["failed"]), (True, 3, 0))
        self.assertEqual([f["result"] for f in doc["files"]], ["OK"] * 3)

    def test_check_reports_mismatch_and_missing(self):
        sums = self.ws.write("SUMS", ("%s  %s\n%s  %s\n%s  %s\n" % (
            sha(b"alpha\n"), self.a, sha(b"other"), self.b, sha(b"x"), self.ws.path("gone"))).encode())
        r = run_bin("hash", "-c", sums)
        self.assertExit(r, INTEGRITY)
        self.assertEqual(r.stdout.decode().splitlines(),
                         ["%s: OK" % self.a, "%s: FAILED" % self.b,
                          "%s: FAILED open or read" % self.ws.path("gone")])
        self.assertIn("2 of 3", r.stderr)
        r = run_bin("hash", "-c", "-q", sums)
        self.assertExit(r, INTEGRITY)
        self.assertNotIn(b": OK", r.stdout)
        r = run_bin("hash", "-c", "--json", sums)
        doc = json.loads(r.stdout)
        self.assertIs(doc["ok"], False)
        self.assertEqual(doc["failed"], 2)
        self.assertEqual(doc["files"][1]["actual"], sha(b"beta" * 1000))
        self.assertEqual(doc["error"]["file"], self.b)
        self.assertEqual(doc["error"]["expected"], sha(b"other"))

    def test_check_refuses_malformed_lists(self):
        for text in (b"not a sums line\n", b"abcd  short-hex\n", b"", b"# only a comment\n",
                     ("SHA256 (x) = %s\n" % sha(b"x", "sha512")).encode(),
                     ("%s\tx\n" % sha(b"x")).encode()):
            with self.subTest(text=text):
                sums = self.ws.write("BAD", text)
                r = run_bin("hash", "-c", sums)
                self.assertExit(r, FORMAT)


class Hints(mgtest.TestCase):
    def setUp(self):
        super().setUp()
        self.path = os.path.join(ST, "e.safetensors")
        self.ws.pin_file("tiny-mlp", self.path)
        self.ws.pin_file("whisper-mel", os.path.join(ST, "d.safetensors"))
        self.ws.write_policy()

    def test_no_policy_says_where_it_looked(self):
        r = run_bin("verify", "x", env={"MODELGATE_POLICY": ""})
        self.assertExit(r, POLICY)
        self.assertIn("/etc/modelgate/policy.json", r.stderr)
        self.assertIn("-p", r.stderr)
        self.assertIn("MODELGATE_POLICY", r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1)
        r = run_bin("verify", "x", env={"MODELGATE_POLICY": self.ws.path("missing.json")})
        self.assertIn("$MODELGATE_POLICY (%s)" % self.ws.path("missing.json"), r.stderr)

    def test_insecure_permissions_say_chmod(self):
        os.chmod(self.ws.policy_path, 0o666)
        r = self.ws.run("verify", "tiny-mlp")
        self.assertExit(r, POLICY)
        self.assertIn("chmod go-w %s" % self.ws.policy_path, r.stderr)
        os.chmod(self.ws.policy_path, 0o600)
        os.chmod(self.ws.dir, 0o777)
        r = self.ws.run("verify", "--json", "tiny-mlp")
        os.chmod(self.ws.dir, 0o700)
        self.assertExit(r, POLICY)
        self.assertEqual(json.loads(r.stdout)["error"]["hint"], "fix it with: chmod go-w %s" % self.ws.dir)

    def test_insecure_key_file_says_chmod(self):
        key = self.ws.path("k")
        self.assertExit(run_bin("keygen", "-q", "-o", key), OK)
        os.chmod(key + ".pub", 0o666)
        self.ws.extra["keys"] = {"k": {"public_key": "k.pub"}}
        self.ws.write_policy()
        r = self.ws.run("policy check")
        self.assertExit(r, POLICY)
        self.assertIn("chmod go-w %s.pub" % key, r.stderr)

    def test_unknown_model_did_you_mean(self):
        r = self.ws.run("verify", "tiny-mpl")
        self.assertExit(r, UNTRUSTED)
        self.assertIn("did you mean 'tiny-mlp'?", r.stderr)
        r = self.ws.run("inspect", "--json", "whisper")
        self.assertIn("'whisper-mel'", json.loads(r.stdout)["error"]["hint"])
        r = self.ws.run("verify", "zzzzzzzz")
        self.assertIn("'tiny-mlp'", r.stderr)  # nothing close: the names are listed

    def test_relative_source_shows_resolved_path(self):
        r = mgtest.subprocess.run([mgtest.BIN, "verify", "-p", self.ws.policy_path, "./sub/x.npy"],
                                  cwd=self.ws.dir, capture_output=True)
        self.assertEqual(r.returncode, UNTRUSTED)
        self.assertIn(os.path.join(self.ws.dir, "sub/x.npy"), r.stderr.decode())

    def test_dump_tensor_typo(self):
        names = [t["name"] for t in self.ws.inspect_json("tiny-mlp")[1]["tensors"]]
        typo = names[0][:-1] + ("x" if names[0][-1] != "x" else "y")
        r = self.ws.run("dump", "tiny-mlp", typo)
        self.assertExit(r, USAGE)
        self.assertIn("did you mean '%s'" % names[0], r.stderr)


if __name__ == "__main__":
    mgtest.main()
