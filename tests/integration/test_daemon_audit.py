"""trined and the audit log (DESIGN.md sections 4 and 7): one row per
decision, equal to the reply the client got; the hash chain verifies and
shows tampering; kill -9 under load loses no row whose decision a client
received."""

import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trinetest as tt  # noqa: E402


def row_for(db, audit_id):
    return db.execute("SELECT * FROM decisions WHERE id = ?",
                      (audit_id,)).fetchone()


class AuditTest(tt.DaemonTestCase):

    def test_rows_equal_replies(self):
        d = self.start_daemon()
        with d.conn() as c:
            replies = []
            for params, _, _ in tt.FIXED_CASES:
                replies.append((params, c.check(params)))
            p = dict(tt.EXAMPLE_PARAMS)
            p["arguments"] = dict(p["arguments"], body="secret text",
                                  labels=["bug", "p1"])
            replies.append((p, c.check(p)))
            chained = tt.check_params(
                act={"sub": "svc", "client_id": "ops-console",
                     "act": {"client_id": "ci-bot"}})
            replies.append((chained, c.check(chained)))
            rev = c.result("policy.status")["revision"]
        with d.db() as db:
            n = db.execute("SELECT count(*) FROM decisions").fetchone()[0]
            self.assertEqual(n, len(replies))
            for params, res in replies:
                row = row_for(db, res["audit_id"])
                self.assertIsNotNone(row, res)
                self.assertEqual(row["decision"], res["decision"])
                self.assertEqual(row["reason"], res["reason"])
                self.assertEqual(json.loads(row["detail"]), res)
                self.assertEqual(row["policy_rev"], rev)
                self.assertEqual(row["server"], params["server"])
                self.assertEqual(row["tool"], params["tool"])
                self.assertEqual(row["user"], params["token"].get("sub"))
                self.assertEqual(row["agent"],
                                 params["token"].get("client_id"))
                self.assertEqual(row["session"], params.get("session"))
                self.assertEqual(len(row["hash"]), 32)
                self.assertEqual(len(row["prev_hash"]), 32)
                if params["tool"] != "create_issue":
                    self.assertEqual(json.loads(row["arguments"]),
                                     params["arguments"])
                now = time.time() * 1000
                self.assertLess(abs(row["ts_ms"] - now), 600000)
            # `redact body` replaces the value, and the raw text never
            # reaches the log.
            last = row_for(db, replies[-2][1]["audit_id"])
            self.assertEqual(json.loads(last["arguments"]),
                             {"owner": "acme", "repo": "widgets",
                              "title": "Crash on start",
                              "body": "[redacted]", "labels": ["bug", "p1"]})
            self.assertNotIn("secret text", last["detail"])
            # The delegation chain, outermost actor first.
            ch = row_for(db, replies[-1][1]["audit_id"])
            self.assertEqual(json.loads(ch["chain"]),
                             ["ops-console", "ci-bot"])
            self.assertIsNone(row_for(db, replies[0][1]["audit_id"])["chain"])
            # The chain links: each prev_hash is the hash before it.
            rows = db.execute(
                "SELECT id, prev_hash, hash FROM decisions ORDER BY id"
            ).fetchall()
            self.assertEqual(rows[0]["prev_hash"], b"\x00" * 32)
            for a, b in zip(rows, rows[1:]):
                self.assertEqual(b["prev_hash"], a["hash"])

    def test_verify_then_tamper(self):
        d = self.start_daemon()
        with d.conn() as c:
            for params, _, _ in tt.FIXED_CASES:
                c.check(params)
            ids = [c.check(tt.check_params(client_id="ci-bot"))["audit_id"]
                   for _ in range(3)]
        self.assertTrue(all(isinstance(i, int) for i in ids))
        # While the daemon runs (a WAL reader beside the writer).
        ok = tt.run_cli("audit", "verify", "--db", d.audit)
        self.assertEqual(ok.returncode, 0, ok.stdout + ok.stderr)
        self.assertTrue(ok.stdout.startswith("ok:"), ok.stdout)
        self.assertIn(str(len(tt.FIXED_CASES) + 3), ok.stdout)
        stats = tt.run_cli("audit", "stats", "--db", d.audit)
        self.assertEqual(stats.returncode, 0, stats.stderr)
        lst = tt.run_cli("audit", "--db", d.audit, "--format", "json",
                         "--decision", "allow")
        self.assertEqual(lst.returncode, 0, lst.stderr)
        try:
            allowed = json.loads(lst.stdout)
        except ValueError:
            allowed = [json.loads(x) for x in lst.stdout.splitlines() if x]
        self.assertEqual(len(allowed), 2)
        self.assertTrue(all(x["decision"] == "allow" for x in allowed))

        d.stop()
        # Row 3 (user_denied) is edited to look like an allow.
        with d.db() as db:
            self.assertEqual(row_for(db, 3)["reason"], "user_denied")
        subprocess.run(["sqlite3", d.audit,
                        "UPDATE decisions SET reason='allow' WHERE id=3"],
                       check=True, timeout=60)
        bad = tt.run_cli("audit", "verify", "--db", d.audit)
        self.assertEqual(bad.returncode, 1, bad.stdout + bad.stderr)
        self.assertRegex(bad.stdout + bad.stderr, r"(?m)^row 3: ")

    def test_verify_detects_deleted_row(self):
        d = self.start_daemon()
        with d.conn() as c:
            for params, _, _ in tt.FIXED_CASES:
                c.check(params)
        d.stop()
        subprocess.run(["sqlite3", d.audit,
                        "DELETE FROM decisions WHERE id=5"],
                       check=True, timeout=60)
        bad = tt.run_cli("audit", "verify", "--db", d.audit)
        self.assertEqual(bad.returncode, 1, bad.stdout + bad.stderr)
        self.assertRegex(bad.stdout + bad.stderr, r"(?m)^row [56]: ")

    def test_chain_continues_across_restart(self):
        d = self.start_daemon()
        with d.conn() as c:
            first = [c.check(tt.check_params())["audit_id"]
                     for _ in range(5)]
        d.stop()
        d.start()
        with d.conn() as c:
            second = [c.check(tt.check_params())["audit_id"]
                      for _ in range(5)]
        self.assertEqual(first + second, list(range(1, 11)))
        ok = tt.run_cli("audit", "verify", "--db", d.audit)
        self.assertEqual(ok.returncode, 0, ok.stdout + ok.stderr)


