"""layers.py on real layer tars written by tests/imagebuild.py: compression and
verification of blobs, whiteouts, opaque directories, links, and path safety."""

from __future__ import annotations

import gc
import gzip
import io
import os
import tracemalloc
from concurrent.futures import Future
from pathlib import Path
from typing import Any, BinaryIO

import pytest
import zstandard

from portscan.errors import CorruptImageError
from portscan.layers import (
    AnalysisFailed,
    KeepPolicy,
    Tree,
    facts_ready,
    merge_layers,
    read_layer,
    settle_facts,
)
from portscan.model import FileKind, ImageMeta, LayerDescriptor, LayerResult, ProgressFn
from portscan.sources.base import ImageSource, LayerReader
from tests import imagebuild as ib

TAR = "application/vnd.oci.image.layer.v1.tar"


def keep_all(path: str, head: bytes) -> bool:
    return True


def read(blob: bytes, keep: KeepPolicy = keep_all, **descriptor: Any) -> LayerResult:
    """Read `blob` with a descriptor that matches it unless overridden."""
    fields = {"digest": ib.sha256(blob), "size": len(blob), "media_type": TAR, **descriptor}
    return read_layer(io.BytesIO(blob), LayerDescriptor(**fields), keep)


def merged(*layers: list[ib.Entry]) -> Tree:
    return merge_layers([read(ib.layer_tar(entries)) for entries in layers])


def snapshot(tree: Tree) -> dict[str, tuple[object, ...]]:
    """Everything a later stage can see of each path, for comparing two trees."""
    return {
        e.path: (e.kind, e.mode, e.size, e.layer, e.link_target, e.uid, e.gid, e.data, e.facts)
        for e in tree.entries()
    }


def read_all(
    blob: BinaryIO, descriptor: LayerDescriptor, progress: ProgressFn | None = None
) -> LayerResult:
    """A `LayerReader` that keeps every file's bytes."""
    return read_layer(blob, descriptor, keep_all, progress=progress)


def scan(source: ImageSource, reader: LayerReader = read_all) -> tuple[ImageMeta, Tree]:
    """Read every layer of `source` (keeping every file's bytes) and merge them."""
    with source:
        meta, results = source.read_layers(reader)
    return meta, merge_layers(results)


# --------------------------------------------------------------------------- merging


def test_whiteout_removes_a_lower_file_and_a_whole_directory() -> None:
    tree = merged(
        [ib.file("etc/a", "a"), ib.file("etc/b", "b"), ib.file("var/cache/x/y", "y")],
        [ib.whiteout("etc/a"), ib.whiteout("var/cache")],
    )
    assert "/etc/a" not in tree
    assert tree.read("/etc/b") == b"b"
    assert not any(path.startswith("/var/cache") for path in snapshot(tree))
    assert tree.children("/var") == []


def test_whiteout_is_recorded_not_placed() -> None:
    result = read(ib.layer_tar([ib.whiteout("etc/a"), ib.opaque("srv")]))
    assert result.whiteouts == ["/etc/a"]
    assert result.opaque_dirs == ["/srv"]
    assert result.entries == []


def test_opaque_dir_hides_lower_children_and_keeps_its_own_layers() -> None:
    tree = merged(
        [
            ib.file("etc/app/old.conf", "old"),
            ib.file("etc/app/sub/deep", "d"),
            ib.file("etc/x", "x"),
        ],
        # the marker comes after one new child and before another: both stay
        [ib.file("etc/app/early.conf", "e"), ib.opaque("etc/app"), ib.file("etc/app/late", "l")],
    )
    assert tree.children("/etc/app") == ["early.conf", "late"]
    assert "/etc/app/sub/deep" not in tree
    assert tree.read("/etc/x") == b"x"
    assert tree.get("/etc/app").kind is FileKind.DIR


def test_file_replacing_a_directory_drops_its_children() -> None:
    tree = merged([ib.file("a/b/c", "c")], [ib.file("a", "now a file")])
    assert tree.get("/a").kind is FileKind.FILE
    assert "/a/b" not in tree and "/a/b/c" not in tree


def test_rewritten_path_belongs_to_the_upper_layer() -> None:
    tree = merged(
        [ib.file("etc/conf", "v1")], [ib.file("etc/other", "o")], [ib.file("etc/conf", "v3")]
    )
    assert (tree.get("/etc/conf").layer, tree.read("/etc/conf")) == (2, b"v3")
    assert tree.get("/etc/other").layer == 1


