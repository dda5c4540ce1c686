#!/usr/bin/env python3
"""Writes the seed inputs of a text fuzz target into a directory.

    make_seeds.py TARGET OUTDIR

The seeds come from what the repository already holds, read at run time, so
they follow the golden cases as those change:

  fuzz_parse  every .trine file of policy-examples/ and tests/fixtures/, and
              every policy source written as a C string in the unit tests
              (golden cases, error cases included);
  fuzz_rpc    one JSON-RPC `check` line per request of the policy examples'
              *.tests.json cases, the DESIGN.md §3.1 request, a line per
              other method, and a few pipelined and malformed ones;
  fuzz_proxy  the MCP messages of one proxied session, and every JSON-RPC
              line of the proxy's unit tests.

fuzz_template and fuzz_jwt write their own binary seeds (TRINE_FUZZ_SEEDS).
Files are named by the SHA-1 of their content, as libFuzzer names corpus
entries, so running this again over a kept corpus adds nothing twice.
Standard library only.
"""
import glob
import hashlib
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Words that mark a C string as policy source rather than a message.
POLICY_WORDS = re.compile(
    r"\b(scope|role|user|group|agent|tool|server|forbid)\b\s*(\"|\*|[A-Za-z_])")

C_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"',
             "'": "'", "0": "\0", "a": "\a", "b": "\b", "f": "\f",
             "v": "\v", "?": "?"}


def c_strings(text):
    """Yields the byte value of every run of adjacent C string literals."""
    # Comments out of the way first, so quotes inside them do not count.
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    i, n = 0, len(text)
    parts = []
    while i < n:
        c = text[i]
        if c == "'":
            # A character literal: skip it whole.
            j = i + 1
            while j < n and text[j] != "'":
                j += 2 if text[j] == "\\" else 1
            i = j + 1
            continue
        if c == '"':
            j = i + 1
            buf = bytearray()
            while j < n and text[j] != '"':
                if text[j] == "\\" and j + 1 < n:
                    e = text[j + 1]
                    if e == "x":
                        m = re.match(r"[0-9A-Fa-f]{1,2}", text[j + 2:])
                        buf.append(int(m.group(0), 16) if m else 0)
                        j += 2 + (len(m.group(0)) if m else 0)
                        continue
                    if e in "01234567":
                        m = re.match(r"[0-7]{1,3}", text[j + 1:])
                        buf.append(int(m.group(0), 8) & 0xff)
                        j += 1 + len(m.group(0))
                        continue
                    buf += C_ESCAPES.get(e, e).encode()
                    j += 2
                    continue
                buf += text[j].encode()
                j += 1
            parts.append(bytes(buf))
            i = j + 1
            # Adjacent literals (whitespace between) are one string.
            k = i
            while k < n and text[k] in " \t\r\n":
                k += 1
            if k < n and text[k] == '"':
                i = k
                continue
            yield b"".join(parts)
            parts = []
            continue
        i += 1


