"""trined fails closed, and loses nothing, when the audit log breaks under it
(DESIGN.md sections 4 and 7), and recovers by itself once the fault is gone.

Each test runs the real daemon on its own socket and audit file and injects
one fault: a read-only database, a full one (--audit-max-size), a write lock
held by another process (the sqlite3 shell), the database deleted under the
daemon, the database replaced by another file, and the WAL deleted alone.
For each it shows that

  - checks answer deny/audit_unavailable, without an audit_id;
  - nothing is acknowledged without a row: every reply that carries an
    audit_id (from a second client that keeps checking meanwhile) has its
    row, with the same result, in the log at the path afterwards;
  - other methods (ping, policy.status) keep working;
  - once the fault is gone a new check is allowed and gets its row, and
    `trine audit verify` passes.
"""

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trinetest as tt  # noqa: E402

NOBODY = 65534

# Checks whose answer does not depend on consents, with that answer.
CASES = [c for c in tt.FIXED_CASES if c[1] != "consent_required"]

MOVED = "audit log deleted or replaced under trined; reopening"


class Recorder:
    """A client that keeps checking, in its own thread, and records each
    reply with the time its request was sent. Use as a context manager."""

    def __init__(self, daemon):
        self.daemon = daemon
        self.stop_flag = threading.Event()
        self.replies = []   # (sent monotonic time, result)
        self.problems = []
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        try:
            with self.daemon.conn() as c:
                i = 0
                while not self.stop_flag.is_set():
                    params, decision, reason = CASES[i % len(CASES)]
                    i += 1
                    sent = time.monotonic()
                    r = c.check(params)
                    if "audit_id" in r and (r["decision"], r["reason"]) != (
                            decision, reason):
                        self.problems.append(("wrong answer", params, r))
                    if "audit_id" not in r and r["reason"] != \
                            "audit_unavailable":
                        self.problems.append(("no audit_id", r))
                    self.replies.append((sent, r))
                    time.sleep(0.002)
        except Exception as e:  # noqa: BLE001 - recorded for the test
            self.problems.append(("exception", repr(e)))

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + tt.START_TIMEOUT
        while not self.replies and not self.problems:
            if time.monotonic() > deadline:
                self.problems.append(("timeout", "no first answer"))
                break
            time.sleep(0.01)
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        self.thread.join(tt.IO_TIMEOUT)

    def acknowledged(self, since=0.0):
        """The results with an audit_id whose request was sent at or after
        since (a monotonic time)."""
        return [r for t, r in self.replies if t >= since and "audit_id" in r]

    def unavailable(self):
        return [r for _, r in self.replies if "audit_id" not in r]

    def wait_unavailable(self, timeout=20.0):
        """Waits until this client too was answered audit_unavailable."""
        deadline = time.monotonic() + timeout
        while not self.unavailable() and time.monotonic() < deadline:
            time.sleep(0.01)


