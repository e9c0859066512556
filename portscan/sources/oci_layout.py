"""Open an image from an OCI image layout directory (OCI image spec, image-layout.md).

    DIR/oci-layout          {"imageLayoutVersion": "1.0.0"}
    DIR/index.json          an image index: the layout's entry points
    DIR/blobs/ALG/HEX       content-addressed blobs

`oci:DIR:TAG` picks the `index.json` entries whose `org.opencontainers.image.ref.name`
annotation is TAG (or a full reference ending in `:TAG`, as containerd writes).
Without a tag, the layout must hold one image: a single entry, or entries for several
platforms of one name. Among several entries, and in indexes nested below the chosen
entry (buildx writes one), the platform is chosen with `SourceOptions.platform`.
Blobs are read straight from their files; `layers.read_layer` verifies layer digests,
and manifests and configs are verified here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import BinaryIO

from portscan.errors import CorruptImageError, ImageNotFoundError
from portscan.model import ImageMeta, ImageRef, LayerDescriptor, Platform, SourceKind
from portscan.sources.base import BlobImageSource, SourceOptions
from portscan.sources.manifests import (
    MAX_DOCUMENT_BYTES,
    OCI_INDEX,
    REF_NAME,
    Descriptor,
    ImageIndex,
    ImageManifest,
    build_meta,
    choose_platform,
    parse_document,
    resolve_manifest,
    verify_digest,
)
from portscan.sources.validate import load_json, open_regular, read_capped, verifiable

_CONTAINERD_NAME = "io.containerd.image.name"
_LAYOUT_HINT = "an OCI layout is a directory with oci-layout, index.json and blobs/"


def blob_path(root: Path, digest: str) -> Path:
    """Where a blob lives (the digest is validated by `Descriptor`, and refused here
    if portscan cannot verify it)."""
    algorithm, _, hexdigest = verifiable(digest, f"OCI layout {root}: blob").partition(":")
    return root / "blobs" / algorithm / hexdigest


def _ref_names(entry: Descriptor) -> list[str]:
    return [
        entry.annotations[key] for key in (REF_NAME, _CONTAINERD_NAME) if key in entry.annotations
    ]


def _has_tag(entry: Descriptor, tag: str) -> bool:
    return any(name == tag or name.endswith(f":{tag}") for name in _ref_names(entry))


def _tags(entries: list[Descriptor]) -> list[str]:
    return sorted({e.annotations[REF_NAME] for e in entries if REF_NAME in e.annotations})


def select_entry(
    index: ImageIndex, tag: str | None, platform: Platform, where: str
) -> tuple[Descriptor, str | None]:
    """The `index.json` entry to open and the tag it answers to (see module docstring)."""
    entries = [e for e in index.manifests if not e.is_attestation]
    available = _tags(entries)
    if tag is not None:
        entries = [e for e in entries if _has_tag(e, tag)]
        if not entries:
            raise ImageNotFoundError(
                f"tag {tag} not found in {where}",
                f"available tags: {', '.join(available)}" if available else "it has no tags",
            )
    if not entries:
        raise ImageNotFoundError(f"{where} holds no images", _LAYOUT_HINT)
    if len(entries) == 1:
        return entries[0], tag or (available[0] if len(available) == 1 else None)
    if len(_tags(entries)) <= 1 and all(e.platform is not None for e in entries):
        chosen = choose_platform(ImageIndex(OCI_INDEX, entries), platform, where)
        return chosen, tag or (available[0] if available else None)
    raise ImageNotFoundError(
        f"{where} holds several images; name one as oci:PATH:TAG",
        f"available tags: {', '.join(available)}" if available else "none of them is tagged",
    )


class OciLayoutImage(BlobImageSource):
    """An image in an OCI layout: blobs are files, opened on demand."""

    def __init__(self, meta: ImageMeta, root: Path) -> None:
        self.meta = meta
        self.root = root

    def open_blob(self, descriptor: LayerDescriptor) -> AbstractContextManager[BinaryIO]:
        return self._open(descriptor.digest)

    @contextmanager
    def _open(self, digest: str) -> Iterator[BinaryIO]:
        try:
            handle = open_regular(blob_path(self.root, digest), f"blob {digest} in {self.root}")
        except FileNotFoundError:
            raise _missing(self.root, digest) from None
        with handle:
            yield handle


def _missing(root: Path, digest: str) -> CorruptImageError:
    return CorruptImageError(
        f"blob {digest} is missing from the OCI layout {root}",
        "the layout is incomplete; copy or export the image again",
    )


def _read_small_blob(root: Path, digest: str, what: str) -> bytes:
    """A manifest or config, read whole; the caller verifies the digest."""
    try:
        return _read_document(blob_path(root, digest), f"{what} blob {digest} in {root}")
    except FileNotFoundError:
        raise _missing(root, digest) from None


def _read_document(path: Path, where: str) -> bytes:
    """A JSON document of the layout, from a regular file, at most `MAX_DOCUMENT_BYTES`."""
    with open_regular(path, where) as handle:
        if (size := os.fstat(handle.fileno()).st_size) > MAX_DOCUMENT_BYTES:
            raise CorruptImageError(
                f"{where} is {size} bytes, more than the {MAX_DOCUMENT_BYTES} allowed"
            )
        return read_capped(handle, where)


def _read_index(root: Path) -> ImageIndex:
    if not root.exists():
        raise ImageNotFoundError(f"OCI layout {root} does not exist", "check the path")
    if not os.path.lexists(root / "index.json"):  # a FIFO or a link is refused below
        raise ImageNotFoundError(f"{root} is not an OCI image layout (no index.json)", _LAYOUT_HINT)
    marker = root / "oci-layout"
    if os.path.lexists(marker):
        check_layout_marker(_read_document(marker, str(marker)), str(marker))
    data = _read_document(root / "index.json", f"{root}/index.json")
    index = parse_document(data, OCI_INDEX, f"{root}/index.json")
    if not isinstance(index, ImageIndex):
        raise CorruptImageError(f"{root}/index.json is an image manifest, not an image index")
    return index


def open_oci_layout_image(ref: ImageRef, options: SourceOptions) -> OciLayoutImage:
    """Resolve `ref` (kind oci, `path` the layout, `tag` optional) to one image."""
    if ref.path is None:
        raise ImageNotFoundError(f"{ref.original} does not name an OCI layout directory")
    root = Path(ref.path)
    where = f"OCI layout {root}"
    index = _read_index(root)

    def read_blob(digest: str, what: str) -> bytes:
        return _read_small_blob(root, digest, what)

    meta = layout_meta(index, ref.tag, options, where, read_blob, f"oci:{root}")
    return OciLayoutImage(meta, root)


def check_layout_marker(data: bytes, where: str) -> None:
    """An `oci-layout` file must say imageLayoutVersion 1.x (CorruptImageError if not)."""
    doc = load_json(data, where)
    version = doc.get("imageLayoutVersion", "") if isinstance(doc, dict) else ""
    version = version if isinstance(version, str) else ""
    if not version.startswith("1."):
        raise CorruptImageError(
            f"{where}: unsupported imageLayoutVersion {version or '(none)'}",
            "portscan reads OCI image layouts of version 1.x",
        )


def layout_meta(
    index: ImageIndex,
    wanted_tag: str | None,
    options: SourceOptions,
    where: str,
    read_blob: Callable[[str, str], bytes],
    name: str,
) -> ImageMeta:
    """The image an OCI layout's index names for a tag and platform, however its blobs
    are read (`read_blob(digest, "manifest" | "config")`: a directory or an archive)."""
    entry, tag = select_entry(index, wanted_tag, options.platform, where)

    def fetch(descriptor: Descriptor) -> bytes:
        data = read_blob(verifiable(descriptor.digest, f"{where}: manifest blob"), "manifest")
        verify_digest(data, descriptor.digest, f"{where}: manifest")
        return data

    top: ImageManifest | ImageIndex = parse_document(fetch(entry), entry.media_type or None, where)
    manifest, digest, claimed = resolve_manifest(top, entry.digest, fetch, options.platform, where)
    config = read_blob(verifiable(manifest.config.digest, f"{where}: config blob"), "config")
    reference = f"{name}:{tag}" if tag else name
    platform = claimed or entry.platform or options.platform
    return build_meta(manifest, digest, config, reference, SourceKind.OCI, platform)
