"""A fault-injecting HTTP proxy in front of a real registry, for the registry-fault tests.

`FaultProxy` is a threaded HTTP/1.1 server on 127.0.0.1 (a random port) that forwards
GET and HEAD requests to an upstream registry (`tests.registry_server.start_registry`)
and, per request, applies the first `Rule` that matches and has hits left:

- `status`: answer `status` (429, 500, 502, 503, ...) with `Retry-After` when given,
  and `body` (a distribution-spec error by default);
- `reset`: send the upstream headers and `after` body bytes, then reset the connection
  (SO_LINGER 0, so the peer sees RST, not FIN);
- `stall`: send the headers and `after` bytes, then sleep `seconds` before closing;
- `trickle`: send the headers and `after` bytes, then `after` bytes every 0.1 s
  (a slow-loris server), for at most `seconds`;
- `drip`: send the headers and `after` bytes, then `after` bytes every `seconds` until
  the body is sent, however long that takes (slow, but never stalled);
- `truncate`: declare the full Content-Length, send `after` bytes, close cleanly;
  with `length=False` no Content-Length is sent (the body ends at the close);
- `redirect`: answer 307 to the same path on `BlobServer`, another host:port that
  serves the bytes and records every Authorization header it receives;
- `redirect_loop`: answer 307 to the same URL on the proxy, forever;
- `redirect_to`: answer 307 to `location` (another scheme, say);
- `pad`: send the answer with `after` bytes of zeros appended (an endless blob, as far
  as a client that trusts the server can tell), with a Content-Length to match unless
  `length=False`;
- `content_type`: pass the answer through with `content_type` as its Content-Type;
- `link`: pass the answer through with `Link: <location>; rel="next"` (pagination that
  goes where the test says: back to the first page, say);
- `html`: answer 200 with an HTML page instead (a captive portal);
- `auth_loop`: answer 401 with a Bearer challenge whose realm is the proxy's own
  `/token`, which hands out tokens the proxy goes on rejecting while the rule lasts.

A rule matches a request kind (`ping` for /v2/, `manifest`, `blob`, `token`) or, for
any other `match`, a path containing it (a digest picks one blob). `times=None` makes a
rule persistent; `times=N` applies it to the first N matching requests. With
`require_token=True` the proxy itself demands a Bearer token from its `/token` endpoint
(so clients send Authorization, and a redirect can be checked not to forward it).

Nothing here imports portscan.
"""

from __future__ import annotations

import json
import secrets
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import httpx

KINDS = ("ping", "manifest", "blob", "token")
_PASSED_HEADERS = ("content-type", "docker-content-digest", "content-range", "accept-ranges")


@dataclass
class Rule:
    """One fault; see the module docstring for `fault` and the parameters it uses."""

    fault: str
    match: str
    times: int | None = 1  # None: persistent
    status: int = 503
    retry_after: str | None = None
    after: int = 1024
    seconds: float = 3.0
    length: bool = True
    content_type: str = "text/plain"
    location: str = ""
    body: bytes = b'{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}'
    hits: int = 0

    def applies(self, kind: str, path: str) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        return self.match == kind if self.match in KINDS else self.match in path


@dataclass
class Seen:
    """A request as the proxy or the blob server received it."""

    method: str
    path: str
    authorization: str | None
    range: str | None
    fault: str | None = None


def _kind(path: str) -> str:
    if path in ("/v2/", "/v2"):
        return "ping"
    if path == "/token":
        return "token"
    if "/manifests/" in path:
        return "manifest"
    if "/blobs/" in path:
        return "blob"
    return "other"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that give up on a stalled or reset answer are expected


