"""Every output format of a scan by name, so that `image` and `report` render alike."""

from __future__ import annotations

from collections.abc import Callable

from portscan.model import ScanResult

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
