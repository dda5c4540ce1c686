"""trined's process and socket life (DESIGN.md sections 4, 6 and 7):
startup errors, the socket's mode, stale and live socket files, peers
refused by uid, and a SIGTERM with requests in flight."""

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trinetest as tt  # noqa: E402

NOBODY = 65534

# Run as another uid: connect, send a ping, print every line received until
# the daemon closes the connection, then "EOF".
PEER_SCRIPT = r"""
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(30)
s.connect(sys.argv[1])
try:
    s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"ping"}\n')
except OSError as e:
    print("SENDERR", e)
buf = b""
while True:
    try:
        chunk = s.recv(65536)
    except ConnectionResetError:
        chunk = b""
    if not chunk:
        break
    buf += chunk
    if sys.argv[2] == "one" and b"\n" in buf:
        break
for ln in buf.splitlines():
    print(ln.decode())
print("EOF" if sys.argv[2] == "all" else "END")
"""


def python_for_other_users():
    """A Python interpreter that another uid can execute (the one running
    these tests may live under root's home directory)."""
    for p in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.access(p, os.X_OK):
            return p
    return sys.executable


class LifecycleTest(tt.DaemonTestCase):

    def run_trined(self, args, timeout=30):
        return subprocess.run([tt.TRINED_BIN] + args, capture_output=True,
                              text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def test_missing_policy_flag_is_usage_error(self):
        tmp = tempfile.mkdtemp(prefix="trined-")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", tmp]))
        r = self.run_trined(["--socket", os.path.join(tmp, "s"),
                             "--audit", os.path.join(tmp, "a.db")])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--policy", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(tmp, "s")))

    def test_bad_policy_at_start_fails(self):
        tmp = tempfile.mkdtemp(prefix="trined-")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", tmp]))
        pol = os.path.join(tmp, "policy")
        os.mkdir(pol)
        with open(os.path.join(pol, "p.trine"), "w") as f:
            f.write('scope "a" {\n  allow x.y on\n}\n')
        r = self.run_trined(["--policy", pol, "--socket",
                             os.path.join(tmp, "s"), "--audit",
                             os.path.join(tmp, "a.db")])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertRegex(r.stderr, r"p\.trine:3:1")
        self.assertFalse(os.path.exists(os.path.join(tmp, "s")))

    def test_socket_mode_default_0660(self):
        d = self.start_daemon()
        st = os.stat(d.socket)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o660)

    def test_new_audit_log_is_not_world_readable(self):
        # Under the usual umask 022 a new log and its WAL are 0640: the
        # arguments of every call are nobody else's business.
        old = os.umask(0o022)
        try:
            d = self.start_daemon()
            c = d.conn()
            self.addCleanup(c.close)
            self.assertDecision(c.check(tt.check_params()), "allow", "allow")
        finally:
            os.umask(old)
        for path in (d.audit, d.audit + "-wal"):
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o640, path)

    def test_socket_mode_flag(self):
        d = self.start_daemon(socket_mode="0600")
        self.assertEqual(stat.S_IMODE(os.stat(d.socket).st_mode), 0o600)

    def test_stale_socket_replaced(self):
        d = tt.Daemon()
        self.addCleanup(d.cleanup)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(d.socket)
        s.close()  # the file stays, nobody listens on it
        self.assertTrue(stat.S_ISSOCK(os.stat(d.socket).st_mode))
        d.start()
        with d.conn() as c:
            self.assertEqual(c.result("ping"), {"pong": True})

    def test_second_daemon_on_same_path_fails(self):
        d = self.start_daemon()
        other_db = os.path.join(d.tmp, "other.db")
        r = self.run_trined(["--policy", d.policy_dir, "--socket", d.socket,
                             "--audit", other_db])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(d.socket, r.stderr)
        # The first one is untouched and still serves on that path.
        self.assertTrue(os.path.exists(d.socket))
        with d.conn() as c:
            self.assertEqual(c.result("ping"), {"pong": True})

    def test_sigterm_removes_socket(self):
        d = self.start_daemon()
        d.stop()
        self.assertFalse(os.path.exists(d.socket))

    def test_sigint_exits_zero(self):
        d = self.start_daemon()
        d.signal(signal.SIGINT)
        self.assertEqual(d.wait(), 0, d.log())

    def test_sigterm_with_requests_in_flight(self):
        d = self.start_daemon()
        n = 500
        conns = [d.conn() for _ in range(4)]
        try:
            ids = []
            for k, c in enumerate(conns):
                reqs = []
                for i in range(n):
                    params = tt.FIXED_CASES[(i + k) % len(tt.FIXED_CASES)][0]
                    reqs.append(tt.request("check", params, i))
                c.send_raw(b"".join(tt.line(r) for r in reqs))
            # Everything has been handed to the daemon: stop it now, before
            # a single reply has been read.
            time.sleep(0.2 * tt.TIMEOUT_SCALE)
            d.signal(signal.SIGTERM)
            got = {}
            for k, c in enumerate(conns):
                for i in range(n):
                    text = c.read_line()
                    self.assertIsNotNone(
                        text, "connection %d: only %d of %d answered"
                        % (k, i, n))
                    r = json.loads(text)
                    self.assertEqual(r["id"], i)
                    res = r["result"]
                    self.assertEqual(
                        (res["decision"], res["reason"]),
                        tt.FIXED_CASES[(i + k) % len(tt.FIXED_CASES)][1:])
                    got[res["audit_id"]] = res
                    ids.append(res["audit_id"])
                self.assertTrue(c.at_eof())
        finally:
            for c in conns:
                c.close()
        self.assertEqual(d.wait(), 0, d.log()[-5000:])
        d.assert_clean_log()
        self.assertEqual(len(set(ids)), 4 * n)
        with d.db() as db:
            rows = {r["id"]: r for r in db.execute(
                "SELECT id, decision, detail FROM decisions")}
        self.assertEqual(set(rows), set(got))
        for aid, res in got.items():
            self.assertEqual(json.loads(rows[aid]["detail"]), res)
        ok = tt.run_cli("audit", "verify", "--db", d.audit)
        self.assertEqual(ok.returncode, 0, ok.stdout + ok.stderr)

    def peer(self, d, mode="all"):
        """Runs PEER_SCRIPT as uid/gid 65534; returns its output lines."""
        r = subprocess.run(
            ["setpriv", "--reuid", str(NOBODY), "--regid", str(NOBODY),
             "--clear-groups", python_for_other_users(), "-c", PEER_SCRIPT,
             d.socket, mode], capture_output=True, text=True, timeout=60,
            cwd="/")
        self.assertEqual(r.returncode, 0, r.stderr)
        # A refused peer may find the connection closed before its request
        # is written; that is fine, the refusal line is what counts.
        return [x for x in r.stdout.splitlines()
                if not x.startswith("SENDERR")]

    def can_switch_uid(self):
        if os.geteuid() != 0:
            return "not root: cannot run a client under another uid"
        if subprocess.run(["which", "setpriv"],
                          capture_output=True).returncode != 0:
            return "setpriv (util-linux) is not installed"
        return None

    def test_unauthorised_uid_refused(self):
        why = self.can_switch_uid()
        if why:
            self.skipTest(why)
        d = self.start_daemon(socket_mode="0666", dir_mode=0o777)
        os.chmod(d.tmp, 0o777)
        with tt.Checker(d) as ck:
            out = self.peer(d)
        self.assertEqual(ck.errors(), [])
        self.assertEqual(out[-1], "EOF", out)
        self.assertEqual(len(out), 2, out)
        reply = json.loads(out[0])
        self.assertNotIn("result", reply)
        self.assertEqual(reply["error"]["code"], -32600, reply)
        self.assertIn(str(NOBODY), reply["error"]["message"])
        with d.conn() as c:
            self.assertEqual(c.result("ping"), {"pong": True})

    def test_allowed_uid_accepted(self):
        # The same client is served once its uid is allowed, so the refusal
        # above is the daemon's doing and not the file system's.
        why = self.can_switch_uid()
        if why:
            self.skipTest(why)
        d = self.start_daemon(socket_mode="0666", dir_mode=0o777,
                              args=["--allow-uid", "0,%d" % NOBODY])
        os.chmod(d.tmp, 0o777)
        out = self.peer(d, "one")
        self.assertEqual(json.loads(out[0]),
                         {"jsonrpc": "2.0", "id": 1,
                          "result": {"pong": True}})

    def test_allowed_gid_accepted(self):
        why = self.can_switch_uid()
        if why:
            self.skipTest(why)
        d = self.start_daemon(socket_mode="0666", dir_mode=0o777,
                              args=["--allow-gid", str(NOBODY)])
        os.chmod(d.tmp, 0o777)
        out = self.peer(d, "one")
        self.assertEqual(json.loads(out[0])["result"], {"pong": True})


if __name__ == "__main__":
    tt.main()
