"""The one JSON form of a scan result: `to_dict` and `from_dict` (docs/json-output.md).

The renderers (`--format json`, `portscan report`, `portscan diff`) and the audit's results
store all read and write results through this module. `encode` turns model objects into
dicts, lists, strings and numbers (enums become their values, `Evidence` drops its empty
fields); `decode` rebuilds an object of a given type from such values, a missing field
taking its default, so a document written before a field was added still loads.
`SCHEMA_VERSION` changes in its major part when a field is removed or changes meaning, in
its minor part when fields are added. Documents of another major version are refused;
fields this version does not know are ignored.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import pickle
import threading
import types
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import zstandard

from portscan.errors import ResultFormatError
from portscan.model import (
    BaseImage,
    Binary,
    Component,
    Dependency,
    Evidence,
    FileEntry,
    FileKind,
    Finding,
    HistoryEntry,
    ImageConfig,
    ImageMeta,
    LayerInfo,
    Package,
    Platform,
    ScanResult,
    Script,
    SourceKind,
    Target,
    TargetSummary,
)

_SCALARS = frozenset({str, int, float, bool, type(None)})
_TO_DICT = "to_dict"  # the plan of a class whose objects encode themselves
_PLANS: dict[type, tuple[str, ...] | str | None] = {}  # class -> its field names, or
# _TO_DICT, or None (not a dataclass)


def _plan(cls: type) -> tuple[str, ...] | str | None:
    """How `encode` takes objects of `cls` apart, worked out once per class."""
    if cls in _PLANS:
        return _PLANS[cls]
    found: tuple[str, ...] | str | None = None
    if issubclass(cls, Evidence | Finding):
        found = _TO_DICT
    elif dataclasses.is_dataclass(cls):
        found = tuple(f.name for f in dataclasses.fields(cls))
    _PLANS[cls] = found
    return found


def encode(value: Any) -> Any:
    """A JSON-ready copy of `value`. Each class's fields are listed once (`_plan`), and
    strings and numbers, most of a result, are passed through without a call."""
    cls = type(value)
    if cls in _SCALARS:
        return value
    if cls is list or cls is tuple:
        return [v if type(v) in _SCALARS else encode(v) for v in value]
    if cls is dict:
        return {
            (k if type(k) is str else str(encode(k))): (v if type(v) in _SCALARS else encode(v))
            for k, v in value.items()
        }
    plan = _plan(cls)
    if plan == _TO_DICT:
        return value.to_dict()
    if isinstance(plan, tuple):
        return {
            name: (v if type(v := getattr(value, name)) in _SCALARS else encode(v)) for name in plan
        }
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(encode(k)): encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [encode(item) for item in value]
    return value


def decode(kind: Any, value: Any) -> Any:
    """An object of type `kind` (a class or a typing form) rebuilt from `value`."""
    return _decoder(kind)(value)


def _same(value: Any) -> Any:
    return value


@functools.cache
def _decoder(kind: Any) -> Callable[[Any], Any]:
    """How `decode` rebuilds a value of `kind` (None stays None), worked out once per
    type: a saved result holds about a million values of a few dozen types."""
    if kind is Any:
        return _same
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in args if a is not type(None)]
        return _decoder(inner[0]) if len(inner) == 1 else _same
    if origin in (list, set, frozenset, tuple):
        return _collection(origin, _decoder(args[0] if args else Any))
    if origin is dict:
        key, item = args if args else (Any, Any)
        return _mapping(_decoder(key), _decoder(item))
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return _optional(kind)
    if dataclasses.is_dataclass(kind):
        return _optional(_record(kind))  # type: ignore[arg-type]
    return _same


def _optional(build: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else build(value)


def _collection(origin: Any, item: Callable[[Any], Any]) -> Callable[[Any], Any]:
    if item is _same:
        return _optional(origin)
    return lambda value: None if value is None else origin([item(v) for v in value])


def _mapping(key: Callable[[Any], Any], item: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else {key(k): item(v) for k, v in value.items()}


def _record(kind: type) -> Callable[[Any], Any]:
    """A dataclass from a dict: the fields it names, each decoded; unknown ones ignored."""
    hints = typing.get_type_hints(kind)
    fields = {f.name: _decoder(hints[f.name]) for f in dataclasses.fields(kind) if f.init}
    return lambda value: kind(**{k: fields[k](v) for k, v in value.items() if k in fields})


# --------------------------------------------------------------------------- writing

SCHEMA_VERSION = "1.2"


def file_dict(entry: FileEntry) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "path": entry.path,
        "type": entry.kind.value,
        "mode": f"{entry.mode:04o}",
        "size": entry.size,
        "layer": entry.layer,
    }
    if entry.link_target is not None:
        doc["link_target"] = entry.link_target
    return doc


def image_dict(image: ImageMeta) -> dict[str, Any]:
    config = image.config
    return {
        "reference": image.reference,
        "source": image.source.value,
        "digest": image.digest,
        "platform": str(image.platform),
        "size": image.size,
        "config": {
            "entrypoint": config.entrypoint,
            "cmd": config.cmd,
            "env": config.env,
            "user": config.user,
            "working_dir": config.working_dir,
            "exposed_ports": config.exposed_ports,
            "volumes": config.volumes,
            "labels": config.labels,
            "stop_signal": config.stop_signal,
            "history": encode(config.history),
            "diff_ids": config.diff_ids,
        },
        "layers": [
            {
                "index": layer.index,
                "digest": layer.digest,
                "diff_id": layer.diff_id,
                "size": layer.size,
                "media_type": layer.media_type,
                "created_by": layer.created_by,
                "entries": layer.entries,
                "whiteouts": layer.whiteouts,
                "skipped": layer.skipped,
            }
            for layer in image.layers
        ],
    }


def _sections(result: ScanResult) -> list[tuple[str, Callable[[], Any]]]:
    """The result document's keys in order, each with how to build its value."""
    sections: list[tuple[str, Callable[[], Any]]] = [
        ("schema_version", lambda: SCHEMA_VERSION),
        ("portscan_version", lambda: result.portscan_version),
        ("scanned_at", lambda: result.scanned_at),
        ("duration_seconds", lambda: result.duration_seconds),
        ("image", lambda: image_dict(result.image)),
        ("summary", lambda: summary_counts(result)),
        ("files", lambda: (file_dict(entry) for entry in result.files)),
        ("warnings", lambda: result.warnings),
        ("targets", lambda: {str(t): encode(s) for t, s in result.targets.items()}),
        ("components", lambda: (_component(c) for c in result.components)),
        ("image_findings", lambda: encode(result.image_findings)),
        ("binaries", lambda: encode(result.binaries)),
        ("packages", lambda: encode(result.packages)),
        ("scripts", lambda: encode(result.scripts)),
        ("owner_of", lambda: result.owner_of),
        ("dependencies", lambda: encode(result.dependencies)),
        ("reachable", lambda: result.reachable),
    ]
    if result.base is not None:
        sections.append(("base", lambda: encode(result.base)))
    return sections


