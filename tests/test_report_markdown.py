"""The pull-request summary says what the JSON says."""

from __future__ import annotations

import json
import re

import pytest

from portscan import codec as json_report
from portscan.report import markdown
from tests import reportfixtures as rf


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> rf.Scans:
    return rf.fixture_scans(tmp_path_factory)


def _table(text: str) -> dict[str, tuple[str, int, list[int]]]:
    rows = {}
    for line in text.splitlines():
        match = re.match(r"^\| (wasi\w+) \| \*\*([\w/]+)\*\* \| (\d+) \|(.*)\|$", line)
        if match:
            counts = [int(cell) for cell in match.group(4).split("|")]
            rows[match.group(1)] = (match.group(2), int(match.group(3)), counts)
    return rows


def test_the_verdicts_are_those_of_the_json(scans: rf.Scans) -> None:
    doc = json.loads(json_report.render(scans.new))
    table = _table(markdown.render(scans.new))
    assert set(table) == set(doc["targets"])
    for target, summary in doc["targets"].items():
        verdict, score, counts = table[target]
        assert (verdict, score) == (summary["verdict"], summary["score"])
        expected = [summary["counts"].get(v, 0) for v in ("blocked", "rework", "shim")]
        assert counts[:3] == expected


def test_obstacles_name_the_rule_and_the_component(scans: rf.Scans) -> None:
    text = markdown.render(scans.old)
    row = next(line for line in text.splitlines() if line.startswith("| Opening network"))
    assert "| PS201 |" in row and "`server`" in row
    assert "move-wasip2 1" in text  # the plan of what the entrypoint reaches


def test_code_spans_survive_backticks_pipes_and_markup() -> None:
    assert markdown.code_span("a|b") == "`a\\|b`"
    assert markdown.code_span("x`y") == "`` x`y ``"
    assert markdown.code_span("<script>") == "`<script>`"  # shown as text inside code


@pytest.mark.parametrize("breaker", ["\n", "\r", "\r\n", "\u2028", "\x1b[2J", "\x9b2J"])
def test_no_value_starts_a_line_or_reaches_a_terminal_raw(breaker: str) -> None:
    """A value from an image (a config string, a name) with a line break or an escape
    sequence stays on its line: CommonMark ends a line at CR as well as LF."""
    text = f"/bin/app{breaker}# forged heading"
    for rendered in (markdown.code_span(text), markdown._cell(text)):
        assert len(rendered.splitlines()) == 1
        assert not re.search("[\x00-\x1f\x7f-\x9f\u2028\u2029]", rendered)
