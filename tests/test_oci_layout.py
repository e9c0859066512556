"""The OCI layout source on layouts written by tests/imagebuild.py and by umoci."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from portscan.errors import (
    CorruptImageError,
    ImageNotFoundError,
    PlatformNotFoundError,
)
from portscan.layers import merge_layers, read_layer
from portscan.model import FileKind, ImageRef, Platform, SourceKind
from portscan.sources import SourceOptions, open_image
from portscan.sources.oci_layout import OciLayoutImage, open_oci_layout_image
from portscan.sources.refs import parse_reference
from tests import imagebuild as ib

OPTIONS = SourceOptions()
ARM64 = SourceOptions(platform=Platform.parse("linux/arm64"))


def layout_ref(root: Path, tag: str | None = None) -> ImageRef:
    text = f"oci:{root}" + (f":{tag}" if tag else "")
    return ImageRef(SourceKind.OCI, text, path=str(root), tag=tag, explicit_kind=True)


def small_image(text: str, architecture: str = "amd64") -> ib.Image:
    layers = [[ib.file("srv/name", text)], [ib.file(f"srv/{architecture}.txt", architecture)]]
    return ib.Image(layers, config={"Cmd": [text]}, architecture=architecture)


def write_blob(root: Path, blob: ib.Blob) -> None:
    path = root / "blobs" / "sha256" / blob.digest.split(":", 1)[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob.data)


def write_layout(root: Path, entries: list[tuple[ib.Image, dict[str, object]]]) -> Path:
    """A layout whose index.json lists each image's manifest with the given extra fields
    (annotations, platform)."""
    root.mkdir(parents=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    manifests = []
    for image, extra in entries:
        for blob in image.blobs:
            write_blob(root, blob)
        manifests.append(image.manifest_blob.descriptor(**extra))
    index = {"schemaVersion": 2, "mediaType": ib.OCI_INDEX, "manifests": manifests}
    (root / "index.json").write_text(json.dumps(index))
    return root


def tagged(name: str) -> dict[str, object]:
    return {"annotations": {"org.opencontainers.image.ref.name": name}}


def files(source: OciLayoutImage) -> dict[str, bytes | None]:
    with source:
        _, results = source.read_layers(
            lambda blob, d, p: read_layer(blob, d, keep=lambda *_: True)
        )
    return {e.path: e.data for e in merge_layers(results).entries() if e.kind is FileKind.FILE}


# --------------------------------------------------------------------------- opening


def test_fixture_layout(oci_layout: Path, fixture_image: ib.Image) -> None:
    source = open_image(parse_reference(f"oci:{oci_layout}"), OPTIONS)
    assert isinstance(source, OciLayoutImage)
    meta = source.meta
    assert meta.reference == f"oci:{oci_layout}:latest"
    assert meta.source is SourceKind.OCI
    assert meta.digest == fixture_image.manifest_blob.digest
    assert meta.platform == Platform("linux", "amd64")
    assert meta.config.cmd == ["fixture"]
    assert [d.diff_id for d in meta.layers] == [ib.sha256(t) for t in fixture_image.layer_tars]
    tree = files(source)
    assert tree["/etc/app/new.conf"] == b"new=1\n"
    assert "/etc/app/old.conf" not in tree and "/tmp/delete-me" not in tree
    with open_image(parse_reference(f"oci:{oci_layout}:latest"), OPTIONS) as by_tag:
        assert by_tag.meta.digest == meta.digest


def test_tags(tmp_path: Path) -> None:
    one, two = small_image("one"), small_image("two")
    full_name = {
        "org.opencontainers.image.ref.name": "2.0",
        "io.containerd.image.name": "docker.io/library/app:2.0",
    }
    root = write_layout(
        tmp_path / "layout", [(one, tagged("1.0")), (two, {"annotations": full_name})]
    )
    assert open_oci_layout_image(layout_ref(root, "1.0"), OPTIONS).meta.config.cmd == ["one"]
    assert open_oci_layout_image(layout_ref(root, "2.0"), OPTIONS).meta.config.cmd == ["two"]
    with pytest.raises(
        ImageNotFoundError, match=r"tag 3\.0 not found .*available tags: 1\.0, 2\.0"
    ):
        open_oci_layout_image(layout_ref(root, "3.0"), OPTIONS)
    with pytest.raises(ImageNotFoundError, match=r"several images.*available tags: 1\.0, 2\.0"):
        open_oci_layout_image(layout_ref(root), OPTIONS)


def test_containerd_style_full_names(tmp_path: Path) -> None:
    name = {"annotations": {"org.opencontainers.image.ref.name": "docker.io/library/app:1.0"}}
    root = write_layout(tmp_path / "layout", [(small_image("full"), name)])
    assert open_oci_layout_image(layout_ref(root, "1.0"), OPTIONS).meta.config.cmd == ["full"]


# --------------------------------------------------------------------------- platforms


def test_nested_index_platform_choice(tmp_path: Path) -> None:
    amd64, arm64 = small_image("multi"), small_image("multi", "arm64")
    root = ib.write_oci_layout(tmp_path / "layout", [amd64, arm64], tag="v1", index=True)
    default = open_oci_layout_image(layout_ref(root, "v1"), OPTIONS)
    assert default.meta.digest == amd64.manifest_blob.digest
    arm = open_oci_layout_image(layout_ref(root), ARM64)
    assert arm.meta.digest == arm64.manifest_blob.digest
    assert arm.meta.platform == Platform("linux", "arm64")
    assert files(arm)["/srv/arm64.txt"] == b"arm64"
    wanted = SourceOptions(platform=Platform.parse("linux/riscv64"))
    with pytest.raises(PlatformNotFoundError, match="it has linux/amd64, linux/arm64"):
        open_oci_layout_image(layout_ref(root, "v1"), wanted)


def test_index_json_listing_platforms(tmp_path: Path) -> None:
    """Some tools write each platform's manifest straight into index.json."""
    amd64, arm64 = small_image("flat"), small_image("flat", "arm64")
    root = write_layout(
        tmp_path / "layout",
        [(amd64, {"platform": amd64.platform}), (arm64, {"platform": arm64.platform})],
    )
    assert open_oci_layout_image(layout_ref(root), ARM64).meta.digest == arm64.manifest_blob.digest
    assert (
        open_oci_layout_image(layout_ref(root), OPTIONS).meta.digest == amd64.manifest_blob.digest
    )


