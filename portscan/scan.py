"""The scan pipeline: reference -> source -> layers -> tree -> result.

Each step is a plain call on plain data (DESIGN.md). The CLI calls `scan_image`;
batch audits will call the same function.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import importlib
import logging
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO

from portscan import __version__, inspect
from portscan.inspect.elf import worker
from portscan.inspect.elf.worker import ElfAnalyser
from portscan.layers import (
    Analyser,
    KeepPolicy,
    ReadBudget,
    Tree,
    merge_layers,
    read_layer,
    settle_facts,
)
from portscan.model import (
    Dependency,
    ImageMeta,
    LayerDescriptor,
    LayerInfo,
    LayerResult,
    ProgressFn,
    ScanResult,
)
from portscan.sources import SourceOptions, open_image
from portscan.sources.base import ImageSource, ScanProgress
from portscan.sources.refs import is_loopback, parse_reference

if TYPE_CHECKING:  # the stages after reading load when a scan reaches them: a result
    # the scan cache holds whole needs none of them (portscan.audit.cache)
    from portscan.graph.reach import ReachStore
    from portscan.waivers import Waiver

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScanOptions:
    """Everything a scan needs besides the reference."""

    source: SourceOptions = field(default_factory=SourceOptions)
    keep: KeepPolicy = inspect.keep
    analysers: Sequence[Analyser] = inspect.ANALYSERS
    wasi_libc_as_of: str | None = None  # judge against wasi-libc as of this ISO date
    wasix_libc: str | None = None  # judge wasix by this wasix-libc flavour (None: default)
    sbom: str | None = None  # "syft": enrich the package inventory by running syft
    sbom_timeout: float = 300.0
    reach: bool = True  # judge programs by what they reach of their libraries
    content_dir: str | None = None  # where ELF files are kept by digest (None: a temporary one)
    waivers: tuple[Waiver, ...] = ()  # accepted findings (portscan.waivers)
    exclude: tuple[str, ...] = ()  # globs of image paths not judged
    base: str | None = None  # judge only what the image adds on top of this image


@dataclass
class ScannedImage:
    """The raw outcome of reading an image: its metadata, per-layer results, merged tree."""

    meta: ImageMeta
    layers: list[LayerResult]
    tree: Tree


def analysers_for(options: ScanOptions) -> list[Analyser]:
    """The options' analysers, the ELF one keeping files in `options.content_dir`."""
    return [
        ElfAnalyser(options.content_dir) if isinstance(a, ElfAnalyser) else a
        for a in options.analysers
    ]


def read_image(
    reference: str,
    options: ScanOptions,
    progress: ScanProgress | None = None,
    source: ImageSource | None = None,
) -> ScannedImage:
    """Open `reference` (or take `source`, an image opened already, e.g. one whose
    layers come from the results store), stream every layer once, and merge them.
    The ELF worker's facts are waited for once every layer is read: the next layer is
    read while the worker catches up with the last."""

    analysers = analysers_for(options)
    budget = ReadBudget()  # the bytes kept, bounded over all layers of the image

    def reader(blob: BinaryIO, descriptor: LayerDescriptor, advance: ProgressFn | None):
        return read_layer(blob, descriptor, options.keep, analysers, advance, budget, False)

    opened = source is None  # a source given may read no blob (cached or stored layers)
    if source is None:  # a bad reference or a missing image fails before the worker starts
        source = open_image(parse_reference(reference), options.source)
    with source:
        if opened and any(isinstance(a, ElfAnalyser) for a in options.analysers):
            worker.start()  # the ELF worker imports lief while the first layer is read
        meta, layer_results = source.read_layers(reader, progress)
        for result in layer_results:
            settle_facts(result)
    return ScannedImage(meta, layer_results, merge_layers(layer_results))


_DESCRIPTOR_FIELDS = dataclasses.fields(LayerDescriptor)


def layer_infos(meta: ImageMeta, layers: list[LayerResult]) -> list[LayerInfo]:
    """Pair each layer with its history line (history entries marked empty_layer have
    no layer) and what reading it found."""
    created_by = [h.created_by for h in meta.config.history if not h.empty_layer]
    infos = []
    for index, (descriptor, result) in enumerate(zip(meta.layers, layers, strict=True)):
        infos.append(
            LayerInfo(
                **{f.name: getattr(descriptor, f.name) for f in _DESCRIPTOR_FIELDS},
                index=index,
                created_by=created_by[index] if index < len(created_by) else "",
                entries=len(result.entries),
                whiteouts=len(result.whiteouts) + len(result.opaque_dirs),
                skipped=list(result.skipped),
            )
        )
    return infos


