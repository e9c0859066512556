"""Run-time semantics as data (signatures/runtime-semantics.json): every row is sourced, a
row without a source does not load, and a real gcc-built program that calls poll() gets the
row's finding on wasip1 through the real pipeline while one that does not call it does not."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from portscan import knowledge
from portscan.knowledge import rules
from portscan.knowledge import tables as sig
from portscan.lint.findings import Where
from portscan.lint.semantics import judge_semantics
from portscan.model import Finding, Target
from portscan.scan import ScanOptions, scan_image
from tests.elfbuild import ElfBuilder, builder

SIGNATURES = Path(__file__).resolve().parent.parent / "signatures"
WHERE = Where("usr/bin/app", None, None)

POLL_C = r"""
#include <poll.h>
#include <stdio.h>
int main(void) {
    struct pollfd pf[1] = {{1, POLLOUT, 0}};
    int n = poll(pf, 1, 100);
    printf("%d\n", n);
    return n < 0;
}
"""
PLAIN_C = r"""
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv) {
    printf("%zu\n", strlen(argc > 1 ? argv[1] : "x"));
    return 0;
}
"""


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> ElfBuilder:
    return builder(tmp_path_factory)


def _row(row_id: str) -> sig.SemanticsRow:
    (row,) = [row for row in sig.runtime_semantics() if row.id == row_id]
    return row


def test_every_row_cites_a_reference_that_exists_with_an_https_url() -> None:
    known = sig.references()
    rows = sig.runtime_semantics()
    assert rows
    for row in rows:
        assert row.references, row.id
        assert all(ref in known for ref in row.references), row.id
        assert any((known[ref].url or "").startswith("https://") for ref in row.references), row.id
        assert row.support and row.condition and row.functions, row.id


def test_every_row_names_a_semantics_rule_that_documents_it() -> None:
    for row in sig.runtime_semantics():
        rule = rules.get_rule(row.rule)
        assert rules.emitter(rule) == rules.SEMANTICS, row.id
        for target, support in row.support.items():
            assert rule.verdict(target).rank <= support.verdict.rank, (row.id, target)
            assert ", ".join(row.functions) in rule.remediation(target), (row.id, target)
        assert set(row.references) <= {ref.id for ref in rule.references}, row.id


@pytest.fixture
def signatures_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of signatures/ that a test may break; the real data is reloaded afterwards."""
    for path in SIGNATURES.glob("*.json"):
        (tmp_path / path.name).write_text(path.read_text())
    monkeypatch.setenv(knowledge.SIGNATURES_ENV, str(tmp_path))
    sig.clear_cache()
    yield tmp_path
    monkeypatch.delenv(knowledge.SIGNATURES_ENV)
    sig.clear_cache()


def _break_first_row(directory: Path, **changes: object) -> None:
    path = directory / "runtime-semantics.json"
    doc = json.loads(path.read_text())
    doc["rows"][0].update(changes)
    doc["rows"][0] = {k: v for k, v in doc["rows"][0].items() if v is not None}
    path.write_text(json.dumps(doc))
    sig.clear_cache()


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"references": None}, "no reference"),
        ({"references": []}, "no reference"),
        ({"references": ["no-such-source"]}, "unknown reference"),
        ({"references": ["groundtruth"]}, "no reference with an https URL"),  # a local path
        ({"rule": "PS101"}, "unknown rule"),  # a capability's rule, not a semantics one
        ({"rule": "PS999"}, "unknown rule"),
        ({"targets": {"wasip9": {"verdict": "rework", "how": "x"}}}, "unknown or no targets"),
        ({"targets": {"wasip1": {"verdict": "sometimes", "how": "x"}}}, "bad verdict"),
        ({"capability": "no-such-capability"}, "unknown capability"),
        ({"since": "August 2025"}, "ISO date"),
    ],
)
def test_a_row_without_a_valid_source_rule_or_target_does_not_load(
    signatures_copy: Path, changes: dict[str, object], error: str
) -> None:
    _break_first_row(signatures_copy, **changes)
    with pytest.raises(sig.SignaturesError, match=error):
        sig.runtime_semantics()


def test_a_function_in_two_rows_for_one_target_does_not_load(signatures_copy: Path) -> None:
    path = signatures_copy / "runtime-semantics.json"
    doc = json.loads(path.read_text())
    doc["rows"].append(dict(doc["rows"][0], id="copy"))
    path.write_text(json.dumps(doc))
    sig.clear_cache()
    with pytest.raises(sig.SignaturesError, match="in rows"):
        sig.runtime_semantics()


def test_verdict_and_condition_come_from_the_row() -> None:
    row = _row("poll-partial-readiness")
    findings = judge_semantics(["poll@GLIBC_2.2.5", "printf@GLIBC_2.2.5"], WHERE)
    assert {f.target for f in findings} == set(row.support)
    for finding in findings:
        assert finding.rule_id == row.rule
        assert finding.verdict is row.support[finding.target].verdict
        assert finding.capability == row.capability
        assert row.condition in finding.message
        assert [e.symbol for e in finding.evidence] == ["poll@GLIBC_2.2.5"]


def test_another_librarys_symbol_and_unrelated_names_are_not_judged() -> None:
    assert judge_semantics(["poll@OPENSSL_3.0.0", "printf@GLIBC_2.2.5"], WHERE) == []


def test_a_row_holds_only_from_its_wasi_libc_date() -> None:
    row = _row("pthread-create-stub")
    assert row.since is not None
    before = judge_semantics(["pthread_create@GLIBC_2.34"], WHERE, as_of="2024-01-01")
    after = judge_semantics(["pthread_create@GLIBC_2.34"], WHERE, as_of=row.since)
    assert before == []
    assert {f.target for f in after} == set(row.support)


def _wasip1_findings(directory: Path, name: str) -> list[Finding]:
    result = scan_image(f"dir:{directory}", ScanOptions())
    (component,) = [c for c in result.components if Path(c.path).name == name]
    return [f for f in component.findings if f.target is Target.WASIP1]


def test_a_real_program_calling_poll_gets_the_finding_on_wasip1(
    build: ElfBuilder, tmp_path: Path
) -> None:
    row = _row("poll-partial-readiness")
    for name, source, flags in (
        ("poll_dynamic", POLL_C, ()),
        ("poll_static", POLL_C, ("-static",)),  # judged by the calls its code makes
        ("plain_dynamic", PLAIN_C, ()),
    ):
        shutil.copy(build.c(name, source, *flags), tmp_path / name)
    for name in ("poll_dynamic", "poll_static"):
        findings = [f for f in _wasip1_findings(tmp_path, name) if f.rule_id == row.rule]
        assert len(findings) == 1, name
        assert findings[0].verdict is row.support[Target.WASIP1].verdict  # from the row
        assert row.condition in findings[0].message
        assert findings[0].evidence[0].symbol.startswith("poll")
    plain = _wasip1_findings(tmp_path, "plain_dynamic")
    assert not [f for f in plain if rules.emitter(rules.get_rule(f.rule_id)) == rules.SEMANTICS]
