"""The terminal summary: what a person reads after `portscan image REF`."""

from __future__ import annotations

import shlex

from portscan.codec import summary_counts
from portscan.layers import printable
from portscan.model import ScanResult
from portscan.report import answer
from portscan.report.view import human_size, short_chain, short_digest, shortest_chain
from portscan.waivers import waived_groups


def render(result: ScanResult) -> str:
    """Plain text, stable and greppable; colour belongs to the progress bars only."""
    image = result.image
    config = image.config
    counts = summary_counts(result)
    lines = [
        f"image      {image.reference}",
        f"digest     {image.digest or '-'}",
        f"platform   {image.platform}",
        f"size       {human_size(image.size)} in {len(image.layers)} layers",
        f"entrypoint {_command(config.entrypoint)}  cmd {_command(config.cmd)}",
        f"user       {printable(config.user) or '(root)'}"
        f"  workdir {printable(config.working_dir) or '/'}",
        f"ports      {printable(', '.join(config.exposed_ports)) or '-'}"
        f"  volumes {printable(', '.join(config.volumes)) or '-'}",
        f"files      {counts['files']} files, {counts['directories']} dirs, "
        f"{counts['symlinks']} symlinks (--format json lists them)",
        "",
        "LAYER  DIGEST        SIZE        ENTRIES  CREATED BY",
    ]
    for layer in image.layers:
        digest = short_digest(layer.digest)
        created = layer.created_by.replace("\n", " ")
        created = created if len(created) <= 60 else created[:57] + "..."
        lines.append(
            f"{layer.index:<6} {digest:<13} {human_size(layer.size):>10}  "
            f"{layer.entries:>7}  {created}"
        )
    lines += _inventory(result)
    lines += _verdicts(result)
    lines += _waived(result)
    lines += _base(result)
    for warning in result.warnings:
        lines.append(f"warning: {warning}")
    lines.append(
        f"\nscanned in {result.duration_seconds:.2f} s by portscan {result.portscan_version}"
    )
    # what the image names (paths, config strings) reaches a terminal: no escape sequence
    return "\n".join(printable(line) for line in "\n".join(lines).split("\n")) + "\n"


def _command(argv: list[str]) -> str:
    """A command as a shell would spell it (`nginx -g 'daemon off;'`), or '-'."""
    return printable(shlex.join(argv)) if argv else "-"


def _inventory(result: ScanResult) -> list[str]:
    binaries = result.binaries.values()
    runtimes = sorted({b.runtime.name for b in binaries if b.runtime})
    static = sum(1 for b in binaries if b.linkage.startswith("static"))
    ecosystems: dict[str, int] = {}
    for package in result.packages:
        ecosystems[package.ecosystem] = ecosystems.get(package.ecosystem, 0) + 1
    packages = ", ".join(f"{n} {e}" for e, n in sorted(ecosystems.items())) or "none"
    return [
        "",
        f"ELF files  {len(result.binaries)} ({static} static), scripts {len(result.scripts)}",
        f"packages   {packages}",
        f"runtimes   {', '.join(runtimes) or '-'}",
    ]


def _verdicts(result: ScanResult) -> list[str]:
    if not result.targets:
        return []
    below = result.base.layers if result.base is not None else 0  # --base: judged apart
    judged = [c for c in result.components if c.kind != "platform" and (c.layer or 0) >= below]
    reached = sum(1 for c in judged if c.reachable)
    scope = (  # as score.summarise decides: every component when the command reaches none
        f"judged on {reached} components the entrypoint reaches"
        if reached
        else f"judged on all {len(judged)} components: no entrypoint reaches any"
        if judged
        else "no code to judge"
    )
    lines = ["", f"TARGET   VERDICT  SCORE  ({scope})"]
    for target, summary in result.targets.items():
        lines.append(f"{target.value:<8} {summary.verdict.value:<8} {summary.score:>5}")
    lines += ["", "the answer:"] + [f"  {a.sentence}" for a in answer.answers(result)]
    first = next(iter(result.targets.values()))
    if first.blockers:
        lines.append(f"\ntop blockers for {first.target.value} (portscan explain ID):")
        for finding in first.blockers:
            message = (
                finding.message if len(finding.message) <= 110 else finding.message[:107] + "..."
            )
            lines.append(f"  {finding.rule_id} {finding.verdict.value:<7} {message}")
            chain = shortest_chain([finding])
            if chain:  # how the program reaches it, on one line
                lines.append(f"  {'':<13} via {short_chain(chain, 2)}")
    return lines


def _waived(result: ScanResult) -> list[str]:
    """The findings a waiver accepted, with the reason: shown, never counted."""
    groups = waived_groups(result)
    if not groups:
        return []
    lines = ["", "waived (not counted for verdicts or gates):"]
    for group in groups:
        on = ", ".join(t.value for t in group.targets)
        lines.append(f"  {group.rule_id} {group.path} on {on}: {group.reason}")
    return lines


def _base(result: ScanResult) -> list[str]:
    """--base: what the base image's layers hold, judged apart from the verdicts above."""
    base = result.base
    if base is None or not base.layers:
        return []
    verdicts = ", ".join(f"{t.value} {s.verdict.value} {s.score}" for t, s in base.targets.items())
    return [
        "",
        f"base image {base.reference}: layers 0-{base.layers - 1}, {base.components} "
        f"components judged apart (not in the verdicts above): {verdicts}",
    ]
