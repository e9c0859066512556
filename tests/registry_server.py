"""Real registries for tests: Debian's `docker-registry` on loopback, plus a token server.

`start_registry` runs `/usr/bin/docker-registry serve CONFIG.yml` on 127.0.0.1 with a
temporary storage directory and one of three auth set-ups: none, htpasswd (basic auth,
bcrypt entries made with `htpasswd -Bbn`) or token auth. For token auth a small token
server written here issues RS256 JWTs in the format of the distribution token spec
(docs/spec/auth/jwt.md of distribution/distribution): an `x5c` header holding a
self-signed certificate that is also the registry's `rootcertbundle`, and an `access`
claim listing the granted actions per repository.

`Registry.push` and `Registry.push_index` upload `tests.imagebuild.Image` objects with
plain distribution API calls: a monolithic blob upload (POST, then PUT with `digest=`)
and a manifest PUT with the manifest's media type as Content-Type.

Nothing here imports portscan: the fixtures are independent of the code under test.
"""

from __future__ import annotations

import base64
import datetime
import json
import secrets
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests import imagebuild as ib

REGISTRY_BINARY = "/usr/bin/docker-registry"
USER = "alice"
PASSWORD = "wonderland"
REFRESH_TOKEN = "refresh-alice"  # what `docker login` stores as `identitytoken`
SERVICE = "portscan-test-registry"
ISSUER = "portscan-test-issuer"
PUBLIC_PREFIX = "public/"  # repositories anonymous users may pull from (token variant)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def registry_available() -> bool:
    return Path(REGISTRY_BINARY).exists()


# --------------------------------------------------------------------------- token server


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenIssuer:
    """An RSA key and a self-signed certificate; signs distribution-style JWTs."""

    def __init__(self, directory: Path) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "portscan test token issuer")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self.cert_path = directory / "token-cert.pem"
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self._x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()

    def sign(self, subject: str, access: list[dict[str, Any]], lifetime: int = 300) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self._x5c]}
        claims = {
            "iss": ISSUER,
            "sub": subject,
            "aud": SERVICE,
            "exp": now + lifetime,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        signing_input = ".".join(
            _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
        )
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"


def _grant(scopes: list[str], user: str | None) -> list[dict[str, Any]]:
    """Alice gets what she asks for; anonymous users may only pull public/ repositories."""
    access = []
    for scope in scopes:
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        if kind != "repository" or not name:
            continue
        wanted = [a for a in actions.split(",") if a]
        if user is None:
            wanted = ["pull"] if "pull" in wanted and name.startswith(PUBLIC_PREFIX) else []
        access.append({"type": "repository", "name": name, "actions": wanted})
    return access


@dataclass
class TokenServer:
    """The `realm` of a token-auth registry: GET with optional basic auth, or POST with
    an OAuth2 refresh token. Counts the token requests per scope."""

    issuer: TokenIssuer
    port: int = 0
    requests: Counter[str] = field(default_factory=Counter)
    _server: ThreadingHTTPServer | None = None

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def start(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                user = None
                header = self.headers.get("Authorization", "")
                if header.startswith("Basic "):
                    name, _, password = base64.b64decode(header[6:]).decode().partition(":")
                    if (name, password) != (USER, PASSWORD):
                        return self._reply(401, {"details": "incorrect username or password"})
                    user = name
                self._issue(query, user)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = parse_qs(self.rfile.read(length).decode())
                if form.get("grant_type") != ["refresh_token"] or form.get("refresh_token") != [
                    REFRESH_TOKEN
                ]:
                    return self._reply(401, {"details": "invalid refresh token"})
                self._issue(form, USER)

            def _issue(self, query: dict[str, list[str]], user: str | None) -> None:
                if query.get("service") != [SERVICE]:
                    return self._reply(400, {"details": "unknown service"})
                scopes = query.get("scope", [])
                for scope in scopes:
                    owner.requests[scope] += 1
                token = owner.issuer.sign(user or "", _grant(scopes, user))
                self._reply(200, {"token": token, "access_token": token, "expires_in": 300})

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class TLSFiles:
    """PEM files for a registry serving HTTPS: its certificate and key, the CA a client
    must trust, and optionally the CA its clients' certificates must chain to (with a
    client certificate and key the pushes present)."""

    certificate: Path
    key: Path
    ca: Path
    client_ca: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca))
        if self.client_cert is not None and self.client_key is not None:
            context.load_cert_chain(str(self.client_cert), str(self.client_key))
        return context


