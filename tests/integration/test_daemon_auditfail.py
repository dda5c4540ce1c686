"""trined fails closed when the audit log cannot be written (DESIGN.md
section 4): while another connection holds the database's write lock past
the busy timeout, every check answers deny/audit_unavailable (without an
audit_id), the daemon keeps serving, and it recovers on its own once the log
is writable again."""

import os
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trinetest as tt  # noqa: E402


class AuditFailTest(tt.DaemonTestCase):

    def setUp(self):
        self.d = self.start_daemon(args=["--audit-busy-timeout-ms", "100"])
        self.c = self.d.conn()
        self.addCleanup(self.c.close)

    def lock(self):
        """Takes the write lock on the audit db; returns the connection
        holding it (rollback() releases it)."""
        db = sqlite3.connect(self.d.audit, timeout=30, isolation_level=None)
        db.execute("BEGIN EXCLUSIVE")
        return db

    def assertUnavailable(self, r):
        self.assertDecision(r, "deny", "audit_unavailable")
        self.assertNotIn("audit_id", r)
        self.assertEqual([x["code"] for x in r["reasons"]],
                         ["audit_unavailable"])
        self.assertTrue(r["policy_revision"].startswith("sha256:"))

    def test_locked_log_denies_then_recovers(self):
        first = self.c.check(tt.check_params())
        self.assertDecision(first, "allow", "allow")
        db = self.lock()
        try:
            for params, _, _ in tt.FIXED_CASES[:4]:
                self.assertUnavailable(self.c.check(params))
            # Other methods still work, and other connections are served.
            self.assertEqual(self.c.result("ping"), {"pong": True})
            with self.d.conn() as other:
                self.assertUnavailable(other.check(tt.check_params()))
        finally:
            db.rollback()
            db.close()
        again = self.c.check(tt.check_params())
        self.assertDecision(again, "allow", "allow")
        self.assertEqual(again["audit_id"], first["audit_id"] + 1)
        with self.d.db() as rd:
            n = rd.execute("SELECT count(*) FROM decisions").fetchone()[0]
        self.assertEqual(n, 2)
        ok = tt.run_cli("audit", "verify", "--db", self.d.audit)
        self.assertEqual(ok.returncode, 0, ok.stdout + ok.stderr)

    def test_always_grant_not_spent_by_a_failed_write(self):
        p = tt.check_params(tool="delete_repo", scope="admin",
                            client_id="ops-console")
        r = self.c.check(p)
        self.assertDecision(r, "consent_required", "consent_required")
        self.c.result("consent.grant", {"audit_id": r["audit_id"]})
        db = self.lock()
        try:
            self.assertUnavailable(self.c.check(p))
        finally:
            db.rollback()
            db.close()
        # The check that could not be logged allowed nothing, so the
        # single-use grant is still there for the next one.
        self.assertDecision(self.c.check(p), "allow", "allow")
        self.assertDecision(self.c.check(p), "consent_required",
                            "consent_required")

    def test_consent_grant_while_locked_is_an_error(self):
        r = self.c.check(tt.EXAMPLE_PARAMS)
        db = self.lock()
        try:
            g = self.c.call("consent.grant", {"audit_id": r["audit_id"]})
            self.assertIn("error", g)
            self.assertNotIn("result", g)
        finally:
            db.rollback()
            db.close()
        # Nothing was granted: the request still needs consent, and a
        # grant made now works.
        self.assertDecision(self.c.check(tt.EXAMPLE_PARAMS),
                            "consent_required", "consent_required")
        self.c.result("consent.grant", {"audit_id": r["audit_id"]})
        self.assertDecision(self.c.check(tt.EXAMPLE_PARAMS), "allow",
                            "allow")


if __name__ == "__main__":
    tt.main()