def _upstream_get(upstream: str, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
    with httpx.Client(timeout=30) as client:
        response = client.request(method, f"{upstream}{path}", headers=headers)
        response.read()
        return response


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream = ""

    def log_message(self, *args: object) -> None:
        pass

    def _forwarded(self) -> dict[str, str]:
        wanted = {"accept": "Accept", "range": "Range"}
        return {name: self.headers[key] for key, name in wanted.items() if key in self.headers}

    def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _pass_through(
        self, upstream: httpx.Response, content_type: str | None = None, link: str | None = None
    ) -> None:
        headers = {k: v for k, v in upstream.headers.items() if k.lower() in _PASSED_HEADERS}
        if content_type is not None:
            headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
            headers["Content-Type"] = content_type
        if link is not None:
            headers["Link"] = f'<{link}>; rel="next"'
        self._reply(upstream.status_code, upstream.content, headers)


class BlobServer:
    """The redirect target: serves what the upstream serves at the same path (Range too)
    and records each request, Authorization header included."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.seen: list[Seen] = []
        owner = self

        class Handler(_Handler):
            def do_GET(self) -> None:
                owner.seen.append(
                    Seen(
                        self.command,
                        self.path,
                        self.headers.get("Authorization"),
                        self.headers.get("Range"),
                    )
                )
                self._pass_through(
                    _upstream_get(owner.upstream, "GET", self.path, self._forwarded())
                )

        self._server = _Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class FaultProxy:
    """The proxy; `rules` may be replaced between scans, `seen` logs every request."""

    def __init__(self, upstream: str, require_token: bool = False) -> None:
        self.upstream = upstream
        self.require_token = require_token
        self.rules: list[Rule] = []
        self.seen: list[Seen] = []
        self.tokens: set[str] = set()
        self.blob_server = BlobServer(upstream)
        self._lock = threading.Lock()
        owner = self

        class Handler(_Handler):
            def do_GET(self) -> None:
                owner._handle(self)

            def do_HEAD(self) -> None:
                owner._handle(self)

        self._server = _Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def set_rules(self, *rules: Rule) -> None:
        with self._lock:
            self.rules = list(rules)
            self.seen = []
            self.blob_server.seen.clear()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.blob_server.stop()

    def requests(self, kind: str) -> list[Seen]:
        return [seen for seen in self.seen if _kind(urlsplit(seen.path).path) == kind]

    # -- handling
    def _pick(self, kind: str, path: str) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.applies(kind, path):
                    rule.hits += 1
                    return rule
        return None

    def _challenge(self, handler: _Handler) -> None:
        realm = f"http://{self.host}/token"
        challenge = f'Bearer realm="{realm}",service="faultproxy",scope="repository:x:pull"'
        body = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
        handler._reply(
            401, body, {"Content-Type": "application/json", "WWW-Authenticate": challenge}
        )

    def _handle(self, handler: _Handler) -> None:
        path = urlsplit(handler.path).path
        kind = _kind(path)
        rule = self._pick(kind, path)
        auth = handler.headers.get("Authorization")
        self.seen.append(
            Seen(
                handler.command,
                handler.path,
                auth,
                handler.headers.get("Range"),
                rule.fault if rule else None,
            )
        )
        if kind == "token":
            token = secrets.token_hex(8)
            self.tokens.add(token)
            body = json.dumps({"token": token, "expires_in": 300}).encode()
            return handler._reply(200, body, {"Content-Type": "application/json"})
        if rule is not None and rule.fault == "auth_loop":
            return self._challenge(handler)
        if self.require_token and (auth or "").removeprefix("Bearer ") not in self.tokens:
            return self._challenge(handler)
        if rule is None:
            upstream = _upstream_get(
                self.upstream, handler.command, handler.path, handler._forwarded()
            )
            return handler._pass_through(upstream)
        return self._fault(handler, rule)

    def _fault(self, handler: _Handler, rule: Rule) -> None:
        if rule.fault == "status":
            headers = {"Content-Type": "application/json"}
            if rule.retry_after is not None:
                headers["Retry-After"] = rule.retry_after
            return handler._reply(rule.status, rule.body, headers)
        if rule.fault in ("redirect", "redirect_loop"):
            port = self.blob_server.port if rule.fault == "redirect" else self.port
            location = f"http://127.0.0.1:{port}{handler.path}"
            return handler._reply(307, b"", {"Location": location})
        if rule.fault == "redirect_to":
            return handler._reply(307, b"", {"Location": rule.location})
        if rule.fault == "html":
            page = b"<html><body>Please log in to the guest network</body></html>"
            return handler._reply(200, page, {"Content-Type": "text/html"})
        upstream = _upstream_get(self.upstream, handler.command, handler.path, handler._forwarded())
        if rule.fault == "content_type":
            return handler._pass_through(upstream, rule.content_type)
        if rule.fault == "link":
            return handler._pass_through(upstream, link=rule.location)
        if rule.fault not in ("reset", "stall", "truncate", "trickle", "drip", "pad"):
            raise ValueError(f"unknown fault {rule.fault!r}")
        body = upstream.content
        first = rule.after  # bytes sent at once
        if rule.fault == "pad":
            body += bytes(rule.after)
            first = len(body)
        handler.send_response(upstream.status_code)
        for key, value in upstream.headers.items():
            if key.lower() in _PASSED_HEADERS:
                handler.send_header(key, value)
        if rule.length:
            handler.send_header("Content-Length", str(len(body)))
        else:
            handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(body[:first])
        handler.wfile.flush()
        handler.close_connection = True
        if rule.fault == "stall":
            time.sleep(rule.seconds)
        elif rule.fault == "trickle":
            deadline = time.monotonic() + rule.seconds
            sent = rule.after
            while sent < len(body) and time.monotonic() < deadline:
                time.sleep(0.1)
                handler.wfile.write(body[sent : sent + rule.after])
                handler.wfile.flush()
                sent += rule.after
        elif rule.fault == "drip":
            for sent in range(rule.after, len(body), rule.after):
                time.sleep(rule.seconds)
                handler.wfile.write(body[sent : sent + rule.after])
                handler.wfile.flush()
        elif rule.fault == "reset":
            linger = struct.pack("ii", 1, 0)
            handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            handler.connection.close()


@contextmanager
def fault_proxy(upstream: str, require_token: bool = False) -> Iterator[FaultProxy]:
    """A running proxy in front of `upstream` (`http://HOST:PORT`) until the block ends."""
    proxy = FaultProxy(upstream, require_token)
    try:
        yield proxy
    finally:
        proxy.stop()
