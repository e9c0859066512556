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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from portscan.errors import CorruptImageError, PlatformNotFoundError
from portscan.model import ImageConfig, ImageMeta, LayerDescriptor, Platform, SourceKind
from portscan.sources.validate import (
    MAX_DOCUMENT_BYTES,
    Fields,
    descriptor_extras,
    image_config,
    json_type,
    load_json,
    media_type,
    verifiable,
)
from portscan.sources.validate import digest as check_digest

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
# Docker Hub serves some schema 2 manifests whose config type is octet-stream; Docker,
# containerd and go-containerregistry read those configs as image configs.
IMAGE_CONFIG_TYPES = (OCI_CONFIG, DOCKER_CONFIG, "application/octet-stream")
LAYER_TYPES = frozenset(
    f"application/vnd.{kind}{suffix}"
    for kind in ("oci.image.layer.v1.tar", "oci.image.layer.nondistributable.v1.tar")
    for suffix in ("", "+gzip", "+zstd")
) | {
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar.zstd",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
}
ACCEPT = ", ".join((*MANIFEST_TYPES, *INDEX_TYPES))  # the HTTP Accept header for manifests

MAX_INDEX_DEPTH = 4
REF_NAME = "org.opencontainers.image.ref.name"
__all__ = ["MAX_DOCUMENT_BYTES"]  # re-exported: the sources import it from here
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
    def from_json(cls, doc: Any, where: str, name: str = "descriptor") -> Descriptor:
        """A descriptor as the image spec defines it (descriptor.md): a digest, a size
        >= 0 and a media type; `CorruptImageError` naming field `name` otherwise."""
        if not isinstance(doc, dict):
            raise CorruptImageError(f"{where}: {name} is {json_type(doc)}, not a descriptor")
        digest = check_digest(doc.get("digest"), where, name)
        size = doc.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise CorruptImageError(
                f"{where}: {name}.size of {digest} is {size!r}, not a byte count >= 0"
            )
        fields = Fields(doc, where, name)
        kind = media_type(doc.get("mediaType"), where, f"{name}.mediaType")
        descriptor_extras(fields)
        platform = None
        if doc.get("platform") is not None:
            raw = fields.obj("platform")
            os_name, arch = raw.string("os"), raw.string("architecture")
            if not os_name or not arch:
                raise CorruptImageError(
                    f"{where}: {name}.platform needs both os and architecture (image-index.md)"
                )
            platform = Platform(os_name, arch, raw.string("variant") or None)
        return cls(kind, digest, size, platform, fields.string_map("annotations"))

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
    warnings: list[str] = field(default_factory=list)  # allowed, but worth saying


@dataclass(frozen=True)
class ImageIndex:
    media_type: str
    manifests: list[Descriptor]
    warnings: list[str] = field(default_factory=list)