def parse_seeds():
    files = sorted(glob.glob(os.path.join(ROOT, "policy-examples/*/*.trine")))
    files += sorted(glob.glob(os.path.join(ROOT, "tests/fixtures/**/*.trine"),
                              recursive=True))
    for f in files:
        with open(f, "rb") as fh:
            yield fh.read()
    for f in sorted(glob.glob(os.path.join(ROOT, "tests/unit/test_*.c"))):
        with open(f, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
        for s in c_strings(text):
            if len(s) >= 8 and POLICY_WORDS.search(s.decode("utf-8", "replace")):
                yield s


DESIGN_REQUEST = {
    "server": "github", "tool": "create_issue",
    "arguments": {"owner": "acme", "repo": "widgets",
                  "title": "Crash on start"},
    "session": "mcp-session-4f2a",
    "token": {"sub": "alice", "scope": "repo:read repo:write",
              "client_id": "claude-desktop",
              "aud": "https://mcp.example.com/github", "exp": 1893456000,
              "groups": ["acme-eng"]},
}


def line(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def rpc_seeds():
    requests = [DESIGN_REQUEST]
    for f in sorted(glob.glob(os.path.join(ROOT, "policy-examples/*/*.tests.json"))):
        with open(f, encoding="utf-8") as fh:
            for case in json.load(fh):
                if isinstance(case, dict) and isinstance(case.get("request"), dict):
                    requests.append(case["request"])
    checks = []
    for i, req in enumerate(requests):
        checks.append(line({"jsonrpc": "2.0", "id": i + 1, "method": "check",
                            "params": req}))
    for c in checks:
        yield c + b"\n"
    delete = dict(DESIGN_REQUEST, tool="delete_repo", session=None,
                  arguments={"owner": "acme", "repo": "widgets"})
    delete["token"] = dict(DESIGN_REQUEST["token"], client_id="ops-console",
                           scope="admin")
    del delete["session"]
    chain = dict(DESIGN_REQUEST, server="fs", tool="read",
                 arguments={"path": "/srv/a/b", "depth": 2, "mode": "r",
                            "secret": {"value": "x"}})
    chain["token"] = {"sub": "alice", "scope": "files", "client_id": "ci-bot",
                      "act": {"sub": "ci-bot", "act": {"client_id": "other"}}}
    others = [
        {"jsonrpc": "2.0", "id": "d", "method": "check", "params": delete},
        {"jsonrpc": "2.0", "id": "c", "method": "check", "params": chain},
        {"jsonrpc": "2.0", "id": 1, "method": "ping"},
        {"jsonrpc": "2.0", "id": 2, "method": "policy.status"},
        {"jsonrpc": "2.0", "id": 3, "method": "policy.tools",
         "params": {"server": "github"}},
        {"jsonrpc": "2.0", "id": 4, "method": "consent.list",
         "params": {"user": "alice"}},
        {"jsonrpc": "2.0", "id": 5, "method": "consent.grant",
         "params": {"audit_id": 7, "ttl": 3600}},
        {"jsonrpc": "2.0", "id": 6, "method": "consent.revoke",
         "params": {"user": "alice", "agent": "claude-desktop"}},
        {"jsonrpc": "2.0", "id": 7, "method": "check",
         "params": dict(DESIGN_REQUEST, token=None, bearer="a.b.c")},
        {"jsonrpc": "2.0", "id": None, "method": "nope"},
        {"jsonrpc": "1.0", "id": 8, "method": "ping"},
    ]
    for o in others:
        yield line(o) + b"\n"
    # Pipelined: several lines in one input, a consent barrier among them.
    yield b"\n".join(line(o) for o in others[:6]) + b"\n" + checks[0] + b"\n"
    yield b'{"jsonrpc":"2.0","id":1,"method":"ping"}\r\n[1,2]\n\n{\n'
    yield b'{"jsonrpc":"2.0","id":1,"method":"check","params":' \
          b'{"server":"github","tool":"get_issue","arguments":' \
          b'{"owner":"acme","repo":"\\u0000"},"token":{"sub":"\xc3\xa9"}}}\n'
    yield b'{"jsonrpc":"2.0","id":1,"method":"ping"}'  # no newline


MCP_LINES = [
    {"jsonrpc": "2.0", "id": 0, "method": "initialize",
     "params": {"protocolVersion": "2025-06-18",
                "capabilities": {"elicitation": {}},
                "clientInfo": {"name": "c", "version": "1"}}},
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
    {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}},
    {"jsonrpc": "2.0", "id": 1, "result": {"tools": [
        {"name": "read_file", "inputSchema": {"type": "object"}},
        {"name": "delete_repo", "description": "x"}], "nextCursor": "c"}},
    {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
     "params": {"name": "read_file", "arguments": {"path": "/srv/a"},
                "_meta": {"progressToken": 1}}},
    {"jsonrpc": "2.0", "id": 3, "result": {"action": "accept",
                                           "content": {"approve": True}}},
    {"jsonrpc": "2.0", "id": 4, "result": {"action": "decline"}},
    {"jsonrpc": "2.0", "id": 5, "error": {"code": -32601,
                                          "message": "no such method"}},
    {"jsonrpc": "2.0", "id": "s-1", "method": "elicitation/create",
     "params": {"message": "Allow?", "requestedSchema": {"type": "object"}}},
    [{"jsonrpc": "2.0", "id": 6, "method": "ping"}],
]


def proxy_seeds():
    """MCP lines: the messages of one session, and every JSON-RPC line the
    proxy's unit tests use."""
    for msg in MCP_LINES:
        yield line(msg)
    path = os.path.join(ROOT, "tests/unit/test_proxy_msg.c")
    if os.path.exists(path):
        with open(path, encoding="utf-8", errors="replace") as fh:
            for s in c_strings(fh.read()):
                if b"jsonrpc" in s:
                    yield s


TARGETS = {"fuzz_parse": parse_seeds, "fuzz_rpc": rpc_seeds,
           "fuzz_proxy": proxy_seeds}


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in TARGETS:
        sys.stderr.write("usage: make_seeds.py (%s) OUTDIR\n"
                         % "|".join(sorted(TARGETS)))
        return 2
    out = sys.argv[2]
    os.makedirs(out, exist_ok=True)
    n = 0
    for data in TARGETS[sys.argv[1]]():
        name = hashlib.sha1(data).hexdigest()
        path = os.path.join(out, name)
        if not os.path.exists(path):
            with open(path, "wb") as fh:
                fh.write(data)
        n += 1
    print("%s: %d seeds" % (sys.argv[1], n))
    return 0


if __name__ == "__main__":
    sys.exit(main())
