"""A saved JSON result (`portscan image --format json`) back into a ScanResult.

The inverse of `report/json.py`, so every renderer can run again on a saved result
(`portscan report`, `portscan diff`). Documents of another major schema version are
refused; fields this version does not know are ignored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from portscan.errors import UsageError
from portscan.model import (
    Binary,
    Component,
    Dependency,
    FileEntry,
    FileKind,
    Finding,
    HistoryEntry,
    ImageConfig,
    ImageInfo,
    LayerInfo,
    Package,
    Platform,
    ScanResult,
    Script,
    SourceKind,
    Target,
    TargetSummary,
)
from portscan.report.codec import decode
from portscan.report.json import SCHEMA_VERSION


class ResultFormatError(UsageError):
    """The file is not a portscan JSON result this version can read."""


def is_saved_result(argument: str) -> bool:
    """True when `argument` names an existing `.json` file rather than an image."""
    path = Path(argument)
    return path.suffix.lower() == ".json" and path.is_file()


def load_result(path: Path) -> ScanResult:
    """Read and rebuild a saved result, or raise ResultFormatError."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ResultFormatError(f"cannot read {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultFormatError(f"{path} is not JSON: {exc}") from None
    return from_dict(doc, str(path))


def from_dict(doc: Any, origin: str = "the document") -> ScanResult:
    """Rebuild a ScanResult from the dict that `report.json.to_dict` produced."""
    version = doc.get("schema_version", "") if isinstance(doc, dict) else ""
    if not isinstance(version, str) or version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
        raise ResultFormatError(
            f"{origin} is not a portscan result of schema {SCHEMA_VERSION.split('.')[0]}.x",
            "write one with `portscan image REF --format json -o FILE`",
        )
    try:
        return _result(doc)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ResultFormatError(
            f"{origin} is a malformed portscan result ({type(exc).__name__}: {exc})"
        ) from None


def _result(doc: dict[str, Any]) -> ScanResult:
    return ScanResult(
        image=_image(doc["image"]),
        files=[_file(item) for item in doc.get("files", [])],
        portscan_version=doc.get("portscan_version", ""),
        scanned_at=doc.get("scanned_at", ""),
        duration_seconds=float(doc.get("duration_seconds", 0.0)),
        warnings=list(doc.get("warnings", [])),
        binaries=decode(dict[str, Binary], doc.get("binaries", {})),
        packages=decode(list[Package], doc.get("packages", [])),
        scripts=decode(list[Script], doc.get("scripts", [])),
        owner_of=dict(doc.get("owner_of", {})),
        dependencies=decode(list[Dependency], doc.get("dependencies", [])),
        reachable=list(doc.get("reachable", [])),
        components=decode(list[Component], doc.get("components", [])),
        image_findings=decode(list[Finding], doc.get("image_findings", [])),
        targets={
            Target(name): _summary(name, item) for name, item in doc.get("targets", {}).items()
        },
    )


def _summary(name: str, item: dict[str, Any]) -> TargetSummary:
    return decode(TargetSummary, {"target": name, **item})


def _image(doc: dict[str, Any]) -> ImageInfo:
    config = doc.get("config", {})
    return ImageInfo(
        reference=doc["reference"],
        source=SourceKind(doc["source"]),
        digest=doc.get("digest"),
        platform=Platform.parse(doc["platform"]),
        config=ImageConfig(
            entrypoint=list(config.get("entrypoint", [])),
            cmd=list(config.get("cmd", [])),
            env=list(config.get("env", [])),
            user=config.get("user", ""),
            working_dir=config.get("working_dir", ""),
            exposed_ports=list(config.get("exposed_ports", [])),
            volumes=list(config.get("volumes", [])),
            labels=dict(config.get("labels", {})),
            stop_signal=config.get("stop_signal"),
            history=decode(list[HistoryEntry], config.get("history", [])),
            diff_ids=list(config.get("diff_ids", [])),
        ),
        layers=[decode(LayerInfo, layer) for layer in doc.get("layers", [])],
    )


def _file(item: dict[str, Any]) -> FileEntry:
    return FileEntry(
        path=item["path"],
        kind=FileKind(item["type"]),
        mode=int(item["mode"], 8),
        size=int(item["size"]),
        layer=int(item["layer"]),
        link_target=item.get("link_target"),
    )