def to_dict(result: ScanResult) -> dict[str, Any]:
    """The result's document as values `_compact` writes (a dataclass such as a chain's
    ChainStep stays one: written as an object of its fields)."""
    return {key: _whole(make()) for key, make in _sections(result)}


def _component(component: Component) -> _EnumKeys:
    """`encode(component)` but its findings and plan, made dicts, left to `_compact` as
    it is: orjson writes enums and dicts keyed by enums as `encode` makes them (and
    they compare equal to the strings they stand for)."""
    doc = {name: getattr(component, name) for name in _COMPONENT_FIELDS}
    doc["findings"] = [finding.to_dict() for finding in component.findings]
    doc["plan"] = encode(component.plan)
    return _EnumKeys(doc)


_COMPONENT_FIELDS = tuple(f.name for f in dataclasses.fields(Component))


class _EnumKeys(dict[str, Any]):
    """A dict whose values hold dicts keyed by enums, which `_compact` writes by value,
    as `encode` does."""


def _whole(value: Any) -> Any:
    """A section's value, a generator of a long list's items made a list."""
    return list(value) if isinstance(value, types.GeneratorType) else value


def summary_counts(result: ScanResult) -> dict[str, int]:
    counts: dict[str, int] = {"files": 0, "directories": 0, "symlinks": 0, "other": 0}
    for entry in result.files:
        if entry.is_regular:
            counts["files"] += 1
        elif entry.kind.value == "dir":
            counts["directories"] += 1
        elif entry.kind.value == "symlink":
            counts["symlinks"] += 1
        else:
            counts["other"] += 1
    return counts


def render(result: ScanResult) -> str:
    """Compact JSON on one line (`_compact`): an nginx result is 17 MB instead of 24
    indented (pipe it to `jq .` to read it)."""
    return b"".join(render_pieces(result)).decode()


def _compact(value: Any) -> bytes:
    """`value` as compact JSON in UTF-8, non-ASCII characters as they are: orjson, five
    times json's C encoder on a result's components; json's (made once) for the one
    thing orjson refuses, an integer past 64 bits. A dataclass is an object of its
    fields in both. Bytes, as orjson makes them and the document is written and stored:
    decoding nginx's 34 MB to text and encoding them back cost 4% of the stage's
    instructions (`benchmarks/bench_instructions.py count --stage json`)."""
    try:
        if type(value) is _EnumKeys:
            return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
        return orjson.dumps(value)
    except TypeError:
        return _STDLIB(encode(value) if type(value) is _EnumKeys else value).encode()


def _fields(value: Any) -> dict[str, Any]:
    """A dataclass as orjson writes it: its fields, in order (json's `default`; the
    fields as `encode` lists them, `_plan`)."""
    plan = _plan(type(value))
    if isinstance(plan, tuple):
        return {name: getattr(value, name) for name in plan}
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# a result's document is a tree (no list or dict holds itself): no looking for cycles
_STDLIB = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, check_circular=False, default=_fields
).encode


def render_pieces(result: ScanResult) -> Iterator[bytes]:
    """`render`'s text in UTF-8 a section at a time, and the long lists (files,
    components) an item at a time: the same text as `json.dumps(to_dict(r))`, without a
    writer ever holding the document's objects, or its text, at once."""
    yield from _pieces(_sections(result), first=True)
    yield b"}\n"


