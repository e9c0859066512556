"""The graph stage alone: hand-made Binary/Script facts over an in-memory Tree.

No image is read and no ELF parsed: the tree only says which paths exist (and holds the
bytes of scripts), the inspectors' facts are written here. End-to-end graph tests on
real images are in test_graph.py.
"""

from __future__ import annotations

import networkx as nx

from portscan.graph.build import (
    GraphInputs,
    build_graph,
    judged_graph,
    link_applications,
    reachable,
    unresolved,
)
from portscan.model import IMAGE, Application, Binary, ImageConfig, Runtime, Script
from tests import imagebuild as ib
from tests.test_ldpath import tree_of

ELF = b"\x7fELF (facts are given, the bytes never read)"


def exe(*needed: str, **facts) -> Binary:
    """A dynamic x86-64 program's facts."""
    return Binary(
        machine="x86_64", elf_class=64, file_type="pie", linkage="dynamic", libc="glibc",
        needed=list(needed), **facts,
    )  # fmt: skip


def lib(*needed: str, **facts) -> Binary:
    return Binary(
        machine="x86_64", elf_class=64, file_type="shared-library", linkage="dynamic",
        libc="glibc", needed=list(needed), **facts,
    )  # fmt: skip


def sh_script(path: str, interpreter: str = "/bin/sh", resolved: str | None = "/bin/sh") -> Script:
    return Script(path, f"#!{interpreter}", interpreter, resolved)


def build(
    entries: list[ib.Entry],
    config: ImageConfig,
    binaries: dict[str, Binary],
    scripts: dict[str, Script] | None = None,
    owner_of: dict[str, str] | None = None,
) -> nx.DiGraph:
    inputs = GraphInputs(tree_of(entries), config, binaries, scripts or {}, owner_of or {})
    return build_graph(inputs)


def edges(graph: nx.DiGraph) -> set[tuple[str, str, str]]:
    return set(graph.edges(data="kind"))


def programs(*paths: str) -> tuple[list[ib.Entry], dict[str, Binary]]:
    """Files for `paths` (leading slash dropped for the tar name) and their facts."""
    return [ib.file(p.lstrip("/"), ELF, 0o755) for p in paths], {p: exe() for p in paths}


# --------------------------------------------------------------------------- the entrypoint


def test_exec_form_runs_entrypoint_with_cmd_as_arguments() -> None:
    entries, binaries = programs("/usr/bin/app", "/usr/bin/other")
    graph = build(entries, ImageConfig(entrypoint=["/usr/bin/app"], cmd=["other"]), binaries)
    # CMD is the entrypoint's arguments here, not a program of its own
    assert edges(graph) == {(IMAGE, "file:/usr/bin/app", "entrypoint")}
    assert graph.nodes[IMAGE]["kind"] == "image"
    assert graph.nodes["file:/usr/bin/app"]["kind"] == "executable"
    assert reachable(graph) == {"file:/usr/bin/app"}


def test_cmd_alone_is_the_command() -> None:
    entries, binaries = programs("/usr/bin/app")
    graph = build(entries, ImageConfig(cmd=["app", "--flag"]), binaries)
    assert (IMAGE, "file:/usr/bin/app", "entrypoint") in edges(graph)


def test_shell_form_follows_every_command_of_sh_c() -> None:
    entries, binaries = programs("/bin/sh", "/usr/bin/server", "/usr/bin/helper")
    command = "FOO=1 exec server --port 80 && helper | nosuch; # comment"
    graph = build(entries, ImageConfig(cmd=["/bin/sh", "-c", command]), binaries)
    assert edges(graph) == {
        (IMAGE, "file:/bin/sh", "entrypoint"),
        ("file:/bin/sh", "file:/usr/bin/server", "exec"),
        ("file:/bin/sh", "file:/usr/bin/helper", "exec"),
        ("file:/bin/sh", "missing:nosuch", "exec"),
    }
    assert graph.nodes["missing:nosuch"] == {"kind": "missing", "name": "nosuch"}
    assert unresolved(graph) == [("file:/bin/sh", "nosuch")]


def test_sh_without_c_is_just_a_program() -> None:
    entries, binaries = programs("/bin/sh", "/usr/bin/server")
    graph = build(entries, ImageConfig(cmd=["/bin/sh", "server"]), binaries)
    assert edges(graph) == {(IMAGE, "file:/bin/sh", "entrypoint")}


