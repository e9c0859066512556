"""examples/hello: the demo image in the repository scans, and its script rebuilds it exactly."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.entrypoint import REPO, portscan

EXAMPLES = REPO / "examples"
HELLO = EXAMPLES / "hello"


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _manifest_digest(layout: Path) -> str:
    return json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]


def _built_with(layout: Path) -> str:
    """The layer's history line, where build.py records the compiler."""
    blob = layout / "blobs" / "sha256"
    manifest = json.loads((blob / _manifest_digest(layout).split(":")[1]).read_text())
    config = json.loads((blob / manifest["config"]["digest"].split(":")[1]).read_text())
    return config["history"][0]["created_by"]


def test_checked_in_layout_scans_to_a_verdict() -> None:
    done = portscan("image", "oci:examples/hello", "--format", "json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["image"]["digest"] == _manifest_digest(HELLO)
    assert result["image"]["config"]["entrypoint"] == ["/app/start.sh"]
    # The static program is ready everywhere; the shell entrypoint is what needs rework.
    components = {c["path"]: c for c in result["components"]}
    assert set(components["/app/hello"]["verdicts"].values()) == {"ready"}
    wasip1 = result["targets"]["wasip1"]
    assert wasip1["verdict"] == "rework"
    assert [b["rule_id"] for b in wasip1["blockers"]] == ["PS507"]


def test_build_script_reproduces_the_layout(tmp_path: Path) -> None:
    if shutil.which("musl-gcc") is None:
        pytest.fail("musl-gcc is required to rebuild examples/hello (apt-get install musl-tools)")
    for name in ("a", "b"):
        command = [sys.executable, str(EXAMPLES / "build.py"), "--out", str(tmp_path / name)]
        subprocess.run(command, check=True, capture_output=True)
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b"), "two builds differ"
    compiler = subprocess.run(
        ["musl-gcc", "--version"], check=True, capture_output=True, text=True
    ).stdout.splitlines()[0]
    if compiler not in _built_with(HELLO):
        pytest.skip(f"examples/hello was built by another compiler than {compiler}")
    assert _tree(tmp_path / "a") == _tree(HELLO), "python examples/build.py changes examples/hello"
