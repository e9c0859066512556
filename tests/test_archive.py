"""`docker save` archives: the classic and Docker 25+ layouts, from a file and from a
stream, against the same image written as an OCI layout."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import pytest
import zstandard

from portscan.errors import CorruptImageError, ImageNotFoundError, UsageError
from portscan.layers import merge_layers
from portscan.model import LayerDescriptor, Platform, SourceKind
from portscan.sources import SourceOptions, open_image
from portscan.sources.archive import (
    ArchiveImageSource,
    ChunkStream,
    StreamingArchiveSource,
    open_archive_image,
)
from portscan.sources.base import ImageSource
from portscan.sources.refs import parse_reference
from tests import imagebuild as ib
from tests.conftest import FIXTURE_CONFIG
from tests.test_layers import read_all, scan, snapshot

OPTIONS = SourceOptions()


def archive(path: Path) -> ImageSource:
    return open_image(parse_reference(f"docker-archive:{path}"), OPTIONS)


@pytest.fixture(scope="module")
def layout_tree(oci_layout: Path) -> dict[str, tuple[object, ...]]:
    """The fixture image as the OCI layout source reads it: the reference tree."""
    meta, tree = scan(open_image(parse_reference(f"oci:{oci_layout}"), OPTIONS))
    assert meta.source is SourceKind.OCI and len(tree) > 10
    return snapshot(tree)


def rewrite(source: Path, target: Path, change: Callable[[str, bytes], bytes | None]) -> Path:
    """Copy a tar, passing each regular member through `change` (None drops it)."""
    with tarfile.open(source) as old, tarfile.open(target, "w") as new:
        for member in old.getmembers():
            handle = old.extractfile(member)
            data = change(member.name, handle.read() if handle else b"")
            if data is not None:
                member.size = len(data)
                new.addfile(member, io.BytesIO(data))
    return target


def stream_of(path: Path, chunk: int = 7000) -> StreamingArchiveSource:
    """The archive as a non-seekable stream of small chunks, like a daemon's export."""

    def chunks() -> Iterator[bytes]:
        with path.open("rb") as handle:
            while data := handle.read(chunk):
                yield data

    def open_stream() -> contextlib.closing[BinaryIO]:
        return contextlib.closing(io.BufferedReader(ChunkStream(chunks())))  # type: ignore[arg-type]

    return StreamingArchiveSource(open_stream, f"stream:{path}", SourceKind.DOCKER, Platform())


# --------------------------------------------------------------------------- layouts


def test_classic_archive_gives_the_oci_layout_tree(
    docker_archive: Path, fixture_image: ib.Image, layout_tree: dict[str, tuple[object, ...]]
) -> None:
    source = archive(docker_archive)
    assert isinstance(source, ArchiveImageSource)
    meta, tree = scan(source)
    assert snapshot(tree) == layout_tree
    assert meta.source is SourceKind.DOCKER_ARCHIVE
    assert meta.reference == f"docker-archive:{docker_archive}"
    assert meta.digest == fixture_image.config_blob.digest  # no manifest: the image id
    assert meta.platform == Platform("linux", "amd64")
    assert meta.config.entrypoint == FIXTURE_CONFIG["Entrypoint"]
    assert meta.config.history[1].created_by == "COPY static + run.sh"
    assert meta.layers == [
        LayerDescriptor(
            ib.sha256(t), len(t), "application/vnd.docker.image.rootfs.diff.tar", ib.sha256(t)
        )
        for t in fixture_image.layer_tars
    ]


