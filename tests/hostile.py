"""Hostile images, built on the fly: what an attacker (or a broken tool) could hand
portscan as an OCI layout or a `docker save` archive.

Every builder writes real files under a directory the test owns; the parts a test
wants to make hostile are hooks (`edit_config`, `edit_manifest`, `edit_index`) or
raw bytes, so the rest of the image stays valid and only the attack is tested. Bombs
are generated as streams (`gzip_zero_bomb`), never held in memory. Like
tests/imagebuild.py, nothing here imports portscan.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests import imagebuild as ib

Doc = dict[str, Any]
Edit = Callable[[Doc], None]
ELF_HEAD = b"\x7fELF\x02\x01\x01" + bytes(9)  # 64-bit little-endian ELF, then zeros


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def plain_tar(*entries: ib.Entry) -> bytes:
    return ib.layer_tar(list(entries))


def base_config(diff_ids: list[str]) -> Doc:
    return {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/usr/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": f"layer {i}"} for i in range(len(diff_ids))],
    }


DEEP = "@DEEP@"  # a string value that `serialise` replaces by deeply nested arrays


def serialise(doc: Doc, depth: int = 0) -> bytes:
    """JSON of `doc`, with the value `DEEP` replaced by `depth` nested arrays (which
    the json module could not write: it recurses too)."""
    data = json.dumps(doc).encode()
    return data.replace(f'"{DEEP}"'.encode(), b"[" * depth + b"]" * depth)


# --------------------------------------------------------------------------- layers


def deep_tree_tar(depth: int) -> bytes:
    """A layer with one file `depth` directories down (no directory entries: the
    reader must create them), a legal image that any recursion would choke on."""
    path = "/".join(["d"] * depth) + "/leaf"
    return plain_tar(ib.file(path, "deep\n"))


def non_utf8_names_tar() -> bytes:
    """Entry names, a link target and a dpkg status that are not UTF-8."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT,
                      encoding="utf-8", errors="surrogateescape") as archive:  # fmt: skip
        for name, data in (("bin/run\udcff", b"#!/bin/sh\necho hi\n"), ("etc/\udcfe", b"x")):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            archive.addfile(info, io.BytesIO(data))
        status = (b"Package: bad\xffname\nStatus: install ok installed\nVersion: 1.\xfe\n"
                  b"Architecture: amd64\n\n")  # fmt: skip
        info = tarfile.TarInfo("var/lib/dpkg/status")
        info.size = len(status)
        archive.addfile(info, io.BytesIO(status))
        link = tarfile.TarInfo("bin/link")
        link.type, link.linkname = tarfile.SYMTYPE, "run\udcff"
        archive.addfile(link)
    return out.getvalue()


def bad_checksum_tar() -> bytes:
    """Three files; the second header's name is changed after its checksum was written."""
    data = bytearray(plain_tar(ib.file("a", "1"), ib.file("b", "2"), ib.file("c", "3")))
    second = _header_offsets(bytes(data))[1]
    data[second] ^= 0x01  # 'b' -> 'c': the checksum no longer matches
    return bytes(data)


def _header_offsets(tar: bytes) -> list[int]:
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        return [m.offset for m in archive.getmembers() if not m.name.startswith("./@")]


def negative_size_tar() -> bytes:
    """A member whose size field (GNU base-256) is negative."""
    info = tarfile.TarInfo("usr/bin/neg")
    info.size = -4096
    out = io.BytesIO()
    out.write(info.tobuf(tarfile.GNU_FORMAT))
    out.write(bytes(1024))
    return out.getvalue()


def huge_pax_header_tar(size: int) -> bytes:
    """A pax extended header of `size` bytes (one long comment record), then a file."""
    record_body = b" comment=" + b"a" * (size - 32) + b"\n"
    length = len(record_body)
    length += len(str(length + len(str(length))))
    record = str(length).encode() + record_body
    info = tarfile.TarInfo("././@PaxHeader")
    info.type, info.size = tarfile.XHDTYPE, len(record)
    out = io.BytesIO()
    out.write(info.tobuf(tarfile.USTAR_FORMAT))
    out.write(record + bytes(-len(record) % 512))
    out.write(plain_tar(ib.file("after", "x")))
    return out.getvalue()


