"""Terminal and JSON renderings of a registry audit and of the results store.

`fleet_table` is the summary a person reads after `portscan registry`; `record_line`
is one line of `--format jsonl`; `fleet_json` is the whole FleetResult as JSON.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from typing import Any

from portscan.audit.discover import Skipped
from portscan.audit.fleet import FleetResult, RecurringBlocker, to_dict
from portscan.audit.run import ImageRecord
from portscan.audit.store import GcReport, StoreStats
from portscan.model import Verdict
from portscan.report.view import human_size, short_digest

MAX_LISTED = 10


def record_line(record: ImageRecord) -> str:
    """One JSON line per image: names, digest, status, the fleet summary and, when the
    audit was asked for them, the full scan result (`result`, as `--format json`)."""
    doc: dict[str, Any] = {
        "digest": record.digest,
        "names": record.names,
        "status": record.status,
    }
    if record.error:
        doc["error"] = record.error
    doc.update(record.summary)
    if record.result is not None:
        doc["result"] = record.result
    return json.dumps(doc, separators=(",", ":"), sort_keys=True) + "\n"


def skipped_line(skipped: Skipped) -> str:
    """One JSON line per repository or tag left out, after the images' lines: `names`,
    `status` `skipped` and the `reason`."""
    doc = {"digest": None, "names": [skipped.name], "status": "skipped", "reason": skipped.reason}
    return json.dumps(doc, separators=(",", ":"), sort_keys=True) + "\n"


def skipped_lines(skipped: list[Skipped]) -> list[str]:
    """Every entry, with tags of one repository left out for one reason on one line."""
    groups: dict[tuple[str, str], list[str]] = {}
    for entry in skipped:
        repository, sep, tag = entry.name.rpartition(":")
        if not sep or "/" in tag:  # a repository, or a name without a tag
            repository, tag = entry.name, ""
        groups.setdefault((repository, entry.reason), []).append(tag)
    lines = []
    for (repository, reason), tags in sorted(groups.items()):
        named = [t for t in tags if t]
        if not named:
            lines.append(f"  {repository}: {reason}")
        elif len(named) == 1:
            lines.append(f"  {repository}:{named[0]}: {reason}")
        else:
            lines.append(f"  {repository}: tags {', '.join(sorted(named))}: {reason}")
    return lines


def fleet_json(fleet: FleetResult) -> str:
    return json.dumps(to_dict(fleet), indent=2, sort_keys=True) + "\n"


def blockers_by_severity(blockers: list[RecurringBlocker]) -> list[RecurringBlocker]:
    """Worst verdict first, then the one in most images."""
    return sorted(blockers, key=lambda b: (verdict_rank(b.verdict), -b.count, b.rule_id, b.target))


def verdict_rank(verdict: str) -> int:
    try:
        return Verdict(verdict).rank
    except ValueError:
        return len(Verdict)


def best_verdicts(fleet: FleetResult) -> str:
    """'2 rework, 1 ready': how many images get each verdict on their best target."""
    best = Counter(
        max(image.verdicts.values(), key=verdict_rank) for image in fleet.images if image.verdicts
    )
    return ", ".join(f"{best[str(v)]} {v}" for v in Verdict if best[str(v)]) or "none judged"


def fleet_table(fleet: FleetResult) -> str:
    """Plain text: one row per image with its verdict per target, then what recurs."""
    targets = sorted({t for image in fleet.images for t in image.verdicts})
    header = f"{'IMAGE':<44} {'DIGEST':<13}" + "".join(f" {t.upper():<8}" for t in targets)
    lines = [
        f"audit {fleet.audit_id} of {fleet.registry}: {len(fleet.images)} images, "
        f"at best {best_verdicts(fleet)}",
        "",
        header + " STATUS",
    ]
    for image in sorted(fleet.images, key=lambda i: i.names):
        name = image.names[0] + (f" (+{len(image.names) - 1})" if len(image.names) > 1 else "")
        row = f"{name[:44]:<44} {short_digest(image.digest):<13}"
        row += "".join(f" {image.verdicts.get(t, '-'):<8}" for t in targets)
        lines.append(f"{row} {image.status}")
    for image in fleet.failed:
        lines.append(f"failed: {', '.join(image.names)}: {image.error}")
    if fleet.blockers:
        lines += ["", "RECURRING BLOCKERS (images, rule, target, verdict; worst first)"]
        for blocker in blockers_by_severity(fleet.blockers)[:MAX_LISTED]:
            lines.append(
                f"{blocker.count:>5}  {blocker.rule_id:<7} {blocker.target:<7} "
                f"{blocker.verdict:<8} {blocker.message[:60]}"
            )
    if fleet.waived:
        lines += ["", "WAIVED (images, rule, path, targets: reason; not counted for verdicts)"]
        for waived in fleet.waived[:MAX_LISTED]:
            lines.append(
                f"{waived.count:>5}  {waived.rule_id:<7} {waived.path} "
                f"on {', '.join(waived.targets)}: {waived.reason}"
            )
    based = [image for image in fleet.images if image.base is not None]
    if based:
        apart = sum(1 for image in based if image.base and image.base["layers"])
        reference = based[0].base["reference"] if based[0].base else ""
        lines += [
            "",
            f"base {reference}: its layers judged apart in {apart} of {len(based)} images "
            "(the others do not start with them)",
        ]
    if fleet.shared_layers:
        lines += ["", "SHARED LAYERS (images, digest, size, created by)"]
        for layer in fleet.shared_layers[:MAX_LISTED]:
            created = layer.created_by.replace("\n", " ")[:50]
            lines.append(
                f"{len(layer.images):>5}  {short_digest(layer.digest):<13} "
                f"{human_size(layer.size):>10}  "
                f"{created}"
            )
    if fleet.candidates:
        lines += ["", "BEST CANDIDATES, least effort first (target, verdict, score, effort)"]
        for candidate in fleet.candidates:
            lines.append(
                f"  {candidate.names[0]:<44} {candidate.target:<7} {candidate.verdict:<7} "
                f"{candidate.score:>3}  {candidate.effort}"
            )
    if fleet.previous_audit_id is not None:
        kinds = [c.kind for c in fleet.changes]
        counts = [f"{kinds.count(k)} {k}" for k in ("added", "removed", "updated")]
        counts.append(f"{kinds.count('verdict')} with new verdicts")
        lines += ["", f"since audit {fleet.previous_audit_id}: {', '.join(counts)}"]
        for change in fleet.changes[:MAX_LISTED]:
            lines.append(f"  {change.kind:<8} {change.name}")
    if fleet.skipped:
        lines += ["", f"NOT AUDITED ({len(fleet.skipped)} repositories or tags, and why)"]
        lines += skipped_lines(fleet.skipped)
    run = fleet.run
    if run:
        lines += [
            "",
            f"{len(fleet.images)} images: {run['images_scanned']} scanned, "
            f"{run['images_reused']} from the store, {run['images_failed']} failed; "
            f"{run['layers_analysed']} layers analysed ({run['executor']})",
        ]
    return "\n".join(lines) + "\n"


def stats_text(stats: StoreStats) -> str:
    lines = [
        f"store       {stats.path} ({human_size(stats.file_bytes)})",
        f"layers      {stats.layers} ({human_size(stats.layer_bytes)}), "
        f"{stats.stale_layers} from other analyser versions",
        f"images      {stats.images} ({human_size(stats.image_bytes)}), "
        f"{stats.stale_images} from other versions",
        f"results     {stats.results} ({human_size(stats.result_bytes)}), "
        f"{stats.stale_results} from other portscan code or signatures (portscan image)",
        f"walks       {stats.walks} ({human_size(stats.walk_bytes)}), "
        f"{stats.stale_walks} from other call-graph code",
        f"ELF files   {stats.files} ({human_size(stats.file_content_bytes)}) kept for walks",
        f"audits      {stats.audits} ({stats.unfinished_audits} unfinished)",
    ]
    lines += [f"  {registry:<30} last audit {when}" for registry, when in stats.last_audits.items()]
    return "\n".join(lines) + "\n"


def stats_json(stats: StoreStats) -> str:
    doc = dataclasses.asdict(stats)
    doc["path"] = str(stats.path)
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def gc_text(report: GcReport) -> str:
    return (
        f"removed {report.images} image results, {report.results} scan results, "
        f"{report.layers} layers, "
        f"{report.walks} reachability walks and {report.files} kept ELF files, "
        f"freed {human_size(report.freed_bytes)}\n"
    )
