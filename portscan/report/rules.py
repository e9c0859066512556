"""The rule catalogue as `portscan rules` prints it (table or JSON)."""

from __future__ import annotations

import json

from portscan.model import Target
from portscan.rules import all_rules


def render_rule_list(output_format: str = "table") -> str:
    rules = all_rules()
    if output_format == "json":
        doc = [
            {
                "id": rule.id,
                "name": rule.name,
                "title": rule.title,
                "family": rule.family,
                "capability": rule.capability.value if rule.capability else None,
                "runtime": rule.runtime,
                "verdicts": {t.value: rule.verdict(t).value for t in Target},
            }
            for rule in rules
        ]
        return json.dumps(doc, indent=2) + "\n"
    targets = list(Target)
    header = f"{'ID':<6} {'NAME':<28} " + " ".join(f"{t.value:<8}" for t in targets) + " TITLE"
    lines = [header]
    for rule in rules:
        verdicts = " ".join(f"{rule.verdict(t).value:<8}" for t in targets)
        lines.append(f"{rule.id:<6} {rule.name[:28]:<28} {verdicts} {rule.title}")
    lines.append(f"\n{len(rules)} rules; `portscan explain ID` prints one.")
    return "\n".join(lines) + "\n"
