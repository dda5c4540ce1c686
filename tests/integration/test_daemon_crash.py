"""trined killed with SIGKILL under load loses nothing it acknowledged
(DESIGN.md section 7), round after round on the same audit log.

Each round starts trined on the same audit file, runs client threads that
check (allow, deny and consent_required decisions) and grant and revoke
consents, kills trined at a random moment (10-300 ms in, from a seeded
random generator), and then checks the log against every reply the clients
received:

  - every acknowledged decision (an audit_id in a received reply) has its
    row, with the same decision, reason, tool and detail;
  - `trine audit verify` exits 0;
  - every grant whose consent_id a client received exists exactly once, for
    the decision it was made from (no two grants share a decision_id);
  - every acknowledged revoke is revoked;
  - no single-use `always` grant allowed two checks: each has at most one
    allow decision for its arguments, and is marked used exactly when it
    has one.

Grants that a round left live are used at the start of the next one, so
they are shown to survive the crash as well.

TRINE_CRASH_ROUNDS sets the number of rounds (20 by default),
TRINE_CRASH_SEED the seed (printed on every run, so a failure can be
repeated), TRINE_CRASH_VERBOSE=1 prints a line per round.
scripts/crash-loop runs many rounds.
"""

import json
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trinetest as tt  # noqa: E402

ROUNDS = int(os.environ.get("TRINE_CRASH_ROUNDS") or 20)
SEED = int(os.environ.get("TRINE_CRASH_SEED") or
           random.SystemRandom().randrange(1 << 32))
VERBOSE = bool(os.environ.get("TRINE_CRASH_VERBOSE"))
THREADS = 4

# Checks whose answer does not depend on consents.
FIXED = [c for c in tt.FIXED_CASES if c[1] != "consent_required"]

# Each client thread has its own (user, agent) for `once` grants, which
# bind to the user, agent, server and tool, not to the arguments.
ONCE_IDS = [("alice", "claude-desktop"), ("alice", "ops-console"),
            ("carol", "claude-desktop"), ("carol", "ops-console")]


def always_params(name):
    """delete_repo on a repository of its own: an `always` consent."""
    return tt.check_params(tool="delete_repo", scope="admin",
                           client_id="ops-console",
                           arguments={"owner": "acme", "repo": name})


def session_params(session):
    """create_issue in a session of its own: a `session` consent."""
    return dict(tt.EXAMPLE_PARAMS, session=session)


def once_params(thread):
    """merge_pr for this thread's user and agent: a `once` consent."""
    user, agent = ONCE_IDS[thread]
    return tt.check_params(tool="merge_pr", sub=user, client_id=agent)


class Died(Exception):
    """The daemon went away (as intended) before a reply came."""


class Ledger:
    """Everything the clients were told, across rounds."""

    def __init__(self):
        self.lock = threading.Lock()
        self.decisions = {}    # audit_id -> (tool, result)
        self.grants = {}       # consent_id -> (decision audit_id, mode)
        self.revoked = set()   # consent ids acknowledged as revoked
        self.user_revokes = []  # (user, agent, tool, time) acknowledged
        self.problems = []
        self.always_allows = {}  # repository -> allows received

    def decision(self, tool, result):
        with self.lock:
            aid = result["audit_id"]
            if aid in self.decisions:
                self.problems.append(("audit_id given twice", aid))
            self.decisions[aid] = (tool, result)

    def problem(self, *what):
        with self.lock:
            self.problems.append(what)


