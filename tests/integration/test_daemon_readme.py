"""The socat one-liner that scripts/start prints (and the README points to)
works against trined serving policy-examples/github, and its decision lands
in the audit log."""

import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trinetest as tt  # noqa: E402

EXAMPLE_DIR = os.path.join(tt.SOURCE_DIR, "policy-examples", "github")
START = os.path.join(tt.SOURCE_DIR, "scripts", "start")


def one_liner():
    """Returns the shell command of scripts/start that pipes a request into
    socat, or None."""
    try:
        with open(START) as f:
            text = f.read()
    except OSError:
        return None
    for ln in text.splitlines():
        if "socat" in ln and "UNIX-CONNECT:./trine.sock" in ln:
            return ln.strip()
    return None


class ReadmeTest(tt.DaemonTestCase):

    def test_socat_one_liner(self):
        cmd = one_liner()
        if cmd is None:
            self.skipTest("scripts/start has no socat one-liner")
        if not shutil.which("socat"):
            self.skipTest("socat is not installed")
        if not os.path.isdir(EXAMPLE_DIR):
            self.skipTest("policy-examples/github does not exist")
        files = {}
        for name in sorted(os.listdir(EXAMPLE_DIR)):
            if name.endswith(".trine"):
                with open(os.path.join(EXAMPLE_DIR, name)) as f:
                    files[name] = f.read()
        d = self.start_daemon(policy=files)
        r = subprocess.run(["sh", "-c", cmd], cwd=d.tmp, capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(len(lines), 1, r.stdout)
        reply = json.loads(lines[0])
        self.assertEqual(reply["id"], 1)
        res = reply["result"]
        self.assertEqual(res["decision"], "allow", res)
        self.assertEqual(res["reason"], "allow")
        req = json.loads(re.search(r"echo '(.*)' \|", cmd).group(1))
        with d.db() as db:
            row = db.execute("SELECT * FROM decisions WHERE id = ?",
                             (res["audit_id"],)).fetchone()
        self.assertEqual(row["tool"], req["params"]["tool"])
        self.assertEqual(json.loads(row["detail"]), res)
        audit = tt.run_cli("audit", "--db", d.audit)
        self.assertEqual(audit.returncode, 0, audit.stderr)
        self.assertIn(req["params"]["tool"], audit.stdout)


if __name__ == "__main__":
    tt.main()
