"""The synchronous client: :class:`Client`."""

from __future__ import annotations

import os
import select
import socket
import threading
import time
from types import TracebackType
from typing import Any, Dict, List, Optional, Type, Union

from . import _protocol as proto
from .decision import Decision
from .errors import ConnectionError, ProtocolError, TimeoutError

# send() flag that turns a closed peer into EPIPE instead of SIGPIPE, for
# processes that did not ignore SIGPIPE (Python itself does).
_SEND_FLAGS = getattr(socket, "MSG_NOSIGNAL", 0)
_RECV_SIZE = 1 << 16


class _NotSent(Exception):
    """Internal: the connection was found broken before any byte of the
    request reached it, so the daemon cannot have seen the request."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class _Lost(Exception):
    """Internal: the connection broke after the request (or part of it)
    was written, before its reply was read."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def _check_timeout(timeout: float) -> float:
    """Returns timeout as a float; raises ValueError unless it is a finite
    positive number (a client that may wait forever is never wanted)."""
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError("timeout must be a number of seconds")
    value = float(timeout)
    if not value > 0 or value == float("inf"):
        raise ValueError("timeout must be a finite positive number")
    return value


class Client:
    """A client of trined on its Unix socket.

    One connection is opened on the first request and reused; each request
    waits for its reply (a lock makes the client safe to share between
    threads: requests from several threads are sent one at a time). Every
    request is bounded by ``timeout`` seconds, connecting included.

    When the connection turns out to be broken (the daemon restarted, a
    reset, end of stream), the client reconnects once and sends the
    request again only when that cannot repeat an effect: when no byte of
    it was written, or when the method only reads (``ping``,
    ``policy.status``, ``policy.tools``, ``consent.list``). A ``check``,
    ``grant_consent`` or ``revoke_consent`` whose reply was lost after it
    was sent raises :class:`trine.ConnectionError`: it may have been
    carried out (a check writes an audit row), and the client never
    guesses. A timeout raises :class:`trine.TimeoutError` and drops the
    connection, so a late reply is never read as the reply to a later
    request.

    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(self, socket_path: Union[str, "os.PathLike[str]"],
                 timeout: float = 5.0) -> None:
        self._path = os.fspath(socket_path)
        self._timeout = _check_timeout(timeout)
        self._lock = threading.Lock()
        self._sock: Optional[socket.socket] = None
        self._pid = 0
        self._buf = bytearray()
        self._next_id = 1
        self._closed = False

    @property
    def socket_path(self) -> str:
        """The path of the daemon's socket."""
        return self._path

    @property
    def timeout(self) -> float:
        """The longest a request may take, in seconds."""
        return self._timeout

    # The methods of DESIGN.md section 3.

    def check(self, server: str, tool: str,
              arguments: Optional[Dict[str, Any]] = None, *,
              token: Optional[Dict[str, Any]] = None,
              bearer: Optional[str] = None,
              session: Optional[str] = None) -> Decision:
        """Asks whether the tool call may run; returns the Decision.

        ``token`` holds the access token's validated claims; ``bearer`` the
        raw access token instead, for a daemon that verifies tokens itself.
        ``session`` is the MCP session id, which session consent is bound
        to. Each check is one audit row. Raises RpcError (InvalidParams,
        naming the field) for a request the daemon refuses, and
        ConnectionError, ProtocolError or TimeoutError as the class says.
        """
        params = proto.check_params(server, tool, arguments, token, bearer,
                                    session)
        return proto.result_decision(self._request("check", params))

    def grant_consent(self, audit_id: int,
                      ttl: Optional[int] = None) -> int:
        """Records the user's consent to the ``consent_required`` decision
        ``audit_id`` (for ``ttl`` seconds when given); returns the grant's
        consent id."""
        params = proto.drop_none(audit_id=audit_id, ttl=ttl)
        result = self._request("consent.grant", params)
        return proto.result_int("consent.grant", result, "consent_id")

    def revoke_consent(self, consent_id: Optional[int] = None, *,
                       user: Optional[str] = None,
                       agent: Optional[str] = None,
                       server: Optional[str] = None,
                       tool: Optional[str] = None) -> int:
        """Revokes the grant ``consent_id``, or every live grant of
        ``user`` (narrowed by ``agent``, ``server`` and ``tool``); returns
        how many live grants were revoked."""
        params = proto.drop_none(consent_id=consent_id, user=user,
                                 agent=agent, server=server, tool=tool)
        result = self._request("consent.revoke", params)
        return proto.result_int("consent.revoke", result, "revoked")

    def list_consents(self, user: Optional[str] = None,
                      agent: Optional[str] = None) -> List[Dict[str, Any]]:
        """Returns the live grants (of ``user`` and ``agent`` when given),
        oldest first, as dicts (id, user, agent, server, tool, mode,
        session, granted_ms, expires_ms, used_ms, decision_id)."""
        params = proto.drop_none(user=user, agent=agent)
        return proto.result_consents(self._request("consent.list", params))

    def policy_status(self) -> Dict[str, Any]:
        """Returns the serving policy's revision, files, loaded_at and
        block counts."""
        result = self._request("policy.status", None)
        return proto.result_object("policy.status", result)

    def policy_tools(self, server: str) -> Dict[str, Any]:
        """Returns ``{"tools": [...], "wildcard": bool}``: the tools the
        policy has blocks for on ``server``."""
        result = self._request("policy.tools", {"server": server})
        return proto.result_tools(result)

    def ping(self) -> bool:
        """Returns True when the daemon answers ``{"pong":true}``."""
        return proto.result_pong(self._request("ping", None))

    def close(self) -> None:
        """Closes the connection. A request in progress in another thread
        fails with ConnectionError; later requests raise ConnectionError.
        Closing twice is harmless."""
        self._closed = True
        sock = self._sock
        if sock is not None:
            # Wakes a thread blocked reading a reply on this socket.
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        with self._lock:
            self._drop()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]],
                 exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        self.close()

    def __repr__(self) -> str:
        return "Client(%r, timeout=%r)" % (self._path, self._timeout)

    # The request cycle.

    def _request(self, method: str, params: Optional[Dict[str, Any]]) -> Any:
        """Sends one request and returns its result (any JSON value).

        Raises the RpcError of an error reply, and ConnectionError,
        ProtocolError or TimeoutError. At most one retry, as the class
        says; one deadline covers every attempt.
        """
        with self._lock:
            deadline = time.monotonic() + self._timeout
            retried = False
            while True:
                if self._closed:
                    raise ConnectionError("the client is closed")
                req_id = self._next_id
                self._next_id += 1
                line = proto.encode_request(req_id, method, params)
                try:
                    return self._attempt(req_id, method, line, deadline)
                except _NotSent as e:
                    if retried:
                        raise ConnectionError(
                            "cannot send %s to trined at %s: %s"
                            % (method, self._path, e.detail)) from None
                except _Lost as e:
                    if retried or method not in proto.IDEMPOTENT:
                        raise proto.lost_error(method, e.detail) from None
                retried = True

    def _attempt(self, req_id: int, method: str, line: bytes,
                 deadline: float) -> Any:
        """One try: connect when needed, write the line, read its reply.
        Any failure but an RpcError drops the connection."""
        try:
            sock = self._connected(deadline)
            self._send(sock, line, deadline)
            reply = self._read_line(sock, deadline)
            rid, result, err = proto.decode_reply(reply)
        except (_NotSent, _Lost, ProtocolError):
            self._drop()
            raise
        except TimeoutError:
            self._drop()
            raise TimeoutError("no reply from trined at %s within %gs to %s"
                               % (self._path, self._timeout, method)) \
                from None
        if rid != req_id or not proto.is_int(rid):
            self._drop()
            if rid is None and err is not None:
                # An error that could not name a request (a line the daemon
                # could not frame, a refused peer): it concerns ours, and
                # the daemon may be closing the connection.
                raise err
            raise ProtocolError("reply id %r from trined does not match "
                                "request id %d" % (rid, req_id))
        if self._buf:
            # Bytes beyond the one reply we asked for: out of step.
            self._drop()
        if err is not None:
            raise err
        return result

    def _connected(self, deadline: float) -> socket.socket:
        """Returns a live connection, opening one when there is none or
        the current one is closed, reset or out of step."""
        sock = self._sock
        if sock is not None and (self._pid != os.getpid()
                                 or not self._idle_ok(sock)):
            self._drop()
            sock = None
        if sock is not None:
            return sock
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self._remaining(deadline))
            sock.connect(self._path)
        except socket.timeout:
            sock.close()
            raise TimeoutError("connect") from None
        except OSError as e:
            sock.close()
            raise proto.connect_error(self._path, e) from None
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._pid = os.getpid()
        self._buf.clear()
        return sock

    @staticmethod
    def _idle_ok(sock: socket.socket) -> bool:
        """True when an idle connection has nothing to read: no end of
        stream, no reset, and no stray bytes (a reply nobody waits for)."""
        try:
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return not poller.poll(0)
        except (OSError, ValueError):
            return False

    def _send(self, sock: socket.socket, line: bytes,
              deadline: float) -> None:
        """Writes the whole line. Raises _NotSent when the connection
        failed before any byte was taken, _Lost when it failed after."""
        view = memoryview(line)
        off = 0
        while off < len(view):
            sock.settimeout(self._remaining(deadline))
            try:
                off += sock.send(view[off:], _SEND_FLAGS)
            except socket.timeout:
                raise TimeoutError("send") from None
            except OSError as e:
                detail = e.strerror or str(e)
                if off == 0:
                    raise _NotSent(detail) from None
                raise _Lost(detail) from None

    def _read_line(self, sock: socket.socket, deadline: float) -> bytes:
        """Returns the next reply line, without its newline."""
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                text = bytes(self._buf[:nl])
                del self._buf[:nl + 1]
                return text
            if len(self._buf) > proto.MAX_REPLY_LINE:
                raise ProtocolError("reply line from trined exceeds %d "
                                    "bytes" % proto.MAX_REPLY_LINE)
            sock.settimeout(self._remaining(deadline))
            try:
                chunk = sock.recv(_RECV_SIZE)
            except socket.timeout:
                raise TimeoutError("recv") from None
            except OSError as e:
                raise _Lost(e.strerror or str(e)) from None
            if not chunk:
                raise _Lost("the daemon closed the connection")
            self._buf += chunk

    @staticmethod
    def _remaining(deadline: float) -> float:
        """Returns the seconds left before deadline; raises TimeoutError
        when none are."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("deadline")
        return left

    def _drop(self) -> None:
        """Closes the current connection, if any, and forgets its bytes."""
        sock, self._sock = self._sock, None
        self._buf.clear()
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass
