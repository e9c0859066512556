"""Pull images over the OCI distribution API (distribution-spec v1.1), streaming blobs.

A thin client on httpx: a `/v2/` ping learns the transport and the auth scheme, the
manifest is fetched with an Accept header naming all four manifest and index types,
indexes are resolved by platform (see `manifests`), the config blob is read whole
(it is small), and layer blobs are handed out as streams: `open_blob` never buffers a
layer in memory nor writes it to disk, and resumes with a `Range` request when the
connection drops mid-blob. `layers.read_layer` checks each layer's digest as it reads.

Transport, like the Docker daemon: HTTPS with certificate checks by default, trusting
the OS store, certifi, `--ca-cert` files and the registry's certs.d directory (`tls`);
proxies come from `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` and `NO_PROXY` (httpx's
`trust_env`). With
`--insecure`, and always for registries on `localhost`, `127.0.0.0/8` or `::1`
(which Docker treats as insecure registries), certificates are not verified and
plain HTTP is tried when HTTPS fails. Docker Hub (`docker.io`) is served from
`registry-1.docker.io`.

Retries: connection resets, timeouts, truncated bodies, 429 and 5xx answers are
retried up to `ATTEMPTS` times with exponential backoff and full jitter (base
`BACKOFF_BASE`, or `$PORTSCAN_RETRY_BASE` seconds), waiting as long as a `Retry-After`
header says (seconds or an HTTP date, at most `RETRY_AFTER_CAP`) when there is one.
Refused connections, DNS and TLS failures, unsupported URL schemes and redirect loops
are not retried: they do not heal in seconds.

Time bounds (docs/security.md, "Registries"): `timeout` is the connect and per-read
timeout; a manifest, config or token answer must arrive whole within `timeout` seconds
of its headers; a blob must keep arriving at `MIN_BLOB_RATE` bytes per second averaged
over `timeout` seconds, else it counts as stalled and is resumed; and each request for a
blob must deliver its body within its deadline (`Deadline`: `DEADLINE_FLOOR` seconds, or
the blob's size at `DEADLINE_RATE` when that is longer), else it is aborted and resumed,
and after `ATTEMPTS` such aborts the blob fails with exit 5. A blob never yields
more bytes than its descriptor's size. Redirects (at most `MAX_REDIRECTS`) are followed
without the Authorization header when they leave the registry's origin (httpx strips it).
"""

from __future__ import annotations

import email.utils
import io
import os
import random
import socket
import ssl
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import httpcore
import httpx

from portscan import __version__
from portscan.errors import (
    AuthError,
    CorruptImageError,
    ImageNotFoundError,
    PortscanError,
    RegistryUnreachableError,
    UsageError,
)
from portscan.model import ImageMeta, ImageRef, LayerDescriptor, SourceKind
from portscan.sources.auth import Authenticator, Credentials, load_credentials
from portscan.sources.base import BlobImageSource, SourceOptions
from portscan.sources.manifests import (
    ACCEPT,
    MAX_DOCUMENT_BYTES,
    Descriptor,
    build_meta,
    parse_document,
    resolve_manifest,
    sha256_digest,
    verify_digest,
)
from portscan.sources.refs import is_loopback
from portscan.sources.tls import ssl_context
from portscan.sources.validate import verifiable

ATTEMPTS = 4
BACKOFF_BASE = 0.25  # seconds; attempt n waits up to BACKOFF_BASE * 2**n
BACKOFF_BASE_ENV = "PORTSCAN_RETRY_BASE"  # overrides BACKOFF_BASE (tests make it small)
BACKOFF_CAP = 8.0
RETRY_AFTER_CAP = 60.0  # never wait longer than this on a server's say-so
MIN_BLOB_RATE = 1024  # bytes per second, averaged over `timeout`; slower is a stall
DEADLINE_FLOOR = 300.0  # seconds: the least time any one blob request is given
DEADLINE_RATE = 64 << 10  # bytes per second: a larger blob's request gets size / this
DEADLINE_FLOOR_ENV = "PORTSCAN_REQUEST_DEADLINE"  # seconds, replaces DEADLINE_FLOOR
DEADLINE_RATE_ENV = "PORTSCAN_DEADLINE_KIB_PER_S"  # KiB/s, replaces DEADLINE_RATE
MAX_REDIRECTS = 10
MAX_TAGS_SHOWN = 10
RESUME_PROGRESS = 1 << 20  # bytes after which a dropped blob download counts as progressing
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
DOCKER_HUB_ENDPOINT = "registry-1.docker.io"
_USER_AGENT = f"portscan/{__version__}"
# httpcore reads an answer 64 KiB at a time, each read passing through h11's parser and
# httpx's streams in Python: a layer read 256 KiB at a time costs a third less CPU
# (nginx's 51 MB base layer from a loopback registry: 0.08-0.12 s -> 0.064 s), in the
# thread that feeds the inflater (layers.py). A MiB at a time cost a little less still
# (0.04-0.06 s) but left this process 6 MiB larger for the rest of the scan (postgres:
# 112-113 MiB against 106-109 when reachability starts). Every HTTP/1.1 connection of
# this process reads so.
_READ_SIZE = 1 << 18
httpcore.HTTP11Connection.READ_NUM_BYTES = _READ_SIZE

