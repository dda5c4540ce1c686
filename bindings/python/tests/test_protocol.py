"""The wire format and the result types, without a daemon."""

from __future__ import annotations

import builtins
import json
import unittest

from support import BINDING_DIR

import trine
from trine import _protocol as proto


class DecisionTest(unittest.TestCase):

    def test_the_package_under_test_is_this_tree(self) -> None:
        self.assertTrue(trine.__file__.startswith(BINDING_DIR + "/"))

    def test_audit_unavailable_has_no_audit_id(self) -> None:
        result = {"decision": "deny", "reason": "audit_unavailable",
                  "policy_revision": "sha256:ab",
                  "reasons": [{"code": "audit_unavailable",
                               "detail": "disk I/O error"}],
                  "matched": []}
        d = trine.Decision.from_result(result)
        self.assertEqual((d.decision, d.reason, d.allowed, d.audit_id),
                         ("deny", "audit_unavailable", False, None))
        self.assertIs(d.raw, result)

    def test_consent_required(self) -> None:
        d = trine.Decision.from_result({
            "decision": "consent_required", "reason": "consent_required",
            "audit_id": 4, "policy_revision": "sha256:ab",
            "consent": {"mode": "once", "prompt": "ok?"},
            "reasons": [], "matched": []})
        self.assertEqual((d.consent_mode, d.consent_prompt, d.allowed),
                         ("once", "ok?", False))

    def test_equal_and_hashable(self) -> None:
        r = {"decision": "allow", "reason": "allow", "audit_id": 1,
             "reasons": [], "matched": []}
        a = trine.Decision.from_result(r)
        b = trine.Decision.from_result(json.loads(json.dumps(r)))
        self.assertEqual(a, b)
        self.assertEqual(hash(a), hash(b))
        self.assertNotEqual(a, trine.Decision.from_result(
            dict(r, audit_id=2)))

    def test_only_allow_is_allowed(self) -> None:
        for decision in ("deny", "consent_required"):
            d = trine.Decision.from_result({"decision": decision,
                                            "reason": "allow"})
            self.assertIs(d.allowed, False)

    def test_malformed_results(self) -> None:
        bad = [
            ([], "check: the result is not an object"),
            ({"decision": "ALLOW", "reason": "allow"},
             "check: unknown decision 'ALLOW'"),
            ({"decision": "allow"}, "check: reason is not a str"),
            ({"decision": "deny", "reason": "scope_missing",
              "required_scopes": "admin"},
             "check: required_scopes is not a list of strings"),
            ({"decision": "deny", "reason": "scope_missing",
              "www_authenticate": 1}, "check: www_authenticate is not a str"),
            ({"decision": "allow", "reason": "allow", "audit_id": True},
             "check: audit_id is not an integer"),
            ({"decision": "allow", "reason": "allow", "consent": "x"},
             "check: consent is not an object"),
            ({"decision": "allow", "reason": "allow", "reasons": {}},
             "check: reasons is not a list"),
        ]
        for result, message in bad:
            with self.subTest(result=result):
                with self.assertRaises(trine.ProtocolError) as cm:
                    trine.Decision.from_result(result)
                self.assertEqual(str(cm.exception), message)


class WireTest(unittest.TestCase):

    def test_encode_request(self) -> None:
        self.assertEqual(
            proto.encode_request(3, "check", {"a": "é", "b": [1, None]}),
            '{"jsonrpc":"2.0","id":3,"method":"check","params":'
            '{"a":"é","b":[1,null]}}\n'.encode())
        self.assertEqual(proto.encode_request(4, "ping", None),
                         b'{"jsonrpc":"2.0","id":4,"method":"ping"}\n')

    def test_unencodable(self) -> None:
        with self.assertRaises(ValueError):
            proto.encode_request(1, "check", {"x": float("inf")})
        with self.assertRaises(ValueError):
            proto.encode_request(1, "check", {"x": "\ud800"})
        with self.assertRaises(TypeError):
            proto.encode_request(1, "check", {"x": b"bytes"})

    def test_decode_error_classes(self) -> None:
        for code, cls in ((-32700, trine.ParseError),
                          (-32600, trine.InvalidRequest),
                          (-32601, trine.MethodNotFound),
                          (-32602, trine.InvalidParams),
                          (-32603, trine.InternalError),
                          (-1, trine.RpcError)):
            line = json.dumps({"jsonrpc": "2.0", "id": 1, "error": {
                "code": code, "message": "m"}}).encode()
            rid, result, err = proto.decode_reply(line)
            self.assertEqual((rid, result), (1, None))
            self.assertIs(type(err), cls)
            self.assertEqual((err.code, err.message, err.data),
                             (code, "m", None))

    def test_decode_non_utf8(self) -> None:
        with self.assertRaises(trine.ProtocolError):
            proto.decode_reply(b'{"jsonrpc":"2.0","id":1,"result":"\xff"}')

    def test_exception_hierarchy(self) -> None:
        self.assertTrue(issubclass(trine.ConnectionError, trine.Error))
        self.assertTrue(issubclass(trine.ConnectionError,
                                   builtins.ConnectionError))
        self.assertTrue(issubclass(trine.ProtocolError,
                                   trine.ConnectionError))
        self.assertTrue(issubclass(trine.TimeoutError, trine.Error))
        self.assertTrue(issubclass(trine.TimeoutError,
                                   builtins.TimeoutError))
        self.assertTrue(issubclass(trine.InvalidParams, trine.RpcError))
        self.assertTrue(issubclass(trine.RpcError, trine.Error))
        self.assertFalse(issubclass(trine.RpcError, OSError))
        e = trine.ConnectionError("a b")
        self.assertEqual((str(e), e.args, e.errno), ("a b", ("a b",), None))


if __name__ == "__main__":
    unittest.main()
