"""Images in the local Docker Engine (or any engine serving its API, such as podman).

The engine is the one the docker CLI would use (`docker_endpoint`): DOCKER_HOST (through
the `docker` SDK's `from_env()`, which honours DOCKER_TLS_VERIFY and DOCKER_CERT_PATH);
else the Docker context named by DOCKER_CONTEXT or by `currentContext` in
`$DOCKER_CONFIG/config.json` (its endpoint read from `contexts/meta/<sha256 of the
name>/meta.json`, as the CLI stores it: Docker Desktop, colima, rootless Docker); else
/var/run/docker.sock. Errors name the endpoint and where it came from.

The image is exported with `image.save(named=True)` and read as the stream it is, once,
by `archive.StreamingArchiveSource`: nothing is written to disk.

The image digest is the repo digest (the registry manifest digest) when the engine
knows one, else the image id.

`podman:NAME` asks podman's Docker API socket only: `CONTAINER_HOST` (podman's own
variable) when it names a unix socket, else the rootless `$XDG_RUNTIME_DIR/podman/podman.sock`,
else the rootful `/run/podman/podman.sock`; the result's source is `docker` (the
Docker Engine API), its reference the image name.

`try_open_daemon_image` serves bare names (`nginx`): it answers None, quickly and
without raising, when no engine answers, the image is not local, or the local image is
for another OS/architecture than the one asked for; the caller then asks the registry.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO

from portscan.errors import DaemonError, ImageNotFoundError
from portscan.model import ImageRef, Platform, SourceKind
from portscan.sources.archive import ChunkStream, StreamingArchiveSource
from portscan.sources.base import ImageSource, SourceOptions
from portscan.sources.refs import DOCKER_HUB

if TYPE_CHECKING:  # the SDK (with requests, about 0.1 s) loads when an engine is asked:
    import docker  # a bare name probe without a socket, the common case, never needs it

log = logging.getLogger(__name__)

DEFAULT_SOCKET = "/var/run/docker.sock"
PODMAN_ROOT_SOCKET = "/run/podman/podman.sock"
PROBE_TIMEOUT = 2.0  # seconds a bare-name lookup waits for an engine that does not answer
_CHUNK = 1 << 20
_UNREACHABLE_HINT = "start Docker (or `podman system service`) or set DOCKER_HOST"


def _client_errors() -> tuple[type[Exception], ...]:
    """What the SDK raises when the engine fails: its own errors and requests'."""
    import docker.errors
    import requests

    return (docker.errors.DockerException, requests.RequestException)


def docker_endpoint() -> tuple[str, str]:
    """(engine URL, where it came from), as the docker CLI chooses (module docstring).
    `DaemonError` when the context named does not exist."""
    host = os.environ.get("DOCKER_HOST")
    if host:
        return host, "DOCKER_HOST"
    config_dir = os.environ.get("DOCKER_CONFIG") or os.path.expanduser("~/.docker")
    name = os.environ.get("DOCKER_CONTEXT")
    origin = "DOCKER_CONTEXT"
    if not name:
        origin = f"currentContext of {os.path.join(config_dir, 'config.json')}"
        try:
            with open(os.path.join(config_dir, "config.json"), encoding="utf-8") as file:
                config = json.load(file)
            name = config.get("currentContext") if isinstance(config, dict) else None
        except (OSError, ValueError):
            name = None
    if not name or name == "default":
        return f"unix://{DEFAULT_SOCKET}", "the default socket"
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = os.path.join(config_dir, "contexts", "meta", digest, "meta.json")
    try:
        with open(meta, encoding="utf-8") as file:
            endpoint = json.load(file)["Endpoints"]["docker"]["Host"]
    except (OSError, ValueError, KeyError, TypeError):
        raise DaemonError(
            f"Docker context {name!r} (from {origin}) has no endpoint at {meta}",
            "check `docker context ls`, or set DOCKER_HOST",
        ) from None
    if not isinstance(endpoint, str) or not endpoint:
        raise DaemonError(f"Docker context {name!r} names no engine in {meta}")
    return endpoint, f"Docker context {name!r}"


def open_daemon_image(ref: ImageRef, options: SourceOptions) -> ImageSource:
    """The image `ref` names in the local engine; `DaemonError` if no engine answers,
    `ImageNotFoundError` if the engine does not hold it."""
    return _open_engine_image(_connect(options.timeout), ref, options, "Docker daemon", "docker")


def podman_sockets() -> list[str]:
    """Where podman's Docker API socket may be, in the order asked (module docstring)."""
    sockets = []
    host = os.environ.get("CONTAINER_HOST", "")
    if host.startswith("unix://"):
        sockets.append(host.removeprefix("unix://"))
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    if runtime_dir:
        sockets.append(os.path.join(runtime_dir, "podman", "podman.sock"))
    sockets.append(PODMAN_ROOT_SOCKET)
    return sockets


def open_podman_image(ref: ImageRef, options: SourceOptions) -> ImageSource:
    """The image `ref` names in podman, through its Docker API socket."""
    tried = podman_sockets()
    found = next((path for path in tried if os.path.exists(path)), None)
    if found is None:
        raise DaemonError(
            f"no podman API socket: tried {', '.join(tried)}",
            "start it with `systemctl --user start podman.socket` (or `podman system service`), "
            "or set CONTAINER_HOST=unix://PATH",
        )
    client = _connect(options.timeout, f"unix://{found}", "podman")
    return _open_engine_image(client, ref, options, "podman", "podman")


