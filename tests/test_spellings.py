"""Sources as users of syft and skopeo spell them: existing paths without a prefix,
`oci-archive:`, `docker-archive:-`, `docker://`, `podman:` and unknown transports."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from portscan.errors import CorruptImageError, DaemonError, ImageNotFoundError, UsageError
from portscan.model import SourceKind
from portscan.sources import SourceOptions, daemon, open_image
from portscan.sources.refs import parse_reference
from tests import imagebuild as ib
from tests import podman_service as podman
from tests.test_layers import scan, snapshot
from tests.test_registry import plain_registry, pushed_fixture  # noqa: F401 - fixtures

OPTIONS = SourceOptions()
podman_service = podman.podman_service  # the session fixture, registered in this module


def run(
    *args: str, stdin: bytes | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    """`python -m portscan ARGS`, with nothing between it and the network but the code."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.run(
        [sys.executable, "-m", "portscan", *args],
        capture_output=True,
        input=stdin,
        cwd=cwd,
        env=env,
        timeout=120,
        check=False,
    )


def tar_directory(root: Path, target: Path) -> Path:
    """A tar of `root`'s contents, members named relative to it (as skopeo writes)."""
    with tarfile.open(target, "w") as archive:
        for path in sorted(root.rglob("*")):
            archive.add(path, arcname=str(path.relative_to(root)), recursive=False)
    return target


@pytest.fixture(scope="module")
def layout_tree(oci_layout: Path) -> dict[str, tuple[object, ...]]:
    _, tree = scan(open_image(parse_reference(f"oci:{oci_layout}"), OPTIONS))
    return snapshot(tree)


