"""What cached analysis is keyed by, and how a `LayerResult` is stored.

Three keys, all short hex strings (trivy fanal's idea: analyser versions go into the key,
so a better analyser invalidates exactly what it produced):

- `layer_key` keys per-layer results (with the layer's blob digest): the portscan
  `LAYER_FORMAT`, every analyser's name and version, the keep policy's name, and a
  fingerprint of the shape of the dataclasses a layer result holds (portscan.model and
  portscan.layers), so a stored pickle is never loaded into classes it no longer fits.
- `result_key` keys per-image results (with the manifest digest): the layer key plus
  what turns layers into a verdict: the portscan version, a digest of the signatures/
  data, and the scan options other than how to reach the image and how to read layers
  (e.g. `wasi_libc_as_of`).
- `scan_result_key` keys whole results of `portscan image` (the scan cache,
  portscan.audit.cache): the image as its source resolved it, every option that can
  change the result (PORTSCAN_* variables included), and the code (`code_key`: the
  portscan version, a digest of its source files, the versions of Python and of the
  libraries whose answers a result holds, the signatures/ data, the layer key). No key,
  so no reuse, where the image's layers are not all verifiable sha256 blobs or an
  option has no spelling that is the same in every process (`canonical`).

Layers are cached under the digest of the blob as stored, which `read_layer` verifies
while reading, never under the config's `diff_id`, which nothing verifies before the
layer is read: an image cannot borrow another layer's analysis by claiming its diff_id.

A layer result is stored as `zstd(pickle(LayerResult))`: entries with their kept bytes
and analyser facts, whiteouts, opaque directories and skipped entries. Pickle is fast
and exact for these dataclasses; it trusts its input, so the store belongs in a
directory only its user writes (the XDG cache dir by default).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import inspect as pyinspect
import json
import os
import re
import sys
import types
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

import portscan
from portscan import __version__, layers, model
from portscan.codec import pack, unpack
from portscan.inspect.elf import spec as elf_spec
from portscan.knowledge import signatures_dir
from portscan.layers import Analyser, KeepPolicy
from portscan.model import ImageMeta, LayerResult
from portscan.scan import ScanOptions

# Bump when LayerResult's meaning changes without a change of shape, or when a keep
# policy starts keeping bytes it did not keep before (cached layers would lack them).
LAYER_FORMAT = 2  # 2: zstd, not zlib
# zstd's level 3: nginx's three layers in 0.016 s at 1.0 MB (zlib's level 6: 0.105 s, 1.1 MB)
_COMPRESSION = 3


def _digest(parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def shape_fingerprint() -> list[str]:
    """`Class(field, ...)` for every dataclass defined in portscan.model and .layers."""
    shapes = []
    for module in (model, layers):
        for name, value in sorted(vars(module).items()):
            if (
                pyinspect.isclass(value)
                and dataclasses.is_dataclass(value)
                and value.__module__ == module.__name__
            ):
                fields = ",".join(f"{f.name}:{f.type}" for f in dataclasses.fields(value))
                shapes.append(f"{module.__name__}.{name}({fields})")
    return shapes


def layer_key(analysers: Sequence[Analyser], keep: KeepPolicy) -> str:
    """The key of per-layer results produced with these analysers and keep policy, by
    these versions of Python and the libraries that read files (`library_versions`),
    under these PORTSCAN_* variables (the read limits, layers.Limits)."""
    return _digest(
        {
            "format": LAYER_FORMAT,
            "analysers": sorted([a.name, a.version] for a in analysers),
            "keep": f"{keep.__module__}.{getattr(keep, '__qualname__', repr(keep))}",
            "shapes": shape_fingerprint(),
            "libraries": library_versions(),
            "environment": portscan_environment(),
        }
    )


def portscan_environment() -> dict[str, str]:
    """The PORTSCAN_* environment variables, sorted: limits and options set there."""
    return {
        name: value for name, value in sorted(os.environ.items()) if name.startswith("PORTSCAN_")
    }


def signatures_digest(directory: Path) -> str:
    """A digest of every file under the signatures directory (names and bytes), but
    Python's bytecode caches (pip compiles the generator scripts of an installed copy)."""
    digest = hashlib.sha256()
    files = (p for p in directory.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for path in sorted(files):
        digest.update(str(path.relative_to(directory)).encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:20]


def result_key(layer: str, signatures: str, options: dict[str, str]) -> str:
    """The key of per-image results built from layers keyed `layer`, with the scan
    `options` (name -> repr) that change a result."""
    return _digest(
        {"layer": layer, "portscan": __version__, "signatures": signatures, "options": options}
    )


def encode_layer(result: LayerResult) -> bytes:
    """The stored form of a layer result."""
    return pack(result, _COMPRESSION)


def decode_layer(blob: bytes) -> LayerResult:
    """A fresh `LayerResult` from its stored form (merging changes the objects it is
    given, so every image gets its own copy)."""
    result = unpack(blob)
    if not isinstance(result, LayerResult):
        raise TypeError(f"a stored layer decoded to a {type(result).__name__}")
    return result


# ScanOptions fields that do not change a result once the layers are read
_NOT_IN_RESULT_KEY = frozenset({"source", "keep", "analysers", "content_dir"})


def _stable(value: Any) -> str:
    """A spelling of an option value that is the same in every process."""
    if callable(value):
        return f"{value.__module__}.{getattr(value, '__qualname__', type(value).__name__)}"
    return repr(value)


@dataclass(frozen=True)
class Keys:
    """The store keys for results made with some scan options (see portscan.audit.keys)."""

    layer: str
    result: str

    @classmethod
    def of(cls, options: ScanOptions) -> Keys:
        layers = layer_key(options.analysers, options.keep)
        sigs = signatures_digest(signatures_dir())
        judged = {
            f.name: _stable(getattr(options, f.name))
            for f in dataclasses.fields(options)
            if f.name not in _NOT_IN_RESULT_KEY
        }
        return cls(layers, result_key(layers, sigs, judged))


def content_digests(result: LayerResult) -> set[str]:
    """The sha256 of every ELF file the layer's analysis found (`Binary.sha256`): the
    files it needs in a content directory."""
    found = set()
    for entry in result.entries:
        sha256 = getattr(entry.facts.get(elf_spec.NAME), "sha256", None)
        if sha256:
            found.add(sha256)
    return found


# --------------------------------------------------------------------------- whole results


class NotCanonical(TypeError):
    """A value with no spelling that is the same in every process (a key cannot say it)."""


def canonical(value: Any) -> Any:
    """`value` as JSON values that are equal exactly when the values are: scalars,
    enums, paths, lists and tuples, string-keyed dicts, dataclasses field by field, and
    code of portscan by its qualified name (`code_digest` covers its text) or objects of
    its classes by their attributes. Anything else raises NotCanonical."""
    if isinstance(value, enum.Enum):  # before the scalars: a StrEnum is a str
        return {"enum": _qualified(type(value)), "value": canonical(value.value)}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, PurePath):
        return {"path": str(value)}
    if isinstance(value, list):
        return [canonical(item) for item in value]
    if isinstance(value, tuple):
        return {"tuple": [canonical(item) for item in value]}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"dict": [[k, canonical(v)] for k, v in sorted(value.items())]}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"class": _qualified(type(value)), "fields": fields}
    if isinstance(value, types.MethodType):
        raise NotCanonical(f"a bound method {value!r} (its object's state is not in its name)")
    if isinstance(value, type) or (callable(value) and hasattr(value, "__qualname__")):
        return {"code": _qualified(value)}
    if hasattr(value, "__dict__"):
        return {"class": _qualified(type(value)), "state": canonical(vars(value))}
    raise NotCanonical(f"{type(value).__name__} {value!r}")


