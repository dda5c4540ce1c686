"""trined: the three consent modes end to end (DESIGN.md section 2.4 step
6, section 2.5 "Consent", section 3.2): consent_required, consent.grant with
the decision's audit_id, then allow exactly where the mode says."""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trinetest as tt  # noqa: E402


def create_issue(session, title="Crash on start", **token_kw):
    return tt.check_params(
        tool="create_issue", session=session,
        arguments={"owner": "acme", "repo": "widgets", "title": title},
        **token_kw)


def merge_pr(repo="widgets", session=None, **token_kw):
    return tt.check_params(tool="merge_pr", session=session,
                           arguments={"owner": "acme", "repo": repo},
                           **token_kw)


def delete_repo(repo="widgets"):
    # ops-console may delete; the admin scope grants repo.*.
    return tt.check_params(tool="delete_repo",
                           arguments={"owner": "acme", "repo": repo},
                           scope="admin", client_id="ops-console")


class ConsentTest(tt.DaemonTestCase):

    def setUp(self):
        self.d = self.start_daemon()
        self.c = self.d.conn()
        self.addCleanup(lambda: self.c.close())

    def need(self, params, mode):
        r = self.c.check(params)
        self.assertDecision(r, "consent_required", "consent_required")
        self.assertEqual(r["consent"]["mode"], mode)
        return r

    def grant(self, audit_id, **extra):
        return self.c.result("consent.grant",
                             dict({"audit_id": audit_id}, **extra))[
            "consent_id"]

    def test_session(self):
        r = self.need(create_issue("s1"), "session")
        cid = self.grant(r["audit_id"])
        a = self.c.check(create_issue("s1"))
        self.assertDecision(a, "allow", "allow")
        # Not single-use: the whole session is covered, any arguments.
        self.assertDecision(self.c.check(create_issue("s1", title="other")),
                            "allow", "allow")
        # Another session, or none, is asked again.
        self.need(create_issue("s2"), "session")
        p = create_issue(None)
        self.need(p, "session")
        # Another user or agent in the same session is not covered.
        self.need(create_issue("s1", sub="carol"), "session")
        self.need(create_issue("s1", client_id="ops-console"), "session")
        # The grant covers only create_issue.
        self.need(delete_repo(), "always")
        # Revoked, it is gone.
        self.assertEqual(self.c.result("consent.revoke", {"consent_id": cid}),
                         {"revoked": 1})
        self.need(create_issue("s1"), "session")

    def test_session_grant_without_session_refused_or_useless(self):
        # A consent_required decision made without a session cannot turn
        # into an allow for a request without a session.
        r = self.need(create_issue(None), "session")
        g = self.c.call("consent.grant", {"audit_id": r["audit_id"]})
        if "error" in g:
            self.assertRpcError(g, -32602)
        self.need(create_issue(None), "session")
        self.need(create_issue(""), "session")

    def test_once_for_duration_survives_restart(self):
        r = self.need(merge_pr(), "once")
        self.assertEqual(
            r["consent"]["prompt"],
            "Let claude-desktop merge pull requests in acme/widgets?")
        cid = self.grant(r["audit_id"])
        row = self.c.result("consent.list", {"user": "alice"})["consents"]
        self.assertEqual([x["id"] for x in row], [cid])
        self.assertEqual(row[0]["mode"], "once")
        # `once for 1h`: the grant expires an hour after it was given.
        self.assertEqual(row[0]["expires_ms"] - row[0]["granted_ms"],
                         3600 * 1000)
        # Not bound to arguments or session, and used any number of times.
        for p in (merge_pr(), merge_pr(), merge_pr(repo="gadgets"),
                  merge_pr(session="any")):
            self.assertDecision(self.c.check(p), "allow", "allow")
        self.need(merge_pr(client_id="ops-console"), "once")

        # Grants live in the store: a restarted daemon still honours them.
        self.c.close()
        self.d.stop()
        self.d.start()
        self.c = self.d.conn()
        self.assertDecision(self.c.check(merge_pr()), "allow", "allow")
        self.assertEqual(
            [x["id"] for x in self.c.result("consent.list")["consents"]],
            [cid])
        # Revoked (by user and tool), it is asked again.
        self.assertEqual(
            self.c.result("consent.revoke",
                          {"user": "alice", "tool": "merge_pr"}),
            {"revoked": 1})
        self.need(merge_pr(), "once")

    def test_once_without_duration_and_ttl(self):
        r = self.need(tt.check_params(tool="archive_repo"), "once")
        self.assertEqual(r["consent"]["prompt"],
                         "Let claude-desktop archive repositories of alice?")
        self.grant(r["audit_id"])
        row = self.c.result("consent.list")["consents"][0]
        self.assertIsNone(row["expires_ms"])
        self.assertDecision(self.c.check(tt.check_params(tool="archive_repo")),
                            "allow", "allow")
        # A ttl longer than `once for 1h` cannot widen it: any peer of the
        # socket may send one, and the policy author set the ceiling.
        self.c.result("consent.revoke", {"user": "alice"})
        r = self.need(merge_pr(), "once")
        self.grant(r["audit_id"], ttl=7 * 86400)
        row = self.c.result("consent.list")["consents"][0]
        self.assertEqual(row["expires_ms"] - row["granted_ms"], 3600 * 1000)
        # A shorter ttl shortens it: one second, then it is gone.
        self.c.result("consent.revoke", {"user": "alice"})
        r = self.need(merge_pr(), "once")
        self.grant(r["audit_id"], ttl=1)
        self.assertDecision(self.c.check(merge_pr()), "allow", "allow")
        time.sleep(2.2)
        self.need(merge_pr(), "once")
        self.assertEqual(self.c.result("consent.list")["consents"], [])

    def test_always_single_use_bound_to_arguments(self):
        r = self.need(delete_repo(), "always")
        self.assertEqual(r["consent"]["prompt"],
                         "Delete acme/widgets? This cannot be undone.")
        cid = self.grant(r["audit_id"])
        # Different arguments: the grant does not apply (and is not used).
        self.need(delete_repo("gadgets"), "always")
        # The same arguments (a null one is absent): allowed once...
        same = delete_repo()
        same["arguments"]["force"] = None
        a = self.c.check(same)
        self.assertDecision(a, "allow", "allow")
        # ...and never again.
        self.need(delete_repo(), "always")
        with self.d.db() as db:
            row = db.execute("SELECT used_ms, mode FROM consents WHERE id=?",
                             (cid,)).fetchone()
        self.assertEqual(row["mode"], "always")
        self.assertIsNotNone(row["used_ms"])
        self.assertEqual(self.c.result("consent.list")["consents"], [])
        # The used approval cannot be turned into a second grant.
        e = self.c.call("consent.grant", {"audit_id": r["audit_id"]})
        self.assertEqual(e["error"]["code"], -32602, e)
        self.assertIn("already granted", e["error"]["message"])
        self.need(delete_repo(), "always")

    def test_always_revoked_before_use(self):
        r = self.need(delete_repo(), "always")
        cid = self.grant(r["audit_id"])
        self.assertEqual(self.c.result("consent.revoke", {"consent_id": cid}),
                         {"revoked": 1})
        self.need(delete_repo(), "always")
        # A revoked grant does not come back from its old approval.
        e = self.c.call("consent.grant", {"audit_id": r["audit_id"]})
        self.assertEqual(e["error"]["code"], -32602, e)
        self.need(delete_repo(), "always")

    def test_always_used_by_exactly_one_concurrent_check(self):
        r = self.need(delete_repo(), "always")
        self.grant(r["audit_id"])
        results = []
        lock = threading.Lock()
        barrier = threading.Barrier(16)

        def race():
            with self.d.conn() as c:
                barrier.wait()
                res = c.check(delete_repo())
                with lock:
                    results.append(res["decision"])

        threads = [threading.Thread(target=race) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(sorted(results),
                         ["allow"] + ["consent_required"] * 15)

    def test_always_survives_restart_until_used(self):
        r = self.need(delete_repo(), "always")
        self.grant(r["audit_id"])
        self.c.close()
        self.d.stop()
        self.d.start()
        self.c = self.d.conn()
        self.assertDecision(self.c.check(delete_repo()), "allow", "allow")
        self.c.close()
        self.d.stop()
        self.d.start()
        self.c = self.d.conn()
        self.need(delete_repo(), "always")

    def test_grant_is_single_per_decision_and_not_for_others(self):
        allow = self.c.check(tt.check_params())
        self.assertRpcError(
            self.c.call("consent.grant", {"audit_id": allow["audit_id"]}),
            -32602)
        deny = self.c.check(tt.check_params(client_id="ci-bot"))
        self.assertRpcError(
            self.c.call("consent.grant", {"audit_id": deny["audit_id"]}),
            -32602)
        self.assertRpcError(
            self.c.call("consent.grant", {"audit_id": 424242}), -32602)


if __name__ == "__main__":
    tt.main()
