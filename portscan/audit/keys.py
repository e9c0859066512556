"""What cached analysis is keyed by, and how a `LayerResult` is stored.

Two keys, both short hex strings (trivy fanal's idea: analyser versions go into the key,
so a better analyser invalidates exactly what it produced):

- `layer_key` keys per-layer results (with the layer's blob digest): the portscan
  `LAYER_FORMAT`, every analyser's name and version, the keep policy's name, and a
  fingerprint of the shape of the dataclasses a layer result holds (portscan.model and
  portscan.layers), so a stored pickle is never loaded into classes it no longer fits.
- `result_key` keys per-image results (with the manifest digest): the layer key plus
  what turns layers into a verdict: the portscan version, a digest of the signatures/
  data, and the scan options other than how to reach the image and how to read layers
  (e.g. `wasi_libc_as_of`).

Layers are cached under the digest of the blob as stored, which `read_layer` verifies
while reading, never under the config's `diff_id`, which nothing verifies before the
layer is read: an image cannot borrow another layer's analysis by claiming its diff_id.

A layer result is stored as `zlib(pickle(LayerResult))`: entries with their kept bytes
and analyser facts, whiteouts, opaque directories and skipped entries. Pickle is fast
and exact for these dataclasses; it trusts its input, so the store belongs in a
directory only its user writes (the XDG cache dir by default).
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect as pyinspect
import json
import pickle
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from portscan import __version__, layers, model
from portscan.inspect.elf import spec as elf_spec
from portscan.knowledge import tables as signatures
from portscan.layers import Analyser, KeepPolicy
from portscan.model import LayerResult
from portscan.scan import ScanOptions

# Bump when LayerResult's meaning changes without a change of shape, or when a keep
# policy starts keeping bytes it did not keep before (cached layers would lack them).
LAYER_FORMAT = 1
_COMPRESSION = 6


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
    """The key of per-layer results produced with these analysers and keep policy."""
    return _digest(
        {
            "format": LAYER_FORMAT,
            "analysers": sorted([a.name, a.version] for a in analysers),
            "keep": f"{keep.__module__}.{getattr(keep, '__qualname__', repr(keep))}",
            "shapes": shape_fingerprint(),
        }
    )


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
    return zlib.compress(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL), _COMPRESSION)


def decode_layer(blob: bytes) -> LayerResult:
    """A fresh `LayerResult` from its stored form (merging changes the objects it is
    given, so every image gets its own copy)."""
    result = pickle.loads(zlib.decompress(blob))
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
        sigs = signatures_digest(signatures.signatures_dir())
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
