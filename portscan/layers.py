"""Stream layers once and merge them into one `Tree`, writing nothing to disk.

Two steps, so that layers can be read in any order (a `docker save` stream puts
the manifest last) and analysed independently (the per-layer cache keys on the
layer digest):

1. `read_layer` reads one blob as a stream: it checks the sha256 against the
   descriptor while reading, decompresses (gzip, zstd or plain tar, told apart by
   magic bytes), hashes the uncompressed tar (checked against the config's diff_id),
   walks the tar entries (a header with a bad checksum is refused, not taken for the
   end of the archive) and returns a `LayerResult`. Each regular file's first bytes
   go to the `KeepPolicy` (keep the bytes for later stages?) and to the analysers
   (compute facts now, from the bytes, while they stream by). Memory is bounded by
   `Limits`: a file larger than a limit is not read, and says so in `skipped`.
   Facts an analyser computes in another process arrive later: `settle_facts` waits
   for them, at the layer's end or, with `settle=False`, when the caller asks (the
   next layer is read meanwhile).
2. `merge_layers` applies the results in order: whiteouts (`.wh.NAME`) and opaque
   directories (`.wh..wh..opq`) remove what lower layers wrote; every other entry
   replaces what was at its path. Paths are resolved inside the tree only: `..` that
   would climb above `/` is refused, absolute names are rooted at `/`, and a parent
   that is a symlink is followed within the tree (as runtimes do with securejoin),
   so no entry can name anything outside the image.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import posixpath
import re
import tarfile
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from queue import Full, Queue
from typing import Any, BinaryIO, Protocol, runtime_checkable

from portscan.model import LayerResult, ProgressFn

try:  # Intel ISA-L inflates gzip about 2.4x faster than zlib on the same data
    from isal import isal_zlib as inflate
except ImportError:  # pragma: no cover - isal is a dependency; zlib is the fallback
    inflate = zlib  # type: ignore[misc]

from portscan.errors import CorruptImageError, PortscanError, UsageError
from portscan.model import FileEntry, FileKind, LayerDescriptor
from portscan.sources.validate import verifiable

try:  # plain tar headers read in C (_tarscan.c), if it was built; else all by tarfile
    from portscan._tarscan import header as _plain_header
except ImportError:  # pragma: no cover - built with portscan where a C compiler is
    _plain_header = None

HEAD_BYTES = 64  # what keep policies and analysers see before deciding
WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
_CHUNK = 1 << 20
STREAM_FILE = 16 << 20  # a file this large that only one analyser wants streams to it
_MiB = 1 << 20
_ZSTD_PIECE = 1 << 10
_MAX_HEADER_READ = 16 * _MiB  # a tar (pax, GNU long name) header tarfile reads whole
NOT_READ = "not-read"  # the fact set on a file a limit kept from being read: why


@dataclass(frozen=True)
class Limits:
    """How many bytes of one image may be held in memory at once (docs/security.md).

    `analyse_file`: the largest file handed to an analyser (ELF); `keep_file`: the
    largest file kept for later stages (package databases, jars, scripts);
    `keep_total`: all kept files of one scan together; `entries`: the tar entries of
    all layers of one scan (each costs about 0.25 KiB until the scan ends: 500,000
    empty files peak at 266 MiB over the process tree, docs/security.md). Each can
    be changed with the environment variable named in `ENV`, in MiB (a count for
    `entries`)."""

    analyse_file: int = 256 * _MiB
    keep_file: int = 128 * _MiB
    keep_total: int = 384 * _MiB
    entries: int = 500_000

    ENV = {
        "analyse_file": "PORTSCAN_MAX_ANALYSE_MIB",
        "keep_file": "PORTSCAN_MAX_KEEP_MIB",
        "keep_total": "PORTSCAN_MAX_KEEP_TOTAL_MIB",
        "entries": "PORTSCAN_MAX_ENTRIES",
    }
    UNIT = {"entries": (1, "number of tar entries")}

    @classmethod
    def from_env(cls) -> Limits:
        """The defaults, with any limit the environment sets (`UsageError` for a value
        that is not a whole number)."""
        values = {}
        for name, variable in cls.ENV.items():
            raw = os.environ.get(variable)
            if raw is None:
                continue
            unit, what = cls.UNIT.get(name, (_MiB, "number of MiB"))
            if not raw.strip().isdigit():
                raise UsageError(f"{variable}={raw[:40]!r} is not a whole {what}")
            values[name] = int(raw) * unit
        return cls(**values)


class ReadBudget:
    """What the files kept so far cost; one per scan, shared by its layers."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits.from_env()
        self.kept = 0
        self.entries = 0
        self._lock = threading.Lock()

    def count_entry(self) -> None:
        """Count one tar entry of the scan; past `Limits.entries`, the scan stops."""
        with self._lock:
            self.entries += 1
            if self.entries <= self.limits.entries:
                return
        variable = Limits.ENV["entries"]
        raise CorruptImageError(
            f"the image has more than {self.limits.entries} tar entries, "
            f"the limit of one scan ({variable})",
            f"each entry is held in memory until the scan ends; raise {variable} to scan it",
        )

    def take(self, size: int) -> bool:
        """Reserve `size` kept bytes, or say there is no room for them."""
        with self._lock:
            if self.kept + size > self.limits.keep_total:
                return False
            self.kept += size
            return True


