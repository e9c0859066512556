"""`oci-archive:PATH[:TAG]`: a tar of an OCI image layout, as skopeo and buildah write it.

The tar holds what an OCI layout directory holds (`oci-layout`, `index.json`,
`blobs/ALG/HEX`), read in place: tarfile's member index plus `extractfile`, so
nothing is extracted to disk; manifests, configs and index.json are read whole up to
`MAX_DOCUMENT_BYTES`, layers are streamed. The tag and platform are chosen as for an
OCI layout (`oci_layout.select_entry`), manifests and configs verified here, layers by
`layers.read_layer`. The result's source is `oci` (an OCI layout, packed); its
reference is `oci-archive:PATH[:TAG]`.

A compressed archive (`.tar.gz`) has no random access and is refused with a hint.
"""

from __future__ import annotations

import contextlib
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from portscan.errors import CorruptImageError, ImageNotFoundError, UsageError
from portscan.model import ImageRef, LayerDescriptor
from portscan.sources.base import BlobImageSource, SourceOptions
from portscan.sources.manifests import (
    MAX_DOCUMENT_BYTES,
    OCI_INDEX,
    ImageIndex,
    parse_document,
)
from portscan.sources.oci_layout import check_layout_marker, layout_meta

_HINT = "an OCI archive is a tar of an OCI layout: oci-layout, index.json and blobs/"
_COMPRESSED = (b"\x1f\x8b", b"\x28\xb5\x2f\xfd", b"BZh", b"\xfd7zXZ\x00")


def _member_name(name: str) -> str:
    return name.removeprefix("./").lstrip("/")


def _blob_name(digest: str) -> str:
    algorithm, _, hexdigest = digest.partition(":")
    return f"blobs/{algorithm}/{hexdigest}"


class OciArchiveImage(BlobImageSource):
    """An image in an OCI archive on disk: blobs are tar members, opened on demand."""

    def __init__(self, archive: tarfile.TarFile, ref: ImageRef, options: SourceOptions) -> None:
        self._archive = archive
        where = f"OCI archive {ref.path}"
        self._members = {
            _member_name(m.name): m for m in archive.getmembers() if m.isreg() or m.islnk()
        }
        self._check_marker(where)
        index_bytes = self._document("index.json", where)
        if index_bytes is None:
            raise ImageNotFoundError(f"{where} has no index.json", _HINT)
        index = parse_document(index_bytes, OCI_INDEX, f"{where}: index.json")
        if not isinstance(index, ImageIndex):
            raise CorruptImageError(f"{where}: index.json is an image manifest, not an index")

        def read_blob(digest: str, what: str) -> bytes:
            return self._blob_document(digest, what, where)

        name = f"oci-archive:{ref.path}"
        self.meta = layout_meta(index, ref.tag, options, where, read_blob, name)

    def _check_marker(self, where: str) -> None:
        data = self._document("oci-layout", where)
        if data is not None:  # as for a layout directory, index.json is what is needed
            check_layout_marker(data, f"{where}: oci-layout")

    def _member(self, name: str) -> tarfile.TarInfo | None:
        member = self._members.get(name)
        if member is not None and member.islnk():
            member = self._members.get(_member_name(member.linkname))
        return member

    def _document(self, name: str, where: str) -> bytes | None:
        member = self._member(name)
        if member is None:
            return None
        if not 0 <= member.size <= MAX_DOCUMENT_BYTES:
            raise CorruptImageError(
                f"{where}: {name} is {member.size} bytes, not a JSON document's size "
                f"(at most {MAX_DOCUMENT_BYTES})"
            )
        handle = self._archive.extractfile(member)
        return handle.read() if handle is not None else None

    def _blob_document(self, digest: str, what: str, where: str) -> bytes:
        data = self._document(_blob_name(digest), where)
        if data is None:
            raise _missing(where, digest, what)
        return data

    @contextlib.contextmanager
    def open_blob(self, descriptor: LayerDescriptor) -> Iterator[BinaryIO]:
        member = self._member(_blob_name(descriptor.digest))
        handle = self._archive.extractfile(member) if member is not None else None
        if handle is None:
            raise _missing(self._archive.name or "OCI archive", descriptor.digest, "layer")
        with handle:
            yield handle

    def close(self) -> None:
        self._archive.close()


def _missing(where: object, digest: str, what: str) -> CorruptImageError:
    return CorruptImageError(
        f"{what} blob {digest} is missing from {where}",
        "the archive is incomplete; export the image again",
    )


def open_oci_archive_image(ref: ImageRef, options: SourceOptions) -> OciArchiveImage:
    """Open the OCI archive at `ref.path` and resolve `ref.tag` and the platform."""
    path = Path(ref.path or "").expanduser()
    if not path.exists():
        raise ImageNotFoundError(
            f"no OCI archive at {path}", "create one with `skopeo copy IMAGE oci-archive:FILE`"
        )
    if path.is_dir():
        raise UsageError(f"{path} is a directory, not an OCI archive", "use oci:PATH for it")
    with path.open("rb") as handle:
        if handle.read(6).startswith(_COMPRESSED):
            raise UsageError(
                f"{path} is compressed; an OCI archive is read in place from a plain tar",
                "decompress it first (gunzip, zstd -d)",
            )
    try:
        archive = tarfile.open(path, "r:")  # noqa: SIM115 - the source closes it
    except tarfile.TarError:
        raise CorruptImageError(f"{path} is not a tar archive", _HINT) from None
    try:
        return OciArchiveImage(archive, ref, options)
    except BaseException:
        archive.close()
        raise
