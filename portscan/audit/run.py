"""Registry audits: walk a registry, scan every chosen image once, keep it all in the store.

`run_audit` discovers the images (portscan.audit.discover), groups tags by manifest digest so
each image is scanned once, and schedules two kinds of task (portscan.audit.tasks) on an
executor (portscan.audit.executors): one per layer not yet in the store, then one per image
whose layers are all there. Outcomes come back to this process, which alone writes the
store, one transaction per finished unit. An image whose result is in the store under
the current keys is not scanned again, and a layer analysed once serves every image
built on it; so a rerun after an interruption finishes the work and redoes nothing.

Tasks are fed a few at a time (twice the workers' slots), images that can be assembled
going before layers still to analyse, so images complete steadily, and memory holds the
layers of a handful of images, not of the whole registry.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from portscan.audit.discover import (
    DEFAULT_PAGE_SIZE,
    FoundImage,
    ReferenceList,
    Selection,
    Skipped,
    discover,
    discover_references,
)
from portscan.audit.executors import Executor, Tag
from portscan.audit.fleet import FleetResult, ImageRecord, build_fleet
from portscan.audit.keys import Keys, decode_layer
from portscan.audit.store import ImageLayer, ImageRow, LayerRow, Store
from portscan.audit.tasks import (
    ImageOutcome,
    ImageTask,
    LayerOutcome,
    LayerTask,
    StoredLayersImage,
    analyse_layer,
    assemble_image,
)
from portscan.errors import describe
from portscan.model import ImageMeta, ScanResult
from portscan.scan import ScanOptions, scan_image

__all__ = ["AuditOptions", "FleetResult", "ImageRecord", "Keys", "rebuild_result", "run_audit"]


@dataclass(frozen=True)
class AuditOptions:
    selection: Selection | ReferenceList  # a registry's catalog, or references (--images-from)
    scan: ScanOptions = field(default_factory=ScanOptions)
    page_size: int = DEFAULT_PAGE_SIZE
    discovery_threads: int = 8
    with_results: bool = False  # put each image's full JSON on its ImageRecord


class AuditProgress(Protocol):
    """Receives progress events; the CLI draws bars with an ETA from them."""

    def discovered(self, images: int) -> None: ...

    def planned(self, images: int, layers: int) -> None: ...

    def layer_done(self) -> None: ...

    def image_done(self) -> None: ...


@dataclass
class PlannedImage:
    """One manifest digest to audit, under every name that resolved to it."""

    digest: str
    repository: str  # where its blobs are read from
    names: list[str]
    meta: ImageMeta
    created: str | None
    registry: str = ""  # where its blobs are read from, when not the audited registry


def plan_images(found: list[FoundImage]) -> list[PlannedImage]:
    """Group resolved tags by manifest digest; the first name (sorted) labels the image."""
    by_digest: dict[str, PlannedImage] = {}
    for image in sorted(found, key=lambda i: i.name):
        planned = by_digest.get(image.digest)
        if planned is None:
            by_digest[image.digest] = PlannedImage(
                image.digest,
                image.repository,
                [image.name],
                image.meta,
                image.created,
                image.registry,
            )
        else:
            planned.names.append(image.name)
    return list(by_digest.values())


class _Scheduler:
    """Feeds tasks to the executor and writes their outcomes to the store."""

    def __init__(
        self,
        store: Store,
        executor: Executor,
        options: AuditOptions,
        keys: Keys,
        audit_id: int,
        run_id: int,
        progress: AuditProgress | None,
        on_image: Callable[[ImageRecord], None] | None,
    ) -> None:
        self.store = store
        self.executor = executor
        self.options = options
        self.keys = keys
        self.audit_id = audit_id
        self.run_id = run_id
        self.progress = progress
        self.on_image = on_image
        self.slots = 2 * max(1, executor.slots)
        self.images: dict[str, PlannedImage] = {}
        self.missing: dict[str, set[str]] = {}  # image digest -> layers it waits for
        self.waiting: dict[str, set[str]] = {}  # layer digest -> images waiting for it
        self.layer_queue: deque[LayerTask] = deque()
        self.ready: deque[str] = deque()  # images whose layers are all stored
        self.running = 0

    # -- planning
    def start(self, plan: list[PlannedImage], unreadable: dict[str, str]) -> None:
        """Plan the work, announce it, and record what needs none: images whose results
        are stored, and tags discovery could not read."""
        reused = self._plan(plan)
        if self.progress:
            self.progress.planned(len(plan) + len(unreadable), len(self.layer_queue))
        for name, error in sorted(unreadable.items()):
            self.store.record_failed(self.run_id, self.audit_id, None, [name], error)
            self._emit(None, [name], "failed", error)
        for image in reused:
            self.store.record_reused(
                self.run_id, self.audit_id, image.digest, self.keys.result, image.names
            )
            self._emit(image.digest, image.names, "reused")

    def _plan(self, plan: list[PlannedImage]) -> list[PlannedImage]:
        """Queue the layers to analyse and the images to assemble; returns the images
        whose results are in the store."""
        reused = []
        for image in plan:
            if self.store.has_image(image.digest, self.keys.result):
                reused.append(image)
                continue
            self.images[image.digest] = image
            need = set()
            for descriptor in image.meta.layers:
                digest = descriptor.digest
                if digest in need or self.store.has_layer(digest, self.keys.layer):
                    continue
                need.add(digest)
                if digest not in self.waiting:
                    self.waiting[digest] = set()
                    self.layer_queue.append(
                        LayerTask(
                            image.registry or self.options.selection.registry,
                            image.repository,
                            descriptor,
                            self.options.scan,
                        )
                    )
                self.waiting[digest].add(image.digest)
            if need:
                self.missing[image.digest] = need
            else:
                self.ready.append(image.digest)
        return reused

    # -- running
    def run(self) -> None:
        self._fill()
        while self.running:
            tag, value = self.executor.next()
            self.running -= 1
            kind, digest = tag
            if kind == "layer":
                self._layer_finished(digest, value)
            else:
                self._image_finished(digest, value)
            self._fill()

    def _fill(self) -> None:
        while self.running < self.slots and (self.ready or self.layer_queue):
            if self.ready:
                self._submit_image(self.ready.popleft())
            else:
                task = self.layer_queue.popleft()
                self._submit(("layer", task.descriptor.digest), analyse_layer, task)

    def _submit(self, tag: Tag, fn: Callable[..., Any], *args: Any) -> None:
        self.executor.submit(tag, fn, *args)
        self.running += 1

    def _submit_image(self, digest: str) -> None:
        image = self.images[digest]
        blobs = []
        for descriptor in image.meta.layers:
            blob = self.store.layer(descriptor.digest, self.keys.layer)
            if blob is None:  # removed by a concurrent `store gc`
                self._fail(digest, f"layer {descriptor.digest} vanished from the store")
                return
            blobs.append(blob)
        self._submit(
            ("image", digest),
            assemble_image,
            ImageTask(image.meta, self.options.scan, str(self.store.path)),
            blobs,
        )

    def _layer_finished(self, digest: str, value: Any) -> None:
        if self.progress:
            self.progress.layer_done()
        waiting = self.waiting.pop(digest, set())
        error = value.error if isinstance(value, LayerOutcome) else describe(value)
        if error is not None:
            for image in sorted(waiting):
                self._fail(image, f"layer {digest}: {error}")
            return
        self.store.put_layer(
            self.run_id,
            LayerRow(
                digest, self.keys.layer, value.data, value.compressed_bytes,
                value.uncompressed_bytes, value.entries, value.seconds,
            ),
        )  # fmt: skip
        for image in sorted(waiting):
            missing = self.missing.get(image)
            if missing is None:  # failed already, through another layer
                continue
            missing.discard(digest)
            if not missing:
                del self.missing[image]
                self.ready.append(image)

    def _image_finished(self, digest: str, value: Any) -> None:
        error = value.error if isinstance(value, ImageOutcome) else describe(value)
        if error is not None:
            self._fail(digest, error)
            return
        image = self.images.pop(digest)
        meta = image.meta
        created_by = [h.created_by for h in meta.config.history if not h.empty_layer]
        row = ImageRow(
            digest=digest,
            result_key=self.keys.result,
            layer_key=self.keys.layer,
            reference=meta.reference,
            platform=str(meta.platform),
            created=image.created,
            verdicts=value.verdicts or {},
            summary=value.summary or {},
            result=value.result,
            meta=meta,
            seconds=value.seconds,
            layers=[
                ImageLayer(d.digest, d.size, created_by[i] if i < len(created_by) else "")
                for i, d in enumerate(meta.layers)
            ],
        )
        self.store.put_image(self.run_id, self.audit_id, row, image.names)
        self._emit(digest, image.names, "scanned")

    def _fail(self, digest: str, error: str) -> None:
        image = self.images.pop(digest, None)
        self.missing.pop(digest, None)
        if image is None:
            return
        self.store.record_failed(self.run_id, self.audit_id, digest, image.names, error)
        self._emit(digest, image.names, "failed", error)

    def _emit(
        self, digest: str | None, names: list[str], status: str, error: str | None = None
    ) -> None:
        if self.progress:
            self.progress.image_done()
        if self.on_image is None:
            return
        record = ImageRecord(digest, list(names), status, error)
        if digest and status != "failed":
            record.summary = self.store.image_summary(digest, self.keys.result) or {}
            if self.options.with_results:
                record.result = self.store.image_result(digest, self.keys.result)
        self.on_image(record)


def run_audit(
    store: Store,
    executor: Executor,
    options: AuditOptions,
    progress: AuditProgress | None = None,
    on_image: Callable[[ImageRecord], None] | None = None,
) -> FleetResult:
    """Audit a registry (see the module docstring); `on_image` hears of every image as
    it completes. On any exception (Ctrl-C included) the executor is aborted and what
    was finished stays in the store for the next run of the same audit."""
    options = dataclasses.replace(options, scan=_keeping_content(options.scan, store))
    keys = Keys.of(options.scan)
    selection = options.selection
    walk = discover if isinstance(selection, Selection) else discover_references
    try:
        discovery = walk(
            selection,  # type: ignore[arg-type]
            options.scan.source,
            options.page_size,
            options.discovery_threads,
            progress.discovered if progress else None,
        )
        audit, _ = store.open_audit(selection.registry, selection.to_dict())
        run_id = store.start_run(audit.id, executor.name)
        scheduler = _Scheduler(store, executor, options, keys, audit.id, run_id, progress, on_image)
        scheduler.start(plan_images(discovery.images), discovery.failed)
        scheduler.run()
    except BaseException:
        executor.abort()
        raise
    names = [image.name for image in discovery.images] + list(discovery.failed)
    store.finish_audit(audit.id, names)
    store.finish_run(run_id)
    return load_fleet(store, audit.id, discovery.skipped, run_id)


def _keeping_content(options: ScanOptions, store: Store) -> ScanOptions:
    """The scan options with the store's content directory, where layer tasks keep ELF
    files for the image tasks' reachability walks (unless another one was chosen)."""
    if not options.reach or options.content_dir is not None:
        return options
    return dataclasses.replace(options, content_dir=store.content_dir)