class Analyser(Protocol):
    """Computes facts from one file's bytes while its layer streams by (trivy-style).

    `version` goes into the per-layer cache key: bump it when the output changes.
    """

    name: str
    version: int

    def wants(self, path: str, head: bytes) -> bool: ...

    def analyse(self, path: str, data: bytes | bytearray) -> Any:
        """The facts, or a concurrent.futures.Future of them (`settle_facts` waits for it).
        `data` is a bytearray for a file that is not also kept."""
        ...


@runtime_checkable
class StreamingAnalyser(Analyser, Protocol):
    """An analyser that also takes a large file as it streams by (`STREAM_FILE`)."""

    def analyse_stream(self, path: str, chunks: Iterable[bytes]) -> Any:
        """`analyse` for the file whose bytes `chunks` yields, read to the end."""
        ...


KeepPolicy = Callable[[str, bytes], bool]


class AnalysisFailed(Exception):
    """An analyser could not analyse one file (a bug in it, or a library failing on
    crafted bytes in a way nothing expected). The file gets `fact` (the analyser's
    record of the failure, e.g. a `Binary` with `error` set; None: no fact) and the scan
    a warning naming the file, instead of failing as a whole (docs/security.md)."""

    def __init__(self, reason: str, fact: Any = None) -> None:
        super().__init__(reason, fact)
        self.reason = reason
        self.fact = fact

    def __str__(self) -> str:
        return self.reason