def test_hard_links_in_the_same_layer_and_to_a_lower_layer() -> None:
    elf = b"\x7fELF" + bytes(60)
    tree = merged(
        [ib.file("usr/bin/tool", elf, 0o755), ib.hardlink("usr/bin/tool-same", "usr/bin/tool")],
        [ib.hardlink("usr/local/bin/tool-up", "/usr/bin/tool")],
    )
    for path, layer in (("/usr/bin/tool-same", 0), ("/usr/local/bin/tool-up", 1)):
        entry = tree.get(path)
        assert (entry.kind, entry.link_target, entry.layer) == (
            FileKind.HARDLINK,
            "/usr/bin/tool",
            layer,
        )
        assert (entry.size, entry.data, entry.is_regular) == (len(elf), elf, True)


def test_hard_link_to_a_missing_or_escaping_target_is_refused() -> None:
    lower = read(ib.layer_tar([ib.file("a", "a")]))
    upper = read(ib.layer_tar([ib.hardlink("b", "nowhere"), ib.hardlink("c", "../../etc/passwd")]))
    tree = merge_layers([lower, upper])
    assert "/b" not in tree and "/c" not in tree
    assert any("hard link target climbs above" in s for s in upper.skipped)
    assert any("/b: hard link to missing" in s for s in upper.skipped)


def test_symlinks_resolve_inside_the_tree() -> None:
    tree = merged(
        [
            ib.file("usr/lib/libx.so.1", "lib"),
            ib.symlink("usr/lib/libx.so", "libx.so.1"),
            ib.symlink("lib", "/usr/lib"),
            ib.symlink("dangling", "missing"),
            ib.symlink("loop-a", "loop-b"),
            ib.symlink("loop-b", "loop-a"),
            ib.symlink("bin", "usr/bin"),
            ib.directory("usr/bin"),
        ],
        [ib.file("bin/tool", "written through the bin symlink")],
    )
    assert tree.get("/usr/lib/libx.so").link_target == "libx.so.1"
    assert tree.resolve("/lib/libx.so") == "/usr/lib/libx.so.1"
    assert tree.read("/lib/libx.so") == b"lib"
    assert tree.resolve("/lib/libx.so", follow_last=False) == "/usr/lib/libx.so"
    assert tree.resolve("/dangling") is None
    assert tree.resolve("/loop-a") is None
    assert tree.read("/usr/bin/tool") == b"written through the bin symlink"
    assert tree.get("/bin").kind is FileKind.SYMLINK


def test_a_directory_turned_symlink_sends_later_entries_through_it() -> None:
    """Paths already seen to hold no symlink are remembered (Tree._canonical) until a
    symlink replaces one of them, in the same layer or a later one."""
    tree = merged(
        [
            ib.file("opt/app/lib/a", "a"),  # opt, opt/app, opt/app/lib seen plain
            ib.file("var/x/f", "f"),
            ib.directory("data"),
            ib.symlink("opt/app", "/data"),  # replaces a directory seen plain
            ib.file("opt/app/lib/b", "b"),
        ],
        [ib.symlink("var/x", "/srv"), ib.file("var/x/g", "g")],  # seen plain a layer ago
    )
    assert tree.read("/data/lib/b") == b"b"
    assert tree.get("/opt/app/lib/b") is None and tree.get("/opt/app/lib/a") is None
    assert tree.read("/srv/g") == b"g"
    assert tree.get("/var/x/g") is None and tree.get("/var/x/f") is None


# --------------------------------------------------------------------------- reading


LAYER = [
    ib.directory("usr"),
    ib.file("usr/bin/run", "#!/bin/sh\necho hi\n", 0o755),
    ib.file("usr/share/big", os.urandom(200_000)),
    ib.symlink("usr/bin/sh", "busybox"),
    ib.hardlink("usr/bin/run2", "usr/bin/run"),
]


def _multi_member_gzip(tar: bytes) -> bytes:
    cut = len(tar) // 3
    return gzip.compress(tar[:cut], mtime=0) + gzip.compress(tar[cut:], mtime=0)


