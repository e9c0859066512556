"""ELF files kept by content digest for the stages after the merge.

The layers stream by once; the reachability stage (graph/reach.py) needs the bytes of
the libraries a program loads only once the graph says which those are. So the ELF
analyser keeps each file it sees in a content directory (a scan's temporary directory,
or the results store's), and the later stages map it from there by its sha256:

- **Packs.** A process appends the files it keeps to a pack of its own,
  `packs/PID-RANDOM.pack`, each at a page boundary so that it maps alone, and notes each
  in the pack's index once its bytes are written (`PID-RANDOM.idx`, a line
  `SHA256 OFFSET SIZE`). One file a scan instead of one an ELF file: creating a file is
  the costly part of keeping one (nginx keeps 734: 0.19 s of the layer reader's time
  in /tmp on the benchmark machine's ext4, 0.6 s in /var/tmp, 0.04 s on tmpfs). A pack
  ends at `PACK_BYTES`, and no process writes to another's.
- **Loose files.** A file too large to hold in memory, spooled to disk as it streams by
  (worker.analyse_stream), is kept whole as `SHA256` (by rename, so a reader never sees
  half of it), as every file was before packs.

`locate` finds a digest in either, `mapped` maps what it found, `kept` lists every digest
kept and `drop` removes what no stored layer needs (`portscan store gc`), moving the few
needed files of a mostly unneeded pack to a new one first. Several
processes may share a directory (an audit's workers, concurrent scans): each reads the
others' indexes when it looks for a digest it does not know.
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import threading
import time
from collections.abc import Iterable, Iterator

PACKS = "packs"
PACK_BYTES = 64 << 20  # a pack this large is closed and the next file starts a new one
_PAGE = mmap.ALLOCATIONGRANULARITY

Location = tuple[str, int, int]  # the file holding the bytes, their offset, their size


class _Content:
    """One content directory as this process sees it: the digests it knows, and the
    pack it appends to."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.packs = os.path.join(directory, PACKS)
        self._known: dict[str, Location] = {}
        self._read: dict[str, int] = {}  # index file -> bytes of it read
        self._lock = threading.Lock()
        self._pack: tuple[int, int, int, str] | None = None  # pid, pack fd, index fd, path
        self._end = 0  # where the next file goes in the pack

    def add(self, data: bytes | bytearray, anew: bool = False) -> tuple[Location, str]:
        """Keep `data` unless it is kept already (`anew`: even then, in this process's
        pack): (where it is, its sha256)."""
        sha256 = hashlib.sha256(data).hexdigest()
        with self._lock:
            if not self._read:
                self._refresh()  # what other scans kept, once
            found = None if anew else self._present(sha256)
            if found is not None:
                return found, sha256
            pack, index, path = self._writer(len(data))
            offset = self._next()
            view = memoryview(data)
            written = 0
            while written < len(view):
                written += os.pwrite(pack, view[written:], offset + written)
            os.write(index, f"{sha256} {offset} {len(data)}\n".encode())
            self._end = offset + len(data)
            found = self._known[sha256] = (path, offset, len(data))
        return found, sha256

    def _writer(self, size: int) -> tuple[int, int, str]:
        """This process's pack (a new one after a fork, or when it is full)."""
        if self._pack is not None and self._pack[0] == os.getpid():
            here = os.path.exists(self._pack[3])  # else dropped under this process's feet
            if here and (self._next() + size <= PACK_BYTES or not self._end):
                return self._pack[1], self._pack[2], self._pack[3]
            self.close_pack()
        os.makedirs(self.packs, exist_ok=True)
        name = os.path.join(self.packs, f"{os.getpid()}-{os.urandom(6).hex()}")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        pack = os.open(f"{name}.pack", flags, 0o644)
        index = os.open(f"{name}.idx", flags | os.O_APPEND, 0o644)
        self._pack = (os.getpid(), pack, index, f"{name}.pack")
        self._end = 0
        self._read[f"{name}.idx"] = 0  # its lines are known as they are written
        return pack, index, self._pack[3]

    def close_pack(self, path: str | None = None) -> None:
        """Write no more to this process's pack (to the pack at `path` only)."""
        if self._pack is not None and path in (None, self._pack[3]):
            if self._pack[0] == os.getpid():
                os.close(self._pack[1])
                os.close(self._pack[2])
            self._pack = None

    def _next(self) -> int:
        """Where the next file goes in the pack: the first page boundary past the last."""
        return -(-self._end // _PAGE) * _PAGE

    def locate(self, sha256: str) -> Location | None:
        """Where the file of this digest is kept, if it is."""
        with self._lock:
            found = self._present(sha256)
            if found is None:
                self._refresh()
                found = self._present(sha256)
            if found is not None:
                return found
        loose = os.path.join(self.directory, sha256)
        with contextlib.suppress(OSError):
            if os.path.isfile(loose):
                return (loose, 0, os.path.getsize(loose))
        return None

    def _present(self, sha256: str) -> Location | None:
        """Where a pack keeps the digest, if its pack is still there. A pack gone
        (dropped by `portscan store gc`) makes this process read every index again, so
        a copy of the file in another pack is found."""
        found = self._known.get(sha256)
        if found is None or os.path.exists(found[0]):
            return found
        self._known.clear()
        self._read.clear()
        self._refresh()
        found = self._known.get(sha256)
        return found if found is not None and os.path.exists(found[0]) else None

    def _refresh(self) -> None:
        """Read what the indexes gained since they were last read."""
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.packs):
                if entry.name.endswith(".idx"):
                    with contextlib.suppress(OSError):
                        if entry.stat().st_size > self._read.get(entry.path, 0):
                            self._read_index(entry.path)

    def _read_index(self, index: str) -> None:
        start = self._read.get(index, 0)
        try:
            with open(index, "rb") as handle:
                handle.seek(start)
                text = handle.read()
        except OSError:
            return
        complete = text[: text.rfind(b"\n") + 1]  # a line being written waits
        self._read[index] = start + len(complete)
        pack = index[: -len(".idx")] + ".pack"
        for sha256, offset, size in _entries(complete):
            self._known.setdefault(sha256, (pack, offset, size))