@pytest.fixture(scope="module")
def oci_archive(oci_layout: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tar_directory(oci_layout, tmp_path_factory.mktemp("ociarchive") / "image.oci.tar")


# --------------------------------------------------------------------------- existing paths


def test_existing_paths_are_detected_by_content(
    tmp_path: Path, oci_layout: Path, docker_archive: Path, oci_archive: Path,
    fixture_image: ib.Image,
) -> None:  # fmt: skip
    docker25 = ib.write_docker25_archive(tmp_path / "d25.tar", fixture_image)
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    expected = {
        str(docker_archive): SourceKind.DOCKER_ARCHIVE,
        str(docker25): SourceKind.DOCKER_ARCHIVE,  # manifest.json next to an OCI layout
        str(oci_archive): SourceKind.OCI_ARCHIVE,
        str(oci_layout): SourceKind.OCI,
        str(rootfs): SourceKind.DIR,
    }
    for text, kind in expected.items():
        ref = parse_reference(text)
        assert (ref.kind, ref.path, ref.explicit_kind) == (kind, text, True), text


def test_a_bare_archive_path_scans_like_its_prefixed_spelling(
    docker_archive: Path, layout_tree: dict[str, tuple[object, ...]]
) -> None:
    meta, tree = scan(open_image(parse_reference(str(docker_archive)), OPTIONS))
    assert meta.source is SourceKind.DOCKER_ARCHIVE
    assert snapshot(tree) == layout_tree


def test_files_that_are_no_image_archive_are_refused(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello\n" * 200)
    with pytest.raises(UsageError, match="not a tar archive"):
        parse_reference(str(text))
    plain = tmp_path / "files.tar"
    with tarfile.open(plain, "w") as archive:
        archive.add(text, arcname="notes.txt")
    with pytest.raises(UsageError, match=r"neither manifest\.json nor index\.json"):
        parse_reference(str(plain))


@pytest.mark.parametrize("text", ["./absent.tar", "absent.tar", "/nonexistent/layout"])
def test_a_missing_path_is_not_looked_up_in_a_registry(text: str) -> None:
    with pytest.raises(ImageNotFoundError, match="no file or directory"):
        parse_reference(text)


def test_cli_scans_a_relative_archive_path_offline(docker_archive: Path, tmp_path: Path) -> None:
    shutil.copy(docker_archive, tmp_path / "good.tar")
    result = run("image", "good.tar", "--format", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    image = json.loads(result.stdout)["image"]
    assert image["source"] == "docker-archive"
    missing = run("image", "gone.tar", cwd=tmp_path)
    assert missing.returncode == 3 and b"no file or directory gone.tar" in missing.stderr
    assert b"docker.io" not in missing.stderr


# --------------------------------------------------------------------------- oci-archive


def test_oci_archive_reads_like_the_layout(
    oci_archive: Path, fixture_image: ib.Image, layout_tree: dict[str, tuple[object, ...]]
) -> None:
    for text in (f"oci-archive:{oci_archive}", f"oci-archive:{oci_archive}:latest"):
        meta, tree = scan(open_image(parse_reference(text), OPTIONS))
        assert snapshot(tree) == layout_tree
        assert meta.digest == fixture_image.manifest_blob.digest
        assert meta.source is SourceKind.OCI
        assert meta.reference == f"oci-archive:{oci_archive}:latest"


def test_oci_archive_errors(oci_archive: Path, tmp_path: Path) -> None:
    with pytest.raises(ImageNotFoundError, match="tag v9 not found") as caught:
        open_image(parse_reference(f"oci-archive:{oci_archive}:v9"), OPTIONS)
    assert caught.value.hint == "available tags: latest"
    with pytest.raises(ImageNotFoundError, match="no OCI archive"):
        open_image(parse_reference(f"oci-archive:{tmp_path}/absent.tar"), OPTIONS)
    packed = tmp_path / "image.oci.tar.gz"
    packed.write_bytes(gzip.compress(oci_archive.read_bytes()))
    with pytest.raises(UsageError, match="compressed"):
        open_image(parse_reference(f"oci-archive:{packed}"), OPTIONS)
    # a layer blob dropped from the tar
    broken = tmp_path / "broken.tar"
    with tarfile.open(oci_archive) as old, tarfile.open(broken, "w") as new:
        members = old.getmembers()
        biggest = max((m for m in members if m.isreg()), key=lambda m: m.size)
        for member in members:
            if member is not biggest:
                new.addfile(member, old.extractfile(member) if member.isreg() else None)
    with pytest.raises(CorruptImageError, match="missing"):
        scan(open_image(parse_reference(f"oci-archive:{broken}"), OPTIONS))


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="needs skopeo")
def test_oci_archive_written_by_skopeo(
    oci_layout: Path, tmp_path: Path, layout_tree: dict[str, tuple[object, ...]]
) -> None:
    target = tmp_path / "skopeo.tar"
    subprocess.run(
        ["skopeo", "copy", "--quiet", f"oci:{oci_layout}:latest", f"oci-archive:{target}:v1"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert parse_reference(str(target)).kind is SourceKind.OCI_ARCHIVE
    for text in (str(target), f"oci-archive:{target}:v1"):
        _, tree = scan(open_image(parse_reference(text), OPTIONS))
        assert snapshot(tree) == layout_tree


# --------------------------------------------------------------------------- docker-archive:-


def test_docker_archive_from_stdin(docker_archive: Path, tmp_path: Path) -> None:
    data = docker_archive.read_bytes()
    from_file = run("image", f"docker-archive:{docker_archive}", "--format", "json")
    for payload in (data, gzip.compress(data)):
        result = run("image", "docker-archive:-", "--format", "json", stdin=payload)
        assert result.returncode == 0, result.stderr.decode()
        image = json.loads(result.stdout)["image"]
        assert image["reference"] == "docker-archive:-"
        assert image["digest"] == json.loads(from_file.stdout)["image"]["digest"]


def test_several_images_from_stdin_need_a_choice(tmp_path: Path) -> None:
    first = ib.Image([[ib.file("which", "first")]])
    second = ib.Image([[ib.file("which", "second")]])
    path = ib.write_docker_archive_images(tmp_path / "two.tar", [(first, "a:1"), (second, "b:2")])
    refused = run("image", "docker-archive:-", stdin=path.read_bytes())
    assert refused.returncode == 2
    assert b"holds 2 images" in refused.stderr and b"@1: b:2" in refused.stderr
    chosen = run("image", "docker-archive:-:b:2", "--format", "json", stdin=path.read_bytes())
    assert chosen.returncode == 0, chosen.stderr.decode()
    assert json.loads(chosen.stdout)["image"]["digest"] == second.config_blob.digest


# --------------------------------------------------------------------------- docker://


def test_docker_url_is_the_registry(pushed_fixture: str) -> None:  # noqa: F811
    url, prefixed = (
        parse_reference(f"docker://{pushed_fixture}"),
        parse_reference(f"registry:{pushed_fixture}"),
    )
    assert (url.kind, url.name, url.explicit_kind) == (prefixed.kind, prefixed.name, True)
    with open_image(url, OPTIONS) as a, open_image(prefixed, OPTIONS) as b:
        assert a.meta.digest == b.meta.digest  # type: ignore[attr-defined]
        assert a.meta.source is SourceKind.REGISTRY  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- transports


@pytest.mark.parametrize(
    "text", ["foo:bar/baz", "containers-storage:nginx", "http://host/app", "ostree:/x", "a:b:c"]
)
def test_unknown_transports_are_refused_with_the_known_ones(text: str) -> None:
    with pytest.raises(UsageError, match="unknown source type") as caught:
        parse_reference(text)
    assert caught.value.hint and "oci-archive:PATH" in caught.value.hint
    assert "podman:NAME" in caught.value.hint


def test_cli_refuses_an_unknown_transport_with_exit_2() -> None:
    result = run("image", "containers-storage:nginx")
    assert result.returncode == 2
    assert b"unknown source type containers-storage:" in result.stderr
    assert b"docker-archive:PATH" in result.stderr


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("nginx:latest", "docker.io/library/nginx:latest"),
        ("registry:2", "docker.io/library/registry:2"),
        ("localhost:5000/app", "localhost:5000/app:latest"),
        ("my.registry:5000/team/app:v1", "my.registry:5000/team/app:v1"),
        ("podman:5000/app", "podman:5000/app:latest"),  # a host named podman, port 5000
    ],
)
def test_names_with_colons_are_still_names(text: str, name: str) -> None:
    ref = parse_reference(text)
    assert (ref.kind, ref.name, ref.explicit_kind) == (SourceKind.REGISTRY, name, False)


# --------------------------------------------------------------------------- podman:


def test_podman_without_a_socket_names_the_sockets_tried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CONTAINER_HOST", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setattr(daemon, "PODMAN_ROOT_SOCKET", str(tmp_path / "root.sock"))
    with pytest.raises(DaemonError, match="no podman API socket") as caught:
        open_image(parse_reference("podman:fixture/app:latest"), OPTIONS)
    assert f"{tmp_path}/podman/podman.sock" in caught.value.message
    assert f"{tmp_path}/root.sock" in caught.value.message
    assert caught.value.exit_code == 8


@pytest.mark.skipif(os.path.exists(daemon.PODMAN_ROOT_SOCKET), reason="a rootful podman runs")
def test_cli_podman_without_a_socket_exits_8(tmp_path: Path) -> None:
    env_free = {k: v for k, v in os.environ.items() if k != "CONTAINER_HOST"}
    result = subprocess.run(
        [sys.executable, "-m", "portscan", "image", "podman:nginx"],
        capture_output=True,
        env={**env_free, "XDG_RUNTIME_DIR": str(tmp_path)},
        timeout=120,
        check=False,
    )
    assert result.returncode == 8, result.stderr
    assert f"{tmp_path}/podman/podman.sock".encode() in result.stderr
    assert b"docker.io" not in result.stderr


@pytest.mark.podman
def test_podman_reference_uses_the_runtime_dir_socket(
    podman_service: podman.PodmanService,
    docker_archive: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    layout_tree: dict[str, tuple[object, ...]],
) -> None:
    podman_service.load(docker_archive)
    (tmp_path / "podman").mkdir()
    (tmp_path / "podman" / "podman.sock").symlink_to(podman_service.socket_path)
    monkeypatch.delenv("CONTAINER_HOST", raising=False)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")  # never asked
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    meta, tree = scan(open_image(parse_reference("podman:fixture/app:latest"), OPTIONS))
    assert snapshot(tree) == layout_tree
    assert meta.source is SourceKind.DOCKER
    with pytest.raises(ImageNotFoundError, match="not in podman") as caught:
        open_image(parse_reference("podman:fixture/absent:1"), OPTIONS)
    assert caught.value.hint and "podman pull" in caught.value.hint