def _pieces(sections: list[tuple[str, Callable[[], Any]]], first: bool) -> Iterator[bytes]:
    """The UTF-8 text of `sections`, the first opening the document when `first`."""
    for index, (key, make) in enumerate(sections):
        head = f"{'{' if first and index == 0 else ','}{json.dumps(key)}:".encode()
        value = make()
        if not isinstance(value, types.GeneratorType):
            yield head + _compact(value)
            continue
        yield head + b"["  # a long list, an item at a time
        for position, item in enumerate(value):
            yield (b"," if position else b"") + _compact(item)
        yield b"]"


_TIMES = ("scanned_at", "duration_seconds")  # the sections a reused result has anew


def document_parts(result: ScanResult) -> tuple[str, Iterator[bytes]]:
    """`render`'s text in three parts, the middle one left out: the text before the
    time fields (`_TIMES`), and the UTF-8 pieces of the text after them. A stored result
    keeps these; `times_text` makes the middle part for the times of its reuse."""
    sections = _sections(result)
    at = [key for key, _ in sections].index(_TIMES[0])
    after = sections[at + len(_TIMES) :]
    return b"".join(_pieces(sections[:at], first=True)).decode(), _after(after)


def _after(sections: list[tuple[str, Callable[[], Any]]]) -> Iterator[bytes]:
    yield from _pieces(sections, first=False)
    yield b"}\n"


def times_text(scanned_at: str, duration_seconds: float) -> str:
    """The time fields' text, as `render` writes them between `document_parts`."""
    times = {_TIMES[0]: scanned_at, _TIMES[1]: duration_seconds}
    pieces = _pieces([(key, lambda k=key: times[k]) for key in _TIMES], first=False)
    return b"".join(pieces).decode()


@dataclasses.dataclass
class EncodedResult:
    """A scan result with its JSON document encoded already (the scan cache's, see
    portscan.audit.cache): `head` and the zstd-compressed `tail` are the document's
    text before and after its time fields (`document_parts`). `result()` is the result
    itself, made by `load` on first use (for the other formats and the gates)."""

    scanned_at: str
    duration_seconds: float
    head: str
    tail: bytes
    load: Callable[[], ScanResult]
    _loaded: ScanResult | None = None

    def result(self) -> ScanResult:
        if self._loaded is None:
            self._loaded = self.load()
        return self._loaded

    def pieces(self) -> Iterator[bytes]:
        """The document's UTF-8 bytes: byte for byte `render_pieces(self.result())`,
        encoded (the stored bytes go out as they are, never decoded)."""
        return encoded_pieces(self.head, self.tail, self.scanned_at, self.duration_seconds)


def encoded_pieces(
    head: str, tail: bytes, scanned_at: str, duration_seconds: float
) -> Iterator[bytes]:
    """The UTF-8 bytes of a document encoded as `EncodedResult` holds it, with these times."""
    yield (head + times_text(scanned_at, duration_seconds)).encode()
    inflate = zstandard.ZstdDecompressor().decompressobj()
    view = memoryview(tail)
    for start in range(0, len(view), _CHUNK):
        yield inflate.decompress(view[start : start + _CHUNK])


_CHUNK = 1 << 18  # compressed bytes decompressed at a time (several MB of text)


def full_result(result: ScanResult | EncodedResult) -> ScanResult:
    """The result itself, whichever form it comes in."""
    return result.result() if isinstance(result, EncodedResult) else result


# --------------------------------------------------------------------------- reading


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
    """Rebuild a ScanResult from the dict that `to_dict` produced."""
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
        base=decode(BaseImage, doc["base"]) if doc.get("base") else None,
    )


def _summary(name: str, item: dict[str, Any]) -> TargetSummary:
    return decode(TargetSummary, {"target": name, **item})


def _image(doc: dict[str, Any]) -> ImageMeta:
    config = doc.get("config", {})
    return ImageMeta(
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


# --------------------------------------------------------------------------- stored forms


@functools.lru_cache(maxsize=32)
def _compressor(thread: int, level: int) -> zstandard.ZstdCompressor:
    """One thread's compressor at `level`: zstandard's are not to be shared between
    threads, and making one per call doubles the cost of storing an image's thousands
    of walks."""
    return zstandard.ZstdCompressor(level=level)


@functools.lru_cache(maxsize=32)
def _decompressor(thread: int) -> zstandard.ZstdDecompressor:
    """One thread's decompressor (as `_compressor`)."""
    return zstandard.ZstdDecompressor()


def pack(value: Any, level: int) -> bytes:
    """The stored form of a layer result or a walk (the scan cache's, portscan.audit):
    zstd(pickle(value)) at `level`."""
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return _compressor(threading.get_ident(), level).compress(data)


def unpack(blob: bytes) -> Any:
    """What `pack` stored (or a zstd(pickle) written as a stream: a whole result's)."""
    inflate = _decompressor(threading.get_ident()).decompressobj()
    return pickle.loads(inflate.decompress(blob))
