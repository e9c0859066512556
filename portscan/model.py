"""The data that flows between stages: plain dataclasses, no behaviour beyond lookups.

Every stage takes and returns these objects; `report/json.py` turns them into the
documented JSON. Later stages append their own dataclasses at the end of this file.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from portscan.errors import UsageError


@dataclass(frozen=True)
class Platform:
    """An OCI platform: `os/architecture[/variant]`."""

    os: str = "linux"
    architecture: str = "amd64"
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        parts = text.strip().split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise UsageError(
                f"invalid platform {text!r}", "write it as os/arch[/variant], e.g. linux/arm64"
            )
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    def matches(self, other: Platform) -> bool:
        """True when `other` (from an index) satisfies this requested platform."""
        if (self.os, self.architecture) != (other.os, other.architecture):
            return False
        return self.variant is None or self.variant == other.variant

    def __str__(self) -> str:
        base = f"{self.os}/{self.architecture}"
        return f"{base}/{self.variant}" if self.variant else base


class SourceKind(enum.StrEnum):
    """Where an image comes from (the prefix of a reference)."""

    REGISTRY = "registry"
    DOCKER = "docker"
    DOCKER_ARCHIVE = "docker-archive"
    OCI = "oci"
    DIR = "dir"


@dataclass(frozen=True)
class ImageRef:
    """A parsed image reference. Registry fields are set for registry/docker sources,
    `path` for archive, layout and directory sources."""

    kind: SourceKind
    original: str
    registry: str | None = None
    repository: str | None = None
    tag: str | None = None
    digest: str | None = None
    path: str | None = None
    explicit_kind: bool = False  # False for a bare NAME: try the daemon, then the registry

    @property
    def name(self) -> str:
        """The canonical spelling: `registry/repo:tag@digest`, or `kind:path[:tag]`."""
        if self.repository is None:
            suffix = f":{self.tag}" if self.tag else ""
            return f"{self.kind.value}:{self.path}{suffix}"
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


@dataclass(frozen=True)
class LayerDescriptor:
    """A layer blob as the manifest describes it."""

    digest: str  # digest of the blob as stored (compressed for registries)
    size: int  # bytes of the blob, -1 when unknown
    media_type: str
    diff_id: str | None = None  # digest of the uncompressed tar, from the config


@dataclass
class HistoryEntry:
    created_by: str = ""
    created: str | None = None
    empty_layer: bool = False
    comment: str | None = None


@dataclass
class ImageConfig:
    """The parts of the OCI image config that the analysis needs."""

    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    user: str = ""
    working_dir: str = ""
    exposed_ports: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    stop_signal: str | None = None
    history: list[HistoryEntry] = field(default_factory=list)
    diff_ids: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ImageConfig:
        """Build from an OCI/Docker config document (the blob the manifest's `config` names)."""
        cfg = doc.get("config") or {}
        history = [
            HistoryEntry(
                created_by=h.get("created_by", ""),
                created=h.get("created"),
                empty_layer=bool(h.get("empty_layer", False)),
                comment=h.get("comment"),
            )
            for h in doc.get("history") or []
        ]
        return cls(
            entrypoint=list(cfg.get("Entrypoint") or []),
            cmd=list(cfg.get("Cmd") or []),
            env=list(cfg.get("Env") or []),
            user=cfg.get("User") or "",
            working_dir=cfg.get("WorkingDir") or "",
            exposed_ports=sorted((cfg.get("ExposedPorts") or {}).keys()),
            volumes=sorted((cfg.get("Volumes") or {}).keys()),
            labels=dict(cfg.get("Labels") or {}),
            stop_signal=cfg.get("StopSignal"),
            history=history,
            diff_ids=list((doc.get("rootfs") or {}).get("diff_ids") or []),
        )

    def env_dict(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in self.env:
            key, _, value = item.partition("=")
            out[key] = value
        return out


class FileKind(enum.StrEnum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"
    CHAR = "char"
    BLOCK = "block"
    FIFO = "fifo"


@dataclass
class FileEntry:
    """One path of the merged tree.

    `layer` is the index (0 = base) of the layer that last wrote the path. `data` holds
    the bytes only of files a later stage asked to keep (see `layers.KeepPolicy`);
    `facts` holds what analysers computed from the bytes while the layer streamed by,
    keyed by analyser name, so the bytes themselves need not be kept.
    """

    path: str  # absolute, normalised, e.g. "/usr/bin/nginx"
    kind: FileKind
    mode: int
    size: int
    layer: int
    link_target: str | None = None
    uid: int = 0
    gid: int = 0
    data: bytes | None = None
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def is_regular(self) -> bool:
        return self.kind in (FileKind.FILE, FileKind.HARDLINK)

    @property
    def is_executable(self) -> bool:
        return self.is_regular and bool(self.mode & 0o111)


@dataclass
class LayerInfo:
    """A layer as reported: descriptor facts plus its history line and what it did."""

    index: int
    digest: str
    size: int
    media_type: str
    diff_id: str | None = None
    created_by: str = ""
    entries: int = 0
    whiteouts: int = 0
    skipped: list[str] = field(default_factory=list)  # unsafe or unsupported entries


@dataclass
class ImageInfo:
    """What was scanned: the reference as resolved, its digest, platform and config."""

    reference: str
    source: SourceKind
    digest: str | None  # manifest digest where there is a manifest
    platform: Platform
    config: ImageConfig
    layers: list[LayerInfo] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(layer.size for layer in self.layers if layer.size > 0)


@dataclass
class ScanResult:
    """Everything one scan produced; `report/` renders it, nothing else prints it."""

    image: ImageInfo
    files: list[FileEntry]
    portscan_version: str
    scanned_at: str
    duration_seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
