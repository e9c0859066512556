"""Verdicts, scores and a migration plan, per component and for the image, per target.

- A component's verdict for a target is the worst of its own findings and of the
  verdicts that flow into it: the application libraries it loads and, for a script,
  its interpreter (DESIGN.md). The platform is `n/a`: it is replaced, not ported.
  A component with nothing judged is `unknown`, never `ready`.
- The image's verdict is the worst among the components its entrypoint reaches (all
  components when it has no entrypoint) and the image config's findings.
- A score (0-100) summarises the mix: the mean of the components' points, capped by
  the image's verdict so it never hides one (a rework image scores at most 50).
- The plan says, per component, which road to take (recompile for wasip1, move to
  wasip2 for sockets, WASIX for fork and threads, or keep it in a container) and how
  big the job looks, with the rules behind it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from portscan.graph.digraph import DiGraph, descendants
from portscan.knowledge import tables as sig
from portscan.knowledge.ruleids import APPLICATION_CODE
from portscan.knowledge.rules import get_rule, runtime_rules, superseding_ids
from portscan.model import IMAGE, Component, Finding, MigrationStep, Target, TargetSummary, Verdict

POINTS = {
    Verdict.READY: 100,
    Verdict.NA: 100,
    Verdict.SHIM: 80,
    Verdict.UNKNOWN: 60,
    Verdict.REWORK: 30,
    Verdict.BLOCKED: 0,
}
CAP = {
    Verdict.READY: 100,
    Verdict.NA: 100,
    Verdict.UNKNOWN: 90,
    Verdict.SHIM: 85,
    Verdict.REWORK: 50,
    Verdict.BLOCKED: 20,
}
_FLOW_EDGES = {"needed", "interpreter", "extension"}
_RUN_EDGES = {"entrypoint", "shell", "exec", "application"}
_TOP_BLOCKERS = 5


def deciding(component: Component, target: Target) -> list[Finding]:
    """The component's findings that decide its own verdict on `target`: those of a rule
    that supersedes the others there (a port of the program, PS430), else all of them."""
    found = [f for f in component.findings if f.target is target]
    superseding = superseding_ids()
    return [f for f in found if f.rule_id in superseding] or found


def ported(component: Component, target: Target) -> bool:
    """Whether a superseding finding (a port of the program) decides `target`: the port
    then replaces the binary and what it loads."""
    return target in port_targets(component)


def port_targets(component: Component) -> frozenset[Target]:
    """The targets on which a superseding finding decides the component (`ported`, for
    all targets at once)."""
    superseding = superseding_ids()
    return frozenset(f.target for f in component.findings if f.rule_id in superseding)


def _ports(components: Sequence[Component]) -> dict[str, frozenset[Target]]:
    """`port_targets` of each component, by id."""
    return {c.id: port_targets(c) for c in components}


def _replaced(
    components: Sequence[Component],
    graph: DiGraph,
    target: Target,
    ports: dict[str, frozenset[Target]],
) -> set[str]:
    """Reachable components that the image reaches on `target` only through the libraries
    of ported programs (`ports`): the port brings its own, so they are not ported
    themselves."""
    ported_ids = {c.id for c in components if target in ports[c.id]}
    if not ported_ids or IMAGE not in graph:
        return set()
    cut = frozenset(
        (a, b) for a, b, kind in graph.edges(data="kind") if a in ported_ids and kind == "needed"
    )
    still = descendants(graph, IMAGE, hidden=cut)
    return {c.id for c in components if c.reachable and c.id not in still}


def flow_verdicts(components: Sequence[Component], graph: DiGraph) -> None:
    """Set `verdicts` (and `inherited`) from own findings and flowing dependencies."""

    by_node = {c.id: c for c in components}
    ports = _ports(components)
    own: dict[str, dict[Target, Verdict]] = {}
    for component in components:
        if component.kind == "platform":
            own[component.id] = dict.fromkeys(Target, Verdict.NA)
            continue
        own[component.id] = {
            target: Verdict.worst(f.verdict for f in deciding(component, target))
            for target in Target
        }
    flow_graph = DiGraph(
        (a, b) for a, b, kind in graph.edges(data="kind") if kind in _FLOW_EDGES and b in by_node
    )
    # A program judged on what it reaches has judged its libraries' reached functions
    # itself: what flows into it is what its interpreter and extensions bring.
    reach_flow = DiGraph(
        (a, b) for a, b in flow_graph.edges if graph.edges[a, b]["kind"] != "needed"
    )
    for component in components:
        if component.kind == "platform":
            component.verdicts = own[component.id]
            continue
        flows = (
            reach_flow
            if component.judged_on == "reach" and component.kind != "library"
            else flow_graph
        )
        below = descendants(flows, component.id) if component.id in flows else set()
        verdicts: dict[Target, Verdict] = {}
        for target in Target:
            mine = own[component.id][target]
            below_here = () if target in ports[component.id] else below  # the port brings its own
            inherited = {n: own[n][target] for n in below_here if by_node[n].kind != "platform"}
            worst = Verdict.worst([mine, *inherited.values()])
            verdicts[target] = worst
            worse = sorted(n for n, v in inherited.items() if v is worst and v.rank < mine.rank)
            if worse:
                component.inherited[target] = worse
        component.verdicts = verdicts
        component.scores = {t: POINTS[v] for t, v in verdicts.items()}


def summarise(
    components: Sequence[Component],
    image_findings: Sequence[Finding],
    graph: DiGraph | None = None,
) -> dict[Target, TargetSummary]:
    """The image's verdict, score, verdict counts and top blockers per target. With the
    `graph`, libraries that only ported programs load (the port brings its own) are left
    out on the port's target."""
    judged = [c for c in components if c.kind != "platform"]
    reached = [c for c in judged if c.reachable] or judged
    run = _run(graph)  # the programs the image runs: their reasons lead
    ports = _ports(components) if graph is not None else {}
    summaries = {}
    for target in Target:
        replaced = _replaced(components, graph, target, ports) if graph is not None else set()
        scope = [c for c in reached if c.id not in replaced]
        verdicts = [c.verdicts[target] for c in scope]
        config = [f.verdict for f in image_findings if f.target is target]
        if verdicts:
            verdict = Verdict.worst([*verdicts, *config])
        else:  # no code to judge: not applicable, unless the config itself needs work
            verdict = Verdict.worst(v for v in config if v.rank < Verdict.READY.rank)
            verdict = verdict if any(v.rank < Verdict.READY.rank for v in config) else Verdict.NA
        mean = sum(POINTS[v] for v in verdicts) / len(verdicts) if verdicts else POINTS[verdict]
        score = min(round(mean), CAP[verdict])
        summaries[target] = TargetSummary(
            target=target,
            verdict=verdict,
            score=score,
            counts=dict(Counter(verdicts)),
            blockers=_blockers(scope, image_findings, target, run),
        )
    return summaries


