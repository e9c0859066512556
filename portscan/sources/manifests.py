"""Parse image manifests and indexes, choose a platform, and build an `ImageMeta`.

Shared by the registry and OCI layout sources; neither knows how the other fetches
bytes. Four document types are understood (OCI image spec v1.1, Docker image manifest
v2 schema 2):

    application/vnd.oci.image.manifest.v1+json                    image manifest
    application/vnd.docker.distribution.manifest.v2+json          image manifest
    application/vnd.oci.image.index.v1+json                       index
    application/vnd.docker.distribution.manifest.list.v2+json     index

A document's type is its own `mediaType` field when set, else the type its transport
named (HTTP Content-Type, or the media type of the descriptor that pointed at it), else
sniffed: `manifests` means an index, `config` and `layers` an image manifest (umoci and
some older tools write OCI manifests without `mediaType`). Docker schema 1 is refused.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from portscan.errors import CorruptImageError, PlatformNotFoundError
from portscan.model import ImageConfig, ImageMeta, LayerDescriptor, Platform, SourceKind

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
SCHEMA1_TYPES = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
IMAGE_CONFIG_TYPES = (OCI_CONFIG, DOCKER_CONFIG)
ACCEPT = ", ".join((*MANIFEST_TYPES, *INDEX_TYPES))  # the HTTP Accept header for manifests

MAX_DOCUMENT_BYTES = 16 << 20  # manifests and configs are read whole; refuse absurd sizes
MAX_INDEX_DEPTH = 4
REF_NAME = "org.opencontainers.image.ref.name"
_DIGEST = re.compile(r"^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$")
_SCHEMA1_MESSAGE = "schema 1 manifests are not supported, re-push the image"


@dataclass(frozen=True)
class Descriptor:
    """A content descriptor: what a manifest or index says about one blob."""

    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, doc: Any, where: str) -> Descriptor:
        if not isinstance(doc, dict):
            raise CorruptImageError(f"{where}: a descriptor is not a JSON object")
        digest = doc.get("digest")
        size = doc.get("size", -1)
        if not isinstance(digest, str) or not _DIGEST.match(digest):
            raise CorruptImageError(f"{where}: invalid digest {digest!r} in a descriptor")
        if not isinstance(size, int):
            raise CorruptImageError(f"{where}: invalid size {size!r} for {digest}")
        platform = None
        raw = doc.get("platform")
        if isinstance(raw, dict) and raw.get("os") and raw.get("architecture"):
            platform = Platform(str(raw["os"]), str(raw["architecture"]), raw.get("variant"))
        annotations = doc.get("annotations") or {}
        return cls(str(doc.get("mediaType") or ""), digest, size, platform, dict(annotations))

    @property
    def is_attestation(self) -> bool:
        """BuildKit stores provenance under platform unknown/unknown; never an image."""
        return self.annotations.get("vnd.docker.reference.type") == "attestation-manifest" or (
            self.platform is not None and self.platform.os == "unknown"
        )


@dataclass(frozen=True)
class ImageManifest:
    media_type: str
    config: Descriptor
    layers: list[Descriptor]


@dataclass(frozen=True)
class ImageIndex:
    media_type: str
    manifests: list[Descriptor]


def verify_digest(data: bytes, digest: str, what: str) -> None:
    """Raise `CorruptImageError` unless `data` hashes to `digest`."""
    algorithm, _, expected = digest.partition(":")
    if algorithm not in ("sha256", "sha512"):
        raise CorruptImageError(f"{what}: unsupported digest algorithm in {digest}")
    actual = hashlib.new(algorithm, data).hexdigest()
    if actual != expected:
        raise CorruptImageError(
            f"{what} does not match its digest {digest} (read {algorithm}:{actual})",
            "the content is corrupt or was tampered with; re-push or re-save the image",
        )


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def parse_document(data: bytes, media_type: str | None, where: str) -> ImageManifest | ImageIndex:
    """Parse manifest or index bytes; `media_type` is what the transport said it is."""
    if media_type in SCHEMA1_TYPES:
        raise CorruptImageError(f"{where}: {_SCHEMA1_MESSAGE}")
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptImageError(f"{where}: manifest is not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise CorruptImageError(f"{where}: manifest is not a JSON object")
    if doc.get("schemaVersion") == 1:
        raise CorruptImageError(f"{where}: {_SCHEMA1_MESSAGE}")
    kind = _document_type(doc, media_type)
    if kind in INDEX_TYPES:
        entries = doc.get("manifests")
        if not isinstance(entries, list):
            raise CorruptImageError(f"{where}: index has no manifests list")
        return ImageIndex(kind, [Descriptor.from_json(e, where) for e in entries])
    if kind in MANIFEST_TYPES:
        layers = doc.get("layers")
        if not isinstance(layers, list) or "config" not in doc:
            raise CorruptImageError(f"{where}: manifest has no config or layers")
        config = Descriptor.from_json(doc["config"], where)
        return ImageManifest(kind, config, [Descriptor.from_json(e, where) for e in layers])
    raise CorruptImageError(
        f"{where}: unsupported manifest type {kind or 'unknown'}",
        "portscan reads OCI and Docker schema 2 image manifests and indexes",
    )


def _document_type(doc: dict[str, Any], transport_type: str | None) -> str:
    own = doc.get("mediaType")
    if isinstance(own, str) and own:
        return own
    if transport_type in (*MANIFEST_TYPES, *INDEX_TYPES):
        return transport_type
    if "manifests" in doc:
        return OCI_INDEX
    if "layers" in doc and "config" in doc:
        return OCI_MANIFEST
    return transport_type or ""


def choose_platform(index: ImageIndex, platform: Platform, where: str) -> Descriptor:
    """The first entry for `platform`, else `PlatformNotFoundError` naming what there is.

    Entries without a platform that are themselves indexes are returned too, so the
    caller can descend into them (the OCI layout writes such nested indexes)."""
    nested: Descriptor | None = None
    for entry in index.manifests:
        if entry.is_attestation:
            continue
        if entry.platform is not None and _matches(platform, entry.platform):
            return entry
        if entry.platform is None and entry.media_type in INDEX_TYPES and nested is None:
            nested = entry
    if nested is not None:
        return nested
    available = sorted(
        {str(e.platform) for e in index.manifests if e.platform and not e.is_attestation}
    )
    raise PlatformNotFoundError(
        f"{where} has no image for platform {platform}; it has {', '.join(available) or 'none'}",
        "pass --platform with one of those",
    )


def _matches(wanted: Platform, offered: Platform) -> bool:
    """`Platform.matches`, with arm64's implied variant v8 (as containerd normalises it)."""
    if offered.architecture == "arm64" and offered.variant is None:
        offered = Platform(offered.os, offered.architecture, "v8")
    return wanted.matches(offered)


