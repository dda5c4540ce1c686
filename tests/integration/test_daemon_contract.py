"""trined, the store and the CLI read against DESIGN.md sentence by
sentence: the shapes of section 3 (results, policy.status, policy.tools,
the consent methods and every JSON-RPC error), the audit schema and the
hash chain of section 4 recomputed from the table alone, `trine audit`
(table, json, csv, filters, verify, stats) and `trine consent` of section
6. Each test states the sentence it holds the daemon to."""

import csv
import hashlib
import io
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trinetest as tt  # noqa: E402

# DESIGN.md section 4, column by column: (name, declared type, NOT NULL,
# primary key); nothing more. What trine keeps beside a few decisions
# (args_sha256, token) is in its own table, decision_facts (docs/audit.md).
DECISIONS_COLUMNS = [
    ("id", "INTEGER", 0, 1), ("ts_ms", "INTEGER", 1, 0),
    ("policy_rev", "TEXT", 1, 0), ("server", "TEXT", 1, 0),
    ("tool", "TEXT", 1, 0), ("user", "TEXT", 0, 0), ("agent", "TEXT", 0, 0),
    ("chain", "TEXT", 0, 0), ("session", "TEXT", 0, 0),
    ("decision", "TEXT", 1, 0), ("reason", "TEXT", 1, 0),
    ("arguments", "TEXT", 0, 0), ("detail", "TEXT", 1, 0),
    ("prev_hash", "BLOB", 1, 0), ("hash", "BLOB", 1, 0),
]
CONSENTS_COLUMNS = [
    ("id", "INTEGER", 0, 1), ("user", "TEXT", 1, 0), ("agent", "TEXT", 1, 0),
    ("server", "TEXT", 1, 0), ("tool", "TEXT", 1, 0), ("mode", "TEXT", 1, 0),
    ("session", "TEXT", 0, 0), ("granted_ms", "INTEGER", 1, 0),
    ("expires_ms", "INTEGER", 0, 0), ("revoked_ms", "INTEGER", 0, 0),
    ("used_ms", "INTEGER", 0, 0), ("decision_id", "INTEGER", 0, 0),
]

# Section 3.1: the keys a check result may carry, and those of a reasons
# entry.
RESULT_KEYS = {"decision", "reason", "audit_id", "policy_revision",
               "consent", "reasons", "matched", "required_scopes",
               "www_authenticate"}
REASON_KEYS = {"code", "set", "action", "resource", "agent", "argument",
               "rule", "detail"}
REASON_CODES = {"allow", "token_expired", "token_invalid",
                "audience_mismatch", "unknown_tool", "argument_invalid",
                "forbidden", "user_denied", "agent_denied", "scope_missing",
                "consent_required", "audit_unavailable"}
RULE_RE = re.compile(r"^[A-Za-z0-9_.-]+\.trine:[1-9][0-9]*$")

CONSENT_ENTRY_KEYS = {"id", "user", "agent", "server", "tool", "mode",
                      "session", "granted_ms", "expires_ms", "used_ms",
                      "decision_id"}

# Strings that a hostile client controls and that must survive the log and
# its hash exactly: quotes, backslashes, control characters, non-ASCII.
HOSTILE = 'zo\u00eb "q" \\ \t\n\r\b\f\x01\x1f \u2028 \U0001F600'