def test_launchers_are_skipped_to_the_program_they_start() -> None:
    entries, binaries = programs(
        "/usr/bin/tini", "/usr/local/bin/gosu", "/usr/bin/env", "/usr/bin/server", "/usr/bin/app"
    )
    config = ImageConfig(entrypoint=["tini", "--", "gosu", "app", "env", "VAR=x", "server"])
    graph = build(entries, config, binaries)
    # `gosu app`: the user name is not looked up as a program; the launchers themselves
    # get no edge, so they are not part of what the image runs
    assert edges(graph) == {(IMAGE, "file:/usr/bin/server", "entrypoint")}
    assert reachable(graph) == {"file:/usr/bin/server"}
    assert "file:/usr/bin/app" not in reachable(graph)


def test_launcher_inside_a_shell_command() -> None:
    entries, binaries = programs("/bin/sh", "/usr/bin/server")
    graph = build(entries, ImageConfig(cmd=["sh", "-c", "exec tini -- server"]), binaries)
    assert ("file:/bin/sh", "file:/usr/bin/server", "exec") in edges(graph)


# --------------------------------------------------------------------------- PATH and working dir


def test_image_path_decides_which_program_runs() -> None:
    entries, binaries = programs("/usr/bin/server", "/opt/app/bin/server")
    entries.append(ib.directory("opt/first/server"))  # a directory is not a program
    config = ImageConfig(entrypoint=["server"], env=["PATH=/opt/first:/opt/app/bin:/bin"])
    graph = build(entries, config, binaries)
    assert edges(graph) == {(IMAGE, "file:/opt/app/bin/server", "entrypoint")}
    assert "file:/usr/bin/server" not in reachable(graph)


def test_default_path_when_the_image_sets_none() -> None:
    entries, binaries = programs("/usr/bin/server", "/usr/local/bin/server")
    graph = build(entries, ImageConfig(entrypoint=["server"]), binaries)
    # DEFAULT_PATH searches /usr/local/bin before /usr/bin
    assert edges(graph) == {(IMAGE, "file:/usr/local/bin/server", "entrypoint")}


def test_path_not_searched_for_a_word_with_a_slash_and_not_in_path_is_missing() -> None:
    entries, binaries = programs("/usr/bin/server")
    config = ImageConfig(entrypoint=["bin/server"], env=["PATH=/usr/bin"])
    graph = build(entries, config, binaries)
    assert edges(graph) == {(IMAGE, "missing:bin/server", "entrypoint")}
    assert reachable(graph) == {"missing:bin/server"}


def test_relative_command_resolves_from_the_working_dir() -> None:
    entries, binaries = programs("/srv/app/run", "/run")
    config = ImageConfig(entrypoint=["./run"], working_dir="/srv/app")
    graph = build(entries, config, binaries)
    assert edges(graph) == {(IMAGE, "file:/srv/app/run", "entrypoint")}


def test_command_symlink_is_followed_to_the_file() -> None:
    entries, binaries = programs("/usr/bin/python3.12")
    entries.append(ib.symlink("usr/bin/python3", "python3.12"))
    graph = build(entries, ImageConfig(cmd=["python3", "-c", "pass"]), binaries)
    assert edges(graph) == {(IMAGE, "file:/usr/bin/python3.12", "entrypoint")}


# --------------------------------------------------------------------------- scripts


def test_wrapper_script_exec_passes_cmd_through() -> None:
    wrapper = '#!/bin/sh\nset -e\nif [ "$1" = x ]; then\n  exec gosu app "$@"\nfi\nexec "$@"\n'
    entries, binaries = programs("/bin/sh", "/usr/local/bin/gosu", "/usr/bin/postgres")
    entries.append(ib.file("usr/local/bin/entry.sh", wrapper, 0o755))
    scripts = {"/usr/local/bin/entry.sh": sh_script("/usr/local/bin/entry.sh")}
    config = ImageConfig(entrypoint=["entry.sh"], cmd=["postgres", "-D", "/data"])
    graph = build(entries, config, binaries, scripts)
    assert edges(graph) == {
        (IMAGE, "file:/usr/local/bin/entry.sh", "entrypoint"),
        ("file:/usr/local/bin/entry.sh", "file:/bin/sh", "interpreter"),
        ("file:/usr/local/bin/entry.sh", "file:/usr/bin/postgres", "exec"),
    }
    assert graph.nodes["file:/usr/local/bin/entry.sh"]["kind"] == "script"
    assert "file:/usr/local/bin/gosu" not in reachable(graph)


