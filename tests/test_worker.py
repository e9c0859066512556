"""The ELF worker process: same facts as in-process analysis, and survives its death."""

from __future__ import annotations

import fcntl
import json
import signal
import subprocess
import sys
import threading
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


def test_a_worker_started_early_and_given_nothing_is_killed_at_the_end() -> None:
    """A command starts the worker before it knows a scan is needed (worker.started):
    a stored result or an error ends it unused, without waiting for its imports, and
    leaves no thread that would keep the command from its quick exit (lifecycle.leave)."""
    threads = threading.active_count()
    with worker.started():
        started = worker._worker
        assert started is not None and started.alive
    assert worker._worker is None
    assert started.process.returncode == -signal.SIGKILL
    assert threading.active_count() == threads


def test_a_worker_given_a_file_finishes_it_when_stopped(native_bins) -> None:
    with worker.started():
        busy = worker._worker
        assert busy is not None
        future = busy.submit("/lib/libgreet.so.1", native_bins["libgreet.so.1"], None)
    assert busy.process.returncode == 0  # stdin closed, its answer written, then it ended
    assert future.result(timeout=60).soname == "libgreet.so.1"


def test_the_workers_answers_have_a_pipe_of_a_mebibyte() -> None:
    with worker.started():
        started = worker._worker
        assert started is not None and started.process.stdout is not None
        size = fcntl.fcntl(started.process.stdout.fileno(), fcntl.F_GETPIPE_SZ)
    assert size == worker._PIPE_SIZE


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


