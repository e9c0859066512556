#!/usr/bin/env python3
"""Instructions (valgrind's count, not seconds) of the stages this process runs after the
layers, on inputs captured from one real scan: judging (`symbols.judge_symbols`, every
call of the scan), the JSON document (`cache._encoded` of its result) and reachability
(`reach.reach_image`, every walk made here). On this 2-core VM a scan's time drifts
10-30% within an hour, so a change of 5% in one stage cannot be seen in seconds; an
instruction count is the same from run to run, so two checkouts compare exactly.

    python benchmarks/bench_instructions.py capture 127.0.0.1:5000/corpus/postgres:15
    python benchmarks/bench_instructions.py count [--checkout DIR] [--stage judging]

`capture` scans the image once (a fresh scan cache under the capture directory, whose
content directory `reach` then maps) and pickles the three stages' inputs there
(default /tmp/portscan-instructions); `count` runs each stage in a fresh interpreter
under `valgrind --tool=callgrind`, once with its inputs loaded only and once also
running it, and prints the difference, in millions. `--checkout` counts another
checkout's code on the same inputs (its extensions built in place); where the two
checkouts' result classes differ, one cannot load the other's pickled result: capture
with `--checkout` too, into another directory (`--into`). Needs valgrind. Nothing here
asserts a count.
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
import subprocess
import sys
import tempfile
from pathlib import Path

STAGES = ("judging", "json", "reach")
VALGRIND = ("valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null")
CAPTURED = Path(tempfile.gettempdir()) / "portscan-instructions"
ROOT = Path(__file__).resolve().parent.parent


def capture(reference: str, where: Path, checkout: Path) -> None:
    """Scan `reference` in this process with `checkout`'s code and keep each stage's
    inputs in `where`."""
    where.mkdir(parents=True, exist_ok=True)
    os.environ["XDG_CACHE_HOME"] = str(where / "cache")  # the content directory reach maps
    sys.path.insert(0, str(checkout))
    import importlib

    from portscan.audit import cache
    from portscan.graph import reach
    from portscan.lint import symbols

    calls: list[tuple[list[str], dict[str, object]]] = []
    judge, encoded, reach_image = symbols.judge_symbols, cache._encoded, reach.reach_image

    def judged(found, **options):
        found = list(found)
        calls.append((found, options))
        return judge(found, **options)

    def kept_result(result):
        (where / "json.pickle").write_bytes(pickle.dumps(result, protocol=5))
        return encoded(result)

    def kept_reach(graph, binaries, content_dir, reached=frozenset(), *rest):
        inputs = (graph, dict(binaries), content_dir, set(reached))
        (where / "reach.pickle").write_bytes(pickle.dumps(inputs, protocol=5))
        return reach_image(graph, binaries, content_dir, reached, *rest)

    symbols.judge_symbols, cache._encoded, reach.reach_image = judged, kept_result, kept_reach
    cli = importlib.import_module("portscan.cli.main")
    sys.argv = ["portscan", "image", reference, "--format", "json", "-o", os.devnull]
    status = cli.run()
    (where / "judging.pickle").write_bytes(pickle.dumps(calls, protocol=5))
    print(f"captured {len(calls)} judging calls, a result and reach inputs in {where} ({status})")


# The program `count` runs: the stage's inputs loaded, then (with "run") the stage.
PROGRAM = """
import pickle, sys
sys.path.insert(0, {checkout!r})
stage, where, run = {stage!r}, {where!r}, sys.argv[1] == "run"
inputs = pickle.load(open(where + "/" + stage + ".pickle", "rb"))
if stage == "judging":
    from portscan.knowledge import tables
    from portscan.lint import symbols
    for found, options in inputs[:1]:
        symbols.judge_symbols(found, **options)  # the signatures loaded
    for cached in tables._DEPENDENT_CACHES:
        cached.cache_clear()  # as cold as a scan's start
    if run:
        for found, options in inputs:
            symbols.judge_symbols(found, **options)
elif stage == "json":
    from portscan.audit import cache
    if run:
        cache._encoded(inputs)
else:
    from portscan.graph import reach
    if run:
        reach.reach_image(*inputs)
"""


def instructions(program: str, mode: str) -> int:
    """valgrind's count of the instructions `python -c program mode` ran."""
    done = subprocess.run(
        [*VALGRIND, os.path.realpath(sys.executable), "-c", program, mode],
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:  # e.g. another checkout's classes cannot
        # load what this one pickled: capture with that checkout's code
        raise SystemExit(f"bench_instructions.py: no count from valgrind:\n{done.stderr[-2000:]}")
    return int(found[1])


def count(where: Path, checkout: Path, stages: list[str]) -> None:
    for stage in stages:
        if not (where / f"{stage}.pickle").is_file():
            raise SystemExit(f"bench_instructions.py: nothing captured in {where}: run capture")
        program = PROGRAM.format(checkout=str(checkout), stage=stage, where=str(where))
        spent = instructions(program, "run") - instructions(program, "load")
        print(f"{stage:10s} {spent / 1e6:10.0f} M instructions  ({checkout})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("action", choices=("capture", "count"))
    parser.add_argument("reference", nargs="?", default="127.0.0.1:5000/corpus/postgres:15")
    parser.add_argument(
        "--into", type=Path, default=Path(tempfile.gettempdir()) / "portscan-instructions"
    )
    parser.add_argument("--checkout", type=Path, default=ROOT)
    parser.add_argument("--stage", choices=STAGES, action="append")
    args = parser.parse_args()
    if args.action == "capture":
        capture(args.reference, args.into, args.checkout.resolve())
    else:
        count(args.into, args.checkout.resolve(), args.stage or list(STAGES))


if __name__ == "__main__":
    main()