Scheme = tuple[str, bool]  # ("https" | "http", verify TLS certificates)


# --------------------------------------------------------------------------- endpoints


def endpoint_host(registry: str) -> str:
    """The host serving the API for a registry name (Docker Hub has its own)."""
    return DOCKER_HUB_ENDPOINT if registry == "docker.io" else registry


def candidate_schemes(host: str, insecure: bool) -> list[Scheme]:
    """The transports to try, in order (see the module docstring)."""
    if insecure or is_loopback(host):
        return [("https", False), ("http", False)]
    return [("https", True)]


# --------------------------------------------------------------------------- retries


def backoff_base() -> float:
    """`BACKOFF_BASE`, or the seconds `$PORTSCAN_RETRY_BASE` says (0 to 10)."""
    text = os.environ.get(BACKOFF_BASE_ENV, "").strip()
    if not text:
        return BACKOFF_BASE
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 10:
        raise UsageError(f"{BACKOFF_BASE_ENV}={text!r} is not a number of seconds from 0 to 10")
    return value


def backoff_delay(attempt: int) -> float:
    """Full-jitter exponential backoff for the `attempt`-th retry (1-based)."""
    return random.uniform(0, min(BACKOFF_CAP, backoff_base() * 2**attempt))


@dataclass(frozen=True)
class Deadline:
    """How long the body of one blob request may take, counting only time spent waiting
    for the network (docs/security.md, "Timeouts"): `floor` seconds, or `size / rate`
    when the blob is large enough for that to be longer."""

    floor: float = DEADLINE_FLOOR
    rate: int = DEADLINE_RATE  # bytes per second

    def seconds(self, size: int) -> float:
        """The deadline for a blob of `size` bytes (-1: unknown, the floor)."""
        return max(self.floor, size / self.rate)

    @classmethod
    def from_env(cls) -> Deadline:
        """The defaults, with what `DEADLINE_FLOOR_ENV` and `DEADLINE_RATE_ENV` say
        (`UsageError` for a value that is not a positive whole number)."""
        values: dict[str, Any] = {}
        for name, variable, unit, what in (
            ("floor", DEADLINE_FLOOR_ENV, 1, "number of seconds"),
            ("rate", DEADLINE_RATE_ENV, 1024, "number of KiB per second"),
        ):
            raw = os.environ.get(variable, "").strip()
            if not raw:
                continue
            if not raw.isdigit() or int(raw) == 0:
                raise UsageError(f"{variable}={raw[:40]!r} is not a positive whole {what}")
            values[name] = int(raw) * unit
        return cls(**values)


def retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP-date)."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return min(float(value), RETRY_AFTER_CAP)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return min(max(when.timestamp() - time.time(), 0.0), RETRY_AFTER_CAP)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception, its causes and contexts, and exceptions held in their args."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        stack.extend(a for a in current.args if isinstance(a, BaseException))
        stack.extend(e for e in (current.__cause__, current.__context__) if e is not None)


def _is_permanent(exc: httpx.RequestError) -> bool:
    """Failures a retry will not fix: refused connections, DNS and TLS errors, URLs
    of other schemes, redirect loops."""
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.TooManyRedirects):
        return True
    if not isinstance(exc, httpx.ConnectError):
        return False
    return any(
        isinstance(c, ConnectionRefusedError | socket.gaierror | ssl.SSLError) for c in _causes(exc)
    )


