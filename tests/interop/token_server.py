#!/usr/bin/env python3
"""A small OAuth 2 token server for the interop tests, on 127.0.0.1.

It implements the refresh-token grant (RFC 6749 section 6), the device
authorization grant (RFC 8628) and the authorization code grant with PKCE
(RFC 7636), and issues HS256 JWT access tokens (sub = the user, iss, iat,
exp) signed with the key Dovecot validates them with (tests/interop/setup.sh
writes it), so a token mailctl obtains here is checked by the real Dovecot
and, through Dovecot's SASL, the real Postfix.

    token_server.py --key-file FILE [--issuer ISS] [--user USER]
                    [--expires-in SECS] [--rotate] [--tls CERT KEY]

It prints its base URL on the first line of standard output, then serves
until killed. Besides the OAuth endpoints (/token, /device, /authorize) it
has endpoints for the tests: /verify?user_code=C (the person approving a
device code), POST /admin/refresh-token (a refresh token for --user, as if
a login had happened), GET /admin/stats (how many grants of each kind).
"""

import argparse
import base64
import hashlib
import hmac
import json
import secrets
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class State:
    """Everything the server knows, behind one lock."""

    def __init__(self, args, key):
        self.args = args
        self.key = key
        self.lock = threading.RLock()
        self.refresh_tokens = {}  # token -> user
        self.device_codes = {}  # device_code -> {"user_code", "user", "approved"}
        self.codes = {}  # code -> {"user", "challenge", "redirect_uri"}
        self.stats = {"refresh": 0, "device": 0, "code": 0, "refused": 0}

    def jwt(self, user):
        now = int(time.time())
        header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = b64url(json.dumps({
            "iss": self.args.issuer, "sub": user, "iat": now,
            "exp": now + self.args.expires_in}).encode())
        signing = f"{header}.{body}".encode()
        signature = b64url(hmac.new(self.key, signing, hashlib.sha256).digest())
        return f"{header}.{body}.{signature}"

    def new_refresh(self, user):
        token = "rt-" + secrets.token_urlsafe(24)
        self.refresh_tokens[token] = user
        return token

    def grant(self, user, old_refresh=None, always_refresh=False):
        answer = {"access_token": self.jwt(user), "token_type": "Bearer",
                  "expires_in": self.args.expires_in}
        if always_refresh or self.args.rotate:
            if old_refresh is not None:
                del self.refresh_tokens[old_refresh]
            answer["refresh_token"] = self.new_refresh(user)
        return answer


class Handler(BaseHTTPRequestHandler):
    state = None

    def log_message(self, format, *args):  # quiet: the tests read stdout
        pass

    def reply(self, status, body, headers=()):
        data = json.dumps(body).encode() if not isinstance(body, bytes) else body
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def error(self, error, status=400):
        with self.state.lock:
            if error not in ("authorization_pending", "slow_down"):
                self.state.stats["refused"] += 1
        self.reply(status, {"error": error, "error_description": error.replace("_", " ")})

    def form(self):
        length = int(self.headers.get("Content-Length", "0"))
        return dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))

    def do_POST(self):
        path = urllib.parse.urlparse(self.path).path
        form = self.form()
        state = self.state
        if path == "/admin/refresh-token":
            with state.lock:
                return self.reply(200, {"refresh_token": state.new_refresh(state.args.user)})
        if form.get("client_id") != "mailctl-test":
            return self.error("invalid_client", 401)
        if path == "/device":
            return self.device(form)
        if path != "/token":
            return self.error("not_found", 404)
        kind = form.get("grant_type")
        with state.lock:
            if kind == "refresh_token":
                user = state.refresh_tokens.get(form.get("refresh_token"))
                if user is None:
                    return self.error("invalid_grant")
                state.stats["refresh"] += 1
                return self.reply(200, state.grant(user, form["refresh_token"]))
            if kind == "urn:ietf:params:oauth:grant-type:device_code":
                entry = state.device_codes.get(form.get("device_code"))
                if entry is None:
                    return self.error("invalid_grant")
                if not entry["approved"]:
                    return self.error("authorization_pending")
                del state.device_codes[form["device_code"]]
                state.stats["device"] += 1
                return self.reply(200, state.grant(entry["user"], always_refresh=True))
            if kind == "authorization_code":
                entry = state.codes.pop(form.get("code"), None)
                verifier = form.get("code_verifier", "")
                challenge = b64url(hashlib.sha256(verifier.encode()).digest())
                if (entry is None or entry["challenge"] != challenge
                        or entry["redirect_uri"] != form.get("redirect_uri")):
                    return self.error("invalid_grant")
                state.stats["code"] += 1
                return self.reply(200, state.grant(entry["user"], always_refresh=True))
        return self.error("unsupported_grant_type")

    def device(self, form):
        state = self.state
        with state.lock:
            device_code = "dc-" + secrets.token_urlsafe(16)
            user_code = secrets.token_hex(4).upper()
            state.device_codes[device_code] = {
                "user_code": user_code, "user": state.args.user, "approved": False}
        base = f"{state.args.scheme}://127.0.0.1:{self.server.server_port}"
        self.reply(200, {
            "device_code": device_code, "user_code": user_code,
            "verification_uri": f"{base}/verify", "interval": 1, "expires_in": 300})

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        state = self.state
        if url.path == "/admin/stats":
            with state.lock:
                return self.reply(200, dict(state.stats))
        if url.path == "/verify":
            with state.lock:
                for entry in state.device_codes.values():
                    if entry["user_code"] == query.get("user_code"):
                        entry["approved"] = True
                        return self.reply(200, {"approved": True})
            return self.error("invalid_request", 404)
        if url.path == "/authorize":
            return self.authorize(query)
        self.error("not_found", 404)

    def authorize(self, query):
        """Plays the person who signs in and consents: redirects at once."""
        state = self.state
        redirect = query.get("redirect_uri", "")
        if (query.get("client_id") != "mailctl-test" or query.get("response_type") != "code"
                or query.get("code_challenge_method") != "S256"
                or not redirect.startswith("http://127.0.0.1:")):
            return self.error("invalid_request")
        code = "ac-" + secrets.token_urlsafe(16)
        with state.lock:
            state.codes[code] = {"user": state.args.user, "redirect_uri": redirect,
                                 "challenge": query.get("code_challenge")}
        target = redirect + "?" + urllib.parse.urlencode(
            {"code": code, "state": query.get("state", "")})
        self.reply(302, b"", [("Location", target)])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--key-file", required=True)
    parser.add_argument("--issuer", default="mailctl-interop")
    parser.add_argument("--user", default="olga")
    parser.add_argument("--expires-in", type=int, default=3600)
    parser.add_argument("--rotate", action="store_true")
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    args = parser.parse_args()
    with open(args.key_file) as f:
        key = base64.b64decode(f.read().strip())
    args.scheme = "https" if args.tls else "http"
    Handler.state = State(args, key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if args.tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*args.tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    print(f"{args.scheme}://127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
