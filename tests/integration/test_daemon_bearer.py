"""trined verifies bearer tokens itself (DESIGN.md section 5): JWTs signed
with RS256, ES256 and EdDSA against the issuer's JWKS, and opaque tokens by
RFC 7662 introspection, against a loopback authorization server
(authserver.py). A verified token is evaluated exactly as the same claims
sent as "token"; everything else is denied with a precise reason. Keys are
fetched once and cached, rotation costs one refetch, unknown kids refetch
at most once per 30 s, an outage leaves cached keys and introspections
working, and a raw token never reaches the audit log or the daemon's log.
"""

import atexit
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import authserver  # noqa: E402
import trinetest as tt  # noqa: E402

ISSUER = "https://as.test.example"
# The daemon's --http-timeout in these tests, in ms.
TIMEOUT_MS = 1000
# Slack for a loaded machine (and the sanitizer build) on top of it.
SLACK = 4.0 if tt.SANITIZED else 2.0

KEYDIR = tempfile.mkdtemp(prefix="trine-keys-")
atexit.register(shutil.rmtree, KEYDIR, True)
KEYS = {}


def key(name, kind="ES256"):
    """A key made once per run, by name."""
    if name not in KEYS:
        KEYS[name] = authserver.Key(kind, name, KEYDIR)
    return KEYS[name]


def claims(**kw):
    """Access token claims for alice through claude-desktop (the policy of
    DESIGN.md section 2.3), valid for an hour."""
    now = int(time.time())
    c = {"iss": ISSUER, "sub": "alice", "aud": tt.AUDIENCE,
         "client_id": "claude-desktop", "scope": "repo:read repo:write",
         "groups": ["acme-eng"], "exp": now + 3600, "iat": now,
         "jti": "jti-%d" % (len(KEYS) + now)}
    c.update(kw)
    return {k: v for k, v in c.items() if v is not None}


def bearer_params(tok, tool="get_issue", arguments=None):
    if arguments is None:
        arguments = {"owner": "acme", "repo": "widgets"}
    return {"server": "github", "tool": tool, "arguments": arguments,
            "bearer": tok}


def without_audit_id(result):
    r = dict(result)
    r.pop("audit_id", None)
    return r


class BearerTestCase(tt.DaemonTestCase):
    """Starts an authorization server and a daemon that uses it. Every raw
    token a test makes is remembered, and at the end none may appear in
    the audit database, its WAL, or the daemon's log."""

    jwt = True
    introspect = True
    secret = "s3cret"

    def setUp(self):
        self.auth = authserver.AuthServer(client_secret="s3cret")
        self.addCleanup(self.auth.close)
        self.raw_tokens = []
        self.secret_file = None

    def start(self, *extra, timeout_ms=TIMEOUT_MS, secret=None):
        args = ["--http-timeout", str(timeout_ms)]
        if self.jwt:
            args += ["--issuer", ISSUER, "--jwks-url", self.auth.url("/jwks")]
        if self.introspect:
            fd, path = tempfile.mkstemp(prefix="trine-secret-")
            os.write(fd, ((secret or self.secret) + "\n").encode())
            os.close(fd)
            os.chmod(path, 0o600)
            self.addCleanup(os.unlink, path)
            self.secret_file = path
            args += ["--introspection-url", self.auth.url("/introspect"),
                     "--client-id", "trine-test", "--client-secret-file", path]
        self.d = self.start_daemon(args=args + list(extra))
        self.addCleanup(self.assert_no_raw_tokens)
        self.c = self.d.conn()
        self.addCleanup(self.c.close)
        return self.d

    def sign(self, k, **kw):
        """A token signed with key k; kw go to claims()."""
        header = kw.pop("header", None)
        kid = kw.pop("kid", Ellipsis)
        tok = k.token(claims(**kw), header=header, kid=kid)
        self.raw_tokens.append(tok)
        return tok

    def opaque(self, name, response):
        tok = "opaque-%s-%d" % (name, len(self.raw_tokens))
        self.raw_tokens.append(tok)
        if response is not None:
            self.auth.introspection[tok] = response
        return tok

    def check(self, tok, **kw):
        return self.c.check(bearer_params(tok, **kw))

    def assert_no_raw_tokens(self):
        """No raw token in the audit database, its WAL, or the log (while
        the daemon runs, then after it stopped)."""
        files = [self.d.audit, self.d.audit + "-wal", self.d.logpath]

        def scan():
            blobs = []
            for path in files:
                try:
                    with open(path, "rb") as f:
                        blobs.append((path, f.read()))
                except OSError:
                    pass
            for tok in self.raw_tokens:
                t = tok.encode()
                # The signature alone is never stored legitimately either.
                parts = [t] + ([t.rsplit(b".", 1)[1]] if b"." in t else [])
                for path, blob in blobs:
                    for p in parts:
                        if p:
                            self.assertFalse(p in blob, "a raw token (%r) in "
                                             "%s" % (p[:20], path))
        scan()
        self.d.stop()
        scan()

    def token_column(self, audit_id):
        with self.d.db() as db:
            row = db.execute("SELECT token FROM decision_facts"
                             " WHERE decision_id = ?", (audit_id,)).fetchone()
        return None if row is None else json.loads(row["token"])

    def assertSameAsToken(self, result, claims_sent):
        """Checks that a bearer check got exactly what the same claims sent
        as "token" get; returns the latter."""
        p = bearer_params(None)
        del p["bearer"]
        p["token"] = claims_sent
        same = self.c.check(p)
        self.assertEqual(without_audit_id(result), without_audit_id(same))
        return same

    def assertDetail(self, result, code, prefix):
        entries = [r for r in result["reasons"] if r["code"] == code]
        self.assertEqual(len(entries), 1, result)
        self.assertTrue(entries[0].get("detail", "").startswith(prefix),
                        result)


