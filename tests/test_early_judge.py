"""Programs judged early, while the reachability stage waits for its walk helper
(lint/components.py `EarlyJudge`, scan.py), get the findings `lint_image` gives them
after the stage: on programs linking real Debian libraries (tests/test_reach.py)."""

from __future__ import annotations

from typing import Any

import pytest

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
    judged, _ = components.lint_image(*lint_inputs, early.findings)
    assert judged == after
    assert not early.step()
