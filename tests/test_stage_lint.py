"""The lint stage alone: hand-made Binary/Script/Application facts and a graph built by hand.

Each test gives lint what the inspectors and the graph stage would have produced and
checks the findings. Symbol judging against real gcc-built binaries is in test_judge.py;
the whole pipeline in test_verdicts.py.
"""

from __future__ import annotations

import networkx as nx

from portscan.lint.components import lint_binary, lint_image, lint_script
from portscan.lint.config import lint_config
from portscan.lint.findings import Where, pattern_findings, rule_findings
from portscan.lint.uses import lint_application
from portscan.model import (
    IMAGE,
    ApiUse,
    Application,
    Binary,
    Finding,
    ImageConfig,
    Runtime,
    Script,
    SyscallReport,
    SyscallSite,
    Target,
    Verdict,
    file_node,
)

W1, W2, W3, WX = Target.WASIP1, Target.WASIP2, Target.WASIP3, Target.WASIX
SERVER = Where("/usr/bin/server", "pkg:deb/debian/server@1.0", 2)


def program(*imports: str, **facts) -> Binary:
    """A dynamic glibc program's facts."""
    return Binary(
        machine="x86_64",
        elf_class=64,
        file_type="pie",
        linkage="dynamic",
        libc="glibc",
        imported_symbols=list(imports),
        **facts,
    )


def library(*imports: str, exports: tuple[str, ...] = (), **facts) -> Binary:
    return Binary(
        machine="x86_64",
        elf_class=64,
        file_type="shared-library",
        linkage="dynamic",
        libc="glibc",
        imported_symbols=list(imports),
        exported_symbols=list(exports),
        **facts,
    )


def static(**facts) -> Binary:
    return Binary(machine="x86_64", elf_class=64, file_type="executable", linkage="static", **facts)


def graph_of(*edges: tuple[str, str, str], libraries: tuple[str, ...] = ()) -> nx.DiGraph:
    """A graph as graph/build.py makes it: file nodes carry kind and path, `missing:`
    nodes their name."""
    graph = nx.DiGraph()
    for source, target, kind in edges:
        for node in (source, target):
            if node.startswith("file:"):
                path = node.removeprefix("file:")
                graph.add_node(
                    node, kind="library" if path in libraries else "executable", path=path
                )
            elif node.startswith("missing:"):
                graph.add_node(node, kind="missing", name=node.removeprefix("missing:"))
            else:
                graph.add_node(node, kind=node)
        graph.add_edge(source, target, kind=kind)
    return graph


def rules_for(findings: list[Finding], target: Target) -> dict[str, Verdict]:
    return {f.rule_id: f.verdict for f in findings if f.target is target}


def rule_ids(findings: list[Finding]) -> set[str]:
    return {f.rule_id for f in findings}


# --------------------------------------------------------------------------- components


def test_platform_library_gets_no_findings() -> None:
    libc = library("fork@GLIBC_2.2.5", "ptrace@GLIBC_2.2.5", exports=("fork",))
    where = Where("/lib/x86_64-linux-gnu/libc.so.6", None, 0)
    assert lint_binary(libc, where, nx.DiGraph(), {where.path: libc}) == []
    # judged by its SONAME when the file name says nothing
    renamed = library("fork@GLIBC_2.2.5", soname="libstdc++.so.6")
    assert lint_binary(renamed, Where("/opt/x/libcustom.so", None, 0), nx.DiGraph(), {}) == []


