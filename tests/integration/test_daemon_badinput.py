"""trined against hostile input (DESIGN.md sections 3.2 and 7): every
malformed line gets its documented JSON-RPC error, never a crash or a silent
drop, while a second client checking in parallel keeps getting correct
answers. Errors are not audited as decisions."""

import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trinetest as tt  # noqa: E402

PING = b'{"jsonrpc":"2.0","id":99,"method":"ping"}\n'


class BadInputTest(tt.DaemonTestCase):

    def setUp(self):
        self.d = self.start_daemon()

    def assertStillServes(self, c):
        """The connection that received an error still answers."""
        c.send_raw(PING)
        self.assertEqual(c.reply(), {"jsonrpc": "2.0", "id": 99,
                                     "result": {"pong": True}})

    def assertNotAuditedBeyond(self, checker):
        with self.d.db() as db:
            n = db.execute("SELECT count(*) FROM decisions").fetchone()[0]
        self.assertEqual(n, checker.done)

    def test_invalid_json(self):
        with tt.Checker(self.d) as ck, self.d.conn() as c:
            for bad in (b'{"jsonrpc":"2.0","id":1,', b"{", b"nul",
                        b"{'jsonrpc':'2.0'}", b'{"a":1}}', b"[1,]",
                        b'{"jsonrpc":"2.0","id":1,"method":"ping"} x',
                        b'{"jsonrpc":"2.0","id":1,"method":"ping",}'):
                c.send_raw(bad + b"\n")
                self.assertRpcError(c.reply(), -32700, id=None)
            self.assertStillServes(c)
        self.assertEqual(ck.errors(), [])
        self.assertNotAuditedBeyond(ck)

    def test_not_a_request(self):
        with tt.Checker(self.d) as ck, self.d.conn() as c:
            for bad in ([1, 2], "ping", 42, None, True, [],
                        {"jsonrpc": "1.0", "id": 1, "method": "ping"},
                        {"id": 1, "method": "ping"},
                        {"jsonrpc": "2.0", "id": 1},
                        {"jsonrpc": "2.0", "id": 1, "method": 5},
                        {"jsonrpc": "2.0", "id": {"x": 1}, "method": "ping"},
                        {"jsonrpc": "2.0", "id": [1], "method": "ping"},
                        {"jsonrpc": "2.0", "id": 1, "method": "check",
                         "params": "x"}):
                c.send_raw(tt.line(bad))
                self.assertRpcError(c.reply(), -32600)
            self.assertStillServes(c)
        self.assertEqual(ck.errors(), [])

    def test_request_without_id_is_answered(self):
        # trine never drops a line silently: a notification is refused.
        with self.d.conn() as c:
            c.send_raw(b'{"jsonrpc":"2.0","method":"ping"}\n')
            self.assertRpcError(c.reply(), -32600, id=None)
            c.send_raw(tt.line({"jsonrpc": "2.0", "method": "check",
                                "params": tt.check_params()}))
            self.assertRpcError(c.reply(), -32600, id=None)
            self.assertStillServes(c)
        with self.d.db() as db:
            n = db.execute("SELECT count(*) FROM decisions").fetchone()[0]
        self.assertEqual(n, 0)

    def test_wrong_param_types(self):
        base = tt.check_params()
        cases = [
            ("server", dict(base, server=5)),
            ("server", {k: v for k, v in base.items() if k != "server"}),
            ("tool", dict(base, tool=["x"])),
            ("tool", {k: v for k, v in base.items() if k != "tool"}),
            ("token", dict(base, token="alice")),
            ("token", dict(base, token=[1])),
            ("arguments", dict(base, arguments=[1, 2])),
            ("arguments", dict(base, arguments="owner=acme")),
        ]
        with tt.Checker(self.d) as ck, self.d.conn() as c:
            for field, params in cases:
                r = c.call("check", params)
                self.assertRpcError(r, -32602, mentions=field)
            r = c.call("check")
            self.assertRpcError(r, -32602)
            self.assertStillServes(c)
        self.assertEqual(ck.errors(), [])
        self.assertNotAuditedBeyond(ck)

    def test_unknown_method(self):
        with tt.Checker(self.d) as ck, self.d.conn() as c:
            for i, m in enumerate(("nope", "Check", "check ", "consent",
                                   "policy.reload", "", "ping.x")):
                c.send(m, {"server": "github"}, id=1000 + i)
                self.assertRpcError(c.reply(), -32601, id=1000 + i)
            self.assertStillServes(c)
        self.assertEqual(ck.errors(), [])

    def test_non_utf8(self):
        bads = [
            b'{"jsonrpc":"2.0","id":1,"method":"ping","x":"\xff"}',
            b'{"jsonrpc":"2.0","id":1,"method":"pi\xc0\xafng"}',
            b'{"jsonrpc":"2.0","id":1,"method":"ping","x":"\xed\xa0\x80"}',
            b'{"jsonrpc":"2.0","id":1,"method":"ping","x":"\xf4\x90\x80\x80"}',
            b'{"jsonrpc":"2.0","id":1,"method":"ping","x":"\xe2\x82"}',
            b'\xef\xbb\xbf{"jsonrpc":"2.0","id":1,"method":"ping"}\xfe',
        ]
        with tt.Checker(self.d) as ck, self.d.conn() as c:
            for bad in bads:
                c.send_raw(bad + b"\n")
                self.assertRpcError(c.reply(), -32700, id=None)
            # Non-UTF-8 inside a check's arguments is a parse error too,
            # not a decision.
            p = tt.line(tt.request("check", tt.check_params(
                arguments={"owner": "acme", "repo": "WIDGETS"}), 5))
            c.send_raw(p.replace(b"WIDGETS", b"wid\x80gets"))
            self.assertRpcError(c.reply(), -32700, id=None)
            self.assertStillServes(c)
        self.assertEqual(ck.errors(), [])
        self.assertNotAuditedBeyond(ck)

    def test_nul_byte(self):
        with self.d.conn() as c:
            c.send_raw(b'{"jsonrpc":"2.0","id":1,"method":"ping"}\x00\n')
            self.assertRpcError(c.reply(), -32700, id=None)
            c.send_raw(b'{"jsonrpc":"2.0","id":1,"method":"pi\x00ng"}\n')
            self.assertRpcError(c.reply(), -32700, id=None)
            self.assertStillServes(c)

    def test_deep_nesting(self):
        deep_array = b"[" * 10000 + b"]" * 10000
        deep_object = b'{"a":' * 10000 + b"1" + b"}" * 10000
        with tt.Checker(self.d) as ck, self.d.conn() as c:
            for blob in (
                    deep_array,
                    b'{"jsonrpc":"2.0","id":1,"method":"ping","params":'
                    + deep_array + b"}",
                    b'{"jsonrpc":"2.0","id":1,"method":"check","params":'
                    b'{"server":"github","tool":"get_issue","token":{},'
                    b'"arguments":{"x":' + deep_object + b"}}}",
                    b"[" * 10000):
                c.send_raw(blob + b"\n")
                self.assertRpcError(c.reply(), -32700, id=None)
            self.assertStillServes(c)
        self.assertEqual(ck.errors(), [])
        self.assertNotAuditedBeyond(ck)

    def test_disconnect_mid_line(self):
        with tt.Checker(self.d) as ck:
            for i in range(50):
                with self.d.conn() as c:
                    half = tt.line(tt.request("check", tt.check_params(), i))
                    c.send_raw(half[:len(half) // 2])
            # A client that sends whole lines and leaves before reading.
            for i in range(20):
                with self.d.conn() as c:
                    c.send_raw(tt.line(tt.request(
                        "check", tt.check_params(), i)) * 10)
            # One that resets the connection (SO_LINGER 0) mid-line.
            c = self.d.conn()
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                              b"\x01\x00\x00\x00\x00\x00\x00\x00")
            c.send_raw(b'{"jsonrpc":"2.0","id":1,"meth')
            c.close()
            time.sleep(0.2)
        self.assertEqual(ck.errors(), [])
        with self.d.conn() as c:
            self.assertStillServes(c)

    def test_empty_lines_and_whitespace(self):
        # Blank and whitespace-only lines are not valid JSON: each gets a
        # parse error, not silence (and the framing stays in step).
        with self.d.conn() as c:
            c.send_raw(b"   \n")
            self.assertRpcError(c.reply(), -32700, id=None)
            c.send_raw(b' \t{"jsonrpc":"2.0","id":3,"method":"ping"}  \n')
            self.assertEqual(c.reply()["result"], {"pong": True})
            self.assertStillServes(c)

    def test_byte_by_byte(self):
        # Framing does not depend on how the bytes arrive: three requests
        # (one with a multi-byte character) written one byte at a time.
        blob = (tt.line(tt.request("ping", None, 1))
                + tt.line(tt.request("check", tt.check_params(
                    arguments={"owner": "acme", "repo": "widgets",
                               "note": "caf\u00e9 \u2603 \U0001f600"}), 2))
                + tt.line(tt.request("ping", None, 3)))
        with self.d.conn() as c:
            for i in range(len(blob)):
                c.send_raw(blob[i:i + 1])
            self.assertEqual(c.reply()["id"], 1)
            r = c.reply()
            self.assertEqual(r["id"], 2)
            self.assertDecision(r["result"], "allow", "allow")
            self.assertEqual(c.reply()["id"], 3)

    def test_crlf_line_end(self):
        # "\r" is JSON whitespace: a CRLF-terminated request is valid.
        with self.d.conn() as c:
            c.send_raw(b'{"jsonrpc":"2.0","id":4,"method":"ping"}\r\n')
            self.assertEqual(c.reply(), {"jsonrpc": "2.0", "id": 4,
                                         "result": {"pong": True}})

    def test_nul_escapes_never_allow(self):
        # A \u0000 is valid JSON and is read; inside a name it must never
        # be read as the end of it. Each case gets exactly its answer.
        cases = [
            (tt.check_params(tool="get_issue\u0000evil"),
             -32602, "params.tool must not contain a NUL character"),
            (tt.check_params(server="github\u0000x"),
             -32602, "params.server must not contain a NUL character"),
            (tt.check_params(session="s\u0000x"),
             -32602, "params.session must not contain a NUL character"),
            (tt.check_params(sub="alice\u0000root"),
             "deny", "token_invalid"),
            (tt.check_params(client_id="claude-desktop\u0000x"),
             "deny", "token_invalid"),
            # U+0000 is a control character (DESIGN section 2.5): the
            # template refuses it, as it refuses U+0001.
            (tt.check_params(arguments={"owner": "acme",
                                        "repo": "widgets\u0000/../secrets"}),
             "deny", "argument_invalid"),
            (tt.check_params(arguments={"owner": "acme",
                                        "repo": "widgets\u0000"}),
             "deny", "argument_invalid"),
        ]
        with self.d.conn() as c:
            for p, want, what in cases:
                c.send_raw(tt.line(tt.request("check", p, 6)))
                r = c.reply()
                if isinstance(want, int):
                    self.assertRpcError(r, want, id=6, mentions=what)
                else:
                    self.assertDecision(r["result"], want, what)
            # A method that is "ping" up to a NUL is not ping.
            c.send_raw(b'{"jsonrpc":"2.0","id":7,"method":"ping\\u0000x"}\n')
            self.assertRpcError(c.reply(), -32600, id=7, mentions="NUL")
            self.assertStillServes(c)

    def test_deep_but_parseable_arguments(self):
        # Nesting well inside any sane parser limit, in the arguments that
        # get canonicalised, hashed and logged: a decision or a parse
        # error, never a crash.
        for depth in (100, 500, 1000):
            # {"a":[{"a":[ ... {"x":1} ... ]}]}: two levels per step.
            nested = '{"a":[' * depth + '{"x":1}' + "]}" * depth
            p = tt.line(tt.request("check", tt.check_params(
                arguments={"owner": "acme", "repo": "widgets",
                           "deep": "DEEP"}), 8))
            with self.d.conn() as c:
                c.send_raw(p.replace(b'"DEEP"', nested.encode()))
                r = c.reply()
                if "error" in r:
                    self.assertRpcError(r, -32700, id=None)
                else:
                    self.assertDecision(r["result"], "allow", "allow")
                self.assertStillServes(c)

    def test_many_argument_keys(self):
        args = {"k%05d" % i: i for i in range(40000)}
        args.update(owner="acme", repo="widgets")
        with self.d.conn() as c:
            r = c.check(tt.check_params(arguments=args))
            self.assertDecision(r, "allow", "allow")
        with self.d.db() as db:
            row = db.execute("SELECT arguments FROM decisions WHERE id=?",
                             (r["audit_id"],)).fetchone()
        self.assertEqual(json.loads(row["arguments"]), args)


class OversizeTest(tt.DaemonTestCase):

    def test_line_over_small_limit(self):
        d = self.start_daemon(max_line=4096)
        with tt.Checker(d) as ck:
            # Just under the limit: an ordinary request, padded.
            with d.conn() as c:
                pad = "p" * 3500
                r = c.check(tt.check_params(
                    arguments={"owner": "acme", "repo": "widgets",
                               "pad": pad}))
                self.assertDecision(r, "allow", "allow")
                # Over the limit: one parse error, then the connection
                # closes.
                # A good request, then one over the limit, then another,
                # in one write: the first is answered, the second gets one
                # parse error, and the connection closes.
                c.send_raw(tt.line(tt.request("ping", None, 5))
                           + b'{"jsonrpc":"2.0","id":1,"method":"ping","x":"'
                           + b"y" * 5000 + b'"}\n' + PING)
                self.assertEqual(c.reply()["id"], 5)
                self.assertRpcError(c.reply(), -32700, id=None)
                self.assertTrue(c.at_eof())
            # Over the limit without any newline at all.
            with d.conn() as c:
                try:
                    c.send_raw(b"z" * 20000)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                r = c.reply()
                self.assertRpcError(r, -32700, id=None)
                self.assertTrue(c.at_eof())
        self.assertEqual(ck.errors(), [])

    def test_limit_boundary(self):
        # "At most N bytes": a line of exactly N bytes (its newline not
        # counted) is served, one of N + 1 is refused.
        d = self.start_daemon(max_line=4096)
        base = b'{"jsonrpc":"2.0","id":1,"method":"ping","x":"'
        for n, ok in ((4095, True), (4096, True), (4097, False)):
            text = base + b"y" * (n - len(base) - 2) + b'"}'
            self.assertEqual(len(text), n)
            with d.conn() as c:
                c.send_raw(text + b"\n")
                r = c.reply()
                if ok:
                    self.assertEqual(r["result"], {"pong": True}, n)
                else:
                    self.assertRpcError(r, -32700, id=None)
                    self.assertTrue(c.at_eof())

    def test_line_over_default_limit(self):
        d = self.start_daemon()
        with tt.Checker(d) as ck:
            with d.conn() as c:
                # 900 KiB fits in the default 1 MiB.
                big = "b" * (900 * 1024)
                r = c.check(tt.check_params(
                    arguments={"owner": "acme", "repo": "widgets",
                               "big": big}))
                self.assertDecision(r, "allow", "allow")
            with d.conn() as c:
                blob = (b'{"jsonrpc":"2.0","id":1,"method":"ping","x":"'
                        + b"y" * (2 * 1024 * 1024) + b'"}\n')
                try:
                    c.send_raw(blob)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.assertRpcError(c.reply(), -32700, id=None)
                self.assertTrue(c.at_eof())
        self.assertEqual(ck.errors(), [])


class SlowReaderTest(tt.DaemonTestCase):

    def test_client_that_never_reads(self):
        d = self.start_daemon()
        rss_before = d.rss_kib()
        one = tt.line(tt.request("check", tt.check_params(), 1))
        chunk = one * 200
        limit = 64 * 1024 * 1024
        sent = 0
        with tt.Checker(d) as ck:
            hog = d.conn()
            hog.sock.setblocking(False)
            stalled_since = None
            view = memoryview(chunk)
            pos = 0
            # Push requests until the daemon stops taking them (it must
            # stop reading a client whose replies pile up), or until a
            # limit no bounded daemon would reach.
            while sent < limit:
                try:
                    n = hog.sock.send(view[pos:])
                except BlockingIOError:
                    n = 0
                if n:
                    sent += n
                    pos = (pos + n) % len(chunk)
                    stalled_since = None
                    continue
                now = time.monotonic()
                if stalled_since is None:
                    stalled_since = now
                elif now - stalled_since > 3.0:
                    break
                time.sleep(0.01)
            self.assertLess(sent, limit,
                            "trined kept reading %d bytes from a client "
                            "that never reads its replies" % sent)
            rss_growth = d.rss_kib() - rss_before
            # AddressSanitizer keeps freed memory in quarantine, so its
            # resident size says little; the stall above is what counts.
            if not tt.SANITIZED:
                self.assertLess(rss_growth, 96 * 1024,
                                "trined grew by %d KiB for one slow reader"
                                % rss_growth)
            # Others are unaffected while the hog is stuck.
            with d.conn() as c:
                t0 = time.monotonic()
                self.assertEqual(c.result("ping"), {"pong": True})
                self.assertDecision(c.check(tt.check_params()),
                                    "allow", "allow")
                self.assertLess(time.monotonic() - t0, 10.0)
            hog.close()
        self.assertEqual(ck.errors(), [])
        with d.conn() as c:
            self.assertEqual(c.result("ping"), {"pong": True})


if __name__ == "__main__":
    tt.main()