def unreachable_error(exc: httpx.RequestError, host: str, attempts: int) -> PortscanError:
    """A one-line `RegistryUnreachableError` saying what failed and what to try."""
    if isinstance(exc, httpx.TooManyRedirects):
        return RegistryUnreachableError(
            f"{host} redirected more than {MAX_REDIRECTS} times", "the registry is misconfigured"
        )
    if isinstance(exc, httpx.UnsupportedProtocol):
        return RegistryUnreachableError(
            f"{host} sent portscan to a URL it cannot fetch ({exc})",
            "the registry is misconfigured",
        )
    causes = list(_causes(exc))
    tls = next((c for c in causes if isinstance(c, ssl.SSLError)), None)
    if tls is not None:
        reason = getattr(tls, "reason", None) or str(tls)
        return RegistryUnreachableError(
            f"TLS with {host} failed ({reason})",
            f"if its CA is private, pass --ca-cert FILE or put it in /etc/docker/certs.d/{host}/"
            "ca.crt; if it speaks plain HTTP, pass --insecure",
        )
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return RegistryUnreachableError(
            f"cannot connect to {host}: connection refused",
            "check the host and port, and that the registry is running",
        )
    if any(isinstance(c, socket.gaierror) for c in causes):
        return RegistryUnreachableError(
            f"cannot resolve the registry host {host}", "check the name and your DNS settings"
        )
    if isinstance(exc, httpx.TimeoutException):
        return RegistryUnreachableError(
            f"{host} did not answer in time ({attempts} attempts)",
            "check your network or raise the timeout",
        )
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return RegistryUnreachableError(
        f"connection to {host} failed after {attempts} attempts: {detail}",
        "check your network and try again",
    )


def _error_codes(response: httpx.Response) -> list[str]:
    """The `code` fields of a distribution-spec error body."""
    try:
        errors = response.json().get("errors")
    except (ValueError, AttributeError):
        return []
    if not isinstance(errors, list):
        return []
    return [str(e.get("code", "")) for e in errors if isinstance(e, dict)]


# --------------------------------------------------------------------------- client


