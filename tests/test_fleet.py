"""The fleet view, from hand-made store rows."""

from __future__ import annotations

from typing import Any

from portscan.audit.fleet import build_fleet, candidates, changes, to_dict
from portscan.audit.store import Audit, AuditImage, ImageLayer

AUDIT = Audit(7, "reg", {"tags": "all"}, "2026-01-01T00:00:00+00:00", None, None, None)


def row(
    name: str, digest: str | None, verdicts: dict[str, str], status: str = "scanned"
) -> AuditImage:
    repository, _, tag = name.rpartition(":")
    return AuditImage(repository, tag, digest, "key" if digest else None, status, verdicts)


def summary(
    verdicts: dict[str, str],
    scores: dict[str, int],
    blockers: list[str],
    efforts: dict[str, int] | None = None,
) -> dict[str, Any]:
    return {
        "reference": "r",
        **({} if efforts is None else {"efforts": efforts}),
        "targets": {t: {"verdict": v, "score": scores[t]} for t, v in verdicts.items()},
        "blockers": [
            {"rule_id": rule, "target": "wasip1", "verdict": "rework", "message": f"{rule} in x"}
            for rule in blockers
        ],
    }


READY = {"wasip1": "ready", "wasix": "ready"}
SHIM = {"wasip1": "shim", "wasix": "ready"}
REWORK = {"wasip1": "rework", "wasix": "rework"}


def fleet_inputs() -> tuple[list[AuditImage], dict[str, Any], dict[str, list[ImageLayer]]]:
    rows = [
        row("app/a:1", "sha256:a", REWORK),
        row("app/a:latest", "sha256:a", REWORK),
        row("app/b:1", "sha256:b", REWORK),
        row("app/c:1", "sha256:c", SHIM),
        row("app/d:1", "sha256:d", READY),
        row("app/e:*", None, {}, "failed"),
    ]
    summaries = {
        "sha256:a": summary(REWORK, {"wasip1": 30, "wasix": 40}, ["PS101", "PS201"], {"L": 1}),
        "sha256:b": summary(REWORK, {"wasip1": 40, "wasix": 40}, ["PS101"], {"M": 2, "S": 1}),
        "sha256:c": summary(SHIM, {"wasip1": 80, "wasix": 95}, [], {"S": 1}),
        "sha256:d": summary(READY, {"wasip1": 100, "wasix": 100}, [], {}),
    }
    base, mid = ImageLayer("sha256:base", 1000, "FROM debian"), ImageLayer("sha256:mid", 10, "RUN")
    layers = {
        "sha256:a": [base, mid, ImageLayer("sha256:a1", 5, "COPY a")],
        "sha256:b": [base, mid],
        "sha256:c": [base],
        "sha256:d": [ImageLayer("sha256:d1", 7, "COPY d")],
    }
    return rows, summaries, layers


def test_images_blockers_shared_layers_and_candidates() -> None:
    rows, summaries, layers = fleet_inputs()
    fleet = build_fleet(AUDIT, rows, summaries, layers)
    assert [image.names for image in fleet.images] == [
        ["app/a:1", "app/a:latest"],
        ["app/b:1"],
        ["app/c:1"],
        ["app/d:1"],
        ["app/e:*"],
    ]
    assert [image.digest for image in fleet.failed] == [None]
    blockers = [(b.rule_id, b.target, b.count) for b in fleet.blockers]
    assert blockers == [("PS101", "wasip1", 2), ("PS201", "wasip1", 1)]
    assert fleet.blockers[0].message  # the rule's title from the catalogue
    assert [(s.digest, len(s.images)) for s in fleet.shared_layers] == [
        ("sha256:base", 3),
        ("sha256:mid", 2),
    ]
    # least effort first: nothing to do, then S, M, L
    assert [(c.names[0], c.target, c.verdict, c.score, c.effort) for c in fleet.candidates] == [
        ("app/d:1", "wasip1", "ready", 100, "-"),  # a tie between targets goes to the first
        ("app/c:1", "wasix", "ready", 95, "S"),
        ("app/b:1", "wasip1", "rework", 40, "M"),
        ("app/a:1", "wasix", "rework", 40, "L"),
    ]
    doc = to_dict(fleet)
    assert doc["schema_version"] == "2.2" and doc["blockers"][0]["count"] == 2
    assert doc["candidates"][2]["efforts"] == {"M": 2, "S": 1}
    assert doc["previous_audit_id"] is None and doc["changes"] == []
    assert doc["trend"] == [
        {
            "audit_id": 7,
            "images": 4,
            "failed": 1,
            "verdicts": {
                "wasip1": {"rework": 2, "shim": 1, "ready": 1},
                "wasix": {"rework": 2, "ready": 2},
            },
        }
    ]


def test_candidates_leave_out_blocked_and_rank_unknown_effort_last() -> None:
    rows, summaries, layers = fleet_inputs()
    blocked = {"wasip1": "blocked", "wasix": "blocked"}
    rows.append(row("app/x:1", "sha256:x", blocked))
    summaries["sha256:x"] = summary(blocked, {"wasip1": 0, "wasix": 0}, ["PS111"], {})
    summaries["sha256:a"].pop("efforts")  # stored before efforts were
    ranked = candidates(build_fleet(AUDIT, rows, summaries, layers).images)
    assert [(c.names[0], c.effort) for c in ranked] == [
        ("app/d:1", "-"),
        ("app/c:1", "S"),
        ("app/b:1", "M"),
        ("app/a:1", "?"),
    ]


def test_changes_since_the_previous_audit() -> None:
    before = [
        row("app/a:1", "sha256:a", REWORK),
        row("app/b:1", "sha256:b", REWORK),
        row("app/c:1", "sha256:c", SHIM),
        row("app/gone:1", "sha256:g", READY),
    ]
    after = [
        row("app/a:1", "sha256:a", REWORK),  # unchanged
        row("app/b:1", "sha256:b2", SHIM),  # a new image under the tag
        row("app/c:1", "sha256:c", READY),  # same image, new verdicts
        row("app/new:1", "sha256:n", READY),
    ]
    found = {(c.name, c.kind) for c in changes(before, after)}
    assert found == {
        ("app/b:1", "updated"),
        ("app/c:1", "verdict"),
        ("app/gone:1", "removed"),
        ("app/new:1", "added"),
    }
    fleet = build_fleet(AUDIT, after, {}, {}, previous=(6, before))
    assert fleet.previous_audit_id == 6 and len(fleet.changes) == 4
    updated = next(c for c in fleet.changes if c.kind == "updated")
    assert (updated.digest_before, updated.digest_after) == ("sha256:b", "sha256:b2")
    assert updated.verdicts_after == SHIM
    assert [(p.audit_id, p.images, p.verdicts["wasip1"]) for p in fleet.trend] == [
        (6, 4, {"rework": 2, "shim": 1, "ready": 1}),
        (7, 4, {"rework": 1, "shim": 1, "ready": 2}),
    ]