def _open_engine_image(
    client: docker.DockerClient, ref: ImageRef, options: SourceOptions, engine: str, cli: str
) -> ImageSource:
    try:
        image = _find_image(client, ref)
        if image is None:
            name = candidate_names(ref)[0]
            where = "the local Docker daemon" if engine == "Docker daemon" else engine
            raise ImageNotFoundError(
                f"image {name} is not in {where}",
                f"pull it first ({cli} pull {name}) or scan registry:{name}",
            )
        return _source(client, image, ref, options)
    except BaseException:
        client.close()
        raise


def try_open_daemon_image(ref: ImageRef, options: SourceOptions) -> ImageSource | None:
    """Like `open_daemon_image`, but None instead of any "not here" answer."""
    try:
        host, origin = docker_endpoint()
    except DaemonError as exc:
        log.debug("daemon probe: %s", exc)
        return None
    if host.startswith("unix://") and not os.path.exists(host.removeprefix("unix://")):
        log.debug("daemon probe: no socket at %s (%s); skipped", host, origin)
        return None
    try:
        client = _connect(PROBE_TIMEOUT)
    except DaemonError as exc:
        log.debug("daemon probe: %s", exc)
        return None
    try:
        image = _find_image(client, ref)
        if image is None or not _platform_matches(image, options.platform):
            log.debug(
                "daemon probe: the daemon has no %s for %s",
                " or ".join(candidate_names(ref)),
                options.platform,
            )
            client.close()
            return None
        log.debug("daemon probe: found %s in the local daemon", ref.original)
        client.api.timeout = options.timeout
        return _source(client, image, ref, options)
    except DaemonError:
        client.close()
        return None


def candidate_names(ref: ImageRef) -> list[str]:
    """How to ask the engine for `ref`: the familiar name first (`nginx:1.27`, which
    podman also resolves for its `localhost/` images), then the fully qualified one."""
    repository = ref.repository or ""
    if ref.registry == DOCKER_HUB:
        familiar = repository.removeprefix("library/")
    else:
        familiar = f"{ref.registry}/{repository}"
    suffix = f"@{ref.digest}" if ref.digest else f":{ref.tag or 'latest'}"
    names = [familiar + suffix, f"{ref.registry}/{repository}{suffix}"]
    return list(dict.fromkeys(names))


def _connect(
    timeout: float, base_url: str | None = None, engine: str = "the Docker daemon"
) -> docker.DockerClient:
    """A client whose engine has answered (`from_env` asks its API version; a client
    for `base_url` pings it)."""
    origin = ""
    if base_url is None:
        endpoint, origin = docker_endpoint()
        if origin != "DOCKER_HOST":
            base_url = endpoint  # a context's engine, or the default socket
    import docker

    try:
        if base_url is None:
            return docker.from_env(timeout=timeout)
        client = docker.DockerClient(base_url=base_url, timeout=timeout)
        try:
            client.ping()
        except BaseException:
            client.close()
            raise
        return client
    except _client_errors() as exc:
        host = base_url or os.environ.get("DOCKER_HOST") or f"unix://{DEFAULT_SOCKET}"
        where = f" ({origin})" if origin else ""
        hint = _UNREACHABLE_HINT if engine != "podman" else "is `podman system service` running?"
        raise DaemonError(f"cannot reach {engine} at {host}{where} ({exc})", hint) from None


def _find_image(client: docker.DockerClient, ref: ImageRef) -> Any | None:
    import docker.errors

    for name in candidate_names(ref):
        try:
            return client.images.get(name)
        except docker.errors.NotFound:
            continue
        except _client_errors() as exc:
            raise DaemonError(f"the Docker daemon failed to look up {name} ({exc})") from None
    return None


def _platform_matches(image: Any, wanted: Platform) -> bool:
    """OS and architecture only: engines report variants unreliably."""
    attrs = image.attrs
    return (attrs.get("Os"), attrs.get("Architecture")) == (wanted.os, wanted.architecture)


def _source(
    client: docker.DockerClient, image: Any, ref: ImageRef, options: SourceOptions
) -> StreamingArchiveSource:
    def open_stream() -> contextlib.closing[BinaryIO]:
        chunks = _save_chunks(image, ref.name)
        return contextlib.closing(io.BufferedReader(ChunkStream(chunks), _CHUNK))

    return StreamingArchiveSource(
        open_stream,
        ref.name,
        SourceKind.DOCKER,
        options.platform,
        digest=_repo_digest(image, ref) or image.id,
        on_close=client.close,
    )


def _save_chunks(image: Any, name: str) -> Iterator[bytes]:
    try:
        yield from image.save(chunk_size=_CHUNK, named=True)
    except _client_errors() as exc:
        raise DaemonError(f"the Docker daemon failed to export {name} ({exc})") from None


def _repo_digest(image: Any, ref: ImageRef) -> str | None:
    """The digest part of the RepoDigest for `ref`'s repository, else of the first."""
    repo_digests = [d for d in image.attrs.get("RepoDigests") or [] if "@" in d]
    repository = ref.repository or ""
    for entry in repo_digests:
        name, _, digest = entry.partition("@")
        if name.endswith("/" + repository) or repository in (name, f"library/{name}"):
            return digest
    return repo_digests[0].partition("@")[2] if repo_digests else None
