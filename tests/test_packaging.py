"""A wheel built from this tree holds every package, the signatures data and the report
assets, and portscan works from an install of it: the same data snapshot as the
checkout, the HTML templates and the JSON schema read from the installed package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from portscan.audit.keys import signatures_digest

REPO = Path(__file__).resolve().parent.parent


def tracked(under: str) -> list[str]:
    """The files git tracks under a directory of the checkout (what a release holds)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", under], cwd=REPO, capture_output=True, check=True
    ).stdout.decode()
    return [name for name in listed.split("\0") if name]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(REPO)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    return next(out.glob("portscan-*.whl"))


def test_every_subpackage_is_listed_in_pyproject() -> None:
    listed = set(
        tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    on_disk = {
        ".".join(init.parent.relative_to(REPO).parts)
        for init in (REPO / "portscan").rglob("__init__.py")
    }
    assert on_disk <= listed, f"add to [tool.setuptools] packages: {sorted(on_disk - listed)}"


def test_wheel_ships_the_data_and_assets(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    signatures = tracked("signatures")
    assert any(name.endswith(".txt") for name in signatures)  # the upstream symbol lists
    missing = [n for n in signatures if f"portscan/_signatures/{n.removeprefix('signatures/')}"
               not in names]  # fmt: skip
    assert not missing, f"add to [tool.setuptools.package-data]: {missing}"
    assets = [n for n in tracked("portscan") if not n.endswith(".py")]
    assert any("templates/" in n for n in assets) and any("schema/" in n for n in assets)
    assert not [n for n in assets if n not in names], "package-data misses report assets"
    modules = [n for n in tracked("portscan") if n.endswith(".py")]
    assert not [n for n in modules if n not in names]
    # the compiled instruction sorter (setup.py), built where a C compiler is
    assert any(n.startswith("portscan/inspect/elf/_x86scan.") and n.endswith(".so") for n in names)


def test_portscan_runs_from_an_install_of_the_wheel(
    wheel: Path, tmp_path: Path, oci_layout: Path
) -> None:
    """A fresh venv (system site-packages only for the heavy dependencies) with the
    wheel installed: `portscan version` reports the checkout's signatures digest from
    the installed copy, and a scan renders HTML and SARIF from the installed assets."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                   check=True, timeout=120)  # fmt: skip
    # --ignore-installed: beside, not instead of, a portscan in the system site-packages
    pip = [str(venv / "bin/python"), "-m", "pip", "install", "-q", "--no-deps", "--no-index",
           "--ignore-installed"]  # fmt: skip
    installed = subprocess.run([*pip, str(wheel)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PORTSCAN_"))}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    work = tmp_path / "work"  # not the checkout: nothing may be imported from it
    work.mkdir()

    def portscan(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(venv / "bin/portscan"), *args], cwd=work, env=env,
                              capture_output=True, text=True, timeout=300)  # fmt: skip

    done = portscan("version", "--format", "json")
    assert done.returncode == 0, done.stderr
    snapshot = json.loads(done.stdout)
    data = Path(snapshot["signatures"]["dir"])
    assert data.is_relative_to(venv), data  # the wheel's copy, not the checkout
    assert snapshot["signatures"]["digest"] == signatures_digest(REPO / "signatures")
    scanned = portscan("image", f"oci:{oci_layout}", "-q", "-o", "html=r.html",
                       "-o", "sarif=r.sarif", "-o", "json=r.json")  # fmt: skip
    assert scanned.returncode == 0, scanned.stderr
    assert "<!DOCTYPE html>" in (work / "r.html").read_text()
    assert json.loads((work / "r.sarif").read_text())["version"] == "2.1.0"
    shown = subprocess.run(
        [str(venv / "bin/python"), "-c", "import portscan; print(portscan.__file__)"],
        cwd=work, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert Path(shown.stdout.strip()).is_relative_to(venv)
