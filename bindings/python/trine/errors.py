"""The exceptions raised by the trine clients.

Every exception the clients raise on purpose derives from :class:`Error`.
Connection failures and timeouts also derive from the built-in
``ConnectionError`` and ``TimeoutError`` (both ``OSError``), so code that
already handles socket failures handles these too.

JSON-RPC errors answered by trined are :class:`RpcError`, with a subclass
for each standard code (``InvalidParams`` for -32602, ...). The daemon's
own failures (an out-of-memory, an audit log that cannot be written during
a consent operation) are answered with -32603, :class:`InternalError`.
"""

from __future__ import annotations

import builtins
from typing import Any, Dict, Type

# The JSON-RPC 2.0 error codes trined answers with (docs/daemon.md).
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603


class Error(Exception):
    """The base class of every exception this package raises."""


class ConnectionError(Error, builtins.ConnectionError):  # noqa: A001
    """trined cannot be reached, or the connection broke.

    When it is raised for a request that had already been sent, the request
    may or may not have been carried out (a ``check`` may have been decided
    and audited): the client never guesses, and never resends it.
    """

    def __init__(self, message: str) -> None:
        # One argument only: OSError gives two arguments an errno meaning.
        super().__init__(message)


class ProtocolError(ConnectionError):
    """trined sent something that is not a valid reply to the request
    (bad JSON, a wrong id, a result of the wrong shape, a line too long).

    The connection is dropped when this is raised; the outcome of the
    request is unknown.
    """


class TimeoutError(Error, builtins.TimeoutError):  # noqa: A001
    """No reply came within the client's timeout.

    The connection the request was sent on is dropped (by the synchronous
    client), so a late reply can never be taken for the reply to a later
    request. As with :class:`ConnectionError`, the request may or may not
    have been carried out.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)


class RpcError(Error):
    """A JSON-RPC error answered by trined.

    Attributes:
        code: the JSON-RPC error code (an int, e.g. -32602).
        message: the daemon's message (for -32602 it names the field).
        data: the error's optional ``data`` member, or None.
    """

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__("%d %s" % (code, message))
        self.code = code
        self.message = message
        self.data = data

    def __repr__(self) -> str:
        return "%s(%r, %r, %r)" % (type(self).__name__, self.code,
                                   self.message, self.data)

    @staticmethod
    def from_error(error: Dict[str, Any]) -> "RpcError":
        """Returns the exception for a reply's ``error`` object: an
        instance of the subclass registered for its code, else of RpcError
        itself. The object must already have been checked to hold an int
        ``code`` and a str ``message``."""
        code = error["code"]
        cls = _BY_CODE.get(code, RpcError)
        return cls(code, error["message"], error.get("data"))


class ParseError(RpcError):
    """-32700: the daemon could not read the request line as JSON."""


class InvalidRequest(RpcError):
    """-32600: the line is not a JSON-RPC request (or the peer is refused:
    ``peer uid N is not allowed``)."""


class MethodNotFound(RpcError):
    """-32601: the daemon has no such method."""


class InvalidParams(RpcError):
    """-32602: a parameter is missing or has the wrong type or value; the
    message names the field (``params.server must be a string``)."""


class InternalError(RpcError):
    """-32603: the daemon failed (out of memory, audit log unavailable
    during a consent operation)."""


_BY_CODE: Dict[int, Type[RpcError]] = {
    PARSE_ERROR: ParseError,
    INVALID_REQUEST: InvalidRequest,
    METHOD_NOT_FOUND: MethodNotFound,
    INVALID_PARAMS: InvalidParams,
    INTERNAL_ERROR: InternalError,
}

