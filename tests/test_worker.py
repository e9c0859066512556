"""The ELF worker process: same facts as in-process analysis, and survives its death."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from portscan.inspect import worker
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


def test_a_killed_worker_is_replaced(oci_layout: Path, monkeypatch) -> None:
    monkeypatch.setenv("PORTSCAN_WORKERS", "1")
    expected = facts(oci_layout)
    pool = worker._get_pool()
    pool.submit(int).result()
    for process in list(pool._processes.values()):
        os.kill(process.pid, signal.SIGKILL)
        process.join()
    try:
        assert facts(oci_layout) == expected
    finally:
        pool.shutdown(cancel_futures=True)
        worker._pool = None
