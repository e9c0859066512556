"""The score stage alone: hand-made Components and Findings on a graph built by hand.

No rule catalogue lookups are needed to make the inputs: findings are written here with
the verdicts each test wants. Verdicts from real programs are in test_verdicts.py.
"""

from __future__ import annotations

import networkx as nx

from portscan.model import (
    IMAGE,
    Capability,
    Component,
    Evidence,
    Finding,
    MigrationStep,
    Target,
    Verdict,
)
from portscan.score import (
    CAP,
    POINTS,
    explain_plans,
    finish_components,
    flow_verdicts,
    plan,
    summarise,
    verdicts_by_target,
)

W1, W2, W3, WX = Target.WASIP1, Target.WASIP2, Target.WASIP3, Target.WASIX
R, RW, SH, UN, BL, NA = (
    Verdict.READY,
    Verdict.REWORK,
    Verdict.SHIM,
    Verdict.UNKNOWN,
    Verdict.BLOCKED,
    Verdict.NA,
)


def found(
    rule_id: str,
    w1: Verdict,
    w2: Verdict | None = None,
    w3: Verdict | None = None,
    wx: Verdict | None = None,
    capability: Capability | None = None,
    file: str = "/x",
    symbol: str | None = None,
) -> list[Finding]:
    """One finding per target; a target left out gets the wasip1 verdict."""
    verdicts = {W1: w1, W2: w2 or w1, W3: w3 or w1, WX: wx or w1}
    evidence = [Evidence(file, symbol=symbol)]
    return [
        Finding(rule_id, t, v, capability, f"{rule_id} on {t}", list(evidence))
        for t, v in verdicts.items()
    ]


def component(
    path: str, *findings: list[Finding], kind: str = "executable", reachable: bool = True, **kw
) -> Component:
    return Component(
        f"file:{path}",
        kind,
        path,
        reachable=reachable,
        findings=[f for group in findings for f in group],
        **kw,
    )


def graph_of(*edges: tuple[str, str, str]) -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_node(IMAGE, kind="image")
    for source, target, kind in edges:
        graph.add_edge(source, target, kind=kind)
    return graph


def per_target(component: Component) -> tuple[Verdict, ...]:
    return tuple(component.verdicts[t] for t in Target)


FORK = found("PS101", RW, RW, RW, R, Capability("process-fork"), symbol="fork")
LISTEN = found("PS202", RW, R, R, R, Capability("socket-server"), symbol="listen")
AVAILABLE = found("PS600", R)
MMAP = found("PS301", SH, SH, SH, R, Capability("memory-map"))
UNRESOLVED = found("PS902", UN)
PTRACE = found("PS111", BL, capability=Capability("ptrace"))


# --------------------------------------------------------------------------- component verdicts


def test_component_verdict_is_its_worst_finding_per_target() -> None:
    server = component("/usr/bin/server", AVAILABLE, LISTEN, FORK, MMAP)
    flow_verdicts([server], nx.DiGraph())
    assert per_target(server) == (RW, RW, RW, R)
    assert server.scores == {W1: 30, W2: 30, W3: 30, WX: 100}
    assert server.inherited == {}


def test_unknown_is_below_ready_and_above_shim() -> None:
    ready_but_unknown = component("/a", AVAILABLE, UNRESOLVED)
    shim_and_unknown = component("/b", MMAP, UNRESOLVED)
    rework_and_unknown = component("/c", FORK, UNRESOLVED)
    flow_verdicts([ready_but_unknown, shim_and_unknown, rework_and_unknown], nx.DiGraph())
    assert per_target(ready_but_unknown) == (UN, UN, UN, UN)  # one unknown withholds ready
    assert per_target(shim_and_unknown) == (SH, SH, SH, UN)
    assert per_target(rework_and_unknown) == (RW, RW, RW, UN)


def test_nothing_judged_is_unknown_never_ready() -> None:
    silent = component("/usr/bin/silent")
    flow_verdicts([silent], nx.DiGraph())
    assert per_target(silent) == (UN, UN, UN, UN)
    assert verdicts_by_target([]) == dict.fromkeys(Target, UN)
    assert verdicts_by_target(AVAILABLE + FORK) == {W1: RW, W2: RW, W3: RW, WX: R}


def test_platform_is_na_whatever_its_findings() -> None:
    libc = component("/lib/libc.so.6", FORK, kind="platform")
    flow_verdicts([libc], nx.DiGraph())
    assert per_target(libc) == (NA, NA, NA, NA)


