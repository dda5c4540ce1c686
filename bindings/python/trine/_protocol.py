"""The wire format shared by the synchronous and the asyncio clients.

trined speaks JSON-RPC 2.0 over a Unix stream socket, one message per
``\\n``-terminated line (DESIGN.md section 3). This module builds request
lines, checks reply lines, and builds each method's params and reads its
result, so the two clients differ only in how they move bytes.
"""

from __future__ import annotations

import errno
import json
import os
from typing import Any, Dict, List, Optional, Tuple

from .decision import Decision
from .errors import ConnectionError, ProtocolError, RpcError

# The longest reply line accepted. trined's replies are a few KiB at most;
# the bound keeps a misbehaving peer from growing our buffer without end.
MAX_REPLY_LINE = 16 * 1024 * 1024

# Methods that only read: when their reply is lost, sending them again on a
# new connection cannot change anything. A check writes an audit row, a
# grant or a revoke changes the consent store: those are never resent once
# they may have reached the daemon.
IDEMPOTENT = frozenset(("ping", "policy.status", "policy.tools",
                        "consent.list"))


def encode_request(req_id: int, method: str,
                   params: Optional[Dict[str, Any]]) -> bytes:
    """Returns one request as a compact UTF-8 line ending in ``\\n``.

    Raises TypeError for a value JSON cannot hold and ValueError for NaN,
    infinities and unpaired surrogates, before anything is sent.
    """
    msg: Dict[str, Any] = {"jsonrpc": "2.0", "id": req_id, "method": method}
    if params is not None:
        msg["params"] = params
    text = json.dumps(msg, ensure_ascii=False, allow_nan=False,
                      separators=(",", ":"))
    return text.encode("utf-8") + b"\n"


def _no_constant(name: str) -> Any:
    raise ValueError("%s is not JSON" % name)


def decode_reply(line: bytes) -> Tuple[Any, Any, Optional[RpcError]]:
    """Checks one reply line and returns (id, result, error).

    Exactly one of result and error is meaningful: error is the RpcError to
    raise, or None. Raises ProtocolError for anything that is not a
    JSON-RPC 2.0 response object.
    """
    try:
        msg = json.loads(line.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as e:
        raise ProtocolError("invalid reply from trined: %s" % e) from None
    if not isinstance(msg, dict) or msg.get("jsonrpc") != "2.0" \
            or "id" not in msg:
        raise ProtocolError("invalid reply from trined: not a JSON-RPC 2.0 "
                            "response")
    has_result = "result" in msg
    has_error = "error" in msg
    if has_result == has_error:
        raise ProtocolError("invalid reply from trined: a response holds "
                            "exactly one of result and error")
    if has_result:
        return msg["id"], msg["result"], None
    err = msg["error"]
    if not isinstance(err, dict) or not is_int(err.get("code")) \
            or not isinstance(err.get("message"), str):
        raise ProtocolError("invalid reply from trined: malformed error "
                            "object")
    return msg["id"], None, RpcError.from_error(err)


def is_int(value: Any) -> bool:
    """True for a JSON integer (a Python int that is not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool)


def connect_error(path: str, exc: OSError) -> ConnectionError:
    """Returns the ConnectionError for a failed connect to path, naming the
    cause in words a deployer can act on."""
    if isinstance(exc, FileNotFoundError):
        why = "no such socket (is trined running?)"
    elif isinstance(exc, ConnectionRefusedError):
        why = "connection refused (trined is not running on it)"
    elif isinstance(exc, PermissionError):
        why = "permission denied"
    elif exc.errno is not None:
        why = "%s (%s)" % (os.strerror(exc.errno),
                           errno.errorcode.get(exc.errno, exc.errno))
    else:
        why = str(exc)
    return ConnectionError("cannot connect to trined at %s: %s"
                           % (path, why))


def lost_error(method: str, detail: str) -> ConnectionError:
    """Returns the ConnectionError for a request whose reply was lost after
    it may have reached the daemon."""
    return ConnectionError(
        "the connection to trined broke after %s was sent (%s); whether it "
        "was carried out is unknown" % (method, detail))


# Each method's params and result.


def check_params(server: Any, tool: Any, arguments: Any, token: Any,
                 bearer: Any, session: Any) -> Dict[str, Any]:
    """Returns the params of a ``check``. Values are passed as given: the
    daemon is the one authority on what a valid request is, and answers
    -32602 naming the field."""
    params: Dict[str, Any] = {"server": server, "tool": tool}
    if arguments is not None:
        params["arguments"] = arguments
    if session is not None:
        params["session"] = session
    if token is not None:
        params["token"] = token
    if bearer is not None:
        params["bearer"] = bearer
    return params


def drop_none(**kw: Any) -> Dict[str, Any]:
    """Returns the keyword arguments that are not None, as params."""
    return {k: v for k, v in kw.items() if v is not None}


def result_object(method: str, result: Any) -> Dict[str, Any]:
    """Returns result when it is an object; raises ProtocolError."""
    if not isinstance(result, dict):
        raise ProtocolError("%s: the result is not an object" % method)
    return result


def result_int(method: str, result: Any, name: str) -> int:
    """Returns the integer member name of an object result."""
    value: Any = result_object(method, result).get(name)
    if not is_int(value):
        raise ProtocolError("%s: %s is not an integer" % (method, name))
    return int(value)


def result_consents(result: Any) -> List[Dict[str, Any]]:
    """Returns the list of grants of a ``consent.list`` result."""
    consents = result_object("consent.list", result).get("consents")
    if not isinstance(consents, list) or not all(
            isinstance(c, dict) for c in consents):
        raise ProtocolError("consent.list: consents is not a list of "
                            "objects")
    return consents


def result_tools(result: Any) -> Dict[str, Any]:
    """Returns a ``policy.tools`` result after checking its shape."""
    obj = result_object("policy.tools", result)
    tools = obj.get("tools")
    if not isinstance(tools, list) or not all(
            isinstance(t, str) for t in tools):
        raise ProtocolError("policy.tools: tools is not a list of strings")
    if not isinstance(obj.get("wildcard"), bool):
        raise ProtocolError("policy.tools: wildcard is not a boolean")
    return obj


def result_pong(result: Any) -> bool:
    """Returns True for the ``ping`` result ``{"pong":true}``."""
    return result_object("ping", result).get("pong") is True


def result_decision(result: Any) -> Decision:
    """Returns the Decision of a ``check`` result."""
    return Decision.from_result(result)
