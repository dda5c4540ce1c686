"""Shared harness for the trined integration tests.

It starts the real daemon on a socket and an audit database in a fresh
temporary directory, waits until the socket accepts connections, talks
JSON-RPC 2.0 over it (one object per line, with pipelining), and on teardown
stops the daemon with SIGTERM and asserts that it exits with status 0 and
that no sanitizer report appeared in its log.

Paths come from the environment, as tests/CMakeLists.txt sets them:
TRINED_BIN, TRINE_BIN and TRINE_SOURCE_DIR. When they are unset, the
binaries are looked up in <repo>/build.

TRINED_WRAPPER, when set, is a command put in front of the daemon's (split
like a shell would): scripts/valgrind runs the suite with
TRINED_WRAPPER="valgrind --error-exitcode=1 ...". TRINE_TIMEOUT_SCALE (a
number, default 1) multiplies every wait of the harness, for such slow
runs.

Python 3 standard library only.
"""

import json
import os
import re
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("TRINE_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(HERE))
TRINED_BIN = os.environ.get("TRINED_BIN") or os.path.join(
    SOURCE_DIR, "build", "trined")
TRINE_BIN = os.environ.get("TRINE_BIN") or os.path.join(
    SOURCE_DIR, "build", "trine")



def _sanitized(path):
    try:
        with open(path, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


# True when trined was built with AddressSanitizer.
SANITIZED = _sanitized(TRINED_BIN)

# The command the daemon runs under (say, valgrind), or [].
WRAPPER = shlex.split(os.environ.get("TRINED_WRAPPER") or "")
WRAPPED = bool(WRAPPER)

# The daemon's resident size says something about its own memory only when
# no sanitizer or wrapper adds theirs (AddressSanitizer's quarantine,
# valgrind's shadow memory).
RSS_MEANINGFUL = not SANITIZED and not WRAPPED

# Multiplies every wait of the harness.
TIMEOUT_SCALE = float(os.environ.get("TRINE_TIMEOUT_SCALE") or 1)

# Sanitizer builds are several times slower; every wait below is generous
# so that a loaded machine does not turn into a false failure.
START_TIMEOUT = 30.0 * TIMEOUT_SCALE
STOP_TIMEOUT = 60.0 * TIMEOUT_SCALE
IO_TIMEOUT = 60.0 * TIMEOUT_SCALE

# The policy of DESIGN.md section 2.3, byte for byte, so rule locations in
# results can be computed from it (see rule()).
GITHUB_TRINE = """\
# policy-examples/github/github.trine
server "github" {
  audience "https://mcp.example.com/github"
  resource_metadata "https://mcp.example.com/.well-known/oauth-protected-resource"
}

# S: what each OAuth scope grants
scope "repo:read"  { allow repo.read, issues.read on "repo:*" }
scope "repo:write" { allow repo.read, repo.write, issues.* on "repo:*" }
scope "admin"      { allow repo.* on "repo:*" }

# U: what users may do
role maintainer {
  allow repo.*, issues.* on "repo:acme/*"
  deny  repo.delete      on "repo:acme/prod-*"
}
role reader { allow repo.read, issues.read on "repo:acme/*" }
user "alice"     { roles maintainer }
group "acme-eng" { roles reader }
user *           { roles reader }

# A: what each agent may do (the `*` block applies to every agent as well)
agent "claude-desktop" { allow repo.read, repo.write, issues.read, issues.create on "repo:*" }
agent "ops-console"    { allow repo.*, issues.* on "repo:*" }
agent "ci-bot"         { allow repo.read on "repo:*" }
agent *                { deny repo.delete on "repo:*/prod-*" }

# What each tool call needs
tool "github" "get_issue" {
  needs issues.read on "repo:{owner}/{repo}"
}
tool "github" "create_issue" {
  needs issues.create on "repo:{owner}/{repo}"
  arg owner matches /[A-Za-z0-9-]{1,39}/
  arg title max_length 256
  arg title required
  consent session "Let {agent} open issues in {owner}/{repo} for this session?"
  redact body
}
tool "github" "delete_repo" {
  needs repo.delete on "repo:{owner}/{repo}"
  consent always "Delete {owner}/{repo}? This cannot be undone."
}

# Absolute limits
forbid * on "repo:acme/secrets"
"""

# More tools for the same server: the `once` consent modes, and a wildcard
# tool on a second server (for policy.tools).
TOOLS_TRINE = """\
# Tools that exercise the remaining consent modes.
tool "github" "merge_pr" {
  needs repo.write on "repo:{owner}/{repo}"
  consent once for 1h "Let {agent} merge pull requests in {owner}/{repo}?"
}
tool "github" "archive_repo" {
  needs repo.write on "repo:{owner}/{repo}"
  consent once "Let {agent} archive repositories of {user}?"
}
tool "files" * {
  needs files.read on "file:{path...}"
}
user "carol" { roles maintainer }
"""

DEFAULT_POLICY = {"github.trine": GITHUB_TRINE, "tools.trine": TOOLS_TRINE}

AUDIENCE = "https://mcp.example.com/github"
RESOURCE_METADATA = (
    "https://mcp.example.com/.well-known/oauth-protected-resource")


def rule(needle, name="github.trine", text=None):
    """Returns "file:line" of the first line of a policy file that contains
    needle; the policy text defaults to DEFAULT_POLICY[name]."""
    if text is None:
        text = DEFAULT_POLICY[name]
    for n, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return "%s:%d" % (name, n)
    raise KeyError(needle)


def token(sub="alice", scope="repo:read repo:write",
          client_id="claude-desktop", **extra):
    """Returns validated token claims in the shape of DESIGN section 3.1."""
    t = {"sub": sub, "scope": scope, "client_id": client_id,
         "aud": AUDIENCE, "exp": 1893456000, "groups": ["acme-eng"]}
    t.update(extra)
    return {k: v for k, v in t.items() if v is not None}


def check_params(tool="get_issue", arguments=None, session=None,
                 server="github", **token_kw):
    """Returns the params of a check request. Without arguments, the call
    names acme/widgets."""
    if arguments is None:
        arguments = {"owner": "acme", "repo": "widgets"}
    p = {"server": server, "tool": tool, "arguments": arguments,
         "token": token(**token_kw)}
    if session is not None:
        p["session"] = session
    return p


# The request of DESIGN section 3.1, verbatim.
EXAMPLE_PARAMS = {
    "server": "github", "tool": "create_issue",
    "arguments": {"owner": "acme", "repo": "widgets",
                  "title": "Crash on start"},
    "session": "mcp-session-4f2a",
    "token": {"sub": "alice", "scope": "repo:read repo:write",
              "client_id": "claude-desktop",
              "aud": "https://mcp.example.com/github",
              "exp": 1893456000, "groups": ["acme-eng"]},
}

# Requests whose answer under DEFAULT_POLICY does not depend on consents,
# with that answer: (params, decision, reason).
FIXED_CASES = [
    (check_params(), "allow", "allow"),
    (check_params(sub="bob", scope="repo:read", groups=None),
     "allow", "allow"),
    (check_params(sub="bob", arguments={"owner": "other", "repo": "x"}),
     "deny", "user_denied"),
    (check_params(client_id="ci-bot"), "deny", "agent_denied"),
    (check_params(scope="admin"), "deny", "scope_missing"),
    (check_params(arguments={"owner": "acme", "repo": "secrets"}),
     "deny", "forbidden"),
    (check_params(tool="no_such_tool"), "deny", "unknown_tool"),
    (check_params(exp=1000), "deny", "token_expired"),
    (check_params(aud="https://elsewhere.example.com"),
     "deny", "audience_mismatch"),
    (check_params(arguments={"owner": "acme", "repo": "../x"}),
     "deny", "argument_invalid"),
    (check_params(tool="create_issue", session="s-fixed",
                  arguments={"owner": "acme", "repo": "widgets",
                             "title": "t"}),
     "consent_required", "consent_required"),
]


def line(obj):
    """Encodes one JSON-RPC message as a compact line (bytes)."""
    return (json.dumps(obj, separators=(",", ":")) + "\n").encode()


def request(method, params=None, id=None):
    """Returns a JSON-RPC 2.0 request object."""
    r = {"jsonrpc": "2.0", "id": id, "method": method}
    if params is not None:
        r["params"] = params
    return r


class RpcError(Exception):
    """An error reply: code, message and the whole reply."""

    def __init__(self, reply):
        err = reply.get("error") or {}
        super().__init__("%s %s" % (err.get("code"), err.get("message")))
        self.code = err.get("code")
        self.message = err.get("message")
        self.reply = reply


class Conn:
    """One client connection: a JSON-RPC line client with pipelining."""

    def __init__(self, path, timeout=IO_TIMEOUT, connect=True):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.next_id = 1
        if connect:
            self.sock.connect(path)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, method, params=None, id=None):
        """Sends one request without waiting; returns its id."""
        if id is None:
            id = self.next_id
            self.next_id += 1
        self.send_raw(line(request(method, params, id)))
        return id

    def read_line(self):
        """Returns the next reply line (bytes, without the newline), or None
        at end of stream. A reset connection also counts as the end."""
        while b"\n" not in self.buf:
            try:
                chunk = self.sock.recv(1 << 16)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                if self.buf:
                    rest, self.buf = self.buf, b""
                    return rest
                return None
            self.buf += chunk
        text, self.buf = self.buf.split(b"\n", 1)
        return text

    def reply(self):
        """Returns the next reply, decoded. Fails on end of stream."""
        text = self.read_line()
        if text is None:
            raise EOFError("the daemon closed the connection")
        return json.loads(text)

    def at_eof(self, timeout=IO_TIMEOUT):
        """True when the daemon closes the connection (within timeout)
        without sending anything more."""
        old = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        try:
            return self.read_line() is None
        finally:
            self.sock.settimeout(old)

    def call(self, method, params=None):
        """Sends one request and returns its reply, checking the id."""
        id = self.send(method, params)
        r = self.reply()
        if r.get("id") != id:
            raise AssertionError("reply id %r for request id %r: %r"
                                 % (r.get("id"), id, r))
        return r

    def result(self, method, params=None):
        """Sends one request and returns its result; an error reply raises
        RpcError."""
        r = self.call(method, params)
        if "error" in r:
            raise RpcError(r)
        return r["result"]

    def check(self, params):
        return self.result("check", params)

    def pipeline(self, reqs):
        """Writes every request (method, params) before reading any reply,
        then returns the replies in order, checking their ids."""
        ids = []
        blob = []
        for method, params in reqs:
            id = self.next_id
            self.next_id += 1
            ids.append(id)
            blob.append(line(request(method, params, id)))
        self.send_raw(b"".join(blob))
        out = []
        for id in ids:
            r = self.reply()
            if r.get("id") != id:
                raise AssertionError("reply id %r where %r was expected"
                                     % (r.get("id"), id))
            out.append(r)
        return out


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:", "ThreadSanitizer")

# What valgrind's reports begin with (checked only under a wrapper).
VALGRIND_MARKS = ("Invalid read", "Invalid write", "Invalid free",
                  "Mismatched free", "Conditional jump or move",
                  "Use of uninitialised value", "Syscall param",
                  "Source and destination overlap", "are definitely lost",
                  "are indirectly lost", "Process terminating with")


class Daemon:
    """A trined process on its own socket, audit db and policy directory,
    all in a temporary directory."""

    def __init__(self, policy=None, args=(), socket_mode=None,
                 max_line=None, workers=None, dir_mode=None, tmpdir=None,
                 audit_sync=None):
        self.tmp = tmpdir or tempfile.mkdtemp(prefix="trined-")
        if dir_mode is not None:
            os.chmod(self.tmp, dir_mode)
        self.policy_dir = os.path.join(self.tmp, "policy")
        self.socket = os.path.join(self.tmp, "trine.sock")
        self.audit = os.path.join(self.tmp, "audit.db")
        self.logpath = os.path.join(self.tmp, "trined.log")
        if not os.path.isdir(self.policy_dir):
            os.mkdir(self.policy_dir)
            self.write_policy(DEFAULT_POLICY if policy is None else policy)
        self.extra = list(args)
        if socket_mode is not None:
            self.extra += ["--socket-mode", socket_mode]
        if max_line is not None:
            self.extra += ["--max-line", str(max_line)]
        if workers is not None:
            self.extra += ["--workers", str(workers)]
        if audit_sync is not None:
            self.extra += ["--audit-sync", audit_sync]
        self.proc = None
        self.logfile = None

    def write_policy(self, files):
        """Writes {name: text} into the policy directory (atomically per
        file: write aside, then rename)."""
        for name, text in files.items():
            path = os.path.join(self.policy_dir, name)
            tmp = os.path.join(self.tmp, "." + name + ".new")
            with open(tmp, "w") as f:
                f.write(text)
            os.rename(tmp, path)

    def argv(self):
        return WRAPPER + [TRINED_BIN, "--policy", self.policy_dir,
                          "--socket", self.socket, "--audit",
                          self.audit] + self.extra

    def start(self, wait=True):
        """Starts trined and (by default) waits until its socket accepts."""
        self.logfile = open(self.logpath, "ab")
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                     stdout=self.logfile,
                                     stderr=self.logfile)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            rc = self.proc.poll()
            if rc is not None:
                raise AssertionError("trined exited with %d at start:\n%s"
                                     % (rc, self.log()))
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.socket)
                s.close()
                return
            except OSError:
                s.close()
            if time.monotonic() > deadline:
                raise AssertionError("trined did not accept within %ss:\n%s"
                                     % (timeout, self.log()))
            time.sleep(0.02)

    def conn(self, timeout=IO_TIMEOUT):
        return Conn(self.socket, timeout)

    def log(self):
        """Returns everything trined wrote on stderr (all runs)."""
        try:
            with open(self.logpath, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_log(self, pattern, count=1, timeout=20.0):
        """Waits until the log matches the regex pattern at least count
        times; returns the matches, or fails with the log."""
        deadline = time.monotonic() + timeout * TIMEOUT_SCALE
        while True:
            found = re.findall(pattern, self.log())
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError("log never matched %r %d times:\n%s"
                                     % (pattern, count, self.log()))
            time.sleep(0.05)

    def pid(self):
        return self.proc.pid

    def signal(self, sig):
        self.proc.send_signal(sig)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def wait(self, timeout=STOP_TIMEOUT):
        """Waits for the process to exit; returns its status."""
        try:
            rc = self.proc.wait(timeout)
            self.logfile.close()
            return rc
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("trined did not exit within %ss:\n%s"
                                 % (timeout, self.log()))

    def stop(self):
        """SIGTERM; asserts exit status 0 and a clean sanitizer log."""
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        rc = self.wait()
        self.assert_clean_log()
        if rc != 0:
            raise AssertionError("trined exited with %d on SIGTERM:\n%s"
                                 % (rc, self.log()[-20000:]))

    def kill(self):
        """SIGKILL, for crash tests; returns once the process is gone."""
        self.proc.kill()
        self.wait()

    def assert_clean_log(self):
        text = self.log()
        marks = SANITIZER_MARKS + (VALGRIND_MARKS if WRAPPED else ())
        for mark in marks:
            if mark in text:
                raise AssertionError("sanitizer report in the trined log:\n"
                                     + text[-20000:])

    def cleanup(self):
        """Stops the daemon if it still runs, then removes the temporary
        directory (kept when TRINE_KEEP_TMP is set)."""
        try:
            self.stop()
        finally:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            if not os.environ.get("TRINE_KEEP_TMP"):
                shutil.rmtree(self.tmp, ignore_errors=True)

    def rss_kib(self):
        """The daemon's resident set size in KiB."""
        with open("/proc/%d/status" % self.proc.pid) as f:
            for ln in f:
                if ln.startswith("VmRSS:"):
                    return int(ln.split()[1])
        raise AssertionError("no VmRSS for trined")

    def db(self):
        """A read-only SQLite connection to the audit log (WAL readers do
        not block the daemon's writer)."""
        c = sqlite3.connect("file:%s?mode=ro" % self.audit, uri=True,
                            timeout=30)
        c.row_factory = sqlite3.Row
        return c


def run_cli(*args, timeout=60, input=None, cwd=None):
    """Runs the trine CLI; returns the CompletedProcess (text mode)."""
    return subprocess.run([TRINE_BIN] + list(args), capture_output=True,
                          text=True, timeout=timeout, input=input, cwd=cwd)


class Checker:
    """A second client that keeps checking in parallel (in its own thread)
    while something else happens, and records every wrong answer. Use as a
    context manager; on exit it stops, and errors() lists what went wrong."""

    def __init__(self, daemon, cases=None):
        self.daemon = daemon
        self.cases = cases or [c for c in FIXED_CASES
                               if c[1] != "consent_required"]
        self.stop_flag = threading.Event()
        self.done = 0
        self.problems = []
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        try:
            with self.daemon.conn(timeout=IO_TIMEOUT) as c:
                i = 0
                while not self.stop_flag.is_set():
                    params, decision, reason = self.cases[
                        i % len(self.cases)]
                    i += 1
                    r = c.check(params)
                    if (r.get("decision"), r.get("reason")) != (decision,
                                                                 reason):
                        self.problems.append((params, r))
                    self.done += 1
        except Exception as e:  # noqa: BLE001 - recorded for the test
            self.problems.append(("exception", repr(e)))

    def __enter__(self):
        self.thread.start()
        # Make sure it is actually serving before the disturbance starts.
        deadline = time.monotonic() + START_TIMEOUT
        while self.done == 0 and not self.problems:
            if time.monotonic() > deadline:
                self.problems.append(("timeout", "no first answer"))
                break
            time.sleep(0.01)
        return self

    def __exit__(self, *exc):
        # Let it answer a few more after the disturbance ended.
        target = self.done + 20
        deadline = time.monotonic() + IO_TIMEOUT
        while (self.done < target and not self.problems
               and time.monotonic() < deadline and self.thread.is_alive()):
            time.sleep(0.01)
        if self.done < target and not self.problems:
            self.problems.append(("stalled", self.done))
        self.stop_flag.set()
        self.thread.join(IO_TIMEOUT)

    def errors(self):
        return self.problems


class DaemonTestCase(unittest.TestCase):
    """Base class: start_daemon() starts a daemon that is stopped (and
    asserted to exit 0 on SIGTERM) when the test ends."""

    @classmethod
    def setUpClass(cls):
        for path in (TRINED_BIN,):
            if not os.access(path, os.X_OK):
                raise unittest.SkipTest("no trined binary at %s" % path)

    def start_daemon(self, **kw):
        d = Daemon(**kw)
        self.addCleanup(d.cleanup)
        d.start()
        return d

    def assertRpcError(self, reply, code, id=Ellipsis, mentions=None):
        """Asserts that reply is a JSON-RPC error with this code (and this
        id, and a message containing mentions, when given)."""
        self.assertEqual(reply.get("jsonrpc"), "2.0", reply)
        self.assertNotIn("result", reply)
        self.assertIn("error", reply, reply)
        self.assertEqual(reply["error"].get("code"), code, reply)
        self.assertIsInstance(reply["error"].get("message"), str, reply)
        if id is not Ellipsis:
            self.assertIn("id", reply)
            self.assertEqual(reply["id"], id, reply)
        if mentions is not None:
            self.assertIn(mentions, reply["error"]["message"], reply)

    def assertDecision(self, result, decision, reason):
        self.assertEqual((result.get("decision"), result.get("reason")),
                         (decision, reason), result)


def main():
    unittest.main(verbosity=2)


if __name__ == "__main__":
    sys.exit("trinetest.py is a module for the test_daemon_*.py files")