def test_library_verdict_flows_up_through_needed_and_interpreter() -> None:
    app = component("/usr/bin/app", AVAILABLE)
    libnet = component("/opt/lib/libnet.so", LISTEN, kind="library")
    libdeep = component("/opt/lib/libdeep.so", PTRACE, kind="library")
    libc = component("/lib/libc.so.6", kind="platform")
    script = component("/entry.sh", kind="script")
    graph = graph_of(
        (IMAGE, "file:/entry.sh", "entrypoint"),
        ("file:/entry.sh", "file:/usr/bin/app", "interpreter"),
        ("file:/usr/bin/app", "file:/opt/lib/libnet.so", "needed"),
        ("file:/opt/lib/libnet.so", "file:/opt/lib/libdeep.so", "needed"),
        ("file:/usr/bin/app", "file:/lib/libc.so.6", "needed"),
        ("file:/usr/bin/app", "missing:libgone.so", "needed"),  # not a component: ignored
    )
    flow_verdicts([app, libnet, libdeep, libc, script], graph)
    assert per_target(libdeep) == (BL, BL, BL, BL)
    assert per_target(libnet) == (BL, BL, BL, BL)
    assert per_target(app) == (BL, BL, BL, BL)
    assert per_target(script) == (BL, BL, BL, BL)
    # `inherited` names the worst components below, for every target where they are worse
    assert app.inherited == {t: ["file:/opt/lib/libdeep.so"] for t in Target}
    assert script.inherited == {t: ["file:/opt/lib/libdeep.so"] for t in Target}
    assert libdeep.inherited == {}
    # the platform's n/a never makes anything better, nor is it named
    assert all("file:/lib/libc.so.6" not in names for names in app.inherited.values())


def test_inherited_only_where_the_dependency_is_worse() -> None:
    app = component("/usr/bin/app", FORK)  # rework, rework, rework, ready
    lib = component("/opt/lib/libnet.so", LISTEN, kind="library")  # rework, ready, ready, ready
    graph = graph_of(("file:/usr/bin/app", "file:/opt/lib/libnet.so", "needed"))
    flow_verdicts([app, lib], graph)
    assert per_target(app) == (RW, RW, RW, R)
    assert app.inherited == {}  # as bad as its own fork on wasip1: not inherited


def test_package_and_exec_edges_do_not_carry_verdicts() -> None:
    app = component("/usr/bin/app", AVAILABLE)
    server = component("/usr/bin/server", FORK)
    wrapper = component("/entry.sh", kind="script")
    package = component("/usr/lib/libbad.so", PTRACE, kind="library")
    graph = graph_of(
        (IMAGE, "file:/entry.sh", "entrypoint"),
        ("file:/entry.sh", "file:/usr/bin/server", "exec"),
        ("file:/usr/bin/app", "pkg:deb/debian/bad@1", "package"),
        ("file:/usr/lib/libbad.so", "pkg:deb/debian/bad@1", "package"),
    )
    flow_verdicts([app, server, wrapper, package], graph)
    assert per_target(app) == (R, R, R, R)
    assert per_target(wrapper) == (UN, UN, UN, UN)  # its own (no findings), not the server's


def test_flow_uses_the_graph_it_is_given() -> None:
    # score.py is run on graph.build.judged_graph: a runtime's `needed` edges are cut
    node = component("/usr/bin/node", found("PS413", SH, SH, UN, SH), runtime="nodejs")
    libuv = component("/usr/lib/libuv.so.1", FORK, kind="library")
    cut = graph_of()  # the needed edge node -> libuv removed
    flow_verdicts([node, libuv], cut)
    assert per_target(node) == (SH, SH, UN, SH)


# --------------------------------------------------------------------------- the image


def test_image_verdict_is_the_worst_reachable_component_and_config() -> None:
    pure = component("/usr/bin/pure", AVAILABLE)
    unreached = component("/usr/bin/forker", FORK, reachable=False)
    libc = component("/lib/libc.so.6", PTRACE, kind="platform")
    components = [pure, unreached, libc]
    flow_verdicts(components, nx.DiGraph())
    summary = summarise(components, [])
    assert {t: s.verdict for t, s in summary.items()} == dict.fromkeys(Target, R)
    assert summary[W1].score == 100
    assert summary[W1].counts == {R: 1}  # the platform is not counted
    ports = found("PS510", RW, R, R, R, Capability("socket-server"))
    summary = summarise(components, ports)
    assert summary[W1].verdict is RW and summary[W2].verdict is R
    assert summary[W1].score == CAP[RW] == 50  # 100 points, capped by the verdict
    assert [f.rule_id for f in summary[W1].blockers] == ["PS510"]


def test_without_reachable_components_every_judged_component_counts() -> None:
    a = component("/usr/bin/a", AVAILABLE, reachable=False)
    b = component("/usr/bin/b", FORK, reachable=False)
    flow_verdicts([a, b], nx.DiGraph())
    summary = summarise([a, b], [])
    assert summary[W1].verdict is RW
    assert summary[W1].counts == {R: 1, RW: 1}
    assert summary[W1].score == CAP[RW] == 50  # mean 65, capped by rework
    assert summary[WX].verdict is R and summary[WX].score == 100


