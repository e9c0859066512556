"""An image whose layers were read already (from the audit's results store): nothing to fetch."""

from __future__ import annotations

from portscan.model import ImageMeta, LayerResult
from portscan.sources.base import ImageSource, LayerReader, ScanProgress


class StoredLayersImage(ImageSource):
    """An image whose layers were analysed already: `read_layers` reads nothing."""

    def __init__(self, meta: ImageMeta, layers: list[LayerResult]) -> None:
        self.meta = meta
        self.layers = layers

    def read_layers(
        self, reader: LayerReader, progress: ScanProgress | None = None
    ) -> tuple[ImageMeta, list[LayerResult]]:
        return self.meta, self.layers