def test_wrapper_literal_exec_and_chained_scripts() -> None:
    outer = "#!/bin/sh\nexec /opt/inner.sh start\n"
    inner = '#!/bin/sh\nexec /usr/bin/server "$@" 2>&1\n'
    entries, binaries = programs("/bin/sh", "/usr/bin/server")
    entries += [ib.file("opt/outer.sh", outer, 0o755), ib.file("opt/inner.sh", inner, 0o755)]
    scripts = {p: sh_script(p) for p in ("/opt/outer.sh", "/opt/inner.sh")}
    graph = build(entries, ImageConfig(entrypoint=["/opt/outer.sh"]), binaries, scripts)
    assert ("file:/opt/outer.sh", "file:/opt/inner.sh", "exec") in edges(graph)
    assert ("file:/opt/inner.sh", "file:/usr/bin/server", "exec") in edges(graph)
    assert "file:/usr/bin/server" in reachable(graph)


def test_exec_lines_of_a_non_shell_script_are_not_followed() -> None:
    source = "#!/usr/bin/python3\nexec server\n"  # Python's exec builtin, not a command
    entries, binaries = programs("/usr/bin/python3", "/usr/bin/server")
    entries.append(ib.file("app/main.py", source, 0o755))
    scripts = {"/app/main.py": sh_script("/app/main.py", "/usr/bin/python3", "/usr/bin/python3")}
    graph = build(entries, ImageConfig(cmd=["/app/main.py"]), binaries, scripts)
    assert edges(graph) == {
        (IMAGE, "file:/app/main.py", "entrypoint"),
        ("file:/app/main.py", "file:/usr/bin/python3", "interpreter"),
    }


def test_script_without_its_interpreter_points_at_a_missing_node() -> None:
    entries = [ib.file("usr/local/bin/run.sh", "#!/bin/bash\nexec app\n", 0o755)]
    scripts = {"/usr/local/bin/run.sh": sh_script("/usr/local/bin/run.sh", "/bin/bash", None)}
    graph = build(entries, ImageConfig(), {}, scripts)
    # not reached (no entrypoint), but every script still gets its interpreter edge,
    # and its `exec` lines are followed since the interpreter is a shell by name
    assert edges(graph) == {
        ("file:/usr/local/bin/run.sh", "missing:/bin/bash", "interpreter"),
        ("file:/usr/local/bin/run.sh", "missing:app", "exec"),
    }
    assert reachable(graph) == set()
    assert unresolved(graph) == [
        ("file:/usr/local/bin/run.sh", "/bin/bash"),
        ("file:/usr/local/bin/run.sh", "app"),
    ]


# --------------------------------------------------------------------------- libraries


def test_needed_resolves_through_runpath_origin_and_reports_missing() -> None:
    entries = [
        ib.file("opt/app/bin/tool", ELF, 0o755),
        ib.file("opt/app/lib/libfoo.so.1", ELF),
        ib.file("usr/lib/libfoo.so.1", ELF),  # later in the search order
    ]
    binaries = {
        "/opt/app/bin/tool": exe(
            "libfoo.so.1",
            "libgone.so.2",
            runpath=["$ORIGIN/../lib"],
            interpreter="/lib64/ld-linux-x86-64.so.2",
        ),
        "/opt/app/lib/libfoo.so.1": lib(),
        "/usr/lib/libfoo.so.1": lib(),
    }
    graph = build(entries, ImageConfig(entrypoint=["/opt/app/bin/tool"]), binaries)
    tool = "file:/opt/app/bin/tool"
    assert set(graph.out_edges(tool, data="kind")) == {
        (tool, "file:/opt/app/lib/libfoo.so.1", "needed"),
        (tool, "missing:libgone.so.2", "needed"),
        (tool, "missing:/lib64/ld-linux-x86-64.so.2", "interpreter"),
    }
    assert graph.nodes["missing:libgone.so.2"] == {"kind": "missing", "name": "libgone.so.2"}
    assert graph.nodes["file:/opt/app/lib/libfoo.so.1"]["kind"] == "library"
    assert "file:/opt/app/lib/libfoo.so.1" in reachable(graph)
    assert "file:/usr/lib/libfoo.so.1" not in reachable(graph)


