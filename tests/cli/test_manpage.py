"""man/modelgate.1 keeps up with the tool: every command and every option its usage lines
show is documented, every exit status is listed, and so is every JSON schema."""
import os
import re

import mgtest
from mgtest import OK, run_bin

MAN = os.path.join(mgtest.SOURCE_DIR, "man", "modelgate.1")
COMMANDS = ["hash", "keygen", "sign", "verify", "inspect", "dump", "fetch", "policy check",
            "policy list", "policy pin"]


class ManPage(mgtest.TestCase):
    def setUp(self):
        super().setUp()
        with open(MAN) as f:
            self.src = f.read()
        self.text = self.src.replace("\\-", "-").replace("\\(dq", '"')

    def test_every_command_and_option(self):
        for cmd in COMMANDS:
            with self.subTest(cmd=cmd):
                self.assertRegex(self.src, r"\.SS \"?%s\"?\n" % re.escape(cmd))
                r = run_bin("help", *cmd.split())
                self.assertExit(r, OK)
                for opt in set(re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", r.stdout.decode())):
                    self.assertIn(opt, self.text, "%s: option %s is not in the man page" % (cmd, opt))

    def test_exit_codes_and_json_schemas(self):
        for code in range(9):
            self.assertIn(".TP\n.B %d\n" % code, self.src)
        section = self.text.split(".SH JSON OUTPUT")[1].split(".SH ")[0]
        heads = re.findall(r"\.TP\n\.BR? ([^\n]+)\n\.nf", section)
        named = " ".join(heads)
        for cmd in ("hash", "hash -c", "verify", "inspect", "fetch", "policy check",
                    "policy list", "policy pin", "keygen", "sign"):
            self.assertIn(cmd, named)
        for key in ("status", "kind", "message", "model", "file", "algorithm", "expected",
                    "actual", "hint"):
            self.assertIn('"%s":' % key, self.text)


if __name__ == "__main__":
    mgtest.main()
