"""Go programs are judged by what they link in of the standard library, never by their
runtime's syscalls: two real programs built with Debian's golang-go, through the pipeline."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from portscan.inspect.apps.go import go_uses, is_stdlib
from portscan.inspect.elf.parse import analyse_elf
from portscan.model import Binary, Runtime, ScanResult, Target, Verdict
from portscan.scan import scan_image
from tests import imagebuild as ib

PURE = """package main

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strings"
)

func main() {
	in, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer in.Close()
	counts := map[string]int{}
	scanner := bufio.NewScanner(in)
	scanner.Split(bufio.ScanWords)
	for scanner.Scan() {
		counts[strings.ToLower(scanner.Text())]++
	}
	words := make([]string, 0, len(counts))
	for word := range counts {
		words = append(words, word)
	}
	sort.Slice(words, func(i, j int) bool { return counts[words[i]] > counts[words[j]] })
	out, err := os.Create(os.Args[2])
	if err != nil {
		os.Exit(1)
	}
	defer out.Close()
	for _, word := range words {
		fmt.Fprintf(out, "%d %s\\n", counts[word], word)
	}
}
"""
SERVER = """package main

import (
	"net"
	"os/exec"
)

func main() {
	listener, err := net.Listen("tcp", ":8080")
	if err != nil {
		panic(err)
	}
	for {
		conn, err := listener.Accept()
		if err != nil {
			continue
		}
		go func(c net.Conn) {
			defer c.Close()
			out, _ := exec.Command("date").Output()
			c.Write(out)
		}(conn)
	}
}
"""


@pytest.fixture(scope="module")
def go_programs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The two programs, built offline with the machine's Go (Debian's golang-go): the
    pure one static (CGO_ENABLED=0), the server dynamic (cgo: net links the C resolver)."""
    if shutil.which("go") is None:
        pytest.fail("the Go toolchain is required (apt-get install golang-go)")
    tmp = tmp_path_factory.mktemp("goprograms")
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOPROXY": "off", "GOTOOLCHAIN": "local"}
    env |= {"GOCACHE": str(tmp / "cache"), "GOPATH": str(tmp / "gopath")}
    built = {}
    for name, source, cgo in (("wordcount", PURE, "0"), ("jobserver", SERVER, "1")):
        src = tmp / name
        src.mkdir()
        (src / "go.mod").write_text(f"module example.com/{name}\n\ngo 1.19\n")
        (src / "main.go").write_text(source)
        build_env = {**env, "CGO_ENABLED": cgo}
        subprocess.run(["go", "build", "-o", name, "."], cwd=src, env=build_env, check=True)
        built[name] = (src / name).read_bytes()
    return built


@pytest.fixture(scope="module")
def result(go_programs: dict[str, bytes], tmp_path_factory: pytest.TempPathFactory) -> ScanResult:
    entries = [ib.file(f"usr/bin/{name}", data, 0o755) for name, data in go_programs.items()]
    config = {"Entrypoint": ["/usr/bin/jobserver"], "User": "1000"}
    layout = tmp_path_factory.mktemp("golayout") / "img"
    ib.write_oci_layout(layout, [ib.Image([entries], config=config)])
    return scan_image(f"oci:{layout}")


def component(result: ScanResult, path: str):
    return next(c for c in result.components if c.path == path)


def test_verdicts_differ_for_the_programs_reasons(result: ScanResult) -> None:
    pure, server = component(result, "/usr/bin/wordcount"), component(result, "/usr/bin/jobserver")
    assert pure.runtime == server.runtime == "go"
    assert pure.verdicts[Target.WASIP1] is Verdict.READY
    assert {f.rule_id for f in pure.findings} == {"PS411"}  # the runtime rule, nothing else
    assert server.verdicts[Target.WASIP1] is Verdict.REWORK
    reworks = {
        f.rule_id: f
        for f in server.findings
        if f.target is Target.WASIP1 and f.verdict is Verdict.REWORK
    }
    assert set(reworks) == {"PS102", "PS202"}  # os/exec; a listener
    exec_names = {e.symbol for e in reworks["PS102"].evidence}
    assert {"os/exec.(*Cmd).Output", "os.StartProcess"} <= exec_names
    listen_names = {e.symbol for e in reworks["PS202"].evidence}
    assert {"net.Listen", "net.(*TCPListener).Accept"} <= listen_names
    assert "net.FileListener" in reworks["PS202"].message  # the wasip1 way to serve
    assert all(e.file == "/usr/bin/jobserver" for f in reworks.values() for e in f.evidence)
    # listening alone is no dialing: the resolver's own dialer is not a finding
    assert not any(f.rule_id == "PS201" for f in server.findings)
    assert "its own calls" in server.plan.summary and "runtime go" in pure.plan.summary
    assert result.targets[Target.WASIP1].verdict is Verdict.REWORK  # the entrypoint serves


def test_neither_verdict_cites_the_go_runtime(result: ScanResult) -> None:
    for path in ("/usr/bin/wordcount", "/usr/bin/jobserver"):
        findings = component(result, path).findings
        evidence = [e for f in findings for e in f.evidence]
        assert not any(e.syscall for e in evidence), path  # no syscall sites
        assert not any((e.symbol or "").startswith(("runtime.", "internal/")) for e in evidence)
        assert not {f.rule_id for f in findings} & {"PS905", "PS110", "PS207", "PS101"}
    # the runtime does issue clone and epoll: they are in the binary, just not judged
    binary = result.binaries["/usr/bin/wordcount"]
    assert binary.syscalls is not None and "clone" in binary.syscalls.names()


def test_go_uses_reads_function_names_only_of_go_binaries() -> None:
    functions = ["main.main", "os/exec.Command", "net.DialUDP", "main._Cfunc_puts"]
    functions += ["net._C2func_getaddrinfo"]  # the cgo resolver of the standard library
    go = Binary(runtime=Runtime("go"), defined_functions=functions)
    found = {(use.api, use.name) for use in go_uses(go, "/app")}
    assert found == {("go-exec", "os/exec.Command"), ("go-cgo", "main._Cfunc_puts")}
    assert go_uses(Binary(defined_functions=functions), "/app") == []  # not Go
    assert is_stdlib("net/http") and not is_stdlib("main") and not is_stdlib("github.com/a/b")


def test_dynamic_go_binaries_list_their_functions(go_programs: dict[str, bytes]) -> None:
    binary = analyse_elf("/usr/bin/jobserver", go_programs["jobserver"])
    assert binary.runtime is not None and binary.runtime.name == "go"
    assert binary.linkage == "dynamic"  # cgo: not a static binary
    assert "os/exec.Command" in binary.defined_functions