def test_unknown_component_withholds_ready_from_the_image() -> None:
    components = [component(f"/usr/bin/p{i}", AVAILABLE) for i in range(9)]
    components.append(component("/usr/bin/silent"))
    flow_verdicts(components, nx.DiGraph())
    summary = summarise(components, [])
    assert {s.verdict for s in summary.values()} == {UN}
    assert summary[W1].score == CAP[UN] == 90  # the mean (96) is capped
    assert summary[W1].counts == {R: 9, UN: 1}


def test_scores_are_the_mean_capped_by_the_verdict() -> None:
    shim = [
        component("/usr/bin/s", MMAP),
        *(component(f"/usr/bin/r{i}", AVAILABLE) for i in range(3)),
    ]
    flow_verdicts(shim, nx.DiGraph())
    summary = summarise(shim, [])
    assert summary[W1].verdict is SH
    assert summary[W1].score == min(round((80 + 300) / 4), CAP[SH]) == 85
    blocked = [component("/usr/bin/b", PTRACE), *(component(f"/r{i}", AVAILABLE) for i in range(9))]
    flow_verdicts(blocked, nx.DiGraph())
    assert summarise(blocked, [])[W1].score == CAP[BL] == 20  # mean 90


def test_data_only_image_is_not_applicable() -> None:
    summary = summarise([], [])
    assert {t: (s.verdict, s.score, s.counts) for t, s in summary.items()} == dict.fromkeys(
        Target, (NA, 100, {})
    )
    # only the platform: nothing of the image's own to port
    libc = component("/lib/libc.so.6", kind="platform")
    flow_verdicts([libc], nx.DiGraph())
    assert {s.verdict for s in summarise([libc], []).values()} == {NA}
    # ready config findings (root user) keep it n/a; ones that need work decide it
    root = found("PS512", R, capability=Capability("privileges"))
    assert {s.verdict for s in summarise([], root).values()} == {NA}
    ports = found("PS510", RW, R, R, R, Capability("socket-server"))
    summary = summarise([], [*root, *ports])
    assert (summary[W1].verdict, summary[W1].score) == (RW, POINTS[RW])
    assert (summary[W2].verdict, summary[W2].score) == (NA, 100)


def test_blockers_merge_a_rule_across_components_worst_first() -> None:
    a = component("/usr/bin/a", found("PS101", RW, file="/usr/bin/a"))
    b = component("/usr/bin/b", found("PS101", RW, file="/usr/bin/b"), PTRACE)
    c = component("/usr/bin/c", MMAP, LISTEN)
    components = [a, b, c]
    flow_verdicts(components, nx.DiGraph())
    blockers = summarise(components, [])[W1].blockers
    # blocked first, then rework by how many components share it; shim never blocks
    assert [f.rule_id for f in blockers] == ["PS111", "PS101", "PS202"]
    fork = blockers[1]
    assert [e.file for e in fork.evidence] == ["/usr/bin/a", "/usr/bin/b"]
    assert fork.message.endswith("(and 1 more component(s))")


# --------------------------------------------------------------------------- plans


def planned(*findings: list[Finding], kind: str = "executable") -> Component:
    c = component("/usr/bin/x", *findings, kind=kind)
    flow_verdicts([c], nx.DiGraph())
    c.plan = plan(c)
    return c


def road(step: MigrationStep) -> tuple[str, Target | None, str]:
    return step.path, step.target, step.effort


def test_plan_roads() -> None:
    assert road(planned(AVAILABLE).plan) == ("recompile-wasip1", W1, "S")
    emulated = planned(AVAILABLE, MMAP).plan
    assert road(emulated) == ("recompile-wasip1-emulated", W1, "S")
    assert emulated.rule_ids == ["PS301"]
    sockets = planned(LISTEN).plan
    assert road(sockets) == ("move-wasip2", W2, "M")
    assert sockets.rule_ids == []  # nothing left to do on wasip2
    assert road(planned(FORK, LISTEN).plan) == ("target-wasix", WX, "M")
    assert road(planned(UNRESOLVED).plan) == ("investigate", None, "M")
    keep = planned(PTRACE).plan
    assert road(keep) == ("keep-in-container", None, "-")
    assert keep.rule_ids == ["PS111"]
    assert road(planned(kind="platform").plan) == ("nothing-to-do", None, "-")


