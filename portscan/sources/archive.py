"""`docker save` archives, from a file (random access) or from a stream read once.

`manifest.json` lists, per image, a config member and its layer members in order.
Layouts seen in the field, all handled by following manifest.json:

- classic Docker: `<id>/layer.tar`, uncompressed, config `<hex>.json`; identical layers
  may be symlinks to one another;
- podman / containers-image: `<diff_id hex>.tar`, with `<id>/layer.tar` symlinks to them;
- Docker 25+: an OCI layout inside the tar (`blobs/sha256/<hex>`, `index.json`,
  `oci-layout`); with the containerd image store the layer blobs stay compressed.

How a layer is verified: an uncompressed layer must hash to its diff_id from the
config; a compressed one to the digest its member name carries (`blobs/sha256/<hex>`,
or `<hex>.tar.gz` as crane writes), and one whose name carries none is refused. The
config is verified when its name carries a digest (every known writer names it so).

The image digest is the manifest digest when the archive holds an OCI index that
names the image's manifest (Docker 25+), else the image id (the config's sha256).

An archive may hold several images (`docker save a b`): `docker-archive:PATH:REPO:TAG`
picks the manifest.json entry whose RepoTags name it (`nginx:1.27` and
`docker.io/library/nginx:1.27` are the same name), `docker-archive:PATH@N` (or skopeo's
`PATH:@N`) the N-th entry, from 0. Without either, an archive of several images is
refused with their list: scanning one of them silently would judge the wrong image.

`docker-archive:-` reads the archive from standard input, once, as a stream.

A compressed archive file (`docker save | gzip`) has no random access: it is read as
a stream, like the daemon's `image.save`, by `StreamingArchiveSource`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import posixpath
import re
import sys
import tarfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO

import zstandard

from portscan.errors import CorruptImageError, ImageNotFoundError, UsageError
from portscan.model import (
    ImageConfig,
    ImageMeta,
    ImageRef,
    LayerDescriptor,
    LayerResult,
    Platform,
    SourceKind,
)
from portscan.sources.base import (
    BlobImageSource,
    ImageSource,
    LayerReader,
    ScanProgress,
    SourceOptions,
)
from portscan.sources.manifests import (
    MAX_DOCUMENT_BYTES,
    ImageIndex,
    ImageManifest,
    config_platform,
    parse_config,
    parse_document,
    sha256_digest,
    verify_digest,
)
from portscan.sources.validate import VERIFIED_ALGORITHMS, load_json, verifiable

MEDIA_TYPES = {
    "tar": "application/vnd.docker.image.rootfs.diff.tar",
    "gzip": "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
}
_NOT_AN_ARCHIVE_HINT = "create one with `docker save -o FILE IMAGE`"
_ALGORITHM_BY_LENGTH = {length: name for name, length in VERIFIED_ALGORITHMS.items()}
_NAMED_DIGEST = re.compile(  # blobs/ALG/HEX, or a bare HEX whose length says the algorithm
    rf"(?:^|/)(?:blobs/(?P<alg>{'|'.join(VERIFIED_ALGORITHMS)})/)?"
    rf"(?P<hex>{'|'.join(f'[0-9a-f]{{{n}}}' for n in _ALGORITHM_BY_LENGTH)})"
    r"(?:\.json|\.tar|\.tar\.gz|\.tgz|\.tar\.zst)?$"
)
_HEAD = 512  # one tar block: enough to tell JSON, tar and compressed blobs apart
_CHUNK = 1 << 20
_MAX_LINK_HOPS = 16


def open_archive_image(ref: ImageRef, options: SourceOptions) -> ImageSource:
    """Open the `docker save` tar at `ref.path` (`-`: stdin); see the module docstring."""
    if ref.path == "-":
        return StreamingArchiveSource(
            _open_stdin, ref.name, SourceKind.DOCKER_ARCHIVE, options.platform, selector=ref.tag
        )
    path = Path(ref.path or "").expanduser()
    if not path.exists():
        raise ImageNotFoundError(f"no docker archive at {path}", _NOT_AN_ARCHIVE_HINT)
    if path.is_dir():
        raise UsageError(
            f"{path} is a directory, not a docker archive",
            "use oci:PATH for an OCI image layout or dir:PATH for an unpacked filesystem",
        )
    with path.open("rb") as handle:
        magic = handle.read(6)
    if _compression(magic) != "tar":
        return StreamingArchiveSource(
            lambda: _open_compressed(path),
            ref.name,
            SourceKind.DOCKER_ARCHIVE,
            options.platform,
            selector=ref.tag,
        )
    try:
        archive = tarfile.open(path, "r:")  # noqa: SIM115 - the source closes it
    except tarfile.TarError:
        raise CorruptImageError(f"{path} is not a tar archive", _NOT_AN_ARCHIVE_HINT) from None
    try:
        return ArchiveImageSource(archive, ref.name, options.platform, selector=ref.tag)
    except BaseException:
        archive.close()
        raise


# --------------------------------------------------------------------------- shared


@dataclass(frozen=True)
class SaveManifest:
    """The manifest.json entry of the image being scanned."""

    config: str  # member name
    layers: list[str]  # member names, base first


def parse_save_manifest(
    data: bytes | None, where: str, selector: str | None = None
) -> SaveManifest:
    """The manifest.json entry `selector` names (`REPO:TAG` or `@N`; None: the only one);
    `CorruptImageError` if absent or malformed, `ImageNotFoundError` if no entry answers
    to the selector, `UsageError` if several images are there and none is chosen."""
    if data is None:
        raise CorruptImageError(
            f"{where} has no manifest.json, so it is not a `docker save` archive",
            "for an OCI layout use oci:PATH; " + _NOT_AN_ARCHIVE_HINT,
        )
    doc = load_json(data, f"{where}: manifest.json")
    if not isinstance(doc, list) or not doc or not all(isinstance(e, dict) for e in doc):
        raise CorruptImageError(f"{where}: manifest.json lists no image")
    entry = _choose_entry(doc, selector, where)
    config, layers = entry.get("Config"), entry.get("Layers")
    if not isinstance(config, str) or not isinstance(layers, list):
        raise CorruptImageError(f"{where}: manifest.json entry has no Config or Layers")
    if not all(isinstance(layer, str) for layer in layers):
        raise CorruptImageError(f"{where}: manifest.json Layers are not member names")
    return SaveManifest(_normalise(config), [_normalise(layer) for layer in layers])


def _repo_tags(entry: dict[str, Any]) -> list[str]:
    tags = entry.get("RepoTags")
    return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []


def _listing(doc: list[dict[str, Any]]) -> str:
    return "; ".join(
        f"@{i}: {', '.join(_repo_tags(entry)) or '(untagged)'}" for i, entry in enumerate(doc)
    )


def _same_name(a: str, b: str) -> bool:
    from portscan.sources.refs import canonical_name

    return a == b or canonical_name(a) == canonical_name(b)


def _choose_entry(doc: list[dict[str, Any]], selector: str | None, where: str) -> dict[str, Any]:
    """The entry the selector names (module docstring)."""
    if selector is None:
        if len(doc) == 1:
            return doc[0]
        raise UsageError(
            f"{where} holds {len(doc)} images; name one as docker-archive:PATH:REPO:TAG or "
            "docker-archive:PATH@N",
            f"images: {_listing(doc)}",
        )
    if selector.startswith("@"):
        index = int(selector[1:])
        if index < len(doc):
            return doc[index]
        raise ImageNotFoundError(
            f"{where} has no image @{index} (it holds {len(doc)})", f"images: {_listing(doc)}"
        )
    for entry in doc:
        if any(_same_name(selector, tag) for tag in _repo_tags(entry)):
            return entry
    raise ImageNotFoundError(
        f"{where} holds no image tagged {selector}", f"images: {_listing(doc)}"
    )


def _normalise(name: str) -> str:
    return posixpath.normpath(name.lstrip("/")).lstrip("/")


def _compression(head: bytes) -> str:
    """'gzip', 'zstd', 'bzip2', 'xz' or 'tar' (anything else), from magic bytes."""
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return "zstd"
    if head.startswith(b"BZh"):
        return "bzip2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    return "tar"


def _looks_like_layer(head: bytes) -> bool:
    """A tar (ustar magic, or an empty tar's zero block) or a compressed blob."""
    if _compression(head) in ("gzip", "zstd"):
        return True
    return head[257:262] == b"ustar" or (len(head) == _HEAD and not head.strip(b"\0"))


def _looks_like_json(head: bytes) -> bool:
    return head.lstrip()[:1] in (b"{", b"[")


def _named_digest(member: str) -> str | None:
    """The digest a member's name carries: `blobs/sha256/<hex>`, `<hex>.json`, ..."""
    match = _NAMED_DIGEST.search(member)
    if match is None:
        return None
    algorithm = match["alg"] or _ALGORITHM_BY_LENGTH[len(match["hex"])]
    return f"{algorithm}:{match['hex']}"


def _resolve_member(name: str, links: dict[str, str]) -> str:
    """Follow symlink and hard-link members (as podman and Docker write for shared layers)."""
    for _ in range(_MAX_LINK_HOPS):
        if name not in links:
            return name
        name = links[name]
    raise CorruptImageError(f"archive member {name} is a link loop")


def _link_target(member: tarfile.TarInfo) -> str:
    if member.issym():
        return _normalise(posixpath.join(posixpath.dirname(member.name), member.linkname))
    return _normalise(member.linkname)  # hard links name the member from the archive root


def _layer_descriptor(
    member: str, size: int, compression: str, diff_id: str, where: str
) -> LayerDescriptor:
    """The descriptor `read_layer` verifies a layer member against (module docstring)."""
    if compression == "tar":
        digest = diff_id
    else:
        named = _named_digest(member)
        if named is None:
            raise CorruptImageError(
                f"{where}: layer {member} is {compression}-compressed and its name carries no "
                "digest, so it cannot be verified",
                "re-save the image with `docker save`",
            )
        digest = named
    return LayerDescriptor(digest, size, MEDIA_TYPES.get(compression, MEDIA_TYPES["tar"]), diff_id)


def _parse_config(
    data: bytes | None, manifest: SaveManifest, where: str, warnings: list[str]
) -> tuple[dict[str, Any], ImageConfig]:
    if data is None:
        raise CorruptImageError(f"{where}: manifest.json names config {manifest.config}, absent")
    named = _named_digest(manifest.config)
    if named is not None:
        verify_digest(data, named, f"{where}: config {manifest.config}")
    what = f"{where}: config {manifest.config}"
    return parse_config(data, len(manifest.layers), what, warnings)


def _image_digest(
    config_bytes: bytes, read_json: Callable[[str], bytes | None], warnings: list[str]
) -> str:
    """The manifest digest from an OCI index in the archive, else the image id.

    manifest.json is what `docker load` reads; an `index.json` beside it only names
    the manifest digest, so one that cannot be read (Docker writes `"manifests": null`
    for some images) costs that digest, with a warning, not the scan."""
    image_id = sha256_digest(config_bytes)
    pending: list[tuple[str, str | None]] = [("index.json", None)]
    for _ in range(3):  # index.json -> (index ->) manifest
        found: list[tuple[str, str | None]] = []
        for name, digest in pending:
            data = read_json(name)
            if data is None:
                continue
            if digest is not None:
                verify_digest(data, digest, f"archive member {name}")
            try:
                document = parse_document(data, None, name)
            except CorruptImageError as exc:
                if name != "index.json":
                    raise
                warnings.append(f"{exc.message}; the image id stands for the digest")
                return image_id
            if isinstance(document, ImageManifest) and document.config.digest == image_id:
                return digest or image_id
            if isinstance(document, ImageIndex):
                found += [(_blob_member(d.digest), d.digest) for d in document.manifests]
        pending = found
    return image_id


def _blob_member(digest: str) -> str:
    algorithm, _, hexdigest = digest.partition(":")
    return f"blobs/{algorithm}/{hexdigest}"


def _build_meta(
    reference: str,
    source: SourceKind,
    digest: str | None,
    config_doc: dict[str, Any],
    config: ImageConfig,
    layers: list[LayerDescriptor],
    fallback_platform: Platform,
) -> ImageMeta:
    return ImageMeta(
        reference=reference,
        source=source,
        digest=digest,
        platform=config_platform(config_doc) or fallback_platform,
        config=config,
        layers=layers,
    )


# --------------------------------------------------------------------------- from a file


class ArchiveImageSource(BlobImageSource):
    """A `docker save` tar on disk, read in place: tarfile's member index plus
    `extractfile`, so layers are streamed from the file and never extracted."""

    def __init__(
        self,
        archive: tarfile.TarFile,
        reference: str,
        platform: Platform,
        selector: str | None = None,
    ) -> None:
        self._archive = archive
        where = archive.name or reference
        members = {_normalise(m.name): m for m in archive.getmembers()}
        links = {n: _link_target(m) for n, m in members.items() if m.issym() or m.islnk()}
        regular = {n: m for n, m in members.items() if m.isreg()}

        def read_json(name: str) -> bytes | None:
            member = regular.get(_resolve_member(_normalise(name), links))
            if member is None:
                return None
            if not 0 <= member.size <= MAX_DOCUMENT_BYTES:
                raise CorruptImageError(
                    f"{where}: {name} is {member.size} bytes, not a JSON document's size "
                    f"(at most {MAX_DOCUMENT_BYTES})"
                )
            return self._read(member)

        manifest = parse_save_manifest(read_json("manifest.json"), where, selector)
        config_bytes = read_json(manifest.config)
        warnings: list[str] = []
        doc, config = _parse_config(config_bytes, manifest, where, warnings)
        assert config_bytes is not None  # _parse_config raised otherwise
        self._blobs: dict[str, tarfile.TarInfo] = {}
        layers = []
        for name, diff_id in zip(manifest.layers, config.diff_ids, strict=True):
            member = regular.get(_resolve_member(name, links))
            if member is None:
                raise CorruptImageError(f"{where}: manifest.json names layer {name}, absent")
            head = self._read(member, _HEAD)
            descriptor = _layer_descriptor(name, member.size, _compression(head), diff_id, where)
            self._blobs[descriptor.digest] = member
            layers.append(descriptor)
        digest = _image_digest(config_bytes, read_json, warnings)
        self.meta = _build_meta(
            reference, SourceKind.DOCKER_ARCHIVE, digest, doc, config, layers, platform
        )
        self.meta.warnings.extend(warnings)

    def _read(self, member: tarfile.TarInfo, size: int = -1) -> bytes:
        handle = self._archive.extractfile(member)
        return handle.read(size) if handle is not None else b""

    @contextlib.contextmanager
    def open_blob(self, descriptor: LayerDescriptor) -> Iterator[BinaryIO]:
        handle = self._archive.extractfile(self._blobs[descriptor.digest])
        if handle is None:  # pragma: no cover - only regular members are indexed
            raise CorruptImageError(f"layer {descriptor.digest} is not a file in the archive")
        with handle:
            yield handle

    def close(self) -> None:
        self._archive.close()


# --------------------------------------------------------------------------- from a stream


class ChunkStream(io.RawIOBase):
    """A readable stream over an iterator of byte chunks (docker's `image.save`, a
    generated tar); wrap it in `io.BufferedReader` for full reads."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._current = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._current:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._current = memoryview(chunk)
        n = min(len(buffer), len(self._current))
        buffer[:n] = self._current[:n]
        self._current = self._current[n:]
        return n


class HashingStream(io.RawIOBase):
    """Passes a stream through, computing its sha256 and length on the way."""

    def __init__(self, raw: BinaryIO, head: bytes = b"") -> None:
        self._raw = raw
        self._head = head
        self._hash = hashlib.sha256()
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            data, self._head = self._head[:n], self._head[n:]
        else:
            data = self._raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self._hash.update(data)
        self.count += n
        return n

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()


@dataclass
class _StreamedLayer:
    result: LayerResult
    digest: str  # sha256 of the member as stored
    size: int
    compression: str


class StreamingArchiveSource(ImageSource):
    """A `docker save` tar read once, in order, from a non-seekable stream.

    Every member that looks like a layer (tar or compressed magic) goes to the reader
    as it streams by; small JSON members are kept. When the stream ends, manifest.json
    orders the results and every layer's sha256 is checked as in the module docstring.
    Progress events name a provisional descriptor (the member name as digest), since
    a member's digest is known only once it has been read. The reader is handed a
    descriptor whose digest is None (nothing to verify yet), so a reader that caches
    by digest must pass such layers through. In an archive of several images, every
    layer is read but only those of the image `selector` names are used (see
    `parse_save_manifest`; a stream cannot be read twice, so an archive of several
    images without a selector is refused only once it has been read).
    """

    def __init__(
        self,
        open_stream: Callable[[], AbstractContextManager[BinaryIO]],
        reference: str,
        source: SourceKind,
        platform: Platform,
        digest: str | None = None,
        on_close: Callable[[], None] | None = None,
        selector: str | None = None,
    ) -> None:
        self._selector = selector
        self._open_stream = open_stream
        self._reference = reference
        self._source = source
        self._platform = platform
        self._digest = digest
        self._on_close = on_close

    def read_layers(
        self, reader: LayerReader, progress: ScanProgress | None = None
    ) -> tuple[ImageMeta, list[LayerResult]]:
        documents: dict[str, bytes] = {}
        layers: dict[str, _StreamedLayer] = {}
        links: dict[str, str] = {}
        with self._open_stream() as stream:
            try:
                with tarfile.open(fileobj=stream, mode="r|*") as archive:
                    for member in archive:
                        self._take(archive, member, reader, progress, documents, layers, links)
            except (tarfile.TarError, EOFError, OSError, zstandard.ZstdError) as exc:
                raise CorruptImageError(
                    f"{self._reference} is not a readable tar stream ({exc})", _NOT_AN_ARCHIVE_HINT
                ) from None
        return self._assemble(documents, layers, links)

    def close(self) -> None:
        if self._on_close is not None:
            self._on_close()

    def _take(
        self,
        archive: tarfile.TarFile,
        member: tarfile.TarInfo,
        reader: LayerReader,
        progress: ScanProgress | None,
        documents: dict[str, bytes],
        layers: dict[str, _StreamedLayer],
        links: dict[str, str],
    ) -> None:
        name = _normalise(member.name)
        if member.issym() or member.islnk():
            links[name] = _link_target(member)
            return
        handle = archive.extractfile(member) if member.isreg() else None
        if handle is None:
            return
        head = handle.read(_HEAD)
        if _looks_like_layer(head):
            layers[name] = self._read_layer(name, member.size, head, handle, reader, progress)
        elif _looks_like_json(head) and member.size <= MAX_DOCUMENT_BYTES:
            documents[name] = head + handle.read()

    @staticmethod
    def _read_layer(
        name: str,
        size: int,
        head: bytes,
        handle: BinaryIO,
        reader: LayerReader,
        progress: ScanProgress | None,
    ) -> _StreamedLayer:
        compression = _compression(head)
        media_type = MEDIA_TYPES.get(compression, MEDIA_TYPES["tar"])
        provisional = LayerDescriptor(_named_digest(name) or name, size, media_type)
        hashed = HashingStream(handle, head)
        blob = io.BufferedReader(hashed, _CHUNK)
        # The digest is checked after the stream, against manifest.json and the config.
        unverified = LayerDescriptor(None, size, media_type)  # type: ignore[arg-type]
        if progress:
            progress.layer_started(provisional)
        advance = (lambda n: progress.layer_advanced(provisional, n)) if progress else None
        result = reader(blob, unverified, advance)
        if progress:
            progress.layer_finished(provisional)
        return _StreamedLayer(result, hashed.digest, hashed.count, compression)

    def _assemble(
        self, documents: dict[str, bytes], layers: dict[str, _StreamedLayer], links: dict[str, str]
    ) -> tuple[ImageMeta, list[LayerResult]]:
        where = self._reference

        def read_json(name: str) -> bytes | None:
            return documents.get(_resolve_member(_normalise(name), links))

        manifest = parse_save_manifest(read_json("manifest.json"), where, self._selector)
        config_bytes = read_json(manifest.config)
        warnings: list[str] = []
        doc, config = _parse_config(config_bytes, manifest, where, warnings)
        assert config_bytes is not None  # _parse_config raised otherwise
        descriptors, results = [], []
        used: set[int] = set()
        for name, diff_id in zip(manifest.layers, config.diff_ids, strict=True):
            streamed = layers.get(_resolve_member(name, links))
            if streamed is None:
                raise CorruptImageError(f"{where}: manifest.json names layer {name}, absent")
            verifiable(diff_id, f"{where}: layer {name}: diff_id")
            descriptor = _layer_descriptor(
                name, streamed.size, streamed.compression, diff_id, where
            )
            if streamed.digest != descriptor.digest:
                raise CorruptImageError(
                    f"{where}: layer {name} does not match its digest {descriptor.digest} "
                    f"(read {streamed.digest})",
                    "the archive is corrupt or was tampered with; re-save the image",
                )
            read_diff_id = streamed.result.diff_id or diff_id
            if read_diff_id.split(":")[0] == diff_id.split(":")[0] and read_diff_id != diff_id:
                raise CorruptImageError(
                    f"{where}: layer {name}: its uncompressed tar is {streamed.result.diff_id}, "
                    f"the config's rootfs.diff_ids says {diff_id}",
                    "the archive is corrupt or was tampered with; re-save the image",
                )
            result = streamed.result
            if id(result) in used:  # the same layer twice: merging must not share lists
                result = replace(result, skipped=list(result.skipped))
            used.add(id(result))
            result.digest = descriptor.digest
            descriptors.append(descriptor)
            results.append(result)
        digest = self._digest or _image_digest(config_bytes, read_json, warnings)
        meta = _build_meta(where, self._source, digest, doc, config, descriptors, self._platform)
        meta.warnings.extend(warnings)
        return meta, results


def _open_compressed(path: Path) -> AbstractContextManager[BinaryIO]:
    """The file as a stream of tar bytes; tarfile's `r|*` undoes gzip, bzip2 and xz."""
    handle = path.open("rb")
    if _compression(handle.read(4)) != "zstd":
        handle.seek(0)
        return handle
    handle.seek(0)
    return zstandard.ZstdDecompressor().stream_reader(handle, closefd=True)


@contextlib.contextmanager
def _open_stdin() -> Iterator[BinaryIO]:
    """Standard input as a stream of tar bytes (zstd undone here, the rest by tarfile)."""
    stdin = sys.stdin.buffer
    if stdin.isatty():
        raise UsageError(
            "docker-archive:- reads an archive from standard input, which is a terminal",
            "pipe one in: docker save IMAGE | portscan image docker-archive:-",
        )
    if _compression(stdin.peek(4)[:4]) == "zstd":
        with zstandard.ZstdDecompressor().stream_reader(stdin, closefd=False) as reader:
            yield reader  # type: ignore[misc]
    else:
        yield stdin