def jar_claiming_a_huge_central_directory(size: int) -> bytes:
    """A valid little jar whose end record states a central directory of `size` bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
    data = bytearray(out.getvalue())
    end = data.rfind(b"PK\x05\x06")
    data[end + 12 : end + 16] = size.to_bytes(4, "little")
    return bytes(data)


def zip_bomb_jar(inflated: int) -> bytes:
    """A small jar whose nested jar inflates to `inflated` bytes of zeros."""
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("lib/zeros.jar", "w", force_zip64=True) as entry:
            chunk = bytes(1 << 20)
            for _ in range(inflated >> 20):
                entry.write(chunk)
        archive.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
    return inner.getvalue()


def gzip_zero_bomb(path: Path, members: list[tuple[str, bytes, int]]) -> str:
    """Write a gzip layer whose tar holds each (name, head, size) member: `head`, then
    zeros up to `size`. Compressed once per MiB of zeros and repeated (a full flush
    makes the compressed MiB identical each time), so a 4 GiB member costs seconds.
    Returns the diff_id (sha256 of the uncompressed tar)."""
    mib = bytes(1 << 20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    tar_hash = hashlib.sha256()
    crc, total = 0, 0
    with path.open("wb") as out:
        out.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff")  # gzip header, no name

        def emit(data: bytes) -> None:
            nonlocal crc, total
            tar_hash.update(data)
            crc = zlib.crc32(data, crc)
            total += len(data)
            out.write(compressor.compress(data) + compressor.flush(zlib.Z_FULL_FLUSH))

        compressed_mib = b""
        for name, head, size in members:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = size, 0o755, 1_700_000_000
            emit(info.tobuf(tarfile.PAX_FORMAT) + head)
            rest = size - len(head)
            tail = rest % len(mib)
            emit(bytes(tail))
            for _ in range(rest // len(mib)):
                if not compressed_mib:
                    compressed_mib = compressor.compress(mib) + compressor.flush(zlib.Z_FULL_FLUSH)
                out.write(compressed_mib)
                tar_hash.update(mib)
                crc = zlib.crc32(mib, crc)
                total += len(mib)
            emit(bytes(-size % 512))
        emit(bytes(1024))
        out.write(compressor.flush())
        out.write(crc.to_bytes(4, "little") + (total & 0xFFFFFFFF).to_bytes(4, "little"))
    return "sha256:" + tar_hash.hexdigest()


# --------------------------------------------------------------------------- OCI layouts


@dataclass
class Layout:
    """An OCI layout on disk and the digests of its parts."""

    root: Path
    config: str
    layers: list[str]
    manifest: str
    extra: dict[str, str] = field(default_factory=dict)

    def blob(self, digest: str) -> Path:
        algorithm, _, hexdigest = digest.partition(":")
        return self.root / "blobs" / algorithm / hexdigest

    @property
    def ref(self) -> str:
        return f"oci:{self.root}"


def _write(root: Path, data: bytes) -> str:
    digest = sha256(data)
    path = root / "blobs" / "sha256" / digest.split(":", 1)[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest


def _descriptor(media_type: str, data: bytes, **extra: Any) -> Doc:
    return {"mediaType": media_type, "digest": sha256(data), "size": len(data), **extra}


def write_layout(
    root: Path,
    layers: list[bytes],
    *,
    compress: bool = True,
    diff_ids: list[str] | None = None,
    edit_config: Edit | None = None,
    raw_config: bytes | None = None,
    config_media_type: str = ib.OCI_CONFIG,
    manifest_media_type: str = ib.OCI_MANIFEST,
    edit_manifest: Edit | None = None,
    raw_manifest: bytes | None = None,
    index_entry: Doc | None = None,
    raw_index: bytes | None = None,
    depth: int = 0,
) -> Layout:
    """An OCI layout of one image whose layers are the given uncompressed tars.
    `diff_ids` defaults to the true ones; the hooks edit the documents before they
    are serialised; `raw_*` replace them outright; `index_entry` is merged into the
    index.json entry (`platform`, `annotations`, ...); a `DEEP` value in a document
    becomes `depth` nested arrays."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    blobs = [gzip.compress(t, mtime=0) if compress else t for t in layers]
    layer_type = ib.OCI_LAYER_GZIP if compress else ib.OCI_LAYER_TAR
    config_doc = base_config(diff_ids if diff_ids is not None else [sha256(t) for t in layers])
    if edit_config:
        edit_config(config_doc)
    config = raw_config if raw_config is not None else serialise(config_doc, depth)
    manifest_doc: Doc = {
        "schemaVersion": 2,
        "mediaType": manifest_media_type,
        "config": _descriptor(config_media_type, config),
        "layers": [_descriptor(layer_type, blob) for blob in blobs],
    }
    if edit_manifest:
        edit_manifest(manifest_doc)
    manifest = raw_manifest if raw_manifest is not None else serialise(manifest_doc, depth)
    layer_digests = [_write(root, blob) for blob in blobs]
    config_digest = _write(root, config)
    manifest_digest = _write(root, manifest)
    entry = _descriptor(
        manifest_media_type,
        manifest,
        annotations={"org.opencontainers.image.ref.name": "latest"},
        **(index_entry or {}),
    )
    index = {"schemaVersion": 2, "mediaType": ib.OCI_INDEX, "manifests": [entry]}
    index_bytes = raw_index if raw_index is not None else serialise(index, depth)
    (root / "index.json").write_bytes(index_bytes)
    return Layout(root, config_digest, layer_digests, manifest_digest)


