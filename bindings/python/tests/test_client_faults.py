"""trine.Client against fake daemons: timeouts, lost replies, retries and
replies that are not valid."""

from __future__ import annotations

import builtins
import threading
import time
import unittest
from typing import Any, Dict
from unittest import mock

import support
from support import FakeConn, FakeDaemon, token

import trine

ALLOW = {"decision": "allow", "reason": "allow", "audit_id": 7,
         "policy_revision": "sha256:" + "0" * 64,
         "reasons": [{"code": "allow"}], "matched": []}


RESULTS: Dict[str, Any] = {
    "check": ALLOW, "consent.grant": {"consent_id": 11},
    "consent.revoke": {"revoked": 2}, "ping": {"pong": True}}


def answer_allow(conn: FakeConn) -> None:
    """Answers every check with an allow decision (and the other methods
    with a result of their shape)."""
    while True:
        req = conn.read_request()
        if req is None:
            return
        conn.answer(req, RESULTS[req["method"]])


class FaultTest(unittest.TestCase):

    def fake(self, *handlers: Any) -> FakeDaemon:
        fake = FakeDaemon(*handlers)
        self.addCleanup(fake.close)
        return fake

    def client(self, fake: FakeDaemon, timeout: float = 5.0
               ) -> trine.Client:
        client = trine.Client(fake.socket, timeout=timeout)
        self.addCleanup(client.close)
        return client

    def test_timeout(self) -> None:
        fake = self.fake(support.silent)
        client = self.client(fake, timeout=0.4)
        start = time.monotonic()
        with self.assertRaises(trine.TimeoutError) as cm:
            client.check("github", "get_issue", {}, token=token())
        elapsed = time.monotonic() - start
        self.assertGreaterEqual(elapsed, 0.39)
        self.assertLess(elapsed, 1.5)
        self.assertEqual(str(cm.exception),
                         "no reply from trined at %s within 0.4s to check"
                         % fake.socket)
        self.assertIsInstance(cm.exception, builtins.TimeoutError)
        self.assertIsInstance(cm.exception, trine.Error)
        self.assertIsNone(client._sock)

    def test_late_reply_is_never_taken_for_the_next(self) -> None:
        """A timeout drops the connection: the late reply to the first
        request cannot be read as the reply to the second."""
        late_sent = threading.Event()

        def late(conn: FakeConn) -> None:
            req = conn.read_request()
            time.sleep(0.6)
            assert req is not None
            try:
                conn.answer(req, {"pong": False})
            except OSError:
                pass  # the client has hung up, as it should
            late_sent.set()

        fake = self.fake(late, support.echo_pong)
        client = self.client(fake, timeout=0.3)
        with self.assertRaises(trine.TimeoutError):
            client.ping()
        self.assertTrue(late_sent.wait(5))
        self.assertIs(client.ping(), True)
        self.assertEqual(fake.connections, 2)
        self.assertEqual([r["id"] for r in fake.requests], [1, 2])

    def test_check_is_not_resent_when_its_reply_is_lost(self) -> None:
        fake = self.fake(support.close_after_reading, answer_allow)
        client = self.client(fake)
        with self.assertRaises(trine.ConnectionError) as cm:
            client.check("github", "get_issue", {}, token=token())
        self.assertEqual(
            str(cm.exception),
            "the connection to trined broke after check was sent (the "
            "daemon closed the connection); whether it was carried out is "
            "unknown")
        self.assertEqual(fake.methods(), ["check"])
        # The client recovers on the next call.
        self.assertEqual(client.check("github", "get_issue", {},
                                      token=token()).decision, "allow")
        self.assertEqual(fake.methods(), ["check", "check"])

    def test_consent_changes_are_not_resent(self) -> None:
        fake = self.fake(support.close_after_reading)
        client = self.client(fake)
        with self.assertRaises(trine.ConnectionError):
            client.grant_consent(3)
        with self.assertRaises(trine.ConnectionError):
            client.revoke_consent(3)
        self.assertEqual(fake.methods(), ["consent.grant", "consent.revoke"])

    def test_reads_are_resent_once(self) -> None:
        fake = self.fake(support.close_after_reading, support.echo_pong)
        client = self.client(fake)
        self.assertIs(client.ping(), True)
        self.assertEqual(fake.methods(), ["ping", "ping"])
        self.assertEqual(fake.connections, 2)

    def test_reads_are_resent_only_once(self) -> None:
        fake = self.fake(support.close_after_reading)
        client = self.client(fake)
        with self.assertRaises(trine.ConnectionError) as cm:
            client.list_consents()
        self.assertIn("after consent.list was sent", str(cm.exception))
        self.assertEqual(fake.methods(), ["consent.list", "consent.list"])

    def pinged_then_closed(self):
        """A client that got its ping answered on a connection the fake
        server then closed; the next connections answer allow."""
        closed = threading.Event()

        def once(conn: FakeConn) -> None:
            req = conn.read_request()
            assert req is not None
            conn.answer(req, {"pong": True})
            conn.sock.close()
            closed.set()

        fake = self.fake(once, answer_allow)
        client = self.client(fake)
        self.assertIs(client.ping(), True)
        self.assertTrue(closed.wait(5))
        time.sleep(0.05)
        return fake, client

    def test_check_on_a_connection_closed_while_idle(self) -> None:
        fake, client = self.pinged_then_closed()
        d = client.check("github", "get_issue", {}, token=token())
        self.assertEqual(d.decision, "allow")
        self.assertEqual(fake.methods(), ["ping", "check"])

    def test_check_whose_write_fails_is_resent(self) -> None:
        """The peer is gone but the idle check did not notice (a race):
        the write fails before any byte is taken, so the check is sent on
        a new connection, once."""
        fake, client = self.pinged_then_closed()
        with mock.patch.object(trine.Client, "_idle_ok",
                               staticmethod(lambda sock: True)):
            d = client.check("github", "get_issue", {}, token=token())
        self.assertEqual(d.decision, "allow")
        self.assertEqual(fake.methods(), ["ping", "check"])
        self.assertEqual(fake.connections, 2)

    def test_wrong_id(self) -> None:
        def wrong(conn: FakeConn) -> None:
            req = conn.read_request()
            assert req is not None
            conn.send({"jsonrpc": "2.0", "id": req["id"] + 100,
                       "result": ALLOW})
            support.silent(conn)

        fake = self.fake(wrong, answer_allow)
        client = self.client(fake)
        with self.assertRaises(trine.ProtocolError) as cm:
            client.check("github", "get_issue", {}, token=token())
        self.assertEqual(str(cm.exception),
                         "reply id 101 from trined does not match request "
                         "id 1")
        self.assertIsInstance(cm.exception, trine.ConnectionError)
        self.assertIsNone(client._sock)
        self.assertEqual(client.check("github", "get_issue", {},
                                      token=token()).reason, "allow")
        self.assertEqual(fake.connections, 2)

    def test_invalid_replies(self) -> None:
        bad = [
            (b"not json\n", "invalid reply from trined: Expecting value: "
             "line 1 column 1 (char 0)"),
            (b'{"jsonrpc":"2.0","id":1,"result":NaN}\n',
             "invalid reply from trined: NaN is not JSON"),
            (b'[1]\n', "invalid reply from trined: not a JSON-RPC 2.0 "
             "response"),
            (b'{"jsonrpc":"1.0","id":1,"result":{}}\n',
             "invalid reply from trined: not a JSON-RPC 2.0 response"),
            (b'{"jsonrpc":"2.0","id":1}\n', "invalid reply from trined: a "
             "response holds exactly one of result and error"),
            (b'{"jsonrpc":"2.0","id":1,"error":{"code":"x"}}\n',
             "invalid reply from trined: malformed error object"),
            (b'{"jsonrpc":"2.0","id":1,"result":{"decision":"maybe"}}\n',
             "check: unknown decision 'maybe'"),
            (b'{"jsonrpc":"2.0","id":1,"result":{"decision":"allow",'
             b'"reason":"allow","audit_id":"7"}}\n',
             "check: audit_id is not an integer"),
            (b'{"jsonrpc":"2.0","id":1.0,"result":{}}\n',
             "reply id 1.0 from trined does not match request id 1"),
        ]
        for raw, message in bad:
            with self.subTest(raw=raw):
                def send_bad(conn: FakeConn, raw: bytes = raw) -> None:
                    conn.read_request()
                    conn.send_raw(raw)
                    support.silent(conn)

                fake = FakeDaemon(send_bad)
                try:
                    client = trine.Client(fake.socket)
                    with self.assertRaises(trine.ProtocolError) as cm:
                        client.check("github", "get_issue", {},
                                     token=token())
                    self.assertEqual(str(cm.exception), message)
                    client.close()
                finally:
                    fake.close()

    def test_error_without_id_is_raised(self) -> None:
        """A refused peer gets one error line with id null, then the
        daemon closes: the client raises that error."""
        def refuse(conn: FakeConn) -> None:
            conn.send({"jsonrpc": "2.0", "id": None, "error": {
                "code": -32600, "message": "peer uid 1234 is not allowed"}})
            conn.sock.close()

        fake = self.fake(refuse)
        client = self.client(fake)
        with self.assertRaises(trine.InvalidRequest) as cm:
            client.check("github", "get_issue", {}, token=token())
        self.assertEqual((cm.exception.code, cm.exception.message),
                         (trine.INVALID_REQUEST,
                          "peer uid 1234 is not allowed"))
        self.assertIsNone(client._sock)

    def test_error_data_is_kept(self) -> None:
        def with_data(conn: FakeConn) -> None:
            req = conn.read_request()
            assert req is not None
            conn.send({"jsonrpc": "2.0", "id": req["id"], "error": {
                "code": -32099, "message": "custom", "data": {"k": [1]}}})
            support.silent(conn)

        fake = self.fake(with_data)
        client = self.client(fake)
        with self.assertRaises(trine.RpcError) as cm:
            client.ping()
        self.assertIs(type(cm.exception), trine.RpcError)
        self.assertEqual((cm.exception.code, cm.exception.message,
                          cm.exception.data), (-32099, "custom", {"k": [1]}))

    def test_request_lines(self) -> None:
        """What goes on the wire: one compact line per request, ids
        increasing, params as given."""
        fake = self.fake(answer_allow)
        client = self.client(fake)
        client.check("github", "get_issue", {"owner": "é"},
                     token=token(), session="s")
        client.check("github", "t", bearer="abc")
        self.assertEqual(client.grant_consent(5, ttl=60), 11)
        self.assertEqual(client.revoke_consent(user="alice", tool="t"), 2)
        expected: Dict[str, Any] = {
            "jsonrpc": "2.0", "id": 1, "method": "check", "params": {
                "server": "github", "tool": "get_issue",
                "arguments": {"owner": "é"}, "session": "s",
                "token": token()}}
        self.assertEqual(fake.requests[0], expected)
        self.assertEqual(fake.requests[1], {
            "jsonrpc": "2.0", "id": 2, "method": "check",
            "params": {"server": "github", "tool": "t", "bearer": "abc"}})
        self.assertEqual(fake.requests[2]["params"],
                         {"audit_id": 5, "ttl": 60})
        self.assertEqual(fake.requests[3]["params"],
                         {"user": "alice", "tool": "t"})
        self.assertEqual([r["id"] for r in fake.requests], [1, 2, 3, 4])

    def test_close_wakes_a_waiting_thread(self) -> None:
        fake = self.fake(support.silent)
        client = trine.Client(fake.socket, timeout=20)
        errors = []

        def call() -> None:
            try:
                client.check("github", "get_issue", {}, token=token())
            except Exception as e:  # noqa: BLE001 - asserted below
                errors.append(e)

        t = threading.Thread(target=call)
        t.start()
        deadline = time.monotonic() + 5
        while not fake.requests and time.monotonic() < deadline:
            time.sleep(0.01)
        start = time.monotonic()
        client.close()
        t.join(5)
        self.assertFalse(t.is_alive())
        self.assertLess(time.monotonic() - start, 2)
        self.assertEqual(len(errors), 1)
        self.assertIsInstance(errors[0], trine.ConnectionError)


if __name__ == "__main__":
    unittest.main()
