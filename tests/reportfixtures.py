"""Real images for the report tests: gcc-built programs with known needs, on the host's
own glibc, written as OCI layouts and scanned once per session.

- `old`: a server (socket, bind, listen, accept) as entrypoint, a plain hello, a
  ptrace tool; a program whose path and imported symbol hold `<script>` and quotes.
- `new`: the same layers plus one layer that adds a fork-using program.
"""

from __future__ import annotations

import copy
import dataclasses
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from portscan.model import ScanResult
from portscan.scan import scan_image
from tests import imagebuild as ib

PROGRAMS = {
    "hello": '#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n',
    "server": r"""
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
int main(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET; a.sin_port = htons(8080);
    if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 8)) return 1;
    for (;;) { int c = accept(s, 0, 0); if (c >= 0) { write(c, "hi\n", 3); close(c); } }
}
""",
    "tracer": r"""
#include <sys/ptrace.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    return ptrace(PTRACE_ATTACH, argc > 1 ? atoi(argv[1]) : 1, 0, 0) == -1;
}
""",
    "forker": r"""
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    pid_t pid = fork();
    if (pid == 0) { puts("child"); _exit(0); }
    int status = 0;
    waitpid(pid, &status, 0);
    return WEXITSTATUS(status);
}
""",
}
# A symbol name that is markup: GNU as takes quoted symbol names.
WEIRD_SYMBOL = "<script>alert('s')</script>"
WEIRD_PATH = '/opt/<script>alert("p")</script>'
_WEIRD_MAIN = f"""
\t.text
\t.globl main
\t.type main, @function
main:
\tsubq $8, %rsp
\tcall "{WEIRD_SYMBOL}"@PLT
\taddq $8, %rsp
\tret
\t.section .note.GNU-stack,"",@progbits
"""
_WEIRD_LIB = f"""
\t.text
\t.globl "{WEIRD_SYMBOL}"
\t.type "{WEIRD_SYMBOL}", @function
"{WEIRD_SYMBOL}":
\txorl %eax, %eax
\tret
\t.section .note.GNU-stack,"",@progbits
"""
LIBC = Path("/usr/lib/x86_64-linux-gnu/libc.so.6")
LOADER = Path("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")


def _gcc(tmp: Path, name: str, source: str, suffix: str, *flags: str) -> Path:
    src = tmp / f"{name}{suffix}"
    src.write_text(source)
    out = tmp / name
    subprocess.run(["gcc", "-O1", "-o", str(out), str(src), *flags], check=True, cwd=tmp)
    return out


def build_programs(tmp: Path) -> dict[str, bytes]:
    """Compile the programs; the weird one links against a library the image lacks."""
    if shutil.which("gcc") is None or not LIBC.exists():
        pytest.fail("gcc and glibc are needed to build the report fixtures (apt-get install gcc)")
    out = {name: _gcc(tmp, name, src, ".c").read_bytes() for name, src in PROGRAMS.items()}
    _gcc(tmp, "libweird.so", _WEIRD_LIB, ".s", "-shared")
    out["weird"] = _gcc(tmp, "weird", _WEIRD_MAIN, ".s", f"-L{tmp}", "-lweird").read_bytes()
    return out


def base_layers(bins: dict[str, bytes]) -> list[list[ib.Entry]]:
    platform = [
        ib.directory("usr"),
        ib.directory("usr/lib"),
        ib.directory("usr/lib/x86_64-linux-gnu"),
        ib.file("usr/lib/x86_64-linux-gnu/libc.so.6", LIBC.read_bytes(), 0o755),
        ib.file("usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", LOADER.read_bytes(), 0o755),
        ib.directory("usr/lib64"),
        ib.symlink(
            "usr/lib64/ld-linux-x86-64.so.2", "../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
        ),
        ib.symlink("lib64", "usr/lib64"),
        ib.symlink("lib", "usr/lib"),
        ib.directory("etc"),
        ib.file("etc/ld.so.conf", "include /etc/ld.so.conf.d/*.conf\n"),
        ib.directory("etc/ld.so.conf.d"),
        ib.file("etc/ld.so.conf.d/x86_64-linux-gnu.conf", "/usr/lib/x86_64-linux-gnu\n"),
        *_dpkg("libc6"),
    ]
    apps = [
        ib.directory("usr/bin"),
        ib.file("usr/bin/hello", bins["hello"], 0o755),
        ib.file("usr/bin/server", bins["server"], 0o755),
        ib.file("usr/bin/tracer", bins["tracer"], 0o755),
        ib.directory("opt"),
        ib.directory('opt/<script>alert("p")<'),
        ib.file(WEIRD_PATH.lstrip("/"), bins["weird"], 0o755),
        *_dpkg("libc6", "fixture-tools"),
    ]
    return [platform, apps]