def _run(graph: DiGraph | None) -> set[str]:
    """The components the image runs: what its entrypoint, the scripts it execs and the
    runtimes' applications start, not the libraries they load."""
    if graph is None or IMAGE not in graph:
        return set()
    started = DiGraph((a, b) for a, b, kind in graph.edges(data="kind") if kind in _RUN_EDGES)
    return descendants(started, IMAGE) if IMAGE in started else set()


def _blockers(
    scope: Sequence[Component],
    image_findings: Sequence[Finding],
    target: Target,
    run: set[str] = frozenset(),  # type: ignore[assignment]
) -> list[Finding]:
    """The rework/blocked findings that hold the image back: worst first, then those of
    the programs the image runs (`run`: its own reasons before its libraries'), then the
    design before the details (a long-running pattern such as a process per connection,
    then a capability, then a single missing function), then by how many components
    they hold back."""
    by_rule: dict[str, list[Finding]] = {}
    ran: set[str] = set()
    for component in scope:
        for finding in deciding(component, target):
            if finding.verdict in (Verdict.BLOCKED, Verdict.REWORK):
                by_rule.setdefault(finding.rule_id, []).append(finding)
                if component.id in run:
                    ran.add(finding.rule_id)
    for finding in image_findings:
        if finding.target is target and finding.verdict in (Verdict.BLOCKED, Verdict.REWORK):
            by_rule.setdefault(finding.rule_id, []).append(finding)
    ranked = sorted(
        by_rule.values(),
        key=lambda group: (
            group[0].verdict.rank,
            group[0].rule_id not in ran,
            design_rank([group[0].rule_id]),
            -len(group),
            group[0].rule_id,
        ),
    )
    return [_merge(group) for group in ranked[:_TOP_BLOCKERS]]


def design_rank(rule_ids: Iterable[str]) -> int:
    """How much of the design the rules say, the most telling first: 0 for a
    long-running pattern (a combination of evidence, signatures/patterns.json), 1 for a
    capability, 2 for any other rule (a single missing function) or none."""
    return min((_kind_rank(r) for r in rule_ids if r), default=2)


def _kind_rank(rule_id: str) -> int:
    rule = get_rule(rule_id)
    if rule.evidence == ("pattern",):
        return 0
    return 1 if rule.capability else 2


def _merge(group: list[Finding]) -> Finding:
    """One finding standing for a rule across components, with all their evidence."""
    first = group[0]
    if len(group) == 1:
        return first
    evidence = [e for f in group for e in f.evidence]
    message = f"{first.message} (and {len(group) - 1} more component(s))"
    return Finding(first.rule_id, first.target, first.verdict, first.capability, message, evidence)


def plan(component: Component) -> MigrationStep:
    """The suggested road for one component and the rules that decided it."""
    v = component.verdicts
    road = _road(v, {t: deciding(component, t) for t in Target})
    decided_by = road.target or Target.WASIP1
    rule_ids = sorted(
        {
            f.rule_id
            for f in deciding(component, decided_by)
            if f.verdict not in (Verdict.READY, Verdict.NA)
        }
    )
    road.rule_ids = rule_ids
    return road


