"""trine.aio.AsyncClient: pipelining on one connection, against a real
trined and against fake daemons."""

from __future__ import annotations

import asyncio
import builtins
import threading
import time
import unittest
from typing import Any, Awaitable, Callable, Dict, List, Tuple
from unittest import mock

import support
from support import DaemonTestCase, FakeConn, FakeDaemon, token

import trine
from trine.aio import AsyncClient


def run(coro_fn: Callable[[], Awaitable[Any]]) -> Any:
    """Runs one coroutine function in a fresh event loop."""
    return asyncio.run(coro_fn())  # type: ignore[arg-type]


class CountingConnect:
    """Wraps asyncio.open_unix_connection to count connections."""

    def __init__(self) -> None:
        self.count = 0
        self.real = asyncio.open_unix_connection

    async def __call__(self, *args: Any, **kw: Any) -> Any:
        self.count += 1
        return await self.real(*args, **kw)


def pipelined_case(i: int) -> Tuple[Dict[str, Any], Tuple[str, str, Any]]:
    """Returns (check kwargs, expected (decision, reason, resource)) for
    the i-th of a mix of requests. The resource, when the result names
    one, differs for every i, so a reply handed to the wrong call shows."""
    repo = "r%d" % i
    kind = i % 5
    if kind == 0:
        return ({"arguments": {"owner": "acme", "repo": repo},
                 "token": token(scope="repo:read")},
                ("allow", "allow", None))
    if kind == 1:
        return ({"arguments": {"owner": "acme", "repo": repo},
                 "token": token(scope="openid")},
                ("deny", "scope_missing", "repo:acme/" + repo))
    if kind == 2:
        return ({"arguments": {"owner": "globex", "repo": repo},
                 "token": token(sub="bob", scope="repo:read")},
                ("deny", "user_denied", "repo:globex/" + repo))
    if kind == 3:
        return ({"arguments": {"owner": "acme", "repo": "secrets"},
                 "token": token(scope="repo:read")},
                ("deny", "forbidden", "repo:acme/secrets"))
    return ({"arguments": {"owner": "acme", "repo": repo},
             "token": token(scope="repo:read", client_id="ci-bot")},
            ("deny", "agent_denied", "repo:acme/" + repo))


class PipelineTest(DaemonTestCase):

    def test_200_concurrent_checks_on_one_connection(self) -> None:
        counting = CountingConnect()

        async def main() -> List[Any]:
            async with AsyncClient(self.daemon.socket, timeout=30) as c:
                calls = [c.check("github", "get_issue",
                                 **pipelined_case(i)[0])
                         for i in range(200)]
                return await asyncio.gather(*calls, return_exceptions=True)

        with mock.patch("asyncio.open_unix_connection", counting):
            results = run(main)
        self.assertEqual(counting.count, 1)
        self.assertEqual(len(results), 200)
        for i, d in enumerate(results):
            decision, reason, resource = pipelined_case(i)[1]
            with self.subTest(i=i):
                self.assertIsInstance(d, trine.Decision)
                self.assertEqual((d.decision, d.reason), (decision, reason))
                self.assertEqual(d.reasons[0].get("resource"), resource)
        ids = [d.audit_id for d in results]
        self.assertEqual(len(set(ids)), 200)

    def test_errors_do_not_disturb_other_calls(self) -> None:
        async def main() -> List[Any]:
            async with AsyncClient(self.daemon.socket) as c:
                return await asyncio.gather(
                    c.check("github", "get_issue", {"owner": "acme",
                                                    "repo": "a"},
                            token=token()),
                    c.check(1, "get_issue", {}, token=token()),
                    c.ping(),
                    c.grant_consent(0),
                    c.policy_tools("github"),
                    return_exceptions=True)

        allow, bad, pong, bad_grant, tools = run(main)
        self.assertEqual(allow.decision, "allow")
        self.assertIsInstance(bad, trine.InvalidParams)
        self.assertEqual((bad.code, bad.message),
                         (-32602, "params.server must be a string"))
        self.assertIs(pong, True)
        self.assertIsInstance(bad_grant, trine.InvalidParams)
        self.assertEqual(bad_grant.message,
                         "params.audit_id must be a positive integer")
        self.assertEqual(tools, {"tools": ["get_issue", "create_issue",
                                           "delete_repo"],
                                 "wildcard": False})

    def test_consent_flow(self) -> None:
        async def main() -> None:
            async with AsyncClient(self.daemon.socket) as c:
                args = {"owner": "acme", "repo": "widgets", "title": "t"}
                d = await c.check("github", "create_issue", args,
                                  token=token(), session="aio-1")
                self.assertEqual(d.decision, "consent_required")
                self.assertEqual(d.consent_mode, "session")
                cid = await c.grant_consent(d.audit_id)
                for _ in range(2):
                    again = await c.check("github", "create_issue", args,
                                          token=token(), session="aio-1")
                    self.assertEqual(again.decision, "allow")
                listed = await c.list_consents(user="alice")
                self.assertEqual([g["id"] for g in listed
                                  if g["session"] == "aio-1"], [cid])
                self.assertEqual(await c.revoke_consent(cid), 1)
                d = await c.check("github", "create_issue", args,
                                  token=token(), session="aio-1")
                self.assertEqual(d.decision, "consent_required")
                status = await c.policy_status()
                self.assertEqual(status["revision"], d.policy_revision)

        run(main)

    def test_one_client_in_two_event_loops(self) -> None:
        client = AsyncClient(self.daemon.socket)
        self.assertIs(run(client.ping), True)
        self.assertIs(run(client.ping), True)
        run(client.close)