def verify_digest(data: bytes, digest: str, what: str) -> None:
    """Raise `CorruptImageError` unless `data` hashes to `digest` (`what` names the blob;
    refused as `validate.verifiable` says for an algorithm portscan does not verify)."""
    algorithm, _, expected = verifiable(digest, what).partition(":")
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
    doc = load_json(data, f"{where}: manifest")
    if not isinstance(doc, dict):
        raise CorruptImageError(f"{where}: manifest is not a JSON object")
    if doc.get("schemaVersion") == 1:
        raise CorruptImageError(f"{where}: {_SCHEMA1_MESSAGE}")
    kind = _document_type(doc, media_type)
    warnings: list[str] = []
    if doc.get("subject") is not None:  # referrers API (image spec 1.1): a descriptor
        Descriptor.from_json(doc["subject"], where, "subject")
    if kind in INDEX_TYPES:
        entries = doc.get("manifests")
        if not isinstance(entries, list):
            raise CorruptImageError(f"{where}: index has no manifests list")
        descriptors = [
            Descriptor.from_json(e, where, f"manifests[{i}]") for i, e in enumerate(entries)
        ]
        return ImageIndex(kind, descriptors, warnings)
    if kind in MANIFEST_TYPES:
        layers = doc.get("layers")
        if not isinstance(layers, list) or "config" not in doc:
            raise CorruptImageError(f"{where}: manifest has no config or layers")
        config = Descriptor.from_json(doc["config"], where, "config")
        if config.size > MAX_DOCUMENT_BYTES:
            raise CorruptImageError(
                f"{where}: config blob {config.digest} is {config.size} bytes, "
                f"more than the {MAX_DOCUMENT_BYTES} allowed for a config"
            )
        descriptors = [Descriptor.from_json(e, where, f"layers[{i}]") for i, e in enumerate(layers)]
        if not descriptors and kind == OCI_MANIFEST:  # the image spec's schema: minItems 1
            raise CorruptImageError(f"{where}: the manifest's layers list is empty")
        if not descriptors:
            warnings.append(f"{where}: the manifest lists no layers; the image is empty")
        for i, layer in enumerate(descriptors):
            if layer.media_type and layer.media_type not in LAYER_TYPES:
                warnings.append(
                    f"{where}: layers[{i}] has media type {layer.media_type}, not a layer type; "
                    "read as a layer by its bytes"
                )
        return ImageManifest(kind, config, descriptors, warnings)
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
    caller can descend into them (the OCI layout writes such nested indexes). Failing
    both, the first image manifest without a platform (the field is optional in the
    image spec) is returned: its config then says which platform the image is for."""
    nested: Descriptor | None = None
    unplatformed: Descriptor | None = None
    for entry in index.manifests:
        if entry.is_attestation:
            continue
        if entry.platform is not None and _matches(platform, entry.platform):
            return entry
        if entry.platform is None and entry.media_type in INDEX_TYPES and nested is None:
            nested = entry
        elif entry.platform is None and unplatformed is None:
            unplatformed = entry
    if nested is not None or unplatformed is not None:
        return nested or unplatformed  # type: ignore[return-value]
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
    warnings: list[str] = []
    for _ in range(MAX_INDEX_DEPTH + 1):
        warnings += document.warnings
        if isinstance(document, ImageManifest):
            document.warnings[:] = warnings
            return document, digest, claimed
        entry = choose_platform(document, platform, where)
        if entry.size > MAX_DOCUMENT_BYTES:
            raise CorruptImageError(
                f"{where}: manifest {entry.digest} is {entry.size} bytes, "
                f"more than the {MAX_DOCUMENT_BYTES} allowed"
            )
        if entry.platform is None and entry.media_type not in INDEX_TYPES:
            warnings.append(
                f"{where}: no index entry is for platform {platform}; took one that names "
                "no platform (its config says which it is)"
            )
        claimed = entry.platform or claimed
        digest = entry.digest
        document = parse_document(fetch(entry), entry.media_type or None, where)
    raise CorruptImageError(f"{where}: indexes nest deeper than {MAX_INDEX_DEPTH} levels")


def parse_config(
    data: bytes, layer_count: int, where: str, warnings: list[str] | None = None
) -> tuple[dict[str, Any], ImageConfig]:
    """An image config document, type-checked (`validate.image_config`), with one
    diff_id per layer; what was dropped is appended to `warnings`."""
    doc = load_json(data, where)
    if not isinstance(doc, dict):
        raise CorruptImageError(f"{where} is not a JSON object")
    config, dropped = image_config(doc, where)
    if warnings is not None:
        warnings += dropped
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
    warnings = list(manifest.warnings)
    doc, config = parse_config(
        config_bytes, len(manifest.layers), f"{where}: config blob", warnings
    )
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
        warnings=warnings,
    )


def config_platform(doc: dict[str, Any]) -> Platform | None:
    """The platform an image config declares (`os`, `architecture`, `variant`)."""
    os_name, arch = doc.get("os"), doc.get("architecture")
    if isinstance(os_name, str) and isinstance(arch, str) and os_name and arch:
        variant = doc.get("variant")
        return Platform(os_name, arch, variant if isinstance(variant, str) and variant else None)
    return None
