"""A forward HTTP proxy for tests: `CONNECT` tunnels and absolute-URI `GET`/`HEAD`.

`ForwardProxy` listens on 127.0.0.1 (a random port) and serves what `HTTPS_PROXY` and
`HTTP_PROXY` clients send (RFC 9110, 9.3.6 CONNECT): a `CONNECT host:port` is answered
200 and the bytes are relayed both ways until one side closes; a `GET http://host/path`
is fetched from the origin and its answer passed back (whole, with Content-Length).
Every request is recorded in `seen` as (method, host:port), so a test can tell that a
client went through the proxy, or around it. Names are resolved by the proxy, as real
proxies do.

Nothing here imports portscan.
"""

from __future__ import annotations

import http.client
import select
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_HOP_HEADERS = {"connection", "proxy-connection", "keep-alive", "transfer-encoding"}


class ForwardProxy:
    """A running proxy; `url` is what HTTPS_PROXY should say."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def record(self, method: str, target: str) -> None:
        with self._lock:
            self.seen.append((method, target))

    def start(self) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_CONNECT(self) -> None:
                host, _, port = self.path.rpartition(":")
                proxy.record("CONNECT", self.path)
                try:
                    upstream = socket.create_connection((host, int(port)), timeout=10)
                except OSError:
                    self.send_error(502, "cannot reach the origin")
                    return
                self.send_response(200, "Connection established")
                self.end_headers()
                self.wfile.flush()
                _relay(self.connection, upstream)
                self.close_connection = True

            def do_GET(self) -> None:
                self._forward()

            def do_HEAD(self) -> None:
                self._forward()

            def _forward(self) -> None:
                url = urlsplit(self.path)
                if url.scheme != "http" or not url.hostname:
                    self.send_error(400, "a proxy wants an absolute http:// URI")
                    return
                proxy.record(self.command, url.netloc)
                origin = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=10)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
                path = url.path + (f"?{url.query}" if url.query else "")
                try:
                    origin.request(self.command, path, headers=headers)
                    answer = origin.getresponse()
                    body = answer.read()
                except OSError:
                    self.send_error(502, "the origin failed")
                    return
                finally:
                    origin.close()
                self.send_response(answer.status, answer.reason)
                for key, value in answer.getheaders():
                    if key.lower() not in _HOP_HEADERS and key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

        self._server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def _relay(client: socket.socket, upstream: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    sockets = [client, upstream]
    try:
        while True:
            readable, _, broken = select.select(sockets, [], sockets, 30)
            if broken or not readable:
                return
            for source in readable:
                data = source.recv(65536)
                if not data:
                    return
                (upstream if source is client else client).sendall(data)
    except OSError:
        return
    finally:
        upstream.close()


@contextmanager
def forward_proxy() -> Iterator[ForwardProxy]:
    """A proxy for the length of the block."""
    proxy = ForwardProxy()
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
