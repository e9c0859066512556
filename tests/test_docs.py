"""The documentation that is generated from data stays in step with it."""

from __future__ import annotations

from pathlib import Path

from portscan.knowledge.rules import all_rules
from portscan.report.rules import render_rule_list, render_rules_markdown

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_rules_doc_is_current() -> None:
    assert (DOCS / "rules.md").read_text() == render_rules_markdown(), (
        "regenerate: python -m portscan.report.rules > docs/rules.md"
    )


def test_rule_list_names_every_rule() -> None:
    listing = render_rule_list("table")
    assert all(rule.id in listing for rule in all_rules())
