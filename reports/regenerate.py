#!/usr/bin/env python3
"""Regenerate the example reports in this directory from the corpus (tools/corpus/):

- per image, the HTML report and the Markdown summary (scanned from the corpus's OCI
  layouts, /tmp/portscan-corpus/oci/);
- for busybox-static, every machine format too: JSON, SARIF, CycloneDX;
- a fleet page from an audit of four corpus images on the loopback registry, with each
  image's own report beside it (fleet-images/);
- screenshots of an image report, its print layout and the fleet page (screenshots/);
- README.md: the Markdown summaries, the screenshots and the report benchmark's block
  (benchmarks/bench_report.py writes it; kept as it is here);
- corpus.json: the identity of the corpus build they were made from (each layout's
  digests and sizes, `corpus_identity`).

    bash tools/corpus/registry.sh start && bash tools/corpus/build_corpus.sh
    python3 reports/regenerate.py            # rewrite reports/
    python3 reports/regenerate.py --check    # regenerate into a temporary directory and
                                             # compare (run-dependent values masked)

tests/test_report_examples.py runs the check, so the examples cannot go stale. A corpus
built on another day has other digests and compressed sizes (its layers carry the build's
timestamps) but the same files: the check reads the old digests and sizes in
corpus.json as the new ones (`renamed`), so only what portscan wrote can differ.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from portscan.report.formats import renderer  # noqa: E402
from portscan.report.view import human_size  # noqa: E402
from portscan.scan import scan_image  # noqa: E402

CORPUS = Path(os.environ.get("CORPUS_OCI", "/tmp/portscan-corpus/oci"))
REGISTRY = os.environ.get("REGISTRY", "127.0.0.1:5000")
IMAGES = {  # example name -> corpus OCI layout
    "nginx": "nginx-latest",
    "redis": "redis-latest",
    "postgres": "postgres-15",
    "python": "python-3.11",
    "sqlite": "sqlite-latest",
    "gojq": "gojq-latest",
    "busybox-static": "busybox-static",
}
MACHINE = {"json": "json", "sarif": "sarif", "cdx.json": "cyclonedx"}  # busybox-static's
FLEET = ("corpus/nginx", "corpus/python", "corpus/gojq", "corpus/busybox")
SCREENSHOTS = ("nginx.png", "nginx-print.png", "fleet.png")
BENCH = re.compile(r"<!-- bench_report: begin -->.*?<!-- bench_report: end -->", re.S)
MASKS = (  # values that differ from run to run
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?"), "TIMESTAMP"),
    (re.compile(r'"duration_seconds": ?[0-9.]+'), '"duration_seconds": 0'),
    (re.compile(r"urn:uuid:[0-9a-f-]+"), "urn:uuid:X"),
    (re.compile(r"TIMESTAMP \([0-9.]+ s\)"), "TIMESTAMP (0 s)"),
)


def _portscan(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "portscan.cli", *args], check=True, cwd=ROOT)


def image_reports(out: Path) -> list[str]:
    """The HTML report and Markdown summary of every image; the machine formats of
    busybox-static. Returns the Markdown summaries in IMAGES order."""
    summaries = []
    for name, layout in IMAGES.items():
        path = CORPUS / layout
        if not path.is_dir():
            raise SystemExit(f"regenerate.py: no corpus layout {path} (see tools/corpus/README.md)")
        print(f"scanning {path}", file=sys.stderr)
        result = scan_image(f"oci:{path}")
        (out / f"{name}.html").write_text(renderer("html")(result), encoding="utf-8")
        summary = renderer("markdown")(result)
        (out / f"{name}.md").write_text(summary, encoding="utf-8")
        summaries.append(f"[{name}.html]({name}.html)\n\n{summary}")
        if name == "busybox-static":
            for suffix, fmt in MACHINE.items():
                (out / f"{name}.{suffix}").write_text(renderer(fmt)(result), encoding="utf-8")
    return summaries


def fleet_page(out: Path) -> None:
    """Two audits of FLEET with a fresh store, the second reusing the first's results and
    comparing with it (its trend and changes): fleet.html and fleet-images/."""
    with tempfile.TemporaryDirectory() as tmp:
        args = ["registry", REGISTRY, "--store", f"{tmp}/store.db", "-q", "--format", "json"]
        args += ["-o", f"{tmp}/fleet.json"]
        for repository in FLEET:
            args += ["--include", repository]
        print(f"auditing {', '.join(FLEET)} on {REGISTRY}, twice", file=sys.stderr)
        _portscan(*args)
        _portscan(*args, "--html", str(out / "fleet.html"))


def screenshots(out: Path) -> None:
    """PNGs of nginx's report (screen and print) and of the fleet page, in Chromium."""
    from playwright.sync_api import sync_playwright

    folder = out / "screenshots"
    folder.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"]
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto((out / "nginx.html").as_uri())
        page.screenshot(path=str(folder / "nginx.png"))
        page.emulate_media(media="print")
        page.set_viewport_size({"width": 794, "height": 1123})
        page.screenshot(path=str(folder / "nginx-print.png"))
        page.emulate_media(media="screen")
        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto((out / "fleet.html").as_uri())
        page.screenshot(path=str(folder / "fleet.png"), full_page=True)
        browser.close()


