"""Findings from what a program's own code uses of its language's library.

A use (`ApiUse`: a Go function linked in, a Python or JavaScript name at a line) is
judged by its entry in the language's table (signatures/go-stdlib.json,
python-modules.json, javascript-modules.json): the rule is the capability's (PS102 for
running programs, PS202 for listening...), the verdict and the advice are the
language's for that target, since a language's WASI toolchain gives a capability more
or less than wasi-libc does. The message names who decided: "the application uses
subprocess.Popen in /app/worker.py:42".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from portscan.knowledge import rules
from portscan.knowledge import tables as sig
from portscan.knowledge.ruleids import APPLICATION_CODE, NATIVE_EXTENSION, UNREAD_SOURCE
from portscan.model import TARGET_ORDER, ApiUse, Application, Evidence, Finding, Target

TABLES = {
    "go": "go-stdlib.json",
    "python": "python-modules.json",
    "javascript": "javascript-modules.json",
}
_SHOWN = 4
_MAX_EVIDENCE = 50

Owner = Callable[[str], str | None]  # file -> purl of its package
Layer = Callable[[str], int | None]  # file -> layer


def _where(use: ApiUse) -> str:
    return f"{use.file}:{use.line}" if use.line else use.file


def _evidence(use: ApiUse, owner: Owner, layer: Layer, detail: str) -> Evidence:
    return Evidence(
        use.file, symbol=use.name, package=owner(use.file), layer=layer(use.file),
        detail=detail, line=use.line,
    )  # fmt: skip


def judge_uses(
    uses: Sequence[ApiUse],
    language: str,
    subject: str,
    owner: Owner,
    layer: Layer,
    detail: str,
) -> list[Finding]:
    """One finding per table entry used and per target, worst first per target.
    `subject` starts the message ("the application", "/usr/bin/app (Go)")."""
    table = sig.api_table(TABLES[language])
    findings = []
    for api in table.apis:
        mine = [use for use in uses if use.api == api.id]
        if not mine:
            continue
        rule = rules.rule_for_capability(api.capability)
        shown = ", ".join(
            f"{use.name} in {_where(use)}" if use.line else use.name for use in mine[:_SHOWN]
        )
        more = f" and {len(mine) - _SHOWN} more" if len(mine) > _SHOWN else ""
        evidence = [_evidence(use, owner, layer, detail) for use in mine[:_MAX_EVIDENCE]]
        for target in Target:
            support = api.support[target]
            message = f"{subject} {api.title}: {shown}{more}. {support.how}"
            findings.append(
                Finding(rule.id, target, support.verdict, api.capability, message, list(evidence))
            )
    findings.sort(key=lambda f: (TARGET_ORDER[f.target], f.verdict.rank, f.rule_id))
    return findings


def lint_application(app: Application, owner: Owner, layer: Layer) -> list[Finding]:
    """The findings of an application's own code: what it uses, the files that could not
    be read, and a ready finding saying what was read (so that code using nothing the
    targets lack is ready, and the runtime's verdict decides)."""
    reader = "ast" if app.language == "python" else "tree-sitter"
    detail = f"read with {reader}"
    findings = judge_uses(app.uses, app.language, "the application", owner, layer, detail)
    for path, why in list(app.unread.items())[:_MAX_EVIDENCE]:
        evidence = Evidence(path, package=owner(path), layer=layer(path), detail=why)
        rule = rules.get_rule(UNREAD_SOURCE)
        for target in Target:
            message = f"{path} could not be read: {why}"
            findings.append(
                Finding(rule.id, target, rule.verdict(target), None, message, [evidence])
            )
    rule = rules.get_rule(NATIVE_EXTENSION)
    for module, path in app.extensions.items():
        evidence = Evidence(path, package=owner(path), layer=layer(path), detail=f"import {module}")
        message = f"{app.entry} imports the native extension module {module} ({path})"
        for target in Target:
            findings.append(
                Finding(rule.id, target, rule.verdict(target), None, message, [evidence])
            )
    rule = rules.get_rule(APPLICATION_CODE)
    count = len(app.files)
    listed = ", ".join(app.files[:_SHOWN])
    listed += f" and {count - _SHOWN} more" if count > _SHOWN else ""
    summary = Evidence(
        app.entry, package=owner(app.entry), layer=layer(app.entry),
        detail=f"{count} file(s) {detail}: {listed}",
    )  # fmt: skip
    for target in Target:
        message = f"{rule.title}: {count} {app.language} file(s) from {app.entry}"
        findings.append(Finding(rule.id, target, rule.verdict(target), None, message, [summary]))
    return findings
