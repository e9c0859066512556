"""What every image source returns: metadata plus a way to read its layers once."""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

from portscan.model import (
    ImageMeta,
    LayerDescriptor,
    LayerResult,
    Platform,
    ProgressFn,
)
from portscan.sources.validate import verifiable

# Reads one layer blob; the result's facts may still be Futures (layers.settle_facts)
LayerReader = Callable[[BinaryIO, LayerDescriptor, "ProgressFn | None"], LayerResult]


@dataclass(frozen=True)
class SourceOptions:
    """How to reach the image: platform choice, transport security, credentials."""

    platform: Platform = field(default_factory=Platform)
    insecure: bool = False  # allow plain HTTP and unverified TLS for the registry
    docker_config: Path | None = None  # default: $DOCKER_CONFIG/config.json or ~/.docker/
    username: str | None = None
    password: str | None = None
    timeout: float = 60.0
    ca_certs: tuple[Path, ...] = ()  # --ca-cert: CAs trusted besides the OS store and certifi
    authfile: Path | None = None  # --authfile: a podman/skopeo auth.json read instead of others
    offline: bool = False  # --offline: no registry, no network fallback


class ScanProgress(Protocol):
    """Receives progress events; the CLI draws bars from them, tests may record them."""

    def layer_started(self, descriptor: LayerDescriptor) -> None: ...

    def layer_advanced(self, descriptor: LayerDescriptor, nbytes: int) -> None: ...

    def layer_finished(self, descriptor: LayerDescriptor) -> None: ...


class ImageSource(abc.ABC):
    """One image, opened; `read_layers` streams each layer exactly once."""

    @abc.abstractmethod
    def read_layers(
        self, reader: LayerReader, progress: ScanProgress | None = None
    ) -> tuple[ImageMeta, list[LayerResult]]:
        """Read every layer with `reader`; results are in manifest order (base first)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections or file handles."""

    def __enter__(self) -> ImageSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BlobImageSource(ImageSource):
    """A source whose metadata is known up front and whose blobs open by descriptor
    (registry, OCI layout, docker-archive file)."""

    meta: ImageMeta

    @abc.abstractmethod
    def open_blob(self, descriptor: LayerDescriptor) -> AbstractContextManager[BinaryIO]:
        """A readable stream of the raw blob bytes, as stored."""

    def layer_digest(self, descriptor: LayerDescriptor) -> LayerDescriptor:
        """The descriptor whose digest `read_layer` should verify (overridable)."""
        return descriptor

    def read_layers(
        self, reader: LayerReader, progress: ScanProgress | None = None
    ) -> tuple[ImageMeta, list[LayerResult]]:
        check_verifiable(self.meta)
        return self.meta, list(self._iter_layers(reader, progress))

    def _iter_layers(
        self, reader: LayerReader, progress: ScanProgress | None
    ) -> Iterator[LayerResult]:
        for descriptor in self.meta.layers:
            if progress:
                progress.layer_started(descriptor)
            advance = (lambda n, d=descriptor: progress.layer_advanced(d, n)) if progress else None
            with self.open_blob(descriptor) as blob:
                yield reader(blob, self.layer_digest(descriptor), advance)
            if progress:
                progress.layer_finished(descriptor)


def check_verifiable(meta: ImageMeta) -> None:
    """Refuse, before a byte of any layer is read, an image with a layer digest or
    diff_id portscan cannot verify (`validate.verifiable`)."""
    for i, layer in enumerate(meta.layers):
        if layer.digest:
            verifiable(layer.digest, f"{meta.reference}: layer blob")
        if layer.diff_id:
            verifiable(layer.diff_id, f"{meta.reference}: rootfs.diff_ids[{i}]")
