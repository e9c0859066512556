"""The repository stands on its own: no tracked file reaches into a folder beside it."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.entrypoint import REPO

# Spelled in pieces so that this file does not name what it looks for.
SIBLING = "shared"
FORBIDDEN = (".." + "/" + SIBLING, "/work" + "/" + SIBLING)


def tracked_files() -> list[str]:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    listing = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, check=True, capture_output=True
    ).stdout
    return [name for name in listing.decode().split("\0") if name]


def test_no_tracked_file_names_a_sibling_folder() -> None:
    offenders = []
    for name in tracked_files():
        path = REPO / name
        if not path.is_file():  # deleted in the work tree, or a submodule
            continue
        data = path.read_bytes()
        if b"\0" in data:  # binary
            continue
        text = data.decode(errors="replace")
        offenders += [f"{name}: {word}" for word in FORBIDDEN if word in text]
    assert not offenders, "a fresh clone has no such folder:\n" + "\n".join(offenders)