def test_library_of_another_machine_is_skipped_as_ld_so_does() -> None:
    entries = [
        ib.file("usr/bin/tool", ELF, 0o755),
        ib.file("usr/lib64/libfoo.so.1", ELF),
        ib.file("usr/lib/libfoo.so.1", ELF),
    ]
    binaries = {
        "/usr/bin/tool": exe("libfoo.so.1"),
        "/usr/lib64/libfoo.so.1": Binary(
            machine="aarch64", elf_class=64, file_type="shared-library"
        ),
        "/usr/lib/libfoo.so.1": lib(),
    }
    graph = build(entries, ImageConfig(), binaries)
    assert ("file:/usr/bin/tool", "file:/usr/lib/libfoo.so.1", "needed") in edges(graph)
    assert ("file:/usr/bin/tool", "file:/usr/lib64/libfoo.so.1", "needed") not in edges(graph)


def test_loader_rpath_reaches_a_library_of_a_library() -> None:
    entries = [
        ib.file("opt/app/bin/tool", ELF, 0o755),
        ib.file("opt/app/private/libfoo.so", ELF),
        ib.file("opt/app/private/libbar.so", ELF),
    ]
    binaries = {
        "/opt/app/bin/tool": exe("libfoo.so", rpath=["$ORIGIN/../private"]),
        "/opt/app/private/libfoo.so": lib("libbar.so"),  # no RPATH/RUNPATH of its own
        "/opt/app/private/libbar.so": lib(),
    }
    graph = build(entries, ImageConfig(entrypoint=["/opt/app/bin/tool"]), binaries)
    foo, bar = "file:/opt/app/private/libfoo.so", "file:/opt/app/private/libbar.so"
    assert (foo, bar, "needed") in edges(graph)
    assert bar in reachable(graph)


def test_every_binary_gets_library_edges_but_only_the_entrypoint_is_reachable() -> None:
    entries = [
        ib.file("usr/bin/app", ELF, 0o755),
        ib.file("usr/bin/unused", ELF, 0o755),
        ib.file("usr/lib/libused.so.1", ELF),
        ib.file("usr/lib/libother.so.1", ELF),
    ]
    binaries = {
        "/usr/bin/app": exe("libused.so.1"),
        "/usr/bin/unused": exe("libother.so.1"),
        "/usr/lib/libused.so.1": lib(),
        "/usr/lib/libother.so.1": lib(),
    }
    graph = build(entries, ImageConfig(entrypoint=["/usr/bin/app"]), binaries)
    assert ("file:/usr/bin/unused", "file:/usr/lib/libother.so.1", "needed") in edges(graph)
    assert reachable(graph) == {"file:/usr/bin/app", "file:/usr/lib/libused.so.1"}


def test_malformed_binary_gets_no_library_edges() -> None:
    entries = [ib.file("usr/bin/broken", ELF, 0o755)]
    binaries = {"/usr/bin/broken": exe("libfoo.so.1", error="truncated header")}
    graph = build(entries, ImageConfig(entrypoint=["/usr/bin/broken"]), binaries)
    assert edges(graph) == {(IMAGE, "file:/usr/bin/broken", "entrypoint")}


def test_package_edges_from_owner_of() -> None:
    entries = [ib.file("usr/bin/app", ELF, 0o755), ib.file("usr/lib/libz.so.1", ELF)]
    binaries = {"/usr/bin/app": exe("libz.so.1"), "/usr/lib/libz.so.1": lib()}
    owner_of = {
        "/usr/bin/app": "pkg:deb/debian/app@1.0",
        "/usr/lib/libz.so.1": "pkg:deb/debian/zlib1g@1.2.13",
    }
    graph = build(entries, ImageConfig(cmd=["/usr/bin/app"]), binaries, owner_of=owner_of)
    assert ("file:/usr/bin/app", "pkg:deb/debian/app@1.0", "package") in edges(graph)
    assert ("file:/usr/lib/libz.so.1", "pkg:deb/debian/zlib1g@1.2.13", "package") in edges(graph)
    assert graph.nodes["pkg:deb/debian/app@1.0"] == {
        "kind": "package",
        "purl": "pkg:deb/debian/app@1.0",
    }
    assert {"pkg:deb/debian/app@1.0", "pkg:deb/debian/zlib1g@1.2.13"} <= reachable(graph)


def test_reachable_without_an_image_node_is_empty() -> None:
    graph = nx.DiGraph([("file:/a", "file:/b")])
    assert reachable(graph) == set()


# --------------------------------------------------------------------------- runtimes, applications