def _road(
    v: Mapping[Target, Verdict], decided: Mapping[Target, Sequence[Finding]]
) -> MigrationStep:
    """The first road of signatures/targets.json's ladder whose condition the verdicts
    (and the rules deciding them) meet; the plan's rule ids are filled in by `plan`."""
    ladder, _ = sig.roads()
    rules_of = {t: {f.rule_id for f in found} for t, found in decided.items()}
    road, meeting = next((r, m) for r in ladder if (m := r.meeting(v, rules_of)))
    target = meeting[0] if road.target == "first" else road.target
    target = Target(target) if target else None
    decides = _reasons(decided[target], v[target]) if target else []
    effort = road.effort
    if road.large_from is not None and len(decides) >= road.large_from:
        effort = "L"
    summary = road.summary.format(
        count=len(decides),
        target=target.value if target else "",
        decides=", ".join(decides) or "what it loads",
    )
    return MigrationStep(road.id, target, effort, summary, [])


def _reasons(decided: Sequence[Finding], verdict: Verdict) -> list[str]:
    """What holds a component at `verdict`: of its deciding findings at that verdict, the
    capabilities, else what a superseding finding names (its port), else the rules'
    titles (empty: the verdict flows in from what it loads)."""
    named = []
    for f in decided:
        if f.verdict is not verdict:
            continue
        rule = get_rule(f.rule_id)
        detail = f.evidence[0].detail if f.evidence else ""
        named.append(f.capability or (rule.supersedes and detail) or rule.title)
    return list(dict.fromkeys(named))


def finish_components(components: Sequence[Component], graph: DiGraph) -> None:
    """Flow verdicts through the graph, plan each component, and say in the plans of
    applications and runtimes what decided them."""
    flow_verdicts(components, graph)
    for component in components:
        component.plan = plan(component)
    explain_plans(components, graph)


def verdicts_by_target(
    findings: Iterable[Finding], targets: Sequence[Target] = tuple(Target)
) -> dict[Target, Verdict]:
    """The worst verdict per target (DESIGN: a component's verdict is its worst finding);
    `unknown` for a target without findings."""
    findings = list(findings)
    return {t: Verdict.worst(f.verdict for f in findings if f.target is t) for t in targets}


# --------------------------------------------------------------------------- plan explanations


def _layer_text(findings: Sequence[Finding], subject: str, runtime: bool = False) -> str:
    names = [
        (e.detail if runtime else e.symbol) or e.file for f in findings for e in f.evidence[:1]
    ]
    rules_ = sorted({f.rule_id for f in findings})
    where = f" ({', '.join(dict.fromkeys(names[:2]))}; {', '.join(rules_)})" if names else ""
    return subject + where


def _runtime_findings(
    component: Component, graph: DiGraph, by_id: dict[str, Component], target: Target
) -> list[Finding]:
    """The runtime rule's findings at the component's verdict: its own (a Go binary) or
    those of the interpreter it needs (an application) when that one is as bad."""
    runtime_ids = {rule.id for rule in runtime_rules().values()}
    verdict = component.verdicts.get(target)
    found = [
        f
        for f in component.findings
        if f.target is target and f.verdict is verdict and f.rule_id in runtime_ids
    ]
    edges = graph.out_edges(component.id, data="kind") if component.id in graph else ()
    for _, node, kind in edges:
        runtime = by_id.get(node)
        if (
            kind == "interpreter"
            and runtime is not None
            and runtime.verdicts.get(target) is verdict
        ):
            found += [
                f for f in runtime.findings if f.target is target and f.rule_id in runtime_ids
            ]
    return found


def _decided_by(
    component: Component, graph: DiGraph, by_id: dict[str, Component], target: Target
) -> str:
    """Which layers hold the component at its verdict on `target` ("" when none says)."""
    verdict = component.verdicts.get(target)
    skip = {rule.id for rule in runtime_rules().values()} | {APPLICATION_CODE}
    code = [
        f for f in deciding(component, target) if f.verdict is verdict and f.rule_id not in skip
    ]
    layers = []
    if code:
        own = "the application code" if component.kind == "application" else "its own calls"
        if ported(component, target):
            own = "its port"
        layers.append(_layer_text(code, own))
    runtime = _runtime_findings(component, graph, by_id, target)
    if runtime:
        layers.append(_layer_text(runtime, "the runtime", runtime=True))
    return f"{verdict} on {target} because of " + " and ".join(layers) if layers else ""


def explain_plans(components: Sequence[Component], graph: DiGraph) -> None:
    """Say in the plan of each application and runtime binary (a Go program, node,
    python) which layer decided its verdict on wasip1 and on the plan's target: the
    program's own code, the runtime it moves to, or both."""
    by_id = {c.id: c for c in components}
    for component in components:
        if component.plan is None or (component.kind != "application" and not component.runtime):
            continue
        targets = dict.fromkeys([Target.WASIP1, component.plan.target or Target.WASIP1])
        reasons = [r for t in targets if (r := _decided_by(component, graph, by_id, t))]
        if reasons:
            component.plan.summary += "; " + "; ".join(reasons)
