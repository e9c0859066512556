"""`portscan diff`: two fixture images that differ by one added fork-using program."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from portscan import codec as json_report
from portscan.model import Target, Verdict
from portscan.report import diff
from tests import reportfixtures as rf

FORKER = "/usr/local/bin/forker"


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> rf.Scans:
    return rf.fixture_scans(tmp_path_factory)


def test_the_added_fork_program_is_the_only_change(scans: rf.Scans) -> None:
    changes = diff.diff_results(scans.old, scans.new)
    assert changes.added == [FORKER] and changes.removed == []
    forker = next(c for c in scans.new.components if c.path == FORKER)
    for entry in changes.targets:
        assert [(c.path, c.old, c.new) for c in entry.components] == [
            (FORKER, None, forker.verdicts[entry.target])
        ]
        assert {f.key.owner for f in entry.appeared} == {f"file:{FORKER}"}
        assert entry.disappeared == [] and entry.changed == []
        assert entry.direction == "same"  # the entrypoint does not reach it
        own = {(f.rule_id, f.verdict) for f in forker.findings if f.target is entry.target}
        assert {(f.key.rule_id, f.key.verdict) for f in entry.appeared} == own
    wasip1 = changes.targets[0]
    assert wasip1.target is Target.WASIP1
    assert ("PS101", Verdict.REWORK) in {(f.key.rule_id, f.key.verdict) for f in wasip1.appeared}
    assert not changes.worse


def test_the_reverse_diff_shows_it_disappear(scans: rf.Scans) -> None:
    changes = diff.diff_results(scans.new, scans.old)
    assert changes.removed == [FORKER] and changes.added == []
    assert all(not t.appeared and t.disappeared for t in changes.targets)


def test_a_scan_against_itself_is_no_change(scans: rf.Scans) -> None:
    changes = diff.diff_results(scans.old, scans.old)
    assert changes.empty
    assert diff.render_text(changes).endswith("no change in portability\n")


def test_the_cli_diffs_a_saved_result_against_a_reference(scans: rf.Scans, tmp_path: Path) -> None:
    saved = tmp_path / "old.json"
    saved.write_text(json_report.render(scans.old))
    result = rf.run_cli("diff", str(saved), f"oci:{scans.new_layout}")
    assert result.returncode == 0, result.stderr
    changed = [
        line.strip()
        for line in result.stdout.splitlines()
        if line.strip()[:2] in ("+ ", "- ", "~ ")
    ]
    assert f"+ component {FORKER}" in changed
    assert all(FORKER in line or "ready finding" in line for line in changed), changed
    assert any(line.startswith("+ PS101 rework") for line in changed)

    as_json = rf.run_cli("diff", str(saved), f"oci:{scans.new_layout}", "--format", "json")
    doc = json.loads(as_json.stdout)
    assert doc["added"] == [FORKER] and doc["worse"] is False
    assert doc["targets"][0]["direction"] == "same"


def test_fail_on_worse(scans: rf.Scans, tmp_path: Path) -> None:
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json_report.render(scans.old))
    doc = json.loads(json_report.render(scans.new))
    doc["targets"]["wasip2"]["verdict"] = "rework"  # as if the entrypoint now forked
    new.write_text(json.dumps(doc))
    worse = rf.run_cli("diff", str(old), str(new), "--fail-on-worse")
    assert worse.returncode == 10, worse.stderr
    assert "wasip2: ready (100) -> rework (100)  [worse]" in worse.stdout
    assert "gate failed" in worse.stderr
    better = rf.run_cli("diff", str(new), str(old), "--fail-on-worse")
    assert better.returncode == 0, better.stderr
    assert "[better]" in better.stdout


def test_waived_findings_are_marked_in_every_diff_format(scans: rf.Scans) -> None:
    from portscan.scan import ScanOptions, scan_image
    from portscan.waivers import Waiver

    reason = "forks only while starting"
    waivers = (Waiver(1, "PS101", reason, "/usr/local/bin/*"),)
    waived = scan_image(f"oci:{scans.new_layout}", ScanOptions(waivers=waivers))
    changes = diff.diff_results(scans.old, waived)
    for entry in changes.targets:
        marks = {f.key.rule_id: f.waived for f in entry.appeared if f.key.owner.endswith(FORKER)}
        assert marks.pop("PS101") == reason and marks["PS103"] is None, entry.target
        assert set(marks.values()) == {None}, entry.target
    text = diff.render_text(changes)
    assert f"PS101 rework  {FORKER}: " in text and f"[waived: {reason}]" in text
    assert "PS103 rework" in text and text.count("[waived:") == 3  # rework on 3 targets
    assert "**Waived** (not counted for verdicts or gates)" in diff.render_markdown(changes)
    doc = json.loads(diff.render_json(changes))
    appeared = doc["targets"][0]["appeared"]
    assert {(f["key"]["rule_id"], f["waived"]) for f in appeared} >= {("PS101", reason)}

    # the same image with and without the waiver: the waiver is the change
    now = diff.diff_results(scans.new, waived)
    assert not now.worse
    lines = [line for line in diff.render_text(now).splitlines() if line.startswith("  ~")]
    assert lines and all(f"[now waived: {reason}]" in line for line in lines)
    assert len(lines) == len(Target)  # PS101 on every target (ready on wasix)
    back = diff.render_text(diff.diff_results(waived, scans.new))
    assert back.count(f"[no longer waived: {reason}]") == len(Target)
    assert f"`PS101` `{FORKER}` on wasip1 [now waived: {reason}]" in diff.render_markdown(now)
