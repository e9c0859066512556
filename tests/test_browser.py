"""The HTML report of a real scan in a real browser (Debian's chromium through playwright):
it opens from file:// with no console error and no request leaving the page, sorting and
filtering change the visible rows, markup in names stays text, the graph is drawn."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, Route, sync_playwright

from portscan.audit.fleet import build_fleet
from portscan.model import ScanResult, Target, Verdict
from portscan.report import fleet_html, html
from portscan.scan import scan_image
from tests import reportfixtures as rf
from tests.test_fleet import AUDIT, fleet_inputs

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> rf.Scans:
    return rf.fixture_scans(tmp_path_factory)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield browser
        browser.close()


class Session:
    """A page with every request, console error and JS dialog recorded."""

    def __init__(self, browser: Browser, path: Path) -> None:
        self.url = path.as_uri()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.page.route("**/*", self._route)
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("dialog", self._dialog)
        self.page.goto(self.url)

    def _route(self, route: Route) -> None:
        self.requests.append(route.request.url)
        if route.request.url == self.url:
            route.continue_()
        else:
            route.abort()

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def visible_paths(self) -> list[str]:
        return self.page.eval_on_selector_all(
            "#component-table tbody tr:not([hidden])", "rows => rows.map(r => r.dataset.path)"
        )


@pytest.fixture
def session(browser: Browser, scans: rf.Scans, tmp_path: Path) -> Iterator[Session]:
    path = tmp_path / "report.html"
    path.write_text(html.render(scans.new), encoding="utf-8")
    session = Session(browser, path)
    yield session
    session.page.close()


def test_opens_offline_without_errors(session: Session, tmp_path: Path) -> None:
    page = session.page
    assert page.title().startswith("portscan: oci:")
    assert page.locator("#targets .card").count() == 4
    assert session.requests == [session.url]  # nothing but the file itself
    assert page.locator("#depgraph").is_visible()
    assert page.locator("#depgraph .node").count() >= 3
    assert page.locator("#charts svg.chart").count() == 3
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    assert session.errors == [] and session.dialogs == []


def test_sorting_orders_the_rows(session: Session, scans: rf.Scans) -> None:
    page = session.page
    total = len(session.visible_paths())
    page.click("#component-table th button[data-sort=path]")
    paths = session.visible_paths()
    assert paths == sorted(paths, key=str.lower) and len(paths) == total
    page.click("#component-table th button[data-sort=path]")
    assert session.visible_paths() == sorted(paths, key=str.lower, reverse=True)
    page.click("#component-table th button[data-sort=r-wasip1]")
    ranks = page.eval_on_selector_all(
        "#component-table tbody tr", "rows => rows.map(r => Number(r.dataset.rWasip1))"
    )
    assert ranks == sorted(ranks) and ranks[0] == Verdict.BLOCKED.rank
    first = page.locator("#component-table tbody tr").first.get_attribute("data-path")
    assert first == "/usr/bin/tracer"
    assert session.errors == []


def test_filters_change_the_visible_rows(session: Session, scans: rf.Scans) -> None:
    page = session.page
    page.select_option("#f-target", "wasip1")
    page.select_option("#f-verdict", "blocked")
    assert session.visible_paths() == ["/usr/bin/tracer"]
    assert page.locator("#f-count").text_content().startswith("1 of ")
    page.select_option("#f-target", "wasix")
    page.select_option("#f-verdict", "ready")
    ready = {c.path for c in scans.new.components if c.verdicts[Target.WASIX] is Verdict.READY}
    # the package row too: hello and server, all it owns, are ready on wasix
    assert set(session.visible_paths()) == ready | {"fixture-tools 1.0-1"}
    page.select_option("#f-verdict", "")
    page.select_option("#f-package", "fixture-tools")
    assert sorted(session.visible_paths()) == [
        "/usr/bin/hello",
        "/usr/bin/server",
        "fixture-tools 1.0-1",
    ]
    page.select_option("#f-package", "")
    page.select_option("#f-layer", "2")
    assert session.visible_paths() == ["/usr/local/bin/forker"]
    page.select_option("#f-layer", "")
    page.check("#f-reach")
    reachable = {c.path for c in scans.new.components if c.reachable}
    assert reachable <= set(session.visible_paths())
    page.uncheck("#f-reach")
    page.fill("#f-text", "<script>")
    assert session.visible_paths() == [rf.WEIRD_PATH]
    page.fill("#f-text", "")
    assert len(session.visible_paths()) == len(scans.new.components) + len(scans.new.packages)
    assert session.errors == []


def test_markup_in_names_stays_text(session: Session) -> None:
    page = session.page
    quoted = rf.WEIRD_PATH.replace('"', '\\"')
    row = page.locator(f'#component-table tr[data-path="{quoted}"]')
    assert row.locator("button.open").text_content() == rf.WEIRD_PATH
    row.locator("button.open").click()
    page.wait_for_selector("#details[open]")
    assert page.locator("#details-title").text_content() == rf.WEIRD_PATH
    assert rf.WEIRD_SYMBOL in page.locator("#details-body").text_content()
    assert page.locator("#details-body script").count() == 0
    page.keyboard.press("Escape")
    assert session.dialogs == [] and session.errors == []


def test_the_graph_follows_the_chosen_target(session: Session) -> None:
    page = session.page
    server = page.locator('#depgraph .node[data-node="file:/usr/bin/server"]')
    assert "v-rework" in server.get_attribute("class")
    page.select_option("#graph-target", "wasip2")
    assert "v-ready" in server.get_attribute("class")
    rule = page.locator("#targets a.rule").first
    target = rule.get_attribute("href")
    rule.click()
    assert page.locator(f"{target} h4").first.is_visible()
    assert session.errors == []


def test_every_link_target_exists(session: Session) -> None:
    missing = session.page.evaluate(
        """() => Array.from(document.querySelectorAll("a[href^='#']"))
            .map((a) => a.getAttribute("href").slice(1))
            .filter((id) => id && !document.getElementById(id))"""
    )
    assert missing == []
    assert session.page.locator("a[href^='#c-']").count() > 5
    assert session.requests == [session.url]


def _open_title(session: Session) -> str:
    session.page.wait_for_selector("#details[open]")
    return session.page.locator("#details-title").text_content() or ""


def test_paths_graph_nodes_and_evidence_open_the_component(session: Session) -> None:
    page = session.page
    page.locator("#obstacles a.comp", has_text="server").first.click()
    assert _open_title(session) == "/usr/bin/server"
    assert "#c-" in page.url  # the address of what is open, to share
    page.keyboard.press("Escape")
    page.locator('#depgraph .node[data-node="file:/usr/bin/server"] a').click()
    assert _open_title(session) == "/usr/bin/server"
    page.keyboard.press("Escape")
    page.locator("#plan details[open] a.comp").first.click()
    assert _open_title(session) == "/usr/bin/server"
    page.keyboard.press("Escape")
    # a package's details link what it owns, one click to the next dialog
    page.locator('#component-table tr[data-path="fixture-tools 1.0-1"] button.open').click()
    assert _open_title(session) == "fixture-tools 1.0-1"
    page.locator("#details-body a.comp", has_text="/usr/bin/hello").click()
    assert _open_title(session) == "/usr/bin/hello"
    page.keyboard.press("Escape")
    # an address opens from another page too
    row = page.locator('#component-table tr[data-path="/usr/bin/tracer"]')
    anchor = row.get_attribute("id")
    page.goto(f"{session.url}#{anchor}")
    assert _open_title(session) == "/usr/bin/tracer"
    assert "PS111" in (page.locator("#details-body").text_content() or "")  # ptrace
    assert session.errors == [] and session.dialogs == []


def test_a_call_chain_links_open_the_library(session: Session) -> None:
    """server's evidence shows `via server → socket (libc.so.6)`; libc's step opens libc."""
    page = session.page
    page.locator('#component-table tr[data-path="/usr/bin/server"] button.open').click()
    assert _open_title(session) == "/usr/bin/server"
    chain = page.locator("#details-body .chain", has_text="socket (libc.so.6)").first
    assert chain.text_content() == "viaserver → socket (libc.so.6)"
    chain.locator("a.step", has_text="socket (libc.so.6)").click()
    assert _open_title(session) == "/usr/lib/x86_64-linux-gnu/libc.so.6"
    assert session.errors == [] and session.requests == [session.url]


def test_the_rule_filter_and_the_rule_section_links(session: Session, scans: rf.Scans) -> None:
    page = session.page
    page.select_option("#f-rule", "PS201")
    with_rule = {
        c.path
        for c in scans.new.components
        if any(f.rule_id == "PS201" and f.verdict not in (Verdict.READY, Verdict.NA)
               for f in c.findings)
    }  # fmt: skip
    assert set(session.visible_paths()) == with_rule == {"/usr/bin/server"}
    page.select_option("#f-rule", "")
    page.locator("#rule-PS101 a.show-rule").click()
    assert page.locator("#f-rule").input_value() == "PS101"
    assert session.visible_paths() == ["/usr/local/bin/forker"]
    assert session.errors == []


LARGE = 10_000


@pytest.fixture(scope="module")
def large(scans: rf.Scans, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ScanResult]:
    result = rf.synthetic(scans.new, LARGE)
    path = tmp_path_factory.mktemp("large") / "large.html"
    path.write_text(html.render(result), encoding="utf-8")
    return path, result


def test_a_10000_component_report_filters_sorts_and_opens_lazily(
    browser: Browser, large: tuple[Path, ScanResult]
) -> None:
    path, result = large
    session = Session(browser, path)
    page = session.page
    total = LARGE + len(result.packages)
    assert page.locator("#f-count").text_content() == f"{total} of {total} (the first 300 shown)"
    assert len(session.visible_paths()) == 300  # only what is shown is in the DOM
    page.select_option("#f-target", "wasip1")
    page.select_option("#f-verdict", "blocked")
    blocked = sorted(
        c.path for c in result.components if c.verdicts[Target.WASIP1] is Verdict.BLOCKED
    )
    assert len(blocked) > 300 and page.locator("#f-count").text_content().startswith(
        f"{len(blocked)} of {total}"
    )
    page.click("#f-more")
    shown = session.visible_paths()
    assert len(shown) == min(len(blocked), 1500) and set(shown) <= set(blocked)
    page.click("#component-table th button[data-sort=path]")
    page.click("#component-table th button[data-sort=path]")
    assert session.visible_paths()[:300] == sorted(blocked, key=str.lower, reverse=True)[:300]
    assert page.locator("#component-table").get_attribute("data-inflated") is None
    last = session.visible_paths()[-1]
    page.locator("#component-table tbody tr").last.locator("button.open").click()
    assert _open_title(session) == last
    assert page.locator("#component-table").get_attribute("data-inflated") == "1"  # one chunk
    assert "PS111" in (page.locator("#details-body").text_content() or "")
    assert session.requests == [session.url] and session.errors == []
    page.close()


NGINX = Path("/tmp/portscan-corpus/oci/nginx-latest")
PRINTED_PAGES = 8  # summary, obstacles, plan, the reached components: a handful of pages


def test_nginx_prints_to_a_handful_of_pages(browser: Browser, tmp_path: Path) -> None:
    if not NGINX.exists():
        pytest.fail(f"no corpus at {NGINX}: run tools/corpus/build_corpus.sh (.ci/run does)")
    path = tmp_path / "nginx.html"
    path.write_text(html.render(scan_image(f"oci:{NGINX}")), encoding="utf-8")
    session = Session(browser, path)
    pdf = session.page.pdf(format="A4")
    pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
    assert 2 <= pages <= PRINTED_PAGES, pages
    # on paper: no filters, no graph, no rule texts, the table unboxed and reached rows only
    session.page.emulate_media(media="print")
    for hidden in ("#filters", "#graph", "#rules", "#charts"):
        assert not session.page.locator(hidden).is_visible(), hidden
    wrap = session.page.locator(".table-wrap").evaluate("e => getComputedStyle(e).overflow")
    assert wrap == "visible"
    printed = session.page.eval_on_selector_all(
        "#component-table tbody tr", "rows => rows.filter(r => r.offsetParent).length"
    )
    assert 0 < printed < 50
    assert session.requests == [session.url] and session.errors == []
    session.page.close()


AXE_VERSION = "4"  # the major version npm resolves
AXE_CACHE = Path(os.environ.get("PORTSCAN_TEST_CACHE", "/tmp/portscan-test-cache")) / "axe-core"
AXE_RUN = """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
  .filter((v) => v.impact === "serious" || v.impact === "critical")
  .map((v) => `${v.id} (${v.impact}): ` +
    v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join("; "))"""


@pytest.fixture(scope="module")
def axe_source() -> str:
    """axe-core's browser build, fetched once with npm and kept in AXE_CACHE."""
    script = AXE_CACHE / "node_modules" / "axe-core" / "axe.min.js"
    if not script.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is needed to fetch axe-core: apt-get install npm (.ci/run does)")
        AXE_CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [npm, "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(AXE_CACHE),
             f"axe-core@{AXE_VERSION}"],
            check=True, capture_output=True, timeout=300,
        )  # fmt: skip
    return script.read_text(encoding="utf-8")