@pytest.mark.parametrize("compressed", [False, True], ids=["classic-store", "containerd-store"])
def test_docker25_archive_gives_the_oci_layout_tree(
    compressed: bool,
    tmp_path: Path,
    fixture_image: ib.Image,
    layout_tree: dict[str, tuple[object, ...]],
) -> None:
    path = ib.write_docker25_archive(tmp_path / "d25.tar", fixture_image, compressed=compressed)
    meta, tree = scan(archive(path))
    assert snapshot(tree) == layout_tree
    with tarfile.open(path) as tar:
        index = json.loads(tar.extractfile("index.json").read())  # type: ignore[union-attr]
    assert meta.digest == index["manifests"][0]["digest"]
    blobs = fixture_image.layer_blobs if compressed else fixture_image.layer_tars
    assert [d.digest for d in meta.layers] == [
        b.digest if compressed else ib.sha256(b)
        for b in blobs  # type: ignore[union-attr]
    ]
    assert [d.diff_id for d in meta.layers] == [ib.sha256(t) for t in fixture_image.layer_tars]


def test_platform_comes_from_the_config(tmp_path: Path) -> None:
    image = ib.Image([[ib.file("a", "a")]], architecture="arm64", variant="v8")
    meta, _ = scan(archive(ib.write_docker_archive(tmp_path / "arm.tar", image)))
    assert meta.platform == Platform("linux", "arm64", "v8")


@pytest.fixture
def two_images(tmp_path: Path) -> tuple[Path, ib.Image, ib.Image]:
    """`docker save a:1 ghcr.io/o/b:2` as a file: two images, sharing no layer."""
    first = ib.Image([[ib.file("which", "first")]])
    second = ib.Image([[ib.file("which", "second")], [ib.file("more", "x")]])
    images = [(first, "a:1"), (second, "ghcr.io/o/b:2")]
    return ib.write_docker_archive_images(tmp_path / "two.tar", images), first, second


def test_several_images_without_a_choice_are_refused_with_their_list(
    two_images: tuple[Path, ib.Image, ib.Image],
) -> None:
    path, _, _ = two_images
    with pytest.raises(UsageError, match="holds 2 images") as caught:
        archive(path)
    assert caught.value.hint == "images: @0: a:1; @1: ghcr.io/o/b:2"


@pytest.mark.parametrize(
    ("suffix", "which"),
    [
        (":a:1", "first"),
        (":docker.io/library/a:1", "first"),  # RepoTags compare as normalised names
        (":ghcr.io/o/b:2", "second"),
        ("@1", "second"),
        (":@0", "first"),  # skopeo's spelling
    ],
)
def test_an_image_of_several_is_chosen_by_tag_or_index(
    two_images: tuple[Path, ib.Image, ib.Image], suffix: str, which: str
) -> None:
    path, first, second = two_images
    meta, tree = scan(open_image(parse_reference(f"docker-archive:{path}{suffix}"), OPTIONS))
    assert tree.read("/which") == which.encode()
    assert meta.digest == (first if which == "first" else second).config_blob.digest
    assert meta.reference.startswith(f"docker-archive:{path}:")


@pytest.mark.parametrize(
    ("suffix", "message"), [(":c:3", "no image tagged c:3"), ("@2", "no image @2")]
)
def test_a_choice_the_archive_does_not_hold(
    two_images: tuple[Path, ib.Image, ib.Image], suffix: str, message: str
) -> None:
    path, _, _ = two_images
    with pytest.raises(ImageNotFoundError, match=message) as caught:
        open_image(parse_reference(f"docker-archive:{path}{suffix}"), OPTIONS)
    assert caught.value.hint and "@1: ghcr.io/o/b:2" in caught.value.hint


def test_a_compressed_archive_of_several_images_is_chosen_from_too(
    two_images: tuple[Path, ib.Image, ib.Image], tmp_path: Path
) -> None:
    path, _, _ = two_images
    packed = tmp_path / "two.tar.gz"
    packed.write_bytes(gzip.compress(path.read_bytes()))
    _, tree = scan(open_image(parse_reference(f"docker-archive:{packed}:ghcr.io/o/b:2"), OPTIONS))
    assert tree.read("/which") == b"second"
    with pytest.raises(UsageError, match="holds 2 images"):
        scan(open_image(parse_reference(f"docker-archive:{packed}"), OPTIONS))


