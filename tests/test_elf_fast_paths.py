"""The ELF analysis's fast paths against the plain rules they stand for: a dynamic name
read from the decoded string table is what `_Reader._string` reads from the file (lief's
peek_string_at, the end of the file included), and the x86 branch search, span by span
by the displacement's nibble, finds what one search of each block with both opcodes
finds (finditer's matches, which do not overlap), and so does the same search in C."""

from __future__ import annotations

import random
import re
import struct

import pytest

from portscan.inspect.elf import direct, syscalls
from portscan.inspect.elf.layout import ElfLayout


def _reader(data: bytes) -> direct._Reader:
    layout = ElfLayout(64, True, 0, 3, "x86_64", 0, (), ())
    return direct._Reader(data, layout)


@pytest.mark.parametrize(
    "data",
    [
        b"junk\0\0printf\0memcpy\0GLIBC_2.2.5\0tail-without-nul",  # ends mid-string
        b"junk\0caf\xc3\xa9\0\xff\xfe\0bad\xe9utf8\0end\0",  # not ASCII
        b"\0a\0bc\0\0",
        b"\0x",  # a last string of one byte, cut by the end of the file
    ],
)
@pytest.mark.parametrize("declared", [0, 3, 7, 1000])  # DT_STRSZ: short, long, absent
def test_string_table_reads_what_peek_string_reads(data: bytes, declared: int) -> None:
    reader = _reader(data)
    for start in range(len(data) + 2):
        table = direct._StringTable(reader, start, declared)
        for at in range(len(data) + 3):
            expected = direct._text(reader._string(start + at))
            assert table.text(at) == expected, (start, at)


def _reference_branches(data: bytes, code: syscalls._Code, targets: dict[int, None]) -> list:
    """The search as one regex with both opcodes, block by block (the code before)."""
    found = []
    rel32 = struct.Struct("<i").unpack_from
    for start in range(code.start, code.end, syscalls.BRANCH_BLOCK):
        end = min(start + syscalls.BRANCH_BLOCK, code.end)
        tails = b"|".join(map(re.escape, syscalls._block_tails(code, start, end, targets, False)))
        pattern = re.compile(b"[\xe8\xe9]..(?:" + tails + b")", re.DOTALL)
        for match in pattern.finditer(data, start, min(end + 4, code.end)):
            offset = match.start()
            target = offset + code.address - code.start + 5 + rel32(data, offset + 1)[0]
            if target in targets and offset < end:
                found.append((offset, 5, target))
    return found


@pytest.mark.parametrize("in_c", [True, False])
@pytest.mark.parametrize("seed", range(60))
def test_branch_search_finds_what_one_search_finds(
    seed: int, in_c: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In C (_elftables.x86_branches) where it was built, and in Python."""
    if in_c and syscalls._elftables is None:
        pytest.skip("portscan/inspect/elf/_elftables.c is not built")
    if not in_c:
        monkeypatch.setattr(syscalls, "_elftables", None)
    rng = random.Random(seed)
    size = rng.choice([64, 3000, syscalls.BRANCH_BLOCK + 500])
    alphabet = [0xE8, 0xE9, 0x00, 0xFF, 0x01, 0xFE]
    data = bytearray(rng.choice(alphabet) for _ in range(size))
    address = rng.choice([0x1000, 0x401000, 0x10000 - 3])
    reach = rng.choice([0x30000, 300])  # near targets: displacements of 0xffff.... or 0000....
    targets = {address + rng.randint(-reach, reach): None for _ in range(rng.randint(1, 3))}
    for _ in range(rng.randint(0, 40)):  # real branches to the targets, overlapping too
        at = rng.randrange(0, size - 5)
        target = rng.choice(list(targets))
        data[at] = rng.choice([0xE8, 0xE9])
        data[at + 1 : at + 5] = ((target - (address + at) - 5) & 0xFFFFFFFF).to_bytes(4, "little")
    code = syscalls._Code(0, size, address)
    found = list(syscalls._branches_to(bytes(data), code, targets, syscalls.X86_64))
    assert found == _reference_branches(bytes(data), code, targets)
