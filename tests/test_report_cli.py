"""Reports through the command line: every format, `--html`, `portscan report`, and the
CI gates with their exit code (10)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from portscan.model import Target, Verdict
from portscan.report.gates import Gates, check
from tests import reportfixtures as rf

GATE_FAILED = 10


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> rf.Scans:
    return rf.fixture_scans(tmp_path_factory)


@pytest.fixture(scope="module")
def saved(scans: rf.Scans, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`portscan image --format json -o` of the new image, with an HTML report beside."""
    out = tmp_path_factory.mktemp("cli") / "result.json"
    html = out.with_suffix(".html")
    result = rf.run_cli(
        "image", f"oci:{scans.new_layout}", "--format", "json", "-o", str(out), "--html", str(html)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""
    assert html.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    return out


def test_report_renders_a_saved_result_in_every_format(saved: Path, tmp_path: Path) -> None:
    doc = json.loads(saved.read_text())
    again = rf.run_cli("report", str(saved), "--format", "json")
    assert again.returncode == 0 and json.loads(again.stdout) == doc
    sarif = json.loads(rf.run_cli("report", str(saved), "--format", "sarif").stdout)
    assert sarif["version"] == "2.1.0"
    bom = json.loads(rf.run_cli("report", str(saved), "--format", "cyclonedx").stdout)
    assert bom["bomFormat"] == "CycloneDX"
    summary = rf.run_cli("report", str(saved), "--format", "markdown").stdout
    assert "| wasip1 | **rework** |" in summary
    table = rf.run_cli("report", str(saved)).stdout
    assert table.startswith("image ")
    page = tmp_path / "again.html"
    only_html = rf.run_cli("report", str(saved), "--html", str(page))
    assert only_html.returncode == 0 and only_html.stdout == ""
    assert saved.with_suffix(".html").read_text(encoding="utf-8") == page.read_text("utf-8")


def test_report_refuses_what_is_not_a_result(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": 1}')
    result = rf.run_cli("report", str(bad))
    assert result.returncode == 2
    assert result.stderr.startswith("portscan: error: ") and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--fail-on", "rework"], GATE_FAILED, "wasip1: verdict rework (--fail-on rework)"),
        (["--fail-on", "blocked"], 0, ""),
        (["--fail-on", "rework", "--target", "wasip2", "--target", "wasix"], 0, ""),
        (["--min-score", "31"], GATE_FAILED, "wasip1: score 30 < --min-score 31"),
        (["--min-score", "30"], 0, ""),
        (["--min-score", "100", "--target", "wasip2"], 0, ""),
    ],
)
def test_gates(saved: Path, args: list[str], code: int, message: str) -> None:
    result = rf.run_cli("report", str(saved), "--format", "markdown", *args)
    assert result.returncode == code, result.stderr
    assert result.stdout.startswith("### portscan")  # the report is written either way
    if message:
        assert f"portscan: gate failed: {message}" in result.stderr
    else:
        assert result.stderr == ""


def test_gates_on_a_scan(scans: rf.Scans) -> None:
    failed = rf.run_cli("image", f"oci:{scans.old_layout}", "--fail-on", "rework", "-q")
    assert failed.returncode == GATE_FAILED
    assert failed.stdout.startswith("image ")
    passed = rf.run_cli(
        "image", f"oci:{scans.old_layout}", "--fail-on", "rework", "--target", "wasip2", "-q"
    )
    assert passed.returncode == 0, passed.stderr


def test_a_gate_never_passes_on_missing_verdicts(scans: rf.Scans) -> None:
    empty = dataclasses.replace(scans.old, targets={})
    assert check(empty, Gates(fail_on=Verdict.BLOCKED)) == ["the result has no verdicts to check"]
    partial = dataclasses.replace(
        scans.old, targets={Target.WASIP1: scans.old.targets[Target.WASIP1]}
    )
    gates = Gates(min_score=0, targets=(Target.WASIP1, Target.WASIX))
    assert check(partial, gates) == ["wasix: no verdict in this result"]
    assert check(scans.old, Gates()) == []  # no gate asked for
