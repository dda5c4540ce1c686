"""trined: every JSON-RPC method of DESIGN.md section 3 answers as the
contract says, over the real socket."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trinetest as tt  # noqa: E402


class MethodTest(tt.DaemonTestCase):

    def setUp(self):
        self.d = self.start_daemon()
        self.c = self.d.conn()
        self.addCleanup(self.c.close)

    def test_ping(self):
        r = self.c.call("ping")
        self.assertEqual(r, {"jsonrpc": "2.0", "id": 1,
                             "result": {"pong": True}})

    def test_ping_keeps_string_ids(self):
        self.c.send("ping", id="abc-1")
        r = self.c.reply()
        self.assertEqual(r["id"], "abc-1")
        self.assertEqual(r["result"], {"pong": True})

    def test_check_design_example(self):
        r = self.c.check(tt.EXAMPLE_PARAMS)
        self.assertDecision(r, "consent_required", "consent_required")
        self.assertIsInstance(r["audit_id"], int)
        self.assertGreater(r["audit_id"], 0)
        rev = self.c.result("policy.status")["revision"]
        self.assertEqual(r["policy_revision"], rev)
        self.assertEqual(r["consent"], {
            "mode": "session",
            "prompt": "Let claude-desktop open issues in acme/widgets for "
                      "this session?"})
        self.assertEqual(
            [(x["code"], x.get("rule")) for x in r["reasons"]],
            [("consent_required", tt.rule("consent session"))])
        self.assertEqual(
            [(m["set"], m["rule"]) for m in r["matched"]],
            [("user", tt.rule("allow repo.*, issues.* on \"repo:acme/*\"")),
             ("scope", tt.rule('scope "repo:write"')),
             ("agent", tt.rule('agent "claude-desktop"'))])

    def test_check_every_reason(self):
        seen = set()
        ids = []
        for params, decision, reason in tt.FIXED_CASES:
            r = self.c.check(params)
            self.assertDecision(r, decision, reason)
            self.assertIsInstance(r["audit_id"], int)
            self.assertTrue(r["policy_revision"].startswith("sha256:"))
            self.assertIsInstance(r["reasons"], list)
            self.assertIsInstance(r["matched"], list)
            if decision != "allow":
                self.assertIn(reason, [x["code"] for x in r["reasons"]], r)
            ids.append(r["audit_id"])
            seen.add(reason)
        # Audit ids are distinct and increase in the order of the answers
        # on one connection.
        self.assertEqual(ids, sorted(set(ids)))
        self.assertEqual(len(seen), 10)

    def test_check_scope_missing_step_up(self):
        r = self.c.check(tt.check_params(scope="admin"))
        self.assertDecision(r, "deny", "scope_missing")
        self.assertEqual(r["required_scopes"], ["repo:read"])
        self.assertEqual(
            r["www_authenticate"],
            'Bearer error="insufficient_scope", scope="repo:read", '
            'resource_metadata="%s"' % tt.RESOURCE_METADATA)
        failing = [x for x in r["reasons"] if x["code"] == "scope_missing"]
        self.assertEqual(len(failing), 1, r)
        self.assertEqual(failing[0].get("set"), "scope")
        self.assertEqual(failing[0].get("action"), "issues.read")
        self.assertEqual(failing[0].get("resource"), "repo:acme/widgets")

    def test_check_argument_invalid_names_argument(self):
        r = self.c.check(tt.check_params(
            arguments={"owner": "acme", "repo": "a/b"}))
        self.assertDecision(r, "deny", "argument_invalid")
        self.assertIn("repo", [x.get("argument") for x in r["reasons"]], r)

    def test_check_without_audience_claim(self):
        # The server block names an audience: a token without aud fails.
        r = self.c.check(tt.check_params(aud=None))
        self.assertDecision(r, "deny", "audience_mismatch")

    def test_check_missing_sub(self):
        r = self.c.check(tt.check_params(sub=None))
        self.assertDecision(r, "deny", "token_invalid")

    def test_check_unknown_agent_fails_closed(self):
        r = self.c.check(tt.check_params(client_id="stranger"))
        self.assertDecision(r, "deny", "agent_denied")

    def test_check_bearer_without_verifier_never_allows(self):
        # No issuer is configured: a bearer token cannot be verified, so
        # the request must not be allowed (an error, or a deny).
        p = tt.check_params()
        del p["token"]
        p["bearer"] = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9."
        r = self.c.call("check", p)
        if "error" in r:
            self.assertRpcError(r, -32602, id=1)
        else:
            self.assertEqual(r["result"]["decision"], "deny", r)

    def test_policy_status(self):
        st = self.c.result("policy.status")
        self.assertRegex(st["revision"], r"^sha256:[0-9a-f]{64}$")
        self.assertEqual(st["files"], ["github.trine", "tools.trine"])
        now_ms = int(time.time() * 1000)
        self.assertIsInstance(st["loaded_at"], int)
        self.assertLess(abs(now_ms - st["loaded_at"]), 600000)
        counts = st["counts"]
        self.assertEqual(
            {k: counts[k] for k in ("scope", "role", "user", "group",
                                    "agent", "server", "tool", "forbid")},
            {"scope": 3, "role": 2, "user": 3, "group": 1, "agent": 4,
             "server": 1, "tool": 6, "forbid": 1})
        self.assertIsInstance(counts["rules"], int)

    def test_policy_tools(self):
        self.assertEqual(
            self.c.result("policy.tools", {"server": "github"}),
            {"tools": ["get_issue", "create_issue", "delete_repo",
                       "merge_pr", "archive_repo"], "wildcard": False})
        self.assertEqual(self.c.result("policy.tools", {"server": "files"}),
                         {"tools": [], "wildcard": True})
        self.assertEqual(self.c.result("policy.tools", {"server": "none"}),
                         {"tools": [], "wildcard": False})

    def test_policy_tools_bad_params(self):
        self.assertRpcError(self.c.call("policy.tools", {}), -32602, id=1,
                            mentions="server")
        self.assertRpcError(self.c.call("policy.tools", {"server": 7}),
                            -32602, id=2, mentions="server")

    def test_consent_grant_list_revoke(self):
        r = self.c.check(tt.EXAMPLE_PARAMS)
        self.assertEqual(r["decision"], "consent_required")
        g = self.c.result("consent.grant", {"audit_id": r["audit_id"]})
        self.assertEqual(list(g), ["consent_id"])
        cid = g["consent_id"]
        self.assertIsInstance(cid, int)

        for params in ({}, {"user": "alice"},
                       {"user": "alice", "agent": "claude-desktop"}):
            lst = self.c.result("consent.list", params)["consents"]
            self.assertEqual([x["id"] for x in lst], [cid], params)
        row = lst[0]
        self.assertEqual(
            {k: row[k] for k in ("user", "agent", "server", "tool", "mode",
                                 "session", "decision_id")},
            {"user": "alice", "agent": "claude-desktop", "server": "github",
             "tool": "create_issue", "mode": "session",
             "session": "mcp-session-4f2a", "decision_id": r["audit_id"]})
        self.assertIsInstance(row["granted_ms"], int)
        self.assertEqual(
            self.c.result("consent.list", {"user": "bob"})["consents"], [])
        self.assertEqual(
            self.c.result("consent.list", {"agent": "ci-bot"})["consents"],
            [])

        allowed = self.c.check(tt.EXAMPLE_PARAMS)
        self.assertDecision(allowed, "allow", "allow")

        self.assertEqual(
            self.c.result("consent.revoke", {"consent_id": cid}),
            {"revoked": 1})
        self.assertEqual(
            self.c.result("consent.revoke", {"consent_id": cid}),
            {"revoked": 0})
        self.assertEqual(self.c.result("consent.list")["consents"], [])
        self.assertDecision(self.c.check(tt.EXAMPLE_PARAMS),
                            "consent_required", "consent_required")

    def test_consent_revoke_by_user(self):
        ids = []
        for session in ("s1", "s2", "s3"):
            p = dict(tt.EXAMPLE_PARAMS, session=session)
            r = self.c.check(p)
            ids.append(self.c.result(
                "consent.grant", {"audit_id": r["audit_id"]})["consent_id"])
        self.assertEqual(len(set(ids)), 3)
        self.assertEqual(
            self.c.result("consent.revoke", {"user": "bob"}), {"revoked": 0})
        self.assertEqual(
            self.c.result("consent.revoke",
                          {"user": "alice", "tool": "delete_repo"}),
            {"revoked": 0})
        self.assertEqual(
            self.c.result("consent.revoke",
                          {"user": "alice", "agent": "claude-desktop",
                           "server": "github", "tool": "create_issue"}),
            {"revoked": 3})
        self.assertEqual(self.c.result("consent.list")["consents"], [])

    def test_consent_grant_refuses_other_decisions(self):
        allow = self.c.check(tt.check_params())
        self.assertEqual(allow["decision"], "allow")
        deny = self.c.check(tt.check_params(client_id="ci-bot"))
        self.assertEqual(deny["decision"], "deny")
        for aid in (allow["audit_id"], deny["audit_id"], 999999):
            r = self.c.call("consent.grant", {"audit_id": aid})
            self.assertRpcError(r, -32602)
        for bad in ({}, {"audit_id": "1"}, {"audit_id": 1.5},
                    {"audit_id": True}):
            r = self.c.call("consent.grant", bad)
            self.assertRpcError(r, -32602, mentions="audit_id")
        self.assertEqual(self.c.result("consent.list")["consents"], [])

    def test_consent_grant_ttl_validated(self):
        r = self.c.check(tt.EXAMPLE_PARAMS)
        for ttl in (0, -5, "60", 1.5):
            e = self.c.call("consent.grant",
                            {"audit_id": r["audit_id"], "ttl": ttl})
            self.assertRpcError(e, -32602, mentions="ttl")
        g = self.c.result("consent.grant",
                          {"audit_id": r["audit_id"], "ttl": 3600})
        row = self.c.result("consent.list")["consents"][0]
        self.assertEqual(row["id"], g["consent_id"])
        self.assertEqual(row["expires_ms"] - row["granted_ms"], 3600000)

    def test_consent_revoke_bad_params(self):
        for bad in ({}, {"consent_id": "x"}, {"user": 5}):
            self.assertRpcError(self.c.call("consent.revoke", bad), -32602)

    def test_consent_list_bad_params(self):
        self.assertRpcError(self.c.call("consent.list", {"user": 1}),
                            -32602, mentions="user")

    def test_errors_are_not_audited(self):
        self.c.call("nope")
        self.c.call("check", {"server": 1})
        r = self.c.check(tt.check_params())
        with self.d.db() as db:
            n = db.execute("SELECT count(*) FROM decisions").fetchone()[0]
        self.assertEqual(n, 1)
        self.assertEqual(r["audit_id"], 1)

    def test_cli_consent_commands(self):
        r = self.c.check(dict(tt.EXAMPLE_PARAMS, session="cli-s"))
        g = tt.run_cli("consent", "grant", "--socket", self.d.socket,
                       "--audit-id", str(r["audit_id"]))
        self.assertEqual(g.returncode, 0, g.stderr)
        self.assertDecision(
            self.c.check(dict(tt.EXAMPLE_PARAMS, session="cli-s")),
            "allow", "allow")
        lst = tt.run_cli("consent", "list", "--socket", self.d.socket,
                         "--user", "alice", "--json")
        self.assertEqual(lst.returncode, 0, lst.stderr)
        self.assertIn("create_issue", lst.stdout)
        self.assertIn("cli-s", lst.stdout)
        bad = tt.run_cli("consent", "grant", "--socket", self.d.socket,
                         "--audit-id", "999999")
        self.assertEqual(bad.returncode, 1, bad.stdout + bad.stderr)
        rv = tt.run_cli("consent", "revoke", "--socket", self.d.socket,
                        "--user", "alice")
        self.assertEqual(rv.returncode, 0, rv.stderr)
        self.assertDecision(
            self.c.check(dict(tt.EXAMPLE_PARAMS, session="cli-s")),
            "consent_required", "consent_required")
        nosock = tt.run_cli("consent", "list", "--socket",
                            os.path.join(self.d.tmp, "absent.sock"))
        self.assertEqual(nosock.returncode, 3)


if __name__ == "__main__":
    tt.main()
