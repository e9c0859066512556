"""SARIF 2.1.0: valid against the official schema, one rule per rule id, one result per
finding, located by paths inside the image."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote

import jsonschema
import pytest

from portscan.report import sarif, view
from tests import reportfixtures as rf

SCHEMA = Path(__file__).parents[1] / "portscan/report/schema/sarif-schema-2.1.0.json"


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> rf.Scans:
    return rf.fixture_scans(tmp_path_factory)


@pytest.fixture(scope="module")
def log(scans: rf.Scans) -> dict:
    return json.loads(sarif.render(scans.new))


def test_the_log_validates_against_the_official_schema(log: dict) -> None:
    schema = json.loads(SCHEMA.read_text())
    assert schema["id"].endswith("/sarif-schema-2.1.0.json")
    validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())
    assert [e.message for e in validator.iter_errors(log)] == []
    assert log["version"] == "2.1.0"


def test_one_rule_per_rule_id_and_one_result_per_problem(scans: rf.Scans, log: dict) -> None:
    run = log["runs"][0]
    rule_ids = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    assert len(rule_ids) == len(set(rule_ids))
    problems = [f for f in view.all_findings(scans.new) if f.verdict.value not in ("ready", "n/a")]
    assert problems and len(run["results"]) == len(problems)
    assert all(r["kind"] != "pass" for r in run["results"])
    assert {r["ruleId"] for r in run["results"]} <= set(rule_ids)
    for result in run["results"]:
        assert rule_ids[result["ruleIndex"]] == result["ruleId"]
    ptrace = [r for r in run["results"] if r["ruleId"] == "PS111"]
    assert ptrace and all(r["level"] == "error" and r["kind"] == "fail" for r in ptrace)
    ptrace_rule = run["tool"]["driver"]["rules"][rule_ids.index("PS111")]
    assert ptrace_rule["help"]["text"].startswith("PS111 ptrace")


def test_locations_are_paths_inside_the_image(log: dict) -> None:
    run = log["runs"][0]
    assert run["originalUriBaseIds"]["IMAGEROOT"]["uri"] == "file:///"
    fork = [
        r
        for r in run["results"]
        if r["ruleId"] == "PS101" and r["properties"]["target"] == "wasip1"
    ]
    assert len(fork) == 1
    location = fork[0]["locations"][0]
    artifact = location["physicalLocation"]["artifactLocation"]
    assert artifact == {"uri": "usr/local/bin/forker", "uriBaseId": "IMAGEROOT"}
    assert {"name": "fork", "kind": "function"} in [
        {**loc, "name": loc["name"].split("@")[0]} for loc in location["logicalLocations"]
    ]
    assert fork[0]["properties"]["verdict"] == "rework"
    uris = {
        loc["physicalLocation"]["artifactLocation"]["uri"]
        for r in run["results"]
        for loc in r["locations"]
        if "physicalLocation" in loc
    }
    assert rf.WEIRD_PATH.lstrip("/") in {unquote(u) for u in uris}
    assert all("<" not in u and " " not in u for u in uris)


def test_image_config_findings_have_a_logical_location(log: dict) -> None:
    ports = [r for r in log["runs"][0]["results"] if r["ruleId"] == "PS510"]
    assert ports
    assert ports[0]["locations"][0]["logicalLocations"][0]["kind"] == "resource"
    assert ports[0]["properties"]["component"] == "image"


def test_every_rule_has_help_markdown_that_renders(log: dict) -> None:
    """GitHub code scanning shows `help.markdown` under an alert: it must be Markdown
    whose per-target table parses (one row per target, three cells each) and whose
    symbol names are code, not emphasis. Parsed by markdown-it (GFM tables), as rich
    ships it."""
    from markdown_it import MarkdownIt

    from portscan.knowledge.rules import all_rules
    from portscan.model import Target
    from portscan.report.rules import render_rule_markdown

    in_log = {rule["id"]: rule for rule in log["runs"][0]["tool"]["driver"]["rules"]}
    assert in_log and all(rule["help"]["markdown"] for rule in in_log.values())
    parser = MarkdownIt("commonmark").enable("table")
    for rule in all_rules():
        text = render_rule_markdown(rule)
        if rule.id in in_log:
            assert in_log[rule.id]["help"]["markdown"] == text
        tokens = parser.parse(text)
        rows = [i for i, t in enumerate(tokens) if t.type == "tr_open"]
        assert len(rows) == 1 + len(Target), (rule.id, text)
        for start in rows:
            cells = 0
            for token in tokens[start:]:
                if token.type == "tr_close":
                    break
                cells += token.type in ("td_open", "th_open")
            assert cells == 3, (rule.id, text)
        assert not any(t.type == "em_open" for t in tokens), (rule.id, text)
        html = parser.render(text)
        assert f"<strong>{rule.id} {rule.name}" in html
        for reference in rule.references:
            if reference.url:
                assert f'href="{reference.url}"' in html, (rule.id, reference.url)
