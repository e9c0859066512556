"""The command line as a user runs it: a real subprocess, real images, real exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests import imagebuild as ib


def portscan(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portscan", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("portscan: error: "), result.stderr
    for word in words:
        assert word in lines[0]


def test_version() -> None:
    result = portscan("--version")
    assert result.returncode == 0 and "portscan, version" in result.stdout


def test_json_output_lists_the_merged_tree(oci_layout: Path, tmp_path: Path) -> None:
    out = tmp_path / "scan.json"
    result = portscan("image", f"oci:{oci_layout}", "--format", "json", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""  # piped: no progress bars
    doc = json.loads(out.read_text())
    assert doc["schema_version"].startswith("1.")
    assert doc["image"]["config"]["entrypoint"] == ["/usr/local/bin/run.sh"]
    assert doc["image"]["config"]["exposed_ports"] == ["8080/tcp"]
    assert [layer["created_by"] for layer in doc["image"]["layers"]] == [
        "ADD base",
        "COPY static + run.sh",
        "RUN rewrite config",
    ]
    files = {f["path"]: f for f in doc["files"]}
    assert "/tmp/delete-me" not in files and "/etc/app/old.conf" not in files
    assert files["/etc/app/new.conf"]["layer"] == 2
    assert files["/usr/bin/hello"]["layer"] == 2 and files["/usr/bin/hello"]["mode"] == "0755"
    assert files["/bin"] == {
        "path": "/bin", "type": "symlink", "mode": "0777", "size": 0, "layer": 0,
        "link_target": "usr/bin",
    }  # fmt: skip


def test_table_output(docker_archive: Path) -> None:
    result = portscan("image", f"docker-archive:{docker_archive}")
    assert result.returncode == 0, result.stderr
    assert "8080/tcp" in result.stdout and "RUN rewrite config" in result.stdout


def test_table_says_what_the_verdict_was_judged_on() -> None:
    examples = Path(__file__).resolve().parent.parent / "examples"
    # the demo image: its entrypoint, spelled as a shell would, reaches its program
    result = portscan("image", f"oci:{examples / 'hello'}")
    assert result.returncode == 0, result.stderr
    assert "entrypoint /app/start.sh  cmd world" in result.stdout and "['" not in result.stdout
    assert "components the entrypoint reaches)" in result.stdout
    # a directory of data: no code at all
    result = portscan("image", f"dir:{examples / 'hello' / 'blobs'}")
    assert result.returncode == 0, result.stderr
    assert "(no code to judge)" in result.stdout


@pytest.mark.parametrize(
    ("reference", "code", "words"),
    [
        ("UPPER/Case", 2, ["invalid repository name"]),
        ("nginx:bad tag!", 2, ["invalid"]),
        ("docker-archive:/nonexistent/image.tar", 3, ["/nonexistent/image.tar"]),
        ("oci:/nonexistent/layout", 3, []),
        ("dir:/nonexistent/rootfs", 3, []),
        ("registry:127.0.0.1:9/app:1", 5, ["127.0.0.1:9"]),
    ],
)
def test_bad_input_gives_one_line_and_exit_code(
    reference: str, code: int, words: list[str]
) -> None:
    assert_one_line_error(portscan("image", reference), code, *words)


def test_bad_platform_syntax() -> None:
    assert_one_line_error(portscan("image", "dir:/tmp", "--platform", "a/b/c/d"), 2, "os/arch")


def test_an_unknown_wasix_libc_flavour_is_a_usage_error() -> None:
    result = portscan("image", "dir:/nonexistent", "--wasix-libc", "wasm32-wasip1")
    assert_one_line_error(result, 2, "wasm32-wasi-eh", "wasm32-wasi-ehpic")


def test_wrong_platform_lists_available(tmp_path: Path, native_bins: dict[str, bytes]) -> None:
    images = [
        ib.Image([[ib.file("a", "x")]], architecture="amd64"),
        ib.Image([[ib.file("a", "y")]], architecture="arm64", variant="v8"),
    ]
    layout = ib.write_oci_layout(tmp_path / "multi", images, index=True)
    result = portscan("image", f"oci:{layout}", "--platform", "linux/s390x")
    assert_one_line_error(result, 7, "linux/amd64", "linux/arm64")
    assert portscan("image", f"oci:{layout}", "--platform", "linux/arm64").returncode == 0


def test_corrupt_blob_is_an_error_not_a_result(oci_layout: Path, tmp_path: Path) -> None:
    copy = tmp_path / "corrupt"
    shutil.copytree(oci_layout, copy)
    biggest = max((copy / "blobs" / "sha256").iterdir(), key=lambda p: p.stat().st_size)
    data = bytearray(biggest.read_bytes())
    data[len(data) // 2] ^= 0xFF
    biggest.write_bytes(bytes(data))
    # --no-cache: the session's scan cache holds this layer's analysis by its digest
    # already (tests/test_rescan.py shows a cold cache fails the same way)
    result = portscan("image", f"oci:{copy}", "--format", "json", "--no-cache")
    assert result.stdout == ""
    assert_one_line_error(result, 6)


def test_unwritable_output(oci_layout: Path) -> None:
    result = portscan("image", f"oci:{oci_layout}", "-o", "/nonexistent/dir/out.json")
    assert_one_line_error(result, 2, "/nonexistent/dir/out.json")


def _leaving(body: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run `body` in a new interpreter, then `portscan.lifecycle.leave(3)`."""
    imports = "import atexit, sys, threading, time"
    script = f"{imports}\n{body}\nfrom portscan.lifecycle import leave\nleave(3)\n"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # block-buffered
    return subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )


