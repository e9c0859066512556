"""Python applications are judged by what their own .py files use (read with ast), the
interpreter by CPython's WASI port: fixture images holding this machine's real CPython."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from portscan.inspect.apps.find import is_app_source
from portscan.inspect.apps.python import read_python
from portscan.inspect.apps.source import match_uses
from portscan.knowledge import tables as sig
from portscan.model import ScanResult, Target, Verdict
from portscan.scan import scan_image
from tests import imagebuild as ib

SITE = "usr/local/lib/python3.11/site-packages"
PURE_APP = """import json
import threading
from statistics import mean

LOCK = threading.Lock()


def main(path):
    with open(path) as handle, LOCK:
        values = json.load(handle)
    print(mean(values))


main("/data/values.json")
"""
SERVER_APP = """import socketserver

from jobs import worker
from helper import notify


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        self.wfile.write(worker.run(["date"]))
        notify()


socketserver.TCPServer(("", 8000), Handler).serve_forever()
"""
WORKER = """import subprocess as sp
from multiprocessing import Pool


def run(command):
    return sp.Popen(command, stdout=sp.PIPE).communicate()[0]


def fan_out(items):
    with Pool(4) as pool:
        return pool.map(len, items)
"""
HELPER = """import os


def notify():
    os.kill(os.getppid(), 10)
