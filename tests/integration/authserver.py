"""A loopback OAuth authorization server for the bearer token tests.

It serves, on 127.0.0.1 and a port of its own choosing:

- GET /jwks: the current JSON Web Key Set (swappable at any time), with an
  optional Cache-Control header;
- POST /introspect: RFC 7662 token introspection. It checks the client's
  HTTP Basic credentials (RFC 6749 section 2.3.1: id and secret
  form-urlencoded before base64) and answers from a table the test
  controls ({"active": false} for a token it does not know).

Switches make it misbehave: close the listener (connections are refused),
answer 500, answer garbage, or sleep past the client's timeout. Counters
record the hits on each endpoint.

Keys are made with the openssl command (RSA 2048, EC P-256, Ed25519) and
tokens are signed with it: `openssl dgst -sha256 -sign` for RS256 and ES256
(the DER signature of ES256 turned into r || s here), `openssl pkeyutl
-sign -rawin` for EdDSA. The public parameters of a JWK come from the DER
SubjectPublicKeyInfo (`openssl pkey -pubout -outform DER`), parsed here.

Python 3 standard library only.
"""

import base64
import http.server
import json
import os
import subprocess
import tempfile
import threading
import time
import urllib.parse


def b64url(data):
    """Unpadded base64url of bytes."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(obj):
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


# ---- DER ------------------------------------------------------------------

def der_read(buf, pos):
    """Reads one DER element at pos: returns (tag, content, next pos)."""
    tag = buf[pos]
    n = buf[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(buf[pos:pos + k], "big")
        pos += k
    return tag, buf[pos:pos + n], pos + n


def der_children(content):
    """The elements of a constructed DER value, as (tag, content)."""
    out = []
    pos = 0
    while pos < len(content):
        tag, body, pos = der_read(content, pos)
        out.append((tag, body))
    return out


def der_int(body):
    """A DER INTEGER's content as unsigned big-endian bytes."""
    return body.lstrip(b"\x00") or b"\x00"


def spki_parts(der):
    """Splits a SubjectPublicKeyInfo: (algorithm OID bytes, key bits)."""
    _, spki, _ = der_read(der, 0)
    (_, alg), (_, bits) = der_children(spki)
    oid = der_children(alg)[0][1]
    return oid, bits[1:]  # the first byte of a BIT STRING: unused bits


OID_RSA = bytes.fromhex("2a864886f70d010101")
OID_EC = bytes.fromhex("2a8648ce3d0201")
OID_ED25519 = bytes.fromhex("2b6570")


# ---- Keys -----------------------------------------------------------------

