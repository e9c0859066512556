"""A real Docker-API-compatible engine for tests: Debian's podman serving the Docker API.

`podman system service` runs with its own root, runroot and vfs storage under a
temporary directory (no overlay mounts, no host state touched), on a unix socket that
the docker SDK reaches through DOCKER_HOST. As in tools/corpus/podman_api.sh.
The session fixture `podman_service` skips only when the podman binary is absent.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

START_TIMEOUT = 30.0


@dataclass
class PodmanService:
    """A `podman system service` in `workdir`; `podman()` runs the CLI on the same storage."""

    workdir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def socket_path(self) -> Path:
        return self.workdir / "podman.sock"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "CONTAINERS_REGISTRIES_CONF": str(self.workdir / "registries.conf")}

    def storage_flags(self) -> list[str]:
        return [
            "--root", str(self.workdir / "storage"),
            "--runroot", str(self.workdir / "run"),
            "--storage-driver", "vfs",
            "--events-backend", "file",
        ]  # fmt: skip

    def start(self) -> None:
        """Start the service and wait until it answers /_ping."""
        (self.workdir / "registries.conf").write_text("unqualified-search-registries = []\n")
        command = ["podman", *self.storage_flags(), "system", "service", "--time=0"]
        with (self.workdir / "service.log").open("wb") as log:
            self.process = subprocess.Popen(
                [*command, self.docker_host],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not _answers(self.socket_path):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                log_text = (self.workdir / "service.log").read_text(errors="replace")
                raise RuntimeError(f"podman system service did not come up: {log_text[-2000:]}")
            time.sleep(0.05)

    def podman(self, *args: str) -> str:
        """Run `podman ARGS` against this service's storage; its stdout."""
        done = subprocess.run(
            ["podman", *self.storage_flags(), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(f"podman {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def load(self, archive: Path) -> None:
        """`podman load` a `docker save` archive into the service's storage."""
        self.podman("load", "--quiet", "--input", str(archive))

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


def _answers(path: Path) -> bool:
    """True when the socket answers GET /_ping with status 200."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(1.0)
            conn.connect(str(path))
            conn.sendall(b"GET /_ping HTTP/1.0\r\nHost: podman\r\n\r\n")
            return conn.recv(64).split(b" ")[1:2] == [b"200"]
    except OSError:
        return False


@pytest.fixture(scope="session")
def podman_service() -> Iterator[PodmanService]:
    """A podman service for the whole session, removed afterwards."""
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (apt-get install podman)")
    # not tmp_path_factory: unix socket paths must stay under 108 bytes
    service = PodmanService(Path(tempfile.mkdtemp(prefix="ps-podman-")))
    try:
        service.start()
        yield service
    finally:
        service.stop()
        shutil.rmtree(service.workdir, ignore_errors=True)