class RegistryClient:
    """One repository on one registry: authenticated, retried requests."""

    def __init__(
        self,
        registry: str,
        repository: str,
        credentials: Credentials | None,
        schemes: list[Scheme],
        timeout: float = 60.0,
        ca_certs: tuple[Path, ...] = (),
    ) -> None:
        self.registry = registry
        self.ca_certs = ca_certs
        self.repository = repository
        self.host = endpoint_host(registry)
        self._schemes = schemes
        backoff_base()  # a bad $PORTSCAN_RETRY_BASE fails before the first request
        self.deadline = Deadline.from_env()  # and so do bad deadline variables
        self.timeout = timeout
        self._timeout = httpx.Timeout(timeout)
        self._http: httpx.Client | None = None
        self.base_url = ""
        self.auth = Authenticator(registry, credentials, self._send_read)
        self.scope = f"repository:{repository}:pull"

    # -- transport
    def connect(self) -> None:
        """Ping `/v2/` over each candidate scheme; keep the first that answers."""
        failure: httpx.RequestError | None = None
        for scheme, verify in self._schemes:
            client = httpx.Client(
                verify=ssl_context(self.host, self.ca_certs) if verify else False,
                timeout=self._timeout,
                follow_redirects=True,
                max_redirects=MAX_REDIRECTS,
                headers={"User-Agent": _USER_AGENT},
            )
            self._http, self.base_url = client, f"{scheme}://{self.host}"
            try:
                response = self._send(client.build_request("GET", f"{self.base_url}/v2/"))
            except httpx.RequestError as exc:
                client.close()
                self._http, failure = None, exc
                continue
            break
        else:
            assert failure is not None
            raise unreachable_error(failure, self.host, 1 if _is_permanent(failure) else ATTEMPTS)
        if response.status_code == 401:
            self.auth.learn(response, "")
        elif response.status_code == 404:
            raise RegistryUnreachableError(
                f"{self.host} does not serve the registry API at /v2/", "check the registry host"
            )
        elif response.status_code >= 400:
            self._raise_status(response, "the /v2/ endpoint")

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def _send(
        self, request: httpx.Request, stream: bool = False, size: int | None = None
    ) -> httpx.Response:
        """Send with retries on resets, timeouts, 429 and 5xx. Unless `stream`, the body
        (at most `MAX_DOCUMENT_BYTES`, or the `size` a descriptor declares, within
        `timeout` seconds) is read within the retries. Raises the last
        `httpx.RequestError` when retries do not help."""
        assert self._http is not None
        for attempt in range(1, ATTEMPTS + 1):
            try:
                response = self._http.send(request, stream=True)
                if response.status_code in RETRY_STATUSES and attempt < ATTEMPTS:
                    delay = retry_after(response)
                    response.close()
                    time.sleep(backoff_delay(attempt) if delay is None else delay)
                    continue
                if stream:
                    return response
                try:
                    body = _read_limited(response, str(request.url), self.timeout, size)
                finally:
                    response.close()
                return _with_body(response, body)
            except httpx.RequestError as exc:
                if _is_permanent(exc) or attempt == ATTEMPTS:
                    raise
                time.sleep(backoff_delay(attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def _send_read(self, request: httpx.Request) -> httpx.Response:
        try:
            return self._send(request)
        except httpx.RequestError as exc:
            raise unreachable_error(exc, request.url.host, ATTEMPTS) from None

    def request(
        self,
        path: str,
        headers: dict[str, str] | None = None,
        stream: bool = False,
        size: int | None = None,
    ) -> httpx.Response:
        """GET `path` with authentication: one retry after learning a 401 challenge.
        `size`: the body's declared size; more is refused (`_read_limited`)."""
        assert self._http is not None, "connect() first"
        url = f"{self.base_url}{path}"
        for attempt in (1, 2):
            request = self._http.build_request(
                "GET", url, headers={**(headers or {}), **self.auth.headers(self.scope)}
            )
            try:
                response = self._send(request, stream=stream, size=size)
            except httpx.RequestError as exc:
                raise unreachable_error(exc, self.host, ATTEMPTS) from None
            if response.status_code != 401:
                return response
            response.close()
            if attempt == 2 or not self.auth.learn(response, self.scope):
                break
        raise self._denied()

    # -- errors
    def _denied(self) -> AuthError:
        creds = self.auth.credentials
        if creds is None:
            return AuthError(
                f"{self.registry} denied anonymous access to {self.repository}"
                " (it needs credentials, or does not exist)",
                f"log in with docker login {self.registry} or pass --username",
            )
        return AuthError(
            f"{self.registry} denied access to {self.repository}"
            f" with the credentials from {creds.origin}",
            f"check them: log in with docker login {self.registry} or pass --username",
        )

    def _raise_status(self, response: httpx.Response, what: str) -> None:
        status = response.status_code
        if status in (401, 403):
            raise self._denied()
        if status in RETRY_STATUSES:
            raise RegistryUnreachableError(
                f"{self.host} answered HTTP {status} for {what} after {ATTEMPTS} attempts",
                "the registry is overloaded or failing; try again later",
            )
        codes = ", ".join(_error_codes(response)) or response.reason_phrase
        raise ImageNotFoundError(
            f"{self.host} refused the request for {what}: HTTP {status} {codes}",
            "check the image reference",
        )

    # -- documents
    def get_manifest(self, reference: str) -> tuple[bytes, str | None, str]:
        """Manifest bytes by tag or digest, their Content-Type and verified digest."""
        response = self.request(f"/v2/{self.repository}/manifests/{reference}", {"Accept": ACCEPT})
        if response.status_code == 404:
            raise self._not_found(reference, _error_codes(response))
        if response.status_code != 200:
            self._raise_status(response, f"manifest {reference}")
        data = response.content
        where = f"{self.registry}/{self.repository}@{reference}"
        if ":" in reference:  # pulled by digest
            verify_digest(data, reference, f"{where}: manifest")
            digest = reference
        else:
            header = response.headers.get("docker-content-digest")
            if header:
                verify_digest(data, header, f"{where}: manifest")
            digest = header or sha256_digest(data)
        content_type = response.headers.get("content-type", "").split(";")[0].strip() or None
        return data, content_type, digest

    def _not_found(self, reference: str, codes: list[str]) -> ImageNotFoundError:
        """Tell an unknown repository from an unknown tag (a registry may answer
        MANIFEST_UNKNOWN for both; the tag list tells them apart and names the tags)."""
        repo = f"{self.registry}/{self.repository}"
        tags = None if "NAME_UNKNOWN" in codes else self._tags()
        if tags is None:
            return ImageNotFoundError(
                f"repository {repo} not found", "check the image name and the registry host"
            )
        if ":" in reference:
            return ImageNotFoundError(
                f"manifest {reference} not found in {repo}", "check the digest"
            )
        shown = ", ".join(tags[:MAX_TAGS_SHOWN]) + (", ..." if len(tags) > MAX_TAGS_SHOWN else "")
        return ImageNotFoundError(
            f"tag {reference} not found in {repo}",
            f"available tags: {shown}" if tags else "the repository has no tags",
        )

    def _tags(self) -> list[str] | None:
        """The repository's tags, [] when they cannot be listed, None if it is unknown."""
        try:
            response = self.request(f"/v2/{self.repository}/tags/list")
        except PortscanError:
            return []
        if response.status_code == 404:
            return None
        try:
            tags = response.json().get("tags") or []
        except (ValueError, AttributeError):
            return []
        if response.status_code != 200 or not isinstance(tags, list):
            return []
        return sorted(str(t) for t in tags)

    def fetch_document(self, descriptor: Descriptor) -> bytes:
        """A manifest named by an index entry, digest-checked."""
        where = f"{self.registry}/{self.repository}: manifest blob"
        data, _, _ = self.get_manifest(verifiable(descriptor.digest, where))
        return data

    def fetch_blob(self, digest: str, size: int | None = None) -> bytes:
        """A small blob (the config) read whole, but no more than the `size` its
        descriptor declares (then exit 6); the caller verifies the digest."""
        verifiable(digest, f"{self.registry}/{self.repository}: blob")
        response = self.request(f"/v2/{self.repository}/blobs/{digest}", size=size)
        if response.status_code != 200:
            self._check_blob_status(response, digest)
        return response.content

    # -- blobs
    @contextmanager
    def open_blob_response(self, digest: str, offset: int = 0) -> Iterator[httpx.Response]:
        """A streamed 200/206 answer for a blob, from `offset` on."""
        verifiable(digest, f"{self.registry}/{self.repository}: blob")
        headers = {"Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        response = self.request(f"/v2/{self.repository}/blobs/{digest}", headers, stream=True)
        try:
            if response.status_code not in (200, 206):
                body = _read_limited(response, f"the answer for blob {digest}", self.timeout)
                self._check_blob_status(_with_body(response, body), digest)
            yield response
        finally:
            response.close()

    def _check_blob_status(self, response: httpx.Response, digest: str) -> None:
        if response.status_code == 404:
            raise CorruptImageError(
                f"blob {digest} named by the manifest is missing from "
                f"{self.registry}/{self.repository}",
                "re-push the image",
            )
        self._raise_status(response, f"blob {digest}")

    def open_blob(self, descriptor: LayerDescriptor) -> AbstractContextManager[BinaryIO]:
        return _blob_stream(self, descriptor.digest, descriptor.size)


def _read_limited(
    response: httpx.Response, what: str, seconds: float, size: int | None = None
) -> bytes:
    """The whole body, at most `MAX_DOCUMENT_BYTES` and at most `size` (a descriptor's,
    when given: reading stops at the first piece past it), arrived within `seconds` (a
    body trickled slower times out like a stalled one: `httpx.ReadTimeout`)."""
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_DOCUMENT_BYTES:
        raise CorruptImageError(f"{what} is {declared} bytes, too large for a manifest or config")
    if size is not None and (size < 0 or response.status_code != 200):
        size = None  # unknown (-1), or an error answer, whose body is not the blob
    if size is not None and declared and declared.isdigit() and int(declared) > size:
        raise _longer_than_declared(what, size)
    deadline = time.monotonic() + seconds
    parts, total = [], 0
    for chunk in response.iter_bytes():
        total += len(chunk)
        if total > MAX_DOCUMENT_BYTES:
            raise CorruptImageError(f"{what} is larger than {MAX_DOCUMENT_BYTES} bytes")
        if size is not None and total > size:
            raise _longer_than_declared(what, size)
        if time.monotonic() > deadline:
            raise httpx.ReadTimeout(f"{what} did not arrive within {seconds:g} s")
        parts.append(chunk)
    return b"".join(parts)


def _longer_than_declared(what: str, size: int) -> CorruptImageError:
    return CorruptImageError(
        f"{what} sends more than the {size} bytes the manifest declares", "re-push the image"
    )


def _with_body(response: httpx.Response, body: bytes) -> httpx.Response:
    """A closed streamed response as a complete one holding its (decoded) body."""
    headers = [
        (key, value)
        for key, value in response.headers.multi_items()
        if key.lower() not in ("content-encoding", "content-length", "transfer-encoding")
    ]
    return httpx.Response(
        response.status_code,
        headers=headers,
        content=body,
        request=response.request,
        extensions=response.extensions,
    )


class _PastDeadline(httpx.TimeoutException):
    """A blob request that went on longer than its `Deadline`."""


class _BlobStream(io.RawIOBase):
    """A file-like view of a streamed blob that resumes with `Range` after a drop.

    A drop is a reset, a read timeout, a body that ends before the descriptor's size,
    a blob arriving slower than `MIN_BLOB_RATE` over `timeout` seconds, or a request
    that has waited for the network longer than its `Deadline`. It gives up after
    `ATTEMPTS` drops in a row that each came before `RESUME_PROGRESS` bytes arrived, so
    a long download survives occasional drops, and after `ATTEMPTS` requests past their
    deadline, progress or not. It never reads past the descriptor's size: a longer
    blob is corrupt (the digest is checked by the reader)."""

    def __init__(self, client: RegistryClient, digest: str, size: int = -1) -> None:
        self._client = client
        self._digest = digest
        self._size = size  # -1: unknown
        self._offset = 0  # bytes handed to the reader so far
        self._pending = b""
        self._drops = 0
        self._offset_at_drop = 0
        self._window = (0.0, 0)  # (seconds spent waiting for chunks, bytes they brought)
        self._deadline = client.deadline.seconds(size)
        self._waited = 0.0  # seconds this request has waited for the network
        self._late = 0  # requests aborted at their deadline
        self._stack = ExitStack()
        self._chunks: Iterator[bytes] = iter(())
        try:
            try:
                self._open()
            except httpx.RequestError as exc:
                self._resume(exc)
        except BaseException:
            self._stack.close()  # no caller holds the stream yet to close it
            raise

    def _open(self) -> None:
        self._stack.close()
        response = self._stack.enter_context(
            self._client.open_blob_response(self._digest, self._offset)
        )
        self._waited = 0.0  # the deadline runs from the headers (retry waits before are not)
        self._check_length(response)
        self._chunks = response.iter_bytes()
        self._window = (0.0, 0)
        skip = self._offset if response.status_code == 200 else 0
        while skip:  # the server ignored Range: drop what was delivered already
            chunk = self._next_chunk()
            if not chunk:
                break
            if len(chunk) > skip:
                self._pending = chunk[skip:]
            skip = max(0, skip - len(chunk))

    def _check_length(self, response: httpx.Response) -> None:
        """Refuse an answer longer than the blob; a 206 must start where we asked."""
        declared = response.headers.get("content-length", "")
        start = 0
        if response.status_code == 206:
            content_range = response.headers.get("content-range", "")
            first = content_range.removeprefix("bytes ").split("-", 1)[0]
            if not content_range.startswith("bytes ") or first != str(self._offset):
                raise httpx.RemoteProtocolError(
                    f"asked for bytes {self._offset}- and got Content-Range {content_range!r}"
                )
            start = self._offset
        if self._size >= 0 and declared.isdigit() and start + int(declared) > self._size:
            raise CorruptImageError(
                f"{self._client.host} sends blob {self._digest} as {start + int(declared)} "
                f"bytes, the manifest says {self._size}",
                "re-push the image",
            )

    def _next_chunk(self) -> bytes | None:
        """The next chunk; raises `httpx.ReadTimeout` when the blob crawls. Only the
        time spent waiting for the network counts, not the reader's own work."""
        began = time.monotonic()
        chunk = next(self._chunks, None)
        spent = time.monotonic() - began
        self._count_wait(spent)
        waited, received = self._window
        waited += spent
        received += len(chunk or b"")
        if waited >= self._client.timeout:
            if received < MIN_BLOB_RATE * waited:
                raise httpx.ReadTimeout(
                    f"blob arrives at {received / waited:.0f} bytes/s, "
                    f"under {MIN_BLOB_RATE} bytes/s"
                )
            waited, received = 0.0, 0
        self._window = (waited, received)
        return chunk

    def _count_wait(self, seconds: float) -> None:
        """Add to the time this request's body has waited; past its deadline, abort it."""
        self._waited += seconds
        if self._waited > self._deadline:
            raise _PastDeadline(
                f"the request took longer than its deadline of {round(self._deadline, 1):g} s"
            )

    def _resume(self, exc: httpx.RequestError) -> None:
        if self._offset - self._offset_at_drop >= RESUME_PROGRESS:
            self._drops = 0
        self._drops += 1
        self._late += isinstance(exc, _PastDeadline)
        self._offset_at_drop = self._offset
        if self._late >= ATTEMPTS:
            variables = f"{DEADLINE_FLOOR_ENV} and {DEADLINE_RATE_ENV}"
            raise RegistryUnreachableError(
                f"blob {self._digest} did not arrive from {self._client.host} within its "
                f"deadline of {round(self._deadline, 1):g} s in {ATTEMPTS} attempts",
                f"the registry or the network is too slow; {variables} set the deadline",
            ) from None
        if self._drops >= ATTEMPTS:
            raise RegistryUnreachableError(
                f"the connection to {self._client.host} kept dropping while reading "
                f"blob {self._digest} ({exc})",
                "check your network and try again",
            ) from None
        time.sleep(backoff_delay(self._drops))
        self._pending = b""
        try:
            self._open()
        except httpx.RequestError as again:
            self._resume(again)

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            return b"".join(iter(lambda: self.read(1 << 20), b""))
        while not self._pending:
            try:
                chunk = self._next_chunk()
            except httpx.RequestError as exc:
                self._resume(exc)
                continue
            if chunk is None:
                if self._size >= 0 and self._offset < self._size:  # the body ended early
                    self._resume(
                        httpx.RemoteProtocolError(
                            f"the body ended after {self._offset} of {self._size} bytes"
                        )
                    )
                    continue
                return b""
            self._pending = chunk
        data, self._pending = self._pending[:n], self._pending[n:]
        if 0 <= self._size < self._offset + len(data):
            raise CorruptImageError(
                f"{self._client.host} sends more than the {self._size} bytes of blob "
                f"{self._digest} the manifest declares",
                "re-push the image",
            )
        self._offset += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._stack.close()
        super().close()


@contextmanager
def _blob_stream(client: RegistryClient, digest: str, size: int = -1) -> Iterator[BinaryIO]:
    stream = _BlobStream(client, digest, size)
    try:
        yield stream  # type: ignore[misc]
    finally:
        stream.close()


# --------------------------------------------------------------------------- source


class RegistryImage(BlobImageSource):
    """An image in a registry: metadata resolved, layers streamed on demand."""

    def __init__(self, meta: ImageMeta, client: RegistryClient) -> None:
        self.meta = meta
        self._client = client

    def open_blob(self, descriptor: LayerDescriptor) -> AbstractContextManager[BinaryIO]:
        return self._client.open_blob(descriptor)

    def close(self) -> None:
        self._client.close()


def offline_error(reference: str) -> UsageError:
    """What `--offline` says about a reference only a registry can serve."""
    return UsageError(
        f"{reference} would be pulled from a registry, and --offline forbids the network",
        "scan a local source (oci:, oci-archive:, docker-archive:, dir:, docker:, podman:)"
        " or drop --offline",
    )


def open_registry_image(ref: ImageRef, options: SourceOptions) -> RegistryImage:
    """Resolve `ref` on its registry to one platform's manifest and config."""
    if ref.registry is None or ref.repository is None:
        raise ImageNotFoundError(f"{ref.original} does not name a registry image")
    if options.offline:
        raise offline_error(ref.original)
    credentials = load_credentials(
        ref.registry,
        options.username,
        options.password,
        options.docker_config,
        authfile=options.authfile,
        repository=ref.repository,
    )
    host = endpoint_host(ref.registry)
    client = RegistryClient(
        ref.registry,
        ref.repository,
        credentials,
        candidate_schemes(host, options.insecure),
        timeout=options.timeout,
        ca_certs=options.ca_certs,
    )
    try:
        client.connect()
        reference = ref.digest or ref.tag or "latest"
        data, content_type, digest = client.get_manifest(reference)
        document = parse_document(data, content_type, ref.name)
        manifest, digest, claimed = resolve_manifest(
            document, digest, client.fetch_document, options.platform, ref.name
        )
        config = client.fetch_blob(manifest.config.digest, manifest.config.size)
        meta = build_meta(
            manifest, digest, config, ref.name, SourceKind.REGISTRY, claimed or options.platform
        )
    except BaseException:
        client.close()
        raise
    return RegistryImage(meta, client)