PACKAGES = {  # name -> (version, files): what the fixture's dpkg database records
    "libc6": ("2.36-9+deb12u14", ["/usr/lib/x86_64-linux-gnu/libc.so.6"]),
    "fixture-tools": ("1.0-1", ["/usr/bin/hello", "/usr/bin/server"]),
}


def _dpkg(*names: str) -> list[ib.Entry]:
    """The dpkg database after installing `names`: the status file (rewritten whole by
    each layer, as apt does) and the file list of the last one."""
    status = "".join(
        f"Package: {n}\nStatus: install ok installed\nArchitecture: amd64\n"
        f"Version: {PACKAGES[n][0]}\n\n"
        for n in names
    )
    return [
        ib.directory("var"),
        ib.directory("var/lib"),
        ib.directory("var/lib/dpkg"),
        ib.directory("var/lib/dpkg/info"),
        ib.file("var/lib/dpkg/status", status),
        ib.file(f"var/lib/dpkg/info/{names[-1]}.list", "\n".join(PACKAGES[names[-1]][1]) + "\n"),
    ]


CONFIG = {
    "Entrypoint": ["/usr/bin/server"],
    "Env": ["PATH=/usr/local/bin:/usr/bin:/bin"],
    "ExposedPorts": {"8080/tcp": {}},
    "User": "1000",
}
HISTORY = ["COPY glibc from the build host", "COPY gcc-built programs"]


@dataclass
class Scans:
    old_layout: Path
    new_layout: Path
    old: ScanResult
    new: ScanResult


_CACHE: dict[str, Scans] = {}


def fixture_scans(factory: pytest.TempPathFactory) -> Scans:
    """Build both images and scan them, once per test session."""
    if "scans" not in _CACHE:
        bins = build_programs(factory.mktemp("report-bins"))
        base = base_layers(bins)
        added = [
            ib.directory("usr/local"),
            ib.directory("usr/local/bin"),
            ib.file("usr/local/bin/forker", bins["forker"], 0o755),
        ]
        old = ib.Image(base, config=CONFIG, history=HISTORY)
        new = ib.Image([*base, added], config=CONFIG, history=[*HISTORY, "COPY forker"])
        root = factory.mktemp("report-images")
        old_layout = ib.write_oci_layout(root / "old", [old])
        new_layout = ib.write_oci_layout(root / "new", [new])
        _CACHE["scans"] = Scans(
            old_layout,
            new_layout,
            scan_image(f"oci:{old_layout}"),
            scan_image(f"oci:{new_layout}"),
        )
    return _CACHE["scans"]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """portscan as a user runs it, in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "portscan", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def synthetic(result: ScanResult, count: int) -> ScanResult:
    """`result` grown to `count` components: copies of its own (their findings and
    verdicts kept) under /synthetic/N/, not reachable, spread over its layers, so that
    the report of a large image can be timed and driven in a browser."""
    grown = copy.copy(result)
    grown.components = list(result.components)
    source = [c for c in result.components if c.kind != "platform"]
    layers = [layer.index for layer in result.image.layers] or [None]
    for n in range(count - len(grown.components)):
        c = source[n % len(source)]
        path = f"/synthetic/{n // len(source)}{c.path}"
        grown.components.append(
            dataclasses.replace(
                c, id=f"file:{path}", path=path, reachable=False, layer=layers[n % len(layers)]
            )
        )
    return grown