def _qualified(code: Any) -> str:
    """`module.qualname` of a class or function of portscan (its text is in `code_digest`)."""
    module, name = getattr(code, "__module__", ""), getattr(code, "__qualname__", "")
    if not module.startswith("portscan.") or not name or "<" in name:
        raise NotCanonical(f"{module}.{name} is not a named part of portscan")
    return f"{module}.{name}"


# third-party code whose answers a result holds: ELF facts, disassembly, graphs, parsed
# JavaScript (with the Python version, keyed by `code_key`)
_LIBRARIES = ("lief", "capstone", "networkx", "tree-sitter", "tree-sitter-javascript")


def _project(name: str) -> str:
    """A distribution's name as its dist-info directory spells it, lowercased (PEP 503's
    runs of -, _ and . as one _)."""
    return _SEPARATORS.sub("_", name).lower()


_SEPARATORS = re.compile(r"[-_.]+")


@functools.cache
def library_versions() -> dict[str, str]:
    """The Python version and the installed version of each of `_LIBRARIES`: read from
    the name of its `NAME-VERSION.dist-info` directory, the first on sys.path, as pip
    installs it; else asked of importlib.metadata (other layouts), whose import alone
    was 15-30 ms of every scan, warm rescans included."""
    wanted = {_project(name): name for name in _LIBRARIES}
    found: dict[str, str | None] = {}  # None: an .egg-info comes first, metadata's to read
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for folder in names:
            stem, dot, kind = folder.lower().rpartition(".")
            if not dot or kind not in ("dist-info", "egg-info"):
                continue
            project = stem.rpartition("-")[0] if "-" in stem else stem  # NAME-VERSION
            name = wanted.get(_project(project))
            if name is not None and name not in found:
                found[name] = folder[len(project) + 1 : len(stem)] if kind == "dist-info" else None
    versions = {"python": sys.version}
    for name in _LIBRARIES:
        version = found.get(name)
        if version is None:
            from importlib import metadata

            try:
                version = metadata.version(name)
            except metadata.PackageNotFoundError:
                version = "absent"
        versions[name] = version
    return versions


