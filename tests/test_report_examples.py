"""reports/ holds what the current code writes: reports/regenerate.py regenerates every
example (the corpus's images, the fleet page of an audit of four of them) into a
temporary directory and compares, with timestamps, durations and UUIDs masked."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

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


def _load_regenerate() -> ModuleType:  # reports/ is not a package
    spec = importlib.util.spec_from_file_location("regenerate", ROOT / "reports" / "regenerate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_corpus_built_another_day_reads_as_the_recorded_one(tmp_path: Path) -> None:
    """The check reads the recorded corpus's digests and sizes as the current build's, in
    full and short, and still sees any other change."""
    regenerate = _load_regenerate()
    old = {"nginx-latest": ["sha256:" + "a" * 64, "58393684", "sha256:" + "b" * 64, "491", "1482"]}
    new = {"nginx-latest": ["sha256:" + "c" * 64, "58393835", "sha256:" + "b" * 64, "495", "1540"]}
    expected, actual = tmp_path / "expected", tmp_path / "actual"
    for folder, identity in ((expected, old), (actual, new)):
        folder.mkdir()
        (folder / "screenshots").mkdir()
        for shot in regenerate.SCREENSHOTS:
            (folder / "screenshots" / shot).write_bytes(b"")
        (folder / "corpus.json").write_text(json.dumps(identity))
        full, size = identity["nginx-latest"][:2]
        short = full[7:19]
        (folder / "nginx.md").write_text(f"of nginx (`{short}`), {size} bytes, {full}, 491\n")
        small = identity["nginx-latest"][3]  # a short size, as a report writes one
        (folder / "layers.html").write_text(f"<td>{small} B</td><td>1491 B</td>\n")
        layer = "1.4 KiB" if folder is expected else "1.5 KiB"  # 1482 and 1540 bytes
        (folder / "chart.html").write_text(f"<td>{layer}</td><title>a file · 1.4 KiB</title>\n")
    assert regenerate.compare(expected, actual) == []
    (actual / "chart.html").write_text("<td>1.5 KiB</td><title>a file · 1.5 KiB</title>\n")
    assert regenerate.compare(expected, actual) == ["chart.html: differs"]  # not a layer's
    (actual / "chart.html").write_text("<td>1.5 KiB</td><title>a file · 1.4 KiB</title>\n")
    (actual / "layers.html").write_text("<td>495 B</td><td>1495 B</td>\n")
    assert regenerate.compare(expected, actual) == ["layers.html: differs"]
    (actual / "layers.html").write_text("<td>495 B</td><td>1491 B</td>\n")
    (actual / "nginx.md").write_text((actual / "nginx.md").read_text().replace("bytes", "B"))
    assert regenerate.compare(expected, actual) == ["nginx.md: differs"]
    (actual / "nginx.md").write_text((actual / "nginx.md").read_text().replace("491", "495"))
    assert "nginx.md: differs" in regenerate.compare(expected, actual)  # short sizes stay
    new["nginx-latest"].append("sha256:" + "d" * 64)  # a layer more: not the same corpus
    (actual / "corpus.json").write_text(json.dumps(new))
    assert regenerate.renamed(old, new) is None
    assert "corpus.json: not the recorded corpus's shape" in regenerate.compare(expected, actual)