def test_dynamic_program_importing_fork_and_listen() -> None:
    server = program(
        "fork@GLIBC_2.2.5",
        "bind@GLIBC_2.2.5",
        "listen@GLIBC_2.2.5",
        "accept@GLIBC_2.2.5",
        "printf@GLIBC_2.2.5",
        "__libc_start_main@GLIBC_2.34",
    )
    findings = lint_binary(server, SERVER, nx.DiGraph(), {SERVER.path: server})
    # fork: PS101; bind/listen: PS202; accept: PS203; printf: PS600; patterns PS501, PS504
    assert rules_for(findings, W1) == {
        "PS101": Verdict.REWORK,
        "PS202": Verdict.REWORK,
        "PS203": Verdict.READY,
        "PS600": Verdict.READY,
        "PS501": Verdict.REWORK,
        "PS504": Verdict.REWORK,
    }
    assert rules_for(findings, W2) == {
        "PS101": Verdict.REWORK,
        "PS202": Verdict.READY,
        "PS203": Verdict.READY,
        "PS600": Verdict.READY,
        "PS501": Verdict.READY,
        "PS504": Verdict.REWORK,
    }
    assert set(rules_for(findings, WX).values()) == {Verdict.READY}  # WASIX has fork
    fork = next(f for f in findings if f.rule_id == "PS101" and f.target is W1)
    assert [(e.file, e.symbol, e.package, e.layer) for e in fork.evidence] == [
        ("/usr/bin/server", "fork@GLIBC_2.2.5", "pkg:deb/debian/server@1.0", 2)
    ]
    listen = next(f for f in findings if f.rule_id == "PS202" and f.target is W1)
    assert {e.symbol for e in listen.evidence} == {"bind@GLIBC_2.2.5", "listen@GLIBC_2.2.5"}
    # every finding is for one of the four targets, one set per target
    assert {f.target for f in findings} == set(Target)


def test_shared_library_gets_no_pattern_findings() -> None:
    imports = ("bind@GLIBC_2.2.5", "listen@GLIBC_2.2.5", "accept@GLIBC_2.2.5")
    where = Where("/usr/lib/libnet.so.1", None, 1)
    as_library = lint_binary(library(*imports), where, nx.DiGraph(), {})
    as_program = lint_binary(program(*imports), where, nx.DiGraph(), {})
    assert "PS501" not in rule_ids(as_library)
    assert "PS501" in rule_ids(as_program)


def test_imports_its_own_library_exports_are_the_librarys() -> None:
    app = program("fork", "listen", "printf")  # unversioned: a musl or unversioned build
    libnet = library("listen@GLIBC_2.2.5", exports=("listen@@NET_1.0", "net_serve"))
    libc = library(exports=("fork", "printf"))
    binaries = {"/usr/bin/app": app, "/opt/lib/libnet.so": libnet, "/lib/libc.so.6": libc}
    graph = graph_of(
        ("file:/usr/bin/app", "file:/opt/lib/libnet.so", "needed"),
        ("file:/opt/lib/libnet.so", "file:/lib/libc.so.6", "needed"),
        libraries=("/opt/lib/libnet.so", "/lib/libc.so.6"),
    )
    own = lint_binary(app, Where("/usr/bin/app", None, 1), graph, binaries)
    # listen is libnet's to answer for; fork stays the program's (libc is the platform)
    assert "PS202" not in rule_ids(own)
    assert rules_for(own, W1)["PS101"] is Verdict.REWORK
    theirs = lint_binary(libnet, Where("/opt/lib/libnet.so", None, 1), graph, binaries)
    assert rules_for(theirs, W1)["PS202"] is Verdict.REWORK
    listen = next(f for f in theirs if f.rule_id == "PS202" and f.target is W1)
    assert listen.evidence[0].file == "/opt/lib/libnet.so"


def test_library_reached_through_another_library_also_answers() -> None:
    app = program("listen", "printf")
    binaries = {
        "/usr/bin/app": app,
        "/opt/lib/liba.so": library(),
        "/opt/lib/libb.so": library(exports=("listen",)),
    }
    graph = graph_of(
        ("file:/usr/bin/app", "file:/opt/lib/liba.so", "needed"),
        ("file:/opt/lib/liba.so", "file:/opt/lib/libb.so", "needed"),
        libraries=("/opt/lib/liba.so", "/opt/lib/libb.so"),
    )
    assert "PS202" not in rule_ids(
        lint_binary(app, Where("/usr/bin/app", None, 1), graph, binaries)
    )


def test_versioned_imports_stay_the_programs_own() -> None:
    # glibc versions every function: a GLIBC_-tagged name is the C library's, whoever else
    # exports the same name
    app = program("listen@GLIBC_2.2.5")
    binaries = {"/usr/bin/app": app, "/opt/lib/libnet.so": library(exports=("listen",))}
    graph = graph_of(
        ("file:/usr/bin/app", "file:/opt/lib/libnet.so", "needed"),
        libraries=("/opt/lib/libnet.so",),
    )
    own = lint_binary(app, Where("/usr/bin/app", None, 1), graph, binaries)
    assert rules_for(own, W1)["PS202"] is Verdict.REWORK