def test_plan_rework_effort_grows_with_the_capabilities_to_rework() -> None:
    shm = found("PS303", RW, capability=Capability("shared-memory"))
    locks = found("PS605", RW, capability=Capability("file-locking"))
    fifos = found("PS307", RW, capability=Capability("fifos"))
    two = planned(AVAILABLE, shm, locks).plan
    assert road(two) == ("rework", W1, "M")
    assert two.summary.startswith("rework for wasip1: shared-memory, file-locking;")
    assert two.rule_ids == ["PS303", "PS605"]
    three = planned(shm, locks, fifos).plan
    assert road(three) == ("rework", W1, "L")
    # the road takes the first target that needs rework (not blocked): here wasix
    ptrace_ish = found("PS111", BL, BL, BL, RW, Capability("ptrace"))
    best = planned(ptrace_ish, locks).plan
    assert road(best) == ("rework", WX, "M")
    assert best.rule_ids == ["PS111", "PS605"]
    assert best.summary.startswith("rework for wasix: ptrace, file-locking;")


def test_plan_summary_says_what_decides_never_a_count_of_nothing() -> None:
    # a missing C-library function has no capability: its rule's title says what decides
    missing = found("PS601", RW, RW, RW, RW, symbol="getgroups")
    plan_ = planned(missing).plan
    assert road(plan_) == ("rework", W1, "M")
    assert plan_.summary.startswith("rework for wasip1: C library function")
    assert "0 capabilit" not in plan_.summary
    # blocked on the WASI targets, unknown on wasix: not a rework of nothing on wasix
    perl_like = found("PS418", BL, BL, BL, UN)
    investigate = planned(perl_like).plan
    assert road(investigate) == ("investigate", WX, "M")
    assert investigate.summary.startswith("not enough evidence for wasix (")


def test_a_port_decides_the_targets_it_covers() -> None:
    # bash-like: rework on WASIX for its own imports, but a WASIX port exists (PS430, shim)
    getgroups = found("PS601", RW, RW, RW, RW, symbol="getgroups")
    port = [
        Finding("PS430", WX, SH, None, "bash for WASIX exists", [Evidence("/usr/bin/x",
                detail="bash for WASIX")])
    ]  # fmt: skip
    c = planned(getgroups, port)
    assert per_target(c) == (RW, RW, RW, SH)  # the port decides wasix; the rest is native
    assert road(c.plan) == ("swap-for-port", WX, "S")
    assert c.plan.summary == "swap the native binary for its port on wasix: bash for WASIX"
    summary = summarise([c], [])
    assert summary[WX].verdict is SH and summary[WX].blockers == []  # native needs: no blocker
    assert [b.rule_id for b in summary[W1].blockers] == ["PS601"]


def test_finish_components_plans_and_explains_an_application() -> None:
    app = component(
        "/app/main.py",
        found("PS102", RW, RW, RW, UN, Capability("process-exec"), symbol="subprocess.Popen"),
        found("PS420", R),
        kind="application",
    )
    python = component(
        "/usr/bin/python3.12",
        found("PS410", R, SH, UN, R),
        runtime="cpython",
    )
    graph = graph_of(
        (IMAGE, "file:/app/main.py", "application"),
        ("file:/app/main.py", "file:/usr/bin/python3.12", "interpreter"),
    )
    finish_components([app, python], graph)
    assert per_target(app) == (RW, RW, RW, UN)
    # rework where the work is known (wasip1), not on wasix, where nothing is known
    assert app.plan.path == "rework" and app.plan.target is W1
    assert app.plan.summary.startswith("rework for wasip1: process-exec;")
    assert "rework on wasip1 because of the application code (subprocess.Popen; PS102)" in (
        app.plan.summary
    )
    # the runtime's plan says its own rule decided it
    assert python.plan.path == "recompile-wasip1"
    assert python.plan.summary.endswith("; ready on wasip1 because of the runtime (/x; PS410)")


def test_explain_plans_names_the_runtime_when_it_decides() -> None:
    app = component("/srv/index.js", found("PS420", R), kind="application")
    node = component("/usr/bin/node", found("PS413", SH, SH, UN, SH), runtime="nodejs")
    graph = graph_of(("file:/srv/index.js", "file:/usr/bin/node", "interpreter"))
    flow_verdicts([app, node], graph)
    for c in (app, node):
        c.plan = plan(c)
    explain_plans([app, node], graph)
    assert app.plan.path == "recompile-wasip1-emulated"
    assert app.plan.summary.endswith("; shim on wasip1 because of the runtime (/x; PS413)")
    plain = component("/usr/bin/tool", FORK)  # neither application nor runtime: no reason
    flow_verdicts([plain], nx.DiGraph())
    plain.plan = plan(plain)
    before = plain.plan.summary
    explain_plans([plain], nx.DiGraph())
    assert plain.plan.summary == before