@dataclass
class Registry:
    """A running registry: where it listens, where it stores, how to push to it."""

    host: str  # "127.0.0.1:PORT"
    storage: Path
    process: subprocess.Popen[bytes]
    auth: str  # none | htpasswd | token
    token_server: TokenServer | None = None
    scheme: str = "http"  # https with `tls`
    verify: ssl.SSLContext | bool = True  # how the pushes trust (and authenticate to) it

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    def _headers(self, repository: str) -> dict[str, str]:
        if self.auth == "htpasswd":
            raw = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            return {"Authorization": f"Basic {raw}"}
        if self.auth == "token":
            assert self.token_server is not None
            access = [{"type": "repository", "name": repository, "actions": ["pull", "push"]}]
            return {"Authorization": f"Bearer {self.token_server.issuer.sign(USER, access)}"}
        return {}

    def push_blob(self, repository: str, blob: ib.Blob) -> None:
        headers = self._headers(repository)
        with httpx.Client(
            base_url=self.url, headers=headers, timeout=30, verify=self.verify
        ) as client:
            start = client.post(f"/v2/{repository}/blobs/uploads/")
            start.raise_for_status()
            location = start.headers["Location"]
            separator = "&" if "?" in location else "?"
            done = client.put(
                f"{location}{separator}digest={blob.digest}",
                content=blob.data,
                headers={"Content-Type": "application/octet-stream"},
            )
            done.raise_for_status()

    def push_manifest(self, repository: str, reference: str, blob: ib.Blob) -> None:
        headers = {**self._headers(repository), "Content-Type": blob.media_type}
        response = httpx.put(
            f"{self.url}/v2/{repository}/manifests/{reference}",
            content=blob.data,
            headers=headers,
            timeout=30,
            verify=self.verify,
        )
        response.raise_for_status()

    def push(self, repository: str, tag: str, image: ib.Image) -> str:
        """Push one image under `tag`; returns its manifest digest."""
        for blob in (image.config_blob, *image.layer_blobs):
            self.push_blob(repository, blob)
        self.push_manifest(repository, tag, image.manifest_blob)
        return image.manifest_blob.digest

    def push_index(self, repository: str, tag: str, images: list[ib.Image]) -> str:
        """Push several platform images and an OCI index over them; returns its digest."""
        for image in images:
            self.push(repository, image.manifest_blob.digest, image)
        index = index_blob(images)
        self.push_manifest(repository, tag, index)
        return index.digest

    def blob_path(self, digest: str) -> Path:
        """Where the filesystem driver keeps a blob's bytes."""
        hexdigest = digest.split(":", 1)[1]
        return self.storage / "docker/registry/v2/blobs/sha256" / hexdigest[:2] / hexdigest / "data"


def index_blob(images: list[ib.Image], media_type: str = ib.OCI_INDEX) -> ib.Blob:
    document = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": [img.manifest_blob.descriptor(platform=img.platform) for img in images],
    }
    return ib.Blob(media_type, json.dumps(document).encode())


def _config_yaml(storage: Path, port: int, auth: str, tls: TLSFiles | None = None) -> str:
    lines = [
        "version: 0.1",
        "log:",
        "  level: error",
        "  accesslog:",
        "    disabled: true",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {storage}",
        "  delete:",
        "    enabled: true",
        "  maintenance:",
        "    uploadpurging:",
        "      enabled: false",
        "http:",
        f"  addr: 127.0.0.1:{port}",
        f"  secret: {secrets.token_hex(16)}",
    ]
    if tls is not None:
        lines += ["  tls:", f"    certificate: {tls.certificate}", f"    key: {tls.key}"]
        if tls.client_ca is not None:
            lines += ["    clientcas:", f"      - {tls.client_ca}"]
    return "\n".join(lines) + "\n" + auth


def _htpasswd(path: Path) -> None:
    if shutil.which("htpasswd") is None:
        raise RuntimeError("htpasswd is required for the basic-auth registry (apache2-utils)")
    entry = subprocess.run(
        ["htpasswd", "-Bbn", USER, PASSWORD], check=True, capture_output=True, text=True
    ).stdout.strip()
    path.write_text(entry + "\n")


def _wait_ready(
    process: subprocess.Popen[bytes], url: str, log: Path, verify: ssl.SSLContext | bool = True
) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"docker-registry exited: {log.read_text()[-2000:]}")
        try:
            httpx.get(f"{url}/v2/", timeout=1, verify=verify)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError(f"docker-registry did not answer on {url} within 30 s")