def test_the_worker_runs_this_portscan_not_one_in_the_working_directory(
    oci_layout: Path, tmp_path: Path
) -> None:
    """A `portscan` folder where a scan runs (another checkout, or code planted there)
    is not what the ELF worker and the walk helper import (they run `python -P`): the
    scan's facts come from this portscan, and the planted code never runs."""
    planted = tmp_path / "portscan"
    planted.mkdir()
    marker = tmp_path / "planted-code-ran"
    (planted / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    (planted / "lifecycle.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    command = [sys.executable, "-P", "-m", "portscan", "image", f"oci:{oci_layout}"]
    done = subprocess.run(
        [*command, "--format", "json", "--no-cache"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert not marker.exists(), "a child process imported the planted portscan"
    found = json.loads(done.stdout)["binaries"]
    assert found["/usr/bin/hello"]["needed"] == ["libgreet.so.1", "libc.so.6"]


def _peak_rss(pid: int) -> int:
    """The high-water mark of a process's resident memory (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_the_worker_holds_one_copy_of_a_large_file(native_bins, tmp_path: Path) -> None:
    """A file goes from the pipe to disk and lief reads it from there: the worker's peak
    grows by about the file's size (lief's copy), not twice it (before: the file as
    bytes beside lief's copy)."""
    content = tmp_path / "content"
    content.mkdir()
    live = worker._Worker()
    try:
        live.submit("/bin/hello", native_bins["hello"], None).result(timeout=60)
        before = _peak_rss(live.process.pid)
        size = 48 << 20
        large = native_bins["hello"] + bytes(size)  # trailing bytes: read by lief, scanned
        binary = live.submit("/usr/lib/libbig.so", large, str(content)).result(timeout=120)
        grown = _peak_rss(live.process.pid) - before
    finally:
        live.stop()
    assert binary.error is None and binary.needed == ["libgreet.so.1", "libc.so.6"]
    assert grown < size * 1.4, f"peak grew by {grown >> 20} MiB for a {size >> 20} MiB file"
    assert [p.name for p in content.iterdir()] == [binary.sha256]
    assert (content / binary.sha256).read_bytes() == large


def test_in_process_analysis_adds_one_copy_of_a_large_file(native_bins, tmp_path: Path) -> None:
    """Without a worker (PORTSCAN_WORKERS=0, the audit's local workers) the file handed
    over is not copied to bytes and lief reads it from disk: the peak grows by about the
    file's size (lief's copy), with or without a content directory."""
    program = tmp_path / "hello"
    program.write_bytes(native_bins["hello"])
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from portscan.inspect.elf import worker\n"
        "from tests.test_worker import _peak_rss\n"
        "import os\n"
        "head = Path(sys.argv[1]).read_bytes()\n"
        "worker._analyse_here('/bin/hello', head, None)\n"
        "size = 48 << 20\n"
        "data = bytearray(len(head) + size)\n"  # no temporary copy in the peak before
        "data[: len(head)] = head\n"
        "before = _peak_rss(os.getpid())\n"
        "content = sys.argv[2] if sys.argv[2] != '-' else None\n"
        "binary = worker._analyse_here('/usr/lib/libbig.so', data, content)\n"
        "assert binary.error is None, binary.error\n"
        "print((_peak_rss(os.getpid()) - before) / size)\n"
    )
    for content in ("-", str(tmp_path)):
        done = subprocess.run(
            [sys.executable, "-c", script, str(program), content],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=Path(__file__).resolve().parent.parent,
        )
        assert done.returncode == 0, done.stderr
        assert float(done.stdout) < 1.4, f"grew by {done.stdout.strip()} times the file's size"


def _large(native_bins) -> bytes:
    """An ELF program over layers.STREAM_FILE: the program, then zeros lief reads too."""
    from portscan.layers import STREAM_FILE

    return native_bins["hello"] + bytes(STREAM_FILE)


def test_a_large_file_in_a_layer_streams_to_disk_with_the_same_facts(
    native_bins, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file over STREAM_FILE that only the ELF analyser wants goes to disk as its
    layer streams by (ElfAnalyser.analyse_stream): the facts are those of the same
    bytes analysed whole, with and without the worker, and no spooled file is left."""
    from tests import imagebuild as ib

    large = _large(native_bins)
    image = ib.Image(
        [
            [
                ib.file("usr/bin/big", large, 0o755),
                ib.file("usr/bin/hello", native_bins["hello"], 0o755),
            ]
        ]
    )
    layout = ib.write_oci_layout(tmp_path / "layout", [image])
    monkeypatch.setenv("TMPDIR", str(tmp_path / "scratch"))
    (tmp_path / "scratch").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # TMPDIR is read again
    whole = worker._analyse_here("/usr/bin/big", large)
    streamed: list[str] = []
    real = worker.ElfAnalyser.analyse_stream

    def spy(self, path, chunks):  # the real analysis, and which files took this path
        streamed.append(path)
        return real(self, path, chunks)

    monkeypatch.setattr(worker.ElfAnalyser, "analyse_stream", spy)
    for workers in ("1", "0"):
        monkeypatch.setenv("PORTSCAN_WORKERS", workers)
        big = scan_image(f"oci:{layout}").binaries["/usr/bin/big"]
        assert big.error is None and big.needed == ["libgreet.so.1", "libc.so.6"]
        assert big == whole, workers
    assert streamed == ["/usr/bin/big", "/usr/bin/big"]  # hello is small: read whole
    assert not [p for p in (tmp_path / "scratch").iterdir() if p.suffix == ".tmp"]


def test_a_spooled_file_in_flight_when_the_worker_dies_is_analysed_here(
    native_bins, tmp_path: Path
) -> None:
    large = _large(native_bins)
    file, sha256 = worker._spool([large[: 1 << 20], large[1 << 20 :]], str(tmp_path))
    dead = worker._Worker()
    dead.process.kill()
    dead.process.wait()
    binary = dead.submit("/usr/bin/big", b"", None, (file, 0, len(large)), sha256).result(
        timeout=60
    )
    assert binary.error is None and binary.sha256 == worker._analyse_here("/x", large).sha256
    assert binary.needed == ["libgreet.so.1", "libc.so.6"]
    assert not Path(file).exists()  # a file outside the content directory is removed
