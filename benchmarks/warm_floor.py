#!/usr/bin/env python3
"""What a warm rescan cannot take less than in Python: a fresh interpreter (with `site`,
as a console script starts) that asks the registry for the image's manifest, as a
rescan must (a tag may move), and writes a stored document, zstd-compressed as the scan
cache keeps it, decompressed to /dev/null; nothing of portscan imported. The median of
`--repeat` runs; nothing asserted.

    python benchmarks/warm_floor.py 127.0.0.1:5000/corpus/nginx:latest RESULT.json

RESULT.json is a document of the image (`portscan image REF --format json -o FILE`).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import zstandard

PROGRAM = """
import http.client, sys, zstandard
host, port, path, stored = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
accept = ("application/vnd.oci.image.manifest.v1+json,"
          "application/vnd.docker.distribution.manifest.v2+json")
connection = http.client.HTTPConnection(host, port)
connection.request("GET", path, headers={"Accept": accept})
connection.getresponse().read()
blob = memoryview(open(stored, "rb").read())
inflate = zstandard.ZstdDecompressor().decompressobj()
with open("/dev/null", "wb") as out:
    for start in range(0, len(blob), 1 << 18):
        out.write(inflate.decompress(blob[start : start + (1 << 18)]))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("reference", help="HOST:PORT/NAME:TAG on a plain-HTTP registry")
    parser.add_argument("document", type=Path, help="a portscan JSON document of it")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    address, _, rest = args.reference.partition("/")
    host, _, port = address.partition(":")
    name, _, tag = rest.rpartition(":")
    path = f"/v2/{name}/manifests/{tag}"
    with tempfile.NamedTemporaryFile(suffix=".zst") as stored:
        stored.write(zstandard.ZstdCompressor(level=1).compress(args.document.read_bytes()))
        stored.flush()
        command = [sys.executable, "-c", PROGRAM, host, port or "80", path, stored.name]
        seconds = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            subprocess.run(command, check=True)
            seconds.append(time.perf_counter() - started)
    print(
        f"warm floor: median {statistics.median(seconds):.3f} s of {args.repeat} runs "
        f"({min(seconds):.3f}-{max(seconds):.3f})"
    )


if __name__ == "__main__":
    main()
