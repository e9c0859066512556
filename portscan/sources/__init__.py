"""Open an image from wherever it lives; every source returns an `ImageSource`."""

from __future__ import annotations

import logging

from portscan.model import ImageRef, SourceKind
from portscan.sources.base import ImageSource, SourceOptions

__all__ = ["ImageSource", "SourceOptions", "open_image"]

log = logging.getLogger(__name__)


def open_image(ref: ImageRef, options: SourceOptions) -> ImageSource:
    """Dispatch on the reference kind. A bare NAME tries a local daemon first."""
    if ref.kind is SourceKind.REGISTRY:
        if not ref.explicit_kind:
            from portscan.sources import daemon

            local = daemon.try_open_daemon_image(ref, options)
            if local is not None:
                return local
            from portscan.sources import registry

            if options.offline:
                raise registry.offline_error(f"{ref.original} is not in a local engine, so it")
            log.debug("%s: not in a local daemon; falling back to the registry", ref.original)
        from portscan.sources import registry

        return registry.open_registry_image(ref, options)
    if ref.kind is SourceKind.DOCKER:
        from portscan.sources import daemon

        return daemon.open_daemon_image(ref, options)
    if ref.kind is SourceKind.PODMAN:
        from portscan.sources import daemon

        return daemon.open_podman_image(ref, options)
    if ref.kind is SourceKind.OCI_ARCHIVE:
        from portscan.sources import oci_archive

        return oci_archive.open_oci_archive_image(ref, options)
    if ref.kind is SourceKind.DOCKER_ARCHIVE:
        from portscan.sources import archive

        return archive.open_archive_image(ref, options)
    if ref.kind is SourceKind.OCI:
        from portscan.sources import oci_layout

        return oci_layout.open_oci_layout_image(ref, options)
    from portscan.sources import rootfs

    return rootfs.open_rootfs_image(ref, options)