@contextmanager
def start_registry(
    workdir: Path, auth: str = "none", tls: TLSFiles | None = None, host: str = "127.0.0.1"
) -> Iterator[Registry]:
    """Run a registry until the block ends. `auth` is none, htpasswd or token; with
    `tls` it serves HTTPS (and demands a client certificate when `tls.client_ca` is
    set), named `host` (which must resolve to 127.0.0.1) in `Registry.host`."""
    workdir.mkdir(parents=True, exist_ok=True)
    storage = workdir / "storage"
    storage.mkdir(exist_ok=True)
    port = free_port()
    token_server = None
    auth_yaml = ""
    if auth == "htpasswd":
        _htpasswd(workdir / "htpasswd")
        auth_yaml = (
            f"auth:\n  htpasswd:\n    realm: portscan-test\n    path: {workdir / 'htpasswd'}\n"
        )
    elif auth == "token":
        token_server = TokenServer(TokenIssuer(workdir))
        token_server.start()
        auth_yaml = (
            "auth:\n  token:\n"
            f"    realm: {token_server.realm}\n"
            f"    service: {SERVICE}\n"
            f"    issuer: {ISSUER}\n"
            f"    rootcertbundle: {token_server.issuer.cert_path}\n"
        )
    elif auth != "none":
        raise ValueError(f"unknown auth variant {auth!r}")
    config = workdir / "config.yml"
    config.write_text(_config_yaml(storage, port, auth_yaml, tls))
    log = workdir / "registry.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [REGISTRY_BINARY, "serve", str(config)], stdout=log_file, stderr=subprocess.STDOUT
        )
    registry = Registry(f"{host}:{port}", storage, process, auth, token_server)
    if tls is not None:
        registry.scheme, registry.verify = "https", tls.client_context()
    try:
        _wait_ready(process, registry.url, log, registry.verify)
        yield registry
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if token_server is not None:
            token_server.stop()


# --------------------------------------------------------------------------- faults


@dataclass
class Fault:
    """What the scripted server does instead of answering normally, once.

    kind: `status` (answer `status` with `headers`), `drop` (send the headers and
    `after` bytes of the body, then close), `stall` (sleep `seconds`, then answer)."""

    kind: str
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    after: int = 0
    seconds: float = 0.0


@dataclass
class LoggedRequest:
    path: str
    range: str | None
    at: float


class ScriptedRegistry:
    """A read-only distribution API server for one image, in a thread on loopback, that
    misbehaves on cue: `faults[path_suffix]` is consumed one fault per request to a
    path ending so. Every request is logged. With `honour_range=False` it ignores
    `Range` and always sends whole blobs, as some servers do."""

    def __init__(self, repository: str, tag: str, image: ib.Image) -> None:
        self.repository = repository
        self.tag = tag
        self.image = image
        self.faults: dict[str, list[Fault]] = {}
        self.log: list[LoggedRequest] = []
        self.honour_range = True
        self._blobs = {blob.digest: blob for blob in image.blobs}
        self._server: ThreadingHTTPServer | None = None
        self.port = 0

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def requests_to(self, suffix: str) -> list[LoggedRequest]:
        return [entry for entry in self.log if entry.path.endswith(suffix)]

    def start(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                owner.log.append(LoggedRequest(path, self.headers.get("Range"), time.monotonic()))
                fault = owner._next_fault(path)
                if fault is not None and fault.kind == "stall":
                    time.sleep(fault.seconds)
                if fault is not None and fault.kind == "status":
                    return self._send(fault.status, b"{}", {**fault.headers})
                status, body, headers = owner._answer(path, self.headers.get("Range"))
                if fault is not None and fault.kind == "drop":
                    self.send_response(status)
                    for key, value in {**headers, "Content-Length": str(len(body))}.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(body[: fault.after])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self._send(status, body, headers)

            def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for key, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a client that gave up on a stalled answer is expected

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _next_fault(self, path: str) -> Fault | None:
        for suffix, queue in self.faults.items():
            if path.endswith(suffix) and queue:
                return queue.pop(0)
        return None

    def _answer(self, path: str, byte_range: str | None) -> tuple[int, bytes, dict[str, str]]:
        prefix = f"/v2/{self.repository}/"
        if path in ("/v2/", "/v2"):
            return 200, b"{}", {"Content-Type": "application/json"}
        if path.startswith(prefix + "manifests/"):
            reference = path[len(prefix + "manifests/") :]
            manifest = self.image.manifest_blob
            if reference not in (self.tag, manifest.digest):
                return 404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}', {}
            digest = manifest.digest
            return (
                200,
                manifest.data,
                {"Content-Type": manifest.media_type, "Docker-Content-Digest": digest},
            )
        if path.startswith(prefix + "blobs/"):
            blob = self._blobs.get(path[len(prefix + "blobs/") :])
            if blob is None:
                return 404, b'{"errors":[{"code":"BLOB_UNKNOWN"}]}', {}
            headers = {"Content-Type": "application/octet-stream"}
            if byte_range and self.honour_range and byte_range.startswith("bytes="):
                start = int(byte_range[6:].split("-", 1)[0])
                end = len(blob.data) - 1
                headers["Content-Range"] = f"bytes {start}-{end}/{len(blob.data)}"
                return 206, blob.data[start:], headers
            return 200, blob.data, headers
        return 404, b'{"errors":[{"code":"NAME_UNKNOWN"}]}', {}


@contextmanager
def scripted_registry(repository: str, tag: str, image: ib.Image) -> Iterator[ScriptedRegistry]:
    server = ScriptedRegistry(repository, tag, image)
    server.start()
    try:
        yield server
    finally:
        server.stop()
