"""Call chains (graph/reach.py) in every report: the HTML details, the Markdown obstacles,
SARIF related locations and the terminal's top blockers.

Two real scans: the report fixture (a server calling libc's socket directly) and a
program that calls only `sd_notify`, linked against the machine's libsystemd and put
with every library it loads into a root filesystem (tests/test_reach.py's helpers), whose
chains run through libsystemd to libc.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from portscan.model import ChainStep, Component, Evidence, ScanResult, Verdict, chain_text
from portscan.report import answer, html, markdown, sarif, table, view
from tests import reportfixtures as rf
from tests.test_reach import PROGRAMS, _install, _root

NOTIFY = "/usr/bin/notify"


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> rf.Scans:
    return rf.fixture_scans(tmp_path_factory)


@pytest.fixture(scope="module")
def notify(tmp_path_factory: pytest.TempPathFactory) -> ScanResult:
    """A root filesystem holding `notify` (sd_notify only) and what it loads, scanned."""
    if shutil.which("gcc") is None:
        pytest.fail("gcc is needed (apt-get install gcc)")
    from portscan.scan import scan_image

    build = tmp_path_factory.mktemp("chain-build")
    root = _root(tmp_path_factory.mktemp("chain-root"))
    flag, source = PROGRAMS["notify"]
    (build / "notify.c").write_text(source + "\n")
    program = root / NOTIFY.lstrip("/")
    done = subprocess.run(
        ["gcc", "-O1", "-o", str(program), str(build / "notify.c"), flag],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.fail(f"cannot build notify (install libsystemd-dev): {done.stderr}")
    _install(root, program)
    return scan_image(f"dir:{root}")


def _chained(result: ScanResult) -> list[tuple[Component, Evidence]]:
    """Every piece of evidence of an open finding that carries a chain."""
    return [
        (c, e)
        for c in result.components
        for f in view.open_findings(c.findings)
        for e in f.evidence
        if e.chain
    ]


def _library_chain(result: ScanResult) -> tuple[ChainStep, ...]:
    """A chain from `notify` through libsystemd."""
    return next(
        e.chain
        for c, e in _chained(result)
        if c.path == NOTIFY and any("libsystemd" in s.file for s in e.chain)
    )


def test_chain_helpers_follow_chain_text(notify: ScanResult) -> None:
    chain = _library_chain(notify)
    links = view.chain_links(chain)
    assert " → ".join(step[0] for step in links) == chain_text(chain)
    assert links[0] == ["notify", NOTIFY]
    named = [step[1] for step in links if len(step) == 2]
    assert any("libsystemd" in path for path in named) and named[-1].endswith("libc.so.6")
    assert len(named) < len(chain)  # steps inside one library name no file
    long = (ChainStep("/bin/p"), *(ChainStep("/lib/l.so", f"f{i}") for i in range(9)))
    assert view.short_chain(long) == "p → f0 (l.so) → f1 → … → f6 → f7 → f8"
    assert view.short_chain(long[:4]) == chain_text(long[:4])


def _details(page: str, index: int) -> dict:
    chunk = index // html.CHUNK_ROWS
    data = re.search(rf'id="portscan-data-{chunk}"[^>]*>([^<]+)<', page)
    assert data is not None
    return html.unpack_data(data.group(1))[index % html.CHUNK_ROWS]


def test_html_details_carry_each_evidence_chain_with_its_files(notify: ScanResult) -> None:
    page = html.render(notify)
    rows = json.loads(re.search(r'id="portscan-rows"[^>]*>([^<]+)<', page).group(1))
    path_of = {r["i"]: r["path"] for r in rows}
    index = {r["path"]: r["i"] for r in rows if r["kind"] != "package"}
    details = _details(page, index[NOTIFY])
    lines = details["lines"]  # each evidence line once; findings point into it by number
    shown = [lines[n] for f in details["findings"] for n in f["evidence"]]
    chains = [line[1] for line in shown if isinstance(line, list)]
    assert chains, "no evidence line carries its chain"
    linked = {path_of[step[1]] for chain in chains for step in chain if len(step) == 2}
    assert NOTIFY in linked and any("libsystemd" in path for path in linked)
    expected = {chain_text(e.chain) for c, e in _chained(notify) if c.path == NOTIFY}
    texts = {" → ".join(step[0] for step in chain) for chain in chains}
    assert texts and texts <= expected
    assert len(lines) == len({json.dumps(line) for line in lines})  # no line twice


def test_markdown_shows_one_chain_per_obstacle(scans: rf.Scans, notify: ScanResult) -> None:
    text = markdown.render(scans.new)
    assert "**How the code reaches them**" in text
    assert "`server → socket (libc.so.6)`" in text
    for ob in answer.obstacles(notify):
        if ob.chain:
            assert f"`{view.short_chain(ob.chain)}`" in markdown.render(notify)
            break
    else:
        pytest.fail("no obstacle of notify has a chain")


def test_markdown_without_chains_has_no_chain_section(scans: rf.Scans) -> None:
    components = [
        dataclasses.replace(
            c,
            findings=[
                dataclasses.replace(
                    f, evidence=[dataclasses.replace(e, chain=()) for e in f.evidence]
                )
                for f in c.findings
            ],
        )
        for c in scans.new.components
    ]
    text = markdown.render(dataclasses.replace(scans.new, components=components))
    assert "How the code reaches" not in text and "**What stands in the way**" in text


def _unchained(evidence: list[Evidence]) -> list[Evidence]:
    return [dataclasses.replace(e, chain=()) for e in evidence]


def test_sarif_related_locations_are_the_chain(notify: ScanResult) -> None:
    log = json.loads(sarif.render(notify))
    results = log["runs"][0]["results"]
    chained = [r for r in results if "relatedLocations" in r]
    assert chained
    by_text = {r["properties"]["chain"]: r for r in chained}
    chain = next(
        e.chain
        for c in notify.components
        for f in c.findings
        if f.verdict not in (Verdict.READY, Verdict.NA)
        for e in f.evidence[:1]
        if e.chain and any("libsystemd" in s.file for s in e.chain)
    )
    result = by_text[chain_text(chain)]
    related = result["relatedLocations"]
    assert [r["message"]["text"] for r in related] == [s.function or "the program" for s in chain]
    assert [r["physicalLocation"]["artifactLocation"]["uri"] for r in related] == [
        s.file.lstrip("/") for s in chain
    ]
    assert [r["id"] for r in related] == list(range(1, len(chain) + 1))


def test_the_terminal_shows_the_top_blockers_chain(scans: rf.Scans) -> None:
    lines = table.render(scans.new).splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("  PS201 "))
    assert lines[at + 1].split() == ["via", "server", "→", "socket", "(libc.so.6)"]


def test_busybox_static_reports_have_no_chain() -> None:
    examples = Path(__file__).parents[1] / "reports"
    assert "How the code reaches" not in (examples / "busybox-static.md").read_text()
    assert "relatedLocations" not in (examples / "busybox-static.sarif").read_text()
    assert "postgres → shm_open (libc.so.6)" in (examples / "postgres.md").read_text()