class JwtTest(BearerTestCase):

    def test_every_algorithm_is_verified_and_evaluated_as_claims(self):
        ks = [key("rsa-1", "RS256"), key("ec-1", "ES256"),
              key("ed-1", "EdDSA")]
        self.auth.set_keys(ks)
        self.start()
        for k in ks:
            c = claims(jti="jti-" + k.kid)
            tok = k.token(c)
            self.raw_tokens.append(tok)
            r = self.check(tok)
            self.assertDecision(r, "allow", "allow")
            same = self.assertSameAsToken(r, c)
            self.assertEqual(self.token_column(r["audit_id"]), {
                "via": "jwt", "outcome": "verified", "iss": ISSUER,
                "sub": "alice", "client_id": "claude-desktop",
                "jti": "jti-" + k.kid})
            self.assertIsNone(self.token_column(same["audit_id"]))
            with self.d.db() as db:
                row = db.execute("SELECT user, agent FROM decisions WHERE "
                                 "id = ?", (r["audit_id"],)).fetchone()
            self.assertEqual((row["user"], row["agent"]),
                             ("alice", "claude-desktop"))
        # One fetch served all three (at startup or first use).
        self.assertEqual(self.auth.count("jwks"), 1)
        # The chain still verifies with the new column filled.
        res = tt.run_cli("audit", "verify", "--db", self.d.audit)
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)

    def test_claims_decide_like_tokens(self):
        k = key("ec-1")
        self.auth.set_keys([k])
        self.start()
        # The policy's own answers: user, agent and scope limits apply.
        r = self.check(self.sign(k, client_id="ci-bot"))
        self.assertDecision(r, "deny", "agent_denied")
        r = self.check(self.sign(k, scope="admin"))
        self.assertDecision(r, "deny", "scope_missing")
        self.assertEqual(r["required_scopes"], ["repo:read"])
        r = self.check(self.sign(k), tool="create_issue",
                       arguments={"owner": "acme", "repo": "widgets",
                                  "title": "t", "body": "secret text"})
        self.assertDecision(r, "consent_required", "consent_required")
        with self.d.db() as db:
            row = db.execute("SELECT arguments FROM decisions WHERE id = ?",
                             (r["audit_id"],)).fetchone()
        self.assertEqual(json.loads(row["arguments"])["body"], "[redacted]")

    def test_failures(self):
        k = key("ec-1")
        other = key("ec-2")
        self.auth.set_keys([k])
        self.start()
        # Keys are in place first (the cases below must not need them).
        self.assertDecision(self.check(self.sign(k)), "allow", "allow")
        hits = self.auth.count("jwks")

        forged = other.token(claims(), kid=k.kid)
        self.raw_tokens.append(forged)
        r = self.check(forged)
        self.assertDecision(r, "deny", "token_invalid")
        self.assertDetail(r, "token_invalid", "bearer token: bad signature")
        self.assertEqual(self.token_column(r["audit_id"]),
                         {"via": "jwt", "outcome": "bad_signature"})

        r = self.check(self.sign(k, iss="https://evil.example"))
        self.assertDecision(r, "deny", "token_invalid")
        self.assertDetail(r, "token_invalid", "bearer token: bad issuer")

        # Signed by the issuer but expired, or for another server: decided
        # exactly as the same claims sent as "token" (step 1's order: exp
        # before aud), and the audit row still names who sent it.
        past = int(time.time()) - 3600
        for extra, reason, outcome in [
                ({"aud": "https://elsewhere.example"}, "audience_mismatch",
                 "bad_audience"),
                ({"exp": past}, "token_expired", "expired"),
                ({"exp": past, "aud": "https://elsewhere.example"},
                 "token_expired", "expired")]:
            c = claims(jti="jti-refused", **extra)
            tok = k.token(c)
            self.raw_tokens.append(tok)
            r = self.check(tok)
            self.assertDecision(r, "deny", reason)
            self.assertSameAsToken(r, c)
            self.assertEqual(self.token_column(r["audit_id"]), {
                "via": "jwt", "outcome": outcome, "iss": ISSUER,
                "sub": "alice", "client_id": "claude-desktop",
                "jti": "jti-refused"})
            with self.d.db() as db:
                row = db.execute("SELECT user, agent FROM decisions WHERE "
                                 "id = ?", (r["audit_id"],)).fetchone()
            self.assertEqual((row["user"], row["agent"]),
                             ("alice", "claude-desktop"))
        r = self.check(self.sign(k, aud="https://elsewhere.example"))
        self.assertEqual([x.get("rule") for x in r["reasons"]],
                         [tt.rule('server "github"')])

        r = self.check(self.sign(k, nbf=int(time.time()) + 3600))
        self.assertDecision(r, "deny", "token_invalid")
        self.assertDetail(r, "token_invalid", "bearer token: not yet valid")

        r = self.check(self.sign(k, header={"typ": "JWT"}))
        self.assertDecision(r, "deny", "token_invalid")
        self.assertDetail(r, "token_invalid", "bearer token: bad typ")

        hdr = authserver.b64url_json({"alg": "none", "typ": "at+jwt"})
        none = hdr + "." + authserver.b64url_json(claims()) + "."
        self.raw_tokens.append(none)
        r = self.check(none)
        self.assertDecision(r, "deny", "token_invalid")
        self.assertDetail(r, "token_invalid", "bearer token: bad alg")

        r = self.check("not a token")
        self.assertDecision(r, "deny", "token_invalid")
        self.assertEqual(self.token_column(r["audit_id"]),
                         {"via": "none", "outcome": "malformed"})
        # None of these fetched anything.
        self.assertEqual(self.auth.count("jwks"), hits)

    def test_rotation_takes_one_refetch(self):
        old = key("ec-1")
        new = key("rsa-2", "RS256")
        self.auth.set_keys([old])
        self.start()
        self.assertDecision(self.check(self.sign(old)), "allow", "allow")
        self.assertEqual(self.auth.count("jwks"), 1)
        self.auth.set_keys([old, new])
        for _ in range(3):
            self.assertDecision(self.check(self.sign(new)), "allow", "allow")
        self.assertDecision(self.check(self.sign(old)), "allow", "allow")
        self.assertEqual(self.auth.count("jwks"), 2)
        self.d.wait_log(r"event=jwks_fetched [^\n]*why=unknown_kid")

    def test_unknown_kids_refetch_once_per_30s(self):
        k = key("ec-1")
        self.auth.set_keys([k])
        self.start()
        self.assertDecision(self.check(self.sign(k)), "allow", "allow")
        self.assertEqual(self.auth.count("jwks"), 1)
        a = self.check(self.sign(key("ec-3")))
        b = self.check(self.sign(key("ec-4")))
        c = self.check(self.sign(key("ec-3")))
        for r in (a, b, c):
            self.assertDecision(r, "deny", "token_invalid")
            self.assertDetail(r, "token_invalid", "bearer token: unknown kid")
            self.assertEqual(self.token_column(r["audit_id"]),
                             {"via": "jwt", "outcome": "unknown_kid"})
        # Two unknown kids within 30 s: one refetch between them.
        self.assertEqual(self.auth.count("jwks"), 2)
        # Known keys keep working.
        self.assertDecision(self.check(self.sign(k)), "allow", "allow")

    def test_issuer_down_keeps_cached_keys(self):
        k = key("ec-1")
        self.auth.set_keys([k])
        self.start()
        self.assertDecision(self.check(self.sign(k)), "allow", "allow")
        self.auth.go_down()
        # Cached keys: allowed without the issuer.
        self.assertDecision(self.check(self.sign(k)), "allow", "allow")
        # A new kid needs the issuer: denied, within the timeout.
        t0 = time.monotonic()
        r = self.check(self.sign(key("ec-2")))
        self.assertLess(time.monotonic() - t0, TIMEOUT_MS / 1000 + SLACK)
        self.assertDecision(r, "deny", "token_invalid")
        self.assertDetail(r, "token_invalid",
                          "authorization server unreachable: ")
        self.assertEqual(self.token_column(r["audit_id"]),
                         {"via": "jwt", "outcome": "unreachable"})
        self.d.wait_log(r"event=jwks_fetch_failed")
        self.assertDecision(self.check(self.sign(k)), "allow", "allow")
        self.assertEqual(self.c.result("ping"), {"pong": True})

    def test_slow_issuer_times_out_and_stalls_no_one_else(self):
        self.auth.set_keys([key("ec-1")])
        self.auth.jwks_mode = "slow"
        self.auth.slow_seconds = 3 * TIMEOUT_MS / 1000
        self.start()
        # Wait for the startup fetch to have timed out, so the next
        # fetch is the one this test times.
        self.d.wait_log(r"event=jwks_fetch_failed", timeout=30)
        time.sleep(5.2)  # the pause after a failed fetch
        slow = self.d.conn()
        self.addCleanup(slow.close)
        t0 = time.monotonic()
        slow.send("check", bearer_params(self.sign(key("ec-1"))))
        # Meanwhile another client's checks are answered at once.
        time.sleep(0.1)
        for params, decision, reason in tt.FIXED_CASES[:4]:
            t1 = time.monotonic()
            r = self.c.check(params)
            self.assertDecision(r, decision, reason)
            self.assertLess(time.monotonic() - t1, 0.5 + SLACK / 2)
        r = slow.reply()["result"]
        self.assertLess(time.monotonic() - t0, TIMEOUT_MS / 1000 + SLACK)
        self.assertDecision(r, "deny", "token_invalid")
        self.assertDetail(r, "token_invalid",
                          "authorization server unreachable: ")

    def test_issuer_answers_500_then_recovers(self):
        k = key("ec-1")
        self.auth.set_keys([k])
        self.auth.jwks_mode = "500"
        self.start()
        r = self.check(self.sign(k))
        self.assertDecision(r, "deny", "token_invalid")
        self.assertDetail(r, "token_invalid",
                          "authorization server unreachable: the JWKS URL "
                          "answered HTTP 500")
        self.auth.jwks_mode = "ok"
        time.sleep(5.2)  # the pause after a failed fetch
        self.assertDecision(self.check(self.sign(k)), "allow", "allow")

    def test_replies_stay_in_order(self):
        k = key("ec-1")
        self.auth.set_keys([k])
        self.auth.jwks_mode = "slow"
        self.auth.slow_seconds = 0.5
        self.start("--http-timeout", "5000")
        tok = self.sign(k)
        reqs = [("check", bearer_params(tok)),
                ("check", tt.check_params()),
                ("ping", None),
                ("check", tt.check_params(client_id="ci-bot"))]
        out = self.c.pipeline(reqs)
        # The slow fetch answered 500 after 0.5 s: the bearer check is
        # denied; the others come after it, in order.
        self.assertDecision(out[0]["result"], "deny", "token_invalid")
        self.assertDecision(out[1]["result"], "allow", "allow")
        self.assertEqual(out[2]["result"], {"pong": True})
        self.assertDecision(out[3]["result"], "deny", "agent_denied")


