"""trine.Client against a real trined serving policy-examples/github."""

from __future__ import annotations

import builtins
import threading
import unittest
from typing import Any, Dict, List

import support
from support import DaemonTestCase, token

import trine

REVISION_PREFIX = "sha256:"
RESOURCE_METADATA = ("https://mcp.example.com/.well-known/"
                     "oauth-protected-resource")

# Every reason the github policy can produce; the example cases must
# exercise each one through the client.
GITHUB_REASONS = {"allow", "token_expired", "token_invalid",
                  "audience_mismatch", "unknown_tool", "argument_invalid",
                  "forbidden", "user_denied", "agent_denied",
                  "scope_missing", "consent_required"}


def check_case(client: trine.Client, request: Dict[str, Any]
               ) -> trine.Decision:
    """Sends one tests.json request through the client."""
    return client.check(request["server"], request["tool"],
                        request.get("arguments"), token=request.get("token"),
                        session=request.get("session"))


class ExampleDecisionsTest(DaemonTestCase):
    """The cases of policy-examples/github/github.tests.json, as the
    client returns them."""

    def setUp(self) -> None:
        self.client = trine.Client(self.daemon.socket)
        self.addCleanup(self.client.close)

    def test_allow(self) -> None:
        d = self.client.check(
            "github", "get_issue", {"owner": "acme", "repo": "widgets"},
            token=token(scope="repo:read"))
        self.assertIsInstance(d, trine.Decision)
        self.assertEqual(d.decision, "allow")
        self.assertEqual(d.reason, "allow")
        self.assertIs(d.allowed, True)
        self.assertEqual(d.required_scopes, [])
        self.assertIsNone(d.www_authenticate)
        self.assertIsNone(d.consent_mode)
        self.assertIsNone(d.consent_prompt)
        self.assertIsInstance(d.audit_id, int)
        self.assertGreater(d.audit_id, 0)
        self.assertEqual(d.policy_revision,
                         self.client.policy_status()["revision"])
        self.assertTrue(d.policy_revision.startswith(REVISION_PREFIX))
        self.assertEqual(d.reasons,
                         [{"code": "allow", "rule": "github.trine:29"}])
        self.assertEqual(d.matched, [
            {"set": "user", "rule": "github.trine:14"},
            {"set": "scope", "rule": "github.trine:8"},
            {"set": "agent", "rule": "github.trine:23"}])
        self.assertEqual(d.raw["audit_id"], d.audit_id)
        with self.assertRaises(Exception):
            d.decision = "deny"  # type: ignore[misc]

    def test_every_example_case(self) -> None:
        seen = set()
        ran = 0
        for case in support.load_cases():
            if case.get("consents") or not support.time_independent(case):
                # Seeded grants and a fixed clock exist only in
                # `trine test`; the consent flow is tested below.
                continue
            expect = case["expect"]
            with self.subTest(case["name"]):
                d = check_case(self.client, case["request"])
                self.assertEqual((d.decision, d.reason),
                                 (expect["decision"], expect["reason"]))
                self.assertIs(d.allowed, expect["decision"] == "allow")
                if "required_scopes" in expect:
                    self.assertEqual(d.required_scopes,
                                     expect["required_scopes"])
                if "www_authenticate" in expect:
                    self.assertEqual(d.www_authenticate,
                                     expect["www_authenticate"])
                if d.reason != "scope_missing":
                    self.assertEqual(d.required_scopes, [])
                    self.assertIsNone(d.www_authenticate)
                self.assertEqual(d.reasons[0]["code"], d.reason)
                seen.add(d.reason)
                ran += 1
        self.assertGreaterEqual(ran, 40)
        self.assertEqual(seen, GITHUB_REASONS)

    def test_scope_missing_steps_up(self) -> None:
        d = self.client.check(
            "github", "create_issue",
            {"owner": "acme", "repo": "widgets", "title": "x"},
            token=token(scope="repo:read"), session="s1")
        self.assertEqual((d.decision, d.reason), ("deny", "scope_missing"))
        self.assertIs(d.allowed, False)
        self.assertEqual(d.required_scopes, ["repo:write"])
        self.assertEqual(
            d.www_authenticate,
            'Bearer error="insufficient_scope", scope="repo:write", '
            'resource_metadata="%s"' % RESOURCE_METADATA)
        self.assertEqual(d.reasons, [{
            "code": "scope_missing", "set": "scope",
            "action": "issues.create", "resource": "repo:acme/widgets",
            "detail": "no scope of the token allows it"}])

    def test_delete_repo_steps_up_to_admin(self) -> None:
        d = self.client.check(
            "github", "delete_repo", {"owner": "acme", "repo": "widgets"},
            token=token(client_id="ops-console", scope="repo:write"))
        self.assertEqual(d.required_scopes, ["admin"])
        self.assertEqual(
            d.www_authenticate,
            'Bearer error="insufficient_scope", scope="admin", '
            'resource_metadata="%s"' % RESOURCE_METADATA)

    def test_forbidden_names_the_rule(self) -> None:
        d = self.client.check(
            "github", "get_issue", {"owner": "acme", "repo": "secrets"},
            token=token(scope="repo:read"))
        self.assertEqual((d.decision, d.reason, d.allowed),
                         ("deny", "forbidden", False))
        self.assertEqual(d.reasons, [{
            "code": "forbidden", "action": "issues.read",
            "resource": "repo:acme/secrets", "rule": "github.trine:46",
            "detail": "an absolute limit of the policy forbids it"}])

    def test_threads_share_one_client(self) -> None:
        """Eight threads, one client: every answer is the right one."""
        results: List[Any] = []
        lock = threading.Lock()

        def work(n: int) -> None:
            for i in range(25):
                repo = "secrets" if (n + i) % 3 == 0 else "r%d-%d" % (n, i)
                try:
                    d = self.client.check(
                        "github", "get_issue",
                        {"owner": "acme", "repo": repo},
                        token=token(scope="repo:read"))
                    got: Any = (repo, d.reason, d.audit_id)
                except Exception as e:  # noqa: BLE001 - asserted below
                    got = (repo, repr(e), None)
                with lock:
                    results.append(got)

        threads = [threading.Thread(target=work, args=(n,))
                   for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(len(results), 200)
        for repo, reason, _ in results:
            self.assertEqual(
                reason, "forbidden" if repo == "secrets" else "allow")
        self.assertEqual(len({r[2] for r in results}), 200)


class ConsentTest(DaemonTestCase):
    """consent_required, then grant, list and revoke."""

    def setUp(self) -> None:
        self.client = trine.Client(self.daemon.socket)
        self.addCleanup(self.client.close)

    def create_issue(self, session: str,
                     agent: str = "claude-desktop") -> trine.Decision:
        return self.client.check(
            "github", "create_issue",
            {"owner": "acme", "repo": "widgets", "title": "Crash on start"},
            token=token(client_id=agent), session=session)

    def test_session_grant_list_and_revoke(self) -> None:
        d = self.create_issue("py-session-1")
        self.assertEqual((d.decision, d.reason, d.allowed),
                         ("consent_required", "consent_required", False))
        self.assertEqual(d.consent_mode, "session")
        self.assertEqual(
            d.consent_prompt,
            "Let claude-desktop open issues in acme/widgets for this "
            "session?")
        cid = self.client.grant_consent(d.audit_id)
        self.assertIsInstance(cid, int)
        self.assertGreater(cid, 0)

        # The same call now runs, and so does the next one in the session.
        for _ in range(2):
            again = self.create_issue("py-session-1")
            self.assertEqual((again.decision, again.reason), ("allow",
                                                              "allow"))
            self.assertIs(again.allowed, True)
        # Another session is asked again.
        self.assertEqual(self.create_issue("py-session-2").decision,
                         "consent_required")

        mine = [c for c in self.client.list_consents(user="alice",
                                                     agent="claude-desktop")
                if c["id"] == cid]
        self.assertEqual(len(mine), 1)
        grant = mine[0]
        self.assertEqual(
            {k: grant[k] for k in ("user", "agent", "server", "tool",
                                   "mode", "session", "expires_ms",
                                   "used_ms", "decision_id")},
            {"user": "alice", "agent": "claude-desktop",
             "server": "github", "tool": "create_issue", "mode": "session",
             "session": "py-session-1", "expires_ms": None,
             "used_ms": None, "decision_id": d.audit_id})
        self.assertIsInstance(grant["granted_ms"], int)
        self.assertEqual(self.client.list_consents(user="nobody"), [])

        self.assertEqual(self.client.revoke_consent(cid), 1)
        self.assertEqual(self.create_issue("py-session-1").reason,
                         "consent_required")
        self.assertNotIn(cid, [c["id"] for c in
                               self.client.list_consents()])
        self.assertEqual(self.client.revoke_consent(cid), 0)

    def test_always_grant_is_used_once(self) -> None:
        args = {"owner": "acme", "repo": "widgets"}
        ops = token(client_id="ops-console", scope="admin")
        d = self.client.check("github", "delete_repo", args, token=ops)
        self.assertEqual(d.decision, "consent_required")
        self.assertEqual(d.consent_mode, "always")
        self.assertEqual(d.consent_prompt,
                         "Delete acme/widgets? This cannot be undone.")
        self.client.grant_consent(d.audit_id)
        allowed = self.client.check("github", "delete_repo", args,
                                    token=ops)
        self.assertEqual(allowed.decision, "allow")
        again = self.client.check("github", "delete_repo", args, token=ops)
        self.assertEqual(again.decision, "consent_required")

    def test_revoke_by_user_agent_and_tool(self) -> None:
        ids = []
        for session in ("py-rv-1", "py-rv-2"):
            d = self.create_issue(session, agent="ops-console")
            self.assertEqual(d.decision, "consent_required")
            ids.append(self.client.grant_consent(d.audit_id, ttl=3600))
        live = {c["id"]: c for c in self.client.list_consents(
            user="alice", agent="ops-console")}
        self.assertEqual(sorted(live), sorted(ids))
        for cid in ids:
            self.assertIsInstance(live[cid]["expires_ms"], int)
        self.assertEqual(self.client.revoke_consent(
            user="alice", agent="ops-console", server="github",
            tool="create_issue"), 2)
        self.assertEqual(self.client.list_consents(user="alice",
                                                   agent="ops-console"), [])
        self.assertEqual(self.create_issue("py-rv-1",
                                           agent="ops-console").decision,
                         "consent_required")

    def test_grant_twice_is_refused(self) -> None:
        d = self.create_issue("py-twice")
        cid = self.client.grant_consent(d.audit_id)
        with self.assertRaises(trine.InvalidParams) as cm:
            self.client.grant_consent(d.audit_id)
        self.assertEqual(cm.exception.code, -32602)
        self.assertEqual(cm.exception.message,
                         "params.audit_id: decision %d was already granted "
                         "(consent %d); one decision makes one grant: check "
                         "again for a new consent_required decision"
                         % (d.audit_id, cid))
        self.assertEqual(self.client.revoke_consent(cid), 1)


class RpcErrorTest(DaemonTestCase):
    """Requests the daemon refuses raise RpcError with its code."""

    def setUp(self) -> None:
        self.client = trine.Client(self.daemon.socket)
        self.addCleanup(self.client.close)

    def assertRpcError(self, cls: type, code: int, message: str,
                       fn: Any, *args: Any, **kw: Any) -> None:
        with self.assertRaises(cls) as cm:
            fn(*args, **kw)
        e = cm.exception
        self.assertIsInstance(e, trine.RpcError)
        self.assertIsInstance(e, trine.Error)
        self.assertEqual((e.code, e.message, e.data), (code, message, None))
        self.assertEqual(str(e), "%d %s" % (code, message))

    def test_check_params(self) -> None:
        self.assertRpcError(trine.InvalidParams, trine.INVALID_PARAMS,
                            "params.server must be a string",
                            self.client.check, 1, "get_issue", {},
                            token=token())
        self.assertRpcError(trine.InvalidParams, -32602,
                            "params.arguments must be an object",
                            self.client.check, "github", "get_issue", [1],
                            token=token())
        self.assertRpcError(trine.InvalidParams, -32602,
                            "params.token is required",
                            self.client.check, "github", "get_issue", {})

    def test_consent_params(self) -> None:
        self.assertRpcError(trine.InvalidParams, -32602,
                            "params.audit_id: no decision with id 999999",
                            self.client.grant_consent, 999999)
        self.assertRpcError(trine.InvalidParams, -32602,
                            "params.ttl must be a positive integer",
                            self.client.grant_consent, 1, ttl=0)
        self.assertRpcError(trine.InvalidParams, -32602,
                            "params.consent_id or params.user is required",
                            self.client.revoke_consent)
        self.assertRpcError(trine.InvalidParams, -32602,
                            "params: give consent_id or user, not both",
                            self.client.revoke_consent, 1, user="alice")
        allow = self.client.check("github", "get_issue",
                                  {"owner": "acme", "repo": "widgets"},
                                  token=token())
        self.assertRpcError(trine.InvalidParams, -32602,
                            "params.audit_id: decision %d is allow, not "
                            "consent_required" % allow.audit_id,
                            self.client.grant_consent, allow.audit_id)

    def test_unknown_method(self) -> None:
        self.assertRpcError(trine.MethodNotFound, trine.METHOD_NOT_FOUND,
                            'unknown method "policy.reload"',
                            self.client._request, "policy.reload", None)

    def test_error_keeps_the_connection(self) -> None:
        self.assertTrue(self.client.ping())
        sock = self.client._sock
        with self.assertRaises(trine.InvalidParams):
            self.client.policy_tools(5)  # type: ignore[arg-type]
        self.assertTrue(self.client.ping())
        self.assertIs(self.client._sock, sock)

    def test_unencodable_arguments_are_not_sent(self) -> None:
        with self.assertRaises(ValueError):
            self.client.check("github", "get_issue", {"n": float("nan")},
                              token=token())
        with self.assertRaises(TypeError):
            self.client.check("github", "get_issue", {"n": object()},
                              token=token())
        self.assertTrue(self.client.ping())


class MethodsTest(DaemonTestCase):
    """ping, policy.status and policy.tools."""

    def test_methods(self) -> None:
        with trine.Client(self.daemon.socket, timeout=10) as client:
            self.assertIs(client.ping(), True)
            status = client.policy_status()
            self.assertTrue(status["revision"].startswith(REVISION_PREFIX))
            self.assertEqual(len(status["revision"]), 7 + 64)
            self.assertEqual(status["files"], ["github.trine"])
            self.assertIsInstance(status["loaded_at"], int)
            self.assertEqual(status["counts"], {
                "scope": 3, "role": 2, "user": 2, "group": 1, "agent": 4,
                "server": 1, "tool": 3, "forbid": 1, "rules": 11})
            self.assertEqual(client.policy_tools("github"), {
                "tools": ["get_issue", "create_issue", "delete_repo"],
                "wildcard": False})
            self.assertEqual(client.policy_tools("gitlab"),
                             {"tools": [], "wildcard": False})
        with self.assertRaises(trine.ConnectionError) as cm:
            client.ping()
        self.assertEqual(str(cm.exception), "the client is closed")


class RestartTest(unittest.TestCase):
    """The daemon restarts under a live client."""

    def setUp(self) -> None:
        if not support.os.access(support.TRINED_BIN, support.os.X_OK):
            self.skipTest("no trined binary at %s" % support.TRINED_BIN)
        self.daemon = support.Daemon()
        self.addCleanup(self.daemon.cleanup)
        self.daemon.start()

    def test_next_call_reconnects(self) -> None:
        client = trine.Client(self.daemon.socket)
        self.addCleanup(client.close)
        args = {"owner": "acme", "repo": "widgets"}
        first = client.check("github", "get_issue", args, token=token())
        self.assertEqual(first.decision, "allow")
        old = client._sock

        self.daemon.stop()
        with self.assertRaises(trine.ConnectionError) as cm:
            client.ping()
        self.assertEqual(str(cm.exception),
                         "cannot connect to trined at %s: no such socket "
                         "(is trined running?)" % self.daemon.socket)

        self.daemon.start()
        second = client.check("github", "get_issue", args, token=token())
        self.assertEqual(second.decision, "allow")
        self.assertEqual(second.audit_id, first.audit_id + 1)
        self.assertIsNot(client._sock, old)
        self.assertIsNotNone(client._sock)

    def test_check_right_after_restart(self) -> None:
        """The idle connection is found closed before the check is
        written, so the check goes to the new daemon exactly once."""
        client = trine.Client(self.daemon.socket)
        self.addCleanup(client.close)
        args = {"owner": "acme", "repo": "widgets"}
        first = client.check("github", "get_issue", args, token=token())
        self.daemon.stop()
        self.daemon.start()
        second = client.check("github", "get_issue", args, token=token())
        self.assertEqual(second.decision, "allow")
        self.assertEqual(second.audit_id, first.audit_id + 1)


class MissingSocketTest(unittest.TestCase):

    def test_missing_socket(self) -> None:
        path = "/nonexistent-trine-dir/trine.sock"
        client = trine.Client(path)
        with self.assertRaises(trine.ConnectionError) as cm:
            client.check("github", "get_issue", {}, token=token())
        self.assertEqual(str(cm.exception),
                         "cannot connect to trined at %s: no such socket "
                         "(is trined running?)" % path)
        self.assertIsInstance(cm.exception, builtins.ConnectionError)
        self.assertIsInstance(cm.exception, trine.Error)
        self.assertNotIsInstance(cm.exception, trine.ProtocolError)

    def test_stale_socket(self) -> None:
        tmp = support.tmp_socket_dir()
        self.addCleanup(support.shutil.rmtree, tmp, True)
        path = support.os.path.join(tmp, "stale.sock")
        s = support.socket.socket(support.socket.AF_UNIX)
        s.bind(path)
        s.close()
        with self.assertRaises(trine.ConnectionError) as cm:
            trine.Client(path).ping()
        self.assertEqual(str(cm.exception),
                         "cannot connect to trined at %s: connection "
                         "refused (trined is not running on it)" % path)

    def test_timeout_must_be_positive(self) -> None:
        for bad in (0, -1, float("nan"), float("inf")):
            with self.assertRaises(ValueError):
                trine.Client("/x", timeout=bad)
        with self.assertRaises(TypeError):
            trine.Client("/x", timeout=None)  # type: ignore[arg-type]


if __name__ == "__main__":
    unittest.main()
