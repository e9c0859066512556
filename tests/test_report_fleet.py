"""The fleet's terminal table and page: counts per best verdict, blockers worst first."""

from __future__ import annotations

from collections import Counter

import pytest

from portscan.audit.fleet import FleetResult, build_fleet, image_summary, largest_effort
from portscan.report import audit, fleet_html
from tests import reportfixtures as rf
from tests.test_fleet import AUDIT, REWORK, fleet_inputs, row


def _fleet() -> FleetResult:
    rows, summaries, layers = fleet_inputs()
    summaries["sha256:b"]["blockers"].append(
        {"rule_id": "PS618", "target": "wasix", "verdict": "blocked", "message": "mount"}
    )
    return build_fleet(AUDIT, rows, summaries, layers)


def test_the_table_counts_images_per_best_verdict_and_lists_blocked_first() -> None:
    text = audit.fleet_table(_fleet())
    # a and b are rework on every target, c is ready on wasix, d ready: not "4 blocked"
    assert text.splitlines()[0].endswith(": 5 images, at best 2 rework, 2 ready")
    listed = [line.split()[1] for line in text.split("RECURRING BLOCKERS")[1].splitlines()[1:4]]
    assert listed == ["PS618", "PS101", "PS201"]


def test_the_page_groups_blockers_by_rule_and_sizes_layers_for_people() -> None:
    fleet = _fleet()
    rows = fleet_html.blockers_by_rule(fleet, ["wasip1", "wasix"])
    assert [(r.rule_id, r.verdicts, len(r.images)) for r in rows] == [
        ("PS618", {"wasix": "blocked"}, 1),
        ("PS101", {"wasip1": "rework"}, 2),
        ("PS201", {"wasip1": "rework"}, 1),
    ]
    page = fleet_html.render(fleet, {"sha256:d": "fleet-images/d.html"})
    assert '<a class="report" href="fleet-images/d.html">app/d:1</a>' in page
    assert "<td>1000 B</td>" in page and "<td>1000</td>" not in page


def test_candidates_by_effort_and_the_trend_on_the_page() -> None:
    rows, summaries, layers = fleet_inputs()
    before = [row("app/a:1", "sha256:a", REWORK), row("app/b:1", "sha256:b", REWORK)]
    fleet = build_fleet(AUDIT, rows, summaries, layers, previous=(6, before))
    page = fleet_html.render(fleet)
    table = page.split('id="candidates-table"')[1].split("</table>")[0]
    order = [table.index(name) for name in ("app/d:1", "app/c:1", "app/b:1", "app/a:1")]
    assert order == sorted(order)  # least effort first
    assert '<td class="effort">M <small>(2 M, 1 S)</small></td>' in table
    trend = page.split('id="trend"')[1].split("</table>")[0]
    assert "audit 6 → audit 7" in trend
    wasip1 = trend.split('<th scope="row">wasip1</th>')[1].split("</tr>")[0]
    assert "<td>2 → 2</td>" in wasip1  # rework
    assert '<td>0 → 1 <small class="delta">(+1)</small></td>' in wasip1  # ready, shim
    assert "images</th><td colspan" in trend and "2 → 4" in trend
    text = audit.fleet_table(fleet)
    listed = text.split("least effort first")[1].splitlines()[1:5]
    assert [(line.split()[0], line.split()[-1]) for line in listed] == [
        ("app/d:1", "-"),
        ("app/c:1", "S"),
        ("app/b:1", "M"),
        ("app/a:1", "L"),
    ]


def test_a_scans_summary_counts_the_plan_efforts_of_its_scope(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    result = rf.fixture_scans(tmp_path_factory).new
    efforts = image_summary(result)["efforts"]
    reached = [c for c in result.components if c.reachable and c.kind != "platform"]
    assert reached and efforts == dict(
        Counter(c.plan.effort for c in reached if c.plan and c.plan.effort != "-")
    )
    assert largest_effort(efforts) == "M"  # the server's rework (answer: "largest effort M")
    assert largest_effort({}) == "-" and largest_effort(None) == "?"