def test_missing_library_is_ps902_unless_it_is_the_platform() -> None:
    app = program("printf@GLIBC_2.2.5")
    graph = graph_of(
        ("file:/usr/bin/app", "missing:libfoo.so.1", "needed"),
        ("file:/usr/bin/app", "missing:libbar.so.2", "needed"),
        ("file:/usr/bin/app", "missing:libc.so.6", "needed"),
        ("file:/usr/bin/app", "missing:/lib64/ld-linux-x86-64.so.2", "interpreter"),
    )
    findings = lint_binary(app, Where("/usr/bin/app", None, 1), graph, {})
    unresolved = [f for f in findings if f.rule_id == "PS902"]
    assert [f.target for f in unresolved] == list(Target)
    assert {f.verdict for f in unresolved} == {Verdict.UNKNOWN}
    assert unresolved[0].evidence[0].detail == "libfoo.so.1, libbar.so.2"
    assert "libc.so.6" not in unresolved[0].message

    only_libc = graph_of(("file:/usr/bin/app", "missing:libc.so.6", "needed"))
    assert "PS902" not in rule_ids(lint_binary(app, Where("/usr/bin/app", None, 1), only_libc, {}))


def test_static_binary_judged_by_its_linked_calls() -> None:
    binary = static(
        linked_calls=["fork", "printf"],
        syscalls=SyscallReport(
            "x86_64", [SyscallSite(0x401000, "instruction", "syscall", "x86_64", 57, "fork")]
        ),
    )
    findings = lint_binary(binary, Where("/usr/bin/s", None, 0), nx.DiGraph(), {})
    # linked calls win over syscall sites: no PS905
    assert rules_for(findings, W1) == {"PS101": Verdict.REWORK, "PS600": Verdict.READY}
    fork = next(f for f in findings if f.rule_id == "PS101" and f.target is W1)
    assert fork.evidence[0].detail == "linked in"


def test_static_binary_linked_calls_complete_a_pattern() -> None:
    binary = static(linked_calls=["accept", "fork"])
    findings = lint_binary(binary, Where("/usr/bin/s", None, 0), nx.DiGraph(), {})
    assert rules_for(findings, W1)["PS504"] is Verdict.REWORK


def test_static_binary_with_only_syscalls_is_ps905() -> None:
    sites = [
        SyscallSite(0x401000, "instruction", "syscall", "x86_64", 57, "fork"),
        SyscallSite(0x401010, "instruction", "syscall", "x86_64", 1, "write"),
    ]
    binary = static(syscalls=SyscallReport("x86_64", resolved=sites))
    findings = lint_binary(binary, Where("/usr/bin/s", None, 0), nx.DiGraph(), {})
    assert rules_for(findings, W1) == {"PS101": Verdict.REWORK, "PS905": Verdict.UNKNOWN}
    assert rules_for(findings, WX) == {"PS101": Verdict.READY, "PS905": Verdict.UNKNOWN}
    fork = next(f for f in findings if f.rule_id == "PS101" and f.target is W1)
    assert (fork.evidence[0].syscall, fork.evidence[0].address) == ("fork", 0x401000)
    only = next(f for f in findings if f.rule_id == "PS905" and f.target is W1)
    assert only.evidence[0].detail == "2 sites"


def test_static_binary_with_nothing_to_judge_is_ps904() -> None:
    findings = lint_binary(static(), Where("/usr/bin/s", None, 0), nx.DiGraph(), {})
    assert rule_ids(findings) == {"PS904"}
    assert {f.verdict for f in findings} == {Verdict.UNKNOWN}
    # syscalls scanned but none resolved is still nothing to judge by
    empty = static(syscalls=SyscallReport("x86_64"))
    assert rule_ids(lint_binary(empty, Where("/usr/bin/s", None, 0), nx.DiGraph(), {})) == {"PS904"}


def test_dynamic_program_with_no_imports_has_no_findings() -> None:
    # not PS904: that is for static and relocatable files; its verdict is `unknown`
    # because it has no findings (score.py)
    assert lint_binary(program(), Where("/usr/bin/d", None, 0), nx.DiGraph(), {}) == []


def test_malformed_binary_is_ps901_even_when_named_like_the_platform() -> None:
    broken = Binary(error="truncated program header")
    for path in ("/usr/bin/broken", "/lib/libc.so.6"):
        findings = lint_binary(broken, Where(path, None, 0), nx.DiGraph(), {})
        assert rule_ids(findings) == {"PS901"}
        assert findings[0].evidence[0].detail == "truncated program header"
        assert findings[0].message == f"{path}: truncated program header"