def canonical_string(s):
    """A JSON string as docs/audit.md escapes it for the hash: '"' and '\\'
    escaped, \\n \\t \\r \\b \\f for those, \\u00XX (lowercase) for the other
    characters below U+0020 and for U+007F, everything else as it is."""
    short = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t",
             "\r": "\\r", "\b": "\\b", "\f": "\\f"}
    out = ['"']
    for ch in s:
        if ch in short:
            out.append(short[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append("\\u%04x" % ord(ch))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def canonical_row(row):
    """C of DESIGN.md section 4: the canonical JSON of the row's columns
    other than prev_hash and hash (keys sorted, compact; the JSON columns
    hashed as their text)."""
    parts = []
    for key in sorted(k for k in row.keys() if k not in ("prev_hash",
                                                          "hash")):
        v = row[key]
        if v is None:
            text = "null"
        elif isinstance(v, int):
            text = str(v)
        else:
            text = canonical_string(v)
        parts.append(canonical_string(key) + ":" + text)
    return ("{" + ",".join(parts) + "}").encode("utf-8")


def row_hash(prev_hash, row):
    return hashlib.sha256(prev_hash + canonical_row(row)).digest()


def canonical_value(v):
    """Canonical JSON of a value without reals: keys sorted, compact."""
    if isinstance(v, dict):
        return "{" + ",".join(canonical_string(k) + ":" + canonical_value(v[k])
                              for k in sorted(v)) + "}"
    if isinstance(v, list):
        return "[" + ",".join(canonical_value(x) for x in v) + "]"
    if isinstance(v, str):
        return canonical_string(v)
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    raise TypeError(v)


def all_rows(db):
    return db.execute("SELECT * FROM decisions ORDER BY id").fetchall()


def all_rows_with_facts(db):
    """Every decision with its facts, as `trine audit` shows them."""
    return db.execute(
        "SELECT decisions.*, decision_facts.args_sha256,"
        " decision_facts.token FROM decisions LEFT JOIN decision_facts"
        " ON decision_facts.decision_id = decisions.id"
        " ORDER BY decisions.id").fetchall()


class ContractTest(tt.DaemonTestCase):

    def setUp(self):
        self.d = self.start_daemon()
        self.c = self.d.conn()
        self.addCleanup(self.c.close)

    def assertResultShape(self, r):
        self.assertEqual(set(r) - RESULT_KEYS, set(), r)
        for key in ("decision", "reason", "audit_id", "policy_revision",
                    "reasons", "matched"):
            self.assertIn(key, r)
        self.assertIn(r["decision"], ("allow", "deny", "consent_required"))
        self.assertIn(r["reason"], REASON_CODES)
        self.assertIsInstance(r["audit_id"], int)
        self.assertRegex(r["policy_revision"], r"^sha256:[0-9a-f]{64}$")
        self.assertTrue(r["reasons"], r)
        for x in r["reasons"]:
            self.assertEqual(set(x) - REASON_KEYS, set(), x)
            self.assertIn(x["code"], REASON_CODES)
            if "set" in x:
                self.assertIn(x["set"], ("user", "scope", "agent"))
            if "rule" in x:
                self.assertRegex(x["rule"], RULE_RE)
            for k in set(x) - {"code"}:
                self.assertIsInstance(x[k], str, x)
        self.assertIn(r["reason"], [x["code"] for x in r["reasons"]])
        for m in r["matched"]:
            self.assertEqual(set(m), {"set", "rule"}, m)
            self.assertIn(m["set"], ("user", "scope", "agent"))
            self.assertRegex(m["rule"], RULE_RE)
        # Only a consent_required result carries the prompt; only a
        # scope_missing deny carries the step-up.
        self.assertEqual("consent" in r,
                         r["decision"] == "consent_required", r)
        if "consent" in r:
            self.assertEqual(set(r["consent"]), {"mode", "prompt"})
        if "required_scopes" in r or "www_authenticate" in r:
            self.assertEqual(r["reason"], "scope_missing", r)

    # ---- Section 3.1 ---------------------------------------------------

    def test_every_result_has_the_documented_shape(self):
        # "Each entry of reasons has a code and, as they apply, set, action,
        # resource, agent, argument, rule and a human-readable detail."
        cases = [p for p, _, _ in tt.FIXED_CASES] + [
            tt.check_params(act={"client_id": "ci-bot"}),
            tt.check_params(tool="create_issue", session="s",
                            arguments={"owner": "a b", "repo": "r"}),
            tt.check_params(tool="delete_repo", sub="bob", groups=None,
                            arguments={"owner": "o", "repo": "prod-1"}),
        ]
        for p in cases:
            self.assertResultShape(self.c.check(p))

    def test_scope_missing_carries_step_up_and_nothing_else_does(self):
        # "A deny for scope_missing adds required_scopes and
        # www_authenticate."
        for params, decision, reason in tt.FIXED_CASES:
            r = self.c.check(params)
            has = "required_scopes" in r and "www_authenticate" in r
            self.assertEqual(has, reason == "scope_missing", r)
        r = self.c.check(tt.check_params(scope="admin"))
        self.assertEqual(r["required_scopes"], ["repo:read"])
        self.assertEqual(
            r["www_authenticate"],
            'Bearer error="insufficient_scope", scope="repo:read", '
            'resource_metadata="%s"' % tt.RESOURCE_METADATA)

    def test_chain_failure_names_the_actor(self):
        r = self.c.check(tt.check_params(
            tool="create_issue", session="s",
            arguments={"owner": "acme", "repo": "w", "title": "t"},
            act={"client_id": "ci-bot"}))
        self.assertDecision(r, "deny", "agent_denied")
        actors = [x.get("agent") for x in r["reasons"]
                  if x["code"] == "agent_denied"]
        self.assertEqual(actors, ["ci-bot"], r)

    def test_result_is_the_detail_column_byte_for_byte(self):
        # "detail: the full JSON result" -- and the reply carries exactly
        # that text, audit_id included.
        raw = []
        for i, (params, _, _) in enumerate(tt.FIXED_CASES, 100):
            self.c.send("check", params, id=i)
            raw.append((i, self.c.read_line()))
        with self.d.db() as db:
            for i, text in raw:
                aid = json.loads(text)["result"]["audit_id"]
                detail = db.execute("SELECT detail FROM decisions WHERE id=?",
                                    (aid,)).fetchone()[0]
                self.assertEqual(
                    text,
                    b'{"jsonrpc":"2.0","id":%d,"result":' % i
                    + detail.encode() + b"}")

    # ---- Section 3.2 ---------------------------------------------------

    def test_policy_status_shape(self):
        # "revision, files, loaded_at, counts of each block"; the revision
        # is sha256: + SHA-256 over each file's name and bytes in load
        # order (section 2).
        st = self.c.result("policy.status")
        self.assertEqual(set(st), {"revision", "files", "loaded_at",
                                   "counts"})
        h = hashlib.sha256()
        for name in sorted(tt.DEFAULT_POLICY):
            h.update(name.encode())
            h.update(tt.DEFAULT_POLICY[name].encode())
        self.assertEqual(st["revision"], "sha256:" + h.hexdigest())
        self.assertEqual(st["files"], sorted(tt.DEFAULT_POLICY))
        self.assertEqual(set(st["counts"]),
                         {"scope", "role", "user", "group", "agent",
                          "server", "tool", "forbid", "rules"})
        # loaded_at is unix time in milliseconds, like every time of the
        # protocol and the log.
        now = int(time.time() * 1000)
        self.assertTrue(now - 600000 < st["loaded_at"] <= now + 1000, st)

    def test_policy_tools_named_and_wildcard_together(self):
        self.d.write_policy({"mixed.trine": (
            'tool "mixed" "b_tool" { needs x.read on "x:{a}" }\n'
            'tool "mixed" * { needs x.read on "x:{a}" }\n'
            'tool "mixed" "a_tool" { needs x.read on "x:{a}" }\n')})
        self.d.signal(1)
        self.d.wait_log(r"event=policy_reloaded")
        r = self.c.result("policy.tools", {"server": "mixed"})
        self.assertEqual(set(r), {"tools", "wildcard"})
        self.assertIs(r["wildcard"], True)
        self.assertEqual(sorted(r["tools"]), ["a_tool", "b_tool"])
        r = self.c.result("policy.tools", {"server": "github"})
        self.assertIs(r["wildcard"], False)

    def test_consent_list_entries(self):
        a = self.c.check(dict(tt.EXAMPLE_PARAMS, session="sx"))
        b = self.c.check(tt.check_params(tool="merge_pr",
                                         client_id="ops-console",
                                         scope="repo:write"))
        self.assertEqual(b["decision"], "consent_required", b)
        ga = self.c.result("consent.grant", {"audit_id": a["audit_id"]})
        gb = self.c.result("consent.grant", {"audit_id": b["audit_id"]})
        every = self.c.result("consent.list")["consents"]
        self.assertEqual([x["id"] for x in every],
                         [ga["consent_id"], gb["consent_id"]])
        for x in every:
            self.assertEqual(set(x), CONSENT_ENTRY_KEYS, x)
            self.assertIsNone(x["used_ms"])
        self.assertEqual(every[0]["session"], "sx")
        self.assertIsNone(every[1]["session"])
        self.assertEqual(every[1]["expires_ms"] - every[1]["granted_ms"],
                         3600 * 1000)
        only_ops = self.c.result("consent.list",
                                 {"agent": "ops-console"})["consents"]
        self.assertEqual([x["id"] for x in only_ops], [gb["consent_id"]])
        both = self.c.result("consent.list", {"user": "alice",
                                              "agent": "claude-desktop"})
        self.assertEqual([x["id"] for x in both["consents"]],
                         [ga["consent_id"]])

    def grant_for(self, tool, client_id, session=None):
        p = tt.check_params(tool=tool, client_id=client_id, session=session,
                            scope="repo:read repo:write admin")
        if tool == "create_issue":
            p["arguments"]["title"] = "t"
        r = self.c.check(p)
        self.assertEqual(r["decision"], "consent_required", r)
        return self.c.result("consent.grant",
                             {"audit_id": r["audit_id"]})["consent_id"]

    def live_ids(self):
        return sorted(x["id"] for x in
                      self.c.result("consent.list")["consents"])

    def test_consent_revoke_by_user_narrowed(self):
        # consent.revoke: "consent_id, or user (+ optional agent, server,
        # tool)".
        g1 = self.grant_for("create_issue", "claude-desktop", "s1")
        g2 = self.grant_for("merge_pr", "claude-desktop")
        g3 = self.grant_for("merge_pr", "ops-console")
        g4 = self.grant_for("archive_repo", "ops-console")
        self.assertEqual(self.live_ids(), [g1, g2, g3, g4])
        self.assertEqual(self.c.result("consent.revoke",
                                       {"user": "alice", "server": "other"}),
                         {"revoked": 0})
        self.assertEqual(self.c.result("consent.revoke",
                                       {"user": "alice", "agent": "ops-console",
                                        "tool": "merge_pr"}),
                         {"revoked": 1})
        self.assertEqual(self.live_ids(), [g1, g2, g4])
        self.assertEqual(self.c.result("consent.revoke",
                                       {"user": "alice",
                                        "agent": "claude-desktop"}),
                         {"revoked": 2})
        self.assertEqual(self.live_ids(), [g4])
        self.assertEqual(self.c.result("consent.revoke",
                                       {"user": "alice", "server": "github"}),
                         {"revoked": 1})
        self.assertEqual(self.live_ids(), [])

    def test_consent_revoke_by_id_refuses_narrowing_fields(self):
        # agent, server and tool narrow a revocation by user; beside a
        # consent_id they are not silently ignored.
        g = self.grant_for("merge_pr", "claude-desktop")
        for extra in ({"agent": "ops-console"}, {"server": "other"},
                      {"tool": "archive_repo"}):
            r = self.c.call("consent.revoke", dict({"consent_id": g}, **extra))
            self.assertRpcError(r, -32602, mentions="params." + list(extra)[0])
        self.assertRpcError(
            self.c.call("consent.revoke", {"agent": "claude-desktop"}),
            -32602, mentions="params.user")
        self.assertEqual(self.live_ids(), [g])
        self.assertEqual(self.c.result("consent.revoke", {"consent_id": g}),
                         {"revoked": 1})

    def test_grant_is_visible_to_other_connections_at_once(self):
        r = self.c.check(dict(tt.EXAMPLE_PARAMS, session="cross"))
        with self.d.conn() as granter, self.d.conn() as checker:
            granter.result("consent.grant", {"audit_id": r["audit_id"]})
            self.assertDecision(
                checker.check(dict(tt.EXAMPLE_PARAMS, session="cross")),
                "allow", "allow")

    def test_every_error_class_in_one_pipeline(self):
        # "Malformed input gets a JSON-RPC error, never a crash and never a
        # silent drop"; each line is answered, in order, and the connection
        # stays open: only an undelimitable line closes it.
        lines = [
            (b"{oops", -32700, None),
            (b"[]", -32600, None),
            (b'[{"jsonrpc":"2.0","id":1,"method":"ping"}]', -32600, None),
            (b'{"jsonrpc":"2.0","method":"ping"}', -32600, None),
            (b'{"jsonrpc":"1.0","id":11,"method":"ping"}', -32600, 11),
            (b'{"jsonrpc":"2.0","id":12,"method":7}', -32600, 12),
            (b'{"jsonrpc":"2.0","id":13,"method":"ping","params":[1]}',
             -32602, 13),
            (b'{"jsonrpc":"2.0","id":20,"method":"ping","params":"x"}',
             -32600, 20),
            (b'{"jsonrpc":"2.0","id":{},"method":"ping"}', -32600, None),
            (b'{"jsonrpc":"2.0","id":14,"method":"nope"}', -32601, 14),
            (b'{"jsonrpc":"2.0","id":15,"method":"check"}', -32602, 15),
            (b'{"jsonrpc":"2.0","id":16,"method":"check","params":'
             b'{"server":1,"tool":"t","token":{}}}', -32602, 16),
            (b'{"jsonrpc":"2.0","id":17,"method":"consent.grant",'
             b'"params":{"audit_id":"1"}}', -32602, 17),
            (b'{"jsonrpc":"2.0","id":"s18","method":"policy.tools"}',
             -32602, "s18"),
            (b'{"jsonrpc":"2.0","id":19,"method":"ping"}', None, 19),
        ]
        self.c.send_raw(b"".join(x + b"\n" for x, _, _ in lines))
        for text, code, id in lines:
            r = self.c.reply()
            if code is None:
                self.assertEqual(r, {"jsonrpc": "2.0", "id": id,
                                     "result": {"pong": True}})
            else:
                self.assertRpcError(r, code, id=id)
        self.assertEqual(self.c.result("ping"), {"pong": True})
        with self.d.db() as db:
            self.assertEqual(
                db.execute("SELECT count(*) FROM decisions").fetchone()[0], 0)

    def test_invalid_params_name_the_field(self):
        # "-32602 invalid params with a message naming the field".
        cases = [
            ("check", {"server": "github", "tool": 3, "token": {}},
             "params.tool"),
            ("check", {"server": "github", "tool": "t", "token": "x"},
             "params.token"),
            ("check", {"server": "github", "tool": "t", "token": {},
                       "arguments": []}, "params.arguments"),
            ("consent.grant", {}, "params.audit_id"),
            ("consent.grant", {"audit_id": 1, "ttl": "60"}, "params.ttl"),
            ("consent.revoke", {"consent_id": 0}, "params.consent_id"),
            ("consent.revoke", {"user": ["a"]}, "params.user"),
            ("consent.list", {"agent": 1}, "params.agent"),
            ("policy.tools", {"server": None}, "params.server"),
        ]
        for method, params, field in cases:
            self.assertRpcError(self.c.call(method, params), -32602,
                                mentions=field)

    def test_unterminated_last_line_is_not_dropped_silently(self):
        # "never a silent drop": a request whose line the client ends by
        # shutting down its sending side, without the final newline, is
        # answered like any other.
        self.c.send_raw(b'{"jsonrpc":"2.0","id":1,"method":"ping"}')
        self.c.sock.shutdown(tt.socket.SHUT_WR)
        r = self.c.read_line()
        self.assertIsNotNone(r, "the unterminated request got no reply")
        self.assertEqual(tt.json.loads(r), {"jsonrpc": "2.0", "id": 1,
                                            "result": {"pong": True}})

    # ---- Section 4 -------------------------------------------------------

    def test_schema_is_the_design_schema(self):
        self.c.check(tt.check_params())
        with self.d.db() as db:
            for table, want in (("decisions", DECISIONS_COLUMNS),
                                ("consents", CONSENTS_COLUMNS)):
                got = [(r[1], r[2], r[3], r[5]) for r in
                       db.execute("PRAGMA table_info(%s)" % table)]
                self.assertEqual(got, want, table)
            sql = db.execute("SELECT sql FROM sqlite_master WHERE "
                             "name='decisions'").fetchone()[0]
            self.assertIn("CHECK (decision IN ('allow','deny',"
                          "'consent_required'))", " ".join(sql.split()))
            self.assertEqual(db.execute("PRAGMA journal_mode").fetchone()[0],
                             "wal")
        self.d.stop()
        db = sqlite3.connect(self.d.audit, isolation_level=None)
        try:
            db.execute("BEGIN")
            with self.assertRaises(sqlite3.IntegrityError):
                db.execute(
                    "INSERT INTO decisions (ts_ms, policy_rev, server, tool, "
                    "decision, reason, detail, prev_hash, hash) VALUES "
                    "(1, 'r', 's', 't', 'maybe', 'x', '{}', zeroblob(32), "
                    "zeroblob(32))")
            db.execute("ROLLBACK")
        finally:
            db.close()

    def test_hash_chain_recomputed_from_the_table_alone(self):
        # hash = SHA-256(prev_hash || canonical JSON of the row's other
        # columns), prev_hash of the first row 32 zero bytes.
        hostile = [
            tt.check_params(sub=HOSTILE),
            tt.check_params(server="srv " + HOSTILE, tool=HOSTILE),
            tt.check_params(sub="alice", session=HOSTILE),
            tt.check_params(act={"client_id": "ops-console",
                                 "act": {"sub": HOSTILE}}),
            tt.check_params(sub=None),
            tt.check_params(client_id=None),
            dict(tt.EXAMPLE_PARAMS, arguments={
                "owner": "acme", "repo": "widgets", "title": HOSTILE,
                "body": "secret " + HOSTILE, "n": [1, -2, True, None],
                "deep": {"z": {}, "a": []}}),
        ]
        sent = [dict(p) for p in hostile]
        for p in hostile:
            self.c.check(p)
        with self.d.db() as db:
            rows = all_rows(db)
        self.assertEqual(len(rows), len(hostile))
        prev = b"\x00" * 32
        for row in rows:
            self.assertEqual(row["prev_hash"], prev, row["id"])
            self.assertEqual(row["hash"], row_hash(prev, row), row["id"])
            prev = row["hash"]
        # The hostile text is stored as it was sent.
        self.assertEqual(rows[0]["user"], HOSTILE)
        self.assertEqual(rows[1]["tool"], HOSTILE)
        self.assertEqual(rows[2]["session"], HOSTILE)
        self.assertEqual(json.loads(rows[3]["chain"]),
                         ["ops-console", HOSTILE])
        self.assertIsNone(rows[4]["user"])
        self.assertIsNone(rows[5]["agent"])
        # args_sha256 (a fact of a consent_required decision) hashes the
        # unredacted arguments, which the arguments column no longer holds.
        with self.d.db() as db:
            facts = all_rows_with_facts(db)
        last = facts[-1]
        self.assertEqual(last["decision"], "consent_required")
        self.assertEqual(json.loads(last["arguments"])["body"], "[redacted]")
        self.assertNotIn("secret", last["arguments"])
        self.assertEqual(
            last["args_sha256"],
            hashlib.sha256(canonical_value(sent[-1]["arguments"]).encode())
            .hexdigest())

    # ---- Section 6: trine audit ----------------------------------------

    def fill(self):
        """Writes a known mix of decisions; returns their results."""
        out = []
        for params, _, _ in tt.FIXED_CASES:
            out.append(self.c.check(params))
        out.append(self.c.check(tt.check_params(sub="bob", client_id="ci-bot",
                                                tool="get_issue")))
        return out

    def cli(self, *args):
        r = tt.run_cli("audit", *args, "--db", self.d.audit)
        self.assertNotIn("Sanitizer", r.stderr)
        return r

    def test_audit_json_is_every_column(self):
        self.fill()
        r = self.cli("--format", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        got = [json.loads(x) for x in r.stdout.splitlines()]
        with self.d.db() as db:
            rows = all_rows_with_facts(db)
        self.assertEqual(len(got), len(rows))
        for obj, row in zip(got, rows):
            self.assertEqual(list(obj), [
                "id", "ts_ms", "policy_rev", "server", "tool", "user",
                "agent", "chain", "session", "decision", "reason",
                "arguments", "detail", "args_sha256", "prev_hash", "hash",
                "token"])
            for k in row.keys():
                v = row[k]
                if k in ("prev_hash", "hash"):
                    v = v.hex()
                elif (k in ("arguments", "chain", "detail", "token")
                      and v is not None):
                    v = json.loads(v)
                self.assertEqual(obj[k], v, (row["id"], k))

    def test_audit_csv_round_trips(self):
        self.fill()
        r = subprocess.run([tt.TRINE_BIN, "audit", "--db", self.d.audit,
                            "--format", "csv"], capture_output=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        b = r.stdout
        # Records end in CRLF (RFC 4180); no field of these rows holds a
        # line break of its own.
        self.assertTrue(b.endswith(b"\r\n"))
        self.assertNotIn(b"\n", b.replace(b"\r\n", b""))
        recs = list(csv.reader(io.StringIO(b.decode(), newline="")))
        with self.d.db() as db:
            rows = all_rows_with_facts(db)
        self.assertEqual(recs[0], [
            "id", "ts_ms", "policy_rev", "server", "tool", "user", "agent",
            "chain", "session", "decision", "reason", "arguments", "detail",
            "args_sha256", "prev_hash", "hash", "token"])
        self.assertEqual(len(recs) - 1, len(rows))
        for rec, row in zip(recs[1:], rows):
            want = []
            for k in recs[0]:
                v = row[k]
                if v is None:
                    v = ""
                elif isinstance(v, bytes):
                    v = v.hex()
                want.append(str(v))
            self.assertEqual(rec, want)

    def test_audit_table_and_filters(self):
        res = self.fill()
        with self.d.db() as db:
            rows = all_rows(db)

        def ids(*args):
            r = self.cli("--format", "json", *args)
            self.assertEqual(r.returncode, 0, r.stderr)
            return [json.loads(x)["id"] for x in r.stdout.splitlines()]

        def where(pred):
            return [row["id"] for row in rows if pred(row)]

        self.assertEqual(ids("--user", "bob"),
                         where(lambda x: x["user"] == "bob"))
        self.assertEqual(ids("--agent", "ci-bot"),
                         where(lambda x: x["agent"] == "ci-bot"))
        self.assertEqual(ids("--tool", "get_issue", "--decision", "deny"),
                         where(lambda x: x["tool"] == "get_issue"
                               and x["decision"] == "deny"))
        self.assertEqual(ids("--decision", "consent_required"),
                         where(lambda x: x["decision"] == "consent_required"))
        # --limit: the newest N, oldest first.
        self.assertEqual(ids("--limit", "3"), [r["id"] for r in rows][-3:])
        # --since / --until, inclusive, as ISO-8601 UTC and unix seconds.
        mid = rows[len(rows) // 2]["ts_ms"]
        iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(mid // 1000)) \
            + ".%03dZ" % (mid % 1000)
        self.assertEqual(ids("--since", iso),
                         where(lambda x: x["ts_ms"] >= mid))
        self.assertEqual(ids("--until", iso),
                         where(lambda x: x["ts_ms"] <= mid))
        self.assertEqual(ids("--since", "1h"), [r["id"] for r in rows])
        self.assertEqual(ids("--until", str(int(time.time()) - 7200)), [])
        # The table: a header and one line per row, id first.
        t = self.cli()
        self.assertEqual(t.returncode, 0, t.stderr)
        lines = t.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["ID", "TIME", "DECISION",
                                            "REASON", "USER", "AGENT",
                                            "SERVER", "TOOL"])
        self.assertEqual([int(x.split()[0]) for x in lines[1:]],
                         [r["audit_id"] for r in res])
        for bad in (["--decision", "maybe"], ["--limit", "0"],
                    ["--since", "yesterday"], ["--format", "xml"]):
            self.assertEqual(self.cli(*bad).returncode, 3, bad)

    def test_audit_stats_counts(self):
        self.fill()
        r = self.cli("stats", "--format", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        st = json.loads(r.stdout)
        with self.d.db() as db:
            self.assertEqual(st["total"], db.execute(
                "SELECT count(*) FROM decisions").fetchone()[0])
            for col in ("decision", "reason", "tool", "agent"):
                want = {(k if k is not None else ""): n for k, n in
                        db.execute("SELECT %s, count(*) FROM decisions "
                                   "GROUP BY %s" % (col, col))}
                self.assertEqual(st[col], want, col)
        self.assertEqual(self.cli("stats").returncode, 0)

    def test_verify_names_the_first_broken_row(self):
        self.fill()
        self.d.stop()
        ok = self.cli("verify")
        self.assertEqual((ok.returncode, ok.stdout),
                         (0, "ok: %d rows, hash chain intact\n"
                          % (len(tt.FIXED_CASES) + 1)))
        db = sqlite3.connect(self.d.audit, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            # A row edited and re-hashed with the documented hash: its own
            # hash matches again, so the break shows at the next row.
            db.execute("UPDATE decisions SET reason='allow', "
                       "decision='allow' WHERE id=4")
            rows = all_rows(db)
            fixed = row_hash(rows[2]["hash"], rows[3])
            db.execute("UPDATE decisions SET hash=? WHERE id=4", (fixed,))
            bad = self.cli("verify")
            self.assertEqual((bad.returncode, bad.stdout),
                             (1, "row 5: prev_hash does not match row 4's "
                                 "hash\n"))
            # An edit further up is found first.
            db.execute("UPDATE decisions SET user='mallory' WHERE id=2")
            bad = self.cli("verify")
            self.assertEqual((bad.returncode, bad.stdout),
                             (1, "row 2: hash does not match its contents\n"))
        finally:
            db.close()

    # ---- Section 6: trine consent --------------------------------------

    def consent_cli(self, *args):
        return tt.run_cli("consent", *args, "--socket", self.d.socket)

    def test_consent_cli_forms(self):
        r = self.c.check(dict(tt.EXAMPLE_PARAMS, session="cli"))
        g = self.consent_cli("grant", str(r["audit_id"]), "--ttl", "2h",
                             "--json")
        self.assertEqual(g.returncode, 0, g.stderr)
        cid = json.loads(g.stdout)["consent_id"]
        row = self.c.result("consent.list")["consents"][0]
        self.assertEqual(row["id"], cid)
        self.assertEqual(row["expires_ms"] - row["granted_ms"], 7200 * 1000)
        lst = self.consent_cli("list", "--user", "alice")
        self.assertEqual(lst.returncode, 0, lst.stderr)
        self.assertEqual(lst.stdout.splitlines()[0].split(),
                         ["ID", "USER", "AGENT", "SERVER", "TOOL", "MODE",
                          "SESSION", "GRANTED", "EXPIRES"])
        self.assertEqual(lst.stdout.splitlines()[1].split()[:7],
                         [str(cid), "alice", "claude-desktop", "github",
                          "create_issue", "session", "cli"])
        # Narrowing fields belong to --user, not to an id.
        n = self.consent_cli("revoke", "--consent-id", str(cid), "--agent",
                             "x")
        self.assertEqual(n.returncode, 3, n.stdout + n.stderr)
        rv = self.consent_cli("revoke", "--consent-id", str(cid))
        self.assertEqual((rv.returncode, rv.stdout),
                         (0, "revoked 1 consent grant\n"), rv.stderr)
        again = self.consent_cli("revoke", str(cid))
        self.assertEqual((again.returncode, again.stdout),
                         (0, "revoked 0 consent grants\n"), again.stderr)
        refused = self.consent_cli("grant", "--audit-id", "424242")
        self.assertEqual(refused.returncode, 1)
        self.assertIn("-32602", refused.stderr)


if __name__ == "__main__":
    tt.main()