def write_linked_archive(path: Path, image: ib.Image) -> Path:
    """Layers stored once as `<diff_id>.tar` and named through `<id>/layer.tar` symlinks
    (as podman writes, and Docker for layers shared within an image)."""
    with tarfile.open(path, "w") as tar:

        def add(info: tarfile.TarInfo, data: bytes = b"") -> None:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        names = []
        for index, layer in enumerate(image.layer_tars):
            stored = ib.sha256(layer).split(":")[1] + ".tar"
            add(tarfile.TarInfo(stored), layer)
            link = tarfile.TarInfo(f"id{index}/layer.tar")
            link.type, link.linkname = tarfile.SYMTYPE, f"../{stored}"
            add(link)
            names.append(link.name)
        add(tarfile.TarInfo("config.json"), image.config_blob.data)
        manifest = [{"Config": "config.json", "Layers": names}]
        add(tarfile.TarInfo("manifest.json"), json.dumps(manifest).encode())
    return path


def test_layers_named_through_symlink_members(
    tmp_path: Path, fixture_image: ib.Image, layout_tree: dict[str, tuple[object, ...]]
) -> None:
    path = write_linked_archive(tmp_path / "linked.tar", fixture_image)
    _, tree = scan(archive(path))
    assert snapshot(tree) == layout_tree
    _, results = stream_of(path).read_layers(read_all)
    assert snapshot(merge_layers(results)) == layout_tree


# --------------------------------------------------------------------------- streams


class Recorder:
    """Progress events as they come."""

    def __init__(self) -> None:
        self.events: list[tuple[str, LayerDescriptor, int]] = []

    def layer_started(self, descriptor: LayerDescriptor) -> None:
        self.events.append(("started", descriptor, 0))

    def layer_advanced(self, descriptor: LayerDescriptor, nbytes: int) -> None:
        self.events.append(("advanced", descriptor, nbytes))

    def layer_finished(self, descriptor: LayerDescriptor) -> None:
        self.events.append(("finished", descriptor, 0))


@pytest.mark.parametrize("layout", ["classic", "docker25-gzip"])
def test_stream_read_once_gives_the_same_image(
    layout: str, tmp_path: Path, docker_archive: Path, fixture_image: ib.Image
) -> None:
    path = docker_archive
    if layout != "classic":
        path = ib.write_docker25_archive(tmp_path / "d25.tar", fixture_image, compressed=True)
    file_meta, file_tree = scan(archive(path))
    recorder = Recorder()
    source = stream_of(path)
    with source:
        meta, results = source.read_layers(read_all, recorder)
    assert meta.layers == file_meta.layers
    assert (meta.digest, meta.config, meta.platform) == (
        file_meta.digest,
        file_meta.config,
        file_meta.platform,
    )
    assert [r.digest for r in results] == [d.digest for d in meta.layers]
    assert snapshot(merge_layers(results)) == snapshot(file_tree)
    started = [d for kind, d, _ in recorder.events if kind == "started"]
    assert len(started) == len(fixture_image.layers)
    for descriptor in started:
        mine = [(kind, n) for kind, d, n in recorder.events if d is descriptor]
        assert mine[0][0] == "started" and mine[-1][0] == "finished"
        assert sum(n for _, n in mine) == descriptor.size
    assert sorted(d.size for d in started) == sorted(d.size for d in meta.layers)


def test_compressed_archive_file_is_streamed(
    tmp_path: Path, docker_archive: Path, layout_tree: dict[str, tuple[object, ...]]
) -> None:
    raw = docker_archive.read_bytes()
    for name, data in (
        ("image.tar.gz", gzip.compress(raw)),
        ("image.tar.zst", zstandard.ZstdCompressor().compress(raw)),
    ):
        path = tmp_path / name
        path.write_bytes(data)
        source = archive(path)
        assert isinstance(source, StreamingArchiveSource)
        meta, tree = scan(source)
        assert snapshot(tree) == layout_tree
        assert meta.source is SourceKind.DOCKER_ARCHIVE


