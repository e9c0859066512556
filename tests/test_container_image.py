"""portscan's own container image: the Dockerfile builds with podman, and the portscan
inside it scans a corpus image to the same verdicts as this checkout.

Docker Hub is out of reach here, so BASE is a stand-in for python:3.11-slim built from
the corpus python-3.11 layout (Debian's python3) plus Debian's python3-pip, the build
host's CA bundle for pip (PIP_CERT) and PIP_BREAK_SYSTEM_PACKAGES (python:3.11-slim has
no PEP 668 marker). podman runs with its own vfs storage and chroot isolation, which
need neither cgroups nor overlay mounts; `podman run` cannot start containers in this
sandbox, so the scan runs as a RUN step of a second build whose result is exported with
`--output type=local`. Needs network for apt and pip, a few minutes and about 5 GB of
temporary disk (vfs copies every layer), removed afterwards.
"""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path("/tmp/portscan-corpus/oci")
PYTHON_LAYOUT = CORPUS / "python-3.11"
SCANNED_LAYOUT = CORPUS / "busybox-static"

pytestmark = [
    pytest.mark.podman,
    pytest.mark.build,
    pytest.mark.skipif(shutil.which("podman") is None, reason="needs podman"),
    pytest.mark.skipif(
        not (PYTHON_LAYOUT.is_dir() and SCANNED_LAYOUT.is_dir()),
        reason="needs the corpus layouts python-3.11 and busybox-static",
    ),
    pytest.mark.skipif(
        shutil.disk_usage(tempfile.gettempdir()).free < 8 << 30,
        reason="needs about 5 GB of temporary disk (vfs copies every layer)",
    ),
    pytest.mark.timeout(1500),
]


class Podman:
    """podman on a private vfs store."""

    def __init__(self, root: Path) -> None:
        self.flags = [
            "--root",
            str(root / "root"),
            "--runroot",
            str(root / "runroot"),
            "--storage-driver",
            "vfs",
            "--cgroup-manager",
            "cgroupfs",
        ]

    def __call__(self, *args: str, timeout: float = 900) -> str:
        done = subprocess.run(
            ["podman", *self.flags, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"podman {args[0]} failed: {done.stdout[-3000:]}{done.stderr}")
        return done.stdout

    def build(self, context: Path, *args: str) -> str:
        return self("build", "--isolation", "chroot", *args, str(context))


@pytest.fixture(scope="module")
def podman() -> Iterator[Podman]:
    root = Path(tempfile.mkdtemp(prefix="portscan-build-"))  # podman wants a short runroot
    yield Podman(root)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def image(podman: Podman, tmp_path_factory: pytest.TempPathFactory) -> str:
    """portscan's Dockerfile built on the stand-in base; returns the image name."""
    base = tmp_path_factory.mktemp("base")
    bundle = Path(ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt")
    shutil.copy(bundle, base / "host-ca.crt")
    (base / "Containerfile").write_text(
        f"FROM oci:{PYTHON_LAYOUT}\n"
        "RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends"
        " python3-pip >/dev/null && rm -rf /var/lib/apt/lists/*\n"
        "COPY host-ca.crt /etc/ssl/certs/host-ca.crt\n"
        "ENV PIP_BREAK_SYSTEM_PACKAGES=1 PIP_CERT=/etc/ssl/certs/host-ca.crt\n"
    )
    podman.build(base, "-t", "portscan-test-base")
    podman.build(REPO, "--build-arg", "BASE=localhost/portscan-test-base", "-t", "portscan-test")
    return "localhost/portscan-test"


def test_the_image_runs_portscan_as_its_entrypoint(podman: Podman, image: str) -> None:
    config = json.loads(podman("image", "inspect", image))[0]["Config"]
    assert config["Entrypoint"] == ["portscan"]
    assert config["WorkingDir"] == "/work"


def test_the_image_scans_a_corpus_image_as_the_checkout_does(
    podman: Podman, image: str, tmp_path: Path
) -> None:
    context = tmp_path / "scan"
    context.mkdir()
    shutil.copytree(SCANNED_LAYOUT, context / "layout")
    (context / "Containerfile").write_text(
        f"FROM {image}\n"
        "COPY layout /img\n"
        "RUN portscan image oci:/img -q -f json -o /result.json\n"
        "FROM scratch\n"
        "COPY --from=0 /result.json /\n"
    )
    out = tmp_path / "out"
    podman.build(context, "--output", f"type=local,dest={out}")
    inside = json.loads((out / "result.json").read_text())

    here = subprocess.run(
        [sys.executable, "-m", "portscan", "image", f"oci:{SCANNED_LAYOUT}", "-q", "-f", "json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    outside = json.loads(here.stdout)
    assert inside["image"]["digest"] == outside["image"]["digest"]
    verdicts = {t: (v["verdict"], v["score"]) for t, v in outside["targets"].items()}
    assert {t: (v["verdict"], v["score"]) for t, v in inside["targets"].items()} == verdicts
