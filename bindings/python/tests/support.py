"""Test support: a real trined on a temporary socket, and fake daemons.

The daemon runs the policy of policy-examples/github with its own socket
and audit log in a fresh temporary directory. Its binary is TRINED_BIN
from the environment, else <repo>/build/trined. On teardown it is stopped
with SIGTERM and must exit 0 with no sanitizer report in its log.

A FakeDaemon is a Unix socket server in a thread whose behaviour each test
scripts (never answer, close after reading, answer with a wrong id, ...),
to show how the clients handle what a real daemon rarely does.

Python standard library only; imports nothing from tests/integration.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from typing import Any, Callable, Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
BINDING_DIR = os.path.dirname(HERE)
if BINDING_DIR not in sys.path:
    sys.path.insert(0, BINDING_DIR)

SOURCE_DIR = os.environ.get("TRINE_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(BINDING_DIR))
TRINED_BIN = os.environ.get("TRINED_BIN") or os.path.join(
    SOURCE_DIR, "build", "trined")
GITHUB_POLICY = os.path.join(SOURCE_DIR, "policy-examples", "github")
GITHUB_TESTS = os.path.join(GITHUB_POLICY, "github.tests.json")

START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:", "ThreadSanitizer")

AUDIENCE = "https://mcp.example.com/github"


def token(sub: str = "alice", scope: str = "repo:write",
          client_id: str = "claude-desktop", **extra: Any) -> Dict[str, Any]:
    """Returns validated token claims for the github policy."""
    claims: Dict[str, Any] = {"sub": sub, "scope": scope,
                              "client_id": client_id, "aud": AUDIENCE,
                              "exp": 1893456000}
    claims.update(extra)
    return claims


def load_cases() -> List[Dict[str, Any]]:
    """Returns the cases of policy-examples/github/github.tests.json."""
    with open(GITHUB_TESTS, encoding="utf-8") as f:
        return json.load(f)


def time_independent(case: Dict[str, Any]) -> bool:
    """True when the case's token step decides the same at the case's
    'now' and at the real time (trined has no clock override)."""
    exp = case["request"].get("token", {}).get("exp")
    if not isinstance(exp, (int, float)) or isinstance(exp, bool):
        return True
    now = case.get("now", time.time())
    return (now > exp + 60) == (time.time() > exp + 60)


def tmp_socket_dir() -> str:
    """Returns a new temporary directory with a short path (a Unix socket
    path holds at most 107 bytes)."""
    base = "/tmp" if os.path.isdir("/tmp") else None
    return tempfile.mkdtemp(prefix="trine-py-", dir=base)


class Daemon:
    """A trined process serving policy-examples/github."""

    def __init__(self) -> None:
        self.tmp = tmp_socket_dir()
        self.socket = os.path.join(self.tmp, "trine.sock")
        self.audit = os.path.join(self.tmp, "audit.db")
        self.logpath = os.path.join(self.tmp, "trined.log")
        self.proc: Optional[subprocess.Popen] = None  # type: ignore[type-arg]

    def start(self) -> "Daemon":
        """Starts trined and waits until its socket accepts."""
        with open(self.logpath, "ab") as log:
            self.proc = subprocess.Popen(
                [TRINED_BIN, "--policy", GITHUB_POLICY, "--socket",
                 self.socket, "--audit", self.audit, "--workers", "2"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            rc = self.proc.poll()
            if rc is not None:
                raise AssertionError("trined exited with %d at start:\n%s"
                                     % (rc, self.log()))
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.socket)
                return self
            except OSError:
                pass
            finally:
                s.close()
            if time.monotonic() > deadline:
                raise AssertionError("trined did not accept within %ss:\n%s"
                                     % (START_TIMEOUT, self.log()))
            time.sleep(0.01)

    def stop(self) -> None:
        """SIGTERM; asserts exit status 0 and a clean sanitizer log."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("trined did not stop:\n" + self.log())
        text = self.log()
        for mark in SANITIZER_MARKS:
            if mark in text:
                raise AssertionError("sanitizer report:\n" + text[-20000:])
        if rc != 0:
            raise AssertionError("trined exited with %d:\n%s" % (rc, text))

    def log(self) -> str:
        try:
            with open(self.logpath, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def cleanup(self) -> None:
        try:
            self.stop()
        finally:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            if not os.environ.get("TRINE_KEEP_TMP"):
                shutil.rmtree(self.tmp, ignore_errors=True)


class DaemonTestCase(unittest.TestCase):
    """Starts one trined for the whole class (self.daemon); skips when
    there is no trined binary."""

    daemon: Daemon

    @classmethod
    def setUpClass(cls) -> None:
        if not os.access(TRINED_BIN, os.X_OK):
            raise unittest.SkipTest("no trined binary at %s" % TRINED_BIN)
        cls.daemon = Daemon()
        try:
            cls.daemon.start()
        except BaseException:
            cls.daemon.cleanup()
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        cls.daemon.cleanup()


Handler = Callable[["FakeConn"], None]


class FakeConn:
    """One accepted connection of a FakeDaemon, as its handler sees it."""

    def __init__(self, sock: socket.socket, fake: "FakeDaemon") -> None:
        self.sock = sock
        self.fake = fake
        self.buf = b""

    def read_request(self, timeout: float = 10.0) -> Optional[Dict[str, Any]]:
        """Returns the next request, decoded, or None at end of stream.
        Every request read is recorded in fake.requests."""
        self.sock.settimeout(timeout)
        while b"\n" not in self.buf:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                return None
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        req = json.loads(line)
        with self.fake.lock:
            self.fake.requests.append(req)
        return req

    def send(self, obj: Any) -> None:
        self.sock.sendall(json.dumps(obj).encode() + b"\n")

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def answer(self, req: Dict[str, Any], result: Any) -> None:
        self.send({"jsonrpc": "2.0", "id": req["id"], "result": result})


class FakeDaemon:
    """A Unix socket server in a thread. handlers[i] serves the i-th
    connection (the last one serves any later ones)."""

    def __init__(self, *handlers: Handler) -> None:
        self.tmp = tmp_socket_dir()
        self.socket = os.path.join(self.tmp, "fake.sock")
        self.handlers = list(handlers)
        self.requests: List[Dict[str, Any]] = []
        self.connections = 0
        self.lock = threading.Lock()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.socket)
        self.listener.listen(16)
        self.stopping = threading.Event()
        self.threads: List[threading.Thread] = []
        self.open_socks: List[socket.socket] = []
        self.errors: List[BaseException] = []
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                index = self.connections
                self.connections += 1
                self.open_socks.append(sock)
            handler = self.handlers[min(index, len(self.handlers) - 1)]
            t = threading.Thread(target=self._serve, args=(sock, handler),
                                 daemon=True)
            self.threads.append(t)
            t.start()

    def _serve(self, sock: socket.socket, handler: Handler) -> None:
        try:
            handler(FakeConn(sock, self))
        except OSError:
            pass
        except BaseException as e:  # noqa: BLE001 - reported by close()
            self.errors.append(e)

    def methods(self) -> List[str]:
        with self.lock:
            return [r.get("method") for r in self.requests]

    def close(self) -> None:
        self.stopping.set()
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        with self.lock:
            socks = list(self.open_socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self.threads:
            t.join(5)
        for s in socks:
            s.close()
        self.acceptor.join(5)
        shutil.rmtree(self.tmp, ignore_errors=True)
        if self.errors:
            raise AssertionError("fake daemon handler failed: %r"
                                 % self.errors)


def silent(conn: FakeConn) -> None:
    """Reads requests and never answers, until the peer goes away."""
    while conn.read_request(timeout=30.0) is not None:
        pass


def echo_pong(conn: FakeConn) -> None:
    """Answers every request {"pong":true} (any method)."""
    while True:
        req = conn.read_request()
        if req is None:
            return
        conn.answer(req, {"pong": True})


def close_after_reading(conn: FakeConn) -> None:
    """Reads one request, then closes without answering."""
    conn.read_request()
    conn.sock.close()
