"""Parse image references the way users write them for syft and skopeo.

    nginx                       -> docker.io/library/nginx:latest (daemon first, then registry)
    registry:ghcr.io/o/app:1    -> that registry only (`docker://NAME`, skopeo's spelling, too)
    docker:nginx:1.27           -> the local Docker daemon only
    podman:nginx:1.27           -> podman's Docker API socket only
    docker-archive:img.tar      -> `docker save` output; `img.tar:nginx:1.27` or `img.tar@1`
                                   (also skopeo's `img.tar:@1`) picks one image of several,
                                   `docker-archive:-` reads the archive from stdin
    oci:layout-dir[:tag]        -> OCI image layout (`oci-dir:` is accepted too)
    oci-archive:img.tar[:tag]   -> a tar of an OCI image layout (skopeo, buildah)
    dir:/path/to/rootfs         -> an unpacked filesystem
    ./img.tar, ./layout         -> an existing path without a prefix: a tar is a docker or
                                   OCI archive by its members, a directory an OCI layout
                                   when it has `oci-layout`, else an unpacked filesystem

Name normalisation follows Docker's reference grammar (distribution/reference):
the first path component is a registry host when it contains "." or ":" or is
"localhost"; otherwise the registry is docker.io and one-component names get
the "library/" prefix. A prefix followed by digits is not a prefix: `registry:5000/app`
is the host `registry` on port 5000, and `registry:2` is the image `registry`, tag 2.
Any other `word:` followed by what cannot be a tag or a port (`foo:bar/baz`,
`containers-storage:x`) is a transport portscan does not know, and is refused.
Digests are sha256 or sha512 in lowercase hex, the algorithms registries accept.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tarfile
from pathlib import Path

from portscan.errors import ImageNotFoundError, UsageError
from portscan.model import ImageRef, SourceKind
from portscan.sources.validate import DIGEST

DOCKER_HUB = "docker.io"
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_PORT_OR_TAG = re.compile(r"^[0-9]+(?:/|$)")
_HOST = re.compile(r"^(?:[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$")

_PREFIXES = {
    "registry": SourceKind.REGISTRY,
    "docker": SourceKind.DOCKER,
    "docker-daemon": SourceKind.DOCKER,
    "podman": SourceKind.PODMAN,
    "docker-archive": SourceKind.DOCKER_ARCHIVE,
    "oci": SourceKind.OCI,
    "oci-dir": SourceKind.OCI,
    "oci-layout": SourceKind.OCI,
    "oci-archive": SourceKind.OCI_ARCHIVE,
    "dir": SourceKind.DIR,
}
_NAME_KINDS = (SourceKind.REGISTRY, SourceKind.DOCKER, SourceKind.PODMAN)
_DOCKER_URL = "docker://"  # skopeo's transport for a registry
# Transports of skopeo and syft that portscan does not read: refused even when what
# follows could be a tag (`containers-storage:nginx`).
_UNSUPPORTED = ("containers-storage", "ostree", "sif", "singularity", "tarball")
_SCHEME = re.compile(r"^[a-z][a-z0-9+-]*$")
_ARCHIVE_NAME = re.compile(r"\.(?:tar|tgz|tar\.gz|tar\.zst|tar\.xz|tar\.bz2)$")
_ARCHIVE_INDEX = re.compile(r"^(?P<path>.+?):?@(?P<index>[0-9]+)$")  # PATH@N, PATH:@N
KNOWN_SOURCES = (
    "registry:NAME (or docker://NAME), docker:NAME, podman:NAME, docker-archive:PATH[:TAG|@N], "
    "oci:PATH[:TAG], oci-archive:PATH[:TAG], dir:PATH, or an existing path"
)

_SYNTAX_HINT = "use NAME[:TAG|@DIGEST], " + KNOWN_SOURCES


def parse_reference(text: str) -> ImageRef:
    """Parse `text` into an `ImageRef`, raising `UsageError` with the syntax on failure."""
    text = text.strip()
    if not text:
        raise UsageError("empty image reference", _SYNTAX_HINT)
    if text.startswith(_DOCKER_URL):  # skopeo's spelling of a registry reference
        return _parse_name(text[len(_DOCKER_URL) :], SourceKind.REGISTRY, True, original=text)
    prefix, sep, rest = text.partition(":")
    kind = _PREFIXES.get(prefix) if sep else None
    if kind in _NAME_KINDS and _PORT_OR_TAG.match(rest):
        kind = None  # "registry:5000/app" is a host with a port, "registry:2" a tag
    # "localhost:5000/app" has a colon but "localhost" is not a known prefix: a name.
    if kind is None:
        detected = detect_path(text)
        if detected is not None:
            return detected
        if sep:
            _refuse_unknown_transport(prefix, rest, text)
        if _looks_like_path(text):
            raise ImageNotFoundError(
                f"no file or directory {text}",
                "give the path of a `docker save` or OCI archive, an OCI layout or a root "
                "filesystem, or an image name",
            )
        return _parse_name(text, SourceKind.REGISTRY, explicit=False, original=text)
    if kind in _NAME_KINDS:
        return _parse_name(rest, kind, explicit=True, original=text)
    if not rest:
        raise UsageError(f"{prefix}: needs a path", _SYNTAX_HINT)
    if kind in (SourceKind.OCI, SourceKind.OCI_ARCHIVE):
        path, tag = _split_layout_tag(rest)
        return ImageRef(kind, text, path=path, tag=tag, explicit_kind=True)
    if kind is SourceKind.DOCKER_ARCHIVE:
        path, selector = _split_archive_selector(rest)
        return ImageRef(kind, text, path=path, tag=selector, explicit_kind=True)
    return ImageRef(kind, text, path=rest, explicit_kind=True)


def _split_layout_tag(rest: str) -> tuple[str, str | None]:
    """`oci:dir:tag` -> (dir, tag); a colon inside the path is kept when no tag follows,
    and an existing path is never split."""
    path, sep, tag = rest.rpartition(":")
    if sep and path and _TAG.match(tag) and "/" not in tag and not os.path.exists(rest):
        return path, tag
    return rest, None


def _split_archive_selector(rest: str) -> tuple[str, str | None]:
    """`docker-archive:PATH[:REPO:TAG|@N]` -> (PATH, "REPO:TAG" | "@N" | None).

    An existing file is never split. Else the first split whose PATH is an existing
    file and whose selector is an image reference or `@N` wins; else (nothing exists)
    the first whose selector is a reference and does not end like an archive file name,
    so `/tmp/a:b.tar` stays one path.
    """
    if rest == "-" or os.path.exists(rest):
        return rest, None
    by_index = _ARCHIVE_INDEX.match(rest)
    if by_index is not None:
        return by_index["path"], f"@{int(by_index['index'])}"
    splits = [(rest[:i], rest[i + 1 :]) for i, c in enumerate(rest) if c == ":" and i > 0]
    for path, selector in splits:
        if os.path.isfile(path) and _is_image_name(selector):
            return path, selector
    for path, selector in splits:
        if not _ARCHIVE_NAME.search(selector) and _is_image_name(selector):
            return path, selector
    return rest, None


def _is_image_name(text: str) -> bool:
    try:
        _parse_name(text, SourceKind.REGISTRY, explicit=True, original=text)
    except UsageError:
        return False
    return "@" not in text


def _refuse_unknown_transport(prefix: str, rest: str, text: str) -> None:
    """`foo:x` where foo is no known prefix: a name (`nginx:1`, `localhost:5000/a`) or an
    unknown transport, refused with the known ones (see the module docstring)."""
    if not _SCHEME.match(prefix) or _PORT_OR_TAG.match(rest):
        return  # a host (`my.host:5000/a`, `[::1]:5000/a`) or `name:123`
    tag = rest.partition("@")[0]
    if prefix not in _UNSUPPORTED and not set(tag) & {"/", ":"}:
        return  # NAME:TAG[@DIGEST], or a bad tag (`nginx:a b`) that `_parse_name` names
    raise UsageError(f"unknown source type {prefix}: in {text!r}", "known: " + KNOWN_SOURCES)


def _looks_like_path(text: str) -> bool:
    return (
        text.startswith(("/", "./", "../", "~"))
        or text in (".", "..")
        or bool(_ARCHIVE_NAME.search(text))
    )


def detect_path(text: str) -> ImageRef | None:
    """An existing path given without a prefix, as the source its content says it is;
    None when nothing exists at `text`."""
    path = Path(text)
    try:
        if not path.exists():
            return None
    except OSError:  # a name too long for a path, say
        return None
    if path.is_dir():
        is_layout = (path / "oci-layout").is_file()
        kind = SourceKind.OCI if is_layout else SourceKind.DIR
        return ImageRef(kind, text, path=text, explicit_kind=True)
    if not path.is_file():
        raise UsageError(f"{text} is neither a file nor a directory", _SYNTAX_HINT)
    return ImageRef(archive_kind(path), text, path=text, explicit_kind=True)


def archive_kind(path: Path) -> SourceKind:
    """docker-archive when the tar holds manifest.json (Docker 25+ archives hold an OCI
    layout too), oci-archive when it holds only `oci-layout`/`index.json`. A compressed
    file is read as a docker-archive, the only kind read from a compressed stream."""
    with path.open("rb") as handle:
        head = handle.read(6)
    if head.startswith((b"\x1f\x8b", b"\x28\xb5\x2f\xfd", b"BZh", b"\xfd7zXZ\x00")):
        return SourceKind.DOCKER_ARCHIVE
    names: set[str] = set()
    try:
        with tarfile.open(path, "r:") as archive:
            for member in archive:  # headers only: tarfile seeks over member data
                names.add(member.name.lstrip("./").lstrip("/"))
                if "manifest.json" in names:
                    return SourceKind.DOCKER_ARCHIVE
    except tarfile.TarError:
        raise UsageError(
            f"{path} is a file but not a tar archive",
            "portscan reads `docker save` and OCI archives (tar), OCI layouts and directories",
        ) from None
    if names & {"oci-layout", "index.json"}:
        return SourceKind.OCI_ARCHIVE
    raise UsageError(
        f"{path} is a tar archive with neither manifest.json nor index.json",
        "it is not an image archive; to scan an unpacked filesystem, extract it and use dir:PATH",
    )


def _parse_name(text: str, kind: SourceKind, explicit: bool, original: str) -> ImageRef:
    name, _, digest = text.partition("@")
    if digest and not DIGEST.match(digest):
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


def canonical_name(text: str) -> str:
    """`nginx:1` -> `docker.io/library/nginx:1`; `text` itself when it is no image name."""
    try:
        return _parse_name(text, SourceKind.REGISTRY, explicit=True, original=text).name
    except UsageError:
        return text


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