def failure_reason(exc: BaseException) -> str:
    """`Type: message` of an unexpected exception, on one line and at most 200 chars."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= 200 else text[:199] + "…"


# --------------------------------------------------------------------------- reading


class _VerifyingReader(io.RawIOBase):
    """Reads a blob stream, hashing every byte; `finish()` checks digest and size."""

    def __init__(self, raw: BinaryIO, digest: str | None, size: int, progress: ProgressFn | None):
        self._raw = raw
        self._expected = digest
        self._size = size
        self._progress = progress
        algorithm = verifiable(digest, "layer blob").split(":", 1)[0] if digest else "sha256"
        self.algorithm = algorithm
        self.hash = hashlib.new(algorithm)
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n if n is not None and n >= 0 else _CHUNK)
        if data:
            self.hash.update(data)
            self.count += len(data)
            if self._progress:
                self._progress(len(data))
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def finish(self) -> None:
        """Drain what the tar walk left (padding, trailing blocks) and check the digest."""
        while self.read(_CHUNK):
            pass
        if self._expected is None:
            return
        actual = f"{self.hash.name}:{self.hash.hexdigest()}"
        if actual != self._expected:
            raise CorruptImageError(
                f"blob {self._expected} does not match its digest (read {actual})",
                "the blob is corrupt or was tampered with; re-push or re-save the image",
            )
        if self._size >= 0 and self.count != self._size:
            raise CorruptImageError(
                f"blob {self._expected} is {self.count} bytes, the manifest says {self._size}"
            )


class _Decompressor(io.RawIOBase):
    """A readable stream of the uncompressed tar, whatever the blob's compression."""

    def __init__(self, source: _VerifyingReader, algorithm: str = "sha256"):
        self._source = source
        first = source.read(_CHUNK)
        self._pending = b""
        self._pos = 0
        self.count = 0
        self.last_block = b""  # the last 512-byte read: tarfile's last header
        self._hash: Any = None  # of the uncompressed bytes; a plain tar's is the source's
        if first.startswith(b"\x1f\x8b"):
            chunks = self._hashed(self._zlib_stream(first), algorithm)
        elif first.startswith(b"\x28\xb5\x2f\xfd"):
            chunks = self._hashed(self._zstd_stream(first), algorithm)
        elif source.algorithm == algorithm:
            chunks = self._plain_stream(first)
        else:
            chunks = self._hashed(self._plain_stream(first), algorithm)
        self._decompress = _prefetch(chunks)

    def _hashed(self, chunks: Iterator[bytes], algorithm: str) -> Iterator[bytes]:
        self._hash = hashlib.new(algorithm)
        for chunk in chunks:  # runs in the prefetch thread, beside the inflating
            self._hash.update(chunk)
            yield chunk

    @property
    def digest(self) -> str:
        """The digest of the uncompressed tar; valid once the stream is drained."""
        hashed = self._hash if self._hash is not None else self._source.hash
        return f"{hashed.name}:{hashed.hexdigest()}"

    def close(self) -> None:
        """Stop the prefetch thread now, from this thread (also after an error)."""
        if not self.closed:
            self._decompress.close()  # type: ignore[attr-defined]
        super().close()

    def drain(self) -> None:
        """Consume what the tar walk left, so the whole blob has been read and checked."""
        self.count += len(self._pending) - self._pos
        self._pending, self._pos = b"", 0
        for chunk in self._decompress:
            self.count += len(chunk)

    def seekable(self) -> bool:
        return True  # forward only: enough for tarfile's sequential "r:" reading

    def tell(self) -> int:
        return self.count

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Skip forward to `offset` (tarfile jumps over members it does not read)."""
        target = offset if whence == io.SEEK_SET else self.count + offset
        if whence not in (io.SEEK_SET, io.SEEK_CUR) or target < self.count:
            raise io.UnsupportedOperation("a layer stream only moves forward")
        while self.count < target:  # skipped bytes are dropped, never copied
            available = len(self._pending) - self._pos
            if not available:
                chunk = next(self._decompress, None)
                if chunk is None:
                    break
                self._pending, self._pos = chunk, 0
                continue
            step = min(available, target - self.count)
            self._pos += step
            self.count += step
        return self.count

    def readable(self) -> bool:
        return True

    def _plain_stream(self, first: bytes) -> Iterator[bytes]:
        chunk = first
        while chunk:
            yield chunk
            chunk = self._source.read(_CHUNK)

    def _zlib_stream(self, first: bytes) -> Iterator[bytes]:
        """Inflate at most `_CHUNK` bytes at a time: a MiB of gzip can hold a GiB."""
        decoder = inflate.decompressobj(31)
        data = first
        try:
            while data:
                if decoder.eof:  # concatenated gzip members (pigz, some tools)
                    decoder = inflate.decompressobj(31)
                out = decoder.decompress(data, _CHUNK)
                if out:
                    yield out
                data = decoder.unused_data if decoder.eof else decoder.unconsumed_tail
                if not data:
                    data = self._source.read(_CHUNK)
            yield decoder.flush()
        except (zlib.error, inflate.error) as exc:
            raise CorruptImageError(f"layer is not valid gzip: {exc}") from None
        if not decoder.eof:
            raise CorruptImageError("layer is truncated: its gzip stream ends early")

    def _zstd_stream(self, first: bytes) -> Iterator[bytes]:
        try:
            import zstandard
        except ImportError:  # pragma: no cover - zstandard is a dependency
            raise CorruptImageError(
                "zstd layer found but the zstandard module is missing"
            ) from None
        decoder = zstandard.ZstdDecompressor().decompressobj()
        chunk = first
        # decompressobj has no output limit, so the input goes in pieces: a zstd RLE
        # block turns 4 bytes into 128 KiB, so a piece yields at most 32 MiB.
        out: list[bytes] = []
        have = 0
        try:
            while chunk:
                view = memoryview(chunk)
                for start in range(0, len(view), _ZSTD_PIECE):
                    piece: Any = view[start : start + _ZSTD_PIECE]
                    # several frames (zstd:chunked, skippable frames) start a new decoder
                    while piece:
                        if decoder.eof:
                            decoder = zstandard.ZstdDecompressor().decompressobj()
                        data = decoder.decompress(piece)
                        piece = decoder.unused_data if decoder.eof else b""
                        out.append(data)
                        have += len(data)
                    if have >= _CHUNK:
                        yield b"".join(out)
                        out, have = [], 0
                chunk = self._source.read(_CHUNK)
            yield b"".join(out)
        except zstandard.ZstdError as exc:
            raise CorruptImageError(f"layer is not valid zstd: {exc}") from None
        if not decoder.eof:
            raise CorruptImageError("layer is truncated: its zstd stream ends inside a frame")

    def read(self, n: int = -1) -> bytes:
        """tarfile's reads: headers, and extended headers (pax, GNU long names) whole,
        so a header of more than `_MAX_HEADER_READ` bytes is refused, not buffered."""
        if n is None or n < 0 or n > _MAX_HEADER_READ:
            raise CorruptImageError(
                f"a tar extended header of {n} bytes at offset {self.count}; "
                f"at most {_MAX_HEADER_READ} are read"
            )
        return self.read_data(n)

    def read_buffer(self, n: int) -> bytearray:
        """The next `n` bytes (fewer at the end) in one buffer allocated up front: no
        list of chunks beside a joined copy, so a file costs its size once."""
        buffer = bytearray(n)
        have = 0
        while have < n:
            if self._pos >= len(self._pending):
                chunk = next(self._decompress, None)
                if chunk is None:
                    del buffer[have:]
                    break
                self._pending, self._pos = chunk, 0
            take = min(n - have, len(self._pending) - self._pos)
            buffer[have : have + take] = memoryview(self._pending)[self._pos : self._pos + take]
            have += take
            self._pos += take
        self.count += have
        return buffer

    def iter_data(self, n: int) -> Iterator[bytes]:
        """The next `n` bytes in pieces of the stream's chunks; EOFError when the stream
        ends before (a truncated member)."""
        while n:
            if self._pos >= len(self._pending):
                chunk = next(self._decompress, None)
                if chunk is None:
                    raise EOFError
                self._pending, self._pos = chunk, 0
            take = min(n, len(self._pending) - self._pos)
            yield self._pending[self._pos : self._pos + take]
            self._pos += take
            self.count += take
            n -= take

    def read_data(self, n: int) -> bytes:
        """The next `n` bytes (fewer at the end of the stream)."""
        if n < 0:
            data = b"".join([self._pending[self._pos :], *self._decompress])
            self._pending, self._pos = b"", 0
        elif self._pos + n <= len(self._pending):
            data = self._pending[self._pos : self._pos + n]
            self._pos += n
        else:
            parts = [self._pending[self._pos :]]
            have = len(parts[0])
            last, used = b"", 0
            while have < n:
                chunk = next(self._decompress, None)
                if chunk is None:
                    break
                used = min(len(chunk), n - have)
                parts.append(chunk[:used] if used < len(chunk) else chunk)
                have += used
                last = chunk
            # one allocation for the data; the rest of the last chunk stays pending
            data = b"".join(parts)
            self._pending, self._pos = (last, used) if used < len(last) else (b"", 0)
        self.count += len(data)
        if n == tarfile.BLOCKSIZE:
            self.last_block = data
        return data

    def peek(self, n: int) -> bytes:
        """Up to `n` next bytes, without consuming them."""
        while len(self._pending) - self._pos < n:
            chunk = next(self._decompress, None)
            if chunk is None:
                break
            self._pending = self._pending[self._pos :] + chunk
            self._pos = 0
        return self._pending[self._pos : self._pos + n]

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


_DONE = object()


def _prefetch(chunks: Iterator[bytes], depth: int = 8) -> Iterator[bytes]:
    """Run `chunks` (read, hash, inflate) in a thread while the caller parses tar
    headers: ISA-L, zlib and hashlib release the GIL, so the two overlap on two cores.
    Errors raised in the thread are re-raised in the caller."""
    queue: Queue[Any] = Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for chunk in chunks:
                while not stop.is_set():
                    try:
                        queue.put(chunk, timeout=0.1)
                        break
                    except Full:
                        continue
                if stop.is_set():
                    return
            queue.put(_DONE)
        except BaseException as exc:  # handed to the consumer, not lost in the thread
            queue.put(exc)

    worker = threading.Thread(target=produce, name="portscan-inflate", daemon=True)
    worker.start()
    try:
        while (item := queue.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        if threading.current_thread() is not worker:  # closed by garbage collection there
            worker.join()


_KINDS = {
    tarfile.REGTYPE: FileKind.FILE,
    tarfile.AREGTYPE: FileKind.FILE,
    tarfile.CONTTYPE: FileKind.FILE,
    tarfile.DIRTYPE: FileKind.DIR,
    tarfile.SYMTYPE: FileKind.SYMLINK,
    tarfile.LNKTYPE: FileKind.HARDLINK,
    tarfile.CHRTYPE: FileKind.CHAR,
    tarfile.BLKTYPE: FileKind.BLOCK,
    tarfile.FIFOTYPE: FileKind.FIFO,
}


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")  # C0, DEL and C1 control characters


def printable(name: str) -> str:
    """A tar name as text: tarfile decodes bytes that are not UTF-8 to lone surrogates
    (surrogateescape), which no report can print; they become `\\xNN` escapes. So do
    control characters (terminal escape sequences, line breaks): no name can move a
    terminal's cursor or start a line of a report."""
    if not name.isascii():
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            raw = name.encode("utf-8", "surrogateescape" if _escaped_only(name) else "replace")
            name = raw.decode("utf-8", "backslashreplace")
    if _CONTROL.search(name):
        name = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", name)
    return name


