"""Integration tests of the `trine` command: check, validate, test and fmt.

They run the real binary (TRINE_BIN) against the policy examples of the
repository (TRINE_SOURCE_DIR) and against small policies written into
temporary directories, and compare exit statuses and output exactly.

Python 3 standard library only.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("TRINE_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(HERE))
TRINE_BIN = os.environ.get("TRINE_BIN") or os.path.join(
    SOURCE_DIR, "build", "trine")
EXAMPLES = os.path.join(SOURCE_DIR, "policy-examples")
GITHUB = os.path.join(EXAMPLES, "github")

NOW = 1767225600  # 2026-01-01T00:00:00Z
AUD = "https://mcp.example.com/github"
RM = "https://mcp.example.com/.well-known/oauth-protected-resource"

# The check request of DESIGN.md section 3.1 (its params).
DESIGN_PARAMS = {
    "server": "github", "tool": "create_issue",
    "arguments": {"owner": "acme", "repo": "widgets",
                  "title": "Crash on start"},
    "session": "mcp-session-4f2a",
    "token": {"sub": "alice", "scope": "repo:read repo:write",
              "client_id": "claude-desktop",
              "aud": AUD, "exp": 1893456000, "groups": ["acme-eng"]},
}

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:",
                   "ERROR: LeakSanitizer")


def run(args, stdin=None):
    """Runs trine with args; returns (status, stdout, stderr) as text."""
    p = subprocess.run([TRINE_BIN] + list(args), input=stdin,
                       capture_output=True, timeout=120)
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    for mark in SANITIZER_MARKS:
        if mark in err:
            raise AssertionError("sanitizer report:\n" + err)
    return p.returncode, out, err


def revision(files):
    """The policy revision over [(name, bytes)] in load order (DESIGN 2)."""
    h = hashlib.sha256()
    for name, data in files:
        h.update(name.encode())
        h.update(data)
    return "sha256:" + h.hexdigest()


def github_line(text):
    """The 1-based line of github.trine that holds text (exactly once)."""
    with open(os.path.join(GITHUB, "github.trine"), encoding="utf-8") as f:
        lines = f.read().split("\n")
    hits = [i + 1 for i, line in enumerate(lines) if text in line]
    assert len(hits) == 1, (text, hits)
    return hits[0]


def token(**kw):
    t = {"sub": "alice", "scope": "repo:read", "client_id": "claude-desktop",
         "aud": AUD, "exp": 1893456000}
    t.update(kw)
    return {k: v for k, v in t.items() if v is not None}


def params(tool="get_issue", args=None, tok=None, **kw):
    p = {"server": "github", "tool": tool,
         "arguments": {"owner": "acme", "repo": "widgets"}
         if args is None else args,
         "token": token() if tok is None else tok}
    p.update(kw)
    return p


class TempDirCase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="trine-cli-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def write(self, name, text, sub=None):
        d = self.dir if sub is None else os.path.join(self.dir, sub)
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def check(self, p, *extra, now=NOW):
        path = self.write("request.json", json.dumps(p))
        return run(["check", "--policy", GITHUB, "--request", path,
                    "--now", str(now)] + list(extra))


class CheckExitStatus(TempDirCase):
    def test_allow_is_0(self):
        st, out, err = self.check(params())
        self.assertEqual((st, err), (0, ""))
        self.assertTrue(out.startswith("decision: allow\n"), out)

    def test_deny_is_1(self):
        st, out, _ = self.check(params(tok=token(client_id="ci-bot")))
        self.assertEqual(st, 1)
        self.assertIn("reason:   agent_denied\n", out)

    def test_consent_required_is_2(self):
        st, out, _ = self.check(DESIGN_PARAMS)
        self.assertEqual(st, 2)
        self.assertIn("consent:  session: Let claude-desktop open issues in "
                      "acme/widgets for this session?\n", out)

    def test_usage_errors_are_3(self):
        for args in (["check"], ["check", "--policy", GITHUB],
                     ["check", "--request", "-"],
                     ["check", "--policy", GITHUB, "--request", "-",
                      "--bogus"],
                     ["check", "--policy", GITHUB, "--request", "-",
                      "--now", "yesterday"],
                     ["check", "--policy", GITHUB, "--request"],
                     ["nonsense"], []):
            st, out, err = run(args, stdin=b"{}")
            self.assertEqual(st, 3, args)
            self.assertEqual(out, "", args)
            self.assertNotEqual(err, "", args)

    def test_unknown_command_prints_usage(self):
        st, out, err = run(["frobnicate"])
        self.assertEqual((st, out), (3, ""))
        self.assertTrue(err.startswith('trine: unknown command "frobnicate"'),
                        err)
        self.assertIn("usage: trine <command>", err)

    def test_help_and_version(self):
        st, out, err = run(["--help"])
        self.assertEqual((st, err), (0, ""))
        self.assertIn("usage: trine <command>", out)
        st, out, _ = run(["--version"])
        self.assertEqual(st, 0)
        self.assertRegex(out, r"^trine \d+\.\d+\.\d+\n$")
        st, out, _ = run(["check", "--help"])
        self.assertEqual(st, 0)
        self.assertTrue(out.startswith("usage: trine check"), out)

    def test_policy_load_error_is_3(self):
        self.write("bad.trine", "scope {\n", sub="bad")
        path = self.write("request.json", json.dumps(params()))
        st, out, err = run(["check", "--policy",
                            os.path.join(self.dir, "bad"),
                            "--request", path])
        self.assertEqual((st, out), (3, ""))
        self.assertRegex(err, r"(?m)^bad\.trine:1:\d+: ")

    def test_request_from_stdin(self):
        st, out, _ = run(["check", "--policy", GITHUB, "--request", "-",
                          "--now", str(NOW), "--json"],
                         stdin=json.dumps(params()).encode())
        self.assertEqual(st, 0)
        self.assertEqual(json.loads(out)["decision"], "allow")

    def test_now_decides_expiry(self):
        p = params(tok=token(exp=NOW))
        self.assertEqual(self.check(p, now=NOW + 60)[0], 0)
        st, out, _ = self.check(p, "--json", now=NOW + 61)
        self.assertEqual(st, 1)
        self.assertEqual(json.loads(out)["reason"], "token_expired")

    def test_default_now_is_the_clock(self):
        # Expired in 2001: the clock is past it, whatever it reads.
        path = self.write("request.json",
                          json.dumps(params(tok=token(exp=1000000000))))
        st, out, _ = run(["check", "--policy", GITHUB, "--request", path,
                          "--json"])
        self.assertEqual(st, 1)
        self.assertEqual(json.loads(out)["reason"], "token_expired")


class CheckInvalidRequest(TempDirCase):
    """DESIGN 2.5 Requests: exit 3 with a message naming the field."""

    def expect_invalid(self, text, field):
        path = self.write("request.json", text)
        st, out, err = run(["check", "--policy", GITHUB, "--request", path,
                            "--now", str(NOW)])
        self.assertEqual((st, out), (3, ""), text)
        self.assertRegex(err, r"\b%s\b" % re.escape(field), text)
        return err

    def test_server_not_a_string(self):
        err = self.expect_invalid(json.dumps(params(server=7)), "server")
        self.assertIn("params.server", err)

    def test_tool_not_a_string(self):
        self.expect_invalid(json.dumps(params(tool=["get_issue"])), "tool")

    def test_token_not_an_object(self):
        self.expect_invalid(json.dumps(params(tok="eyJhbGciOi")), "token")

    def test_arguments_not_an_object(self):
        self.expect_invalid(json.dumps(params(args=["acme", "widgets"])),
                            "arguments")

    def test_not_an_object(self):
        self.expect_invalid("[1, 2]", "params")

    def test_not_json(self):
        err = self.expect_invalid('{"server": "github",', "request")
        self.assertIn("not valid JSON", err)

    def test_duplicate_keys_are_refused(self):
        err = self.expect_invalid(
            '{"server": "github", "server": "gitlab", "tool": "x", '
            '"token": {}}', "request")
        self.assertIn("duplicate", err)


class CheckJson(TempDirCase):
    def result(self, p, *extra, status=None):
        st, out, err = self.check(p, "--json", *extra)
        if status is not None:
            self.assertEqual(st, status, out + err)
        self.assertTrue(out.endswith("}\n"), out)
        self.assertEqual(out.count("\n"), 1, out)
        return json.loads(out)

    def rev(self):
        with open(os.path.join(GITHUB, "github.trine"), "rb") as f:
            return revision([("github.trine", f.read())])

    def test_design_example(self):
        res = self.result(DESIGN_PARAMS, status=2)
        self.assertNotIn("audit_id", res)
        self.assertEqual(list(res), ["decision", "reason", "policy_revision",
                                     "consent", "reasons", "matched"])
        self.assertEqual(res["decision"], "consent_required")
        self.assertEqual(res["reason"], "consent_required")
        self.assertEqual(res["policy_revision"], self.rev())
        self.assertEqual(res["consent"], {
            "mode": "session",
            "prompt": "Let claude-desktop open issues in acme/widgets for "
                      "this session?"})
        consent_line = github_line('consent session "Let {agent}')
        self.assertEqual(res["reasons"], [{
            "code": "consent_required",
            "rule": "github.trine:%d" % consent_line}])
        self.assertEqual(res["matched"], [
            {"set": "user", "rule": "github.trine:%d" %
             github_line("allow repo.*, issues.* on \"repo:acme/*\"")},
            {"set": "scope", "rule": "github.trine:%d" %
             github_line('scope "repo:write"')},
            {"set": "agent", "rule": "github.trine:%d" %
             github_line('agent "claude-desktop"')}])

    def test_allow(self):
        res = self.result(params(), status=0)
        self.assertEqual((res["decision"], res["reason"]), ("allow", "allow"))
        self.assertEqual(res["reasons"][0]["code"], "allow")
        self.assertEqual(res["matched"], [
            {"set": "user", "rule": "github.trine:14"},
            {"set": "scope", "rule": "github.trine:8"},
            {"set": "agent", "rule": "github.trine:23"}])
        self.assertNotIn("required_scopes", res)
        self.assertNotIn("www_authenticate", res)

    def test_scope_missing(self):
        res = self.result(params("create_issue",
                                 {"owner": "acme", "repo": "widgets",
                                  "title": "x"}, session="s1"), status=1)
        self.assertEqual((res["decision"], res["reason"]),
                         ("deny", "scope_missing"))
        self.assertEqual(res["required_scopes"], ["repo:write"])
        self.assertEqual(
            res["www_authenticate"],
            'Bearer error="insufficient_scope", scope="repo:write", '
            'resource_metadata="%s"' % RM)
        self.assertEqual(len(res["reasons"]), 1, res["reasons"])
        r = res["reasons"][0]
        self.assertEqual((r["code"], r["set"], r["action"], r["resource"]),
                         ("scope_missing", "scope", "issues.create",
                          "repo:acme/widgets"))
        self.assertIsInstance(r["detail"], str)
        self.assertEqual(list(res)[-2:],
                         ["required_scopes", "www_authenticate"])

    def test_forbidden_names_the_forbid_rule(self):
        res = self.result(params(args={"owner": "acme", "repo": "secrets"}),
                          status=1)
        self.assertEqual(res["reason"], "forbidden")
        self.assertEqual([r["code"] for r in res["reasons"]], ["forbidden"])
        self.assertEqual(res["reasons"][0]["rule"], "github.trine:%d" %
                         github_line('forbid * on "repo:acme/secrets"'))
        self.assertEqual(res["reasons"][0]["resource"], "repo:acme/secrets")

    def test_every_failing_set_is_listed(self):
        p = params(args={"owner": "acme", "repo": "prod-x"},
                   tok=token(sub="bob", client_id="ci-bot"),
                   tool="create_issue")
        p["arguments"]["title"] = "t"
        res = self.result(p, status=1)
        self.assertEqual(res["reason"], "user_denied")
        self.assertEqual([(r["code"], r.get("set")) for r in res["reasons"]],
                         [("user_denied", "user"), ("agent_denied", "agent"),
                          ("scope_missing", "scope")])
        self.assertNotIn("required_scopes", res)

    def test_argument_invalid_names_the_argument(self):
        res = self.result(params(args={"owner": "acme/x", "repo": "w"}),
                          status=1)
        self.assertEqual(res["reason"], "argument_invalid")
        self.assertEqual(res["reasons"][0]["argument"], "owner")
        self.assertEqual(res["reasons"][0]["rule"], "github.trine:%d" %
                         github_line('needs issues.read on'))

    def test_nul_in_an_argument_is_a_control_character(self):
        # "\u0000" is valid JSON; U+0000 is a control character (DESIGN
        # section 2.5), so the template refuses it like U+0001.
        for bad in ("widgets\u0000", "wid\u0001gets"):
            res = self.result(params(args={"owner": "acme", "repo": bad}),
                              status=1)
            self.assertEqual(res["reason"], "argument_invalid")
            self.assertEqual(res["reasons"][0]["argument"], "repo")

    def test_seeded_consent_allows(self):
        grants = self.write("grants.json", json.dumps([{
            "user": "alice", "agent": "claude-desktop", "server": "github",
            "tool": "create_issue", "mode": "session",
            "session": "mcp-session-4f2a"}]))
        res = self.result(DESIGN_PARAMS, "--consents", grants, status=0)
        self.assertEqual(res["decision"], "allow")

    def test_bad_consents_file_is_3(self):
        grants = self.write("grants.json", json.dumps([{"user": "alice"}]))
        path = self.write("request.json", json.dumps(DESIGN_PARAMS))
        st, out, err = run(["check", "--policy", GITHUB, "--request", path,
                            "--consents", grants])
        self.assertEqual((st, out), (3, ""))
        self.assertIn("consents[0].agent", err)

    def test_json_matches_the_human_summary(self):
        st, out, _ = self.check(DESIGN_PARAMS)
        self.assertEqual(st, 2)
        self.assertIn("  - consent_required at github.trine:%d\n" %
                      github_line('consent session "Let'), out)
        self.assertIn("policy_revision: %s\n" % self.rev(), out)


# Three errors in two files, each at a position the grammar fixes.
BROKEN_A = """\
scope "fine" { allow repo.read on "repo:*" }
rol reader { allow repo.read on "repo:*" }
scope "s" { allow on "repo:*" }
"""
BROKEN_B = """\
forbid * "repo:acme/secrets"
"""


class Validate(TempDirCase):
    def test_examples_are_valid(self):
        for name in sorted(os.listdir(EXAMPLES)):
            d = os.path.join(EXAMPLES, name)
            st, out, err = run(["validate", d])
            self.assertEqual(st, 0, name + err)
            files = sorted(f for f in os.listdir(d) if f.endswith(".trine"))
            data = []
            for f in files:
                with open(os.path.join(d, f), "rb") as fh:
                    data.append((f, fh.read()))
            self.assertEqual(out, "ok: %d file%s, revision %s, 0 warnings\n"
                             % (len(files), "" if len(files) == 1 else "s",
                                revision(data)), name)
            self.assertEqual(err, "", name)

    def test_errors_in_two_files(self):
        self.write("a.trine", BROKEN_A)
        self.write("b.trine", BROKEN_B)
        st, out, err = run(["validate", self.dir])
        self.assertEqual((st, out), (1, ""))
        lines = err.splitlines()
        self.assertEqual(len(lines), 3, err)
        for line in lines:
            self.assertRegex(line, r"^[ab]\.trine:\d+:\d+: \S.*$")
        self.assertEqual([line.split(": ")[0] for line in lines],
                         ["a.trine:2:1", "a.trine:3:19", "b.trine:1:10"])
        self.assertIn('"rol"', lines[0])

    def test_compile_errors_name_file_line_col(self):
        self.write("a.trine", 'user "alice" { roles mantainer }\n')
        self.write("b.trine",
                   'role maintainer { allow repo.read on /repo:(/ }\n')
        st, out, err = run(["validate", self.dir])
        self.assertEqual((st, out), (1, ""))
        lines = err.splitlines()
        self.assertEqual(len(lines), 2, err)
        self.assertTrue(lines[0].startswith("a.trine:1:22: "), lines)
        self.assertIn("mantainer", lines[0])
        self.assertTrue(lines[1].startswith("b.trine:1:38: "), lines)

    def test_warnings_alone_pass(self):
        src = ('scope "s" { allow repo.read on "repo:*" }\n'
               'role unused { allow repo.read on "repo:*" }\n'
               'role reader { allow repo.read on "repo:*" }\n'
               'user * { roles reader }\n'
               'agent * { allow repo.read on "repo:*" }\n'
               'server "github" { audience "x" }\n'
               'tool "github" "t" { needs repo.read on "repo:{r}" }\n')
        self.write("p.trine", src)
        st, out, err = run(["validate", self.dir])
        self.assertEqual(st, 0, err)
        lines = err.splitlines()
        self.assertEqual(len(lines), 1, err)
        self.assertRegex(lines[0], r"^p\.trine:2:\d+: warning: .*unused")
        self.assertEqual(out, "ok: 1 file, revision %s, 1 warning\n" %
                         revision([("p.trine", src.encode())]))

    def test_empty_and_missing_directories_fail(self):
        st, out, err = run(["validate", self.dir])
        self.assertEqual((st, out), (1, ""))
        self.assertIn(".trine", err)
        st, out, err = run(["validate", os.path.join(self.dir, "nope")])
        self.assertEqual((st, out), (1, ""))
        self.assertNotEqual(err, "")

    def test_usage(self):
        self.assertEqual(run(["validate"])[0], 3)
        self.assertEqual(run(["validate", "a", "b"])[0], 3)
        self.assertEqual(run(["validate", "--strict", GITHUB])[0], 3)


class Test(TempDirCase):
    def policy_copy(self):
        shutil.copy(os.path.join(GITHUB, "github.trine"), self.dir)

    def case(self, name, p, expect, **kw):
        c = {"name": name, "now": NOW, "request": p, "expect": expect}
        c.update(kw)
        return c

    def test_examples_pass(self):
        for name in sorted(os.listdir(EXAMPLES)):
            st, out, err = run(["test", os.path.join(EXAMPLES, name)])
            self.assertEqual(st, 0, name + out + err)
            self.assertRegex(out, r"^\d+ passed, 0 failed\n$")
            self.assertGreater(int(out.split()[0]), 40, name)

    def test_failures_are_reported(self):
        self.policy_copy()
        cases = [
            self.case("passes", params(),
                      {"decision": "allow", "reason": "allow"}),
            self.case("wrong reason", params(tok=token(client_id="ci-bot")),
                      {"decision": "deny", "reason": "scope_missing"}),
            self.case("absent header",
                      params(tok=token(client_id="ci-bot")),
                      {"www_authenticate": "Bearer"}),
            self.case("wrong scopes",
                      params("create_issue", {"owner": "acme",
                                              "repo": "widgets",
                                              "title": "x"}),
                      {"required_scopes": ["admin"]}),
        ]
        self.write("b.tests.json", json.dumps(cases))
        self.write("a.tests.json", json.dumps(cases[:1]))
        st, out, err = run(["test", self.dir])
        self.assertEqual(st, 1, err)
        self.assertEqual(out.splitlines(), [
            'FAIL b.tests.json: wrong reason: reason: expected '
            '"scope_missing", got "agent_denied"',
            'FAIL b.tests.json: absent header: www_authenticate: expected '
            '"Bearer", got (absent)',
            'FAIL b.tests.json: wrong scopes: required_scopes: expected '
            '["admin"], got ["repo:write"]',
            "2 passed, 3 failed"])

    def test_seeded_always_grant_is_consumed_per_case(self):
        self.policy_copy()
        p = params("delete_repo", tok=token(scope="admin",
                                            client_id="ops-console"))
        grant = {"user": "alice", "agent": "ops-console", "server": "github",
                 "tool": "delete_repo", "mode": "always",
                 "arguments": {"owner": "acme", "repo": "widgets"}}
        cases = [self.case("first", p, {"decision": "allow"},
                           consents=[grant]),
                 self.case("second: a new case, a fresh grant", p,
                           {"decision": "allow"}, consents=[grant]),
                 self.case("no grant", p,
                           {"decision": "consent_required"})]
        self.write("t.tests.json", json.dumps(cases))
        st, out, _ = run(["test", self.dir])
        self.assertEqual((st, out), (0, "3 passed, 0 failed\n"))

    def test_seed_session_in_any_mode(self):
        # DESIGN 6.1 lists a session for every seeded grant; only a session
        # grant is bound to it, and one without a non-empty session never
        # counts.
        self.policy_copy()
        p = params("create_issue", {"owner": "acme", "repo": "widgets",
                                    "title": "x"}, session="s1",
                   tok=token(scope="repo:write"))
        grant = {"user": "alice", "agent": "claude-desktop",
                 "server": "github", "tool": "create_issue",
                 "mode": "session", "session": "s1"}
        delete = params("delete_repo", tok=token(scope="admin",
                                                 client_id="ops-console"))
        always = {"user": "alice", "agent": "ops-console",
                  "server": "github", "tool": "delete_repo",
                  "mode": "always", "session": "s1"}
        cases = [
            self.case("session grant", p, {"decision": "allow"},
                      consents=[grant]),
            self.case("other session", dict(p, session="s2"),
                      {"decision": "consent_required"}, consents=[grant]),
            self.case("null session grant", p,
                      {"decision": "consent_required"},
                      consents=[dict(grant, session=None)]),
            self.case("empty session grant", dict(p, session=""),
                      {"decision": "consent_required"},
                      consents=[dict(grant, session="")]),
            self.case("always grant with a session", delete,
                      {"decision": "allow"}, consents=[always]),
            self.case("always grant with a null session", delete,
                      {"decision": "allow"},
                      consents=[dict(always, session=None)]),
            self.case("bad session", p, {"decision": "allow"},
                      consents=[dict(grant, session=1)]),
        ]
        self.write("t.tests.json", json.dumps(cases))
        st, out, _ = run(["test", self.dir])
        self.assertEqual((st, out), (1, (
            "FAIL t.tests.json: bad session: consents[0].session must be a "
            "string or null\n6 passed, 1 failed\n")))

    def test_expected_null_means_absent(self):
        self.policy_copy()
        cases = [
            self.case("allow has no step-up", params(),
                      {"decision": "allow", "required_scopes": None,
                       "www_authenticate": None}),
            self.case("step-up present",
                      params("create_issue", {"owner": "acme",
                                              "repo": "widgets",
                                              "title": "x"}),
                      {"www_authenticate": None}),
        ]
        self.write("t.tests.json", json.dumps(cases))
        st, out, _ = run(["test", self.dir])
        self.assertEqual(st, 1)
        self.assertEqual(out.splitlines(), [
            'FAIL t.tests.json: step-up present: www_authenticate: expected '
            'null, got "Bearer error=\\"insufficient_scope\\", '
            'scope=\\"repo:write\\", resource_metadata=\\"'
            + RM + '\\""',
            "1 passed, 1 failed"])

    def test_malformed_files(self):
        self.policy_copy()
        self.write("1.tests.json", "[{")
        self.write("2.tests.json", '{"name": "x"}')
        self.write("3.tests.json", "[]")
        self.write("4.tests.json", json.dumps([
            {"name": "no expect", "request": params()},
            {"name": "empty expect", "request": params(), "expect": {}},
            {"name": "typo", "request": params(),
             "expect": {"decison": "allow"}},
            {"request": params(), "expect": {"decision": "allow"}},
            {"name": "bad grant", "request": params(),
             "consents": [{"user": "alice", "mode": "forever"}],
             "expect": {"decision": "allow"}},
            {"name": "bad request", "request": {"server": 1},
             "expect": {"decision": "deny"}},
        ]))
        st, out, _ = run(["test", self.dir])
        self.assertEqual(st, 1)
        lines = out.splitlines()
        self.assertTrue(lines[0].startswith(
            "FAIL 1.tests.json: not valid JSON: line 1"), lines[0])
        self.assertEqual(lines[1:], [
            "FAIL 2.tests.json: must hold a JSON array of cases",
            "FAIL 3.tests.json: holds no case",
            'FAIL 4.tests.json: no expect: "expect" must be an object',
            'FAIL 4.tests.json: empty expect: "expect" is empty: a case '
            'must expect something',
            'FAIL 4.tests.json: typo: "decison": unknown key in "expect"; '
            'expected decision, reason, required_scopes or '
            'www_authenticate',
            'FAIL 4.tests.json: case 4: "name" must be a non-empty string',
            "FAIL 4.tests.json: bad grant: consents[0].agent must be a "
            "non-empty string",
            "FAIL 4.tests.json: bad request: invalid request: "
            "params.server must be a string",
            "0 passed, 9 failed"])

    def test_no_tests_file(self):
        self.policy_copy()
        st, out, err = run(["test", self.dir])
        self.assertEqual(st, 1)
        self.assertEqual(out, "0 passed, 0 failed\n")
        self.assertIn("no *.tests.json in", err)

    def test_broken_policy(self):
        self.write("x.trine", "scope {\n")
        self.write("x.tests.json", "[]")
        st, out, err = run(["test", self.dir])
        self.assertEqual((st, out), (1, ""))
        self.assertRegex(err, r"(?m)^x\.trine:1:\d+: ")

    def test_usage(self):
        self.assertEqual(run(["test"])[0], 3)
        self.assertEqual(run(["test", GITHUB, GITHUB])[0], 3)


MESSY = """\
# header comment
scope   "a"{allow repo.read,issues.read on "repo:*"}
role r {
allow repo.read on "repo:*"   # why
}
"""


class Fmt(TempDirCase):
    def test_prints_canonical_form(self):
        path = self.write("m.trine", MESSY)
        st, out, err = run(["fmt", path])
        self.assertEqual((st, err), (0, ""))
        self.assertIn('scope "a" { allow repo.read, issues.read on '
                      '"repo:*" }\n', out)
        self.assertTrue(out.startswith("# header comment\n"), out)
        self.assertIn("# why", out)
        self.assertTrue(out.endswith("\n") and not out.endswith("\n\n"))
        with open(path, encoding="utf-8") as f:
            self.assertEqual(f.read(), MESSY)  # not rewritten

    def test_idempotent(self):
        path = self.write("m.trine", MESSY)
        once = run(["fmt", path])[1]
        again = run(["fmt", "-"], stdin=once.encode())
        self.assertEqual(again, (0, once, ""))
        for name in sorted(os.listdir(EXAMPLES)):
            d = os.path.join(EXAMPLES, name)
            for f in sorted(os.listdir(d)):
                if f.endswith(".trine"):
                    first = run(["fmt", os.path.join(d, f)])
                    self.assertEqual(first[0], 0, f)
                    second = run(["fmt", "-"], stdin=first[1].encode())
                    self.assertEqual(second[1], first[1], f)

    def test_write_and_check(self):
        path = self.write("m.trine", MESSY)
        os.chmod(path, 0o640)
        canonical = run(["fmt", path])[1]
        st, out, _ = run(["fmt", "--check", path])
        self.assertEqual((st, out), (1, path + "\n"))
        st, out, err = run(["fmt", "--write", path])
        self.assertEqual((st, out, err), (0, "", ""))
        with open(path, encoding="utf-8") as f:
            self.assertEqual(f.read(), canonical)
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o640)
        self.assertEqual(sorted(os.listdir(self.dir)), ["m.trine"])
        self.assertEqual(run(["fmt", "--check", path]), (0, "", ""))
        # --write after the file, and an unchanged file is left alone.
        before = os.stat(path).st_mtime_ns
        self.assertEqual(run(["fmt", path, "--write"])[0], 0)
        self.assertEqual(os.stat(path).st_mtime_ns, before)

    def test_broken_file_does_not_stop_the_others(self):
        bad = self.write("bad.trine", 'scope "x" { allow on "repo:*" }\n')
        good = self.write("good.trine", MESSY)
        st, out, err = run(["fmt", bad, good])
        self.assertEqual(st, 1)
        self.assertIn('scope "a" { allow', out)
        self.assertRegex(err, r"(?m)^%s:1:\d+: " % re.escape(bad))
        st, out, _ = run(["fmt", "--write", bad, good])
        self.assertEqual((st, out), (1, ""))
        with open(good, encoding="utf-8") as f:
            self.assertIn('scope "a" { allow', f.read())
        with open(bad, encoding="utf-8") as f:
            self.assertEqual(f.read(), 'scope "x" { allow on "repo:*" }\n')

    def test_usage(self):
        path = self.write("m.trine", MESSY)
        self.assertEqual(run(["fmt"])[0], 3)
        self.assertEqual(run(["fmt", "--frob", path])[0], 3)
        self.assertEqual(run(["fmt", "--write", "--check", path])[0], 3)
        self.assertEqual(run(["fmt", "--write", "-"], stdin=b"")[0], 3)
        st, _, err = run(["fmt", os.path.join(self.dir, "missing.trine")])
        self.assertEqual(st, 1)
        self.assertIn("cannot read", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