def write_unplatformed_index(root: Path, layers: list[bytes]) -> Layout:
    """An index.json -> nested index -> manifest, no entry carrying a `platform`
    (optional in the image spec, descriptor.md)."""
    layout = write_layout(root, layers)
    manifest = layout.blob(layout.manifest).read_bytes()
    nested_index = json.dumps(
        {"schemaVersion": 2, "mediaType": ib.OCI_INDEX,
         "manifests": [_descriptor(ib.OCI_MANIFEST, manifest)]}
    ).encode()  # fmt: skip
    digest = _write(root, nested_index)
    entry = _descriptor(
        ib.OCI_INDEX, nested_index, annotations={"org.opencontainers.image.ref.name": "latest"}
    )
    (root / "index.json").write_text(
        json.dumps({"schemaVersion": 2, "mediaType": ib.OCI_INDEX, "manifests": [entry]})
    )
    layout.extra["index"] = digest
    return layout


def write_bomb_layout(root: Path, members: list[tuple[str, bytes, int]]) -> Layout:
    """An OCI layout whose one layer is a `gzip_zero_bomb` of `members`."""
    root.mkdir(parents=True, exist_ok=True)
    staging = root / "bomb.gz"
    diff_id = gzip_zero_bomb(staging, members)
    return _layout_of_one_blob(root, staging, diff_id)


def many_files_layout(root: Path, count: int, per_dir: int = 0) -> Layout:
    """An OCI layout whose one gzip layer holds `count` empty regular files: all in
    `/many` (`per_dir` 0), or `per_dir` to a directory (`/d0/f0` ...), with no
    directory entries. Streamed to disk: a million headers are half a GiB of tar."""
    root.mkdir(parents=True, exist_ok=True)
    staging = root / "layer.gz"
    tar_hash = hashlib.sha256()
    with staging.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1,
                                                   mtime=0) as out:  # fmt: skip
        batch: list[bytes] = []
        for i in range(count):
            name = f"d{i // per_dir}/f{i % per_dir}" if per_dir else f"many/f{i}"
            info = tarfile.TarInfo(name)
            info.mode, info.mtime = 0o644, 1_700_000_000
            batch.append(info.tobuf(tarfile.USTAR_FORMAT))
            if len(batch) == 4096 or i == count - 1:
                data = b"".join(batch)
                tar_hash.update(data)
                out.write(data)
                batch = []
        tar_hash.update(bytes(1024))
        out.write(bytes(1024))
    return _layout_of_one_blob(root, staging, "sha256:" + tar_hash.hexdigest())


def _layout_of_one_blob(root: Path, staging: Path, diff_id: str) -> Layout:
    """Finish an OCI layout around the gzip layer written to `staging`."""
    digest_hash = hashlib.sha256()
    with staging.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest_hash.update(chunk)
    digest = "sha256:" + digest_hash.hexdigest()
    size = staging.stat().st_size
    (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    staging.rename(root / "blobs" / "sha256" / digest.split(":", 1)[1])
    config = json.dumps(base_config([diff_id])).encode()
    manifest = json.dumps(
        {"schemaVersion": 2, "mediaType": ib.OCI_MANIFEST,
         "config": _descriptor(ib.OCI_CONFIG, config),
         "layers": [{"mediaType": ib.OCI_LAYER_GZIP, "digest": digest, "size": size}]}
    ).encode()  # fmt: skip
    config_digest, manifest_digest = _write(root, config), _write(root, manifest)
    entry = _descriptor(ib.OCI_MANIFEST, manifest)
    (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
    return Layout(root, config_digest, [digest], manifest_digest)


# --------------------------------------------------------------------------- docker save


def write_docker_save(
    path: Path,
    layers: list[bytes],
    *,
    edit_config: Edit | None = None,
    index_json: bytes | None = None,
    repo_tag: str = "hostile/app:latest",
) -> Path:
    """A classic `docker save` archive (`<id>/layer.tar`, `<config hex>.json`,
    manifest.json), with `index.json` beside it when given (Docker 25+ writes one)."""
    config_doc = base_config([sha256(t) for t in layers])
    if edit_config:
        edit_config(config_doc)
    config = json.dumps(config_doc).encode()
    members: list[tuple[str, bytes]] = []
    names = []
    for tar in layers:
        name = f"{sha256(tar).split(':', 1)[1]}/layer.tar"
        members.append((name, tar))
        names.append(name)
    config_name = sha256(config).split(":", 1)[1] + ".json"
    members.append((config_name, config))
    manifest = [{"Config": config_name, "RepoTags": [repo_tag], "Layers": names}]
    members.append(("manifest.json", json.dumps(manifest).encode()))
    if index_json is not None:
        members.append(("index.json", index_json))
    with tarfile.open(path, "w") as archive:
        for name, data in _members(members):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_700_000_000
            archive.addfile(info, io.BytesIO(data))
    return path


def _members(members: list[tuple[str, bytes]]) -> Iterator[tuple[str, bytes]]:
    seen: set[str] = set()
    for name, data in members:
        if name not in seen:
            seen.add(name)
            yield name, data
