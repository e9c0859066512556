"""reports/ holds what the current code writes: reports/regenerate.py regenerates every
example (the corpus's images, the fleet page of an audit of four of them) into a
temporary directory and compares, with timestamps, durations and UUIDs masked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path("/tmp/portscan-corpus/oci")


def test_the_example_reports_are_current() -> None:
    if not (CORPUS / "nginx-latest").is_dir():
        pytest.fail("no corpus: run tools/corpus/build_corpus.sh (.ci/run does)")
    done = subprocess.run(
        [sys.executable, str(ROOT / "reports" / "regenerate.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]


def test_the_readme_shows_every_example_and_the_timings() -> None:
    readme = (ROOT / "reports" / "README.md").read_text(encoding="utf-8")
    for name in ("nginx", "redis", "postgres", "python", "sqlite", "gojq", "busybox-static"):
        assert f"[{name}.html]({name}.html)" in readme
    for shot in ("nginx.png", "nginx-print.png", "fleet.png"):
        assert f"(screenshots/{shot})" in readme and (ROOT / "reports/screenshots" / shot).is_file()
    assert "| 10000 |" in readme  # benchmarks/bench_report.py's figures
