"""Python client for trined, the trine policy decision daemon.

trine answers one question before an MCP server runs a tool: may this
user, holding this access token, through this agent, run this tool with
these arguments? This package asks trined over its Unix socket.

    import trine

    with trine.Client("/run/trine/trine.sock") as client:
        d = client.check("github", "get_issue",
                         {"owner": "acme", "repo": "widgets"},
                         token=claims, session=session_id)
        if not d.allowed:
            ...  # deny; d.reason, d.www_authenticate, d.consent_prompt

:class:`Client` is synchronous and thread-safe; :class:`trine.aio.AsyncClient`
is its asyncio counterpart, with pipelined requests. Standard library only.
"""

from .client import Client
from .decision import Decision
from .errors import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    ConnectionError,
    Error,
    InternalError,
    InvalidParams,
    InvalidRequest,
    MethodNotFound,
    ParseError,
    ProtocolError,
    RpcError,
    TimeoutError,
)

__version__ = "0.1.0"

__all__ = [
    "Client",
    "Decision",
    "Error",
    "ConnectionError",
    "ProtocolError",
    "TimeoutError",
    "RpcError",
    "ParseError",
    "InvalidRequest",
    "MethodNotFound",
    "InvalidParams",
    "InternalError",
    "PARSE_ERROR",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "INVALID_PARAMS",
    "INTERNAL_ERROR",
]
