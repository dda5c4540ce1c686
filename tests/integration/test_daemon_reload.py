"""trined reloads its policy (DESIGN.md section 7): on SIGHUP and when a
policy file changes (inotify); a bad policy is refused with its errors
(file:line:col) and the old revision keeps serving; every answer is
consistent with the revision it names."""

import os
import re
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trinetest as tt  # noqa: E402

# A second, commented-out block for ci-bot. Turning '#' into ' ' (same
# length) lets ci-bot read issues.
TOGGLE_OFF = b'#agent "ci-bot" { allow issues.read on "repo:*" }'
TOGGLE_ON = b' agent "ci-bot" { allow issues.read on "repo:*" }'
RELOAD_TRINE = tt.GITHUB_TRINE + TOGGLE_OFF.decode() + "\n"

CI_BOT = tt.check_params(client_id="ci-bot")

BAD_LINE = 'scope "broken" { allow issues.read on }'
BAD_TRINE = RELOAD_TRINE + BAD_LINE + "\n"
BAD_LOC = "github.trine:%d:" % (RELOAD_TRINE.count("\n") + 1)

def edit_without_inotify(path, old, new, scratch):
    """Replaces old by new in the file at path so that no inotify watch on
    its directory reports it: the file is written in place through a second
    hard link in another directory (scratch), and inotify reports an event
    to the directory of the name that was used."""
    alias = os.path.join(scratch, "alias-" + os.path.basename(path))
    os.link(path, alias)
    try:
        with open(alias, "rb") as f:
            data = f.read()
        assert old in data
        with open(alias, "r+b") as f:
            f.write(data.replace(old, new))
            f.truncate()
    finally:
        os.unlink(alias)


def wait_revision(c, pred, timeout=20.0):
    """Polls policy.status until pred(revision) holds; returns it."""
    deadline = time.monotonic() + timeout
    while True:
        rev = c.result("policy.status")["revision"]
        if pred(rev):
            return rev
        if time.monotonic() > deadline:
            raise AssertionError("revision stayed %s" % rev)
        time.sleep(0.05)


