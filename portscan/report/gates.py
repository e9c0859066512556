"""CI gates: whether a scan passes the thresholds a pipeline set (`--fail-on`,
`--min-score`, `--target`). The CLI exits with errors.EXIT_GATE_FAILED when one does not."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from portscan.model import ScanResult, Target, Verdict

FAIL_ON = ("rework", "blocked")


@dataclass(frozen=True)
class Gates:
    """`fail_on`: fail when a target's verdict is this or worse; `min_score`: fail
    below it; `targets`: the targets checked (all judged ones when empty)."""

    fail_on: Verdict | None = None
    min_score: int | None = None
    targets: tuple[Target, ...] = ()

    @property
    def active(self) -> bool:
        return self.fail_on is not None or self.min_score is not None


def check(result: ScanResult, gates: Gates) -> list[str]:
    """One line per failed gate, empty when every gate passes. A checked target the
    result has no verdict for fails: a gate never passes on missing evidence."""
    if not gates.active:
        return []
    targets: Sequence[Target] = gates.targets or [t for t in Target if t in result.targets]
    if not targets:
        return ["the result has no verdicts to check"]
    failures = []
    for target in targets:
        summary = result.targets.get(target)
        if summary is None:
            failures.append(f"{target.value}: no verdict in this result")
            continue
        if gates.fail_on is not None and summary.verdict.rank <= gates.fail_on.rank:
            failures.append(
                f"{target.value}: verdict {summary.verdict.value} (--fail-on {gates.fail_on.value})"
            )
        if gates.min_score is not None and summary.score < gates.min_score:
            failures.append(
                f"{target.value}: score {summary.score} < --min-score {gates.min_score}"
            )
    return failures
