"""The reachability stage's walks, split between this process and a helper process
(graph/reach.py, inspect/elf/walks.py), give what they give in one process: on programs
linking real Debian libraries (libcurl, libssl, libcrypto, libsystemd, liblzma, libz),
with a budget small enough that files run out of it, a helper that dies, and the ELF
worker handed over as the helper."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path
from typing import Any

import pytest

from portscan.codec import unpack
from portscan.graph import reach
from portscan.inspect.elf import callgraph, walks, worker
from portscan.scan import ScanOptions, scan_image
from tests.test_reach import build_programs


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, ...]:
    """reach_image's arguments for an image of the test_reach programs, their files
    kept in a content directory that outlives the scan."""
    root = build_programs(tmp_path_factory)
    content = tmp_path_factory.mktemp("walks-content")
    captured: list[tuple[Any, ...]] = []
    original = reach.reach_image

    def capture(*args: Any) -> reach.ImageReach:
        captured.append(args[:5])  # without the helper
        return original(*args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reach, "reach_image", capture)
        scan_image(f"dir:{root}", ScanOptions(content_dir=str(content)))
    (args,) = captured
    return args


def _fields(found: reach.ImageReach) -> tuple[object, ...]:
    """Everything an ImageReach holds, units and libraries in their order."""
    return (
        [(path, dataclasses.astuple(unit)) for path, unit in found.units.items()],
        [(path, dataclasses.astuple(lib)) for path, lib in found.libraries.items()],
    )


def _reach(inputs: tuple[Any, ...], helper: subprocess.Popen[bytes] | None) -> reach.ImageReach:
    reach._REACH_CACHE.clear()  # as in a new process
    return reach.reach_image(*inputs, helper=helper)


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[walks.Walk]:
    """The walks handed to a helper, as they are sent."""
    handed: list[walks.Walk] = []
    send = walks.WalkHelper.send

    def spy(self: walks.WalkHelper, batch: list[walks.Walk], level: int | None = None) -> None:
        handed.extend(batch)
        send(self, batch, level)

    monkeypatch.setattr(walks.WalkHelper, "send", spy)
    return handed


def test_a_helper_makes_the_walks_this_process_would(
    inputs: tuple[Any, ...], sent: list[walks.Walk]
) -> None:
    alone = _reach(inputs, None)
    assert any(unit.platform for unit in alone.units.values())
    assert not sent
    helper = walks.start_helper()
    helped = _reach(inputs, helper)
    assert sent, "the helper was given no walk"
    assert helper.poll() is not None, "the stage stops its helper"
    assert _fields(helped) == _fields(alone)


@pytest.mark.parametrize("cap", [reach._COST_CAP, 1])
def test_files_out_of_budget_answer_the_same_wherever_they_are_walked(
    inputs: tuple[Any, ...], sent: list[walks.Walk], monkeypatch: pytest.MonkeyPatch, cap: int
) -> None:
    """Which of a file's walks complete depends on their order, not on the process:
    with a budget libcurl and libcrypto run out of, the split (by size, or one file
    each way in turn) changes nothing."""
    monkeypatch.setattr(callgraph, "GRAPH_BUDGET", 4000)  # the helper is told it too
    monkeypatch.setattr(reach, "_COST_CAP", cap)
    alone = _reach(inputs, None)
    whole = {why for unit in alone.units.values() for why in unit.whole.values()}
    assert any("over the budget of 4000" in why for why in whole)
    helped = _reach(inputs, walks.start_helper())
    assert {digest for digest, _ in sent} and _fields(helped) == _fields(alone)


class _KeptWalks:
    """A reach store (graph/reach.py's ReachStore) that keeps what it is given."""

    walk_level = 1

    def __init__(self) -> None:
        self.kept: dict[walks.Walk, tuple[callgraph.Reach, bytes | None]] = {}

    def get_reach(self, digest: str, root: str | None) -> callgraph.Reach | None:
        return None

    def put_reach(
        self, digest: str, root: str | None, found: callgraph.Reach, packed: bytes | None = None
    ) -> None:
        self.kept[(digest, root)] = (found, packed)


def test_the_helper_makes_the_stored_form_of_its_walks(
    inputs: tuple[Any, ...], sent: list[walks.Walk]
) -> None:
    """A walk the helper makes comes with its stored form (codec.pack at the store's
    level), which this process keeps as it is instead of packing the walk itself; one
    made here comes without. Each stored form decodes to the walk it stands for."""
    store = _KeptWalks()
    reach._REACH_CACHE.clear()
    reach.reach_image(*inputs[:4], store, walks.start_helper())
    there = set(sent)
    assert there and there < set(store.kept), "the walks were not split between the sides"
    for walk, (found, packed) in store.kept.items():
        assert (packed is not None) == (walk in there), walk
        if packed is not None:
            assert unpack(packed) == found


def test_walks_go_on_here_when_the_helper_dies(inputs: tuple[Any, ...]) -> None:
    alone = _reach(inputs, None)
    helper = walks.start_helper()
    helper.kill()
    helper.wait()
    assert _fields(_reach(inputs, helper)) == _fields(alone)


def test_the_elf_worker_becomes_the_helper(inputs: tuple[Any, ...]) -> None:
    """worker.handoff: the layers' worker, its imports made, serves the walks."""
    alone = _reach(inputs, None)
    worker.start()
    helper = worker.handoff()
    if helper is None:
        pytest.skip("PORTSCAN_WORKERS=0: no worker runs")
    assert worker._worker is None  # the next scan starts its own
    assert _fields(_reach(inputs, helper)) == _fields(alone)
    assert helper.poll() is not None


@pytest.mark.parametrize("budget", [callgraph.GRAPH_BUDGET, 4000])
def test_the_c_binding_binds_as_the_python_does(
    inputs: tuple[Any, ...], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, budget: int
) -> None:
    """graph/_binding.c against the Python of `_reach_unit` it replaces: the same units
    and libraries, chains and their order, whether the libraries are walked, run out of
    the budget (taken whole from there), or have no bytes kept (all taken whole)."""
    if reach._binding is None:
        pytest.skip("graph/_binding.c was not built")
    monkeypatch.setattr(callgraph, "GRAPH_BUDGET", budget)
    unkept = (*inputs[:2], str(tmp_path), *inputs[3:])
    for arguments in (inputs, unkept):
        in_c = _reach(arguments, None)
        with monkeypatch.context() as python:
            python.setattr(reach, "_binding", None)
            in_python = _reach(arguments, None)
        assert _fields(in_c) == _fields(in_python)
        assert any(unit.platform for unit in in_c.units.values())
        if arguments is unkept:
            assert all(unit.whole for unit in in_c.units.values() if unit.libraries)


def test_the_c_binding_refuses_what_reach_never_passes() -> None:
    """Malformed arguments raise TypeError (never a crash of the process)."""
    if reach._binding is None:
        pytest.skip("graph/_binding.c was not built")
    state = ("/p", {}, {}, [], [], {}, str, set(), set(), [], {}, {}, dict)
    with pytest.raises(TypeError):
        reach._binding.bind_walked([("name", "symbol")], set(), (), {}, state)
    with pytest.raises(TypeError):
        reach._binding.bind_walked([], set(), (), {}, state[:5])
    with pytest.raises(TypeError):
        reach._binding.bind_symbols(["f"], (), (), "not a dict", state)
    with pytest.raises(TypeError):
        reach._binding.walk_entries(["f"], {"f": ["a", "f"]}, {}, None, {})
    with pytest.raises(KeyError):
        reach._binding.walk_entries(["f"], {}, {}, None, {})
