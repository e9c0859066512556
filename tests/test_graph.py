"""The dependency graph of real images: entrypoint -> scripts -> ELF -> libraries -> packages."""

from __future__ import annotations

from pathlib import Path

from portscan.inspect.commands import exec_targets, shell_commands
from portscan.model import IMAGE, ScanResult
from portscan.scan import scan_image
from tests import imagebuild as ib


def edges(result: ScanResult) -> set[tuple[str, str, str]]:
    return {(d.source, d.target, d.kind) for d in result.dependencies}


def test_fixture_graph_follows_wrapper_script_and_runpath(oci_layout: Path) -> None:
    result = scan_image(f"oci:{oci_layout}")
    graph = edges(result)
    assert (IMAGE, "file:/usr/local/bin/run.sh", "entrypoint") in graph
    # the wrapper `exec /usr/bin/hello "$@"`, and the fixture has no /bin/sh
    assert ("file:/usr/local/bin/run.sh", "file:/usr/bin/hello", "exec") in graph
    assert ("file:/usr/local/bin/run.sh", "missing:/bin/sh", "interpreter") in graph
    # hello's RUNPATH is $ORIGIN/../lib: /usr/bin/../lib = /usr/lib
    assert ("file:/usr/bin/hello", "file:/usr/lib/libgreet.so.1", "needed") in graph
    assert ("file:/usr/lib/libgreet.so.1", "missing:libc.so.6", "needed") in graph
    assert "file:/usr/lib/libgreet.so.1" in result.reachable
    # the static binary is in the image but nothing starts it
    assert "file:/usr/local/bin/hello-static" not in result.reachable
    assert result.binaries["/usr/local/bin/hello-static"].linkage == "static"


def test_shell_form_and_path_search(tmp_path: Path, native_bins: dict[str, bytes]) -> None:
    image = ib.Image(
        [
            [
                ib.file("bin/sh", native_bins["hello-static"], 0o755),
                ib.file("opt/app/bin/server", native_bins["hello-static"], 0o755),
                ib.file("opt/app/bin/notexec", "data"),
            ]
        ],
        config={
            "Cmd": ["/bin/sh", "-c", "FOO=1 exec server --port 80 && notexec"],
            "Env": ["PATH=/opt/app/bin:/bin"],
        },
    )
    layout = ib.write_oci_layout(tmp_path / "shell", [image])
    graph = edges(scan_image(f"oci:{layout}"))
    assert (IMAGE, "file:/bin/sh", "entrypoint") in graph
    assert ("file:/bin/sh", "file:/opt/app/bin/server", "exec") in graph
    assert ("file:/bin/sh", "file:/opt/app/bin/notexec", "exec") in graph


def test_entrypoint_wrapper_passes_cmd_through_gosu(tmp_path: Path, native_bins) -> None:
    wrapper = '#!/bin/sh\nset -e\nexec gosu app "$@"\n'
    image = ib.Image(
        [
            [
                ib.file("bin/sh", native_bins["hello-static"], 0o755),
                ib.file("usr/local/bin/gosu", native_bins["hello-static"], 0o755),
                ib.file("usr/local/bin/entry.sh", wrapper, 0o755),
                ib.file("usr/bin/postgres", native_bins["hello-static"], 0o755),
            ]
        ],
        config={
            "Entrypoint": ["entry.sh"],
            "Cmd": ["postgres"],
            "Env": ["PATH=/usr/local/bin:/usr/bin"],
        },
    )
    layout = ib.write_oci_layout(tmp_path / "gosu", [image])
    graph = edges(scan_image(f"oci:{layout}"))
    assert (IMAGE, "file:/usr/local/bin/entry.sh", "entrypoint") in graph
    assert ("file:/usr/local/bin/entry.sh", "file:/bin/sh", "interpreter") in graph
    assert ("file:/usr/local/bin/entry.sh", "file:/usr/bin/postgres", "exec") in graph


def test_shell_and_exec_parsing() -> None:
    assert shell_commands("a -x && b 'c d'; e | f # g") == [["a", "-x"], ["b", "c d"], ["e"], ["f"]]
    script = 'set -e\nif [ "$1" = x ]; then\n  exec gosu app "$@"\nfi\nexec "$@"\n'
    assert list(exec_targets(script)) == [["gosu", "app", "$@"], ["$@"]]
