"""trined's resource limits (docs/daemon.md, "Limits"): the connection
limit, the descriptor limit, the idle timeout and backpressure on a client
that does not read its replies. Each test also shows that the other clients
are served meanwhile, and that memory stays bounded.

Why the memory bounds hold: every open connection costs at most its input
buffer (--max-line plus one 64 KiB read), its unsent replies (about
--max-pending-bytes, plus the replies of the requests still in progress),
and its requests in progress (--max-pending-replies of them, 8 MiB of
request lines at most); a connection over --max-connections, or past the
descriptor limit, is closed as soon as it is accepted and costs nothing.
The tests below stay far inside those figures: 200 idle connections hold a
few KiB each, and one slow reader holds about 4 MiB of replies and one read
of requests. 64 MiB leaves room for SQLite's page cache and the allocator's
slack, and is still far below what an unbounded daemon reaches (a thousand
connections, or a client pushing requests for seconds).
"""

import json
import os
import re
import resource
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trinetest as tt  # noqa: E402

# The most a daemon may grow (in KiB) in each test below.
RSS_BOUND_KIB = 64 * 1024

PING = b'{"jsonrpc":"2.0","id":99,"method":"ping"}\n'


def scaled(seconds):
    return seconds * tt.TIMEOUT_SCALE


def try_ping(path, id, timeout):
    """Connects and pings. Returns (conn, True) when answered, or (None,
    False) when the daemon closed the connection without a reply (it was
    refused)."""
    c = tt.Conn(path, timeout)
    try:
        c.send("ping", id=id)
    except (BrokenPipeError, ConnectionResetError):
        c.close()
        return None, False
    text = c.read_line()
    if text is None:
        c.close()
        return None, False
    r = json.loads(text)
    if r != {"jsonrpc": "2.0", "id": id, "result": {"pong": True}}:
        c.close()
        raise AssertionError("unexpected reply %r" % (r,))
    return c, True


