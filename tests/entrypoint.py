"""Run the `portscan` command of this checkout in a subprocess, as a user would.

The command is the `[project.scripts]` entry of pyproject.toml, imported from this checkout
(`python -c` in the repository root puts it first on sys.path, ahead of whatever `portscan`
is installed), so these tests follow the entry point wherever the package puts it.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def portscan(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`portscan ARGS...` from the repository root; output captured as text."""
    script = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    module, function = script["portscan"].split(":")
    code = f"import sys; from {module} import {function}; sys.exit({function}())"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