class FaultTest(tt.DaemonTestCase):

    def assertUnavailable(self, r, detail=None):
        self.assertDecision(r, "deny", "audit_unavailable")
        self.assertNotIn("audit_id", r)
        self.assertEqual([x["code"] for x in r["reasons"]],
                         ["audit_unavailable"], r)
        self.assertEqual(r["matched"], [])
        self.assertTrue(r["policy_revision"].startswith("sha256:"))
        if detail is not None:
            self.assertIn(detail, r["reasons"][0]["detail"], r)

    def assertServing(self, d, c, detail=None):
        """During a fault: checks fail closed on this connection and on a
        new one, and the methods that need no log keep working."""
        for params, _, _ in CASES[:4]:
            self.assertUnavailable(c.check(params), detail)
        self.assertEqual(c.result("ping"), {"pong": True})
        status = c.result("policy.status")
        self.assertTrue(status["revision"].startswith("sha256:"))
        self.assertEqual(status["files"], ["github.trine", "tools.trine"])
        with d.conn() as other:
            self.assertUnavailable(other.check(tt.check_params()), detail)
            self.assertEqual(other.result("ping"), {"pong": True})

    def assertRows(self, d, results):
        """Every result has its row in the log at d.audit, with the same
        decision, reason, tool and detail."""
        if not results:
            return
        with d.db() as db:
            for res in results:
                row = db.execute(
                    "SELECT decision, reason, tool, detail FROM decisions"
                    " WHERE id = ?", (res["audit_id"],)).fetchone()
                self.assertIsNotNone(row, "acknowledged decision %d has no"
                                     " row" % res["audit_id"])
                self.assertEqual((row["decision"], row["reason"]),
                                 (res["decision"], res["reason"]))
                self.assertEqual(json.loads(row["detail"]), res)
        ids = [r["audit_id"] for r in results]
        self.assertEqual(len(ids), len(set(ids)), "an audit id given twice")

    def assertVerifies(self, d, rows=None):
        ok = tt.run_cli("audit", "verify", "--db", d.audit)
        self.assertEqual(ok.returncode, 0, ok.stdout + ok.stderr)
        if rows is not None:
            self.assertEqual(ok.stdout.strip(),
                             "ok: %d rows, hash chain intact" % rows)

    def recover(self, c, timeout=20.0):
        """Checks until one is allowed again; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            r = c.check(tt.check_params())
            if r["reason"] != "audit_unavailable":
                self.assertDecision(r, "allow", "allow")
                self.assertIn("audit_id", r)
                return r
            self.assertLess(time.monotonic(), deadline,
                            "no recovery within %ss" % timeout)
            time.sleep(0.02)

    def last_id_before(self, rec, t):
        """The highest audit id rec received for a request sent before t."""
        ids = [r["audit_id"] for s, r in rec.replies
               if s < t and "audit_id" in r]
        return max(ids) if ids else 0

    def last_id(self, d):
        with d.db() as db:
            return db.execute("SELECT max(id) FROM decisions").fetchone()[0]

    # ---- 1. Read-only database ------------------------------------------

    def readonly_daemon(self):
        """A daemon that file modes apply to: root ignores them, so as root
        trined runs as uid/gid 65534 on files it owns."""
        root = os.geteuid() == 0
        if root and shutil.which("setpriv") is None:
            self.skipTest("setpriv (util-linux) is not installed")
        tmp = tempfile.mkdtemp(prefix="trined-")
        d = tt.Daemon(tmpdir=tmp)
        if root:
            prefix = ["setpriv", "--reuid=%d" % NOBODY,
                      "--regid=%d" % NOBODY, "--clear-groups"]
            base = d.argv
            d.argv = lambda: prefix + base()
            for dirpath, dirs, files in os.walk(tmp):
                os.chown(dirpath, NOBODY, NOBODY)
                for name in files:
                    os.chown(os.path.join(dirpath, name), NOBODY, NOBODY)
        self.addCleanup(d.cleanup)
        d.start()
        return d

    def test_read_only_log_fails_closed_then_recovers(self):
        d = self.readonly_daemon()
        c = d.conn()
        self.addCleanup(c.close)
        first = c.check(tt.check_params())
        self.assertDecision(first, "allow", "allow")
        pending = c.check(tt.EXAMPLE_PARAMS)
        self.assertDecision(pending, "consent_required", "consent_required")
        files = [d.audit + s for s in ("", "-wal", "-shm")]
        with Recorder(d) as rec:
            for f in files:
                os.chmod(f, 0o444)
            try:
                self.assertServing(d, c, detail="audit log is read-only")
                # A consent grant cannot be written either.
                g = c.call("consent.grant", {"audit_id": pending["audit_id"]})
                self.assertRpcError(g, -32603, mentions="read-only")
                rec.wait_unavailable()
            finally:
                for f in files:
                    os.chmod(f, 0o644)
            again = self.recover(c)
        self.assertEqual(rec.problems, [])
        self.assertTrue(rec.unavailable(), "the fault was never seen")
        self.assertRows(d, rec.acknowledged() + [first, pending, again])
        # The grant that failed was not made: granting now works, once.
        g = c.result("consent.grant", {"audit_id": pending["audit_id"]})
        self.assertDecision(c.check(tt.EXAMPLE_PARAMS), "allow", "allow")
        self.assertIsInstance(g["consent_id"], int)
        self.assertIn("event=audit_unavailable", d.log())
        self.assertIn("audit log is read-only", d.log())
        self.assertIn("event=audit_recovered", d.log())
        self.assertVerifies(d, self.last_id(d))

    # ---- 2. Full: --audit-max-size --------------------------------------

    def test_full_log_fails_closed_until_the_limit_is_raised(self):
        tmp = tempfile.mkdtemp(prefix="trined-")
        conf = os.path.join(tmp, "trined.conf")
        with open(conf, "w") as f:
            # 17 whole pages of 4096 bytes: the limit is rounded down.
            f.write("audit-max-size = 70000\n")
        d = tt.Daemon(tmpdir=tmp, args=["--config", conf])
        self.addCleanup(d.cleanup)
        d.start()
        d.wait_log(r"event=audit_limit \S+ max_size=70000 limit_bytes=69632")
        c = d.conn()
        self.addCleanup(c.close)
        acked = []
        full = None
        with Recorder(d) as rec:
            for _ in range(5000):
                r = c.check(tt.check_params())
                if "audit_id" not in r:
                    full = r
                    break
                acked.append(r)
            self.assertIsNotNone(full, "the log never filled up")
            self.assertGreater(len(acked), 5)
            self.assertUnavailable(full, "audit log full (69632 bytes)")
            self.assertEqual(full["reasons"][0]["detail"],
                             "audit log full (69632 bytes)")
            self.assertServing(d, c, detail="audit log full (69632 bytes)")
            rec.wait_unavailable()
            d.wait_log(r'event=audit_unavailable \S+ '
                       r'error="audit log full \(69632 bytes\)"')
            # The operator raises the limit in the file and reloads.
            with open(conf, "w") as f:
                f.write("audit-max-size = 4194304\n")
            d.signal(signal.SIGHUP)
            d.wait_log(r"event=audit_limit_requested \S+ max_size=4194304"
                       r" previous=70000")
            again = self.recover(c)
        self.assertEqual(rec.problems, [])
        self.assertTrue(rec.unavailable())
        d.wait_log(r"event=audit_limit \S+ max_size=4194304"
                   r" limit_bytes=4194304")
        self.assertRows(d, rec.acknowledged() + acked + [again])
        self.assertIn("event=audit_recovered", d.log())
        self.assertVerifies(d, self.last_id(d))

    def test_command_line_limit_is_kept_on_reload(self):
        tmp = tempfile.mkdtemp(prefix="trined-")
        conf = os.path.join(tmp, "trined.conf")
        with open(conf, "w") as f:
            f.write("audit-max-size = 1048576\n")
        d = tt.Daemon(tmpdir=tmp, args=["--config", conf,
                                        "--audit-max-size", "70000"])
        self.addCleanup(d.cleanup)
        d.start()
        d.wait_log(r"event=audit_limit \S+ max_size=70000")
        d.signal(signal.SIGHUP)
        d.wait_log(r"event=policy_unchanged")
        with d.conn() as c:
            self.assertDecision(c.check(tt.check_params()), "allow", "allow")
        self.assertNotIn("event=audit_limit_requested", d.log())

    # ---- 3. Locked by another process ----------------------------------

    def test_lock_held_by_another_process(self):
        if shutil.which("sqlite3") is None:
            self.skipTest("the sqlite3 shell is not installed")
        d = self.start_daemon(args=["--audit-busy-timeout-ms", "100"])
        c = d.conn()
        self.addCleanup(c.close)
        first = c.check(tt.check_params())
        with Recorder(d) as rec:
            shell = subprocess.Popen(
                ["sqlite3", d.audit], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            self.addCleanup(shell.kill)
            # .print answers once BEGIN EXCLUSIVE holds the write lock.
            shell.stdin.write(".timeout 30000\nBEGIN EXCLUSIVE;\n"
                              ".print locked\n")
            shell.stdin.flush()
            self.assertEqual(shell.stdout.readline(), "locked\n",
                             shell.stderr.read() if shell.poll() else "")
            try:
                self.assertServing(d, c, detail="database is locked")
                rec.wait_unavailable()
            finally:
                shell.stdin.write("COMMIT;\n.quit\n")
                shell.stdin.close()
                self.assertEqual(shell.wait(30), 0, shell.stderr.read())
            again = self.recover(c)
        self.assertEqual(rec.problems, [])
        self.assertTrue(rec.unavailable())
        self.assertRows(d, rec.acknowledged() + [first, again])
        self.assertIn("event=audit_recovered", d.log())
        self.assertVerifies(d, self.last_id(d))

    # ---- 4. Deleted or replaced under the daemon -----------------------

    def grant_session(self, c, session):
        """Makes a session grant for create_issue; returns its params."""
        p = dict(tt.EXAMPLE_PARAMS, session=session)
        r = c.check(p)
        self.assertDecision(r, "consent_required", "consent_required")
        c.result("consent.grant", {"audit_id": r["audit_id"]})
        self.assertDecision(c.check(p), "allow", "allow")
        return p, r["audit_id"]

    def test_deleted_log_is_recreated_with_a_new_chain(self):
        d = self.start_daemon()
        c = d.conn()
        self.addCleanup(c.close)
        for params, _, _ in CASES:
            c.check(params)
        granted, grant_decision = self.grant_session(c, "s-old")
        with Recorder(d) as rec:
            for suffix in ("", "-wal", "-shm"):
                os.unlink(d.audit + suffix)
            after = time.monotonic()
            old_last = max([self.last_id_before(rec, after), grant_decision])
            # The first write finds the file gone: that batch fails closed.
            r = c.check(tt.check_params())
            if "audit_id" not in r:
                self.assertUnavailable(r, MOVED)
            again = self.recover(c)
            self.assertEqual(c.result("ping"), {"pong": True})
        self.assertEqual(rec.problems, [])
        self.assertTrue(os.path.exists(d.audit))
        # A new chain, from id 1, holds every decision acknowledged since.
        self.assertRows(d, rec.acknowledged(after) + [again])
        with d.db() as db:
            first = db.execute("SELECT prev_hash FROM decisions WHERE id = 1"
                               ).fetchone()
        self.assertEqual(bytes(first["prev_hash"]), bytes(32))
        # The grant lived only in the deleted file: it is gone.
        self.assertDecision(c.check(granted), "consent_required",
                            "consent_required")
        self.assertEqual(c.result("consent.list"), {"consents": []})
        log = d.log()
        self.assertIn('msg="%s"' % MOVED, log)
        self.assertIn("event=audit_replaced", log)
        self.assertRegex(log, r"event=audit_reopened \S+ rows=0"
                              r" consents_dropped=1 consents_loaded=0")
        # The old file's decision ids are given out again: a grant for one
        # of them may name either decision, and is refused for a while.
        while self.last_id(d) < grant_decision:
            c.check(tt.check_params())
        g = c.call("consent.grant", {"audit_id": grant_decision})
        self.assertRpcError(g, -32602, mentions="replaced")
        ran_to = int(re.search(r"\(its ids ran to (\d+)\)",
                               g["error"]["message"]).group(1))
        self.assertGreaterEqual(ran_to, old_last)
        self.assertVerifies(d, self.last_id(d))

    def test_replaced_log_is_used_and_its_grants_loaded(self):
        d = self.start_daemon()
        c = d.conn()
        self.addCleanup(c.close)
        kept, _ = self.grant_session(c, "s-kept")
        c.check(tt.check_params())
        # The replacement: a copy of the log as it is now.
        other = os.path.join(d.tmp, "other.db")
        src = sqlite3.connect(d.audit)
        dst = sqlite3.connect(other)
        src.backup(dst)
        dst.close()
        src.close()
        copied = self.last_id(d)
        # More history that only the current file holds.
        lost, _ = self.grant_session(c, "s-lost")
        for params, _, _ in CASES:
            c.check(params)
        self.assertGreater(self.last_id(d), copied)
        with Recorder(d) as rec:
            os.rename(other, d.audit)
            after = time.monotonic()
            again = self.recover(c)
        self.assertEqual(rec.problems, [])
        # The chain continues the replacement's, and nothing of the old
        # file's WAL was applied to it.
        self.assertRows(d, rec.acknowledged(after) + [again])
        first_after = min(r["audit_id"] for r in
                          rec.acknowledged(after) + [again])
        self.assertEqual(first_after, copied + 1)
        self.assertDecision(c.check(kept), "allow", "allow")
        self.assertDecision(c.check(lost), "consent_required",
                            "consent_required")
        self.assertRegex(d.log(), r"event=audit_reopened \S+ rows=%d"
                                  r" consents_dropped=2 consents_loaded=1"
                         % copied)
        self.assertVerifies(d, self.last_id(d))

    def test_deleted_wal_loses_no_row(self):
        d = self.start_daemon()
        c = d.conn()
        self.addCleanup(c.close)
        acked = [c.check(params) for params, _, _ in CASES]
        granted, _ = self.grant_session(c, "s-wal")
        # The rows are in the WAL only (no checkpoint yet).
        self.assertGreater(os.path.getsize(d.audit + "-wal"), 0)
        with Recorder(d) as rec:
            os.unlink(d.audit + "-wal")
            again = self.recover(c)
        self.assertEqual(rec.problems, [])
        # Every row the deleted WAL held was copied into the database
        # before the log was reopened; the chain goes on.
        self.assertRows(d, acked + rec.acknowledged() + [again])
        self.assertDecision(c.check(granted), "allow", "allow")
        self.assertIn("event=audit_replaced", d.log())
        self.assertNotIn("event=audit_reopened", d.log())
        self.assertVerifies(d, self.last_id(d))


if __name__ == "__main__":
    tt.main()