def _entries(text: bytes) -> Iterator[tuple[str, int, int]]:
    """The (sha256, offset, size) of each well-formed line of an index's text."""
    for line in text.decode("ascii", "replace").splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[1].isdigit() and fields[2].isdigit():
            yield fields[0], int(fields[1]), int(fields[2])


_DIRECTORIES: dict[str, _Content] = {}
_DIRECTORIES_LOCK = threading.Lock()


def _content(directory: str) -> _Content:
    with _DIRECTORIES_LOCK:
        found = _DIRECTORIES.get(directory)
        if found is None:
            found = _DIRECTORIES[directory] = _Content(directory)
        return found


def store_content(directory: str, data: bytes | bytearray) -> tuple[Location, str]:
    """Keep `data` in `directory`'s pack of this process, unless it is kept there
    already: (where it is, its sha256)."""
    return _content(directory).add(data)


def locate(directory: str | None, sha256: str | None) -> Location | None:
    """Where the file of this digest is kept in `directory` (a pack, or a loose file)."""
    if not directory or not sha256:
        return None
    return _content(directory).locate(sha256)


def mapped(location: Location) -> mmap.mmap | bytes:
    """The kept bytes, mapped read-only (OSError when the file has gone since)."""
    path, offset, size = location
    if not size:
        return b""
    with open(path, "rb") as handle:
        return mmap.mmap(handle.fileno(), size, offset=offset, access=mmap.ACCESS_READ)


def whole_file(location: Location) -> str | None:
    """The path of a location that is a file of its own (lief reads it from there)."""
    path, offset, size = location
    with contextlib.suppress(OSError):
        if offset == 0 and os.path.getsize(path) == size:
            return path
    return None


def kept(directory: str) -> dict[str, int]:
    """Every digest kept in `directory`, with its size (the files on disk now)."""
    found: dict[str, int] = {}
    for pack, entries in _packs(directory):
        if os.path.exists(pack):
            found.update((sha256, size) for sha256, _, size in entries)
    for name, size, _ in _loose(directory):
        if "." not in name:  # not the `.tmp` of a spool
            found[name] = size
    return found


def disk_bytes(directory: str) -> int:
    """What the content directory takes on disk."""
    total = 0
    for folder in (directory, os.path.join(directory, PACKS)):
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(folder):
                if entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
    return total


def drop(directory: str, needed: set[str], grace: float) -> tuple[int, int]:
    """Remove what holds no digest in `needed` and was written more than `grace`
    seconds ago (a scan running now may not have stored the layer that needs it yet):
    a pack whose files are all unneeded, with its index; a loose file. A pack whose
    needed files take less than half of it has them copied to a new pack first (a
    process that had them in the old one finds them there: `_present`). (files
    removed, bytes freed)."""
    recent = time.time() - grace
    files, before = 0, disk_bytes(directory)
    for pack, entries in _packs(directory):
        index = pack[: -len(".pack")] + ".idx"
        parts = [p for p in (pack, index) if os.path.exists(p)]
        if any(os.path.getmtime(p) > recent for p in parts):
            continue
        here = pack in parts  # else only its index is left: nothing to keep or count
        keep = [entry for entry in entries if entry[0] in needed] if here else []
        if keep and 2 * sum(length for _, _, length in keep) >= os.path.getsize(pack):
            continue  # mostly needed: it stays whole
        if keep and not _copy(directory, pack, keep):
            continue  # cut short: it stays as it is
        for part in parts:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(part)
        files += len(entries) - len(keep) if here else 0
    for name, _, mtime in _loose(directory):
        if name.split(".", 1)[0] in needed or mtime > recent:
            continue
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(directory, name))
            files += 1
    return files, max(0, before - disk_bytes(directory))


def _copy(directory: str, pack: str, keep: list[tuple[str, int, int]]) -> bool:
    """Keep these files of `pack` anew in a pack of this process (never `pack` itself);
    False, copying nothing, when the pack holds less than its index says."""
    with open(pack, "rb") as handle:
        files = []
        for _, offset, length in keep:
            handle.seek(offset)
            files.append(handle.read(length))
            if len(files[-1]) != length:
                return False
    copier = _content(directory)
    with copier._lock:
        copier.close_pack(pack)
    for data in files:
        copier.add(data, anew=True)
    return True


def _packs(directory: str) -> Iterable[tuple[str, list[tuple[str, int, int]]]]:
    """Each pack (also one whose index is missing or empty) with its index's entries."""
    folder = os.path.join(directory, PACKS)
    try:
        names = sorted(os.listdir(folder))
    except FileNotFoundError:
        return
    stems = {n.rsplit(".", 1)[0] for n in names if n.endswith((".pack", ".idx"))}
    for stem in sorted(stems):
        entries: list[tuple[str, int, int]] = []
        with contextlib.suppress(OSError), open(os.path.join(folder, f"{stem}.idx"), "rb") as f:
            entries = list(_entries(f.read()))
        yield os.path.join(folder, f"{stem}.pack"), entries


def _loose(directory: str) -> Iterable[tuple[str, int, float]]:
    """Loose files, and the `SHA256.*.tmp` of a spool that died: (name, size, mtime)."""
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(directory):
            if entry.is_file(follow_symlinks=False):
                stat = entry.stat(follow_symlinks=False)
                yield entry.name, stat.st_size, stat.st_mtime