def _multi_frame_zstd(tar: bytes) -> bytes:
    cut = len(tar) // 3
    skippable = b"\x50\x2a\x4d\x18" + (4).to_bytes(4, "little") + b"meta"
    compressor = zstandard.ZstdCompressor()
    return compressor.compress(tar[:cut]) + skippable + compressor.compress(tar[cut:])


COMPRESSIONS = {
    "plain": lambda tar: tar,
    "gzip": lambda tar: gzip.compress(tar, mtime=0),
    "gzip-multi-member": _multi_member_gzip,
    "zstd": lambda tar: zstandard.ZstdCompressor().compress(tar),
    "zstd-multi-frame": _multi_frame_zstd,
}


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_every_compression_gives_the_same_layer(compression: str) -> None:
    tar = ib.layer_tar(LAYER)
    blob = COMPRESSIONS[compression](tar)
    result = read(blob)
    plain = read(tar)
    assert [(e.path, e.kind, e.size, e.data) for e in result.entries] == [
        (e.path, e.kind, e.size, e.data) for e in plain.entries
    ]
    assert (result.compressed_bytes, result.uncompressed_bytes) == (len(blob), len(tar))


class Trickle(io.RawIOBase):
    """A stream that returns at most `step` bytes per read, as sockets do."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data, self._pos, self._step = data, 0, step

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._data[self._pos : self._pos + min(len(buffer), self._step)]
        buffer[: len(chunk)] = chunk
        self._pos += len(chunk)
        return len(chunk)


def test_gzip_member_boundary_on_a_read_boundary() -> None:
    tar = ib.layer_tar(LAYER)
    first = gzip.compress(tar[:4096], mtime=0)
    blob = first + gzip.compress(tar[4096:], mtime=0)
    descriptor = LayerDescriptor(ib.sha256(blob), len(blob), TAR)
    result = read_layer(Trickle(blob, len(first)), descriptor, keep_all)  # type: ignore[arg-type]
    assert [e.data for e in result.entries] == [e.data for e in read(tar).entries]


def test_digest_mismatch_is_corrupt() -> None:
    blob = gzip.compress(ib.layer_tar(LAYER), mtime=0)
    with pytest.raises(CorruptImageError, match="does not match its digest"):
        read(blob, digest=ib.sha256(b"something else"))


def test_size_mismatch_is_corrupt() -> None:
    blob = ib.layer_tar(LAYER)
    with pytest.raises(CorruptImageError, match=f"is {len(blob)} bytes, the manifest says"):
        read(blob, size=len(blob) + 1)


# The digest given matches the truncated bytes, so only decompression can notice.
TRUNCATIONS = {
    "gzip inside the data": lambda tar: gzip.compress(tar, mtime=0)[:3000],
    "gzip trailer missing": lambda tar: gzip.compress(tar, mtime=0)[:-8],
    "zstd last block cut": lambda tar: zstandard.ZstdCompressor().compress(tar)[:-3],
    "tar inside a file": lambda tar: tar[:5000],
}


@pytest.mark.parametrize("truncation", TRUNCATIONS)
def test_truncated_blob_is_corrupt(truncation: str) -> None:
    blob = TRUNCATIONS[truncation](ib.layer_tar(LAYER))
    with pytest.raises(CorruptImageError):
        read(blob)


def test_garbage_is_corrupt() -> None:
    with pytest.raises(CorruptImageError):
        read(b"\x1f\x8b" + os.urandom(4000))
    with pytest.raises(CorruptImageError, match="not a valid tar"):
        read(b"this is not a tar archive at all" * 40)


class HeadAnalyser:
    """Records the length of every ELF file it is shown."""

    name = "elf-size"
    version = 1

    def wants(self, path: str, head: bytes) -> bool:
        return head.startswith(b"\x7fELF")

    def analyse(self, path: str, data: bytes) -> int:
        return len(data)


def test_keep_policy_and_analysers_see_each_file_once() -> None:
    elf = b"\x7fELF" + os.urandom(100_000)
    tar = ib.layer_tar(
        [
            ib.file("usr/bin/prog", elf, 0o755),
            ib.file("usr/bin/script", "#!/bin/sh\n"),
            ib.file("usr/share/doc/readme", "text"),
            ib.hardlink("usr/bin/prog2", "usr/bin/prog"),
        ]
    )
    descriptor = LayerDescriptor(ib.sha256(tar), len(tar), TAR)
    keep_elf = lambda path, head: head.startswith((b"\x7fELF", b"#!"))  # noqa: E731
    result = read_layer(io.BytesIO(tar), descriptor, keep_elf, analysers=[HeadAnalyser()])
    tree = merge_layers([result])
    assert tree.get("/usr/bin/prog").facts == {"elf-size": len(elf)}
    assert tree.get("/usr/bin/prog").data == elf  # the keep policy keeps ELF files
    assert tree.get("/usr/bin/prog2").facts == {"elf-size": len(elf)}
    assert tree.read("/usr/bin/script") == b"#!/bin/sh\n"
    readme = tree.get("/usr/share/doc/readme")
    assert (readme.data, readme.facts, readme.size) == (None, {}, 4)


class FailingAnalyser:
    """Fails on `/bad*` files with the exception it is given, in the layer reader's
    thread or (`deferred`) as a Future, as the ELF worker hands its facts back."""

    name = "size"
    version = 1

    def __init__(self, exc: BaseException, deferred: bool = False) -> None:
        self.exc, self.deferred = exc, deferred

    def wants(self, path: str, head: bytes) -> bool:
        return True

    def analyse(self, path: str, data: bytes) -> Any:
        future: Future[int] = Future()
        if path.startswith("/bad"):
            if not self.deferred:
                raise self.exc
            future.set_exception(self.exc)
        else:
            future.set_result(len(data))
        return future if self.deferred else future.result()


def _read_with(analyser: FailingAnalyser) -> LayerResult:
    tar = ib.layer_tar([ib.file("bad", "xx"), ib.file("good", "abc")])
    descriptor = LayerDescriptor(ib.sha256(tar), len(tar), TAR)
    return read_layer(io.BytesIO(tar), descriptor, keep_all, analysers=[analyser])


@pytest.mark.parametrize("deferred", [False, True])
def test_one_files_failed_analysis_is_a_warning_not_the_layers_failure(deferred: bool) -> None:
    result = _read_with(FailingAnalyser(ValueError("bad\nbytes"), deferred))
    bad, good = result.entries
    assert "size" not in bad.facts and good.facts == {"size": 3}
    assert result.skipped == [
        "/bad: the size analysis failed (ValueError: bad bytes); "
        "the file is reported as not analysed"
    ]
    failed = AnalysisFailed("lief gave up", fact=-1)  # an analyser's own record of it
    result = _read_with(FailingAnalyser(failed, deferred))
    assert result.entries[0].facts == {"size": -1} and "(lief gave up)" in result.skipped[0]


def test_facts_left_to_settle_are_waited_for_when_asked() -> None:
    """`settle=False` leaves an analyser's Futures in the result (the next layer is read
    while they come), `facts_ready` says whether they are in, and `settle_facts` puts
    their values and failures where the layer's end would have."""
    pending: Future[int] = Future()

    class Later(FailingAnalyser):
        def analyse(self, path: str, data: bytes) -> Any:
            return pending if path == "/good" else super().analyse(path, data)

    tar = ib.layer_tar([ib.file("bad", "xx"), ib.file("good", "abc")])
    descriptor = LayerDescriptor(ib.sha256(tar), len(tar), TAR)
    analyser = Later(ValueError("bad bytes"), deferred=True)
    result = read_layer(io.BytesIO(tar), descriptor, keep_all, [analyser], settle=False)
    bad, good = result.entries
    assert isinstance(bad.facts["size"], Future) and good.facts["size"] is pending
    assert not result.skipped and not facts_ready(result)
    pending.set_result(3)
    assert facts_ready(result)
    settle_facts(result)
    assert "size" not in bad.facts and good.facts == {"size": 3}
    assert result.skipped == [
        "/bad: the size analysis failed (ValueError: bad bytes); "
        "the file is reported as not analysed"
    ]
    settle_facts(result)  # settled facts stay as they are
    assert good.facts == {"size": 3} and len(result.skipped) == 1


