"""Write small but real OCI images from Python: OCI layouts and `docker save` archives.

A test describes layers as lists of `Entry` and gets byte-exact blobs, a config with
history, an OCI manifest (or Docker schema 2), and optionally an index over several
platforms. Nothing here imports portscan: the fixtures are independent of the code
under test.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


@dataclass
class Entry:
    """One tar entry. kind: file, dir, symlink, hardlink, whiteout (name = path deleted),
    opaque (name = the directory)."""

    name: str
    kind: str = "file"
    data: bytes = b""
    mode: int = 0o644
    target: str = ""


def file(name: str, data: bytes | str, mode: int = 0o644) -> Entry:
    return Entry(name, "file", data.encode() if isinstance(data, str) else data, mode)


def directory(name: str, mode: int = 0o755) -> Entry:
    return Entry(name, "dir", mode=mode)


def symlink(name: str, target: str) -> Entry:
    return Entry(name, "symlink", target=target, mode=0o777)


def hardlink(name: str, target: str) -> Entry:
    return Entry(name, "hardlink", target=target)


def whiteout(path: str) -> Entry:
    return Entry(path, "whiteout")


def opaque(directory_path: str) -> Entry:
    return Entry(directory_path, "opaque")


def layer_tar(entries: list[Entry]) -> bytes:
    """A deterministic, uncompressed layer tar."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for entry in entries:
            name = entry.name
            if entry.kind == "whiteout":
                head, _, base = name.rstrip("/").rpartition("/")
                name = f"{head}/.wh.{base}" if head else f".wh.{base}"
            elif entry.kind == "opaque":
                name = name.rstrip("/") + "/.wh..wh..opq"
            info = tarfile.TarInfo(name)
            info.mtime = 1_700_000_000
            info.mode = entry.mode
            if entry.kind in ("file", "whiteout", "opaque"):
                info.type = tarfile.REGTYPE
                info.size = len(entry.data)
                archive.addfile(info, io.BytesIO(entry.data))
                continue
            info.type = {
                "dir": tarfile.DIRTYPE,
                "symlink": tarfile.SYMTYPE,
                "hardlink": tarfile.LNKTYPE,
            }[entry.kind]
            info.linkname = entry.target
            archive.addfile(info)
    return out.getvalue()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Blob:
    media_type: str
    data: bytes

    @property
    def digest(self) -> str:
        return sha256(self.data)

    def descriptor(self, **extra: object) -> dict:
        return {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": len(self.data),
            **extra,
        }


@dataclass
class Image:
    """One platform's image: config blob, layer blobs, manifest blob."""

    layers: list[list[Entry]]
    config: dict = field(default_factory=dict)
    architecture: str = "amd64"
    variant: str | None = None
    compression: str = "gzip"  # gzip | zstd | none
    docker_media_types: bool = False
    history: list[str] | None = None

    def __post_init__(self) -> None:
        self.layer_tars = [layer_tar(entries) for entries in self.layers]
        self.layer_blobs = [self._compress(tar) for tar in self.layer_tars]
        created_by = self.history or [f"layer {i}" for i in range(len(self.layers))]
        config_doc = {
            "architecture": self.architecture,
            "os": "linux",
            "config": self.config,
            "rootfs": {"type": "layers", "diff_ids": [sha256(t) for t in self.layer_tars]},
            "history": [{"created_by": line} for line in created_by],
        }
        if self.variant:
            config_doc["variant"] = self.variant
        media = DOCKER_CONFIG if self.docker_media_types else OCI_CONFIG
        self.config_blob = Blob(media, json.dumps(config_doc, sort_keys=True).encode())
        manifest = {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST if self.docker_media_types else OCI_MANIFEST,
            "config": self.config_blob.descriptor(),
            "layers": [blob.descriptor() for blob in self.layer_blobs],
        }
        self.manifest_blob = Blob(manifest["mediaType"], json.dumps(manifest).encode())

    def _compress(self, tar: bytes) -> Blob:
        if self.compression == "none":
            return Blob(OCI_LAYER_TAR, tar)
        if self.compression == "zstd":
            import zstandard

            return Blob(OCI_LAYER_ZSTD, zstandard.ZstdCompressor().compress(tar))
        media = DOCKER_LAYER if self.docker_media_types else OCI_LAYER_GZIP
        return Blob(media, gzip.compress(tar, mtime=0))

    @property
    def blobs(self) -> list[Blob]:
        return [self.config_blob, *self.layer_blobs, self.manifest_blob]

    @property
    def platform(self) -> dict:
        platform = {"os": "linux", "architecture": self.architecture}
        if self.variant:
            platform["variant"] = self.variant
        return platform