def test_leaving_keeps_the_exit_code_the_output_and_the_exit_handlers(tmp_path: Path) -> None:
    """The exit without teardown (`leave`) still flushes what was printed to a pipe
    (block-buffered), runs the exit handlers (the ELF worker's stop is one), and exits
    with the code."""
    result = _leaving(
        "print('out', end=''); atexit.register(lambda: open('ran', 'w').close())", tmp_path
    )
    assert result.returncode == 3, result.stderr
    assert result.stdout == "out"
    assert (tmp_path / "ran").exists()


def test_leaving_waits_for_a_thread_still_running(tmp_path: Path) -> None:
    """With another thread running, the usual exit is taken: it waits for the thread,
    where ending the process at once would cut its work short."""
    body = (
        "def late():\n    time.sleep(0.5)\n    open('late', 'w').close()\n"
        "threading.Thread(target=late).start()"
    )
    result = _leaving(body, tmp_path)
    assert result.returncode == 3, result.stderr
    assert (tmp_path / "late").exists()


def _without_stdout(*args: str, fd: int = 1) -> subprocess.CompletedProcess[str]:
    """`portscan ARGS` started with its standard output (or `fd`) closed (`>&-`)."""
    return subprocess.run(
        [sys.executable, "-m", "portscan", *args],
        stdout=subprocess.PIPE if fd != 1 else subprocess.DEVNULL,
        stderr=subprocess.PIPE if fd != 2 else subprocess.DEVNULL,
        text=True,
        timeout=120,
        preexec_fn=lambda: os.close(fd),  # the child has no threads yet
    )


def test_a_closed_standard_output_is_a_usage_error_only_where_written(
    oci_layout: Path, tmp_path: Path
) -> None:
    """Started with stdout closed, a command that prints there fails in one line with
    exit 2 (it was an internal error, exit 1); one that writes a file runs."""
    for args in (("version",), ("--version",)):
        assert_one_line_error(_without_stdout(*args), 2, "standard output", "closed")
    out = tmp_path / "out.json"
    result = _without_stdout("image", f"oci:{oci_layout}", "--format", "json", "-q", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text())["files"]


def test_a_closed_standard_error_keeps_the_exit_codes() -> None:
    """Started with stderr closed, an error has nowhere to be said, but its exit code
    is still its own (a bad reference: 2), and a command that succeeds prints: the end
    without teardown (`leave`) flushes only the streams the process has."""
    assert _without_stdout("image", "bad ref!!", fd=2).returncode == 2
    result = _without_stdout("version", fd=2)
    assert result.returncode == 0 and "portscan" in result.stdout