def openssl(*args, data=None):
    r = subprocess.run(["openssl"] + list(args), input=data,
                       capture_output=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError("openssl %s: %s" % (" ".join(args),
                                              r.stderr.decode()))
    return r.stdout


class Key:
    """A signing key made with openssl: kind "RS256", "ES256" or "EdDSA"."""

    def __init__(self, kind, kid, directory):
        self.kind = kind
        self.kid = kid
        self.path = os.path.join(directory, "%s.pem" % kid)
        if kind == "RS256":
            openssl("genpkey", "-algorithm", "RSA", "-pkeyopt",
                    "rsa_keygen_bits:2048", "-out", self.path)
        elif kind == "ES256":
            openssl("genpkey", "-algorithm", "EC", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-out", self.path)
        elif kind == "EdDSA":
            openssl("genpkey", "-algorithm", "ED25519", "-out", self.path)
        else:
            raise ValueError(kind)
        self.der = openssl("pkey", "-in", self.path, "-pubout", "-outform",
                           "DER")

    def jwk(self):
        """The public JWK, with kid, use and alg."""
        oid, bits = spki_parts(self.der)
        base = {"kid": self.kid, "use": "sig", "alg": self.kind}
        if oid == OID_RSA:
            _, seq, _ = der_read(bits, 0)
            (_, n), (_, e) = der_children(seq)
            base.update(kty="RSA", n=b64url(der_int(n)), e=b64url(der_int(e)))
        elif oid == OID_EC:
            assert bits[0] == 4 and len(bits) == 65, "uncompressed P-256"
            base.update(kty="EC", crv="P-256", x=b64url(bits[1:33]),
                        y=b64url(bits[33:]))
        elif oid == OID_ED25519:
            base.update(kty="OKP", crv="Ed25519", x=b64url(bits))
        else:
            raise ValueError("unknown key algorithm")
        return base

    def sign(self, data):
        """Signs bytes as the JWS alg wants; returns the raw signature."""
        with tempfile.NamedTemporaryFile(delete=False) as f:
            f.write(data)
            name = f.name
        try:
            if self.kind == "EdDSA":
                return openssl("pkeyutl", "-sign", "-inkey", self.path,
                               "-rawin", "-in", name)
            sig = openssl("dgst", "-sha256", "-sign", self.path, name)
        finally:
            os.unlink(name)
        if self.kind == "ES256":
            # DER ECDSA-Sig-Value: SEQUENCE { INTEGER r, INTEGER s }.
            _, seq, _ = der_read(sig, 0)
            (_, r), (_, s) = der_children(seq)
            sig = der_int(r).rjust(32, b"\x00") + der_int(s).rjust(32, b"\x00")
        return sig

    def token(self, claims, header=None, kid=Ellipsis):
        """A compact JWS of claims signed with this key. header entries
        replace the defaults (alg, typ at+jwt, kid); kid=None leaves kid
        out, any other value replaces it."""
        h = {"alg": self.kind, "typ": "at+jwt", "kid": self.kid}
        if kid is not Ellipsis:
            if kid is None:
                del h["kid"]
            else:
                h["kid"] = kid
        if header:
            h.update(header)
        signing_input = (b64url_json(h) + "." + b64url_json(claims)).encode()
        return signing_input.decode() + "." + b64url(self.sign(signing_input))


# ---- The server -----------------------------------------------------------

class AuthServer:
    """The authorization server. Attributes the test may change at any
    time: jwks (a dict), cache_control (a header value or None),
    introspection (token -> response dict), jwks_mode and introspect_mode
    ("ok", "500", "garbage", "slow"), slow_seconds."""

    def __init__(self, client_id="trine-test", client_secret="s3cret"):
        self.client_id = client_id
        self.client_secret = client_secret
        self.jwks = {"keys": []}
        self.cache_control = None
        self.introspection = {}
        self.jwks_mode = "ok"
        self.introspect_mode = "ok"
        self.slow_seconds = 3.0
        self.lock = threading.Lock()
        self.hits = {"jwks": 0, "introspect": 0}
        self.bad_auth = 0
        self.hints = []
        self.httpd = None
        self.thread = None
        self.port = 0
        self.start()

    # Counters, read under the lock.
    def count(self, name):
        with self.lock:
            return self.hits[name]

    def set_keys(self, keys):
        self.jwks = {"keys": [k.jwk() for k in keys]}

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def start(self):
        """Listens (again, on the same port when it had one)."""
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def reply(self, status, body, headers=()):
                data = body if isinstance(body, bytes) else body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def misbehave(self, mode):
                """Answers per mode; returns True when it did."""
                if mode == "500":
                    self.reply(500, '{"error":"server_error"}')
                elif mode == "garbage":
                    self.reply(200, "<html>not json</html>")
                elif mode == "slow":
                    time.sleep(server.slow_seconds)
                    try:
                        self.reply(500, '{"error":"too late"}')
                    except OSError:
                        pass
                else:
                    return False
                return True

            def do_GET(self):
                if self.path != "/jwks":
                    self.reply(404, "{}")
                    return
                with server.lock:
                    server.hits["jwks"] += 1
                if self.misbehave(server.jwks_mode):
                    return
                headers = []
                if server.cache_control:
                    headers.append(("Cache-Control", server.cache_control))
                self.reply(200, json.dumps(server.jwks), headers)

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n).decode()
                if self.path != "/introspect":
                    self.reply(404, "{}")
                    return
                with server.lock:
                    server.hits["introspect"] += 1
                if not server.authorized(self.headers.get("Authorization")):
                    with server.lock:
                        server.bad_auth += 1
                    self.reply(401, '{"error":"invalid_client"}',
                               [("WWW-Authenticate", 'Basic realm="as"')])
                    return
                if self.misbehave(server.introspect_mode):
                    return
                form = urllib.parse.parse_qs(body, keep_blank_values=True)
                with server.lock:
                    server.hints.append(form.get("token_type_hint"))
                tok = (form.get("token") or [""])[0]
                resp = server.introspection.get(tok, {"active": False})
                self.reply(200, json.dumps(resp))

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port),
                                                     Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)
        self.thread.start()

    def authorized(self, header):
        """Checks HTTP Basic credentials as RFC 6749 section 2.3.1 sends
        them."""
        if not header or not header.startswith("Basic "):
            return False
        try:
            raw = base64.b64decode(header[6:], validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return False
        cid, sep, secret = raw.partition(":")
        return (sep == ":" and
                urllib.parse.unquote_plus(cid) == self.client_id and
                urllib.parse.unquote_plus(secret) == self.client_secret)

    def go_down(self):
        """Closes the listener: connections are refused until come_up."""
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)

    def come_up(self):
        self.start()

    def close(self):
        try:
            self.httpd.shutdown()
            self.httpd.server_close()
        except OSError:
            pass


if __name__ == "__main__":
    raise SystemExit("authserver.py is a module for test_daemon_bearer.py")
