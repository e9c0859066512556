"""Verdicts from the whole pipeline on images holding real gcc-built programs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from portscan.model import ScanResult, Target, Verdict
from portscan.scan import ScanOptions, scan_image
from tests import imagebuild as ib

PURE = r"""
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv) {
    FILE *f = fopen(argc > 1 ? argv[1] : "/data/in.txt", "r");
    char line[256]; size_t n = 0;
    while (f && fgets(line, sizeof line, f)) n += strlen(line);
    printf("%zu\n", n);
    return f ? fclose(f) : 1;
}
"""
SERVER = r"""
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0}; a.sin_family = AF_INET; a.sin_port = htons(8080);
    bind(s, (struct sockaddr *)&a, sizeof a); listen(s, 16);
    for (;;) {
        int c = accept(s, 0, 0);
        if (fork() == 0) { write(c, "hi\n", 3); _exit(0); }
        close(c); waitpid(-1, 0, WNOHANG);
    }
}
"""


@pytest.fixture(scope="module")
def programs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    tmp = tmp_path_factory.mktemp("programs")
    built = {}
    for name, source in (("pure", PURE), ("server", SERVER)):
        (tmp / f"{name}.c").write_text(source)
        for suffix, flags in (("", []), (".static", ["-static"])):
            out = tmp / f"{name}{suffix}"
            subprocess.run(
                ["gcc", "-O2", "-o", str(out), str(tmp / f"{name}.c"), *flags], check=True
            )
            built[f"{name}{suffix}"] = out.read_bytes()
    return built


def scan(tmp_path: Path, files: dict[str, bytes], config: dict) -> ScanResult:
    entries = [ib.file(f"usr/bin/{name}", data, 0o755) for name, data in files.items()]
    layout = ib.write_oci_layout(tmp_path / "img", [ib.Image([entries], config=config)])
    return scan_image(f"oci:{layout}", ScanOptions())


def component(result: ScanResult, path: str):
    return next(c for c in result.components if c.path == path)


def test_pure_program_is_ready_and_server_needs_rework(tmp_path: Path, programs) -> None:
    result = scan(
        tmp_path,
        {"pure": programs["pure"], "server": programs["server"]},
        {"Entrypoint": ["/usr/bin/pure"], "User": "1000"},
    )
    pure, server = component(result, "/usr/bin/pure"), component(result, "/usr/bin/server")
    assert pure.verdicts[Target.WASIP1] is Verdict.READY
    assert pure.plan.path == "recompile-wasip1"
    assert server.verdicts[Target.WASIP1] is Verdict.REWORK
    assert server.verdicts[Target.WASIX] is Verdict.READY  # fork and sockets on WASIX
    rules = {f.rule_id for f in server.findings if f.target is Target.WASIP1}
    assert {"PS101", "PS501", "PS504"} <= rules  # fork; listening server; fork per connection
    fork = next(f for f in server.findings if f.rule_id == "PS101" and f.target is Target.WASIP1)
    assert fork.evidence[0].file == "/usr/bin/server"
    assert fork.evidence[0].symbol.startswith("fork@GLIBC")
    # the image runs `pure`: the server is in the image but not reached
    assert result.targets[Target.WASIP1].verdict is Verdict.READY
    assert not server.reachable and pure.reachable
    # glibc is missing from this tiny image: not a finding, wasi-libc replaces it
    assert not any(f.rule_id == "PS902" for f in pure.findings)


def test_entrypoint_decides_the_image_verdict(tmp_path: Path, programs) -> None:
    result = scan(
        tmp_path,
        {"server": programs["server"]},
        {"Entrypoint": ["server"], "Env": ["PATH=/usr/bin"], "ExposedPorts": {"8080/tcp": {}}},
    )
    summary = result.targets[Target.WASIP1]
    assert summary.verdict is Verdict.REWORK and summary.score <= 50
    assert {"PS101", "PS510"} <= {f.rule_id for f in summary.blockers} | {
        f.rule_id for f in result.image_findings
    }
    assert result.targets[Target.WASIX].verdict is Verdict.READY


@pytest.mark.parametrize("name", ["pure", "server"])
def test_static_and_dynamic_builds_agree(tmp_path: Path, programs, name: str) -> None:
    result = scan(
        tmp_path, {name: programs[name], f"{name}.static": programs[f"{name}.static"]}, {}
    )
    dynamic = component(result, f"/usr/bin/{name}")
    static = component(result, f"/usr/bin/{name}.static")
    assert static.verdicts == dynamic.verdicts
    assert any(f.evidence and "linked in" in f.evidence[0].detail for f in static.findings)


def test_nothing_judged_is_not_ready(tmp_path: Path) -> None:
    layout = ib.write_oci_layout(
        tmp_path / "data", [ib.Image([[ib.file("srv/data.txt", "x")]], config={"User": "1"})]
    )
    result = scan_image(f"oci:{layout}")
    assert {s.verdict for s in result.targets.values()} == {Verdict.NA}
