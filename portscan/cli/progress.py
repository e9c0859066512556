"""Progress displays on stderr (rich), fed by the events of a scan or an audit."""

from __future__ import annotations

from typing import Any

from portscan.model import LayerDescriptor
from portscan.report.view import short_digest


class _StderrProgress:
    """A transient rich progress display on stderr, started and stopped as a context."""

    def __init__(self, *columns: Any) -> None:
        from rich.console import Console
        from rich.progress import Progress

        self._progress = Progress(*columns, console=Console(stderr=True), transient=True)

    def __enter__(self) -> Any:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()


class LayerProgress(_StderrProgress):
    """Rich progress bars fed by the `ScanProgress` events of a scan."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        super().__init__(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
        )
        self._tasks: dict[str, Any] = {}

    def layer_started(self, descriptor: LayerDescriptor) -> None:
        label = f"layer {short_digest(descriptor.digest)}"
        total = descriptor.size if descriptor.size >= 0 else None
        self._tasks[descriptor.digest] = self._progress.add_task(label, total=total)

    def layer_advanced(self, descriptor: LayerDescriptor, nbytes: int) -> None:
        self._progress.advance(self._tasks[descriptor.digest], nbytes)

    def layer_finished(self, descriptor: LayerDescriptor) -> None:
        task = self._tasks[descriptor.digest]
        self._progress.update(task, completed=self._progress.tasks[task].total or 0)


class AuditProgress(_StderrProgress):
    """Rich progress for an audit: images and layers, each with an ETA."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        super().__init__(
            TextColumn("{task.description:<12}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
        )
        self._found = self._progress.add_task("discovering", total=None)
        self._images: Any = None
        self._layers: Any = None

    def discovered(self, images: int) -> None:
        self._progress.advance(self._found, images)

    def planned(self, images: int, layers: int) -> None:
        self._progress.update(self._found, visible=False)
        self._images = self._progress.add_task("images", total=images)
        self._layers = self._progress.add_task("layers", total=layers)

    def layer_done(self) -> None:
        self._progress.advance(self._layers)

    def image_done(self) -> None:
        if self._images is not None:
            self._progress.advance(self._images)