def test_path_strings_are_judged() -> None:
    binary = program("printf@GLIBC_2.2.5", path_strings=["/proc/self/maps", "/dev/mem"])
    findings = lint_binary(binary, Where("/usr/bin/app", None, 0), nx.DiGraph(), {})
    assert {"PS520", "PS521"} <= rule_ids(findings)


def test_runtime_platform_binary_is_judged_by_its_runtime_alone() -> None:
    node = program("fork@GLIBC_2.2.5", "listen@GLIBC_2.2.5", runtime=Runtime("nodejs", "20.1.0"))
    graph = graph_of(("file:/usr/bin/node", "missing:libuv.so.1", "needed"))
    findings = lint_binary(node, Where("/usr/bin/node", None, 0), graph, {})
    assert rule_ids(findings) == {"PS413"}  # no PS101, PS202, PS902: the runtime's own
    assert rules_for(findings, W1) == {"PS413": Verdict.SHIM}
    assert findings[0].message == "/usr/bin/node is Node.js 20.1.0"
    assert findings[0].evidence[0].detail == "runtime nodejs 20.1.0"


def test_go_binary_adds_its_standard_library_uses() -> None:
    go = static(runtime=Runtime("go", "go1.22.1"), defined_functions=["net.Listen"])
    uses = [ApiUse("go-listen", "net.Listen", "/usr/bin/svc")]
    findings = lint_binary(go, Where("/usr/bin/svc", None, 0), nx.DiGraph(), {}, go_uses=uses)
    assert rules_for(findings, W1) == {"PS411": Verdict.READY, "PS202": Verdict.REWORK}
    listen = next(f for f in findings if f.rule_id == "PS202" and f.target is W1)
    assert "linked in" in listen.evidence[0].detail


def test_non_platform_runtime_keeps_its_symbol_findings() -> None:
    rust = program("fork@GLIBC_2.2.5", runtime=Runtime("rust"))
    findings = lint_binary(rust, Where("/usr/bin/svc", None, 0), nx.DiGraph(), {})
    assert {"PS412", "PS101"} <= rule_ids(findings)


def test_script_without_its_interpreter_is_ps902() -> None:
    where = Where("/entry.sh", None, 3)
    missing = Script("/entry.sh", "#!/bin/bash -e", "/bin/bash", None)
    findings = lint_script(missing, where)
    assert rule_ids(findings) == {"PS902"}
    assert findings[0].evidence[0].detail == "#!/bin/bash -e"
    assert lint_script(Script("/entry.sh", "#!/bin/sh", "/bin/sh", "/bin/busybox"), where) == []


# --------------------------------------------------------------------------- the image config


def test_lint_config_ports_volumes_and_root_user() -> None:
    config = ImageConfig(exposed_ports=["443/tcp", "80/tcp"], volumes=["/data"], user="")
    findings = lint_config(config, nx.DiGraph(), {})
    assert rules_for(findings, W1) == {
        "PS510": Verdict.REWORK,
        "PS511": Verdict.READY,
        "PS512": Verdict.READY,
    }
    assert rules_for(findings, W2)["PS510"] is Verdict.READY
    ports = next(f for f in findings if f.rule_id == "PS510")
    assert ports.message == "exposes 443/tcp, 80/tcp"
    assert ports.evidence[0].file == "(image config)"
    user = next(f for f in findings if f.rule_id == "PS512")
    assert user.evidence[0].detail == "User: -"


def test_lint_config_root_spellings() -> None:
    for user in ("", "0", "root", "0:0", "root:root"):
        assert "PS512" in rule_ids(lint_config(ImageConfig(user=user), nx.DiGraph(), {})), user
    for user in ("1000", "app", "1000:1000", "nobody"):
        assert lint_config(ImageConfig(user=user), nx.DiGraph(), {}) == [], user