def load_fleet(
    store: Store, audit_id: int, skipped: list[Skipped] | None = None, run_id: int | None = None
) -> FleetResult:
    """The fleet view of an audit, from the store."""
    audit = store.audit(audit_id)
    if audit is None:
        raise KeyError(audit_id)
    rows = store.audit_images(audit_id)
    summaries: dict[str, dict[str, Any]] = {}
    layers: dict[str, list[ImageLayer]] = {}
    for row in rows:
        if row.digest and row.result_key and row.digest not in summaries:
            summaries[row.digest] = store.image_summary(row.digest, row.result_key) or {}
            layers[row.digest] = store.image_layers(row.digest, row.result_key)
    before = store.previous_audit(audit)
    previous = (before.id, store.audit_images(before.id)) if before else None
    run = store.run(run_id) if run_id is not None else None
    return build_fleet(
        audit,
        rows,
        summaries,
        layers,
        previous,
        skipped or [],
        dataclasses.asdict(run) if run else None,
    )


def rebuild_result(store: Store, digest: str, options: ScanOptions | None = None) -> ScanResult:
    """An image's full `ScanResult`, rebuilt from the store alone (no registry access):
    its stored metadata and layers, through the same pipeline as a scan."""
    options = options or ScanOptions()
    options = _keeping_content(options, store)
    keys = Keys.of(options)
    meta = store.image_meta(digest, keys.result)
    if meta is None:
        raise KeyError(f"no result for {digest} under the current keys")
    blobs = [store.layer(d.digest, keys.layer) for d in meta.layers]
    if any(blob is None for blob in blobs):
        raise KeyError(f"a layer of {digest} is no longer in the store")
    layers = [decode_layer(blob) for blob in blobs if blob is not None]
    return scan_image(meta.reference, options, source=StoredLayersImage(meta, layers))