def cpu_seconds(pid):
    """User plus system CPU time of a process, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


class MaxConnectionsTest(tt.DaemonTestCase):

    def test_refused_past_the_limit(self):
        d = self.start_daemon(args=["--max-connections", "200"])
        rss_before = d.rss_kib()
        served = []
        refused = 0
        first_refused = None
        accepted_after_refusal = 0
        try:
            # An ordinary client checks all along; it holds one of the 200.
            with tt.Checker(d) as ck:
                for i in range(1000):
                    c, ok = try_ping(d.socket, i, tt.IO_TIMEOUT)
                    if ok:
                        served.append(c)
                        if first_refused is not None:
                            accepted_after_refusal += 1
                    else:
                        refused += 1
                        if first_refused is None:
                            first_refused = len(served)
                rss_growth = d.rss_kib() - rss_before
                # Every connection that got in is still served.
                for c in served[::20]:
                    self.assertDecision(c.check(tt.check_params()),
                                        "allow", "allow")
            self.assertEqual(ck.errors(), [])
            # The checker's connection and the served ones make 200 (one
            # less when a closing connection was still counted).
            self.assertIn(len(served) + 1, (199, 200, 201))
            self.assertEqual(first_refused, len(served))
            self.assertEqual(accepted_after_refusal, 0)
            self.assertEqual(refused, 1000 - len(served))
            if tt.RSS_MEANINGFUL:
                self.assertLess(rss_growth, RSS_BOUND_KIB,
                                "trined grew by %d KiB" % rss_growth)
        finally:
            for c in served:
                c.close()

        # Refusals are summed up in the log, at most once a second.
        def logged():
            return sum(int(n) for n in re.findall(
                r"event=conn_refused reason=max_connections count=(\d+) "
                r"open=\d+ max_connections=200", d.log()))

        deadline = time.monotonic() + scaled(10)
        while logged() < refused and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(logged(), refused, d.log()[-3000:])

        # With the idle ones gone, new clients are served again (the
        # daemon may take a moment to see them all close).
        deadline = time.monotonic() + scaled(10)
        while True:
            c, ok = try_ping(d.socket, 7, tt.IO_TIMEOUT)
            if ok:
                c.close()
                break
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        again = []
        try:
            for i in range(150):
                c, ok = try_ping(d.socket, i, tt.IO_TIMEOUT)
                self.assertTrue(ok, "client %d refused" % i)
                again.append(c)
        finally:
            for c in again:
                c.close()

    def test_limit_from_configuration_file(self):
        # The file's key is the flag's name; 3 connections, the 4th is
        # closed at once.
        d = tt.Daemon()
        self.addCleanup(d.cleanup)
        conf = os.path.join(d.tmp, "trined.conf")
        with open(conf, "w") as f:
            f.write("max_connections = 3\nidle-timeout = 0\n"
                    "max-pending-bytes = 65536\nmax-pending-replies = 8\n")
        d.extra += ["--config", conf]
        d.start()
        conns = []
        try:
            for i in range(3):
                c, ok = try_ping(d.socket, i, tt.IO_TIMEOUT)
                self.assertTrue(ok)
                conns.append(c)
            c, ok = try_ping(d.socket, 3, tt.IO_TIMEOUT)
            self.assertFalse(ok)
            self.assertDecision(conns[0].check(tt.check_params()),
                                "allow", "allow")
        finally:
            for c in conns:
                c.close()

    def test_bad_values_are_usage_errors(self):
        cases = [
            (["--max-connections", "0"],
             '--max-connections needs an integer from 1 to 1000000, not "0"'),
            (["--idle-timeout", "-1"],
             '--idle-timeout needs an integer from 0 to 604800, not "-1"'),
            (["--max-pending-bytes", "1000"],
             "--max-pending-bytes needs a byte count from 65536 to "
             '1073741824, not "1000"'),
            (["--max-pending-replies", "65537"],
             "--max-pending-replies needs an integer from 1 to 65536, not "
             '"65537"'),
        ]
        for args, msg in cases:
            p = subprocess.run(
                [tt.TRINED_BIN, "--policy", "nowhere"] + args,
                capture_output=True, text=True, timeout=scaled(30))
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertEqual(p.stderr.splitlines()[0], "trined: " + msg)


class DescriptorLimitTest(tt.DaemonTestCase):

    def test_clients_past_the_descriptor_limit_see_eof(self):
        if tt.WRAPPED:
            self.skipTest("the wrapper keeps descriptors of its own")
        d = self.start_daemon(args=["--max-connections", "1000"])
        served = []
        try:
            with tt.Checker(d) as ck:
                # Leave the daemon room for 20 more descriptors only.
                limit = open_fds(d.pid()) + 20
                resource.prlimit(d.pid(), resource.RLIMIT_NOFILE,
                                 (limit, limit))
                refused = 0
                for i in range(100):
                    t0 = time.monotonic()
                    c, ok = try_ping(d.socket, i, tt.IO_TIMEOUT)
                    if ok:
                        served.append(c)
                    else:
                        refused += 1
                        # Told at once, not left waiting in the backlog.
                        self.assertLess(time.monotonic() - t0, scaled(5))
                self.assertGreater(len(served), 5)
                self.assertGreater(refused, 50)
                for c in served:
                    self.assertEqual(c.result("ping"), {"pong": True})
            self.assertEqual(ck.errors(), [])
            # Nothing spins at the limit: clients that connect and wait are
            # closed (but one or two, for the descriptors the checker and
            # its neighbour freed), and the loop goes back to sleep.
            waiting = [tt.Conn(d.socket) for _ in range(8)]
            cpu0 = cpu_seconds(d.pid())
            time.sleep(1.0)
            self.assertLess(cpu_seconds(d.pid()) - cpu0, 0.3)
            closed = 0
            for c in waiting:
                c.sock.settimeout(scaled(5))
                try:
                    c.send("ping")
                    closed += c.read_line() is None
                except (BrokenPipeError, ConnectionResetError):
                    closed += 1
                c.close()
            self.assertGreaterEqual(closed, 5)
        finally:
            for c in served:
                c.close()
        d.wait_log(r"event=conn_refused reason=descriptors count=\d+")
        # Descriptors free again: new clients are served.
        deadline = time.monotonic() + scaled(10)
        while True:
            c, ok = try_ping(d.socket, 1, tt.IO_TIMEOUT)
            if ok:
                c.close()
                break
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)


class IdleTimeoutTest(tt.DaemonTestCase):

    def test_idle_connections_close_busy_ones_stay(self):
        d = self.start_daemon(args=["--idle-timeout", "1",
                                    "--log-level", "debug"])
        t0 = time.monotonic()
        idle = d.conn()
        partial = d.conn()
        partial.send_raw(b'{"jsonrpc":"2.0","id":1,')
        answered = d.conn()
        self.assertEqual(answered.result("ping"), {"pong": True})
        busy = d.conn()
        # The busy client sends a request every 0.3 s for 4 s: never idle
        # for a whole second.
        while time.monotonic() - t0 < 4.0:
            self.assertDecision(busy.check(tt.check_params()),
                                "allow", "allow")
            time.sleep(0.3)
        # The others were closed, each after 1 to 2 s of silence, and
        # within 3 s in any case.
        self.assertTrue(idle.at_eof(timeout=0.1))
        r = partial.reply()
        self.assertRpcError(r, -32700, id=None,
                            mentions="line not completed within 1 s")
        self.assertTrue(partial.at_eof(timeout=0.1))
        self.assertTrue(answered.at_eof(timeout=0.1))
        self.assertEqual(busy.result("ping"), {"pong": True})
        closed = d.wait_log(r"event=conn_idle conn=\d+ idle_ms=(\d+)",
                            count=3)
        for ms in closed:
            self.assertGreaterEqual(int(ms), 1000)
            self.assertLess(int(ms), scaled(3000))
        for c in (idle, partial, answered, busy):
            c.close()

    def test_idle_close_is_timely(self):
        d = self.start_daemon(args=["--idle-timeout", "1"])
        with d.conn() as c:
            t0 = time.monotonic()
            self.assertTrue(c.at_eof(timeout=scaled(5)))
            took = time.monotonic() - t0
        self.assertGreaterEqual(took, 0.9)
        self.assertLess(took, scaled(3.0))

    def test_zero_means_never(self):
        d = self.start_daemon(args=["--idle-timeout", "0"])
        with d.conn() as c:
            time.sleep(2.5)
            self.assertEqual(c.result("ping"), {"pong": True})


class SlowReaderTest(tt.DaemonTestCase):

    def pipeline_until_stalled(self, d, cases, limit):
        """Sends checks on a new connection, never reading, until the daemon
        stops taking them for 3 s (or limit bytes went out). Returns the
        connection, the number of requests begun, the bytes sent and the
        rest of a request cut short (to be sent later)."""
        hog = d.conn()
        hog.sock.setblocking(False)
        sent = 0
        begun = 0
        rest = b""
        stalled_since = None
        while sent < limit:
            if not rest:
                params, _, _ = cases[begun % len(cases)]
                begun += 1
                rest = tt.line(tt.request("check", params, begun))
            try:
                n = hog.sock.send(rest)
            except BlockingIOError:
                n = 0
            if n:
                sent += n
                rest = rest[n:]
                stalled_since = None
                continue
            now = time.monotonic()
            if stalled_since is None:
                stalled_since = now
            elif now - stalled_since > 3.0:
                break
            time.sleep(0.01)
        hog.sock.setblocking(True)
        hog.sock.settimeout(tt.IO_TIMEOUT)
        return hog, begun, sent, rest

    def run_slow_reader(self, args):
        d = self.start_daemon(args=args)
        cases = tt.FIXED_CASES
        limit = 64 * 1024 * 1024
        rss_before = d.rss_kib()
        hog, begun, sent, rest = self.pipeline_until_stalled(d, cases, limit)
        self.assertLess(sent, limit, "trined kept reading %d bytes from a "
                        "client that never reads its replies" % sent)
        rss_growth = d.rss_kib() - rss_before
        if tt.RSS_MEANINGFUL:
            self.assertLess(rss_growth, RSS_BOUND_KIB,
                            "trined grew by %d KiB for one slow reader"
                            % rss_growth)
        # Another client is served while the slow one is stuck.
        with d.conn() as c:
            t0 = time.monotonic()
            self.assertEqual(c.result("ping"), {"pong": True})
            self.assertDecision(c.check(tt.check_params()), "allow", "allow")
            self.assertLess(time.monotonic() - t0, scaled(10))
        # The slow client now reads: every reply arrives, in order.
        sender = threading.Thread(target=hog.sock.sendall, args=(rest,))
        sender.start()
        for i in range(1, begun + 1):
            r = hog.reply()
            self.assertEqual(r.get("id"), i)
            _, decision, reason = cases[(i - 1) % len(cases)]
            self.assertDecision(r["result"], decision, reason)
        sender.join(tt.IO_TIMEOUT)
        self.assertEqual(hog.result("ping"), {"pong": True})
        hog.close()
        with d.db() as db:
            n = db.execute("SELECT count(*) FROM decisions").fetchone()[0]
        self.assertEqual(n, begun + 1)
        return sent, begun

    def test_slow_reader_default_limits(self):
        sent, begun = self.run_slow_reader([])
        # 4 MiB of replies waiting is several thousand checks.
        self.assertGreater(begun, 3000)

    def test_slow_reader_small_output_cap(self):
        # The same slow reader against --max-pending-bytes 65536: reading
        # stops far sooner (what the socket buffers hold, 64 KiB of
        # replies and the requests in progress), and nothing is lost.
        _, small = self.run_slow_reader(["--max-pending-bytes", "65536",
                                         "--max-pending-replies", "16"])
        d = self.start_daemon()
        hog, default, _, _ = self.pipeline_until_stalled(
            d, tt.FIXED_CASES, 64 * 1024 * 1024)
        hog.close()
        self.assertLess(small * 2, default)


if __name__ == "__main__":
    tt.main()