def axe_violations(session: Session, source: str) -> list[str]:
    """The serious and critical violations axe-core finds in the page as it is now.
    The script is evaluated through the DevTools protocol: the page's CSP still forbids
    every request and every script of its own but its one."""
    session.page.evaluate(source)
    return session.page.evaluate(AXE_RUN)


def test_axe_core_finds_no_serious_violation(session: Session, axe_source: str) -> None:
    assert axe_violations(session, axe_source) == []
    session.page.click("#component-table th button[data-sort=path]")  # a sorted column
    assert session.page.locator("#component-table th[aria-sort=ascending]").count() == 1
    assert axe_violations(session, axe_source) == []
    session.page.locator('#component-table tr[data-path="/usr/bin/server"] button.open').click()
    session.page.wait_for_selector("#details[open]")
    assert axe_violations(session, axe_source) == []
    assert session.requests == [session.url] and session.errors == []


def test_the_keyboard_reaches_the_table_and_the_details(session: Session) -> None:
    page = session.page
    page.focus("#f-text")
    page.keyboard.press("Tab")  # to the verdict filter
    assert page.evaluate("document.activeElement.id") == "f-verdict"
    page.locator('#component-table tr[data-path="/usr/bin/server"] button.open').focus()
    page.keyboard.press("Enter")
    assert _open_title(session) == "/usr/bin/server"
    page.keyboard.press("Escape")
    assert not page.locator("#details").evaluate("d => d.open")
    page.locator("#obstacles a.comp").first.focus()
    page.keyboard.press("Enter")
    assert _open_title(session).startswith("/")


