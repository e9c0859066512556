"""Judging's grouping loops in C (portscan/lint/_grouping.c) against their Python: the
symbol sets of real programs and libraries of this machine, and crafted ones (threads
kept books on with and without what creates them, unversioned names, other libraries'
versions), under every option that changes a row, give the same groups in the same
order, and the same findings."""

from __future__ import annotations

import glob
import os

import pytest

from portscan.inspect.elf.program import analyse_elf_facts
from portscan.layers import AnalysisFailed
from portscan.lint import symbols
from portscan.model import Target

_grouping = pytest.importorskip("portscan.lint._grouping", reason="built where a C compiler is")

CRAFTED = [
    ["pthread_join@GLIBC_2.34", "pthread_mutex_lock@GLIBC_2.2.5", "printf@GLIBC_2.2.5"],
    ["pthread_join@GLIBC_2.34", "pthread_create@GLIBC_2.34", "fork@GLIBC_2.2.5"],
    ["pthread_join", "socket", "listen", "accept", "open64", "__printf_chk", "no_such_fn"],
    ["SSL_new@OPENSSL_3.0.0", "malloc@GLIBC_2.2.5", "setns@GLIBC_2.14", "malloc@GLIBC_2.2.5"],
    [
        "shmget",
        "semop",
        "mmap",
        "mprotect",
        "dlopen",
        "__libc_start_main",
        "_ITM_registerTMCloneTable",
    ],
    [],
]


def _real_sets() -> list[list[str]]:
    """The imported symbols of some programs and libraries of this machine."""
    found = []
    paths = (
        sorted(glob.glob("/usr/bin/*"))[:40]
        + sorted(glob.glob("/usr/lib/x86_64-linux-gnu/lib*.so.*"))[:40]
    )
    for path in paths:
        if os.path.islink(path) or not os.path.isfile(path):
            continue
        with open(path, "rb") as handle:
            data = handle.read()
        if not data.startswith(b"\x7fELF"):
            continue
        try:
            binary = analyse_elf_facts(path, data, path)
        except AnalysisFailed:  # a file this machine has that portscan cannot read
            continue
        if binary.imported_symbols:
            found.append(list(binary.imported_symbols))
    assert len(found) >= 20, "too few ELF files to compare on"
    return found


def _both(monkeypatch: pytest.MonkeyPatch, run):  # type: ignore[no-untyped-def]
    """`run()` with the C loops, then with the Python ones, each with no rows made."""
    answers = []
    for group in (_grouping.group, None):
        monkeypatch.setattr(symbols, "_group", group)
        symbols._rows.cache_clear()
        symbols._symbol_plan.cache_clear()
        answers.append(run())
    return answers


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"as_of": "2023-01-01"},
        {"wasix_libc": "wasm32-wasi-threads", "targets": (Target.WASIX, Target.WASIP1)},
        {"assume_libc": True},
        {"assume_libc": False},
    ],
)
def test_the_c_and_python_groups_agree(monkeypatch: pytest.MonkeyPatch, options: dict) -> None:
    sets = CRAFTED + _real_sets()
    targets = options.pop("targets", tuple(Target))
    assume = options.pop("assume_libc", None)

    def groups() -> list[object]:
        made = []
        for found in sets:
            names = [n for s in found if (n := symbols._judged_name(s)) is not None]
            libc = (not any(n[2] for n in names)) if assume is None else assume
            grouped = symbols._grouped(
                names, libc, targets, options.get("as_of"), options.get("wasix_libc")
            )
            made.append(list(grouped.items()))  # the order too
        return made

    in_c, in_python = _both(monkeypatch, groups)
    assert in_c == in_python
    assert any(any(items for _, (_, items) in made) for made in in_c)  # not all ready

    def findings() -> list[object]:
        return [
            symbols.judge_symbols(found, file="/x", targets=targets, assume_libc=assume, **options)
            for found in sets
        ]

    in_c, in_python = _both(monkeypatch, findings)
    assert in_c == in_python


def test_a_bad_row_is_a_type_error_not_a_crash() -> None:
    names = [("f", ("f", ""), True, None)]
    with pytest.raises(TypeError):
        _grouping.group(names, False, {}, lambda *key: "not a tuple", lambda b: False)
    with pytest.raises(TypeError):
        _grouping.group(names, False, {}, lambda *key: (("key", False),), lambda b: False)
    with pytest.raises(TypeError):
        _grouping.group([("f",)], False, {}, lambda *key: (), lambda b: False)
    with pytest.raises(ZeroDivisionError):  # what a row maker raises comes through
        _grouping.group(names, False, {}, lambda *key: 1 / 0, lambda b: False)
