#!/usr/bin/env python3
"""Time the HTML report of a large image in Chromium: load, filter, sort, first dialog.

A real scan (a corpus OCI layout, nginx by default) is grown to N components by copying
its own components under /synthetic/K/ (tests/reportfixtures.synthetic), rendered with
`portscan.report.html`, and opened from file:// in Debian's chromium (playwright,
headless). Each figure is the median of --repeat fresh page loads:

- render: Python, ScanResult to HTML string, the fastest of --repeat (wall clock and CPU
  time: on a busy machine the wall clock also counts waiting); size: the page's bytes;
- load: navigation start to the load event (the script has run, the table is filterable);
- filter: choosing a verdict in the filter until the next frame is painted;
- text: typing a path fragment into the text filter, same;
- sort: clicking the path column, same;
- dialog: clicking the last row until its details dialog is open (its chunk inflated).

    python benchmarks/bench_report.py                         # N = 1000 and 10000
    python benchmarks/bench_report.py --counts 10000 --readme reports/README.md
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import Page, sync_playwright  # noqa: E402

from portscan.report import html  # noqa: E402
from portscan.scan import scan_image  # noqa: E402
from tests.reportfixtures import synthetic  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
MARK_BEGIN = "<!-- bench_report: begin -->"
MARK_END = "<!-- bench_report: end -->"

FRAME = "() => new Promise((done) => requestAnimationFrame(() => setTimeout(done, 0)))"
TIMED_FILTER = """async () => {
  const t = performance.now();
  const select = document.getElementById("f-verdict");
  select.value = "rework";
  select.dispatchEvent(new Event("change"));
  await new Promise((done) => requestAnimationFrame(() => setTimeout(done, 0)));
  const ms = performance.now() - t;
  select.value = "";
  select.dispatchEvent(new Event("change"));
  return ms;
}"""
TIMED_TEXT = """async () => {
  const t = performance.now();
  const input = document.getElementById("f-text");
  input.value = "libssl";
  input.dispatchEvent(new Event("input"));
  await new Promise((done) => requestAnimationFrame(() => setTimeout(done, 0)));
  const ms = performance.now() - t;
  input.value = "";
  input.dispatchEvent(new Event("input"));
  return ms;
}"""
TIMED_SORT = """async () => {
  const t = performance.now();
  document.querySelector("#component-table th button[data-sort=path]").click();
  await new Promise((done) => requestAnimationFrame(() => setTimeout(done, 0)));
  return performance.now() - t;
}"""
TIMED_DIALOG = """async () => {
  const rows = document.querySelectorAll("#component-table tbody tr");
  const t = performance.now();
  rows[rows.length - 1].querySelector("button.open").click();
  const dialog = document.getElementById("details");
  while (!dialog.open) await new Promise((done) => setTimeout(done, 1));
  await new Promise((done) => requestAnimationFrame(() => setTimeout(done, 0)));
  return performance.now() - t;
}"""
LOAD = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  return nav.loadEventEnd - nav.startTime;
}"""


def measure(page: Page, url: str) -> dict[str, float]:
    """One fresh load of `url` and one of each interaction, in milliseconds."""
    page.goto(url, wait_until="load")
    page.evaluate(FRAME)
    return {
        "load": page.evaluate(LOAD),
        "filter": page.evaluate(TIMED_FILTER),
        "text": page.evaluate(TIMED_TEXT),
        "sort": page.evaluate(TIMED_SORT),
        "dialog": page.evaluate(TIMED_DIALOG),
    }


def run(layout: Path, counts: list[int], repeat: int) -> list[dict[str, float | int | str]]:
    result = scan_image(f"oci:{layout}")
    rows: list[dict[str, float | int | str]] = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        for count in counts:
            grown = synthetic(result, count)
            walls, cpus = [], []
            for _ in range(repeat):  # the fastest: the others waited for other processes
                started, cpu = time.perf_counter(), time.process_time()
                text = html.render(grown)
                walls.append((time.perf_counter() - started) * 1000)
                cpus.append((time.process_time() - cpu) * 1000)
            path = Path(tmp) / f"report-{count}.html"
            path.write_text(text, encoding="utf-8")
            runs = []
            for _ in range(repeat):
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.route(
                    "**/*",
                    lambda r: r.continue_() if r.request.url.startswith("file:") else r.abort(),
                )
                runs.append(measure(page, path.as_uri()))
                page.close()
            row: dict[str, float | int | str] = {
                "components": len(grown.components),
                "size": f"{len(text.encode()) / 1e6:.1f} MB",
                "render": min(walls),
                "render CPU": min(cpus),
            }
            row.update({k: statistics.median(r[k] for r in runs) for k in runs[0]})
            rows.append(row)
            print(row, file=sys.stderr)
        browser.close()
    return rows


def table(rows: list[dict[str, float | int | str]], layout: Path, repeat: int) -> str:
    keys = ["components", "size", "render", "render CPU", "load", "filter", "text", "sort"]
    keys.append("dialog")
    lines = [
        f"Measured by `python benchmarks/bench_report.py` ({layout.name} grown to N components, "
        f"median of {repeat} page loads, headless Chromium, milliseconds; render: the fastest "
        f"of {repeat} in Python, wall clock and CPU time):",
        "",
        "| " + " | ".join(keys) + " |",
        "|" + "---:|" * len(keys),
    ]
    for row in rows:
        cells = [row[k] if isinstance(row[k], (int, str)) else f"{row[k]:.0f}" for k in keys]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def write_readme(readme: Path, text: str) -> None:
    """Replace the block between the markers in `readme` (append it when absent)."""
    block = f"{MARK_BEGIN}\n{text}\n{MARK_END}"
    old = readme.read_text(encoding="utf-8") if readme.exists() else ""
    pattern = re.compile(re.escape(MARK_BEGIN) + ".*?" + re.escape(MARK_END), re.S)
    new = (
        pattern.sub(lambda _: block, old) if pattern.search(old) else f"{old.rstrip()}\n\n{block}\n"
    )
    readme.write_text(new, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--layout", type=Path, default=Path("/tmp/portscan-corpus/oci/nginx-latest")
    )
    parser.add_argument("--counts", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--readme", type=Path, help="write the table into this file's bench block")
    args = parser.parse_args()
    text = table(run(args.layout, args.counts, args.repeat), args.layout, args.repeat)
    print(text)
    if args.readme:
        write_readme(args.readme, text)


if __name__ == "__main__":
    main()
