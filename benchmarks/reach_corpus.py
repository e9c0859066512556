"""Reachability on the corpus (docs/reachability.md): per image, how its ELF components
were judged, whether any deciding finding of a library rests on a function no program
reaches, the headline blockers, and what reachability costs.

    bash tools/corpus/registry.sh start && bash tools/corpus/build_corpus.sh
    PYTHONPATH=. python3 benchmarks/reach_corpus.py [OCI-LAYOUT-DIR ...]

A deciding finding of a library judged on reach must carry a chain (graph/reach.py made
it from a program's walk); one without a chain would come from the library as a whole.
Libraries judged whole (PS909) are counted apart, with their reasons.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path

from portscan.model import Target, Verdict
from portscan.scan import ScanOptions, scan_image
from portscan.score import deciding

CORPUS = Path("/tmp/portscan-corpus/oci")
SYMBOL_RULES = ("PS1", "PS2", "PS3", "PS6")  # families judged from C-library functions


def main(layouts: list[Path]) -> None:
    print(
        "| image | programs on reach | libraries on reach / whole | unchained deciding "
        "| wasip1 | headline (wasip1) | cpu s without / with |"
    )
    print("|---|---:|---:|---:|---|---|---:|")
    for layout in layouts:
        reference = f"oci:{layout}"
        began = time.process_time()
        scan_image(reference, ScanOptions(reach=False))
        without = time.process_time() - began
        began = time.process_time()
        result = scan_image(reference)
        with_reach = time.process_time() - began
        kinds = Counter((c.kind, c.judged_on) for c in result.components)
        unchained = 0
        for component in result.components:
            if component.kind != "library" or component.judged_on != "reach":
                continue
            for target in Target:
                for finding in deciding(component, target):
                    if finding.verdict in (Verdict.READY, Verdict.NA):
                        continue
                    if not finding.rule_id.startswith(SYMBOL_RULES):
                        continue  # path strings, missing libraries: not functions
                    unchained += sum(1 for e in finding.evidence if e.symbol and not e.chain)
        summary = result.targets[Target.WASIP1]
        headline = ", ".join(b.rule_id for b in summary.blockers[:3]) or "-"
        print(
            f"| {layout.name} | {kinds[('executable', 'reach')]} "
            f"| {kinds[('library', 'reach')]} / {kinds[('library', 'whole')]} | {unchained} "
            f"| {summary.verdict.value} | {headline} | {without:.1f} / {with_reach:.1f} |"
        )


if __name__ == "__main__":
    paths = [Path(p) for p in sys.argv[1:]] or sorted(p for p in CORPUS.iterdir() if p.is_dir())
    main(paths)
