"""Functions that link but misbehave at run time (signatures/runtime-semantics.json).

The symbol lists say whether a function links on a target; a row of runtime-semantics.json
says that, on some targets, a function that links fails (a stub), returns a placeholder or
answers differently from Linux, under a stated condition. A component that imports such a
function (or, statically linked, whose code calls it) gets the row's finding for each
target where the row holds: the row's rule, the row's verdict for that target, the
condition in the message, one evidence per symbol. Nothing here knows a function name:
everything comes from the rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from portscan.knowledge import rules
from portscan.knowledge import tables as sig
from portscan.knowledge.platform import parse_name
from portscan.lint.findings import TARGETS, Where
from portscan.model import TARGET_ORDER, ChainStep, Evidence, Finding, Target


def judge_semantics(
    symbols: Iterable[str],
    where: Where,
    *,
    targets: Sequence[Target] = TARGETS,
    as_of: str | None = None,
    origin: str = "imported",
    chains: Mapping[str, tuple[ChainStep, ...]] | None = None,
) -> list[Finding]:
    """Findings for the run-time rows whose functions `symbols` name.

    Symbols may carry version tags; one tagged with another library's version belongs to
    that library and is skipped, as judge_symbols does. `as_of` (ISO date) leaves out a row
    whose wasi-libc change came later (its `since`). `origin` words the evidence;
    `chains[symbol]` is how the component reaches it (graph/reach.py), as judge_symbols.
    """
    chains = chains or {}
    raw_by_function: dict[str, list[str]] = {}
    for symbol in dict.fromkeys(symbols):
        name = parse_name(symbol)
        if name.ignored is None and name.platform is not False:
            raw_by_function.setdefault(name.function, []).append(name.raw)
    findings = []
    for row in sig.runtime_semantics():
        used = [f for f in row.functions if f in raw_by_function]
        if not used:
            continue
        rule = rules.get_rule(row.rule)
        names = rules.listed(used)  # the same on every target
        evidence: list[Evidence] = []  # the same too: the targets' findings share it
        for target in targets:
            if not row.applies(target, as_of):
                continue
            support = row.support[target]
            message = rule.message(
                target, support.verdict, names, len(used), support, condition=row.condition
            )
            evidence = evidence or [
                Evidence(
                    where.path,
                    symbol=raw,
                    package=where.package,
                    layer=where.layer,
                    detail=f"{'reached' if len(chains.get(raw, ())) > 2 else origin}; {row.id}",
                    chain=chains.get(raw, ()),
                )
                for function in used
                for raw in raw_by_function[function]
            ]
            findings.append(
                Finding(rule.id, target, support.verdict, row.capability, message, list(evidence))
            )
    findings.sort(key=lambda f: (TARGET_ORDER[f.target], f.verdict.rank, f.rule_id))
    return findings
