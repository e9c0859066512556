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

- Whole results: `ScanCache.result`, what `portscan image` calls, looks the image up
  in the store's `results` table first, under keys.scan_result_key: the image as its
  source resolved it (manifest digest, platform, config, ordered layer digests; only
  where every layer is a sha256 blob), every scan option that can change the result
  (PORTSCAN_* variables included; options it cannot spell mean no reuse), and the code
  (portscan version, a digest of its source files, the versions of Python and of the
  libraries it asks, the signatures/ data, the analysers). A hit reads no layer and
  judges nothing: it is the stored result with a new `scanned_at` and
  `duration_seconds`, its JSON document stored encoded (codec.EncodedResult: the same
  bytes as encoding the result) and the result itself loaded only for another format
  or a gate. A miss scans as below and stores the form it was asked for: the document
  (`--format json`), else the result pickled. The other form is made when a hit first
  asks for it, and stored then: a document is encoded from the result, a result decoded
  from the document (pickling nginx's result cost a cold scan 0.25 s).

Every write is one SQLite transaction (WAL mode) and each process keeps ELF bytes in a
pack of its own (inspect/elf/content.py), so concurrent scans share the cache safely.
A new portscan or signatures version changes the keys; what was stored under old keys
is ignored (`portscan store gc` removes it). Nothing in the scan result depends on
whether the cache was used.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import hashlib
import json
import logging
import os
import pickle
import time
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import zstandard

from portscan import __version__
from portscan.audit.keys import (
    code_key,
    content_digests,
    decode_layer,
    encode_layer,
    layer_key,
    library_versions,
    scan_result_key,
    sha256_layers,
)
from portscan.audit.store import LayerRow, ResultRow, Store, default_path
from portscan.codec import (
    EncodedResult,
    document_parts,
    encoded_pieces,
    from_dict,
    pack,
    unpack,
)
from portscan.errors import PortscanError
from portscan.inspect.elf import worker
from portscan.inspect.elf.content import disk_bytes, locate
from portscan.inspect.elf.worker import ElfAnalyser
from portscan.layers import facts_ready, settle_facts
from portscan.model import ImageMeta, LayerDescriptor, LayerResult, ProgressFn, ScanResult
from portscan.scan import ScanOptions, scan_image, timestamp
from portscan.sources import open_image
from portscan.sources.base import (
    BlobImageSource,
    ImageSource,
    LayerReader,
    ScanProgress,
    check_verifiable,
)
from portscan.sources.refs import parse_reference

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # the call-graph code (and capstone) loads when a walk is asked for
    from portscan.inspect.elf.callgraph import Reach

REACH_FORMAT = 2  # bump when a stored Reach changes meaning or form without a code change
# (2: zstd, not zlib)
_CONSTRUCTORS = "\0constructors"  # the stored root of a constructors walk (root None)
# zstd's level 1: nginx's 3,600 walks in 0.03 s (zlib's level 1: 0.24 s), about as small
_WALK_COMPRESSION = 1


def reach_key() -> str:
    """The key of stored walks: portscan version, REACH_FORMAT, the versions of Python
    and the libraries (keys.library_versions), the call-graph code (callgraph.py and its
    compiled sorter's source)."""
    from portscan.inspect.elf import callgraph

    code = Path(callgraph.__file__).read_bytes()
    code += Path(callgraph.__file__).with_name("_x86scan.c").read_bytes()
    versions = library_versions()  # capstone decodes, Python's re reads its text
    parts = f"{__version__}\0{REACH_FORMAT}\0{versions}\0".encode() + code
    return hashlib.sha256(parts).hexdigest()[:20]


class StoredWalks:
    """Reachability walks kept in a results store (a graph.reach.ReachStore): read as
    they are asked for, written in one transaction by `flush`. An audit's image tasks
    share them through the store, so each distinct library is walked once per root."""

    walk_level = _WALK_COMPRESSION

    def __init__(self, store: Store) -> None:
        self.store = store
        self._new_walks: list[tuple[str, str, bytes]] = []
        self._stored: dict[str, bool] = {}  # digest -> whether the store holds walks of it
        self.walks_reused = 0

    @functools.cached_property
    def reach_key(self) -> str:
        """The current `reach_key` (made on first use: a whole result walks nothing)."""
        return reach_key()

    def get_reach(self, digest: str, root: str | None) -> Reach | None:
        from portscan.inspect.elf.callgraph import Reach

        stored = self._stored.get(digest)
        if stored is None:  # asked once a file: a cold scan's thousands of walks ask nothing
            stored = self._stored[digest] = self.store.has_reaches(digest, self.reach_key)
        if not stored:
            return None
        data = self.store.reach(digest, _CONSTRUCTORS if root is None else root, self.reach_key)
        if data is None:
            return None
        found = unpack(data)
        if not isinstance(found, Reach):
            return None
        self.walks_reused += 1
        return found

    def put_reach(
        self, digest: str, root: str | None, reach: Reach, packed: bytes | None = None
    ) -> None:
        """Keep a walk (`packed`: its stored form made already, by the walk helper)."""
        data = pack(reach, self.walk_level) if packed is None else packed
        self._new_walks.append((digest, _CONSTRUCTORS if root is None else root, data))

    def flush(self) -> None:
        """Store the walks made since the last flush."""
        if self._new_walks:
            self.store.put_reaches(self.reach_key, self._new_walks)
            self._stored.update((digest, True) for digest, _, _ in self._new_walks)
            self._new_walks = []


class ScanCache(StoredWalks):
    """Per-layer analysis, ELF bytes and reachability walks kept across scans."""

    def __init__(self, path: Path | None = None) -> None:
        super().__init__(Store(path or default_path()))
        self.content_dir = self.store.content_dir
        self.layers_reused = 0
        self.layers_read = 0
        self.results_reused = 0

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
            if locate(self.content_dir, sha256) is None:
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
    def result(
        self,
        reference: str,
        options: ScanOptions,
        progress: ScanProgress | None = None,
        document: bool = True,
        needed: bool = True,
    ) -> ScanResult | EncodedResult:
        """The result of scanning `reference`: the stored one when the store holds it
        under its keys.scan_result_key, else `scan`'s, then stored. `document`: the
        caller writes the JSON document, so it is made (or taken) encoded, stored, and
        returned as an EncodedResult. `needed`: the caller also reads the result itself
        (another format, a gate), so it is stored pickled; a JSON-only scan stores the
        document alone (pickling nginx's result costs 0.25 s), and a table scan the
        pickle alone (a 34 MB document costs more). A later call that wants the other
        form makes it (from the result, or decoded from the document) and stores it.
        An image or options without a key are scanned and nothing whole is stored."""
        started = time.monotonic()
        scanned_at = timestamp()
        options = dataclasses.replace(options, content_dir=self.content_dir)
        source = open_image(parse_reference(reference), options.source)
        try:
            key = None
            if isinstance(source, BlobImageSource):
                key = scan_result_key(reference, source.meta, options, _base_image(options))
            stored = self.store.result(key) if key is not None else None
        except BaseException:
            source.close()
            raise
        if stored is not None:
            source.close()
            for descriptor in source.meta.layers:
                _replayed(descriptor, progress)
            self.results_reused += 1
            seconds = round(time.monotonic() - started, 3)
            log.debug("reused the stored result %s in %.2f s", key, seconds)
            return self._reused(stored, scanned_at, seconds, document, needed)
        result = self._scan(reference, options, progress, source)
        if key is None:
            return result
        encoded = _encoded(result) if document else None
        row = ResultRow(
            key,
            code_key(options.analysers, options.keep),
            reference,
            _pickled(result) if needed or not document else b"",
            encoded.head if encoded else "",
            encoded.tail if encoded else b"",  # empty: no document stored (yet)
            result.duration_seconds,
        )
        self.store.put_result(row)
        return encoded or result

    def _reused(
        self, stored: ResultRow, scanned_at: str, seconds: float, document: bool, needed: bool
    ) -> ScanResult | EncodedResult:
        """A stored result, with the times of its reuse, in the forms asked for; a form
        the row lacks is made from the other and stored."""
        loaded = None
        if needed or not document or not stored.tail:
            loaded = _stored_whole(stored, scanned_at, seconds)
            if not stored.data:
                stored = dataclasses.replace(stored, data=_pickled(loaded))
                self.store.put_result(stored)
        if not document:
            assert loaded is not None
            return loaded
        if not stored.tail:
            assert loaded is not None
            encoded = _encoded(loaded)
            self.store.put_result(dataclasses.replace(stored, head=encoded.head, tail=encoded.tail))
            return encoded
        if loaded is not None:
            load = functools.partial(_same, loaded)
        else:  # not wanted: made on demand, and not stored (the store may be closed by then)
            load = functools.partial(_stored_whole, stored, scanned_at, seconds)
        return EncodedResult(scanned_at, seconds, stored.head, stored.tail, load)

    def scan(
        self, reference: str, options: ScanOptions, progress: ScanProgress | None = None
    ) -> ScanResult:
        """`scan.scan_image`, with layers and walks taken from (and added to) the cache."""
        options = dataclasses.replace(options, content_dir=self.content_dir)
        source = open_image(parse_reference(reference), options.source)
        return self._scan(reference, options, progress, source)

    def _scan(
        self,
        reference: str,
        options: ScanOptions,
        progress: ScanProgress | None,
        source: ImageSource,
    ) -> ScanResult:
        if isinstance(source, BlobImageSource) and sha256_layers(source.meta):
            key = layer_key(options.analysers, options.keep)
            elf = any(isinstance(a, ElfAnalyser) for a in options.analysers)
            source = CachedLayersImage(source, self, key, elf)
        result = scan_image(reference, options, progress, source, reach_store=self)
        self.flush()
        return result


def _base_image(options: ScanOptions) -> ImageMeta | None:
    """The image `--base` names as its source resolves it, where that is known without
    reading a layer (else None: the scan reads it, and its result is not reused)."""
    if options.base is None:
        return None
    try:
        with open_image(parse_reference(options.base), options.source) as base:
            return base.meta if isinstance(base, BlobImageSource) else None
    except PortscanError:
        return None  # the scan says what is wrong with it


class _Compressed:
    """A write-only file that zstd-compresses what it is given (level 1: nginx's 34 MB
    document in 0.02 s, five times zlib's speed at half its size): a stored form is made
    without its uncompressed bytes ever being held whole (an 18 MB pickle, the
    document). zstd compresses in a thread of its own (`threads=1`), beside the Python
    that makes the next piece: nginx's document 0.175 -> 0.155 s."""

    def __init__(self) -> None:
        self._compress = zstandard.ZstdCompressor(level=1, threads=1).compressobj()
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(self._compress.compress(data))
        return len(data)

    def value(self) -> bytes:
        """Everything written, compressed (call once, at the end)."""
        return b"".join(self._parts) + self._compress.flush()


def _pickled(result: ScanResult) -> bytes:
    """The stored form of a whole result: zstd(pickle)."""
    sink = _Compressed()
    pickle.Pickler(sink, protocol=pickle.HIGHEST_PROTOCOL).dump(result)
    return sink.value()


def _encoded(result: ScanResult) -> EncodedResult:
    """`result` with its JSON document encoded (the tail compressed as it is made)."""
    head, after = document_parts(result)
    sink = _Compressed()
    batch: list[bytes] = []
    size = 0
    for piece in after:
        batch.append(piece)
        size += len(piece)
        if size >= 1 << 20:
            sink.write(b"".join(batch))
            batch, size = [], 0
    sink.write(b"".join(batch))
    return EncodedResult(
        result.scanned_at, result.duration_seconds, head, sink.value(), lambda: result
    )


def _stored_whole(stored: ResultRow, scanned_at: str, seconds: float) -> ScanResult:
    """The result a stored row holds, with the times of its reuse: unpickled, else
    decoded from its JSON document. The document holds all of it but the bytes of the
    small files a scan keeps to read (`files[].data`, which nothing after the scan
    reads): every format renders it as it renders the result that was encoded
    (tests/test_result_cache.py)."""
    collecting = gc.isenabled()
    gc.disable()  # else the collector walks the growing result again and again (nginx: 5x)
    try:
        if stored.data:
            result = unpack(stored.data)
        else:
            document = b"".join(encoded_pieces(stored.head, stored.tail, scanned_at, seconds))
            result = from_dict(json.loads(document), "a stored result")
    finally:
        if collecting:
            gc.enable()
    if not isinstance(result, ScanResult):
        raise TypeError(f"a stored result decoded to a {type(result).__name__}")
    return dataclasses.replace(result, scanned_at=scanned_at, duration_seconds=seconds)


def _same(result: ScanResult) -> ScanResult:
    return result


def _replayed(descriptor: LayerDescriptor, progress: ScanProgress | None) -> None:
    """Progress events of a layer taken from the store (not read)."""
    if progress:
        progress.layer_started(descriptor)
        progress.layer_advanced(descriptor, max(descriptor.size, 0))
        progress.layer_finished(descriptor)


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
        read: list[tuple[LayerResult, float]] = []  # to store once their facts are settled
        try:
            for descriptor in self.inner.meta.layers:
                result = self.cache.layer(descriptor.digest, self.key)
                if result is not None:
                    self.cache.layers_reused += 1
                    _replayed(descriptor, progress)
                else:
                    if progress:
                        progress.layer_started(descriptor)
                    result = self._read(reader, descriptor, progress, read)
                    if progress:
                        progress.layer_finished(descriptor)
                results.append(result)
        except BaseException:  # keep the layers read whose facts are in: the next scan
            # reads no more than the rest (the error, not a failed store, is what is told)
            with contextlib.suppress(Exception):
                self._store([(r, seconds) for r, seconds in read if facts_ready(r)])
            raise
        self._store(read)
        return self.inner.meta, results

    def _read(
        self,
        reader: LayerReader,
        descriptor: LayerDescriptor,
        progress: ScanProgress | None,
        read: list[tuple[LayerResult, float]],
    ) -> LayerResult:
        """Read one layer; one to store goes into `read` with its seconds of reading."""
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
            read.append((result, time.monotonic() - started))
        return result

    def _store(self, read: list[tuple[LayerResult, float]]) -> None:
        """Settle the facts of layers read (the reader may leave the ELF worker's to
        come) and put them in the cache."""
        for result, seconds in read:
            settle_facts(result)
            self.cache.put_layer(result, self.key, seconds)
            self.cache.layers_read += 1

    def close(self) -> None:
        self.inner.close()


def cache_bytes(cache: ScanCache) -> int:
    """The bytes the cache takes on disk: the store's files and the content directory."""
    total = sum(
        os.path.getsize(p)
        for p in (cache.store.path, Path(f"{cache.store.path}-wal"))
        if os.path.exists(p)
    )
    return total + disk_bytes(cache.content_dir)
