"""The asyncio client: :class:`AsyncClient`.

Requests are pipelined: any number of coroutines may await calls on one
client at the same time; their requests share one connection, and a reader
task hands each reply to the call whose id it carries.
"""

from __future__ import annotations

import asyncio
import os
from collections import OrderedDict
from types import TracebackType
from typing import Any, Dict, List, Optional, Set, Type, Union

from . import _protocol as proto
from .client import _check_timeout
from .decision import Decision
from .errors import ConnectionError, ProtocolError, RpcError, TimeoutError

__all__ = ["AsyncClient"]


class _NotSent(Exception):
    """Internal: the request never reached the connection."""


class _Lost(Exception):
    """Internal: the connection broke after the request was written."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class _Connection:
    """One connection to trined and the requests waiting on it."""

    def __init__(self, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        # Written requests waiting for their reply, in the order they were
        # written, which is the order trined answers them in.
        self.pending: "OrderedDict[int, asyncio.Future[Any]]" = \
            OrderedDict()
        # Written requests whose caller stopped waiting (a timeout, a
        # cancellation): their replies are dropped when they come.
        self.abandoned: Set[int] = set()
        self.write_lock = asyncio.Lock()
        self.task: Optional["asyncio.Task[None]"] = None
        self.dead = False

    def alive(self) -> bool:
        return not self.dead and not self.writer.transport.is_closing()


class AsyncClient:
    """An asyncio client of trined on its Unix socket.

    The same methods as :class:`trine.Client`, as coroutines. One
    connection is opened on the first call and shared by every call;
    requests are written without waiting for earlier replies. Each call is
    bounded by ``timeout`` seconds on its own: it raises
    :class:`trine.TimeoutError`, and its reply, if it ever comes, is
    dropped (it is matched by id, so it never reaches another call).

    When the connection breaks, every call waiting on it fails with
    :class:`trine.ConnectionError`, except the methods that only read
    (``ping``, ``policy.status``, ``policy.tools``, ``consent.list``),
    which are sent once more on a new connection; a call whose request
    never reached the broken connection is sent on the new one as well.
    The next call reconnects. Calls made from another event loop than
    the one the connection was opened in open a new connection.
    """

    def __init__(self, socket_path: Union[str, "os.PathLike[str]"],
                 timeout: float = 5.0) -> None:
        self._path = os.fspath(socket_path)
        self._timeout = _check_timeout(timeout)
        self._conn: Optional[_Connection] = None
        # Created on first use inside an event loop (Python 3.9 binds a
        # lock to the loop that is current when it is made).
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._connect_lock: Optional[asyncio.Lock] = None
        self._next_id = 1
        self._closed = False

    @property
    def socket_path(self) -> str:
        """The path of the daemon's socket."""
        return self._path

    @property
    def timeout(self) -> float:
        """The longest one call may take, in seconds."""
        return self._timeout

    # The methods of DESIGN.md section 3 (see trine.Client for each).

    async def check(self, server: str, tool: str,
                    arguments: Optional[Dict[str, Any]] = None, *,
                    token: Optional[Dict[str, Any]] = None,
                    bearer: Optional[str] = None,
                    session: Optional[str] = None) -> Decision:
        """Asks whether the tool call may run; returns the Decision."""
        params = proto.check_params(server, tool, arguments, token, bearer,
                                    session)
        return proto.result_decision(await self._request("check", params))

    async def grant_consent(self, audit_id: int,
                            ttl: Optional[int] = None) -> int:
        """Grants consent to a ``consent_required`` decision; returns the
        consent id."""
        params = proto.drop_none(audit_id=audit_id, ttl=ttl)
        result = await self._request("consent.grant", params)
        return proto.result_int("consent.grant", result, "consent_id")

    async def revoke_consent(self, consent_id: Optional[int] = None, *,
                             user: Optional[str] = None,
                             agent: Optional[str] = None,
                             server: Optional[str] = None,
                             tool: Optional[str] = None) -> int:
        """Revokes grants; returns how many live grants were revoked."""
        params = proto.drop_none(consent_id=consent_id, user=user,
                                 agent=agent, server=server, tool=tool)
        result = await self._request("consent.revoke", params)
        return proto.result_int("consent.revoke", result, "revoked")

    async def list_consents(self, user: Optional[str] = None,
                            agent: Optional[str] = None
                            ) -> List[Dict[str, Any]]:
        """Returns the live grants, oldest first."""
        params = proto.drop_none(user=user, agent=agent)
        return proto.result_consents(
            await self._request("consent.list", params))

    async def policy_status(self) -> Dict[str, Any]:
        """Returns the serving policy's revision, files and counts."""
        result = await self._request("policy.status", None)
        return proto.result_object("policy.status", result)

    async def policy_tools(self, server: str) -> Dict[str, Any]:
        """Returns ``{"tools": [...], "wildcard": bool}`` for server."""
        result = await self._request("policy.tools", {"server": server})
        return proto.result_tools(result)

    async def ping(self) -> bool:
        """Returns True when the daemon answers ``{"pong":true}``."""
        return proto.result_pong(await self._request("ping", None))

    async def close(self) -> None:
        """Closes the connection; calls waiting on it fail with
        ConnectionError, and later calls raise ConnectionError."""
        self._closed = True
        conn, self._conn = self._conn, None
        if conn is None:
            return
        self._kill(conn, _Lost("the client was closed"))
        task = conn.task
        if task is not None and task is not asyncio.current_task():
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        try:
            await conn.writer.wait_closed()
        except (OSError, asyncio.CancelledError):
            pass

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, exc_type: Optional[Type[BaseException]],
                        exc: Optional[BaseException],
                        tb: Optional[TracebackType]) -> None:
        await self.close()

    def __repr__(self) -> str:
        return "AsyncClient(%r, timeout=%r)" % (self._path, self._timeout)

    # The request cycle.

    async def _request(self, method: str,
                       params: Optional[Dict[str, Any]]) -> Any:
        """Sends one request and returns its result, within the timeout."""
        if self._closed:
            raise ConnectionError("the client is closed")
        try:
            return await asyncio.wait_for(self._attempts(method, params),
                                          self._timeout)
        except asyncio.TimeoutError:
            raise TimeoutError("no reply from trined at %s within %gs to %s"
                               % (self._path, self._timeout, method)) \
                from None

    async def _attempts(self, method: str,
                        params: Optional[Dict[str, Any]]) -> Any:
        """Sends the request, again at most once as the class says."""
        retried = False
        while True:
            if self._closed:
                raise ConnectionError("the client is closed")
            conn = await self._connection()
            try:
                return await self._attempt(conn, method, params)
            except _NotSent:
                self._kill(conn, _Lost("the connection broke"))
                if retried:
                    raise ConnectionError(
                        "cannot send %s to trined at %s: the connection "
                        "broke" % (method, self._path)) from None
            except _Lost as e:
                if retried or method not in proto.IDEMPOTENT:
                    raise proto.lost_error(method, e.detail) from None
            retried = True

    async def _attempt(self, conn: _Connection, method: str,
                       params: Optional[Dict[str, Any]]) -> Any:
        """Writes one request on conn and waits for its reply."""
        loop = asyncio.get_running_loop()
        fut: "asyncio.Future[Any]" = loop.create_future()
        req_id = 0
        written = False
        try:
            async with conn.write_lock:
                if not conn.alive():
                    raise _NotSent()
                # No await between taking the id, queueing the future and
                # writing: ids, pending order and wire order all agree.
                req_id = self._next_id
                self._next_id += 1
                line = proto.encode_request(req_id, method, params)
                conn.pending[req_id] = fut
                conn.writer.write(line)
                if conn.writer.transport.is_closing():
                    # The transport's first send failed (a peer gone):
                    # nothing of this line was taken.
                    raise _NotSent()
                written = True
                try:
                    await conn.writer.drain()
                except OSError as e:
                    raise _Lost(e.strerror or str(e)) from None
            return await fut
        finally:
            if conn.pending.get(req_id) is fut:
                del conn.pending[req_id]
                if written and not conn.dead:
                    conn.abandoned.add(req_id)
            if fut.done() and not fut.cancelled():
                # Marks an outcome that came as the caller was cancelled
                # as seen, so asyncio does not report it as lost.
                fut.exception()

    async def _connection(self) -> _Connection:
        """Returns the live connection, opening one when needed."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # First use, or a new event loop (each asyncio.run() makes
            # one): what belonged to the old loop cannot serve this one.
            self._loop = loop
            self._connect_lock = asyncio.Lock()
            self._conn = None
        conn = self._conn
        if conn is not None and conn.alive():
            return conn
        lock = self._connect_lock
        if lock is None:
            lock = self._connect_lock = asyncio.Lock()
        async with lock:
            conn = self._conn
            if conn is not None:
                if conn.alive():
                    return conn
                self._kill(conn, _Lost("the connection broke"))
            if self._closed:
                raise ConnectionError("the client is closed")
            try:
                reader, writer = await asyncio.open_unix_connection(
                    self._path, limit=proto.MAX_REPLY_LINE)
            except OSError as e:
                raise proto.connect_error(self._path, e) from None
            conn = _Connection(reader, writer)
            conn.task = loop.create_task(self._read_loop(conn))
            self._conn = conn
            return conn

    async def _read_loop(self, conn: _Connection) -> None:
        """Reads replies until the connection ends, resolving each call's
        future; then fails the calls still waiting."""
        failure: Exception = _Lost("the daemon closed the connection")
        try:
            while True:
                line = await conn.reader.readline()
                if not line.endswith(b"\n"):
                    break
                self._dispatch(conn, line[:-1])
        except ProtocolError as e:
            failure = e
        except ValueError:
            failure = ProtocolError("reply line from trined exceeds %d "
                                    "bytes" % proto.MAX_REPLY_LINE)
        except asyncio.CancelledError:
            failure = _Lost("the client was closed")
        except OSError as e:
            failure = _Lost(e.strerror or str(e))
        finally:
            self._kill(conn, failure)

    def _dispatch(self, conn: _Connection, line: bytes) -> None:
        """Hands one reply line to the call waiting for it. Raises
        ProtocolError when the reply cannot be matched to a request."""
        rid, result, err = proto.decode_reply(line)
        if rid is None and err is not None:
            # An error that could not name a request (a line the daemon
            # could not frame, a refused peer). Replies come in request
            # order, so it answers the oldest request not yet answered.
            oldest = [i for i in (next(iter(conn.pending), None),
                                  min(conn.abandoned, default=None))
                      if i is not None]
            if not oldest:
                raise ProtocolError("unsolicited error from trined: %s"
                                    % err)
            rid = min(oldest)
        if not proto.is_int(rid):
            raise ProtocolError("reply id %r from trined is not one of "
                                "ours" % (rid,))
        fut = conn.pending.pop(rid, None)
        abandoned = rid in conn.abandoned
        if conn.abandoned:
            # Replies come in order: an abandoned request older than this
            # one was answered already, or never will be.
            conn.abandoned = {i for i in conn.abandoned if i > rid}
        if fut is None:
            if abandoned:
                return
            raise ProtocolError("reply id %d from trined matches no "
                                "request" % rid)
        if fut.done():
            return
        if err is not None:
            fut.set_exception(err)
        else:
            fut.set_result(result)

    def _kill(self, conn: _Connection, failure: Exception) -> None:
        """Marks conn dead, closes it and fails every call waiting on it
        with failure (a _Lost or a ProtocolError)."""
        if self._conn is conn:
            self._conn = None
        if conn.dead:
            return
        conn.dead = True
        pending = list(conn.pending.values())
        conn.pending.clear()
        conn.abandoned.clear()
        for fut in pending:
            if not fut.done():
                fut.set_exception(_clone(failure))
        conn.writer.close()
        task = conn.task
        if task is not None and task is not asyncio.current_task() \
                and not task.done():
            task.cancel()


def _clone(failure: Exception) -> Exception:
    """Returns a fresh exception like failure, one per waiting call (an
    exception object raised in several tasks would share tracebacks)."""
    if isinstance(failure, _Lost):
        return _Lost(failure.detail)
    if isinstance(failure, RpcError):
        return type(failure)(failure.code, failure.message, failure.data)
    return type(failure)(str(failure))
