"""The content directory (inspect/elf/content.py): ELF files kept by digest in packs,
one a process, and found, mapped, listed and dropped again, also across processes."""

from __future__ import annotations

import hashlib
import mmap
import os
import subprocess
import sys
from pathlib import Path

import pytest

from portscan.inspect.elf import content


def _fresh(tmp_path: Path) -> str:
    """A content directory this process has not seen (each one is remembered)."""
    directory = tmp_path / "content"
    directory.mkdir()
    return str(directory)


def _elf(n: int, size: int = 10_000) -> bytes:
    return b"\x7fELF" + bytes([n % 256]) * size


def test_files_are_kept_once_a_page_apart_and_map_alone(tmp_path: Path) -> None:
    directory = _fresh(tmp_path)
    first, one = content.store_content(directory, _elf(1))
    second, two = content.store_content(directory, bytearray(_elf(2, 5000)))
    again, same = content.store_content(directory, _elf(1))
    assert (again, same) == (first, one) and one == hashlib.sha256(_elf(1)).hexdigest()
    assert first[0] == second[0] and first[0].endswith(".pack")  # one pack
    assert second[1] % mmap.ALLOCATIONGRANULARITY == 0 and second[1] >= len(_elf(1))
    assert content.locate(directory, two) == second
    assert bytes(content.mapped(second)) == _elf(2, 5000)
    assert content.whole_file(second) is None  # a pack: lief is handed the bytes
    assert content.kept(directory) == {one: len(_elf(1)), two: len(_elf(2, 5000))}
    assert content.locate(directory, "0" * 64) is None and content.locate(None, one) is None


_OTHER = """
import sys
from portscan.inspect.elf import content
directory, known = sys.argv[1], sys.argv[2]
print(content.locate(directory, known)[1:])
location, sha256 = content.store_content(directory, b"\\x7fELF other process")
print(location[0])
"""


def _other_process(directory: str, sha256: str) -> list[str]:
    """What another process finds of `sha256` (offset, size), and the pack it writes."""
    return subprocess.run(
        [sys.executable, "-c", _OTHER, directory, sha256],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    ).stdout.splitlines()


def _age(directory: str) -> None:
    """Date every file of the directory back past any grace period."""
    for path in Path(directory).rglob("*"):
        os.utime(path, (0, 0))


def test_another_process_finds_these_files_and_writes_a_pack_of_its_own(
    tmp_path: Path,
) -> None:
    directory = _fresh(tmp_path)
    mine, sha256 = content.store_content(directory, _elf(3))
    out = _other_process(directory, sha256)
    assert out[0] == str(mine[1:])
    assert out[1] != mine[0] and out[1].endswith(".pack")
    theirs = hashlib.sha256(b"\x7fELF other process").hexdigest()
    assert content.locate(directory, theirs) == (out[1], 0, len(b"\x7fELF other process"))


def test_a_fork_writes_its_own_pack(tmp_path: Path) -> None:
    directory = _fresh(tmp_path)
    parent, _ = content.store_content(directory, _elf(4))
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the parent's pack stays the parent's
        location, _ = content.store_content(directory, _elf(5))
        os.write(write, location[0].encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 4096).decode()
    os.waitpid(pid, 0)
    assert child != parent[0] and Path(child).exists()
    assert content.locate(directory, hashlib.sha256(_elf(5)).hexdigest())[0] == child


def test_a_full_pack_is_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = _fresh(tmp_path)
    monkeypatch.setattr(content, "PACK_BYTES", 30_000)
    packs = {content.store_content(directory, _elf(n))[0][0] for n in range(5)}
    assert len(packs) == 3  # two files a pack: the third does not fit


def test_drop_keeps_a_pack_holding_a_needed_file_and_what_is_recent(tmp_path: Path) -> None:
    directory = _fresh(tmp_path)
    kept, needed = content.store_content(directory, _elf(6))
    loose = Path(directory, "ab" * 32)
    loose.write_bytes(_elf(7))
    Path(directory, f"{'cd' * 32}.1.2.tmp").write_bytes(b"half")  # a spool that died
    assert content.drop(directory, set(), grace=3600) == (0, 0)  # all of it is recent
    _age(directory)
    assert content.drop(directory, {needed, "ab" * 32}, grace=3600) == (1, 4)  # the .tmp
    assert set(content.kept(directory)) == {needed, "ab" * 32}
    files, freed = content.drop(directory, set(), grace=3600)
    assert files == 2 and freed >= len(_elf(6)) + len(_elf(7))
    assert not content.kept(directory) and not Path(kept[0]).exists()
    assert content.disk_bytes(directory) == 0


def test_a_pack_dropped_under_a_process_is_not_taken_for_kept(tmp_path: Path) -> None:
    """`portscan store gc` in another process removes a pack this one read: the digest
    is then where another pack keeps it, or kept anew."""
    directory = _fresh(tmp_path)
    first, sha256 = content.store_content(directory, _elf(8))
    Path(first[0]).unlink()
    Path(first[0][: -len(".pack")] + ".idx").unlink()
    assert content.locate(directory, sha256) is None
    again, _ = content.store_content(directory, _elf(8))
    assert again[0] != first[0] and bytes(content.mapped(again)) == _elf(8)
    assert content.locate(directory, sha256) == again


def test_drop_moves_the_few_needed_files_of_a_pack_and_frees_the_rest(tmp_path: Path) -> None:
    """A pack mostly unneeded: its needed files go to a new pack, found there by this
    process (which had them in the old one) and by another; a pack mostly needed stays."""
    directory = _fresh(tmp_path)
    sizes = (8_000, 30_000, 30_000)
    made = [content.store_content(directory, _elf(20 + n, size)) for n, size in enumerate(sizes)]
    old, needed = made[0][0][0], made[0][1]
    _age(directory)
    before = content.disk_bytes(directory)
    files, freed = content.drop(directory, {needed}, grace=3600)
    assert files == 2 and 60_000 <= freed < before
    assert not Path(old).exists() and set(content.kept(directory)) == {needed}
    moved = content.locate(directory, needed)
    assert moved is not None and moved[0] != old
    assert bytes(content.mapped(moved)) == _elf(20, 8_000)
    out = _other_process(directory, needed)
    assert out[0] == str(moved[1:])
    _age(directory)
    # the other process's pack goes; the one needed is most of its pack, which stays
    assert content.drop(directory, {needed}, grace=3600)[0] == 1
    assert content.locate(directory, needed) == moved


def test_drop_leaves_a_pack_shorter_than_its_index_and_clears_a_lone_index(
    tmp_path: Path,
) -> None:
    """A pack cut short (a disk that filled) keeps its needed file where the index says,
    rather than copy less than it; an index whose pack has gone is removed alone."""
    directory = _fresh(tmp_path)
    content.store_content(directory, _elf(30, 40_000))
    where, needed = content.store_content(directory, _elf(31, 4_000))
    with open(where[0], "r+b") as pack:
        pack.truncate(where[1] + 1_000)  # the needed file is cut
    _age(directory)
    assert content.drop(directory, {needed}, grace=3600) == (0, 0)
    assert content.locate(directory, needed) == where
    Path(where[0]).unlink()
    assert content.drop(directory, {needed}, grace=3600)[0] == 0
    assert not list(Path(directory, content.PACKS).iterdir())