@pytest.fixture
def fleet_page(scans: rf.Scans, tmp_path: Path) -> Path:
    """A fleet page over test_fleet's images, PS618 blocked in one of them, with the
    fixture scan's report beside it for two of them."""
    rows, summaries, layers = fleet_inputs()
    summaries["sha256:b"]["blockers"].append(
        {"rule_id": "PS618", "target": "wasip1", "verdict": "blocked", "message": "mount"}
    )
    fleet = build_fleet(AUDIT, rows, summaries, layers)
    (tmp_path / "fleet-images").mkdir()
    reports = {}
    for digest, name in (("sha256:a", "app_a_1.html"), ("sha256:d", "app_d_1.html")):
        (tmp_path / "fleet-images" / name).write_text(html.render(scans.new), encoding="utf-8")
        reports[digest] = f"fleet-images/{name}"
    path = tmp_path / "fleet.html"
    path.write_text(fleet_html.render(fleet, reports), encoding="utf-8")
    return path


def _image_names(page: Page) -> list[str]:
    return page.eval_on_selector_all(
        "#images tbody tr:not([hidden])", "rows => rows.map(r => r.dataset.name)"
    )


def test_the_fleet_page_sorts_searches_and_links_each_report(
    browser: Browser, fleet_page: Path, axe_source: str
) -> None:
    session = Session(browser, fleet_page)
    page = session.page
    hrefs = page.eval_on_selector_all("a[href]", "links => links.map(a => a.getAttribute('href'))")
    for href in hrefs:
        if href.startswith("#"):
            assert page.locator(f"[id='{href[1:]}']").count() == 1, href
        else:
            assert (fleet_page.parent / href).is_file(), href
    assert page.locator("#images a.report").count() == 2
    page.click("#images th button[data-sort=r-wasip1]")
    names = _image_names(page)
    assert names[:2] == ["app/a:1, app/a:latest", "app/b:1"]  # rework, the lower score first
    assert names[2:4] == ["app/c:1", "app/d:1"] and names[-1] == "app/e:*"  # no verdict last
    page.click("#images th button[data-sort=r-wasip1]")
    assert _image_names(page) == names[::-1]
    page.click("#images th button[data-sort=size]")
    page.fill("#f-text", "app/c")
    assert _image_names(page) == ["app/c:1"]
    assert page.locator("#f-count").text_content() == "1 of 5"
    page.fill("#f-text", "")
    blockers = page.eval_on_selector_all(
        "#blockers tbody tr", "rows => rows.map(r => r.cells[0].textContent)"
    )
    assert blockers == ["PS618", "PS101", "PS201"]  # blocked first, then by images
    assert page.locator("#chart svg.chart .seg").count() >= 3
    assert "1000 B" in (page.locator("#shared-layers").text_content() or "")
    assert axe_violations(session, axe_source) == []
    assert session.requests == [session.url] and session.errors == []
    page.close()


