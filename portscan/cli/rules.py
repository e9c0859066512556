"""`portscan rules` and `portscan explain`: the rule catalogue."""

from __future__ import annotations

import sys

import click

from portscan.cli import options


@click.command("rules")
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table")
def rules_command(output_format: str) -> None:
    """List every rule: id, name, verdict per target, title."""

    def body() -> None:
        from portscan.report.rules import render_rule_list

        sys.stdout.write(render_rule_list(output_format))

    options.run_guarded(body, debug=False)


@click.command("explain")
@click.argument("rule_id")
def explain_command(rule_id: str) -> None:
    """Print one rule's documentation: what it finds, why, what to do per target."""

    def body() -> None:
        from portscan.knowledge.rules import get_rule
        from portscan.report.rules import render_rule_text

        sys.stdout.write(render_rule_text(get_rule(rule_id)))

    options.run_guarded(body, debug=False)
