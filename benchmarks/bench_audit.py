#!/usr/bin/env python3
"""Time `portscan registry`: the corpus registry cold and warm, and how an audit grows
with the number of images built on one base.

1. Corpus (tools/corpus/ builds and serves it at 127.0.0.1:5000), `--tags all`, with a fresh
   store (cold), the same store again (warm: every result reused), and the store with
   its image results dropped but its layers kept (layers warm: images are assembled
   from the layer cache, nothing is read from the registry but manifests and configs).
2. Scaling: N images in N repositories of a private loopback registry, each the
   corpus's Debian base layer (48.8 MiB compressed, 6665 entries, ~700 ELF files) plus
   a small layer of its own. Cold audit time per N next to N single `portscan image`
   scans; the store's own timings split the audit into layer analysis (once per
   unique layer) and image assembly (merge, inspect, graph, lint, score, JSON: once
   per image).

    python benchmarks/bench_audit.py                      # both, --jobs = CPU count
    python benchmarks/bench_audit.py --counts 1 2 4 8 16 --jobs 2
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.registry_server starts the private registry

from tests.registry_server import start_registry  # noqa: E402

REGISTRY = os.environ.get("REGISTRY", "127.0.0.1:5000")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def audit(host: str, store: Path, jobs: int, *extra: str) -> tuple[float, dict]:
    """Wall seconds and the fleet JSON of one `portscan registry` run."""
    command = [sys.executable, "-m", "portscan", "registry", host, "--tags", "all"]
    command += ["--store", str(store), "--jobs", str(jobs), "--format", "json", "-q", *extra]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    if done.returncode not in (0, 9):
        sys.exit(f"bench_audit: portscan registry failed: {done.stderr}")
    return elapsed, json.loads(done.stdout)


def unit_seconds(store: Path) -> tuple[float, float]:
    """Summed worker seconds: layer analyses, image assemblies."""
    with sqlite3.connect(store) as db:
        layers = db.execute("SELECT COALESCE(SUM(seconds), 0) FROM layers").fetchone()[0]
        images = db.execute("SELECT COALESCE(SUM(seconds), 0) FROM images").fetchone()[0]
    return layers, images


def corpus_once(jobs: int) -> tuple[float, float, float, dict, dict, dict, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store.db"
        cold, fleet = audit(REGISTRY, store, jobs)
        layer_s, image_s = unit_seconds(store)
        warm, warm_fleet = audit(REGISTRY, store, jobs)
        with sqlite3.connect(store) as db:
            db.execute("DELETE FROM image_layers")
            db.execute("DELETE FROM images")
        layers_warm, lw_fleet = audit(REGISTRY, store, jobs)
    return cold, warm, layers_warm, fleet, warm_fleet, lw_fleet, layer_s, image_s


def corpus(jobs: int, repeat: int) -> None:
    runs = [corpus_once(jobs) for _ in range(repeat)]
    cold, warm, layers_warm = (min(r[i] for r in runs) for i in range(3))
    _, _, _, fleet, warm_fleet, lw_fleet, layer_s, image_s = min(runs, key=lambda r: r[0])
    run = fleet["run"]
    print(f"## corpus registry {REGISTRY}, --tags all, --jobs {jobs}, best of {repeat}\n")
    print("| run | wall s | images scanned | reused | layers analysed |")
    print("|---|---:|---:|---:|---:|")
    for label, seconds, r in (
        ("cold (empty store)", cold, run),
        ("warm (all results stored)", warm, warm_fleet["run"]),
        ("layers warm (results dropped)", layers_warm, lw_fleet["run"]),
    ):
        print(
            f"| {label} | {seconds:.2f} | {r['images_scanned']} | {r['images_reused']} "
            f"| {r['layers_analysed']} |"
        )
    print(
        f"\ncold: {len(fleet['images'])} images; worker seconds {layer_s:.1f} in layer "
        f"analysis, {image_s:.1f} in image assembly; warm/cold = {warm / cold:.3f}, "
        f"layers-warm/cold = {layers_warm / cold:.2f}\n"
    )


# --------------------------------------------------------------------------- scaling


def corpus_base() -> tuple[bytes, str]:
    """The corpus Debian image's only layer blob and its diff_id."""
    base = f"http://{REGISTRY}/v2/corpus/debian"
    with httpx.Client(timeout=120) as client:
        manifest = client.get(f"{base}/manifests/bookworm", headers={"Accept": OCI_MANIFEST})
        manifest.raise_for_status()
        doc = manifest.json()
        config = client.get(f"{base}/blobs/{doc['config']['digest']}").json()
        blob = client.get(f"{base}/blobs/{doc['layers'][0]['digest']}").content
    return blob, config["rootfs"]["diff_ids"][0]


