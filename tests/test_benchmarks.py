"""benchmarks/bench_syft.py's measurement: the peak memory of a whole process tree, read
from /proc without reading every process on the machine."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from benchmarks.bench_syft import _resident, _tree, timed

# a child holding 160 MiB for a second, under a parent holding little
_CHILD = "import time; held = b'x' * (160 << 20); time.sleep(1)"
_PARENT = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {_CHILD!r}], check=True)"


@pytest.mark.skipif(
    not os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children"),
    reason="a kernel without /proc/PID/task/TID/children (timed falls back to psutil)",
)
def test_the_tree_of_a_process_is_it_and_its_descendants() -> None:
    parent = subprocess.Popen([sys.executable, "-c", _PARENT])
    try:
        deadline = time.monotonic() + 30  # a loaded machine starts the child slowly
        tree, held = [parent.pid], 0
        while held < 160 << 20 and parent.poll() is None and time.monotonic() < deadline:
            tree = _tree(parent.pid)
            held = _resident(tree)
            time.sleep(0.01)
        assert tree[0] == parent.pid and len(tree) == 2
        assert held >= 160 << 20
        assert _resident([tree[0]]) < 100 << 20  # the parent's own is small
    finally:
        parent.wait(timeout=30)
    assert _tree(parent.pid) == [parent.pid]  # gone: nothing under it
    assert _resident([parent.pid]) == 0


def test_timed_sees_the_childs_memory() -> None:
    seconds, peak_kib = timed([sys.executable, "-c", _PARENT])
    assert seconds >= 1
    assert peak_kib >= 160 * 1024
