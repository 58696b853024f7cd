"""The package installs offline the documented way and its numpy example runs: a fresh venv
(`python3 -m venv --system-site-packages`, so Debian's numpy is seen), then
`python -m pip install --no-index --no-build-isolation <copy of python/>`, then
examples/python/numpy_load.py with the venv's interpreter against the built library. The copy
keeps pip's build folders out of the source tree."""
import os
import shutil
import subprocess
import tempfile

import pmgtest

EXAMPLE = os.path.join(pmgtest.SOURCE_DIR, "examples", "python", "numpy_load.py")
TINY = os.path.join(pmgtest.SOURCE_DIR, "examples", "models", "tiny-mlp")


class VenvInstall(pmgtest.TestCase):
    def test_pip_install_and_numpy_example(self):
        tmp = tempfile.mkdtemp(prefix="mgvenv.")
        try:
            src = os.path.join(tmp, "src")
            shutil.copytree(os.path.join(pmgtest.SOURCE_DIR, "python"), src,
                            ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
            venv = os.path.join(tmp, "venv")
            env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
            env["PIP_NO_INDEX"] = "1"
            env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
            subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", venv],
                           check=True, env=env, capture_output=True, timeout=300)
            py = os.path.join(venv, "bin", "python")
            p = subprocess.run([py, "-m", "pip", "install", "--no-index", "--no-build-isolation", src],
                               env=env, capture_output=True, text=True, timeout=600)
            self.assertEqual(p.returncode, 0, p.stdout[-2000:] + p.stderr[-2000:])
            where = subprocess.run([py, "-c", "import pymodelgate; print(pymodelgate.__file__)"],
                                   env=env, capture_output=True, text=True, cwd=tmp)
            self.assertEqual(where.returncode, 0, where.stderr)
            self.assertTrue(where.stdout.startswith(venv), where.stdout)

            self.ws.pin_dir("tiny-mlp", TINY)
            self.ws.write_policy()
            env["MODELGATE_POLICY"] = self.ws.policy_path
            run = subprocess.run([py, EXAMPLE, "tiny-mlp"], env=env, capture_output=True,
                                 text=True, cwd=tmp, timeout=300)
            self.assertEqual(run.returncode, 0, run.stderr)
            lines = run.stdout.splitlines()
            self.assertIn("tensor layers.0.weight F32 [16, 8] sum=4.35147", lines)
            self.assertIn("tensor step I64 [] sum=1000", lines)
            self.assertIn('config {"architecture": "mlp", "hidden": 16, "inputs": 8, "outputs": 4}', lines)
            self.assertTrue(any(l.startswith("forward ") and len(l.split()) == 5 for l in lines), lines)
            # a refusal is the library's status as the exit code
            run = subprocess.run([py, EXAMPLE, "/not/in/the/policy"], env=env, capture_output=True,
                                 text=True, cwd=tmp, timeout=300)
            self.assertEqual(run.returncode, 4, run.stderr)
            self.assertIn("refused: untrusted:", run.stderr)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    pmgtest.mgtest.main()
