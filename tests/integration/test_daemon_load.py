"""trined under load: pipelining, many concurrent clients, many
connections at once (DESIGN.md section 3: replies come back in request order
on each connection)."""

import os
import socket
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trinetest as tt  # noqa: E402


class LoadTest(tt.DaemonTestCase):

    def test_pipeline_1000_in_order(self):
        d = self.start_daemon()
        with d.conn() as c:
            reqs = []
            expect = []
            for i in range(1000):
                kind = i % 4
                if kind == 0:
                    reqs.append(("ping", None))
                    expect.append(("ping",))
                elif kind == 3:
                    reqs.append(("policy.tools", {"server": "github"}))
                    expect.append(("tools",))
                else:
                    params, decision, reason = tt.FIXED_CASES[
                        i % len(tt.FIXED_CASES)]
                    reqs.append(("check", params))
                    expect.append(("check", decision, reason))
            # Pipeline writes all 1,000 before reading a single reply, and
            # checks that each reply carries the id of its request.
            replies = c.pipeline(reqs)
            audit_ids = []
            for r, e in zip(replies, expect):
                self.assertNotIn("error", r)
                if e[0] == "ping":
                    self.assertEqual(r["result"], {"pong": True})
                elif e[0] == "tools":
                    self.assertEqual(r["result"]["wildcard"], False)
                else:
                    self.assertDecision(r["result"], e[1], e[2])
                    audit_ids.append(r["result"]["audit_id"])
            # Every decision has its own audit row. (Pipelined requests are
            # evaluated in parallel, so ids need not follow request order.)
            self.assertEqual(len(set(audit_ids)), 500)
            with d.db() as db:
                rows = {r["id"]: r["decision"] for r in db.execute(
                    "SELECT id, decision FROM decisions")}
            self.assertEqual(set(rows), set(audit_ids))
            # The connection is still fine afterwards.
            self.assertEqual(c.result("ping"), {"pong": True})

    def test_pipeline_string_and_number_ids(self):
        d = self.start_daemon()
        with d.conn() as c:
            ids = ["a", 0, -7, "", "x" * 100, 2 ** 40, "\u00e9t\u00e9"]
            blob = b"".join(tt.line(tt.request("ping", None, i))
                            for i in ids)
            c.send_raw(blob)
            got = [c.reply()["id"] for _ in ids]
            self.assertEqual(got, ids)

    def test_64_concurrent_clients(self):
        d = self.start_daemon()
        per_client = 60
        problems = []
        counts = [0] * 64

        def client(n):
            try:
                with d.conn() as c:
                    for i in range(per_client):
                        params, decision, reason = tt.FIXED_CASES[
                            (n + i) % len(tt.FIXED_CASES)]
                        # Alternate single requests with small pipelines.
                        if i % 10 == 0:
                            rs = c.pipeline([("check", params)] * 5)
                            results = [r["result"] for r in rs]
                        else:
                            results = [c.check(params)]
                        for r in results:
                            if (r["decision"], r["reason"]) != (decision,
                                                                reason):
                                problems.append((n, params, r))
                            counts[n] += 1
            except Exception as e:  # noqa: BLE001 - reported below
                problems.append((n, "exception", repr(e)))

        threads = [threading.Thread(target=client, args=(n,))
                   for n in range(64)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(tt.IO_TIMEOUT * 2)
        self.assertEqual(problems, [])
        total = sum(counts)
        self.assertEqual(total, 64 * (per_client + 6 * 4))
        with d.db() as db:
            n = db.execute("SELECT count(*) FROM decisions").fetchone()[0]
            ids = [r[0] for r in db.execute(
                "SELECT id FROM decisions ORDER BY id")]
        self.assertEqual(n, total)
        self.assertEqual(ids, list(range(1, total + 1)))

    def test_1000_connections_at_once(self):
        d = self.start_daemon()
        conns = []
        try:
            for _ in range(1000):
                conns.append(tt.Conn(d.socket))
            for i, c in enumerate(conns):
                c.send("ping", id=i)
            for i, c in enumerate(conns):
                r = c.reply()
                self.assertEqual(r, {"jsonrpc": "2.0", "id": i,
                                     "result": {"pong": True}})
            # And a check on every tenth of them.
            for c in conns[::10]:
                self.assertDecision(c.check(tt.check_params()),
                                    "allow", "allow")
        finally:
            for c in conns:
                c.close()
        with d.conn() as c:
            self.assertEqual(c.result("ping"), {"pong": True})

    def test_half_close_still_answered(self):
        # A client that writes its requests and shuts down its sending side
        # still gets every reply.
        d = self.start_daemon()
        with d.conn() as c:
            c.send_raw(b"".join(tt.line(tt.request("ping", None, i))
                                for i in range(50)))
            c.sock.shutdown(socket.SHUT_WR)
            got = [c.reply()["id"] for _ in range(50)]
            self.assertEqual(got, list(range(50)))
            self.assertTrue(c.at_eof())


if __name__ == "__main__":
    tt.main()
