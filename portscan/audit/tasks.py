"""The units of work of an audit, run the same way by the local pool and by Dask.

- `analyse_layer` streams one layer blob from the registry and returns its
  `LayerResult` in stored form (`cache.encode_layer`).
- `assemble_image` turns an image's stored layers into a scan result with the very
  pipeline of `portscan image` (`scan.scan_image` on a `StoredLayersImage`), and
  returns the result's JSON document plus the fleet summary.

Tasks take and return plain picklable data, never touch the store (the client process
alone writes it), and report failures as values: one broken image must not stop an
audit of thousands.
"""

from __future__ import annotations

import contextlib
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from portscan.audit.cache import StoredWalks
from portscan.audit.fleet import image_summary
from portscan.audit.keys import decode_layer, encode_layer
from portscan.audit.store import Store
from portscan.codec import render
from portscan.errors import StoreError, describe
from portscan.layers import read_layer
from portscan.model import ImageMeta, LayerDescriptor
from portscan.scan import ScanOptions, analysers_for, scan_image
from portscan.sources.auth import load_credentials
from portscan.sources.registry import RegistryClient, candidate_schemes, endpoint_host
from portscan.sources.stored import StoredLayersImage

_CLIENTS: dict[tuple[str, str], RegistryClient] = {}
_CLIENTS_LOCK = threading.Lock()
_MAX_CLIENTS = 32


# --------------------------------------------------------------------------- layers


@dataclass(frozen=True)
class LayerTask:
    """Analyse one layer blob of `repository` on `registry`."""

    registry: str
    repository: str
    descriptor: LayerDescriptor
    options: ScanOptions


@dataclass
class LayerOutcome:
    digest: str
    data: bytes = b""  # the stored form of the LayerResult
    compressed_bytes: int = 0
    uncompressed_bytes: int = 0
    entries: int = 0
    seconds: float = 0.0
    error: str | None = None


def _client(registry: str, repository: str, task_options: ScanOptions) -> RegistryClient:
    """A connected client, kept per worker process for the next layer of the repository."""
    key = (registry, repository)
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is not None:
            return client
        if len(_CLIENTS) >= _MAX_CLIENTS:
            _CLIENTS.pop(next(iter(_CLIENTS))).close()
        options = task_options.source
        credentials = load_credentials(
            registry,
            options.username,
            options.password,
            options.docker_config,
            authfile=options.authfile,
            repository=repository,
        )
        client = RegistryClient(
            registry,
            repository,
            credentials,
            candidate_schemes(endpoint_host(registry), options.insecure),
            timeout=options.timeout,
            ca_certs=options.ca_certs,
        )
        client.connect()
        _CLIENTS[key] = client
        return client


def analyse_layer(task: LayerTask) -> LayerOutcome:
    """Stream, verify and analyse one layer (see `layers.read_layer`)."""
    started = time.monotonic()
    descriptor = task.descriptor
    try:
        client = _client(task.registry, task.repository, task.options)
        with client.open_blob(descriptor) as blob:
            analysers = analysers_for(task.options)
            result = read_layer(blob, descriptor, task.options.keep, analysers)
        data = encode_layer(result)
    except Exception as exc:
        return LayerOutcome(descriptor.digest, error=describe(exc))
    return LayerOutcome(
        descriptor.digest,
        data,
        result.compressed_bytes,
        result.uncompressed_bytes,
        len(result.entries),
        round(time.monotonic() - started, 3),
    )


# --------------------------------------------------------------------------- images


@dataclass(frozen=True)
class ImageTask:
    """Assemble the scan result of one image from its stored layers (in manifest order)."""

    meta: ImageMeta
    options: ScanOptions
    store: str | None = None  # the results store whose reachability walks to share


@dataclass
class ImageOutcome:
    digest: str
    result: bytes = b""  # zlib-compressed JSON document (codec.render)
    summary: dict[str, Any] | None = None
    verdicts: dict[str, str] | None = None
    seconds: float = 0.0
    error: str | None = None


def _stored_walks(store: str | None) -> StoredWalks | None:
    """The walks of the results store at `store`, if it opens here (a worker on another
    machine may not see it: its walks are then its own)."""
    if store is None:
        return None
    try:
        return StoredWalks(Store(Path(store)))
    except StoreError:
        return None


def assemble_image(task: ImageTask, layers: list[bytes]) -> ImageOutcome:
    """Merge, inspect, graph, lint and score an image from its stored layers."""
    digest = task.meta.digest or ""
    started = time.monotonic()
    walks = _stored_walks(task.store)
    try:
        source = StoredLayersImage(task.meta, [decode_layer(blob) for blob in layers])
        result = scan_image(task.meta.reference, task.options, source=source, reach_store=walks)
        document = zlib.compress(render(result).encode())
        summary = image_summary(result)
    except Exception as exc:
        return ImageOutcome(digest, error=describe(exc))
    finally:
        if walks is not None:
            with contextlib.suppress(StoreError):  # a walk not kept is walked again
                walks.flush()
            walks.store.close()
    verdicts = {target: entry["verdict"] for target, entry in summary["targets"].items()}
    return ImageOutcome(digest, document, summary, verdicts, round(time.monotonic() - started, 3))
