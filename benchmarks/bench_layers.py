#!/usr/bin/env python3
"""Time portscan's layer reading alone (verify, inflate, walk, merge) against `gzip -dc`.

Reads a corpus OCI layout (tools/corpus/build_corpus.sh builds them under /tmp/portscan-corpus/oci)
in-process with the scan's own keep policy and no analysers, so the number is the cost
of the streaming pass itself; the ratio to plain gunzip of the same blobs is printed.
`--elf` also times the layers read as a scan reads them, with the ELF analyser: each
ELF file kept in a content directory and analysed by the ELF worker (started with the
read, its imports included), the facts waited for at the end.

    python benchmarks/bench_layers.py                 # nginx-latest
    python benchmarks/bench_layers.py postgres-15 --repeat 5
    python benchmarks/bench_layers.py nginx-latest --elf
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from portscan.inspect import keep
from portscan.inspect.elf import worker
from portscan.inspect.elf.worker import ElfAnalyser
from portscan.layers import merge_layers, read_layer, settle_facts
from portscan.model import LayerDescriptor

CORPUS = Path(os.environ.get("CORPUS_ROOT", "/tmp/portscan-corpus"))


def descriptors(layout: Path) -> list[tuple[Path, LayerDescriptor]]:
    index = json.loads((layout / "index.json").read_text())
    digest = index["manifests"][0]["digest"].split(":", 1)[1]
    manifest = json.loads((layout / "blobs/sha256" / digest).read_text())
    return [
        (
            layout / "blobs/sha256" / layer["digest"].split(":", 1)[1],
            LayerDescriptor(layer["digest"], layer["size"], layer["mediaType"]),
        )
        for layer in manifest["layers"]
    ]


def read_once(layers: list[tuple[Path, LayerDescriptor]], elf: bool = False) -> float:
    with tempfile.TemporaryDirectory(prefix="bench-layers-") as content:
        analysers = [ElfAnalyser(content)] if elf else []
        started = time.perf_counter()
        if elf:
            worker.start()
        results = []
        for path, descriptor in layers:
            with open(path, "rb") as blob:
                results.append(read_layer(blob, descriptor, keep, analysers, settle=False))
        for result in results:
            settle_facts(result)
        merge_layers(results)
        seconds = time.perf_counter() - started
        worker.stop()
    return seconds


def gunzip_once(layers: list[tuple[Path, LayerDescriptor]]) -> float:
    started = time.perf_counter()
    paths = [str(path) for path, _ in layers]
    subprocess.run(["sh", "-c", 'cat "$@" | gzip -dc >/dev/null', "sh", *paths], check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("layout", nargs="?", default="nginx-latest", help="name under oci/")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--elf", action="store_true", help="also with the ELF analyser")
    args = parser.parse_args()
    layers = descriptors(CORPUS / "oci" / args.layout)
    ours = statistics.median(read_once(layers) for _ in range(args.repeat))
    floor = statistics.median(gunzip_once(layers) for _ in range(args.repeat))
    ratio = ours / floor
    print(f"{args.layout}: portscan layers {ours:.2f} s, gzip -dc {floor:.2f} s, ratio {ratio:.2f}")
    if args.elf:
        runs = sorted(read_once(layers, elf=True) for _ in range(args.repeat))
        spread = ", ".join(f"{seconds:.2f}" for seconds in runs)
        median = statistics.median(runs)
        print(f"{args.layout}: with the ELF analyser, median {median:.2f} s ({spread})")


if __name__ == "__main__":
    main()
