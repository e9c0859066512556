"""The ELF worker process: same facts as in-process analysis, and survives its death."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from portscan.inspect.elf import worker
from portscan.scan import scan_image


def facts(oci_layout: Path) -> dict:
    return scan_image(f"oci:{oci_layout}").binaries


def test_worker_and_inline_agree(oci_layout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTSCAN_WORKERS", "1")
    remote = facts(oci_layout)
    monkeypatch.setenv("PORTSCAN_WORKERS", "0")
    inline = facts(oci_layout)
    assert remote == inline
    assert remote["/usr/bin/hello"].needed == ["libgreet.so.1", "libc.so.6"]


def test_files_in_flight_when_the_worker_dies_are_analysed_here(native_bins) -> None:
    dead = worker._Worker()
    dead.process.kill()
    dead.process.wait()
    futures = [dead.submit(f"/bin/{name}", data, None) for name, data in native_bins.items()]
    results = [future.result(timeout=60) for future in futures]
    assert [r.error for r in results] == [None, None, None]
    assert results[0].soname == "libgreet.so.1"
    assert not dead.alive


def test_the_worker_does_not_import_the_callers_main_module(tmp_path: Path) -> None:
    script = tmp_path / "no_main_guard.py"
    script.write_text(
        "import sys\nfrom portscan.inspect.elf import worker\n"
        "print('ran', flush=True)\n"
        f"f = worker._get_worker().submit('/x', open({sys.executable!r}, 'rb').read(), None)\n"
        "print(f.result(timeout=60).machine)\n"
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ran", "x86_64"]