def test_the_map_opens_components_and_follows_the_target(session: Session, scans: rf.Scans) -> None:
    page = session.page
    cell = page.locator('#treemap .cell[data-path="/usr/bin/server"]')
    assert "v-rework" in (cell.get_attribute("class") or "")
    page.select_option("#map-target", "wasip2")
    assert "v-ready" in (cell.get_attribute("class") or "")
    cell.locator("a").click()
    assert _open_title(session) == "/usr/bin/server"
    cells = page.locator("#treemap .cell").count()
    assert cells == len(scans.new.components)  # the fixture's layers are small: no rest cell
    assert session.errors == [] and session.requests == [session.url]


def test_the_graph_search_highlights_matching_boxes(session: Session) -> None:
    page = session.page
    page.fill("#graph-search", "SERV")
    matched = page.eval_on_selector_all(
        "#depgraph .node.match", "nodes => nodes.map(n => n.dataset.node)"
    )
    assert matched == ["file:/usr/bin/server"]
    assert (
        page.locator("#depgraph .node.dim").count() == page.locator("#depgraph .node").count() - 1
    )
    assert page.locator("#graph-found").text_content() == "1 found"
    page.fill("#graph-search", "")
    assert page.locator("#depgraph .node.match, #depgraph .node.dim").count() == 0
    assert session.errors == []