def test_lint_config_script_entrypoint() -> None:
    scripts = {"/entry.sh": Script("/entry.sh", "#!/bin/sh -e", "/bin/sh", "/bin/sh")}
    graph = nx.DiGraph()
    graph.add_node(IMAGE, kind="image")
    graph.add_node("file:/entry.sh", kind="script", path="/entry.sh")
    graph.add_edge(IMAGE, "file:/entry.sh", kind="entrypoint")
    findings = lint_config(ImageConfig(user="1000"), graph, scripts)
    assert rules_for(findings, W1) == {"PS507": Verdict.REWORK}
    assert rules_for(findings, WX) == {"PS507": Verdict.READY}
    assert findings[0].message == "the entrypoint /entry.sh is a script (#!/bin/sh -e)"
    # a script the entrypoint only execs into is not the entrypoint
    graph.add_node("file:/usr/bin/app", kind="executable", path="/usr/bin/app")
    graph.remove_edge(IMAGE, "file:/entry.sh")
    graph.add_edge(IMAGE, "file:/usr/bin/app", kind="entrypoint")
    graph.add_edge("file:/usr/bin/app", "file:/entry.sh", kind="exec")
    assert lint_config(ImageConfig(user="1000"), graph, scripts) == []


# ------------------------------------------------------------------------ rule and pattern findings


def test_rule_findings_one_per_target_with_the_rules_verdicts() -> None:
    findings = rule_findings("PS510", Where("/x", "pkg:generic/x@1", 4), "msg", "detail")
    assert [(f.target, f.verdict) for f in findings] == [
        (W1, Verdict.REWORK),
        (W2, Verdict.READY),
        (W3, Verdict.READY),
        (WX, Verdict.READY),
    ]
    assert findings[0].evidence[0].to_dict() == {
        "file": "/x",
        "package": "pkg:generic/x@1",
        "layer": 4,
        "detail": "detail",
    }


def test_pattern_needs_every_group() -> None:
    where = Where("/usr/bin/srv", None, 0)
    assert pattern_findings(["bind", "listen"], where) == []  # PS501 lacks accept
    complete = pattern_findings(["bind@GLIBC_2.2.5", "listen", "accept4@GLIBC_2.10"], where)
    assert rule_ids(complete) == {"PS501"}
    assert rules_for(complete, W1) == {"PS501": Verdict.REWORK}
    assert complete[0].evidence[0].detail == "uses accept4, bind, listen"


def test_pattern_alternatives_and_normalised_names() -> None:
    where = Where("/usr/bin/srv", None, 0)
    # __libc_fork stands for fork: with accept, a process per connection (PS504)
    assert rule_ids(pattern_findings(["__libc_fork", "accept"], where)) == {"PS504"}
    # daemon() alone fills both groups of PS503 (fork-or-daemon, setsid-or-daemon)
    assert rule_ids(pattern_findings(["daemon"], where)) == {"PS503"}
    prefork = pattern_findings(["listen", "vfork", "wait4", "sigaction", "accept"], where)
    assert {"PS505", "PS504", "PS513"} <= rule_ids(prefork)


# ----------------------------------------------------------------------- applications and the image


def test_lint_application_uses_unread_and_summary() -> None:
    app = Application(
        "python",
        "/app/main.py",
        "/usr/bin/python3",
        files=["/app/main.py", "/app/worker.py"],
        uses=[ApiUse("py-subprocess", "subprocess.Popen", "/app/worker.py", 42)],
        unread={"/app/broken.py": "syntax error at line 3"},
    )
    owner = {"/app/worker.py": "pkg:pypi/app@1"}.get
    findings = lint_application(app, owner, lambda path: 5)
    assert rules_for(findings, W1) == {
        "PS102": Verdict.REWORK,
        "PS907": Verdict.UNKNOWN,
        "PS420": Verdict.READY,
    }
    assert rules_for(findings, WX)["PS102"] is Verdict.UNKNOWN  # the language's verdict
    use = next(f for f in findings if f.rule_id == "PS102" and f.target is W1)
    assert use.message.startswith("the application ")
    assert "subprocess.Popen in /app/worker.py:42" in use.message
    evidence = use.evidence[0]
    assert (evidence.file, evidence.line, evidence.symbol, evidence.package, evidence.layer) == (
        "/app/worker.py",
        42,
        "subprocess.Popen",
        "pkg:pypi/app@1",
        5,
    )
    summary = next(f for f in findings if f.rule_id == "PS420" and f.target is W1)
    assert summary.evidence[0].detail == "2 file(s) read with ast: /app/main.py, /app/worker.py"