class Client:
    """One connection that runs consent flows and checks until the daemon
    dies, recording every reply in the ledger."""

    def __init__(self, daemon, ledger, rnd, thread, rng):
        self.d = daemon
        self.ledger = ledger
        self.rnd = rnd
        self.thread = thread
        self.rng = rng
        self.k = 0

    def reply(self, c, id):
        try:
            text = c.read_line()
        except OSError:
            raise Died()
        if text is None:
            raise Died()
        try:
            r = json.loads(text)
        except ValueError:
            raise Died()  # a reply cut off by the kill
        if r.get("id") != id:
            self.ledger.problem("reply id", id, r)
            raise Died()
        return r

    def call(self, c, method, params):
        try:
            id = c.send(method, params)
        except OSError:
            raise Died()
        r = self.reply(c, id)
        if "error" in r:
            self.ledger.problem("error reply", method, params, r)
            raise Died()
        return r["result"]

    def check(self, c, params, expect=None):
        res = self.call(c, "check", params)
        if "audit_id" not in res:
            self.ledger.problem("check without audit_id", params, res)
            raise Died()
        self.ledger.decision(params["tool"], res)
        if expect is not None and res["decision"] != expect:
            self.ledger.problem("expected " + expect, params, res)
        return res

    def grant(self, c, res, mode):
        g = self.call(c, "consent.grant", {"audit_id": res["audit_id"]})
        with self.ledger.lock:
            self.ledger.grants[g["consent_id"]] = (res["audit_id"], mode)
        return g["consent_id"]

    def revoke(self, c, cid):
        r = self.call(c, "consent.revoke", {"consent_id": cid})
        if r != {"revoked": 1}:
            self.ledger.problem("revoke", cid, r)
        with self.ledger.lock:
            self.ledger.revoked.add(cid)

    def fixed(self, c):
        """A pipelined burst of checks with known answers."""
        n = self.rng.randint(1, 4)
        cases = [self.rng.choice(FIXED) for _ in range(n)]
        try:
            ids = [c.send("check", p) for p, _, _ in cases]
        except OSError:
            raise Died()
        for (params, decision, reason), id in zip(cases, ids):
            r = self.reply(c, id)
            res = r.get("result") or {}
            if "audit_id" not in res:
                self.ledger.problem("fixed check", params, r)
                raise Died()
            self.ledger.decision(params["tool"], res)
            if (res["decision"], res["reason"]) != (decision, reason):
                self.ledger.problem("wrong answer", params, res)

    def always(self, c):
        name = "crash-%d-%d-%d" % (self.rnd, self.thread, self.k)
        p = always_params(name)
        first = self.check(c, p, "consent_required")
        self.grant(c, first, "always")
        allowed = self.check(c, p, "allow")
        if allowed["decision"] == "allow":
            with self.ledger.lock:
                self.ledger.always_allows[name] = \
                    self.ledger.always_allows.get(name, 0) + 1
        # Single use: the same request needs consent again.
        self.check(c, p, "consent_required")

    def session(self, c):
        p = session_params("crash-%d-%d-%d" % (self.rnd, self.thread,
                                               self.k))
        first = self.check(c, p, "consent_required")
        cid = self.grant(c, first, "session")
        self.check(c, p, "allow")
        self.revoke(c, cid)
        self.check(c, p, "consent_required")

    def once(self, c):
        p = once_params(self.thread)
        first = self.check(c, p, "consent_required")
        cid = self.grant(c, first, "once")
        self.check(c, p, "allow")
        self.check(c, p, "allow")
        self.revoke(c, cid)

    def run(self, stop):
        flows = [self.fixed, self.fixed, self.always, self.session,
                 self.once]
        try:
            with self.d.conn(timeout=30) as c:
                while not stop.is_set():
                    self.k += 1
                    self.rng.choice(flows)(c)
        except Died:
            pass
        except (OSError, EOFError):
            pass


