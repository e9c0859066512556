"""Every output format of a scan by name, so that `image` and `report` render alike."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from portscan.model import ScanResult

if TYPE_CHECKING:
    from portscan.codec import EncodedResult

FORMATS = ("table", "json", "sarif", "cyclonedx", "markdown", "html")


def renderer(name: str) -> Callable[[ScanResult], str]:
    """The function that renders a result in format `name` (one of FORMATS)."""
    from portscan import codec
    from portscan.report import cyclonedx, html, markdown, sarif, table

    return {
        "table": table.render,
        "json": codec.render,
        "sarif": sarif.render,
        "cyclonedx": cyclonedx.render,
        "markdown": markdown.render,
        "html": html.render,
    }[name]


def rendered(name: str, result: ScanResult | EncodedResult) -> Iterable[str]:
    """`renderer(name)(result)` in pieces to write one after another: JSON a section at
    a time (codec.render_pieces), so that a large document is never held whole, or as
    the scan cache encoded it already (codec.EncodedResult: the same text)."""
    from portscan import codec

    if name == "json":
        if isinstance(result, codec.EncodedResult):
            return result.pieces()
        return codec.render_pieces(result)
    return (renderer(name)(codec.full_result(result)),)