def _escaped_only(name: str) -> bool:
    """Whether every surrogate in `name` is one surrogateescape made (U+DC80-U+DCFF)."""
    return all(not 0xD800 <= ord(c) <= 0xDFFF or 0xDC80 <= ord(c) <= 0xDCFF for c in name)


def safe_path(name: str) -> str | None:
    """Normalise a tar entry name to an absolute path inside the tree, or None if it
    climbs above the root (`../etc/passwd`). Absolute names are rooted at `/`."""
    stripped = name.lstrip("/")
    if not stripped or stripped in (".", "./"):
        return "/"
    parts: list[str] = []
    for part in stripped.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
        else:
            parts.append(part)
    return "/" + "/".join(parts)


def read_layer(
    blob: BinaryIO,
    descriptor: LayerDescriptor,
    keep: KeepPolicy,
    analysers: Sequence[Analyser] = (),
    progress: ProgressFn | None = None,
    budget: ReadBudget | None = None,
    settle: bool = True,
) -> LayerResult:
    """Read one layer blob once: verify, decompress, walk; see the module docstring.

    The digest checked is the descriptor's `digest`; for `docker save` layers, which
    are stored uncompressed, the source passes the diff_id there. The uncompressed
    tar is checked against `diff_id` when the descriptor has one, and its digest is
    in the result's `diff_id` either way. `budget` bounds the bytes kept (one per
    scan; a fresh one for this layer alone when None). With `settle` false, facts an
    analyser computes elsewhere may still be Futures (`settle_facts`).
    """
    name = descriptor.digest or "(being read)"
    if descriptor.size is not None and descriptor.size < -1:
        raise CorruptImageError(f"layer {name} has a negative size {descriptor.size}")
    algorithm = "sha256"
    if descriptor.diff_id:
        algorithm = verifiable(descriptor.diff_id, f"layer {name}: diff_id").split(":")[0]
    source = _VerifyingReader(blob, descriptor.digest, descriptor.size, progress)
    stream = _Decompressor(source, algorithm)
    budget = budget or ReadBudget()
    with stream:
        result = _read_tar(stream, source, descriptor, name, keep, analysers, budget)
    if settle:
        settle_facts(result)
    return result