@pytest.mark.parametrize("deferred", [False, True])
@pytest.mark.parametrize("exc", [MemoryError(), CorruptImageError("x"), KeyboardInterrupt()])
def test_memory_errors_and_documented_exits_still_end_the_scan(
    exc: BaseException, deferred: bool
) -> None:
    with pytest.raises(type(exc)):
        _read_with(FailingAnalyser(exc, deferred))


# --------------------------------------------------------------------------- path safety


ESCAPES = [
    ib.file("../../etc/passwd", "escaped by dot-dot"),
    ib.file("/etc/shadow", "absolute name"),
    ib.symlink("evil", "../../../../etc"),
    ib.file("evil/passwd", "through a symlinked parent"),
    ib.hardlink("evil-link", "/etc/hostname"),
]


def _host_snapshot(root: Path) -> set[str]:
    return {str(p) for p in root.rglob("*")}


@pytest.mark.parametrize("compression", ["plain", "gzip"])
def test_escaping_entries_stay_inside_the_tree_and_off_the_disk(
    compression: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    passwd = Path("/etc/passwd")
    before = (passwd.read_bytes(), passwd.stat().st_mtime_ns, _host_snapshot(tmp_path))

    base = read(COMPRESSIONS[compression](ib.layer_tar([ib.file("etc/hostname", "image")])))
    layer = read(COMPRESSIONS[compression](ib.layer_tar(ESCAPES)))
    tree = merge_layers([base, layer])

    # `..` above the root is refused outright
    assert any(s.startswith("../../etc/passwd: path climbs above") for s in layer.skipped)
    # an absolute name is rooted at the image's /
    assert tree.read("/etc/shadow") == b"absolute name"
    # the symlinked parent resolves inside the image root: /evil -> /etc, so
    # evil/passwd lands on the image's /etc/passwd, never the host's
    assert tree.resolve("/evil") == "/etc"
    assert "/evil/passwd" not in tree
    assert tree.read("/etc/passwd") == b"through a symlinked parent"
    # a hard link names the image's file, not the host's
    assert tree.read("/evil-link") == b"image"
    for entry in tree.entries():
        assert entry.path.startswith("/") and ".." not in entry.path.split("/")
        if entry.kind is FileKind.HARDLINK:
            assert entry.link_target in tree
    assert (passwd.read_bytes(), passwd.stat().st_mtime_ns, _host_snapshot(tmp_path)) == before


# --------------------------------------------------------------------------- memory per entry

ENTRY_BYTES_BOUND = 380  # measured 307 in one directory, 285 at 100 a directory (2026-12-05;
# 722 and 696 with a dict per FileEntry and the merged tree's copies of the layers' entries)


@pytest.mark.parametrize("per_dir", [0, 100])
def test_a_tar_entry_costs_a_bounded_number_of_bytes(per_dir: int) -> None:
    """Every tar entry is held until the scan ends (PORTSCAN_MAX_ENTRIES bounds their
    number): what one empty file costs once read and merged, in Python allocations,
    stays under the bound its default was set from (docs/security.md, "Memory")."""
    count = 20_000
    names = (f"d{i // per_dir}/f{i % per_dir}" if per_dir else f"many/f{i}" for i in range(count))
    blob = ib.layer_tar([ib.file(name, "") for name in names])
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = read(blob, keep=lambda path, head: False)
        tree = merge_layers([result])
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(result.entries) == count and len(list(tree.files())) == count
    assert held / count < ENTRY_BYTES_BOUND, f"{held / count:.0f} bytes per entry"


def test_the_sorted_entries_follow_every_later_change() -> None:
    """`Tree.entries` sorts the paths once and keeps them: a layer applied after it was
    read (an entry added, one whited out, a directory made opaque or replaced by a
    file) must show in the next reading."""
    tree = merged([ib.file("b/x", "x"), ib.file("b/y", "y"), ib.file("d/z", "z")])
    assert [e.path for e in tree.entries()] == ["/b", "/b/x", "/b/y", "/d", "/d/z"]
    changes = [
        ([ib.file("a", "a")], ["/a", "/b", "/b/x", "/b/y", "/d", "/d/z"]),
        ([ib.whiteout("b/x")], ["/a", "/b", "/b/y", "/d", "/d/z"]),
        ([ib.opaque("d")], ["/a", "/b", "/b/y", "/d"]),
        ([ib.file("b", "now a file")], ["/a", "/b", "/d"]),
    ]
    for index, (entries, expected) in enumerate(changes, start=1):
        tree.apply(index, read(ib.layer_tar(entries)))
        assert [e.path for e in tree.entries()] == expected