@functools.cache
def code_digest() -> str:
    """A digest of portscan's source: every .py and .c file under the package (names and
    bytes, in the order of their paths' parts); computed once per process."""
    root = os.path.dirname(portscan.__file__)
    files = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = [name for name in subfolders if name != "__pycache__"]  # no source
        relative = os.path.relpath(folder, root)
        parts = () if relative == "." else tuple(relative.split(os.sep))
        files += [(*parts, name) for name in names if name.endswith((".py", ".c"))]
    digest = hashlib.sha256()
    for parts in sorted(files):
        path = os.path.join(root, *parts)
        if not os.path.isfile(path):
            continue
        digest.update("/".join(parts).encode() + b"\0")
        with open(path, "rb") as source:
            digest.update(source.read() + b"\0")
    return digest.hexdigest()[:20]


def code_key(analysers: Sequence[Analyser], keep: KeepPolicy) -> str:
    """What every whole result depends on besides its image and options: the portscan
    version, its source (`code_digest`), the libraries it asks (`library_versions`), the
    signatures/ data, the layer key. `store gc` drops the stored results of any other."""
    return _digest(
        {
            "portscan": __version__,
            "code": code_digest(),
            "libraries": library_versions(),
            "signatures": signatures_digest(signatures_dir()),
            "layer": layer_key(analysers, keep),
        }
    )


# SourceOptions fields that decide only how an image is reached (credentials, trust,
# patience), never what is found in it
_REACH_ONLY = frozenset(
    {"docker_config", "username", "password", "timeout", "ca_certs", "authfile"}
)


def sha256_layers(image: ImageMeta) -> bool:
    """Whether every layer is named by a sha256 blob digest (that reading verifies)."""
    return all(d.digest.startswith("sha256:") for d in image.layers)


def scan_result_key(
    reference: str, image: ImageMeta, options: ScanOptions, base: ImageMeta | None
) -> str | None:
    """The key of the result of scanning `image` (opened from `reference`) with
    `options`, `base` being the image `options.base` resolved to; None where a result
    must not be reused.

    The one place that says what a whole result depends on:
    - the image as its source resolved it (`ImageMeta`: reference, manifest digest,
      platform, the config's fields the analysis reads with its diff_ids and history,
      the ordered layer descriptors), when every layer is a sha256 blob: the blobs are
      verified as they are read, so the digests stand for their bytes;
    - every ScanOptions field but `content_dir` (where ELF files are kept), and the
      SourceOptions fields but credentials, trust and timeout (`_REACH_ONLY`);
    - with `base`, the base image's identity as well (a tag may move);
    - every PORTSCAN_* environment variable (the read limits, layers.Limits, are set
      there, and options given as variables are options);
    - `code_key`: the portscan version and source, Python and library versions, the
      signatures, analysers and keep policy.
    `sbom` runs syft, whose output the key cannot see: no reuse with it. An option
    `canonical` cannot spell means no reuse either; a guess is never made.
    """
    if options.sbom is not None or not sha256_layers(image):
        return None
    if options.base is not None and (base is None or not sha256_layers(base)):
        return None
    try:
        scan = {
            f.name: canonical(getattr(options, f.name))
            for f in dataclasses.fields(options)
            if f.name not in ("content_dir", "source")
        }
        source = {
            f.name: canonical(getattr(options.source, f.name))
            for f in dataclasses.fields(options.source)
            if f.name not in _REACH_ONLY
        }
        parts = {
            "reference": reference,
            "image": canonical(image),
            "base": canonical(base),
            "options": scan,
            "source": source,
            "environment": portscan_environment(),
            "code": code_key(options.analysers, options.keep),
        }
    except NotCanonical:
        return None
    return _digest(parts)
