"""bash completion (issue 13, point 6): commands, options, fixed values and the model names of
the policy (from `modelgate policy list`), and the install rule that puts the script where
bash-completion looks for it."""
import json
import os
import shutil
import subprocess
import tempfile

import mgtest
from mgtest import OK, POLICY, run_bin

SCRIPT = os.path.join(mgtest.SOURCE_DIR, "tools", "completion", "modelgate.bash")
ST = os.path.join(mgtest.CORPUS, "safetensors")


def complete(words, env=None, cwd=None):
    """COMPREPLY for the command line `words` (the last word is being completed)."""
    arr = " ".join("'%s'" % w.replace("'", "'\\''") for w in [mgtest.BIN, *words])
    prog = ('source "%s"; COMP_WORDS=(%s); COMP_CWORD=%d; _modelgate; '
            'printf "%%s\\n" "${COMPREPLY[@]}"' % (SCRIPT, arr, len(words)))
    full = dict(os.environ)
    full.update(env or {})
    p = subprocess.run(["bash", "--norc", "--noprofile", "-c", prog], capture_output=True,
                       env=full, cwd=cwd, timeout=60)
    assert p.returncode == 0, p.stderr
    return sorted(l for l in p.stdout.decode().splitlines() if l)


class Completion(mgtest.TestCase):
    def setUp(self):
        super().setUp()
        self.ws.pin_file("tiny-mlp", os.path.join(ST, "e.safetensors"))
        self.ws.pin_file("tiny-conv", os.path.join(ST, "d.safetensors"))
        self.ws.pin_file("whisper", os.path.join(ST, "voices.safetensors"))
        self.ws.write_policy()

    def test_commands_and_options(self):
        self.assertEqual(complete(["ve"]), ["verify"])
        self.assertIn("policy", complete([""]))
        self.assertEqual(complete(["policy", ""]), ["check", "list", "pin"])
        self.assertEqual(complete(["hash", "--t"]), ["--tag"])
        self.assertEqual(complete(["hash", "-a", "sha5"]), ["sha512"])
        self.assertEqual(complete(["keygen", "-t", "e"]), ["ecdsa-p256", "ed25519"])
        self.assertIn("--sums", complete(["policy", "pin", "--s"]))
        self.assertIn("--ignore", complete(["policy", "pin", "--i"]))
        self.assertIn("--add", complete(["sign", "--a"]))
        self.assertEqual(complete(["help", "po"]), ["policy"])

    def test_model_names_from_the_policy(self):
        p = self.ws.policy_path
        self.assertEqual(complete(["verify", "-p", p, "tiny"]), ["tiny-conv", "tiny-mlp"])
        self.assertEqual(complete(["inspect", "--policy=" + p, "w"]), ["whisper"])
        self.assertEqual(complete(["dump", "t"], env={"MODELGATE_POLICY": p}),
                         ["tiny-conv", "tiny-mlp"])
        # A policy that cannot be opened completes nothing (and prints nothing).
        self.assertEqual(complete(["verify", "-p", self.ws.path("none.json"), "t"]), [])

    def test_policy_list(self):
        r = self.ws.run("policy list")
        self.assertExit(r, OK)
        rows = [l.split("\t") for l in r.stdout.decode().splitlines()]
        self.assertEqual([row[:2] for row in rows],
                         [["tiny-mlp", "file"], ["tiny-conv", "file"], ["whisper", "file"]])
        doc = json.loads(self.ws.run("policy list", "--json").stdout)
        self.assertEqual([m["name"] for m in doc["models"]], ["tiny-mlp", "tiny-conv", "whisper"])
        os.chmod(self.ws.policy_path, 0o622)
        self.assertExit(self.ws.run("policy list"), POLICY)

    def test_install_puts_the_script_where_bash_completion_looks(self):
        build = os.path.dirname(mgtest.BIN)
        if not os.path.exists(os.path.join(build, "cmake_install.cmake")):
            self.skipTest("the tool is not in a CMake build folder")
        prefix = tempfile.mkdtemp(prefix="mginst.")
        try:
            p = subprocess.run(["cmake", "--install", build, "--prefix", prefix,
                                "--component", "completion"],
                               capture_output=True, timeout=300)
            self.assertEqual(p.returncode, 0, p.stderr)
            dest = os.path.join(prefix, "share", "bash-completion", "completions", "modelgate")
            with open(dest, "rb") as a, open(SCRIPT, "rb") as b:
                self.assertEqual(a.read(), b.read())
        finally:
            shutil.rmtree(prefix, ignore_errors=True)


if __name__ == "__main__":
    mgtest.main()