def test_lint_image_components_kinds_and_config() -> None:
    binaries = {
        "/usr/bin/app": program("fork@GLIBC_2.2.5"),
        "/usr/bin/unused": program("printf@GLIBC_2.2.5"),
        "/usr/lib/libz.so.1": library("malloc@GLIBC_2.2.5"),
        "/lib/libc.so.6": library(exports=("fork",)),
        "/usr/bin/python3": program("printf@GLIBC_2.2.5", runtime=Runtime("cpython", "3.12.1")),
    }
    scripts = {
        "/entry.sh": Script("/entry.sh", "#!/bin/sh", "/bin/sh", None),
        "/app/main.py": Script(
            "/app/main.py", "#!/usr/bin/python3", "/usr/bin/python3", "/usr/bin/python3"
        ),
    }
    apps = [
        Application("python", "/app/main.py", "/usr/bin/python3", files=["/app/main.py"]),
        Application("javascript", "/srv/index.js", None, files=["/srv/index.js"]),
    ]
    graph = graph_of(
        (IMAGE, "file:/entry.sh", "entrypoint"),
        ("file:/entry.sh", "file:/usr/bin/app", "exec"),
        ("file:/usr/bin/app", "file:/lib/libc.so.6", "needed"),
        libraries=("/lib/libc.so.6",),
    )
    owner_of = {"/usr/bin/app": "pkg:deb/debian/app@1"}
    layer_of = {"/usr/bin/app": 1, "/srv/index.js": 3}
    reached = {"file:/entry.sh", "file:/usr/bin/app", "file:/lib/libc.so.6"}
    components, image_findings = lint_image(
        ImageConfig(user="root"),
        graph,
        binaries,
        scripts,
        owner_of,
        layer_of,
        reached,
        applications=apps,
    )
    by_path = {c.path: c for c in components}
    assert {path: c.kind for path, c in by_path.items()} == {
        "/app/main.py": "application",  # the script at an application's entry becomes it
        "/entry.sh": "script",
        "/lib/libc.so.6": "platform",
        "/usr/bin/app": "executable",
        "/usr/bin/python3": "executable",
        "/usr/bin/unused": "executable",
        "/usr/lib/libz.so.1": "library",
        "/srv/index.js": "application",  # no file component: a new one
    }
    app = by_path["/usr/bin/app"]
    assert (app.id, app.package, app.layer, app.reachable) == (
        "file:/usr/bin/app",
        "pkg:deb/debian/app@1",
        1,
        True,
    )
    assert not by_path["/usr/bin/unused"].reachable
    assert by_path["/lib/libc.so.6"].findings == []
    assert by_path["/usr/bin/python3"].runtime == "cpython"
    # its runtime rule, and CPython's known Wasm ports (signatures/ports.json)
    assert rule_ids(by_path["/usr/bin/python3"].findings) == {"PS410", "PS430"}
    assert rule_ids(by_path["/entry.sh"].findings) == {"PS902"}
    assert rule_ids(by_path["/app/main.py"].findings) == {"PS420"}
    assert by_path["/srv/index.js"].layer == 3
    # verdicts and plans are score.py's
    assert all(c.verdicts == {} and c.plan is None for c in components)
    assert rules_for(image_findings, W1) == {"PS507": Verdict.REWORK, "PS512": Verdict.READY}
    assert by_path["/srv/index.js"].id == file_node("/srv/index.js")


def test_port_findings_name_the_port_what_it_lacks_and_an_upgrade() -> None:
    from portscan.lint.components import port_findings
    from portscan.model import Runtime

    where = Where("/usr/bin/python3.11", None, 0)
    fork = Finding("PS101", Target.WASIP1, Verdict.REWORK, "process-fork", "fork", [])
    found = {f.target: f for f in port_findings(where, Runtime("cpython", "3.11.2"), [fork])}
    assert set(found) == {Target.WASIP1, Target.WASIX}  # CPython's ports (ports.json)
    assert all(f.rule_id == "PS430" for f in found.values())
    # the wasip1 build lacks process-fork, which this program uses: the native verdict stays
    assert found[Target.WASIP1].verdict is Verdict.REWORK
    assert "this program uses process-fork" in found[Target.WASIP1].message
    assert found[Target.WASIX].verdict is Verdict.SHIM
    assert "3.13 or later, this is 3.11.2: upgrade first" in found[Target.WASIX].message
    assert "upgrade first" not in found[Target.WASIP1].message  # the wasip1 port has 3.11
    assert port_findings(Where("/usr/bin/nginx", None, 0), None, []) == []  # no port known