def test_judged_graph_cuts_only_a_runtimes_needed_edges() -> None:
    entries = [
        ib.file("usr/bin/node", ELF, 0o755),
        ib.file("usr/bin/tool", ELF, 0o755),
        ib.file("usr/lib/libuv.so.1", ELF),
        ib.file("usr/lib/libssl.so.3", ELF),
    ]
    binaries = {
        "/usr/bin/node": exe(
            "libuv.so.1",
            "libssl.so.3",
            interpreter="/lib64/ld-linux-x86-64.so.2",
            runtime=Runtime("nodejs", "20.1.0"),
        ),
        "/usr/bin/tool": exe("libssl.so.3"),
        "/usr/lib/libuv.so.1": lib(),
        "/usr/lib/libssl.so.3": lib(),
    }
    graph = build(entries, ImageConfig(entrypoint=["node"]), binaries)
    judged = judged_graph(graph, binaries)
    node = "file:/usr/bin/node"
    assert set(judged.out_edges(node, data="kind")) == {
        (node, "missing:/lib64/ld-linux-x86-64.so.2", "interpreter")
    }
    assert ("file:/usr/bin/tool", "file:/usr/lib/libssl.so.3", "needed") in edges(judged)
    assert reachable(judged) == {node, "missing:/lib64/ld-linux-x86-64.so.2"}
    # the graph itself is left whole (its edges are reported as dependencies)
    assert (node, "file:/usr/lib/libuv.so.1", "needed") in edges(graph)


def test_judged_graph_keeps_needed_edges_of_a_runtime_that_is_not_a_platform() -> None:
    entries = [ib.file("usr/bin/svc", ELF, 0o755), ib.file("usr/lib/libz.so.1", ELF)]
    binaries = {  # a Rust program: its libraries are its own to port
        "/usr/bin/svc": exe("libz.so.1", runtime=Runtime("rust")),
        "/usr/lib/libz.so.1": lib(),
    }
    judged = judged_graph(build(entries, ImageConfig(), binaries), binaries)
    assert ("file:/usr/bin/svc", "file:/usr/lib/libz.so.1", "needed") in edges(judged)


def test_link_applications_adds_application_and_interpreter_edges() -> None:
    entries, binaries = programs("/usr/bin/python3.12")
    entries.append(ib.file("app/main.py", "print('hi')\n"))
    graph = build(entries, ImageConfig(cmd=["python3.12", "/app/main.py"]), binaries)
    apps = [
        Application("python", "/app/main.py", "/usr/bin/python3.12", files=["/app/main.py"]),
        Application("javascript", "/srv/index.js", "/usr/local/bin/node"),
        Application("python", "/opt/orphan.py", None),
    ]
    link_applications(graph, apps)
    assert {
        (IMAGE, "file:/app/main.py", "application"),
        ("file:/app/main.py", "file:/usr/bin/python3.12", "interpreter"),
        (IMAGE, "file:/srv/index.js", "application"),
        ("file:/srv/index.js", "file:/usr/local/bin/node", "interpreter"),
        (IMAGE, "file:/opt/orphan.py", "application"),
    } <= edges(graph)
    assert graph.nodes["file:/app/main.py"] == {"kind": "application", "path": "/app/main.py"}
    # a runtime the graph lacked is added as an executable
    assert graph.nodes["file:/usr/local/bin/node"]["kind"] == "executable"
    assert not any(a == "file:/opt/orphan.py" for a, _ in graph.out_edges("file:/opt/orphan.py"))
    assert "file:/srv/index.js" in reachable(graph)


def test_link_applications_keeps_an_existing_node_and_edge() -> None:
    source = "#!/usr/bin/python3\nprint('hi')\n"
    entries, binaries = programs("/usr/bin/python3")
    entries.append(ib.file("app/main.py", source, 0o755))
    scripts = {"/app/main.py": sh_script("/app/main.py", "/usr/bin/python3", "/usr/bin/python3")}
    graph = build(entries, ImageConfig(cmd=["/app/main.py"]), binaries, scripts)
    link_applications(graph, [Application("python", "/app/main.py", "/usr/bin/python3")])
    assert graph.nodes["file:/app/main.py"]["kind"] == "script"  # not renamed
    assert graph.edges["file:/app/main.py", "file:/usr/bin/python3"]["kind"] == "interpreter"
    # the entrypoint edge is relabelled: the image now reaches it as an application
    assert graph.edges[IMAGE, "file:/app/main.py"]["kind"] == "application"