def _read_tar(
    stream: _Decompressor,
    source: _VerifyingReader,
    descriptor: LayerDescriptor,
    name: str,
    keep: KeepPolicy,
    analysers: Sequence[Analyser],
    budget: ReadBudget,
) -> LayerResult:
    result = LayerResult(digest=descriptor.digest)
    try:
        with tarfile.open(fileobj=stream, mode="r:", errorlevel=1) as archive:
            member: tarfile.TarInfo | _Header | None = archive.next()
            while member is not None:
                archive.members.clear()  # tarfile keeps every header it read otherwise
                budget.count_entry()
                _add_member(stream, member, result, keep, analysers, budget)
                member = _next_member(archive, stream)
    except tarfile.TarError as exc:
        raise CorruptImageError(
            f"layer {name} is not a valid tar archive: {exc}",
            "the blob is truncated or not a layer",
        ) from None
    except EOFError:
        raise CorruptImageError(f"layer {name} ends in the middle of a file") from None
    except CorruptImageError as exc:  # from an entry: say which layer it is in
        raise CorruptImageError(f"layer {name}: {exc.message}", exc.hint) from None
    _check_end(stream, name)
    stream.drain()
    source.finish()
    result.diff_id = stream.digest
    if descriptor.diff_id is not None and result.diff_id != descriptor.diff_id:
        raise CorruptImageError(
            f"layer {name}: its uncompressed tar is {result.diff_id}, "
            f"the config's rootfs.diff_ids says {descriptor.diff_id}",
            "the image is corrupt or was tampered with; re-push or re-save it",
        )
    result.compressed_bytes = source.count
    result.uncompressed_bytes = stream.count
    return result


class _Header:
    """The fields `_add_member` reads of a plain tar header (`_next_member`)."""

    __slots__ = ("gid", "linkname", "mode", "name", "offset_data", "size", "type", "uid")

    def __init__(self, fields: tuple[str, str, bytes, int, int, int, int], data: int) -> None:
        self.name, self.linkname, self.type, self.mode, self.uid, self.gid, self.size = fields
        self.offset_data = data


_DATA_FOLLOWS = frozenset({tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE})
_TEXT = ("utf-8", "surrogateescape")  # how _tarscan decodes names, as tarfile does here


