"""Image reference parsing: the spellings users write for syft, skopeo and docker."""

from __future__ import annotations

import pytest

from portscan.errors import UsageError
from portscan.model import Platform, SourceKind
from portscan.sources.refs import parse_reference

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "kind", "name", "explicit"),
    [
        ("nginx", SourceKind.REGISTRY, "docker.io/library/nginx:latest", False),
        ("nginx:1.27", SourceKind.REGISTRY, "docker.io/library/nginx:1.27", False),
        ("bitnami/redis", SourceKind.REGISTRY, "docker.io/bitnami/redis:latest", False),
        ("index.docker.io/nginx", SourceKind.REGISTRY, "docker.io/library/nginx:latest", False),
        ("registry-1.docker.io/a/b", SourceKind.REGISTRY, "docker.io/a/b:latest", False),
        ("ghcr.io/o/app:1", SourceKind.REGISTRY, "ghcr.io/o/app:1", False),
        ("localhost/app", SourceKind.REGISTRY, "localhost/app:latest", False),
        ("localhost:5000/a/b:v2", SourceKind.REGISTRY, "localhost:5000/a/b:v2", False),
        ("[::1]:5000/app:1", SourceKind.REGISTRY, "[::1]:5000/app:1", False),
        (f"quay.io/a/b@{DIGEST}", SourceKind.REGISTRY, f"quay.io/a/b@{DIGEST}", False),
        (f"nginx:1@{DIGEST}", SourceKind.REGISTRY, f"docker.io/library/nginx:1@{DIGEST}", False),
        ("registry:ghcr.io/o/app:1", SourceKind.REGISTRY, "ghcr.io/o/app:1", True),
        ("docker:nginx:1.27", SourceKind.DOCKER, "docker.io/library/nginx:1.27", True),
        ("docker-daemon:app", SourceKind.DOCKER, "docker.io/library/app:latest", True),
        # a known prefix followed by digits is a host's port or a tag, not a prefix
        ("registry:5000/app", SourceKind.REGISTRY, "registry:5000/app:latest", False),
        ("registry:2", SourceKind.REGISTRY, "docker.io/library/registry:2", False),
        ("docker:5000/x:1", SourceKind.REGISTRY, "docker:5000/x:1", False),
    ],
)
def test_names(text: str, kind: SourceKind, name: str, explicit: bool) -> None:
    ref = parse_reference(text)
    assert (ref.kind, ref.name, ref.explicit_kind, ref.original) == (kind, name, explicit, text)


def test_name_parts() -> None:
    ref = parse_reference(f"localhost:5000/team/app:v1@{DIGEST}")
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        "localhost:5000",
        "team/app",
        "v1",
        DIGEST,
    )
    by_digest = parse_reference(f"ghcr.io/o/app@{DIGEST}")
    assert by_digest.tag is None and by_digest.digest == DIGEST


@pytest.mark.parametrize(
    ("text", "kind", "path", "tag"),
    [
        ("oci:layout", SourceKind.OCI, "layout", None),
        ("oci:/srv/layout:1.0", SourceKind.OCI, "/srv/layout", "1.0"),
        ("oci-dir:./x:latest", SourceKind.OCI, "./x", "latest"),
        ("oci-layout:/a:b/c", SourceKind.OCI, "/a:b/c", None),  # a colon inside the path
        ("docker-archive:img.tar", SourceKind.DOCKER_ARCHIVE, "img.tar", None),
        ("docker-archive:/tmp/a:b.tar", SourceKind.DOCKER_ARCHIVE, "/tmp/a:b.tar", None),
        ("dir:/path/to/rootfs", SourceKind.DIR, "/path/to/rootfs", None),
    ],
)
def test_paths(text: str, kind: SourceKind, path: str, tag: str | None) -> None:
    ref = parse_reference(text)
    assert (ref.kind, ref.path, ref.tag, ref.explicit_kind) == (kind, path, tag, True)
    assert ref.repository is None


def test_path_names() -> None:
    assert parse_reference("oci:/srv/layout:1.0").name == "oci:/srv/layout:1.0"
    assert parse_reference("dir:/x").name == "dir:/x"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty image reference"),
        ("   ", "empty image reference"),
        ("Nginx", "invalid repository name"),
        ("a//b", "invalid repository name"),
        ("nginx:", "invalid tag"),
        ("nginx:-bad", "invalid tag"),
        ("nginx@sha256:abc", "invalid digest"),
        ("nginx@sha256:" + "AB" * 32, "invalid digest"),  # the OCI spec wants lowercase hex
        ("nginx@md5:" + "a" * 32, "invalid digest"),
        ("registry:", "invalid image reference"),
        ("oci:", "needs a path"),
        ("dir:", "needs a path"),
        ("bad_host:5000/app", "invalid registry host"),
    ],
)
def test_errors(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as caught:
        parse_reference(text)
    assert caught.value.exit_code == 2
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "platform"),
    [
        ("amd64", Platform("linux", "amd64")),
        ("arm64", Platform("linux", "arm64")),
        ("arm64/v8", Platform("linux", "arm64", "v8")),
        ("linux/arm/v7", Platform("linux", "arm", "v7")),
        ("windows/amd64", Platform("windows", "amd64")),
    ],
)
def test_platform_architecture_alone_means_linux(text: str, platform: Platform) -> None:
    assert Platform.parse(text) == platform


@pytest.mark.parametrize("text", ["", "linux/", "a/b/c/d", "/amd64"])
def test_platform_syntax_errors(text: str) -> None:
    with pytest.raises(UsageError, match="os/arch"):
        Platform.parse(text)