def timestamp() -> str:
    """Now, as a result's `scanned_at` says it (UTC, to the second)."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def _load_stages() -> None:
    """Import the stages after the layers (some 0.1 s of a core), in a thread of its own
    while the layers are read: reading leaves this process's GIL free most of the time.
    An import that fails here fails again, and is told, where the scan imports it."""
    with contextlib.suppress(Exception):
        importlib.import_module("portscan.graph.build")
        importlib.import_module("portscan.graph.reach")
        importlib.import_module("portscan.inspect.sbom")
        importlib.import_module("portscan.lint.components")
        importlib.import_module("portscan.waivers")


def scan_image(
    reference: str,
    options: ScanOptions | None = None,
    progress: ScanProgress | None = None,
    source: ImageSource | None = None,
    reach_store: ReachStore | None = None,
) -> ScanResult:
    """Scan one image end to end and return the result (nothing is printed).
    `source`, when given, is the image already opened (see `read_image`); `reach_store`
    keeps reachability walks across scans (portscan.audit.cache)."""
    options = options or ScanOptions()
    if options.reach and options.content_dir is None:
        with tempfile.TemporaryDirectory(prefix="portscan-content-") as content_dir:
            kept = dataclasses.replace(options, content_dir=content_dir)
            return scan_image(reference, kept, progress, source, reach_store)
    started = time.monotonic()
    scanned_at = timestamp()
    inspect.kept_by_inspectors()  # the first layer needs them: loaded before the thread
    threading.Thread(target=_load_stages, name="portscan-stages", daemon=True).start()
    scanned = read_image(reference, options, progress, source)
    from portscan.graph.build import (
        GraphInputs,
        build_graph,
        judged_graph,
        link_applications,
        reachable,
    )
    from portscan.graph.reach import reach_image
    from portscan.inspect.sbom import enrich_with_syft
    from portscan.lint.components import EarlyJudge, lint_image
    from portscan.waivers import apply_waivers, exclude, judge, read_base

    log.debug("read %d layers in %.2f s", len(scanned.layers), time.monotonic() - started)
    meta = scanned.meta
    infos = layer_infos(meta, scanned.layers)
    image = dataclasses.replace(meta, layers=infos)
    warnings = list(meta.warnings)  # what the manifest and config validation dropped
    warnings += [f"layer {info.index}: {reason}" for info in infos for reason in info.skipped]
    stage = time.monotonic()
    facts = inspect.inspect_tree(scanned.tree, meta.config)
    # every ELF file is analysed: the worker makes half the call-graph walks next, or
    # stops, and its memory goes back now
    helper = worker.handoff() if options.reach else None
    worker.stop()
    worker.release_free_memory()  # the layers' freed buffers go back too
    log.debug("inspected the tree in %.2f s", time.monotonic() - stage)
    if options.sbom == "syft":
        facts.packages, syft_warnings = enrich_with_syft(
            reference,
            facts.packages,
            timeout=options.sbom_timeout,
            insecure_http=options.source.insecure or is_loopback(meta.reference.split("/", 1)[0]),
            platform=str(meta.platform),
            diff_ids=meta.config.diff_ids,
            offline=options.source.offline,
        )
        facts.warnings += syft_warnings
    stage = time.monotonic()
    graph = build_graph(
        GraphInputs(scanned.tree, meta.config, facts.binaries, facts.scripts, facts.owner_of)
    )
    link_applications(graph, facts.applications)
    judged = judged_graph(graph, facts.binaries)  # a runtime's own libraries are the runtime's
    reached = reachable(judged)
    sources = {path for app in facts.applications for path in (*app.files, *app.unread)}
    layer_of = {path: entry.layer for path in facts.binaries.keys() | facts.scripts.keys() | sources
                if (entry := scanned.tree.get(path)) is not None}  # fmt: skip
    reach = None
    early = EarlyJudge(graph, facts.binaries, facts.owner_of, layer_of,
                       options.wasi_libc_as_of, facts.go_uses, options.wasix_libc)  # fmt: skip
    if options.reach:  # programs are judged while the walk helper works (EarlyJudge)
        reach = reach_image(graph, facts.binaries, options.content_dir, reached, reach_store,
                            helper, early.done, early.step)  # fmt: skip
    log.debug("built the graph in %.2f s", time.monotonic() - stage)
    stage = time.monotonic()
    components, image_findings = lint_image(
        meta.config,
        graph,
        facts.binaries,
        facts.scripts,
        facts.owner_of,
        layer_of,
        reached,
        options.wasi_libc_as_of,
        facts.applications,
        facts.go_uses,
        options.wasix_libc,
        reach,
        early,
    )
    log.debug("linted in %.2f s", time.monotonic() - stage)
    notes = exclude(components, options.exclude)
    notes += apply_waivers(components, image_findings, options.waivers)
    base = None
    if options.base is not None:
        base, note = read_base(options.base, meta, options.source)
        notes.append(note)
    targets = judge(components, image_findings, judged, base)
    return ScanResult(
        image=image,
        files=list(scanned.tree.entries()),
        portscan_version=__version__,
        scanned_at=scanned_at,
        duration_seconds=round(time.monotonic() - started, 3),
        warnings=warnings + facts.warnings + notes,
        binaries=facts.binaries,
        packages=facts.packages,
        scripts=list(facts.scripts.values()),
        owner_of=facts.owner_of,
        dependencies=[Dependency(a, b, kind) for a, b, kind in graph.edges(data="kind")],
        reachable=sorted(reached),
        components=components,
        image_findings=image_findings,
        targets=targets,
        base=base,
    )