# --------------------------------------------------------------------------- failures


def test_not_a_layout(tmp_path: Path) -> None:
    with pytest.raises(ImageNotFoundError, match="does not exist"):
        open_oci_layout_image(layout_ref(tmp_path / "missing"), OPTIONS)
    with pytest.raises(ImageNotFoundError, match=r"no index\.json"):
        open_oci_layout_image(layout_ref(tmp_path), OPTIONS)
    root = write_layout(tmp_path / "v2", [(small_image("x"), {})])
    (root / "oci-layout").write_text('{"imageLayoutVersion": "2.0.0"}')
    with pytest.raises(CorruptImageError, match=r"imageLayoutVersion 2\.0\.0"):
        open_oci_layout_image(layout_ref(root), OPTIONS)


def _blob_file(root: Path, blob: ib.Blob) -> Path:
    return root / "blobs" / "sha256" / blob.digest.split(":", 1)[1]


def test_missing_and_corrupt_blobs(tmp_path: Path) -> None:
    image = small_image("blobs")
    root = write_layout(tmp_path / "layout", [(image, {})])

    layer = _blob_file(root, image.layer_blobs[1])
    saved = layer.read_bytes()
    layer.unlink()
    source = open_oci_layout_image(layout_ref(root), OPTIONS)
    with pytest.raises(CorruptImageError, match="missing from the OCI layout"):
        files(source)

    layer.write_bytes(ib.Blob(ib.OCI_LAYER_GZIP, ib.layer_tar([ib.file("x", "y")])).data)
    with pytest.raises(CorruptImageError, match="does not match its digest"):
        files(open_oci_layout_image(layout_ref(root), OPTIONS))
    layer.write_bytes(saved)

    config = _blob_file(root, image.config_blob)
    config.write_bytes(config.read_bytes().replace(b"blobs", b"BLOBS"))
    with pytest.raises(CorruptImageError, match="config blob does not match"):
        open_oci_layout_image(layout_ref(root), OPTIONS)

    _blob_file(root, image.manifest_blob).unlink()
    with pytest.raises(CorruptImageError, match="missing from the OCI layout"):
        open_oci_layout_image(layout_ref(root), OPTIONS)


def test_schema1_manifest_is_refused(tmp_path: Path) -> None:
    root = write_layout(tmp_path / "layout", [(small_image("s1"), {})])
    old = ib.Blob(
        "application/vnd.docker.distribution.manifest.v1+prettyjws", b'{"schemaVersion": 1}'
    )
    write_blob(root, old)
    index = {"schemaVersion": 2, "manifests": [old.descriptor()]}
    (root / "index.json").write_text(json.dumps(index))
    with pytest.raises(CorruptImageError, match="schema 1 manifests are not supported"):
        open_oci_layout_image(layout_ref(root), OPTIONS)


# --------------------------------------------------------------------------- umoci


@pytest.mark.skipif(shutil.which("umoci") is None, reason="needs umoci")
def test_layout_written_by_umoci(tmp_path: Path) -> None:
    """umoci writes manifests and index.json without a top-level mediaType."""
    root, bundle = tmp_path / "layout", tmp_path / "bundle"
    subprocess.run(["umoci", "init", "--layout", str(root)], check=True)
    subprocess.run(["umoci", "new", "--image", f"{root}:v1"], check=True)
    subprocess.run(["umoci", "unpack", "--image", f"{root}:v1", str(bundle)], check=True)
    (bundle / "rootfs/opt/app").mkdir(parents=True)
    (bundle / "rootfs/opt/app/hello.txt").write_text("from umoci\n")
    subprocess.run(["umoci", "repack", "--image", f"{root}:v1", str(bundle)], check=True)
    manifest_digest = json.loads((root / "index.json").read_text())["manifests"][0]["digest"]
    manifest = json.loads((root / "blobs/sha256" / manifest_digest.split(":")[1]).read_text())
    assert "mediaType" not in manifest  # what this test is about

    source = open_image(parse_reference(f"oci:{root}:v1"), OPTIONS)
    assert source.meta.digest == manifest_digest
    assert len(source.meta.layers) == 1
    assert files(source)["/opt/app/hello.txt"] == b"from umoci\n"