class CrashTest(tt.DaemonTestCase):

    def test_sigkill_rounds_lose_nothing_acknowledged(self):
        sys.stderr.write("crash test: seed %d, %d rounds"
                         " (TRINE_CRASH_SEED=%d repeats it)\n"
                         % (SEED, ROUNDS, SEED))
        rng = random.Random(SEED)
        ledger = Ledger()
        d = tt.Daemon()
        self.addCleanup(d.cleanup)
        started = time.monotonic()
        for rnd in range(1, ROUNDS + 1):
            try:
                self.round(d, ledger, rnd, rng)
            except AssertionError as e:
                raise AssertionError("round %d of %d, TRINE_CRASH_SEED=%d:"
                                     " %s" % (rnd, ROUNDS, SEED, e)) from e
        # A last, clean run on the log: it starts, serves and stops.
        d.start()
        with d.conn() as c:
            res = c.check(tt.check_params())
        self.assertGreater(res["audit_id"], max(ledger.decisions, default=0))
        d.stop()
        self.assertVerifies(d)
        sys.stderr.write(
            "crash test: %d rounds in %.1f s, seed %d: %d decisions, %d"
            " grants, %d revokes acknowledged; none lost\n"
            % (ROUNDS, time.monotonic() - started, SEED,
               len(ledger.decisions), len(ledger.grants),
               len(ledger.revoked) + len(ledger.user_revokes)))

    def round(self, d, ledger, rnd, rng):
        delay = rng.uniform(0.010, 0.300)
        seeds = [rng.randrange(1 << 32) for _ in range(THREADS)]
        d.start()
        self.carry_over(d, ledger)
        stop = threading.Event()
        clients = [Client(d, ledger, rnd, t, random.Random(seeds[t]))
                   for t in range(THREADS)]
        threads = [threading.Thread(target=cl.run, args=(stop,))
                   for cl in clients]
        before = set(ledger.decisions)
        for t in threads:
            t.start()
        time.sleep(delay)
        d.kill()
        stop.set()
        for t in threads:
            t.join(60)
            self.assertFalse(t.is_alive(), "a client hung")
        d.assert_clean_log()
        self.assertEqual(ledger.problems, [])
        new = [aid for aid in ledger.decisions if aid not in before]
        self.check_log(d, ledger, new)
        if VERBOSE:
            sys.stderr.write("round %d: killed after %d ms, %d decisions"
                             " acknowledged\n" % (rnd, delay * 1000, len(new)))

    def carry_over(self, d, ledger):
        """Uses the grants the last round left live: an `always` grant
        allows exactly once after the restart; `once` grants of the
        clients' identities are revoked, so each round starts without."""
        with d.conn() as c:
            # The socket accepts before the log is opened; the first reply
            # comes once it is.
            self.assertEqual(c.result("ping"), {"pong": True})
            with d.db() as db:
                live = db.execute(
                    "SELECT c.id, d.arguments FROM consents c JOIN decisions"
                    " d ON d.id = c.decision_id WHERE c.mode = 'always'"
                    " AND c.used_ms IS NULL AND c.revoked_ms IS NULL"
                    " ORDER BY c.id").fetchall()
            for row in live:
                repo = json.loads(row["arguments"])["repo"]
                p = always_params(repo)
                for expect in ("allow", "consent_required"):
                    res = c.check(p)
                    self.assertEqual(res["decision"], expect,
                                     "grant %d after the restart: %r"
                                     % (row["id"], res))
                    ledger.decision("delete_repo", res)
                    if expect == "allow":
                        ledger.always_allows[repo] = \
                            ledger.always_allows.get(repo, 0) + 1
            for user, agent in ONCE_IDS:
                at = time.time() * 1000
                c.result("consent.revoke", {"user": user, "agent": agent,
                                            "tool": "merge_pr"})
                ledger.user_revokes.append((user, agent, "merge_pr", at))

    def assertVerifies(self, d):
        v = tt.run_cli("audit", "verify", "--db", d.audit)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)

    def check_log(self, d, ledger, new):
        """Checks the log against the ledger: the decisions acknowledged in
        this round (new: their ids; earlier ones were checked before, and
        rows are never removed, as verify shows), every grant and revoke,
        and every always grant."""
        self.assertVerifies(d)
        with d.db() as db:
            rows = {r["id"]: r for r in db.execute(
                "SELECT id, tool, decision, reason, detail FROM decisions"
                " WHERE id >= ?", (min(new, default=0),))}
            missing = [aid for aid in new if aid not in rows]
            self.assertEqual(missing, [], "acknowledged decisions lost")
            for aid in new:
                tool, res = ledger.decisions[aid]
                row = rows[aid]
                self.assertEqual(
                    (row["tool"], row["decision"], row["reason"]),
                    (tool, res["decision"], res["reason"]), aid)
                self.assertEqual(json.loads(row["detail"]), res, aid)

            # Each grant with the arguments of the decision it answers
            # (delete_repo redacts nothing, so they are exact).
            grants = {r["id"]: r for r in db.execute(
                "SELECT c.id, c.decision_id, c.mode, c.user, c.tool,"
                " c.revoked_ms, c.used_ms, d.arguments FROM consents c"
                " LEFT JOIN decisions d ON d.id = c.decision_id")}
            dup = db.execute(
                "SELECT decision_id, count(*) FROM consents"
                " GROUP BY decision_id HAVING count(*) > 1").fetchall()
            self.assertEqual([tuple(r) for r in dup], [],
                             "one decision, several grants")
            for cid, (aid, mode) in ledger.grants.items():
                self.assertIn(cid, grants, "acknowledged grant %d lost" % cid)
                g = grants[cid]
                self.assertEqual((g["decision_id"], g["mode"]), (aid, mode),
                                 cid)
                self.assertEqual(g["tool"], ledger.decisions[aid][0])
            for cid in ledger.revoked:
                self.assertIsNotNone(grants[cid]["revoked_ms"],
                                     "acknowledged revoke of %d undone"
                                     % cid)
            for user, agent, tool, at in ledger.user_revokes:
                n = db.execute(
                    "SELECT count(*) FROM consents WHERE user = ? AND"
                    " agent = ? AND tool = ? AND granted_ms < ? AND"
                    " revoked_ms IS NULL", (user, agent, tool, at)
                ).fetchone()[0]
                self.assertEqual(n, 0, "a revoke by user undone")

            # Single use: each always grant allowed at most one check, and
            # is marked used exactly when one was allowed. Every grant
            # names a repository of its own.
            allowed = {r[0]: r[1] for r in db.execute(
                "SELECT arguments, count(*) FROM decisions WHERE"
                " tool = 'delete_repo' AND decision = 'allow'"
                " GROUP BY arguments")}
            for g in grants.values():
                if g["mode"] != "always":
                    continue
                self.assertIsNotNone(g["arguments"], g["id"])
                allows = allowed.get(g["arguments"], 0)
                self.assertLessEqual(allows, 1, "always grant %d used twice"
                                     % g["id"])
                self.assertEqual(allows == 1, g["used_ms"] is not None,
                                 "grant %d: used_ms against its allows"
                                 % g["id"])
        over = {k: v for k, v in ledger.always_allows.items() if v > 1}
        self.assertEqual(over, {}, "a single-use grant allowed twice")


if __name__ == "__main__":
    tt.main()
