"""The scan cache of `portscan image`: a rescan reads no layer and walks no library twice.

It lives in the results store the registry audit keeps ($XDG_CACHE_HOME/portscan/
store.db, portscan.audit.store), and reuses its machinery:

- Layers: each layer an image lists by a sha256 blob digest is looked up in the store's
  `layers` table under the current layer key (portscan.audit.keys: analyser versions,
  keep policy, dataclass shapes); a hit is replayed instead of fetching and reading the
  blob, a miss is read as usual and stored as soon as it is read.
- ELF bytes: reachability maps the files the ELF analyser kept by sha256; the cache keeps
  them in the store's content directory (store.db.content), so replayed layers still have
  them. A stored layer whose ELF files are missing there counts as a miss.
- Reachability walks (graph/reach.py): each (library sha256, root) walk is stored under a
  reach key (the portscan version and the call-graph code), so a warm scan runs no
  disassembler.

Every write is one SQLite transaction (WAL mode) and every content file lands by rename,
so concurrent scans share the cache safely. A new portscan or signatures version
changes the keys; what was stored under old keys is ignored (`portscan registry gc`
removes it). Nothing in the scan result depends on whether the cache was used.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
import time
import zlib
from pathlib import Path
from typing import BinaryIO

from portscan import __version__
from portscan.audit.keys import content_digests, decode_layer, encode_layer, layer_key
from portscan.audit.store import LayerRow, Store, default_path
from portscan.inspect.elf import callgraph, worker
from portscan.inspect.elf.callgraph import Reach
from portscan.inspect.elf.content import content_path
from portscan.inspect.elf.worker import ElfAnalyser
from portscan.model import ImageMeta, LayerDescriptor, LayerResult, ProgressFn, ScanResult
from portscan.scan import ScanOptions, scan_image
from portscan.sources import open_image
from portscan.sources.base import (
    BlobImageSource,
    ImageSource,
    LayerReader,
    ScanProgress,
    check_verifiable,
)
from portscan.sources.refs import parse_reference

REACH_FORMAT = 1  # bump when a stored Reach changes meaning without a code change
_CONSTRUCTORS = "\0constructors"  # the stored root of a constructors walk (root None)


def reach_key() -> str:
    """The key of stored walks: portscan version, REACH_FORMAT, the call-graph code
    (callgraph.py and its compiled sorter's source)."""
    code = Path(callgraph.__file__).read_bytes()
    code += Path(callgraph.__file__).with_name("_x86scan.c").read_bytes()
    parts = f"{__version__}\0{REACH_FORMAT}\0".encode() + code
    return hashlib.sha256(parts).hexdigest()[:20]


class StoredWalks:
    """Reachability walks kept in a results store (a graph.reach.ReachStore): read as
    they are asked for, written in one transaction by `flush`. An audit's image tasks
    share them through the store, so each distinct library is walked once per root."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.reach_key = reach_key()
        self._new_walks: list[tuple[str, str, bytes]] = []
        self.walks_reused = 0

    def get_reach(self, digest: str, root: str | None) -> Reach | None:
        data = self.store.reach(digest, _CONSTRUCTORS if root is None else root, self.reach_key)
        if data is None:
            return None
        found = pickle.loads(zlib.decompress(data))
        if not isinstance(found, Reach):
            return None
        self.walks_reused += 1
        return found

    def put_reach(self, digest: str, root: str | None, reach: Reach) -> None:
        data = zlib.compress(pickle.dumps(reach, protocol=pickle.HIGHEST_PROTOCOL), 1)
        self._new_walks.append((digest, _CONSTRUCTORS if root is None else root, data))

    def flush(self) -> None:
        """Store the walks made since the last flush."""
        if self._new_walks:
            self.store.put_reaches(self.reach_key, self._new_walks)
            self._new_walks = []


class ScanCache(StoredWalks):
    """Per-layer analysis, ELF bytes and reachability walks kept across scans."""

    def __init__(self, path: Path | None = None) -> None:
        super().__init__(Store(path or default_path()))
        self.content_dir = self.store.content_dir
        self.layers_reused = 0
        self.layers_read = 0

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> ScanCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- layers
    def layer(self, digest: str, key: str) -> LayerResult | None:
        """The stored analysis of a layer, if stored and every ELF file it found is
        still in the content directory."""
        data = self.store.layer(digest, key)
        if data is None:
            return None
        result = decode_layer(data)
        for sha256 in content_digests(result):
            if content_path(self.content_dir, sha256) is None:
                return None
        return result

    def put_layer(self, result: LayerResult, key: str, seconds: float) -> None:
        assert result.digest is not None
        row = LayerRow(
            result.digest,
            key,
            encode_layer(result),
            result.compressed_bytes,
            result.uncompressed_bytes,
            len(result.entries),
            round(seconds, 3),
        )
        self.store.put_layer(None, row)

    # -- scanning
    def scan(
        self, reference: str, options: ScanOptions, progress: ScanProgress | None = None
    ) -> ScanResult:
        """`scan.scan_image`, with layers and walks taken from (and added to) the cache."""
        options = dataclasses.replace(options, content_dir=self.content_dir)
        source = open_image(parse_reference(reference), options.source)
        if isinstance(source, BlobImageSource) and all(
            d.digest.startswith("sha256:") for d in source.meta.layers
        ):
            key = layer_key(options.analysers, options.keep)
            elf = any(isinstance(a, ElfAnalyser) for a in options.analysers)
            source = CachedLayersImage(source, self, key, elf)
        result = scan_image(reference, options, progress, source, reach_store=self)
        self.flush()
        return result


class CachedLayersImage(ImageSource):
    """An image whose layers come from the cache when stored there, else from `inner`
    (and then go into the cache)."""

    def __init__(
        self, inner: BlobImageSource, cache: ScanCache, key: str, elf: bool = True
    ) -> None:
        self.inner = inner
        self.cache = cache
        self.key = key
        self.elf = elf  # layers are read with the ELF analyser (start its worker early)

    def read_layers(
        self, reader: LayerReader, progress: ScanProgress | None = None
    ) -> tuple[ImageMeta, list[LayerResult]]:
        results = []
        check_verifiable(self.inner.meta)
        for descriptor in self.inner.meta.layers:
            if progress:
                progress.layer_started(descriptor)
            result = self.cache.layer(descriptor.digest, self.key)
            if result is not None:
                self.cache.layers_reused += 1
                if progress:
                    progress.layer_advanced(descriptor, max(descriptor.size, 0))
            else:
                result = self._read(reader, descriptor, progress)
            results.append(result)
            if progress:
                progress.layer_finished(descriptor)
        return self.inner.meta, results

    def _read(
        self, reader: LayerReader, descriptor: LayerDescriptor, progress: ScanProgress | None
    ) -> LayerResult:
        advance: ProgressFn | None = None
        if progress:
            advance = lambda n, d=descriptor: progress.layer_advanced(d, n)  # noqa: E731
        if self.elf:
            worker.start()  # lief loads in the worker while the blob is opened
        started = time.monotonic()
        blob: BinaryIO
        with self.inner.open_blob(descriptor) as blob:
            result = reader(blob, self.inner.layer_digest(descriptor), advance)
        if result.digest == descriptor.digest:  # stored before the merge changes it
            self.cache.put_layer(result, self.key, time.monotonic() - started)
            self.cache.layers_read += 1
        return result

    def close(self) -> None:
        self.inner.close()


def cache_bytes(cache: ScanCache) -> int:
    """The bytes the cache takes on disk: the store's files and the content directory."""
    total = sum(
        os.path.getsize(p)
        for p in (cache.store.path, Path(f"{cache.store.path}-wal"))
        if os.path.exists(p)
    )
    for entry in os.scandir(cache.content_dir):
        total += entry.stat().st_size
    return total
