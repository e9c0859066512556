"""Every output format of a scan by name, so that `image` and `report` render alike."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from portscan.model import ScanResult

if TYPE_CHECKING:
    from portscan.codec import EncodedResult

FORMATS = ("table", "json", "sarif", "cyclonedx", "markdown", "html")


def renderer(name: str) -> Callable[[ScanResult], str]:
    """The function that renders a result in format `name` (one of FORMATS); only its
    module is imported (html's jinja2 templates cost a table nothing)."""
    if name not in FORMATS:
        raise KeyError(name)
    module = importlib.import_module(_MODULES.get(name, f"portscan.report.{name}"))
    return module.render


_MODULES = {"json": "portscan.codec"}


def rendered(name: str, result: ScanResult | EncodedResult) -> Iterable[str] | Iterable[bytes]:
    """`renderer(name)(result)` in pieces to write one after another: JSON a section at
    a time (codec.render_pieces), so that a large document is never held whole, or as
    the scan cache encoded it already (codec.EncodedResult: the same text, as bytes)."""
    from portscan import codec

    if name == "json":
        if isinstance(result, codec.EncodedResult):
            return result.pieces()
        return codec.render_pieces(result)
    return (renderer(name)(codec.full_result(result)),)
