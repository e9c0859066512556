"""`docker:NAME` and bare names against a real engine: podman serving the Docker API."""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from portscan.errors import DaemonError, ImageNotFoundError
from portscan.layers import merge_layers
from portscan.model import Platform, SourceKind
from portscan.sources import SourceOptions, daemon, open_image
from portscan.sources.archive import StreamingArchiveSource
from portscan.sources.refs import parse_reference
from tests import podman_service as podman
from tests.test_archive import Recorder
from tests.test_layers import read_all, scan, snapshot

podman_service = podman.podman_service  # the session fixture, registered in this module
OPTIONS = SourceOptions()


@pytest.fixture(scope="module")
def engine(podman_service: podman.PodmanService, docker_archive: Path) -> podman.PodmanService:
    """The service, holding the fixture image as fixture/app:latest."""
    podman_service.load(docker_archive)
    return podman_service


@pytest.fixture
def docker_host(engine: podman.PodmanService, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DOCKER_HOST", engine.docker_host)
    return engine.docker_host


@pytest.fixture
def archive_tree(docker_archive: Path) -> dict[str, tuple[object, ...]]:
    _, tree = scan(open_image(parse_reference(f"docker-archive:{docker_archive}"), OPTIONS))
    return snapshot(tree)


@pytest.mark.podman
def test_docker_reference_gives_the_archive_tree(
    docker_host: str, archive_tree: dict[str, tuple[object, ...]], docker_archive: Path
) -> None:
    source = open_image(parse_reference("docker:fixture/app:latest"), OPTIONS)
    recorder = Recorder()
    with source:
        meta, results = source.read_layers(read_all, recorder)
    archive_meta, _ = scan(open_image(parse_reference(f"docker-archive:{docker_archive}"), OPTIONS))
    assert snapshot(merge_layers(results)) == archive_tree
    assert meta.source is SourceKind.DOCKER
    assert meta.config == archive_meta.config
    assert [d.diff_id for d in meta.layers] == [d.diff_id for d in archive_meta.layers]
    assert meta.platform == Platform("linux", "amd64")
    # podman records the manifest digest it wrote on load as the repo digest
    assert meta.digest is not None and meta.digest.startswith("sha256:")
    assert meta.digest != archive_meta.digest
    assert sum(1 for kind, _, _ in recorder.events if kind == "finished") == len(results)


@pytest.mark.podman
def test_archive_saved_by_podman_reads_like_the_original(
    engine: podman.PodmanService, tmp_path: Path, archive_tree: dict[str, tuple[object, ...]]
) -> None:
    saved = tmp_path / "saved.tar"
    engine.podman("save", "--format", "docker-archive", "-o", str(saved), "fixture/app:latest")
    _, tree = scan(open_image(parse_reference(f"docker-archive:{saved}"), OPTIONS))
    assert snapshot(tree) == archive_tree


@pytest.mark.podman
def test_bare_name_is_found_in_the_daemon_first(
    docker_host: str, archive_tree: dict[str, tuple[object, ...]]
) -> None:
    source = open_image(parse_reference("fixture/app:latest"), OPTIONS)
    assert isinstance(source, StreamingArchiveSource)
    meta, tree = scan(source)
    assert meta.source is SourceKind.DOCKER
    assert snapshot(tree) == archive_tree


@pytest.mark.podman
def test_bare_name_of_another_platform_or_absent_image_is_left_to_the_registry(
    docker_host: str,
) -> None:
    ref = parse_reference("fixture/app:latest")
    arm = SourceOptions(platform=Platform("linux", "arm64"))
    assert daemon.try_open_daemon_image(ref, arm) is None
    assert daemon.try_open_daemon_image(parse_reference("fixture/absent:1"), OPTIONS) is None


@pytest.mark.podman
def test_explicit_reference_to_an_absent_image(docker_host: str) -> None:
    with pytest.raises(ImageNotFoundError, match="not in the local Docker daemon") as caught:
        open_image(parse_reference("docker:fixture/absent:1"), OPTIONS)
    assert caught.value.hint and "registry:fixture/absent:1" in caught.value.hint


# --------------------------------------------------------------------------- no engine


def test_dead_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/dead.sock")
    ref = parse_reference("fixture/app:latest")
    assert daemon.try_open_daemon_image(ref, OPTIONS) is None
    with pytest.raises(DaemonError, match="cannot reach the Docker daemon") as caught:
        open_image(parse_reference("docker:fixture/app:latest"), OPTIONS)
    assert caught.value.hint and "DOCKER_HOST" in caught.value.hint


@pytest.fixture
def silent_socket(tmp_path: Path) -> Iterator[Path]:
    """A socket that accepts connections and never answers."""
    path = tmp_path / "silent.sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        server.listen(8)
        yield path


@pytest.mark.timeout(20)  # without the probe timeout this would wait for the 60 s default
def test_engine_that_never_answers_is_no_engine(
    silent_socket: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{silent_socket}")
    assert daemon.try_open_daemon_image(parse_reference("fixture/app:latest"), OPTIONS) is None


def test_no_docker_host_and_no_default_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setattr(daemon, "DEFAULT_SOCKET", str(tmp_path / "docker.sock"))
    assert daemon.try_open_daemon_image(parse_reference("nginx"), OPTIONS) is None


def test_candidate_names() -> None:
    assert daemon.candidate_names(parse_reference("nginx")) == [
        "nginx:latest",
        "docker.io/library/nginx:latest",
    ]
    assert daemon.candidate_names(parse_reference("ghcr.io/o/app@sha256:" + "a" * 64)) == [
        "ghcr.io/o/app@sha256:" + "a" * 64
    ]


def _context(config_dir: Path, name: str, host: str, current: bool) -> None:
    """A Docker context as the docker CLI stores it (`docker context create`)."""
    meta = config_dir / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest()
    meta.mkdir(parents=True)
    document = {"Name": name, "Metadata": {}, "Endpoints": {"docker": {"Host": host}}}
    (meta / "meta.json").write_text(json.dumps(document))
    if current:
        (config_dir / "config.json").write_text(json.dumps({"currentContext": name}))


@pytest.mark.podman
def test_the_current_docker_context_is_followed(
    engine: podman.PodmanService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Docker Desktop, colima and rootless Docker live behind a context, not the default
    socket: a bare name is found in the context's engine (here podman's socket)."""
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    _context(tmp_path, "desktop-linux", engine.docker_host, current=True)
    assert daemon.docker_endpoint() == (engine.docker_host, "Docker context 'desktop-linux'")
    source = daemon.try_open_daemon_image(parse_reference("fixture/app:latest"), OPTIONS)
    assert source is not None
    source.close()
    explicit = open_image(parse_reference("docker:fixture/app:latest"), OPTIONS)
    explicit.close()


@pytest.mark.podman
def test_docker_context_variable_and_a_missing_context(
    engine: podman.PodmanService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    _context(tmp_path, "other", f"unix://{tmp_path}/dead.sock", current=True)
    _context(tmp_path, "pod", engine.docker_host, current=False)
    monkeypatch.setenv("DOCKER_CONTEXT", "pod")  # the variable wins over currentContext
    assert daemon.docker_endpoint()[0] == engine.docker_host
    monkeypatch.setenv("DOCKER_CONTEXT", "other")  # a dead engine: errors name it
    with pytest.raises(DaemonError) as caught:
        open_image(parse_reference("docker:fixture/app:latest"), OPTIONS)
    assert "dead.sock" in str(caught.value) and "Docker context 'other'" in str(caught.value)
    assert daemon.try_open_daemon_image(parse_reference("fixture/app:latest"), OPTIONS) is None
    monkeypatch.setenv("DOCKER_CONTEXT", "nowhere")
    with pytest.raises(DaemonError, match="context 'nowhere'"):
        open_image(parse_reference("docker:fixture/app:latest"), OPTIONS)
