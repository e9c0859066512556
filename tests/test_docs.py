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


def _command_pages() -> dict[str, list[tuple[tuple[str, ...], object]]]:
    from portscan.cli.config import commands
    from portscan.cli.main import cli

    pages: dict[str, list[tuple[tuple[str, ...], object]]] = {}
    for path, command in commands(cli):
        pages.setdefault(path[0], []).append((path, command))
    return pages


def test_every_command_has_a_page_naming_each_of_its_options() -> None:
    """docs/commands/<command>.md exists for every command of the table (a group's
    subcommands share their group's page), names every spelling of every option, and
    the README links it."""
    import click

    readme = (DOCS.parent / "README.md").read_text()
    pages = _command_pages()
    assert {"image", "report", "config", "version", "completion"} <= pages.keys()
    for name, members in pages.items():
        page = DOCS / "commands" / f"{name}.md"
        assert page.is_file(), f"missing {page}"
        text = page.read_text()
        assert f"(docs/commands/{name}.md)" in readme, f"README does not link {page.name}"
        for path, command in members:
            assert f"portscan {' '.join(path)}" in text
            assert isinstance(command, click.Command)
            for param in command.params:
                if isinstance(param, click.Option):
                    for spelling in (*param.opts, *param.secondary_opts):
                        assert f"`{spelling}" in text, f"{page.name} lacks {spelling}"
    extra = {p.stem for p in (DOCS / "commands").glob("*.md")} - pages.keys()
    assert not extra, f"pages of no command: {sorted(extra)}"


def test_configuration_doc_names_every_variable_that_is_not_an_option() -> None:
    import re

    text = (DOCS / "configuration.md").read_text()
    source = "\n".join(p.read_text() for p in (DOCS.parent / "portscan").rglob("*.py"))
    used = set(re.findall(r"(?<![A-Z_])PORTSCAN_[A-Z][A-Z_]*[A-Z]", source))
    for name in used:
        assert name in text, f"docs/configuration.md does not document {name}"
    assert "(docs/configuration.md)" in (DOCS.parent / "README.md").read_text()