class AsyncRestartTest(unittest.TestCase):

    def setUp(self) -> None:
        if not support.os.access(support.TRINED_BIN, support.os.X_OK):
            self.skipTest("no trined binary at %s" % support.TRINED_BIN)
        self.daemon = support.Daemon()
        self.addCleanup(self.daemon.cleanup)
        self.daemon.start()

    def restart_test(self, restart: Callable[[], Awaitable[None]]) -> None:
        args = {"owner": "acme", "repo": "widgets"}

        async def main() -> None:
            async with AsyncClient(self.daemon.socket) as c:
                first = await c.check("github", "get_issue", args,
                                      token=token())
                await restart()
                second = await c.check("github", "get_issue", args,
                                       token=token())
                self.assertEqual(second.decision, "allow")
                self.assertEqual(second.audit_id, first.audit_id + 1)

        run(main)

    def test_restart_seen_by_the_reader(self) -> None:
        async def restart() -> None:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, self.daemon.stop)
            await asyncio.sleep(0.05)
            await loop.run_in_executor(None, self.daemon.start)

        self.restart_test(restart)

    def test_restart_unseen_until_the_write_fails(self) -> None:
        """The loop is blocked through the restart, so the reader has not
        seen the end of the old connection: the write fails, nothing of
        the check was taken, and it is sent on a new connection."""
        async def restart() -> None:
            self.daemon.stop()
            self.daemon.start()

        self.restart_test(restart)

    def test_down_then_up(self) -> None:
        async def main() -> None:
            async with AsyncClient(self.daemon.socket) as c:
                self.assertIs(await c.ping(), True)
                await asyncio.get_running_loop().run_in_executor(
                    None, self.daemon.stop)
                with self.assertRaises(trine.ConnectionError) as cm:
                    await c.ping()
                self.assertEqual(str(cm.exception),
                                 "cannot connect to trined at %s: no such "
                                 "socket (is trined running?)"
                                 % self.daemon.socket)
                await asyncio.get_running_loop().run_in_executor(
                    None, self.daemon.start)
                self.assertIs(await c.ping(), True)

        run(main)


