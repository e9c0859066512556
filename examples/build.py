#!/usr/bin/env python3
"""Build examples/hello, the demo image that needs no registry, reproducibly.

The image is a real OCI image layout with one gzip layer: a statically linked C program
(src/hello.c, `musl-gcc -static -Os`) and the shell script that is its entrypoint
(src/start.sh). Everything that could vary between two builds is fixed: sorted tar
entries, one mtime (SOURCE_DATE_EPOCH, default below), uid/gid 0, no user or group names,
gzip with mtime 0 and no file name, JSON with sorted keys. Building twice with the same
toolchain gives the same digests; the compiler's version is recorded in the layer's history.

    python examples/build.py                 # rewrite examples/hello
    python examples/build.py --out DIR       # build elsewhere
    python examples/build.py --check         # build in a temporary folder, compare

Needs musl-gcc (Debian: apt-get install musl-tools). Standard library only.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE / "src"
OUT = HERE / "hello"
TAG = "latest"
EPOCH = int(os.environ.get("SOURCE_DATE_EPOCH", "1767225600"))  # 2026-01-01T00:00:00Z
CREATED = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(EPOCH))
CFLAGS = ["-static", "-Os"]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def descriptor(media_type: str, data: bytes) -> dict:
    return {"mediaType": media_type, "digest": digest(data), "size": len(data)}


def canonical(document: dict) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def compiler_version() -> str:
    return subprocess.run(
        ["musl-gcc", "--version"], check=True, capture_output=True, text=True
    ).stdout.splitlines()[0]


def compile_hello(work: Path) -> bytes:
    """musl-gcc -static -Os, run in a copy of src/ so no absolute path reaches the binary."""
    shutil.copy(SRC / "hello.c", work / "hello.c")
    subprocess.run(["musl-gcc", *CFLAGS, "-o", "hello", "hello.c"], check=True, cwd=work)
    return (work / "hello").read_bytes()


def layer_tar(files: dict[str, bytes]) -> bytes:
    """An uncompressed layer: the directories, then every file, sorted, all owned by root."""
    directories = sorted({str(Path(name).parent) for name in files} - {"."})
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name in sorted([*directories, *files]):
            info = tarfile.TarInfo(name)
            info.mtime, info.uid, info.gid, info.uname, info.gname = EPOCH, 0, 0, "", ""
            if name in files:
                info.mode, info.size = 0o755, len(files[name])
                archive.addfile(info, io.BytesIO(files[name]))
            else:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                archive.addfile(info)
    return out.getvalue()


def build(out: Path) -> str:
    """Write the layout to `out` (replacing it); returns the manifest's digest."""
    with tempfile.TemporaryDirectory(prefix="portscan-hello-") as work:
        hello = compile_hello(Path(work))
    tar = layer_tar({"app/hello": hello, "app/start.sh": (SRC / "start.sh").read_bytes()})
    layer = gzip.compress(tar, compresslevel=9, mtime=0)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": CREATED,
        "config": {
            "Entrypoint": ["/app/start.sh"],
            "Cmd": ["world"],
            "Env": ["PATH=/app:/usr/local/bin:/usr/bin:/bin"],
            "WorkingDir": "/app",
            "Labels": {
                "org.opencontainers.image.title": "portscan hello demo",
                "org.opencontainers.image.source": "examples/build.py",
            },
        },
        "rootfs": {"type": "layers", "diff_ids": [digest(tar)]},
        "history": [
            {
                "created": CREATED,
                "created_by": "COPY app/ /app/ # hello: musl-gcc "
                + " ".join(CFLAGS)
                + f" ({compiler_version()})",
            }
        ],
    }
    config_blob = canonical(config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config_blob),
        "layers": [descriptor(OCI_LAYER_GZIP, layer)],
    }
    manifest_blob = canonical(manifest)
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                **descriptor(OCI_MANIFEST, manifest_blob),
                "annotations": {"org.opencontainers.image.ref.name": TAG},
            }
        ],
    }
    if out.exists():
        shutil.rmtree(out)
    blobs = out / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    for blob in (layer, config_blob, manifest_blob):
        (blobs / digest(blob).split(":", 1)[1]).write_bytes(blob)
    (out / "oci-layout").write_bytes(canonical({"imageLayoutVersion": "1.0.0"}) + b"\n")
    (out / "index.json").write_bytes(canonical(index) + b"\n")
    return digest(manifest_blob)


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="layout directory to write")
    parser.add_argument(
        "--check", action="store_true", help="build in a temporary folder and compare with --out"
    )
    args = parser.parse_args(argv)
    if shutil.which("musl-gcc") is None:
        print("build.py: needs musl-gcc (apt-get install musl-tools)", file=sys.stderr)
        return 2
    if not args.check:
        print(f"{args.out}:{TAG} manifest {build(args.out)}")
        return 0
    with tempfile.TemporaryDirectory(prefix="portscan-hello-check-") as scratch:
        manifest = build(Path(scratch) / "hello")
        same = tree(Path(scratch) / "hello") == tree(args.out)
    print(f"rebuilt manifest {manifest}: {'identical' if same else 'DIFFERENT'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
