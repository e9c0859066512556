"""layout.find_all and layout.release over a real mapped file: a search that hands its
pages back as it goes finds exactly what one `find` loop finds, from any offset."""

from __future__ import annotations

import mmap
from pathlib import Path

import pytest

from portscan.inspect.elf import layout
from portscan.inspect.elf.layout import find_all, release


def _naive(data: bytes, needle: bytes, start: int, end: int) -> list[int]:
    found, offset = [], data.find(needle, start, end)
    while offset >= 0:
        found.append(offset)
        offset = data.find(needle, offset + 1, end)
    return found


@pytest.fixture
def mapped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[bytes, mmap.mmap]:
    monkeypatch.setattr(layout, "RELEASE_BEHIND", 3 * mmap.PAGESIZE)  # many parts
    part = layout.RELEASE_BEHIND
    raw = bytearray(b"\x90" * (part * 5 + 123))
    for at in (0, 7, part - 2, part - 1, part, 2 * part - 3, 3 * part + 5, len(raw) - 2):
        raw[at : at + 2] = b"\x0f\x05"  # syscall, straddling part boundaries too
    raw[part * 4 + 10 : part * 4 + 13] = b"\x0f\x0f\x0f"  # overlapping matches of \x0f\x0f
    path = tmp_path / "code.bin"
    path.write_bytes(raw)
    with path.open("rb") as file:
        yield bytes(raw), mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)


@pytest.mark.parametrize("needle", [b"\x0f\x05", b"\x0f\x0f", b"\x90\x0f\x05"])
@pytest.mark.parametrize("start", [0, 1, 4095, 4097])
def test_find_all_finds_what_a_find_loop_finds(mapped, needle: bytes, start: int) -> None:
    data, view = mapped
    end = len(data) - 1
    assert list(find_all(view, needle, start, end)) == _naive(data, needle, start, end)
    assert list(find_all(data, needle, start, end)) == _naive(data, needle, start, end)


def test_release_takes_any_offset_and_the_bytes_stay_readable(mapped) -> None:
    data, view = mapped
    release(view, 4097, 10)  # not page-aligned: madvise needs whole pages
    release(view, len(data) - 1)
    release(view, len(data) + 10)  # past the end: nothing to do
    assert view[:] == data