class RedactTest(tt.DaemonTestCase):
    """A redacted argument that a template or the prompt fills in: the
    reply carries the value (the enforcement point needs it), the audit log
    never does."""

    POLICY = dict(tt.DEFAULT_POLICY, **{"vault.trine": """\
tool "vault" "read" {
  needs secrets.read on "secret:{team}/{key}"
  consent session "Read {key} of {team} with pin {pin}?"
  redact key, pin
}
"""})

    def test_redacted_values_never_reach_the_log(self):
        d = self.start_daemon(policy=self.POLICY)
        args = {"team": "ops", "key": "db-root-pw", "pin": 4711}
        with d.conn() as c:
            # Denied (no role grants secrets.read): the reason's resource.
            deny = c.check(tt.check_params(server="vault", tool="read",
                                           arguments=args))
            self.assertEqual(deny["decision"], "deny", deny)
            self.assertEqual(deny["reasons"][0]["resource"],
                             "secret:ops/db-root-pw")
        with d.db() as db:
            row = db.execute("SELECT arguments, detail FROM decisions"
                             " WHERE id = ?", (deny["audit_id"],)).fetchone()
        self.assertNotIn("db-root-pw", row["detail"])
        self.assertNotIn("db-root-pw", row["arguments"])
        stored = json.loads(row["detail"])
        self.assertEqual(stored["audit_id"], deny["audit_id"])
        self.assertEqual(
            [r.get("resource") for r in stored["reasons"]],
            ["secret:ops/[redacted]" if r.get("resource") else None
             for r in deny["reasons"]])
        # Everything else is the reply as sent.
        for r in stored["reasons"]:
            r.pop("resource", None)
        for r in deny["reasons"]:
            r.pop("resource", None)
        self.assertEqual(stored, deny)
        ok = tt.run_cli("audit", "verify", "--db", d.audit)
        self.assertEqual(ok.returncode, 0, ok.stdout + ok.stderr)

    def test_redacted_prompt_values_never_reach_the_log(self):
        policy = dict(self.POLICY, **{"grant.trine": """\
scope "vault" { allow secrets.read on "secret:*" }
role vault-reader { allow secrets.read on "secret:*" }
user "alice" { roles vault-reader }
agent * { allow secrets.read on "secret:*" }
"""})
        d = self.start_daemon(policy=policy)
        args = {"team": "ops", "key": "db-root-pw", "pin": 4711}
        with d.conn() as c:
            res = c.check(tt.check_params(server="vault", tool="read",
                                          arguments=args, scope="vault",
                                          session="s1"))
        self.assertEqual(res["decision"], "consent_required", res)
        self.assertEqual(res["consent"]["prompt"],
                         "Read db-root-pw of ops with pin 4711?")
        with d.db() as db:
            detail = db.execute("SELECT detail FROM decisions WHERE id = ?",
                                (res["audit_id"],)).fetchone()["detail"]
        self.assertNotIn("db-root-pw", detail)
        self.assertNotIn("4711", detail)
        stored = json.loads(detail)
        self.assertEqual(stored["consent"]["prompt"],
                         "Read [redacted] of ops with pin [redacted]?")
        stored["consent"]["prompt"] = res["consent"]["prompt"]
        self.assertEqual(stored, res)
        # The grant reads its mode from the stored copy: it still works.
        with d.conn() as c:
            c.result("consent.grant", {"audit_id": res["audit_id"]})
            again = c.check(tt.check_params(server="vault", tool="read",
                                            arguments=args, scope="vault",
                                            session="s1"))
        self.assertEqual(again["decision"], "allow", again)