class IntrospectionTest(BearerTestCase):

    jwt = False

    def test_active_inactive_expired_and_cached(self):
        self.start()
        resp = {"active": True, "iss": ISSUER, "sub": "alice",
                "client_id": "claude-desktop", "scope": "repo:read",
                "aud": tt.AUDIENCE, "exp": int(time.time()) + 3600,
                "jti": "intro-1", "token_type": "Bearer"}
        tok = self.opaque("active", resp)
        r = self.check(tok)
        self.assertDecision(r, "allow", "allow")
        self.assertEqual(self.auth.count("introspect"), 1)
        self.assertEqual(self.auth.hints, [["access_token"]])
        self.assertEqual(self.auth.bad_auth, 0)
        self.assertEqual(self.token_column(r["audit_id"]), {
            "via": "introspection", "outcome": "verified", "iss": ISSUER,
            "sub": "alice", "client_id": "claude-desktop", "jti": "intro-1"})
        # Cached: the second check asks no one.
        r2 = self.check(tok)
        self.assertDecision(r2, "allow", "allow")
        self.assertEqual(self.auth.count("introspect"), 1)

        r = self.check(self.opaque("inactive", {"active": False}))
        self.assertDecision(r, "deny", "token_invalid")
        self.assertDetail(r, "token_invalid",
                          "bearer token: not active (introspection)")
        self.assertEqual(self.token_column(r["audit_id"]),
                         {"via": "introspection", "outcome": "inactive"})
        r = self.check(self.opaque("unknown", None))
        self.assertDecision(r, "deny", "token_invalid")

        expired = dict(resp, exp=int(time.time()) - 3600, jti="intro-2")
        r = self.check(self.opaque("expired", expired))
        self.assertDecision(r, "deny", "token_expired")
        # Inactive results are not cached: asked again.
        n = self.auth.count("introspect")
        tok = self.opaque("inactive-2", {"active": False})
        self.check(tok)
        self.check(tok)
        self.assertEqual(self.auth.count("introspect"), n + 2)

    def test_jwt_shaped_token_is_introspected_without_jwks(self):
        self.start()
        k = key("ec-1")
        tok = self.sign(k)
        self.auth.introspection[tok] = {"active": True, "sub": "alice",
                                        "client_id": "claude-desktop",
                                        "scope": "repo:read",
                                        "aud": tt.AUDIENCE}
        self.assertDecision(self.check(tok), "allow", "allow")
        self.assertEqual(self.auth.count("introspect"), 1)

    def test_wrong_client_secret_is_refused(self):
        self.start(secret="not-the-secret")
        r = self.check(self.opaque("x", {"active": True, "sub": "alice"}))
        self.assertDecision(r, "deny", "token_invalid")
        self.assertDetail(r, "token_invalid",
                          "authorization server refused trined: the "
                          "introspection endpoint answered HTTP 401: it "
                          "refused trined's client credentials")
        self.assertEqual(self.auth.bad_auth, 1)

    def test_client_credentials_are_form_encoded(self):
        # RFC 6749 section 2.3.1: a secret with ':' and '+' survives.
        self.auth.client_secret = "p:a+ss w/rd"
        self.secret = "p:a+ss w/rd"
        self.start()
        r = self.check(self.opaque("y", {"active": True, "sub": "alice",
                                         "client_id": "claude-desktop",
                                         "scope": "repo:read",
                                         "aud": tt.AUDIENCE}))
        self.assertDecision(r, "allow", "allow")
        self.assertEqual(self.auth.bad_auth, 0)

    def test_server_down_keeps_cached_results(self):
        self.start()
        good = self.opaque("good", {"active": True, "sub": "alice",
                                    "client_id": "claude-desktop",
                                    "scope": "repo:read",
                                    "aud": tt.AUDIENCE})
        self.assertDecision(self.check(good), "allow", "allow")
        self.auth.go_down()
        self.assertDecision(self.check(good), "allow", "allow")
        t0 = time.monotonic()
        r = self.check(self.opaque("new", {"active": True, "sub": "bob"}))
        self.assertLess(time.monotonic() - t0, TIMEOUT_MS / 1000 + SLACK)
        self.assertDecision(r, "deny", "token_invalid")
        self.assertDetail(r, "token_invalid",
                          "authorization server unreachable: ")
        self.assertEqual(self.token_column(r["audit_id"]),
                         {"via": "introspection", "outcome": "unreachable"})
        self.d.wait_log(r"event=introspection_failed")
        # The daemon keeps serving, the cached token too.
        self.assertDecision(self.check(good), "allow", "allow")
        self.assertEqual(self.c.result("ping"), {"pong": True})

    def test_bad_answers(self):
        self.start()
        self.auth.introspect_mode = "garbage"
        r = self.check(self.opaque("g", None))
        self.assertDecision(r, "deny", "token_invalid")
        self.assertDetail(r, "token_invalid",
                          "authorization server gave an invalid response: ")
        self.auth.introspect_mode = "500"
        r = self.check(self.opaque("h", None))
        self.assertDecision(r, "deny", "token_invalid")
        self.assertDetail(r, "token_invalid",
                          "authorization server unreachable: the "
                          "introspection endpoint answered HTTP 500")
        self.auth.introspect_mode = "slow"
        self.auth.slow_seconds = 3 * TIMEOUT_MS / 1000
        time.sleep(5.2)  # the pause after a failure
        t0 = time.monotonic()
        r = self.check(self.opaque("i", None))
        self.assertLess(time.monotonic() - t0, TIMEOUT_MS / 1000 + SLACK)
        self.assertDecision(r, "deny", "token_invalid")