class AsyncFaultTest(unittest.TestCase):

    def fake(self, *handlers: Any) -> FakeDaemon:
        fake = FakeDaemon(*handlers)
        self.addCleanup(fake.close)
        return fake

    def test_missing_socket(self) -> None:
        path = "/nonexistent-trine-dir/trine.sock"

        async def main() -> None:
            async with AsyncClient(path) as c:
                await c.check("github", "get_issue", {}, token=token())

        with self.assertRaises(trine.ConnectionError) as cm:
            run(main)
        self.assertEqual(str(cm.exception),
                         "cannot connect to trined at %s: no such socket "
                         "(is trined running?)" % path)
        self.assertIsInstance(cm.exception, builtins.ConnectionError)

    def test_timeout(self) -> None:
        fake = self.fake(support.silent)

        async def main() -> float:
            async with AsyncClient(fake.socket, timeout=0.4) as c:
                start = time.monotonic()
                with self.assertRaises(trine.TimeoutError) as cm:
                    await c.check("github", "get_issue", {}, token=token())
                self.assertEqual(str(cm.exception),
                                 "no reply from trined at %s within 0.4s "
                                 "to check" % fake.socket)
                self.assertIsInstance(cm.exception, builtins.TimeoutError)
                return time.monotonic() - start

        elapsed = run(main)
        self.assertGreaterEqual(elapsed, 0.39)
        self.assertLess(elapsed, 1.5)

    def test_late_reply_is_dropped(self) -> None:
        """A call times out; its reply comes later on the same connection
        and is dropped by id, never handed to the next call."""
        def late(conn: FakeConn) -> None:
            first = conn.read_request()
            time.sleep(0.6)
            assert first is not None
            conn.answer(first, {"pong": False})
            second = conn.read_request()
            assert second is not None
            conn.answer(second, {"pong": True})
            support.silent(conn)

        fake = self.fake(late)

        async def main() -> None:
            async with AsyncClient(fake.socket, timeout=0.3) as c:
                with self.assertRaises(trine.TimeoutError):
                    await c.ping()
                c._timeout = 5.0
                self.assertIs(await c.ping(), True)

        run(main)
        self.assertEqual(fake.connections, 1)
        self.assertEqual([r["id"] for r in fake.requests], [1, 2])

    def test_replies_matched_by_id_in_any_order(self) -> None:
        def reverse(conn: FakeConn) -> None:
            reqs = [conn.read_request() for _ in range(30)]
            for req in reversed(reqs):
                assert req is not None
                conn.answer(req, {"tools": [req["params"]["server"]],
                                  "wildcard": False})
            support.silent(conn)

        fake = self.fake(reverse)

        async def main() -> List[Any]:
            async with AsyncClient(fake.socket) as c:
                return await asyncio.gather(
                    *[c.policy_tools("s%d" % i) for i in range(30)])

        results = run(main)
        self.assertEqual([r["tools"] for r in results],
                         [["s%d" % i] for i in range(30)])
        self.assertEqual(fake.connections, 1)

    def test_broken_connection_fails_pending_checks(self) -> None:
        def read_five_then_close(conn: FakeConn) -> None:
            for _ in range(5):
                conn.read_request()
            conn.sock.close()

        fake = self.fake(read_five_then_close, support.echo_pong)

        async def main() -> Tuple[List[Any], bool]:
            async with AsyncClient(fake.socket) as c:
                results = await asyncio.gather(
                    *[c.check("github", "get_issue", {}, token=token())
                      for _ in range(5)], return_exceptions=True)
                return results, await c.ping()

        results, pong = run(main)
        for r in results:
            self.assertIsInstance(r, trine.ConnectionError)
            self.assertEqual(
                str(r), "the connection to trined broke after check was "
                "sent (the daemon closed the connection); whether it was "
                "carried out is unknown")
        self.assertIs(pong, True)
        self.assertEqual(fake.methods(), ["check"] * 5 + ["ping"])
        self.assertEqual(fake.connections, 2)

    def test_reads_are_resent_once(self) -> None:
        fake = self.fake(support.close_after_reading, support.echo_pong)

        async def main() -> bool:
            async with AsyncClient(fake.socket) as c:
                return await c.ping()

        self.assertIs(run(main), True)
        self.assertEqual(fake.methods(), ["ping", "ping"])

    def test_protocol_error_fails_every_pending_call(self) -> None:
        def garbage(conn: FakeConn) -> None:
            for _ in range(3):
                conn.read_request()
            conn.send_raw(b"garbage\n")
            support.silent(conn)

        fake = self.fake(garbage, support.echo_pong)

        async def main() -> Tuple[List[Any], bool]:
            async with AsyncClient(fake.socket) as c:
                results = await asyncio.gather(
                    *[c.ping() for _ in range(3)], return_exceptions=True)
                return results, await c.ping()

        results, pong = run(main)
        for r in results:
            self.assertIsInstance(r, trine.ProtocolError)
            self.assertTrue(str(r).startswith("invalid reply from trined"))
        self.assertIs(pong, True)
        self.assertEqual(fake.connections, 2)

    def test_unknown_id_is_a_protocol_error(self) -> None:
        def wrong(conn: FakeConn) -> None:
            req = conn.read_request()
            assert req is not None
            conn.send({"jsonrpc": "2.0", "id": 99, "result": {}})
            support.silent(conn)

        fake = self.fake(wrong)

        async def main() -> None:
            async with AsyncClient(fake.socket) as c:
                with self.assertRaises(trine.ProtocolError) as cm:
                    await c.check("github", "get_issue", {}, token=token())
                self.assertEqual(str(cm.exception),
                                 "reply id 99 from trined matches no "
                                 "request")

        run(main)

    def test_close(self) -> None:
        fake = self.fake(support.silent)
        seen = threading.Event()

        async def main() -> None:
            c = AsyncClient(fake.socket, timeout=20)
            call = asyncio.ensure_future(
                c.check("github", "get_issue", {}, token=token()))
            while not fake.requests:
                await asyncio.sleep(0.01)
            seen.set()
            await c.close()
            with self.assertRaises(trine.ConnectionError) as cm:
                await call
            self.assertEqual(
                str(cm.exception), "the connection to trined broke after "
                "check was sent (the client was closed); whether it was "
                "carried out is unknown")
            with self.assertRaises(trine.ConnectionError) as cm:
                await c.ping()
            self.assertEqual(str(cm.exception), "the client is closed")

        run(main)
        self.assertTrue(seen.is_set())


if __name__ == "__main__":
    unittest.main()
