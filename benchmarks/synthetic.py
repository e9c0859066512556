"""Synthetic OCI layouts for bench_syft.py: how cost grows with files and with bytes.

- `many-files`: one layer of ~100k small text files in a node_modules-like tree
  (package.json, index.js, README.md per package), ~1-3 KiB each.
- `one-gib`: one layer of 1 GiB in 256 files of 4 MiB, half-compressible data
  (seeded random bytes over a 16-letter alphabet), so gunzip has work to do.

Both are written once, streamed (never held in memory), under
$CORPUS_ROOT/synthetic/NAME (default /tmp/portscan-corpus), and reused afterwards.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

MIB = 1 << 20


class _Hashing(io.RawIOBase):
    """A write-only stream that hashes and counts what passes to `inner`."""

    def __init__(self, inner: BinaryIO) -> None:
        self.inner = inner
        self.hash = hashlib.sha256()
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.hash.update(data)
        self.count += len(data)
        self.inner.write(data)
        return len(data)


def _many_files(count: int = 100_000) -> Iterator[tuple[str, bytes]]:
    rng = random.Random(17)
    words = [f"w{i}" for i in range(500)]
    for package in range(count // 3):
        base = f"app/node_modules/pkg-{package // 100}/sub-{package % 100}"
        text = " ".join(rng.choices(words, k=rng.randint(150, 450)))
        yield f"{base}/package.json", json.dumps({"name": base, "version": "1.0.0"}).encode()
        yield f"{base}/index.js", f"module.exports = function () {{ return '{text}'; }};\n".encode()
        yield f"{base}/README.md", f"# {base}\n\n{text}\n".encode()


def _one_gib(files: int = 256, size: int = 4 * MIB) -> Iterator[tuple[str, bytes]]:
    rng = random.Random(17)
    alphabet = bytes(range(97, 113))
    for index in range(files):
        yield f"data/blob-{index:04d}.bin", bytes(rng.choices(alphabet, k=size))


def _write_blob(layout: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return digest


def _write_layout(layout: Path, files: Iterator[tuple[str, bytes]]) -> None:
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    partial = blobs / "layer.partial"
    with open(partial, "wb") as raw:
        compressed = _Hashing(raw)  # type: ignore[arg-type]
        with gzip.GzipFile(fileobj=compressed, mode="wb", compresslevel=1, mtime=0) as zipped:
            uncompressed = _Hashing(zipped)  # type: ignore[arg-type]
            with tarfile.open(fileobj=uncompressed, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                total = count = 0
                for name, data in files:
                    total, count = total + len(data), count + 1
                    info = tarfile.TarInfo(name)
                    info.size, info.mode, info.mtime = len(data), 0o644, 0
                    tar.addfile(info, io.BytesIO(data))
    layer = compressed.hash.hexdigest()
    partial.rename(blobs / layer)
    config = json.dumps({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{uncompressed.hash.hexdigest()}"]},
        "history": [{"created_by": f"synthetic {layout.name}"}],
    }).encode()  # fmt: skip
    config_digest = _write_blob(layout, config)
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": f"sha256:{config_digest}", "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": f"sha256:{layer}", "size": compressed.count}],
    }).encode()  # fmt: skip
    manifest_digest = _write_blob(layout, manifest)
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    (layout / "stats.json").write_text(json.dumps({"bytes": total, "files": count}))
    (layout / "index.json").write_text(json.dumps({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": f"sha256:{manifest_digest}", "size": len(manifest),
                       "annotations": {"org.opencontainers.image.ref.name": "latest"}}],
    }))  # fmt: skip


SYNTHETIC = {"many-files": _many_files, "one-gib": _one_gib}


def synthetic_layout(root: Path, name: str) -> Path:
    """The OCI layout of the synthetic image `name`, written on first use."""
    layout = root / "synthetic" / name
    if not (layout / "stats.json").exists():
        _write_layout(layout, SYNTHETIC[name]())
    return layout


def layout_stats(layout: Path) -> tuple[int, int]:
    """(bytes of file data, regular files) of a synthetic layout, as written."""
    stats = json.loads((layout / "stats.json").read_text())
    return stats["bytes"], stats["files"]