def readme(out: Path, summaries: list[str], bench: str) -> None:
    parts = [
        "# Example reports",
        "",
        "What portscan produces for real images built from Debian bookworm packages",
        "(`tools/corpus/`). Open an `.html` file in a browser: each is one self-contained",
        "page that makes no network request. The summaries below are the `--format markdown`",
        "output, as a pull-request comment would show them. `busybox-static.json`, `.sarif`",
        "and `.cdx.json` show the machine formats. [fleet.html](fleet.html) is the fleet page",
        f"of an audit of {len(FLEET)} corpus images (`portscan registry --html`), with each",
        "image's own report beside it in `fleet-images/`.",
        "",
        "Everything here is written by `python3 reports/regenerate.py`;",
        "`tests/test_report_examples.py` regenerates it and compares, so it is current.",
        "",
        "## Screenshots",
        "",
        "nginx's report: the answer first, then what stands in the way by capability.",
        "",
        "![nginx report](screenshots/nginx.png)",
        "",
        "The first printed page of the same report (its print stylesheet: nginx prints to",
        "five A4 pages).",
        "",
        "![nginx report, printed](screenshots/nginx-print.png)",
        "",
        "The fleet page.",
        "",
        "![fleet page](screenshots/fleet.png)",
        "",
        "## Large reports",
        "",
        "Rendering (Python: the scan result to the page) a 10,000-component page took 5.1 s",
        "of wall clock and about 5 s of CPU before the render was reworked for issue 19",
        "(evidence lines once per component, call chains once per page, no cycle collection",
        "while rendering), when the page carried no call chains; below, with them. The wall",
        "clock counts waiting for the other processes of a busy machine; the CPU time does not.",
        "",
        bench or "(run `python benchmarks/bench_report.py --readme reports/README.md`)",
    ]
    for summary in summaries:
        parts += ["", "---", "", summary.rstrip("\n")]
    (out / "README.md").write_text("\n".join(parts) + "\n", encoding="utf-8")


def generate(out: Path, shots: bool = True) -> None:
    """Every example into `out` (its README's benchmark block is kept)."""
    old = out / "README.md"
    found = BENCH.search(old.read_text(encoding="utf-8")) if old.exists() else None
    bench = found.group(0) if found else ""
    shutil.rmtree(out / "fleet-images", ignore_errors=True)
    summaries = image_reports(out)
    fleet_page(out)
    readme(out, summaries, bench)
    identity = json.dumps(corpus_identity(), indent=1) + "\n"
    (out / "corpus.json").write_text(identity, encoding="utf-8")
    if shots:
        screenshots(out)


def corpus_identity() -> dict[str, list[str]]:
    """Each corpus layout's build identity, in a fixed order: every digest its index,
    manifests and configs name (index, manifest, config, layer, diff_id) and every size
    (each blob's, and each image's layers summed), as strings."""
    identity = {}
    for layout in sorted(CORPUS.iterdir()):
        values: list[str] = []
        stack = list(reversed(json.loads((layout / "index.json").read_text())["manifests"]))
        while stack:
            descriptor = stack.pop()
            values += [descriptor["digest"], str(descriptor["size"])]
            algorithm, _, hexdigest = descriptor["digest"].partition(":")
            document = json.loads((layout / "blobs" / algorithm / hexdigest).read_bytes())
            if "manifests" in document:  # an index
                stack += reversed(document["manifests"])
                continue
            if "layers" not in document:  # a config
                values += document.get("rootfs", {}).get("diff_ids", [])
                continue
            stack.append(document["config"])
            for layer in document["layers"]:
                values += [layer["digest"], str(layer["size"])]
            values.append(str(sum(layer["size"] for layer in document["layers"])))
        identity[layout.name] = values
    return identity


