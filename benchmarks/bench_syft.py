#!/usr/bin/env python3
"""Time a full `portscan image` against `syft` cataloging the same image, side by side.

Both read the same image from the same loopback registry (tools/corpus/ builds
and serves the corpus at 127.0.0.1:5000). The floor is plain gunzip of the image's
layer blobs (`gzip -dc`, from the corpus's OCI layout). Each command runs `--repeat`
times; the median wall time and the peak resident memory of its process tree are shown
with the ratios the project's bar is stated in:

    portscan / syft  <= 0.4      portscan / gunzip <= 1.5      RSS portscan < RSS syft

    python benchmarks/bench_syft.py                     # nginx
    python benchmarks/bench_syft.py nginx:latest redis:latest --repeat 5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil

CORPUS = Path(os.environ.get("CORPUS_ROOT", "/tmp/portscan-corpus"))
REGISTRY = os.environ.get("REGISTRY", "127.0.0.1:5000")


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """(wall seconds, peak resident KiB of the whole process tree) of one run.

    The tree matters: portscan parses ELF files in a worker process, and syft may spawn
    helpers; GNU time's %M would see only the top process. RSS is sampled every 10 ms.
    """
    started = time.perf_counter()
    process = psutil.Popen(command, stdout=subprocess.DEVNULL, env=env)
    peak = 0
    while process.poll() is None:
        try:
            tree = [process, *process.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree))
        except psutil.Error:
            pass
        time.sleep(0.01)
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"bench_syft: {command[0]} failed with exit code {process.returncode}")
    return wall, peak // 1024


def layer_blobs(name: str, tag: str) -> list[Path]:
    layout = CORPUS / "oci" / f"{name}-{tag}"
    index = json.loads((layout / "index.json").read_text())
    manifest_digest = index["manifests"][0]["digest"].split(":", 1)[1]
    manifest = json.loads((layout / "blobs/sha256" / manifest_digest).read_text())
    return [
        layout / "blobs/sha256" / layer["digest"].split(":", 1)[1] for layer in manifest["layers"]
    ]


def median_run(command: list[str], repeat: int, env: dict[str, str] | None = None):
    runs = [timed(command, env) for _ in range(repeat)]
    return statistics.median(w for w, _ in runs), max(r for _, r in runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", nargs="*", default=["nginx:latest"], help="corpus NAME:TAG")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for tool in ("syft", "portscan", "gzip"):
        if shutil.which(tool) is None:
            sys.exit(f"bench_syft: {tool} not found on PATH (pip install -e '.[test]')")
    syft_env = {
        **os.environ,
        "SYFT_REGISTRY_INSECURE_USE_HTTP": "true",
        "SYFT_CHECK_FOR_APP_UPDATE": "false",
    }
    print(
        f"{'image':<16} {'gunzip s':>9} {'syft s':>7} {'portscan s':>10} "
        f"{'ps/syft':>8} {'ps/gunzip':>9} {'syft MiB':>9} {'ps MiB':>7}"
    )
    for image in args.images:
        name, _, tag = image.partition(":")
        tag = tag or "latest"
        blobs = [str(p) for p in layer_blobs(name, tag)]
        gunzip, _ = median_run(
            ["sh", "-c", 'cat "$@" | gzip -dc >/dev/null', "sh", *blobs], args.repeat
        )
        ref = f"{REGISTRY}/corpus/{name}:{tag}"
        syft, syft_rss = median_run(
            ["syft", f"registry:{ref}", "-o", "json", "-q"], args.repeat, syft_env
        )
        ours, our_rss = median_run(
            ["portscan", "image", f"registry:{ref}", "--format", "json", "-q", "-o", os.devnull],
            args.repeat,
        )
        print(
            f"{image:<16} {gunzip:>9.2f} {syft:>7.2f} {ours:>10.2f} {ours / syft:>8.2f} "
            f"{ours / gunzip:>9.2f} {syft_rss / 1024:>9.0f} {our_rss / 1024:>7.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