def sha256(data: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


def top_layer(index: int) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        for name, text in (
            ("srv/run.sh", f"#!/bin/sh\nexec cat /srv/app-{index}.txt\n"),
            (f"srv/app-{index}.txt", f"app {index}\n"),
        ):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o755, 1_700_000_000
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


class Pusher:
    """Plain distribution API uploads; the base blob is mounted, not sent again."""

    def __init__(self, url: str) -> None:
        self.client = httpx.Client(base_url=url, timeout=300)
        self.first: str | None = None

    def blob(self, repository: str, data: bytes) -> str:
        digest = sha256(data)
        if self.first and len(data) > 1 << 20:
            mounted = self.client.post(
                f"/v2/{repository}/blobs/uploads/?mount={digest}&from={self.first}"
            )
            if mounted.status_code == 201:
                return digest
        start = self.client.post(f"/v2/{repository}/blobs/uploads/")
        start.raise_for_status()
        location = start.headers["Location"]
        glue = "&" if "?" in location else "?"
        self.client.put(f"{location}{glue}digest={digest}", content=data).raise_for_status()
        return digest

    def image(self, repository: str, base: bytes, diff_id: str, top_tar: bytes) -> None:
        top = gzip.compress(top_tar, mtime=0)
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {"Entrypoint": ["/srv/run.sh"], "Env": ["PATH=/usr/bin:/bin"]},
                "rootfs": {"type": "layers", "diff_ids": [diff_id, sha256(top_tar)]},
                "history": [{"created_by": "debootstrap"}, {"created_by": "COPY srv"}],
            }
        ).encode()
        layers = [(base, self.blob(repository, base)), (top, self.blob(repository, top))]
        config_digest = self.blob(repository, config)
        self.first = self.first or repository
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
            "layers": [
                {"mediaType": OCI_LAYER, "digest": digest, "size": len(data)}
                for data, digest in layers
            ],
        }
        self.client.put(
            f"/v2/{repository}/manifests/latest",
            content=json.dumps(manifest).encode(),
            headers={"Content-Type": OCI_MANIFEST},
        ).raise_for_status()


def single_scan(host: str) -> float:
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "portscan", "image", f"registry:{host}/app/n000:latest", "-q"],
        check=True,
        capture_output=True,
    )
    return time.monotonic() - started


def scaling(counts: list[int], jobs: int, repeat: int) -> None:
    base, diff_id = corpus_base()
    size = len(base) / 2**20
    print(f"## images sharing the corpus Debian base ({size:.1f} MiB), --jobs {jobs}")
    print(f"best of {repeat}; worker seconds are summed over units (the best run's)\n")
    print(
        "| images | audit s | per extra image s | layers analysed | layer worker s "
        "| assembly worker s | N x single scan s |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    previous: tuple[int, float] | None = None
    with (
        tempfile.TemporaryDirectory() as tmp,
        start_registry(Path(tmp) / "registry") as registry,
    ):
        pusher = Pusher(registry.url)
        pushed = 0
        single = 0.0
        for count in sorted(counts):
            while pushed < count:
                pusher.image(f"app/n{pushed:03d}", base, diff_id, top_layer(pushed))
                pushed += 1
            if not single:
                single = min(single_scan(registry.host) for _ in range(repeat))
            runs = []
            for attempt in range(repeat):
                store = Path(tmp) / f"store-{count}-{attempt}.db"
                seconds, fleet = audit(registry.host, store, jobs)
                runs.append((seconds, fleet, *unit_seconds(store)))
            seconds, fleet, layer_s, image_s = min(runs, key=lambda r: r[0])
            slope = f"{(seconds - previous[1]) / (count - previous[0]):.2f}" if previous else "-"
            previous = (count, seconds)
            print(
                f"| {count} | {seconds:.2f} | {slope} | {fleet['run']['layers_analysed']} "
                f"| {layer_s:.1f} | {image_s:.1f} | {count * single:.1f} |"
            )
    print(f"\nsingle `portscan image` of one such image: {single:.2f} s\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--repeat", type=int, default=3, help="runs per point; best is shown")
    parser.add_argument("--skip-corpus", action="store_true")
    parser.add_argument("--skip-scaling", action="store_true")
    args = parser.parse_args()
    if not args.skip_corpus:
        corpus(args.jobs, args.repeat)
    if not args.skip_scaling:
        scaling(args.counts, args.jobs, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