class CrashTest(tt.DaemonTestCase):

    def test_sigkill_under_load_loses_no_answered_row(self):
        d = self.start_daemon()
        received = {}   # audit_id -> (decision, reason, detail)
        lock = threading.Lock()
        stop = threading.Event()
        errors = []

        def client(n):
            depth = 1 + n % 4
            try:
                with d.conn(timeout=30) as c:
                    i = 0
                    while not stop.is_set():
                        reqs = []
                        for k in range(depth):
                            params = tt.FIXED_CASES[
                                (n + i + k) % len(tt.FIXED_CASES)][0]
                            reqs.append(("check", params))
                        i += depth
                        ids = []
                        for m, p in reqs:
                            ids.append(c.send(m, p))
                        for id in ids:
                            text = c.read_line()
                            if text is None:
                                return
                            r = json.loads(text)
                            if r.get("id") != id or "result" not in r:
                                errors.append(r)
                                return
                            res = r["result"]
                            with lock:
                                received[res["audit_id"]] = (
                                    res["decision"], res["reason"], res)
            except (OSError, EOFError, ValueError):
                return  # the daemon died under us, as intended

        threads = [threading.Thread(target=client, args=(n,))
                   for n in range(8)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while len(received) < 300 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)
        d.kill()
        stop.set()
        for t in threads:
            t.join(30)
        self.assertEqual(errors, [])
        self.assertGreater(len(received), 300)

        verify = tt.run_cli("audit", "verify", "--db", d.audit)
        self.assertEqual(verify.returncode, 0,
                         verify.stdout + verify.stderr)
        with d.db() as db:
            missing = []
            for aid, (decision, reason, res) in sorted(received.items()):
                row = row_for(db, aid)
                if row is None:
                    missing.append(aid)
                    continue
                self.assertEqual((row["decision"], row["reason"]),
                                 (decision, reason))
                self.assertEqual(json.loads(row["detail"]), res)
            self.assertEqual(missing, [], "%d answered decisions lost"
                             % len(missing))

        # The daemon starts again on the crashed log and continues it.
        d.start()
        with d.conn() as c:
            nxt = c.check(tt.check_params())["audit_id"]
        self.assertGreater(nxt, max(received))
        d.stop()
        verify = tt.run_cli("audit", "verify", "--db", d.audit)
        self.assertEqual(verify.returncode, 0,
                         verify.stdout + verify.stderr)


if __name__ == "__main__":
    tt.main()
