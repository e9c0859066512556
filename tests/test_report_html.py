"""The HTML report as a file: self-contained, escaped, every rule link resolves; the
graph and chart SVGs are drawn from the data."""

from __future__ import annotations

import dataclasses
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from portscan import codec as json_report
from portscan.codec import from_dict
from portscan.model import Dependency
from portscan.report import graphsvg, html
from tests import reportfixtures as rf


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> rf.Scans:
    return rf.fixture_scans(tmp_path_factory)


@pytest.fixture(scope="module")
def page(scans: rf.Scans) -> str:
    return html.render(scans.new)


class _Page(HTMLParser):
    """Tags, attributes and text of a page, as a browser's parser sees them."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self._in: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self._in and self._in[-1] == tag:
            self._in.pop()

    def handle_data(self, data: str) -> None:
        if not self._in or self._in[-1] not in ("script", "style"):
            self.text.append(data)


def test_the_page_is_self_contained(page: str) -> None:
    parsed = _Page(page)
    for _, attrs in parsed.tags:
        for name in ("src", "href", "action", "srcset", "data"):
            assert not (attrs.get(name) or "#").lstrip().startswith(("http", "//", "file")), attrs
    assert not re.search(r"@import|url\(", page)
    csp = next(
        a["content"] for t, a in parsed.tags if a.get("http-equiv") == "Content-Security-Policy"
    )
    assert csp and "default-src 'none'" in csp and "'unsafe-inline'" not in csp
    # the hashes allow exactly the page's own style and script
    assert len(re.findall(r"'sha256-[A-Za-z0-9+/=]+'", csp)) == 2


def test_markup_in_file_names_and_symbols_renders_as_text(page: str) -> None:
    parsed = _Page(page)
    scripts = [attrs for tag, attrs in parsed.tags if tag == "script"]
    assert scripts == [
        {"type": "application/json", "id": "portscan-rows"},
        {"type": "application/x-portscan+gzip", "id": "portscan-data-0", "data-encoding": "base64"},
        {},
    ]
    rows_text = re.search(r'id="portscan-rows">(.*?)</script>', page, re.S)
    assert rows_text and "<" not in rows_text.group(1)  # nothing in it can end the element
    assert rf.WEIRD_PATH in [row["path"] for row in json.loads(rows_text.group(1))]
    # an attribute value as a whole: the parser made no tag of it
    assert any(a.get("title") == rf.WEIRD_PATH for tag, a in parsed.tags if tag == "a")
    data = re.search(r'id="portscan-data-0" data-encoding="base64">([\w+/=]+)</script>', page)
    assert data
    rows = html.unpack_data(data.group(1))
    weird = next(row for row in rows if row["path"] == rf.WEIRD_PATH)
    # findings point into the component's lines by number; a line is its text, or
    # [text, chain steps] when it carries a call chain
    shown = [weird["lines"][n] for f in weird["findings"] for n in f["evidence"]]
    lines = [line if isinstance(line, str) else line[0] for line in shown]
    assert any(rf.WEIRD_SYMBOL in line for line in lines)


def test_every_rule_link_has_its_explanation(scans: rf.Scans, page: str) -> None:
    links = set(re.findall(r'href="#rule-(PS\d+)"', page))
    anchors = set(re.findall(r'id="rule-(PS\d+)"', page))
    assert links and links <= anchors
    finding_rules = {f.rule_id for c in scans.new.components for f in c.findings}
    assert finding_rules <= anchors
    # the parts `explain` prints, laid out: no raw Markdown
    assert "<h4>Why it matters on WASI</h4>" in page and "## Why" not in page


def test_the_header_and_layers(scans: rf.Scans, page: str) -> None:
    image = scans.new.image
    text = "".join(_Page(page).text)
    for item in (image.digest, str(image.platform), scans.new.portscan_version, "COPY forker"):
        assert item and item in text
    assert f"in {len(image.layers)} layers" in page


def test_a_saved_result_renders_the_same_page(scans: rf.Scans, tmp_path: Path) -> None:
    loaded = from_dict(json.loads(json_report.render(scans.new)))
    assert html.render(loaded) == html.render(scans.new)


def test_the_graph_shows_what_the_entrypoint_reaches(scans: rf.Scans) -> None:
    svg = graphsvg.render(scans.new, next(iter(scans.new.targets)))
    nodes = re.findall(r'data-node="([^"]+)"', svg)
    assert set(nodes) == {
        "image",
        "file:/usr/bin/server",
        "file:/usr/lib/x86_64-linux-gnu/libc.so.6",
        "file:/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
    }
    assert 'class="node v-rework" data-node="file:/usr/bin/server"' in svg
    hidden = len(scans.new.components) - 3
    assert f"+ {hidden} components not reachable" in svg


def test_graph_labels_are_escaped_and_layers_follow_the_longest_path(scans: rf.Scans) -> None:
    weird = f"file:{rf.WEIRD_PATH}"
    hello, server = "file:/usr/bin/hello", "file:/usr/bin/server"
    edges = [
        Dependency("image", weird, "entrypoint"),
        Dependency(weird, hello, "exec"),
        Dependency(hello, server, "exec"),
        Dependency(weird, server, "exec"),
    ]
    result = dataclasses.replace(scans.old, dependencies=edges, reachable=[weird, hello, server])
    parsed = _Page(str(graphsvg.render(result, next(iter(result.targets)))))
    assert "script" not in {tag for tag, _ in parsed.tags}
    x = {}
    for i, (tag, attrs) in enumerate(parsed.tags):
        if tag == "g" and "data-node" in attrs:
            rect = next(a for t, a in parsed.tags[i + 1 :] if t == "rect")
            x[attrs["data-node"]] = float(rect["x"] or 0)
    assert set(x) == {"image", weird, hello, server}
    assert x["image"] < x[weird] < x[hello] < x[server]  # server: right of hello, its caller
    assert rf.WEIRD_PATH in "".join(parsed.text)


def test_a_cycle_shares_a_column(scans: rf.Scans) -> None:
    hello, server = "file:/usr/bin/hello", "file:/usr/bin/server"
    edges = [
        Dependency("image", hello, "entrypoint"),
        Dependency(hello, server, "exec"),
        Dependency(server, hello, "exec"),
    ]
    result = dataclasses.replace(scans.old, dependencies=edges, reachable=[hello, server])
    svg = str(graphsvg.render(result, next(iter(result.targets))))
    assert svg.count('class="edge edge-exec"') == 2
    parsed = _Page(svg)
    xs = [
        float(next(a for t, a in parsed.tags[i + 1 :] if t == "rect")["x"] or 0)
        for i, (tag, attrs) in enumerate(parsed.tags)
        if tag == "g" and attrs.get("data-node") in (hello, server)
    ]
    assert len(xs) == 2 and xs[0] == xs[1]
