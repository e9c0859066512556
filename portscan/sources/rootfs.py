"""A plain directory holding an unpacked filesystem (`dir:PATH`), as one layer.

The directory is walked with `os.scandir` and handed to the layer reader as the tar
stream it would be if packed (generated on the fly, never written anywhere). So the
keep policy, the analysers, path safety and the per-entry rules are exactly those of
`layers.read_layer`, with no second implementation to drift.

The walk is confined to the directory: it opens every directory and file relative to
its parent's descriptor with O_NOFOLLOW, so it follows no symlink (each is recorded
with its target text) and a directory swapped for a symlink mid-walk is refused. It
does not cross into other filesystems (so `dir:/` skips /proc and /sys); mount points
are listed in `LayerResult.skipped`. Files sharing (st_dev, st_ino) become hard links
to the first path seen. Sockets and unreadable entries are skipped and listed.

What the `ImageMeta` says: digest None (there is no manifest), an empty config, the
requested platform, and one layer whose digest and size are those of the generated
tar (deterministic for unchanged contents, so it can key caches); `diff_id` equals it.
Progress events use a provisional descriptor whose digest is `dir:PATH`.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path

from portscan.errors import ImageNotFoundError, UsageError
from portscan.model import (
    ImageConfig,
    ImageMeta,
    ImageRef,
    LayerDescriptor,
    LayerResult,
    Platform,
    SourceKind,
)
from portscan.sources.archive import ChunkStream, HashingStream
from portscan.sources.base import ImageSource, LayerReader, ScanProgress, SourceOptions

MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar"
MAX_DEPTH = 256
_CHUNK = 1 << 20
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


def open_rootfs_image(ref: ImageRef, options: SourceOptions) -> ImageSource:
    """The directory at `ref.path`; see the module docstring."""
    path = Path(ref.path or "").expanduser()
    if not path.exists():
        raise ImageNotFoundError(f"no directory at {path}", "check the path of the unpacked tree")
    if not path.is_dir():
        raise UsageError(
            f"{path} is not a directory",
            "use docker-archive:PATH for a `docker save` tar, oci:PATH for an OCI layout",
        )
    return RootfsImageSource(path.resolve(), ref.name, options.platform)


class RootfsImageSource(ImageSource):
    """An unpacked tree read as a single layer."""

    def __init__(self, root: Path, reference: str, platform: Platform) -> None:
        self.root = root
        self._reference = reference
        self._platform = platform

    def read_layers(
        self, reader: LayerReader, progress: ScanProgress | None = None
    ) -> tuple[ImageMeta, list[LayerResult]]:
        walk = TreeTar(self.root)
        hashed = HashingStream(io.BufferedReader(ChunkStream(walk.chunks()), _CHUNK))
        provisional = LayerDescriptor(f"dir:{self.root}", -1, MEDIA_TYPE)
        if progress:
            progress.layer_started(provisional)
        advance = (lambda n: progress.layer_advanced(provisional, n)) if progress else None
        # No digest to verify: the stream is made here; its sha256 is known at the end.
        unverified = LayerDescriptor(None, -1, MEDIA_TYPE)  # type: ignore[arg-type]
        result = reader(io.BufferedReader(hashed, _CHUNK), unverified, advance)
        if progress:
            progress.layer_finished(provisional)
        result.digest = hashed.digest
        result.skipped.extend(walk.skipped)
        layer = LayerDescriptor(hashed.digest, hashed.count, MEDIA_TYPE, hashed.digest)
        meta = ImageMeta(
            self._reference, SourceKind.DIR, None, self._platform, ImageConfig(), [layer]
        )
        return meta, [result]


class TreeTar:
    """Generates the tar stream of a directory tree, in sorted order; see the module
    docstring for what is followed, crossed and skipped."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.skipped: list[str] = []
        self._links: dict[tuple[int, int], str] = {}
        self._device = 0

    def chunks(self) -> Iterator[bytes]:
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            st = os.fstat(fd)
            self._device = st.st_dev
            yield _header("./", st, tarfile.DIRTYPE)
            yield from self._directory(fd, "", 0)
        finally:
            os.close(fd)
        yield tarfile.NUL * (2 * tarfile.BLOCKSIZE)

    def _directory(self, fd: int, prefix: str, depth: int) -> Iterator[bytes]:
        with os.scandir(fd) as listing:
            entries = sorted(listing, key=lambda e: e.name)
        for entry in entries:
            name = prefix + entry.name
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError as exc:
                self._skip(name, exc.strerror or str(exc))
                continue
            if stat.S_ISDIR(st.st_mode):
                yield from self._subdirectory(fd, entry.name, name, st, depth)
            elif stat.S_ISLNK(st.st_mode):
                yield from self._symlink(fd, entry.name, name, st)
            elif stat.S_ISREG(st.st_mode):
                yield from self._file(fd, entry.name, name, st)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                kind = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
                yield _header(name, st, kind)
            elif stat.S_ISFIFO(st.st_mode):
                yield _header(name, st, tarfile.FIFOTYPE)
            else:
                self._skip(name, "socket or unknown file type")

    def _subdirectory(
        self, parent: int, base: str, name: str, st: os.stat_result, depth: int
    ) -> Iterator[bytes]:
        yield _header(name + "/", st, tarfile.DIRTYPE)
        if st.st_dev != self._device:
            self._skip(name, "mount point of another filesystem, not crossed")
            return
        if depth >= MAX_DEPTH:
            self._skip(name, f"deeper than {MAX_DEPTH} directories, not walked")
            return
        try:
            fd = os.open(base, _DIR_FLAGS, dir_fd=parent)
        except OSError as exc:
            self._skip(name, exc.strerror or str(exc))
            return
        try:
            yield from self._directory(fd, name + "/", depth + 1)
        finally:
            os.close(fd)

    def _symlink(self, parent: int, base: str, name: str, st: os.stat_result) -> Iterator[bytes]:
        try:
            target = os.readlink(base, dir_fd=parent)
        except OSError as exc:
            self._skip(name, exc.strerror or str(exc))
            return
        yield _header(name, st, tarfile.SYMTYPE, linkname=target)

    def _file(self, parent: int, base: str, name: str, st: os.stat_result) -> Iterator[bytes]:
        key = (st.st_dev, st.st_ino)
        first = self._links.get(key) if st.st_nlink > 1 else None
        if first is not None:
            yield _header(name, st, tarfile.LNKTYPE, linkname=first)
            return
        try:
            fd = os.open(base, _FILE_FLAGS, dir_fd=parent)
        except OSError as exc:
            self._skip(name, exc.strerror or str(exc))
            return
        try:
            opened = os.fstat(fd)
            if (opened.st_dev, opened.st_ino) != key or not stat.S_ISREG(opened.st_mode):
                self._skip(name, "changed while being read")
                return
            if st.st_nlink > 1:
                self._links[key] = name
            yield _header(name, opened, tarfile.REGTYPE)
            yield from self._contents(fd, name, opened.st_size)
        finally:
            os.close(fd)

    def _contents(self, fd: int, name: str, size: int) -> Iterator[bytes]:
        """Exactly `size` bytes (zero-filled if the file shrank), then block padding."""
        left = size
        while left:
            try:
                data = os.read(fd, min(left, _CHUNK))
            except OSError as exc:
                self._skip(name, f"read failed ({exc.strerror}), rest zero-filled")
                yield bytes(left)
                break
            if not data:
                self._skip(name, "shrank while being read, rest zero-filled")
                yield bytes(left)
                break
            left -= len(data)
            yield data
        yield bytes(-size % tarfile.BLOCKSIZE)

    def _skip(self, name: str, why: str) -> None:
        self.skipped.append(f"/{name}: {why}")


def _header(name: str, st: os.stat_result, kind: bytes, linkname: str = "") -> bytes:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.mtime = int(st.st_mtime)
    info.size = st.st_size if kind == tarfile.REGTYPE else 0
    info.linkname = linkname
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