def test_the_same_layer_twice_gives_two_results(tmp_path: Path) -> None:
    layer = [ib.file("same", "s")]
    image = ib.Image([layer, [ib.file("other", "o")], layer])
    path = ib.write_docker25_archive(tmp_path / "twice.tar", image)
    with stream_of(path) as source:
        meta, results = source.read_layers(read_all)
    assert meta.layers[0].digest == meta.layers[2].digest
    assert results[0] is not results[2] and results[0].skipped is not results[2].skipped
    assert merge_layers(results).get("/same").layer == 2


# --------------------------------------------------------------------------- errors


def test_missing_directory_and_non_archive_paths(tmp_path: Path) -> None:
    with pytest.raises(ImageNotFoundError, match="no docker archive"):
        archive(tmp_path / "absent.tar")
    with pytest.raises(UsageError, match="is a directory"):
        archive(tmp_path)
    text = tmp_path / "notes.txt"
    text.write_text("not a tar\n" * 100)
    with pytest.raises(CorruptImageError, match="not a tar archive") as caught:
        archive(text)
    assert caught.value.hint and "docker save" in caught.value.hint


def test_tar_without_manifest_is_not_a_docker_archive(tmp_path: Path) -> None:
    layout = ib.write_oci_layout(tmp_path / "layout", [ib.Image([[ib.file("a", "a")]])])
    path = tmp_path / "oci.tar"
    with tarfile.open(path, "w") as tar:
        tar.add(layout, arcname=".")
    with pytest.raises(CorruptImageError, match=r"no manifest\.json") as caught:
        archive(path)
    assert caught.value.hint and "oci:" in caught.value.hint
    with pytest.raises(CorruptImageError, match=r"no manifest\.json"):
        stream_of(path).read_layers(read_all)


def _tamper_layer(name: str, data: bytes) -> bytes:
    return data.replace(b"ID=fixture", b"ID=fixturf") if name.endswith("layer.tar") else data


def test_tampered_layer_is_corrupt_from_a_file_and_from_a_stream(
    tmp_path: Path, docker_archive: Path
) -> None:
    path = rewrite(docker_archive, tmp_path / "tampered.tar", _tamper_layer)
    with pytest.raises(CorruptImageError, match="does not match its digest"):
        scan(archive(path))
    with pytest.raises(CorruptImageError, match="does not match its digest"):
        stream_of(path).read_layers(read_all)


def test_tampered_config_is_corrupt(tmp_path: Path, docker_archive: Path) -> None:
    def change(name: str, data: bytes) -> bytes:
        return data.replace(b"fixture", b"fixturX") if name.endswith(".json") else data

    path = rewrite(docker_archive, tmp_path / "config.tar", change)
    with pytest.raises(CorruptImageError, match="config"):
        archive(path)


def test_missing_layer_is_corrupt(tmp_path: Path, docker_archive: Path) -> None:
    def drop_one(name: str, data: bytes) -> bytes | None:
        return None if name.endswith("layer.tar") and b"hello-static" in data else data

    path = rewrite(docker_archive, tmp_path / "missing.tar", drop_one)
    with pytest.raises(CorruptImageError, match="absent"):
        archive(path)
    with pytest.raises(CorruptImageError, match="absent"):
        stream_of(path).read_layers(read_all)


def test_compressed_layer_without_a_digest_name_is_refused(tmp_path: Path) -> None:
    image = ib.Image([[ib.file("a", "a")]])
    path = tmp_path / "gz.tar"
    with tarfile.open(path, "w") as tar:
        for name, data in (
            ("layer.tar.gz", image.layer_blobs[0].data),
            ("config.json", image.config_blob.data),
            (
                "manifest.json",
                json.dumps([{"Config": "config.json", "Layers": ["layer.tar.gz"]}]).encode(),
            ),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(CorruptImageError, match="cannot be verified"):
        open_archive_image(parse_reference(f"docker-archive:{path}"), OPTIONS)