class ReloadTest(tt.DaemonTestCase):

    def setUp(self):
        self.d = self.start_daemon(policy={"github.trine": RELOAD_TRINE,
                                           "tools.trine": tt.TOOLS_TRINE})
        self.c = self.d.conn()
        self.addCleanup(self.c.close)
        self.path = os.path.join(self.d.policy_dir, "github.trine")

    def test_sighup_reloads_a_good_policy(self):
        r = self.c.check(CI_BOT)
        self.assertDecision(r, "deny", "agent_denied")
        rev0 = r["policy_revision"]
        self.assertEqual(self.c.result("policy.status")["revision"], rev0)

        # The file changes in a way inotify does not see: nothing happens
        # until SIGHUP.
        edit_without_inotify(self.path, TOGGLE_OFF, TOGGLE_ON, self.d.tmp)
        time.sleep(1.0)
        self.assertEqual(self.c.result("policy.status")["revision"], rev0)
        self.assertDecision(self.c.check(CI_BOT), "deny", "agent_denied")

        self.d.signal(signal.SIGHUP)
        rev1 = wait_revision(self.c, lambda rev: rev != rev0)
        r = self.c.check(CI_BOT)
        self.assertDecision(r, "allow", "allow")
        self.assertEqual(r["policy_revision"], rev1)
        # Audit rows carry the revision that decided them.
        with self.d.db() as db:
            revs = [x[0] for x in db.execute(
                "SELECT policy_rev FROM decisions ORDER BY id")]
        self.assertEqual(revs, [rev0, rev0, rev1])

    def test_bad_policy_is_refused_and_old_keeps_serving(self):
        rev0 = self.c.result("policy.status")["revision"]
        # Through inotify first (the file is rewritten in place).
        with open(self.path, "w") as f:
            f.write(BAD_TRINE)
        pat = re.escape(BAD_LOC) + r"\d+"
        self.d.wait_log(pat, 1)
        for _ in range(3):
            r = self.c.check(tt.check_params())
            self.assertDecision(r, "allow", "allow")
            self.assertEqual(r["policy_revision"], rev0)
        self.assertDecision(self.c.check(CI_BOT), "deny", "agent_denied")
        self.assertEqual(self.c.result("policy.status")["revision"], rev0)

        # Then through SIGHUP: refused again, with the errors logged again.
        n = len(re.findall(pat, self.d.log()))
        self.d.signal(signal.SIGHUP)
        self.d.wait_log(pat, n + 1)
        self.assertEqual(self.c.result("policy.status")["revision"], rev0)
        self.assertEqual(self.c.check(CI_BOT)["policy_revision"], rev0)
        self.assertTrue(self.d.running())

        # A fixed file is taken again.
        with open(self.path, "w") as f:
            f.write(RELOAD_TRINE.replace(TOGGLE_OFF.decode(),
                                         TOGGLE_ON.decode()))
        rev1 = wait_revision(self.c, lambda rev: rev != rev0)
        r = self.c.check(CI_BOT)
        self.assertDecision(r, "allow", "allow")
        self.assertEqual(r["policy_revision"], rev1)

    def test_inotify_reload_on_rewrite_create_delete(self):
        rev0 = self.c.result("policy.status")["revision"]
        # Rewriting a file in place.
        with open(self.path, "w") as f:
            f.write(RELOAD_TRINE.replace(TOGGLE_OFF.decode(),
                                         TOGGLE_ON.decode()))
        rev1 = wait_revision(self.c, lambda rev: rev != rev0)
        self.assertDecision(self.c.check(CI_BOT), "allow", "allow")

        # A new file (written aside, then renamed into place).
        self.d.write_policy({"zz-extra.trine":
                             'tool "github" "list_repos" {\n'
                             '  needs repo.read on "repo:{owner}/x"\n}\n'})
        rev2 = wait_revision(self.c, lambda rev: rev not in (rev0, rev1))
        self.assertEqual(self.c.result("policy.status")["files"],
                         ["github.trine", "tools.trine", "zz-extra.trine"])
        self.assertIn("list_repos", self.c.result(
            "policy.tools", {"server": "github"})["tools"])

        # Removing it.
        os.unlink(os.path.join(self.d.policy_dir, "zz-extra.trine"))
        rev3 = wait_revision(self.c, lambda rev: rev != rev2)
        self.assertEqual(rev3, rev1)
        self.assertEqual(self.c.result("policy.status")["files"],
                         ["github.trine", "tools.trine"])

    def test_policy_with_an_equal_revision_is_still_loaded(self):
        # The revision concatenates names and bytes (DESIGN section 2), so
        # a comment can swallow the next file's name: these two policies
        # share a revision, and the second forbids everything. A reload
        # compares the files, not the revision.
        rev0 = self.c.result("policy.status")["revision"]
        self.d.write_policy({"a.trine": '#b.trineforbid * on "repo:*"'})
        rev1 = wait_revision(self.c, lambda rev: rev != rev0)
        self.assertDecision(self.c.check(tt.check_params()), "allow", "allow")
        # Both files change at once (one reload, as inotify events are
        # debounced); should a reload see the first change alone, the
        # second still brings the revision back to rev1.
        self.d.write_policy({"b.trine": 'forbid * on "repo:*"',
                             "a.trine": "#"})
        deadline = time.monotonic() + 20
        while True:
            r = self.c.check(tt.check_params())
            if r["reason"] == "forbidden" and r["policy_revision"] == rev1:
                break
            self.assertLess(time.monotonic(), deadline, r)
            time.sleep(0.05)
        self.assertEqual(r["reasons"][0]["rule"], "b.trine:1")
        self.assertEqual(self.c.result("policy.status")["files"],
                         ["a.trine", "b.trine", "github.trine", "tools.trine"])

    def test_emptied_policy_dir_is_refused(self):
        # A directory without any *.trine file is a load error: the old
        # policy keeps serving.
        rev0 = self.c.result("policy.status")["revision"]
        aside = os.path.join(self.d.tmp, "aside")
        os.mkdir(aside)
        for name in ("github.trine", "tools.trine"):
            os.rename(os.path.join(self.d.policy_dir, name),
                      os.path.join(aside, name))
        self.d.signal(signal.SIGHUP)
        time.sleep(1.0)
        self.assertTrue(self.d.running())
        self.assertEqual(self.c.result("policy.status")["revision"], rev0)
        r = self.c.check(tt.check_params())
        self.assertDecision(r, "allow", "allow")
        self.assertEqual(r["policy_revision"], rev0)
        for name in ("github.trine", "tools.trine"):
            os.rename(os.path.join(aside, name),
                      os.path.join(self.d.policy_dir, name))
        self.d.signal(signal.SIGHUP)
        time.sleep(0.5)
        self.assertEqual(self.c.result("policy.status")["revision"], rev0)

    def test_answers_match_their_revision_during_reloads(self):
        # Flip the policy back and forth while a client checks: every
        # answer must be the one its named revision gives.
        off = RELOAD_TRINE
        on = RELOAD_TRINE.replace(TOGGLE_OFF.decode(), TOGGLE_ON.decode())
        rev_off = self.c.result("policy.status")["revision"]
        stop = threading.Event()
        seen = {}

        def checker():
            with self.d.conn() as c:
                while not stop.is_set():
                    for r in c.pipeline([("check", CI_BOT)] * 8):
                        res = r["result"]
                        seen.setdefault(res["policy_revision"], set()).add(
                            res["decision"])

        t = threading.Thread(target=checker)
        t.start()
        try:
            rev_on = None
            for i in range(6):
                self.d.write_policy({"github.trine": on if i % 2 == 0
                                     else off})
                self.d.signal(signal.SIGHUP)
                want_on = i % 2 == 0
                rev = wait_revision(
                    self.c, lambda rev, w=want_on: (rev != rev_off) == w)
                if want_on:
                    rev_on = rev
                time.sleep(0.1)
        finally:
            stop.set()
            t.join(60)
        self.assertEqual(set(seen), {rev_off, rev_on})
        self.assertEqual(seen[rev_off], {"deny"})
        self.assertEqual(seen[rev_on], {"allow"})


if __name__ == "__main__":
    tt.main()
