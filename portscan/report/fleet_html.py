"""The fleet report of a registry audit: one self-contained HTML file (no scripts, no
requests), autoescaped, from a `FleetResult`."""

from __future__ import annotations

from pathlib import Path

import jinja2

from portscan import __version__
from portscan.audit.fleet import FleetResult
from portscan.knowledge.rules import get_rule
from portscan.model import Target
from portscan.report.rules import render_rule_text

_TEMPLATES = Path(__file__).resolve().parent / "templates"


def render(fleet: FleetResult) -> str:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    rule_ids = sorted({blocker.rule_id for blocker in fleet.blockers})
    return environment.get_template("fleet.html.j2").render(
        fleet=fleet,
        targets=[t.value for t in Target],
        rule_texts=[(rule_id, render_rule_text(get_rule(rule_id))) for rule_id in rule_ids],
        version=__version__,
    )