"""
HELPER_RECORD = "helper/__init__.py,,\nhelper-1.0.dist-info/METADATA,,\n"


@pytest.fixture(scope="module")
def cpython() -> bytes:
    """A real CPython ELF of this machine (Debian's python3.11 where installed)."""
    path = Path("/usr/bin/python3.11")
    if not path.exists():
        path = Path(sys.executable).resolve()
    return path.read_bytes()


def scan(tmp: Path, cpython: bytes, app: list[ib.Entry], config: dict) -> ScanResult:
    entries = [
        ib.file("usr/bin/python3.11", cpython, 0o755),
        ib.symlink("usr/bin/python3", "python3.11"),
        ib.file("usr/lib/python3.11/subprocess.py", "# the standard library: never read\n"),
        *app,
    ]
    layout = ib.write_oci_layout(tmp / "img", [ib.Image([entries], config=config)])
    return scan_image(f"oci:{layout}")


def application(result: ScanResult):
    return next(c for c in result.components if c.kind == "application")


def test_a_pure_application_is_as_ready_as_the_interpreter(tmp_path: Path, cpython) -> None:
    config = {"Cmd": ["python3", "main.py"], "WorkingDir": "/srv", "User": "1000"}
    result = scan(tmp_path, cpython, [ib.file("srv/main.py", PURE_APP)], config)
    app = application(result)
    assert app.path == "/srv/main.py" and app.reachable
    # the native interpreter is swapped for CPython's wasip1 build (shim), never ready
    assert app.verdicts[Target.WASIP1] is Verdict.SHIM
    assert {f.rule_id for f in app.findings} == {"PS420"}  # threading.Lock is no thread
    interpreter = next(c for c in result.components if c.path == "/usr/bin/python3.11")
    assert interpreter.runtime == "cpython"
    # its runtime rule and CPython's ports, not its socket imports
    assert {f.rule_id for f in interpreter.findings} == {"PS410", "PS430"}
    assert result.targets[Target.WASIP1].verdict is Verdict.SHIM
    assert "runtime cpython" in app.plan.summary


def test_subprocess_multiprocessing_and_a_server_need_rework(tmp_path: Path, cpython) -> None:
    app_files = [
        ib.file("app/server.py", "#!/usr/bin/python3\n" + SERVER_APP, 0o755),
        ib.file("app/jobs/__init__.py", ""),
        ib.file("app/jobs/worker.py", WORKER),
        ib.file(f"{SITE}/helper/__init__.py", HELPER),
        ib.file(f"{SITE}/helper-1.0.dist-info/METADATA", "Name: helper\nVersion: 1.0\n"),
        ib.file(f"{SITE}/helper-1.0.dist-info/RECORD", HELPER_RECORD),
    ]
    config = {"Entrypoint": ["/app/server.py"], "User": "1000"}
    result = scan(tmp_path, cpython, app_files, config)
    app = application(result)
    assert app.path == "/app/server.py"  # the script itself, run by its #! interpreter
    assert app.verdicts[Target.WASIP1] is Verdict.REWORK
    wasip1 = {f.rule_id: f for f in app.findings if f.target is Target.WASIP1}
    assert {"PS101", "PS102", "PS108", "PS202", "PS420"} <= set(wasip1)
    popen = wasip1["PS102"].evidence[0]
    assert (popen.file, popen.line, popen.symbol) == ("/app/jobs/worker.py", 6, "subprocess.Popen")
    assert "subprocess.Popen in /app/jobs/worker.py:6" in wasip1["PS102"].message
    pool = wasip1["PS101"].evidence[0]
    assert (pool.file, pool.line, pool.symbol) == (
        "/app/jobs/worker.py",
        10,
        "multiprocessing.Pool",
    )
    server = {(e.file, e.line, e.symbol) for e in wasip1["PS202"].evidence}
    assert ("/app/server.py", 14, "socketserver.TCPServer") in server
    kill = wasip1["PS108"].evidence[0]  # in an installed distribution, owned by it
    assert (kill.file, kill.line) == (f"/{SITE}/helper/__init__.py", 5)
    assert kill.package == "pkg:pypi/helper@1.0"
    # processes on Wasmer are untested (unknown), but swapping the interpreter is work (shim)
    assert app.verdicts[Target.WASIX] is Verdict.SHIM
    assert "the application code" in app.plan.summary
    assert result.targets[Target.WASIP1].verdict is Verdict.REWORK
    assert not any(
        e.file.startswith("/usr/lib/python3.11/") for f in app.findings for e in f.evidence
    )


def test_python_dash_m_and_app_arguments(tmp_path: Path, cpython) -> None:
    app_files = [
        ib.file("srv/svc/__init__.py", ""),
        ib.file("srv/svc/__main__.py", "from svc import web\n"),
        ib.file(
            "srv/svc/web.py", "import asyncio\nasyncio.run(asyncio.start_server(None, port=80))\n"
        ),
    ]
    config = {"Cmd": ["python3", "-u", "-m", "svc"], "WorkingDir": "/srv"}
    app = application(scan(tmp_path, cpython, app_files, config))
    assert app.path == "/srv/svc/__main__.py"
    serve = next(f for f in app.findings if f.rule_id == "PS202" and f.target is Target.WASIP1)
    assert (serve.evidence[0].file, serve.evidence[0].line) == ("/srv/svc/web.py", 2)


def test_read_python_resolves_aliases_per_file() -> None:
    facts = read_python(
        b"import os\nfrom os import fork as f\nimport socket\n"
        b"s = socket.socket()\ns.bind(('', 1))\nf()\nos.execvp('x', [])\n"
    )
    assert facts.references["os.fork"] == 6 and facts.references["os.execvp"] == 7
    uses = match_uses(facts, "/a.py", sig.api_table("python-modules.json"))
    assert {(u.api, u.name, u.line) for u in uses} == {
        ("py-fork", "os.fork", 6),
        ("py-subprocess", "os.execvp", 7),
        ("py-server", ".bind()", 5),
    }
    assert (
        match_uses(read_python(b"import json\n"), "/b.py", sig.api_table("python-modules.json"))
        == []
    )


def test_keep_policy_keeps_application_sources_not_the_standard_library() -> None:
    assert is_app_source("/app/main.py")
    assert is_app_source("/usr/local/lib/python3.11/site-packages/flask/app.py")
    assert is_app_source("/usr/lib/python3/dist-packages/yaml/__init__.py")
    assert not is_app_source("/usr/lib/python3.11/subprocess.py")
    assert not is_app_source("/usr/local/lib/python3.12/asyncio/base_events.py")
    assert is_app_source("/app/server.js") and not is_app_source("/app/node_modules/x/i.js")
    assert not is_app_source("/usr/share/nodejs/acorn/dist/acorn.js")


EXTENSION_C = """#include <unistd.h>
int spawn(void) { return fork(); }
"""


def test_a_native_extension_module_is_named_and_its_verdict_flows_in(
    tmp_path: Path, cpython: bytes, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from tests.elfbuild import builder

    so = builder(tmp_path_factory).c("fastfork.so", EXTENSION_C, "-shared", "-fPIC")
    extension = f"{SITE}/_fast.cpython-311-x86_64-linux-gnu.so"
    app_files = [
        ib.file("srv/main.py", "import json\nimport _fast\n\n_fast.spawn()\n"),
        ib.file(extension, so.read_bytes(), 0o755),
    ]
    config = {"Cmd": ["python3", "main.py"], "WorkingDir": "/srv", "User": "1000"}
    result = scan(tmp_path, cpython, app_files, config)
    app = application(result)
    native = [f for f in app.findings if f.rule_id == "PS421" and f.target is Target.WASIP1]
    assert len(native) == 1 and native[0].evidence[0].file == f"/{extension}"
    assert "imports the native extension module _fast" in native[0].message
    edge = (app.id, f"file:/{extension}", "extension")
    assert edge in {(d.source, d.target, d.kind) for d in result.dependencies}
    # the extension's own fork() flows into the application: rework, not the port's shim
    lib = next(c for c in result.components if c.path == f"/{extension}")
    assert lib.verdicts[Target.WASIP1] is Verdict.REWORK
    assert app.verdicts[Target.WASIP1] is Verdict.REWORK
    assert app.inherited[Target.WASIP1] == [lib.id]
