"""Open an image from wherever it lives; every source returns an `ImageSource`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from portscan.model import ImageRef, Platform, SourceKind
from portscan.sources.base import ImageSource


@dataclass(frozen=True)
class SourceOptions:
    """How to reach the image: platform choice, transport security, credentials."""

    platform: Platform = field(default_factory=Platform)
    insecure: bool = False  # allow plain HTTP and unverified TLS for the registry
    docker_config: Path | None = None  # default: $DOCKER_CONFIG/config.json or ~/.docker/
    username: str | None = None
    password: str | None = None
    timeout: float = 60.0


def open_image(ref: ImageRef, options: SourceOptions) -> ImageSource:
    """Dispatch on the reference kind. A bare NAME tries a local daemon first."""
    if ref.kind is SourceKind.REGISTRY:
        if not ref.explicit_kind:
            from portscan.sources import daemon

            local = daemon.try_open_daemon_image(ref, options)
            if local is not None:
                return local
        from portscan.sources import registry

        return registry.open_registry_image(ref, options)
    if ref.kind is SourceKind.DOCKER:
        from portscan.sources import daemon

        return daemon.open_daemon_image(ref, options)
    if ref.kind is SourceKind.DOCKER_ARCHIVE:
        from portscan.sources import archive

        return archive.open_archive_image(ref, options)
    if ref.kind is SourceKind.OCI:
        from portscan.sources import oci_layout

        return oci_layout.open_oci_layout_image(ref, options)
    from portscan.sources import rootfs

    return rootfs.open_rootfs_image(ref, options)
