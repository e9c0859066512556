"""Programs judged early, while the reachability stage waits for its walk helper
(lint/components.py `EarlyJudge`, scan.py), get the findings `lint_image` gives them
after the stage: on programs linking real Debian libraries (tests/test_reach.py)."""

from __future__ import annotations

from typing import Any

import pytest

from portscan.graph import reach
from portscan.inspect.elf import walks, worker
from portscan.lint import components
from portscan.scan import ScanOptions, scan_image
from tests.test_reach import build_programs


@pytest.fixture(scope="module")
def lint_inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, ...]:
    """lint_image's arguments in a scan of the test_reach programs (without `early`)."""
    root = build_programs(tmp_path_factory)
    captured: list[tuple[Any, ...]] = []
    original = components.lint_image

    def capture(*args: Any) -> Any:
        captured.append(args[:12])
        return original(*args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(components, "lint_image", capture)
        scan_image(f"dir:{root}", ScanOptions())
    (args,) = captured
    return args


def test_programs_judged_early_have_the_findings_judged_after(
    lint_inputs: tuple[Any, ...],
) -> None:
    _, graph, binaries, _, owner_of, layer_of, _ = lint_inputs[:7]
    as_of, _, go_uses, wasix_libc, reach = lint_inputs[7:]
    after, _ = components.lint_image(*lint_inputs)
    early = components.EarlyJudge(graph, binaries, owner_of, layer_of, as_of, go_uses, wasix_libc)
    for path, unit in reach.units.items():
        early.done(path, unit)
    while early.step():
        pass
    assert set(early.findings) == set(reach.units)
    assert any(early.findings.values()), "no program had a finding to compare"
    judged, _ = components.lint_image(*lint_inputs, early)
    assert judged == after
    assert not early.step()


def test_a_scan_judges_programs_while_it_waits_for_its_walk_helper(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """scan.py wires EarlyJudge to the reachability stage: with the helper's answers
    taken as never there before it is asked (so every wait judges what it can), the
    programs finished by then reach `lint_image` judged."""
    if worker.os.environ.get("PORTSCAN_WORKERS", "1") == "0":
        pytest.skip("PORTSCAN_WORKERS=0: no walk helper runs")
    root = build_programs(tmp_path_factory)
    monkeypatch.setattr(reach, "_REACH_CACHE", {})  # as in a new process: walks to make
    monkeypatch.setattr(walks.WalkHelper, "answered", lambda self: False)
    handed: list[Any] = []
    original = components.lint_image

    def capture(*args: Any) -> Any:
        handed.append(args[12])
        return original(*args)

    monkeypatch.setattr(components, "lint_image", capture)
    result = scan_image(f"dir:{root}", ScanOptions())
    (early,) = handed
    assert early.findings, "no program was judged while the helper walked"
    judged = {c.path: c.findings for c in result.components}
    assert all(judged[path] == findings for path, findings in early.findings.items())
