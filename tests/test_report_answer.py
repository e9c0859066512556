"""The answer first: one sentence per target, the reasons behind every verdict short of
ready (shim and unknown too), and what stands in the way once per capability."""

from __future__ import annotations

import copy

import pytest

from portscan.model import Capability, Component, Finding, ScanResult, Target, Verdict
from portscan.report import answer, markdown, table
from tests import reportfixtures as rf


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> rf.Scans:
    return rf.fixture_scans(tmp_path_factory)


def _server(result: ScanResult) -> Component:
    return next(c for c in result.components if c.path == "/usr/bin/server")


def test_one_sentence_per_target_says_verdict_what_and_why(scans: rf.Scans) -> None:
    answers = {a.target: a for a in answer.answers(scans.old)}
    assert set(answers) == set(scans.old.targets)
    for target, a in answers.items():
        assert a.sentence.startswith(f"{target.value}: {scans.old.targets[target].verdict.value}")
    wasip1 = answers[Target.WASIP1].sentence
    assert "(server)" in wasip1 and "listening for connections" in wasip1
    assert "largest effort M" in wasip1
    assert "builds for it as it is" in answers[Target.WASIP2].sentence
    assert answers[Target.WASIP2].reasons == []


def test_obstacles_are_grouped_by_capability_across_targets(scans: rf.Scans) -> None:
    found = answer.obstacles(scans.old)
    keys = [o.key for o in found]
    assert len(keys) == len(set(keys))
    server = next(o for o in found if o.key == "socket-server")
    # the symbol rule, the server pattern and the image config's port: one capability
    assert {"PS202", "PS501", "PS510"} <= set(server.rule_ids)
    assert server.verdicts == {Target.WASIP1: Verdict.REWORK}
    assert "/usr/bin/server" in server.components and "image config" in server.components
    assert "bind" in server.items


def _with_shim_and_unknown(result: ScanResult) -> ScanResult:
    """The fixture's result with the server shim on wasip2 (a finding says why) and
    unknown on wasip3 with nothing of its own deciding it."""
    result = copy.deepcopy(result)
    server = _server(result)
    server.findings = [f for f in server.findings if f.target not in (Target.WASIP2, Target.WASIP3)]
    server.findings.append(
        Finding(
            "PS301", Target.WASIP2, Verdict.SHIM, Capability("memory-map"),
            "Memory mapping (mmap, munmap, mprotect): mmap. Compile with the mmap emulation",
        )
    )  # fmt: skip
    server.verdicts[Target.WASIP2] = Verdict.SHIM
    server.verdicts[Target.WASIP3] = Verdict.UNKNOWN
    result.targets[Target.WASIP2].verdict = Verdict.SHIM
    result.targets[Target.WASIP3].verdict = Verdict.UNKNOWN
    return result


def test_shim_and_unknown_carry_their_reason(scans: rf.Scans) -> None:
    result = _with_shim_and_unknown(scans.old)
    answers = {a.target: a for a in answer.answers(result)}
    shim = answers[Target.WASIP2]
    assert [(r.verdict, r.rule_ids, r.components) for r in shim.reasons] == [
        (Verdict.SHIM, ["PS301"], ["/usr/bin/server"])
    ]
    assert "mmap emulation" in shim.sentence and "memory mapping" in shim.sentence
    unknown = answers[Target.WASIP3]
    assert [r.title for r in unknown.reasons] == ["no deciding finding"]
    assert unknown.sentence.startswith("wasip3: unknown: the only component")
    text = markdown.render(result)
    assert f"- {shim.sentence}" in text and f"- {unknown.sentence}" in text


def test_markdown_and_table_lead_with_the_answer(scans: rf.Scans) -> None:
    text = markdown.render(scans.old)
    sentences = [f"- {a.sentence}" for a in answer.answers(scans.old)]
    assert all(s in text for s in sentences)
    assert text.index("**The answer**") < text.index("**What stands in the way**")
    row = next(line for line in text.splitlines() if line.startswith("| Listening"))
    assert "| rework |  |  |  |" in row and "`server`" in row and "PS501" in row
    terminal = table.render(scans.old)
    assert all(a.sentence in terminal for a in answer.answers(scans.old))


def test_what_the_entrypoint_starts_comes_first(scans: rf.Scans) -> None:
    result = copy.deepcopy(scans.old)
    for c in result.components:
        if c.path in ("/usr/bin/hello", "/usr/bin/tracer"):
            c.reachable = True
            c.verdicts[Target.WASIP1] = Verdict.REWORK
    sentence = next(a for a in answer.answers(result) if a.target is Target.WASIP1).sentence
    # hello and tracer sort before server by path; server is what the entrypoint starts
    assert "not ready (server, hello, tracer)" in sentence
