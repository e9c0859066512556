"""tools/corpus: the corpus builder's scripts parse, its registry stays on loopback, and
its OCI-layout helper (ocitool.py) reads a real layout and writes one portscan accepts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.entrypoint import REPO, portscan

TOOLS = REPO / "tools" / "corpus"
HELLO = REPO / "examples" / "hello"
SCRIPTS = ("setup.sh", "registry.sh", "build_corpus.sh", "podman_api.sh")


def ocitool(*args: str) -> str:
    command = [sys.executable, str(TOOLS / "ocitool.py"), *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_parses(script: str) -> None:
    subprocess.run(["bash", "-n", str(TOOLS / script)], check=True)


def test_registry_refuses_a_non_loopback_address(tmp_path: Path) -> None:
    env = {**os.environ, "CORPUS_ROOT": str(tmp_path), "REGISTRY_ADDR": "192.0.2.1:5000"}
    done = subprocess.run(
        ["bash", str(TOOLS / "registry.sh"), "start"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "non-loopback" in done.stderr
    assert not any(tmp_path.iterdir())


def test_ocitool_stats_on_a_real_layout(tmp_path: Path) -> None:
    out = tmp_path / "summary.json"
    ocitool("stats", "--json", str(out), "--lists", str(tmp_path / "lists"), str(HELLO))
    (stats,) = json.loads(out.read_text())
    assert (stats["layers"], stats["files"], stats["elf_files"]) == (1, 2, 1)
    assert stats["entrypoint"] == ["/app/start.sh"]
    assert (tmp_path / "lists" / "hello.elf.txt").read_text() == "/app/hello\n"
    (layer,) = ocitool("layers", str(HELLO)).split()
    assert Path(layer).read_bytes()[:2] == b"\x1f\x8b"
    assert stats["compressed"] == Path(layer).stat().st_size


def test_ocitool_index_writes_a_layout_portscan_reads(tmp_path: Path) -> None:
    multi = tmp_path / "multi"
    ocitool("index", "--layout", str(HELLO), "--tags", "latest", "--out", str(multi), "--ref", "m")
    index = json.loads((multi / "index.json").read_text())
    assert index["manifests"][0]["mediaType"] == "application/vnd.oci.image.index.v1+json"
    done = portscan("image", f"oci:{multi}:m", "--format", "json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["image"]["platform"] == "linux/amd64"
    assert result["image"]["config"]["entrypoint"] == ["/app/start.sh"]
    assert result["targets"]["wasip1"]["verdict"] == "rework"
