"""Parse image references the way users write them for syft and skopeo.

    nginx                       -> docker.io/library/nginx:latest (daemon first, then registry)
    registry:ghcr.io/o/app:1    -> that registry only
    docker:nginx:1.27           -> the local Docker daemon only
    docker-archive:img.tar      -> `docker save` output
    oci:layout-dir[:tag]        -> OCI image layout (`oci-dir:` is accepted too)
    dir:/path/to/rootfs         -> an unpacked filesystem

Name normalisation follows Docker's reference grammar (distribution/reference):
the first path component is a registry host when it contains "." or ":" or is
"localhost"; otherwise the registry is docker.io and one-component names get
the "library/" prefix. A prefix followed by digits is not a prefix: `registry:5000/app`
is the host `registry` on port 5000, and `registry:2` is the image `registry`, tag 2.
Digests are sha256 or sha512 in lowercase hex, the algorithms registries accept.
"""

from __future__ import annotations

import ipaddress
import re

from portscan.errors import UsageError
from portscan.model import ImageRef, SourceKind

DOCKER_HUB = "docker.io"
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^(?:sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$")  # OCI image-spec
_PORT_OR_TAG = re.compile(r"^[0-9]+(?:/|$)")
_HOST = re.compile(r"^(?:[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$")

_PREFIXES = {
    "registry": SourceKind.REGISTRY,
    "docker": SourceKind.DOCKER,
    "docker-daemon": SourceKind.DOCKER,
    "docker-archive": SourceKind.DOCKER_ARCHIVE,
    "oci": SourceKind.OCI,
    "oci-dir": SourceKind.OCI,
    "oci-layout": SourceKind.OCI,
    "dir": SourceKind.DIR,
}

_SYNTAX_HINT = (
    "use NAME[:TAG|@DIGEST], registry:NAME, docker:NAME, docker-archive:PATH, "
    "oci:PATH[:TAG] or dir:PATH"
)


def parse_reference(text: str) -> ImageRef:
    """Parse `text` into an `ImageRef`, raising `UsageError` with the syntax on failure."""
    text = text.strip()
    if not text:
        raise UsageError("empty image reference", _SYNTAX_HINT)
    prefix, sep, rest = text.partition(":")
    kind = _PREFIXES.get(prefix) if sep else None
    if kind in (SourceKind.REGISTRY, SourceKind.DOCKER) and _PORT_OR_TAG.match(rest):
        kind = None  # "registry:5000/app" is a host with a port, "registry:2" a tag
    # "localhost:5000/app" has a colon but "localhost" is not a known prefix: a name.
    if kind is None:
        return _parse_name(text, SourceKind.REGISTRY, explicit=False, original=text)
    if kind in (SourceKind.REGISTRY, SourceKind.DOCKER):
        return _parse_name(rest, kind, explicit=True, original=text)
    if not rest:
        raise UsageError(f"{prefix}: needs a path", _SYNTAX_HINT)
    if kind is SourceKind.OCI:
        path, tag = _split_layout_tag(rest)
        return ImageRef(kind, text, path=path, tag=tag, explicit_kind=True)
    return ImageRef(kind, text, path=rest, explicit_kind=True)


def _split_layout_tag(rest: str) -> tuple[str, str | None]:
    """`oci:dir:tag` -> (dir, tag); a colon inside the path is kept when no tag follows."""
    path, sep, tag = rest.rpartition(":")
    if sep and path and _TAG.match(tag) and "/" not in tag:
        return path, tag
    return rest, None


def _parse_name(text: str, kind: SourceKind, explicit: bool, original: str) -> ImageRef:
    name, _, digest = text.partition("@")
    if digest and not _DIGEST.match(digest):
        raise UsageError(
            f"invalid digest {digest!r} in {original!r}", "write it as sha256:<64 hex>"
        )
    tag = None
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > last_slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not _TAG.match(tag):
            raise UsageError(f"invalid tag {tag!r} in {original!r}", _SYNTAX_HINT)
    if not name:
        raise UsageError(f"invalid image reference {original!r}", _SYNTAX_HINT)
    registry, repository = _split_registry(name)
    for component in repository.split("/"):
        if not _COMPONENT.match(component):
            raise UsageError(
                f"invalid repository name {repository!r} in {original!r}",
                "repository names are lowercase letters, digits and . _ - separated by /",
            )
    if tag is None and not digest:
        tag = "latest"
    return ImageRef(
        kind,
        original,
        registry=registry,
        repository=repository,
        tag=tag,
        digest=digest or None,
        explicit_kind=explicit,
    )


def _split_registry(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        if not _HOST.match(first):
            raise UsageError(f"invalid registry host {first!r}", _SYNTAX_HINT)
        registry = first
        repository = rest
    else:
        registry, repository = DOCKER_HUB, name
    if registry in ("index.docker.io", "registry-1.docker.io"):
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    return registry, repository


def is_loopback(host: str) -> bool:
    """`localhost`, `127.0.0.0/8` or `::1`, with or without a port."""
    name = host
    if name.startswith("["):
        name = name[1 : name.find("]")]
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