def _next_member(
    archive: tarfile.TarFile, stream: _Decompressor
) -> tarfile.TarInfo | _Header | None:
    """`archive.next()`, with a plain header (a ustar or GNU header of a file, link,
    directory or device, plain octal numbers, no pax header in force) read in C: the
    same fields, stream position and next offset as tarfile's, in a fraction of the
    time. Any other header, and every refusal, is tarfile's own."""
    if _plain_header is None or archive.pax_headers or (archive.encoding, archive.errors) != _TEXT:
        return archive.next()
    offset = archive.offset
    if offset > stream.count:  # past the member's data, as tarfile.next moves
        stream.seek(offset - 1)
        if not stream.read_data(1):
            raise tarfile.ReadError("unexpected end of data")
    fields = _plain_header(stream.peek(tarfile.BLOCKSIZE)) if offset == stream.count else None
    if fields is None:
        return archive.next()
    stream.read_data(tarfile.BLOCKSIZE)  # the last header read (_check_end)
    data = offset + tarfile.BLOCKSIZE
    blocks = -(-fields[6] // tarfile.BLOCKSIZE) if fields[2] in _DATA_FOLLOWS else 0
    archive.offset = data + blocks * tarfile.BLOCKSIZE
    return _Header(fields, data)


def _check_end(stream: _Decompressor, name: str) -> None:
    """tarfile ends its walk quietly at a header it cannot read (a bad checksum, a
    block cut short); only an end-of-archive zero block or the end of data is an end."""
    block = stream.last_block
    if not block or (block == bytes(len(block)) and len(block) == tarfile.BLOCKSIZE):
        return
    offset = stream.count - len(block)
    try:
        tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        reason = "cannot be read"
    except tarfile.HeaderError as exc:
        reason = str(exc)
    raise CorruptImageError(
        f"layer {name}: the tar header at offset {offset} is invalid ({reason})",
        "the layer is corrupt or truncated",
    )


def settle_facts(result: LayerResult) -> None:
    """Replace facts that analysers computed elsewhere (Futures) by their values, waiting
    for them; a file whose analysis failed gets the failure's fact and a warning
    (`_settle`). Settled facts stay as they are."""
    for entry in result.entries:
        for name, value in list(entry.facts.items()):
            if isinstance(value, Future):
                _settle(entry, name, value.result, result.skipped)


def facts_ready(result: LayerResult) -> bool:
    """Whether `settle_facts` would wait for nothing."""
    return all(
        value.done()
        for entry in result.entries
        for value in entry.facts.values()
        if isinstance(value, Future)
    )


def _watched(chunks: Iterator[bytes], broken: list[Exception]) -> Iterator[bytes]:
    """`chunks`, noting in `broken` an exception they raise (a truncated member)."""
    try:
        yield from chunks
    except Exception as exc:
        broken.append(exc)
        raise


def _settle(
    entry: FileEntry,
    name: str,
    compute: Callable[[], Any],
    skipped: list[str],
    stream_broke: Callable[[], bool] = lambda: False,
) -> None:
    """Set analyser `name`'s fact on `entry` from `compute()`. An exception from one
    file's analysis is that file's failure, not the scan's; a PortscanError (a
    documented exit: a corrupt layer stream, bad signature data), MemoryError, an
    error of the layer stream a streaming analyser was reading (`stream_broke`) and
    anything not an Exception (KeyboardInterrupt) still end it."""
    try:
        fact = compute()
    except (MemoryError, PortscanError):
        raise
    except Exception as exc:
        if stream_broke():
            raise
        failed = exc if isinstance(exc, AnalysisFailed) else AnalysisFailed(failure_reason(exc))
        skipped.append(
            f"{entry.path}: the {name} analysis failed ({failed.reason}); "
            "the file is reported as not analysed"
        )
        fact = failed.fact
    if fact is not None:
        entry.set_fact(name, fact)
    elif name in entry.facts:
        entry.facts = {k: v for k, v in entry.facts.items() if k != name}


def _add_member(
    stream: _Decompressor,
    member: tarfile.TarInfo | _Header,
    result: LayerResult,
    keep: KeepPolicy,
    analysers: Sequence[Analyser],
    budget: ReadBudget,
) -> None:
    if member.size < 0:
        raise CorruptImageError(f"tar entry {member.name[:200]} has a negative size {member.size}")
    member.name, member.linkname = printable(member.name), printable(member.linkname)
    path = safe_path(member.name)
    if path is None:
        result.skipped.append(f"{member.name}: path climbs above the image root")
        return
    if path == "/":
        return
    parent, base = posixpath.split(path)
    if base.startswith(WHITEOUT_PREFIX):
        if base == OPAQUE_MARKER:
            result.opaque_dirs.append(parent)
        else:
            result.whiteouts.append(posixpath.join(parent, base[len(WHITEOUT_PREFIX) :]))
        return
    kind = _KINDS.get(member.type)
    if kind is None:
        result.skipped.append(f"{member.name}: unsupported tar entry type {member.type!r}")
        return
    entry = FileEntry(path, kind, _shared(member.mode), member.size,
                      uid=_shared(member.uid), gid=_shared(member.gid))  # fmt: skip
    if kind is FileKind.SYMLINK:
        entry.link_target = member.linkname
        entry.size = 0
    elif kind is FileKind.HARDLINK:
        target = safe_path(member.linkname)
        if target is None:
            result.skipped.append(f"{member.name}: hard link target climbs above the image root")
            return
        entry.link_target = target
    elif kind is FileKind.FILE and member.size:
        _read_contents(stream, member, entry, keep, analysers, budget, result.skipped)
    result.entries.append(entry)


_SHARED_INTS: dict[int, int] = {}


def _shared(number: int) -> int:
    """One int object per mode, uid or gid value (tarfile parses a new one per header,
    28 bytes each past 256); values beyond 16 bits are not worth a table slot."""
    if not 0 <= number < 1 << 16:
        return number
    return _SHARED_INTS.setdefault(number, number)


def _read_contents(
    stream: _Decompressor,
    member: tarfile.TarInfo | _Header,
    entry: FileEntry,
    keep: KeepPolicy,
    analysers: Sequence[Analyser],
    budget: ReadBudget,
    skipped: list[str],
) -> None:
    stream.seek(member.offset_data)  # forward only; reading the data ourselves saves
    head = stream.peek(min(HEAD_BYTES, member.size))  # the copies tarfile's reader makes
    wanted = [a for a in analysers if a.wants(entry.path, head)]
    keep_bytes = keep(entry.path, head)
    if not wanted and not keep_bytes:
        return  # tarfile skips the rest of the member on the next header
    limits, size = budget.limits, member.size
    if wanted and size > limits.analyse_file:
        skipped.append(
            f"{entry.path}: {size} bytes, too large to analyse "
            f"(limit {limits.analyse_file} bytes, {Limits.ENV['analyse_file']})"
        )
        wanted = []
    if keep_bytes and size > limits.keep_file:
        skipped.append(
            f"{entry.path}: {size} bytes, too large to read "
            f"(limit {limits.keep_file} bytes, {Limits.ENV['keep_file']})"
        )
        entry.set_fact(NOT_READ, "too large")
        keep_bytes = False
    elif keep_bytes and not budget.take(size):
        skipped.append(
            f"{entry.path}: not read, the files kept so far fill the "
            f"{limits.keep_total} bytes allowed ({Limits.ENV['keep_total']})"
        )
        entry.set_fact(NOT_READ, "over the total")
        keep_bytes = False
    if not wanted and not keep_bytes:
        return
    if size >= STREAM_FILE and not keep_bytes and len(wanted) == 1:
        streaming = wanted[0]
        if isinstance(streaming, StreamingAnalyser):
            # a large file only one analyser reads: handed over as it streams by, never whole
            broken: list[Exception] = []  # what the layer stream itself raised, if anything
            chunks = _watched(stream.iter_data(size), broken)
            analyse = functools.partial(streaming.analyse_stream, entry.path, chunks)
            _settle(entry, streaming.name, analyse, skipped, lambda: bool(broken))
            return
    # what is kept must be bytes; what only analysers see may be a bytearray (half the peak)
    kept = stream.read_data(size) if keep_bytes else None
    data = kept if kept is not None else stream.read_buffer(size)
    if len(data) < member.size:
        raise EOFError
    for analyser in wanted:
        _settle(
            entry, analyser.name, functools.partial(analyser.analyse, entry.path, data), skipped
        )
    entry.data = kept


# --------------------------------------------------------------------------- merging


class Tree:
    """The merged filesystem of an image: absolute path -> `FileEntry`.

    The entries are the layers' own objects, given their merged path and layer (never
    copied), and a directory's children are held as those entries' path strings, so
    an entry costs its object, its path and two table slots (docs/security.md)."""

    def __init__(self) -> None:
        self._entries: dict[str, FileEntry] = {}
        self._children: dict[str, set[str]] = {"/": set()}  # directory -> child paths
        # directories found to have no symlink in their path, with their ancestors
        # (`_canonical`); a symlink placed at one of them empties it (`_place`)
        self._plain: set[str] = set()
        # every path, sorted, once the tree is read (`entries`); a change forgets it
        self._sorted: list[str] | None = None

    # -- queries
    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, path: object) -> bool:
        return path in self._entries

    def get(self, path: str) -> FileEntry | None:
        return self._entries.get(path)

    def entries(self) -> Iterable[FileEntry]:
        """Every entry, sorted by path (sorted once: each inspector walks them all)."""
        paths = self._sorted
        if paths is None:
            paths = self._sorted = sorted(self._entries)
        return map(self._entries.__getitem__, paths)

    def files(self) -> Iterator[FileEntry]:
        """Regular files and hard links, sorted by path."""
        return (e for e in self.entries() if e.is_regular)

    def children(self, directory: str) -> list[str]:
        return sorted(posixpath.basename(p) for p in self._children.get(directory, ()))

    def resolve(self, path: str, follow_last: bool = True) -> str | None:
        """Resolve symlinks inside the tree (never above `/`); None for a dangling
        link or a loop. Relative link targets are taken from the link's directory."""
        resolved = self._resolve(path, follow_last)
        return resolved if resolved is not None and resolved in self._entries else None

    def read(self, path: str) -> bytes | None:
        """The kept bytes of `path` after following symlinks and hard links."""
        target = self.resolve(path)
        entry = self._entries.get(target) if target else None
        return entry.data if entry else None

    # -- building
    def _resolve(self, path: str, follow_last: bool, budget: int = 40) -> str | None:
        parts = [p for p in path.split("/") if p and p != "."]
        current = "/"
        while parts:
            part = parts.pop(0)
            if part == "..":
                current = posixpath.dirname(current)
                continue
            candidate = posixpath.join(current, part)
            entry = self._entries.get(candidate)
            is_last = not parts
            if (
                entry is not None
                and entry.kind is FileKind.SYMLINK
                and (follow_last or not is_last)
            ):
                budget -= 1
                if budget < 0:
                    return None
                target = entry.link_target or ""
                base = "/" if target.startswith("/") else current
                parts = [p for p in target.split("/") if p and p != "."] + parts
                current = base
                continue
            current = candidate
        return current

    def _place(self, entry: FileEntry) -> None:
        self._sorted = None
        if entry.kind is FileKind.SYMLINK and entry.path in self._plain:
            self._plain.clear()  # paths below it now lead elsewhere
        parent = posixpath.dirname(entry.path)
        self._ensure_dir(parent, entry.layer)
        self._children.setdefault(parent, set()).add(entry.path)
        old = self._entries.get(entry.path)
        if old is not None and old.kind is FileKind.DIR and entry.kind is not FileKind.DIR:
            self._remove_children(entry.path)
        self._entries[entry.path] = entry
        if entry.kind is FileKind.DIR:
            self._children.setdefault(entry.path, set())

    def _ensure_dir(self, path: str, layer: int) -> None:
        """Create `path` and its missing parents, top down (iteratively: a legal image
        may nest directories thousands deep)."""
        missing = []
        while path != "/" and path not in self._entries:
            missing.append(path)
            path = posixpath.dirname(path)
        for directory in reversed(missing):
            parent = posixpath.dirname(directory)
            self._children.setdefault(parent, set()).add(directory)
            self._entries[directory] = FileEntry(directory, FileKind.DIR, 0o755, 0, layer)
            self._children.setdefault(directory, set())

    def _remove(self, path: str) -> None:
        if path not in self._entries:
            return
        self._remove_children(path)
        del self._entries[path]
        self._children.get(posixpath.dirname(path), set()).discard(path)

    def _remove_children(self, directory: str) -> None:
        """Remove everything below `directory` (iteratively, as `_ensure_dir`)."""
        self._sorted = None
        pending = list(self._children.pop(directory, ()))
        while pending:
            path = pending.pop()
            self._entries.pop(path, None)
            pending += self._children.pop(path, ())
        if directory in self._entries and self._entries[directory].kind is FileKind.DIR:
            self._children[directory] = set()

    def _canonical(self, path: str) -> str | None:
        """`path` with its parent directories resolved through symlinks in the tree."""
        parent, base = posixpath.split(path)
        if parent == "/" or parent in self._plain:
            return path
        real_parent = self._resolve(parent, follow_last=True)
        if real_parent == parent:
            while parent != "/" and parent not in self._plain:
                self._plain.add(parent)
                parent = posixpath.dirname(parent)
            return path  # the common case keeps the entry's own string
        return None if real_parent is None else posixpath.join(real_parent, base)

    def apply(self, index: int, layer: LayerResult) -> tuple[int, list[str]]:
        """Apply one layer on top; returns (whiteouts applied, paths refused)."""
        refused: list[str] = []
        for directory in layer.opaque_dirs:
            real = self._canonical(directory)
            if real is not None and real in self._entries:
                self._remove_children(real)
        for path in layer.whiteouts:
            real = self._canonical(path)
            if real is not None:
                self._remove(real)
        for entry in layer.entries:  # merged in place: the layer's objects become the tree's
            path = self._canonical(entry.path)
            if path is None:
                refused.append(f"{entry.path}: parent symlink loops")
                continue
            entry.path, entry.layer = path, index
            if entry.kind is FileKind.HARDLINK:
                self._link_hard(entry, refused)
                continue
            old = self._entries.get(path)
            if entry.kind is FileKind.DIR and old is not None and old.kind is FileKind.DIR:
                old.mode, old.uid, old.gid, old.layer = entry.mode, entry.uid, entry.gid, index
                continue
            self._place(entry)
        return len(layer.whiteouts) + len(layer.opaque_dirs), refused

    def _link_hard(self, entry: FileEntry, refused: list[str]) -> None:
        target_path = self._canonical(entry.link_target or "")
        target = self._entries.get(target_path) if target_path else None
        if target is None or not target.is_regular:
            refused.append(f"{entry.path}: hard link to missing {entry.link_target}")
            return
        entry.link_target = target.path
        entry.size = target.size
        entry.mode = entry.mode or target.mode
        entry.data = target.data
        entry.facts = target.facts
        self._place(entry)


def merge_layers(layers: Sequence[LayerResult]) -> Tree:
    """Apply layer results bottom-up into one `Tree`; refusals land in `skipped`."""
    tree = Tree()
    for index, layer in enumerate(layers):
        _, refused = tree.apply(index, layer)
        layer.skipped.extend(refused)
    return tree
