"""The fleet's terminal table and page: counts per best verdict, blockers worst first."""

from __future__ import annotations

from portscan.audit.fleet import FleetResult, build_fleet
from portscan.report import audit, fleet_html
from tests.test_fleet import AUDIT, fleet_inputs


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
