"""Every bad input under tests/data/bad/<area>/ gets exactly the exit code its expected.tsv
gives, through `modelgate inspect`, as a pinned single-file model; no crash, no sanitizer
report (run in both builds). Files that must be accepted are listed with exit 0."""
import glob
import os

import mgtest

BAD = os.path.join(mgtest.SOURCE_DIR, "tests", "data", "bad")


def cases():
    for tsv in sorted(glob.glob(os.path.join(BAD, "*", "expected.tsv"))):
        area = os.path.basename(os.path.dirname(tsv))
        with open(tsv) as f:
            for line in f:
                line = line.rstrip("\n")
                if not line or line.startswith("#"):
                    continue
                name, code, desc = line.split("\t", 2)
                yield area, os.path.join(os.path.dirname(tsv), name), int(code), desc


class BadInputs(mgtest.TestCase):
    def test_every_bad_input(self):
        seen = 0
        for area, path, code, desc in cases():
            with self.subTest(file="%s/%s" % (area, os.path.basename(path))):
                self.ws.models = []
                self.ws.pin_file("m", path)
                self.ws.write_policy()
                r = self.ws.run("inspect", "-q", "m")
                self.assertExit(r, code, "%s/%s (%s)" % (area, os.path.basename(path), desc))
                self.assertNotIn("Sanitizer", r.stderr)
                if code != 0:
                    # one line, "modelgate: <kind>: ...", naming the model and the file
                    lines = r.stderr.strip().splitlines()
                    self.assertEqual(len(lines), 1, r.stderr)
                    self.assertTrue(lines[0].startswith("modelgate: "), lines[0])
                    self.assertIn("model 'm'", lines[0])
                seen += 1
        self.assertGreater(seen, 50, "the bad-input corpus is missing")


if __name__ == "__main__":
    mgtest.main()