def renamed(recorded: dict[str, list[str]], current: dict[str, list[str]]) -> dict[str, str] | None:
    """What each recorded value of the corpus's identity is called in `current`: digests
    in full and by their 12-digit short form, sizes of 5 digits or more, and a shorter
    size as a report writes it, "158 B", and a layer's size as the HTML's layers table and
    chart write it, "<td>1.4 KiB</td>" (a bare short number is too common in a report
    to replace; a rebuilt corpus's small layers may differ by a byte: postgres's last
    one holds directories with the build's times). None when the layouts differ in
    shape."""
    if recorded.keys() != current.keys():
        return None
    names: dict[str, str] = {}
    for layout, old_values in recorded.items():
        if len(old_values) != len(current[layout]):
            return None
        for old, new in zip(old_values, current[layout], strict=True):
            if old == new:
                continue
            if ":" in old:
                names[old] = new
                names[old.partition(":")[2][:12]] = new.partition(":")[2][:12]
                continue
            if len(old) >= 5:
                names[old] = new
            else:
                names[f"{old} B"] = f"{new} B"
            before, after = human_size(int(old)), human_size(int(new))
            if before != after:  # a layer's size in the layers table and its chart
                for form in ("<td>{}</td>", "<title>{}</title>", ">{}</text>"):
                    names[form.format(before)] = form.format(after)
    return names


def _renaming(names: dict[str, str]) -> Callable[[str], str]:
    """A text with each of `names`' keys (a whole digest, short digest or size) replaced
    by its value: one pattern, made once for a comparison."""
    if not names:
        return lambda text: text
    alternatives = "|".join(re.escape(old) for old in sorted(names, key=len, reverse=True))
    pattern = re.compile(rf"(?<![0-9a-f])({alternatives})(?![0-9a-f])")
    return lambda text: pattern.sub(lambda m: names[m[1]], text)


def _masked(path: Path, rename: Callable[[str], str] = lambda text: text) -> str:
    text = rename(path.read_text(encoding="utf-8"))
    for pattern, replacement in MASKS:
        text = pattern.sub(replacement, text)
    return text


def compare(expected: Path, actual: Path) -> list[str]:
    """Files that differ (masked, the expected side's corpus identity read as the
    actual's), or exist on one side only; screenshots only need to be there, since
    pixels vary with fonts."""
    recorded = expected / "corpus.json"
    current = json.loads((actual / "corpus.json").read_text())
    names = renamed(json.loads(recorded.read_text()), current) if recorded.is_file() else {}
    problems = [] if names is not None else ["corpus.json: not the recorded corpus's shape"]
    rename = _renaming(names or {})
    for name in SCREENSHOTS:
        if not (expected / "screenshots" / name).is_file():
            problems.append(f"screenshots/{name}: missing")
    ignored = {"regenerate.py", "screenshots", "__pycache__", "corpus.json"}
    stack = [Path()]
    while stack:
        rel = stack.pop()
        cmp = filecmp.dircmp(expected / rel, actual / rel, ignore=list(ignored))
        problems += [f"{rel / n}: only in reports/" for n in cmp.left_only]
        problems += [f"{rel / n}: not in reports/" for n in cmp.right_only]
        for name in cmp.common_files:
            if _masked(expected / rel / name, rename) != _masked(actual / rel / name):
                problems.append(f"{rel / name}: differs")
        stack += [rel / d for d in cmp.common_dirs]
    return sorted(problems)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    parser.add_argument("--no-screenshots", action="store_true")
    args = parser.parse_args()
    if not args.check:
        generate(HERE, shots=not args.no_screenshots)
        return
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(HERE / "README.md", Path(tmp) / "README.md")  # for the benchmark block
        generate(Path(tmp), shots=False)
        problems = compare(HERE, Path(tmp))
    for problem in problems:
        print(problem)
    if problems:
        print("reports/ is stale: run python3 reports/regenerate.py", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
