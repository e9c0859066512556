#!/usr/bin/env python3
"""Where one cold `portscan image REF --format json` spends its time, stage by stage.

Runs the command in this process (as `python -m portscan` would, the CLI's collector
settings included) with an empty scan cache, and times each stage by wrapping the
function that is it:

- imports: the CLI's own (interpreter start-up excluded; a stage's imports, made when
  it starts, count in it);
- layers (`scan.read_image`), tree (`inspect.inspect_tree`), reachability
  (`graph.reach.reach_image`), of which walks (`CallGraph._walk`, the ELF worker's own
  walks excluded) and graphs (`CallGraph.from_bytes`), judging (`lint_image`);
- JSON (`audit.cache._encoded`), storing the result (`_pickled` and the store's
  `put_result`, the walks' `flush`), writing the output.

What no stage names is `other`. Nothing here asserts a time: it prints one table, the
median of `--repeat` runs, each in a fresh interpreter.

`--no-reach` scans with reachability off (`ScanOptions.reach`: each program judged by
every library it loads, taken whole), to see what the stage costs the whole scan.

    python benchmarks/bench_stages.py oci:/tmp/portscan-corpus/oci/nginx-latest
    python benchmarks/bench_stages.py registry:127.0.0.1:5000/corpus/postgres:15 --repeat 3
    python benchmarks/bench_stages.py registry:127.0.0.1:5000/corpus/nginx:latest --no-reach
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

STAGES = (
    ("imports", None),
    ("layers", "portscan.scan:read_image"),
    ("tree", "portscan.inspect:inspect_tree"),
    ("reachability", "portscan.graph.reach:reach_image"),
    ("  walks", "portscan.inspect.elf.callgraph:CallGraph._walk"),
    ("  graphs", "portscan.inspect.elf.callgraph:CallGraph.from_bytes"),
    ("judging", "portscan.lint.components:lint_image"),
    ("JSON", "portscan.audit.cache:_encoded"),
    ("storing", "portscan.audit.cache:_pickled"),
    ("storing", "portscan.audit.store:Store.put_result"),
    ("storing", "portscan.audit.cache:StoredWalks.flush"),
    ("writing", "portscan.cli.options:save"),
)
NESTED = {"  walks", "  graphs"}  # parts of reachability, not added to the total again


def _wrap(spot: str, name: str, spent: dict[str, float]) -> None:
    """Replace the function at `module:attribute[.attribute]` by a timed one."""
    import importlib

    module_name, _, path = spot.partition(":")
    owner = importlib.import_module(module_name)
    *parents, attribute = path.split(".")
    for parent in parents:
        owner = getattr(owner, parent)
    original = owner.__dict__[attribute]
    function = original.__func__ if isinstance(original, classmethod) else original

    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[name] = spent.get(name, 0.0) + time.perf_counter() - started

    setattr(owner, attribute, classmethod(timed) if isinstance(original, classmethod) else timed)


def one_run(reference: str, reach: bool = True) -> dict[str, float]:
    """Time one scan in this process; the stages' seconds, `total` and `other`."""
    started = time.perf_counter()
    spent: dict[str, float] = {}
    from portscan.cli.main import run as run_cli  # the imports a command needs first

    spent["imports"] = time.perf_counter() - started
    for name, spot in STAGES:
        if spot is not None:
            _wrap(spot, name, spent)
    if not reach:
        without_reach()
    # portscan.scan imports reach_image when a scan reaches the stage: the wrapped one
    sys.argv = ["portscan", "image", reference, "--format", "json", "-o", os.devnull, "-q"]
    try:
        code = run_cli()
    except SystemExit as exc:
        code = exc.code
    if code not in (0, None):
        raise SystemExit(f"bench_stages: the scan failed with exit code {code}")
    spent["total"] = time.perf_counter() - started
    counted = sum(v for k, v in spent.items() if k not in NESTED and k != "total")
    spent["other"] = spent["total"] - counted
    return spent


def without_reach() -> None:
    """Run the command's scans with `ScanOptions.reach` off: each goes through the scan
    cache's `result`, which takes its options from there."""
    import dataclasses
    from typing import Any

    from portscan.audit.cache import ScanCache

    result = ScanCache.result

    def without(self: ScanCache, reference: str, options: Any, *args: Any, **kw: Any) -> Any:
        return result(self, reference, dataclasses.replace(options, reach=False), *args, **kw)

    ScanCache.result = without  # type: ignore[method-assign]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-reach", action="store_true", help="reachability off")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # a child: one run, its times as JSON on the last line
        print(json.dumps(one_run(args.reference, reach=not args.no_reach)))
        return 0
    runs = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="bench-stages-") as cache:
            env = dict(os.environ, XDG_CACHE_HOME=cache)
            done = subprocess.run(
                [sys.executable, __file__, args.reference, "--one"]
                + (["--no-reach"] if args.no_reach else []),
                env=env, capture_output=True, text=True, check=True,
            )  # fmt: skip
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    names = [*dict.fromkeys(name for name, _ in STAGES), "other", "total"]
    off = ", reachability off" if args.no_reach else ""
    print(f"{args.reference}: median of {len(runs)} cold runs (s){off}")
    for name in names:
        print(f"{name:<14} {statistics.median(r.get(name, 0.0) for r in runs):7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