class OpaqueWithJwtOnlyTest(BearerTestCase):

    introspect = False

    def test_opaque_token_without_introspection(self):
        self.auth.set_keys([key("ec-1")])
        self.start()
        r = self.check(self.opaque("z", None))
        self.assertDecision(r, "deny", "token_invalid")
        self.assertDetail(r, "token_invalid",
                          "bearer token: not a JWT, and no introspection "
                          "endpoint is configured")
        self.assertEqual(self.auth.count("introspect"), 0)


class ConfigTest(tt.DaemonTestCase):
    """Bearer settings that do not go together stop trined at start."""

    def run_trined(self, *args):
        d = tt.Daemon(args=list(args))
        self.addCleanup(d.cleanup)
        d.start(wait=False)
        rc = d.wait(timeout=30)
        return rc, d.log()

    def test_jwks_url_needs_issuer(self):
        rc, log = self.run_trined("--jwks-url", "https://as.example/jwks")
        self.assertEqual(rc, 2, log)
        self.assertIn("trined: --jwks-url needs --issuer", log)

    def test_plain_http_only_to_loopback(self):
        rc, log = self.run_trined("--issuer", ISSUER, "--jwks-url",
                                  "http://as.example/jwks")
        self.assertEqual(rc, 2, log)
        self.assertIn("--jwks-url: \"http://as.example/jwks\" must use https",
                      log)

    def test_introspection_needs_client(self):
        rc, log = self.run_trined("--introspection-url",
                                  "https://as.example/introspect")
        self.assertEqual(rc, 2, log)
        self.assertIn("--introspection-url needs --client-id and "
                      "--client-secret-file", log)

    def test_missing_secret_file(self):
        rc, log = self.run_trined(
            "--introspection-url", "https://as.example/introspect",
            "--client-id", "c", "--client-secret-file", "/nonexistent/s")
        self.assertEqual(rc, 1, log)
        self.assertIn("--client-secret-file /nonexistent/s: No such file",
                      log)

    def test_world_readable_secret_warns(self):
        fd, path = tempfile.mkstemp()
        os.write(fd, b"hunter2\n")
        os.close(fd)
        os.chmod(path, 0o644)
        self.addCleanup(os.unlink, path)
        d = self.start_daemon(args=[
            "--introspection-url", "https://as.example/introspect",
            "--client-id", "c", "--client-secret-file", path])
        d.wait_log(r"level=warn event=client_secret_readable")
        self.assertNotIn("hunter2", d.log())

    def test_settings_from_the_configuration_file(self):
        auth = authserver.AuthServer()
        self.addCleanup(auth.close)
        k = key("ec-1")
        auth.set_keys([k])
        fd, conf = tempfile.mkstemp()
        os.write(fd, ("issuer = %s\njwks-url = %s\nhttp-timeout = 2000\n"
                      "token-cache-ttl = 60\n"
                      % (ISSUER, auth.url("/jwks"))).encode())
        os.close(fd)
        self.addCleanup(os.unlink, conf)
        d = self.start_daemon(args=["--config", conf])
        with d.conn() as c:
            r = c.check(bearer_params(k.token(claims())))
        self.assertDecision(r, "allow", "allow")


if __name__ == "__main__":
    tt.main()