def _write_blob(root: Path, blob: Blob) -> None:
    path = root / "blobs" / "sha256" / blob.digest.split(":", 1)[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob.data)


def write_oci_layout(
    root: Path, images: list[Image], tag: str = "latest", index: bool = False
) -> Path:
    """Write an OCI image layout. With `index=True` (or several images) the tag points
    at an image index holding one manifest per platform."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    for image in images:
        for blob in image.blobs:
            _write_blob(root, blob)
    annotations = {"org.opencontainers.image.ref.name": tag}
    if index or len(images) > 1:
        nested = Blob(
            OCI_INDEX,
            json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_INDEX,
                    "manifests": [
                        img.manifest_blob.descriptor(platform=img.platform) for img in images
                    ],
                }
            ).encode(),
        )
        _write_blob(root, nested)
        top = nested.descriptor(annotations=annotations)
    else:
        top = images[0].manifest_blob.descriptor(annotations=annotations)
    (root / "index.json").write_text(
        json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [top]})
    )
    return root


def write_docker_archive(path: Path, image: Image, repo_tag: str = "fixture/app:latest") -> Path:
    """Write a `docker save` archive (the classic layout: <id>/layer.tar, uncompressed)."""
    with tarfile.open(path, "w") as archive:

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_700_000_000
            archive.addfile(info, io.BytesIO(data))

        layer_paths = []
        for tar in image.layer_tars:
            layer_id = hashlib.sha256(tar).hexdigest()
            add(f"{layer_id}/layer.tar", tar)
            layer_paths.append(f"{layer_id}/layer.tar")
        config_name = image.config_blob.digest.split(":", 1)[1] + ".json"
        add(config_name, image.config_blob.data)
        manifest = [{"Config": config_name, "RepoTags": [repo_tag], "Layers": layer_paths}]
        add("manifest.json", json.dumps(manifest).encode())
    return path


def write_docker_archive_images(path: Path, images: list[tuple[Image, str]]) -> Path:
    """A classic `docker save` archive holding several images, in the order given."""
    with tarfile.open(path, "w") as archive:
        written: set[str] = set()

        def add(name: str, data: bytes) -> None:
            if name in written:
                return
            written.add(name)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_700_000_000
            archive.addfile(info, io.BytesIO(data))

        manifest = []
        for image, repo_tag in images:
            layer_paths = []
            for tar in image.layer_tars:
                layer_path = f"{hashlib.sha256(tar).hexdigest()}/layer.tar"
                add(layer_path, tar)
                layer_paths.append(layer_path)
            config_name = image.config_blob.digest.split(":", 1)[1] + ".json"
            add(config_name, image.config_blob.data)
            manifest.append({"Config": config_name, "RepoTags": [repo_tag], "Layers": layer_paths})
        add("manifest.json", json.dumps(manifest).encode())
    return path


def write_docker25_archive(
    path: Path, image: Image, repo_tag: str = "fixture/app:latest", compressed: bool = False
) -> Path:
    """Write a `docker save` archive as Docker 25+ does: an OCI layout inside the tar
    (blobs/sha256/<hex>, index.json, oci-layout) plus the classic manifest.json, whose
    Config and Layers name the blobs. Layers are the uncompressed tars (the classic
    image store) or, with `compressed=True`, the image's compressed blobs (the
    containerd image store)."""
    layers = image.layer_blobs if compressed else [Blob(OCI_LAYER_TAR, t) for t in image.layer_tars]
    manifest = Blob(
        OCI_MANIFEST,
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": image.config_blob.descriptor(),
                "layers": [blob.descriptor() for blob in layers],
            }
        ).encode(),
    )
    name, _, tag = repo_tag.rpartition(":")
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            manifest.descriptor(
                annotations={
                    "io.containerd.image.name": f"docker.io/{repo_tag}",
                    "org.opencontainers.image.ref.name": tag,
                }
            )
        ],
    }
    blob_name = "blobs/sha256/{}".format
    with tarfile.open(path, "w") as archive:

        def add(member: str, data: bytes) -> None:
            info = tarfile.TarInfo(member)
            info.size = len(data)
            info.mtime = 1_700_000_000
            archive.addfile(info, io.BytesIO(data))

        for blob in [*layers, image.config_blob, manifest]:
            add(blob_name(blob.digest.split(":", 1)[1]), blob.data)
        add("index.json", json.dumps(index).encode())
        docker_manifest = [
            {
                "Config": blob_name(image.config_blob.digest.split(":", 1)[1]),
                "RepoTags": [repo_tag],
                "Layers": [blob_name(blob.digest.split(":", 1)[1]) for blob in layers],
            }
        ]
        add("manifest.json", json.dumps(docker_manifest).encode())
        add("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        add("repositories", json.dumps({name: {tag: manifest.digest}}).encode())
    return path