FetchDocument = Callable[[Descriptor], bytes]


def resolve_manifest(
    document: ImageManifest | ImageIndex,
    digest: str,
    fetch: FetchDocument,
    platform: Platform,
    where: str,
) -> tuple[ImageManifest, str, Platform | None]:
    """Follow indexes down to one image manifest by platform choice.

    `fetch` returns a document's bytes by descriptor, already digest-checked. Returns
    the manifest, its digest and the platform the index claimed for it (if any)."""
    claimed: Platform | None = None
    for _ in range(MAX_INDEX_DEPTH + 1):
        if isinstance(document, ImageManifest):
            return document, digest, claimed
        entry = choose_platform(document, platform, where)
        claimed = entry.platform or claimed
        digest = entry.digest
        document = parse_document(fetch(entry), entry.media_type or None, where)
    raise CorruptImageError(f"{where}: indexes nest deeper than {MAX_INDEX_DEPTH} levels")


def parse_config(data: bytes, layer_count: int, where: str) -> tuple[dict[str, Any], ImageConfig]:
    """An image config document, checked to be a JSON object with one diff_id per layer."""
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptImageError(f"{where} is not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise CorruptImageError(f"{where} is not a JSON object")
    config = ImageConfig.from_json(doc)
    if len(config.diff_ids) != layer_count:
        raise CorruptImageError(
            f"{where}: the manifest lists {layer_count} layers "
            f"but the config has {len(config.diff_ids)} diff_ids"
        )
    return doc, config


def build_meta(
    manifest: ImageManifest,
    digest: str,
    config_bytes: bytes,
    reference: str,
    source: SourceKind,
    fallback_platform: Platform,
) -> ImageMeta:
    """Verify and parse the config blob and pair each layer with its diff_id."""
    where = reference
    if manifest.config.media_type and manifest.config.media_type not in IMAGE_CONFIG_TYPES:
        raise CorruptImageError(
            f"{where} is not a container image (config type {manifest.config.media_type})",
            "point portscan at an image, not an OCI artifact",
        )
    verify_digest(config_bytes, manifest.config.digest, f"{where}: config blob")
    doc, config = parse_config(config_bytes, len(manifest.layers), f"{where}: config blob")
    layers = [
        LayerDescriptor(layer.digest, layer.size, layer.media_type, diff_id)
        for layer, diff_id in zip(manifest.layers, config.diff_ids, strict=True)
    ]
    return ImageMeta(
        reference=reference,
        source=source,
        digest=digest,
        platform=config_platform(doc) or fallback_platform,
        config=config,
        layers=layers,
    )


def config_platform(doc: dict[str, Any]) -> Platform | None:
    """The platform an image config declares (`os`, `architecture`, `variant`)."""
    os_name, arch = doc.get("os"), doc.get("architecture")
    if isinstance(os_name, str) and isinstance(arch, str) and os_name and arch:
        variant = doc.get("variant")
        return Platform(os_name, arch, variant if isinstance(variant, str) and variant else None)
    return None
