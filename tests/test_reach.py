"""Reachability on real Debian libraries (graph/reach.py, docs/reachability.md).

Small C programs are linked against the machine's zlib, liblzma, libsystemd and libcurl
(CI installs their -dev packages) and put, with every library `ldd` names, into one root
filesystem that is scanned end to end (`dir:`). Each pair calls a harmless function of a
library and its counterpart that really starts threads or opens connections: the first
must not be judged threaded or networked, the second must, with the call chain the
source shows in its evidence.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import networkx as nx
import pytest

from portscan.graph import reach
from portscan.inspect.elf.callgraph import NO_FUNCTIONS, CallGraph
from portscan.inspect.elf.program import analyse_elf_facts
from portscan.lint.components import lint_binary
from portscan.lint.findings import Where
from portscan.model import Component, Finding, ScanResult, Target, chain_text
from portscan.scan import ScanOptions, scan_image

PROGRAMS = {
    "zcompress": (
        "-lz",
        r"""#include <zlib.h>
int main(void) { unsigned char out[64]; uLongf n = sizeof out;
  return compress(out, &n, (const Bytef *)"hello", 5); }""",
    ),
    "xz-single": (
        "-llzma",
        r"""#include <lzma.h>
int main(void) { uint8_t out[256]; size_t n = 0;
  return lzma_easy_buffer_encode(6, LZMA_CHECK_CRC64, NULL, (const uint8_t *)"hi", 2,
                                 out, &n, sizeof out); }""",
    ),
    "xz-threads": (
        "-llzma",
        r"""#include <lzma.h>
int main(void) { lzma_stream s = LZMA_STREAM_INIT; lzma_mt mt = {0};
  mt.threads = 2; mt.preset = 6; mt.check = LZMA_CHECK_CRC64;
  return lzma_stream_encoder_mt(&s, &mt); }""",
    ),
    "notify": (
        "-lsystemd",
        r"""#include <systemd/sd-daemon.h>
int main(void) { return sd_notify(0, "READY=1"); }""",
    ),
    "escape": (
        "-lcurl",
        r"""#include <curl/curl.h>
int main(void) { char *e = curl_easy_escape(NULL, "a b", 3); curl_free(e); return 0; }""",
    ),
    "fetch": (
        "-lcurl",
        r"""#include <curl/curl.h>
int main(void) { CURL *c = curl_easy_init(); curl_easy_setopt(c, CURLOPT_URL, "http://x");
  return curl_easy_perform(c); }""",
    ),
}


def _libraries(program: Path) -> list[Path]:
    """The files `ldd` says the program loads (the loader included)."""
    out = subprocess.run(["ldd", str(program)], capture_output=True, text=True, check=True)
    found = []
    for line in out.stdout.splitlines():
        words = line.split()
        path = words[2] if "=>" in words and len(words) > 2 else words[0]
        if path.startswith("/"):
            found.append(Path(path))
    return found


def _root(base: Path) -> Path:
    """An empty merged-/usr root filesystem, as Debian's."""
    root = base / "root"
    for directory in ("usr/bin", "usr/lib", "usr/lib64"):
        (root / directory).mkdir(parents=True)
    (root / "lib").symlink_to("usr/lib")
    (root / "lib64").symlink_to("usr/lib64")
    shutil.copytree("/etc/ld.so.conf.d", root / "etc/ld.so.conf.d")  # the multiarch dirs
    shutil.copyfile("/etc/ld.so.conf", root / "etc/ld.so.conf")
    return root


def _install(root: Path, program: Path) -> None:
    """Copy every library the program loads to where it lives under /usr."""
    for library in _libraries(program):
        relative = str(library).lstrip("/")
        if not relative.startswith("usr/"):
            relative = "usr/" + relative
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            shutil.copyfile(library.resolve(), target)


def build_programs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root filesystem holding PROGRAMS, built against the Debian libraries they
    link, and those libraries (tests/test_walks.py uses it too)."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    build = tmp_path_factory.mktemp("reach-build")
    root = _root(tmp_path_factory.mktemp("reach-root"))
    for name, (flag, source) in PROGRAMS.items():
        (build / f"{name}.c").write_text(source + "\n")
        program = root / "usr/bin" / name
        command = ["gcc", "-O1", "-o", str(program), str(build / f"{name}.c"), flag]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            pytest.fail(f"cannot build {name} ({flag}: install its -dev package): {done.stderr}")
        _install(root, program)
    return root


@pytest.fixture(scope="module")
def programs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_programs(tmp_path_factory)


@pytest.fixture(scope="module")
def scanned(programs: Path) -> ScanResult:
    return scan_image(f"dir:{programs}")


def test_walks_answered_by_a_frame_that_does_not_unpickle_are_made_here(
    programs: Path, scanned: ScanResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The walk helper's first batch answered by a frame that cannot be read (a garbled
    stream; test hook PORTSCAN_TEST_GARBLE_WALKS): the helper is stopped and the walks
    are made in this process, to the same result (was: an internal error)."""
    monkeypatch.setenv("PORTSCAN_TEST_GARBLE_WALKS", "1")
    monkeypatch.setattr(reach, "_REACH_CACHE", {})  # walks made anew, not the first scan's
    garbled = scan_image(f"dir:{programs}")
    assert [(c.path, c.verdicts, c.findings) for c in garbled.components] == [
        (c.path, c.verdicts, c.findings) for c in scanned.components
    ]


def _component(result: ScanResult, path: str) -> Component:
    return next(c for c in result.components if c.path == path)


def _findings(result: ScanResult, path: str, rule_id: str) -> list[Finding]:
    component = _component(result, path)
    return [f for f in component.findings if f.rule_id == rule_id and f.target is Target.WASIP1]


def _chain(finding: Finding, symbol: str) -> tuple[str, ...]:
    evidence = next(e for e in finding.evidence if e.symbol.split("@")[0] == symbol)
    return tuple(step.function for step in evidence.chain)


def test_programs_are_judged_on_what_they_reach(scanned: ScanResult) -> None:
    for name in PROGRAMS:
        assert _component(scanned, f"/usr/bin/{name}").judged_on == "reach"


def test_compress_and_single_threaded_xz_are_not_threaded(scanned: ScanResult) -> None:
    assert not _findings(scanned, "/usr/bin/zcompress", "PS110")
    assert not _findings(scanned, "/usr/bin/xz-single", "PS110")


def test_threaded_xz_is_threaded_through_its_encoder(scanned: ScanResult) -> None:
    (threads,) = _findings(scanned, "/usr/bin/xz-threads", "PS110")
    chain = _chain(threads, "pthread_create")
    assert chain[0] == "" and chain[1] == "lzma_stream_encoder_mt"
    assert chain[-1] == "pthread_create"


def test_sd_notify_is_a_client_not_a_server_nor_a_namespace_switcher(
    scanned: ScanResult,
) -> None:
    notify = "/usr/bin/notify"
    for rule_id in ("PS202", "PS618", "PS110"):  # listen/accept, setns, threads
        assert not _findings(scanned, notify, rule_id), rule_id
    (client,) = _findings(scanned, notify, "PS201")  # it does send to a socket
    assert _chain(client, "sendmsg")[1:] == ("sd_notify", "sd_pid_notify_with_fds", "sendmsg")
    (library,) = [
        c for c in scanned.components if c.path.rsplit("/", 1)[-1].startswith("libsystemd")
    ]
    latent = [f for f in library.findings if f.rule_id == "PS908"]
    assert latent and "setns" in latent[0].evidence[0].detail  # listed, never deciding
    assert not [f for f in library.findings if f.rule_id == "PS618"]


def test_curl_escape_opens_no_connection_perform_does(scanned: ScanResult) -> None:
    """curl_easy_escape reaches no socket function of libcurl; what escape reaches of
    the network comes from its libraries' constructors (Kerberos's, through function
    pointers), and its chains say so."""
    assert not _findings(scanned, "/usr/bin/escape", "PS202")
    assert not _findings(scanned, "/usr/bin/escape", "PS110")  # krb5's weak pthread test
    for finding in _findings(scanned, "/usr/bin/escape", "PS201"):
        for evidence in finding.evidence:
            functions = [step.function for step in evidence.chain]
            assert "curl_easy_escape" not in functions and "<constructors>" in functions
    (client,) = _findings(scanned, "/usr/bin/fetch", "PS201")
    chains = [e.chain for e in client.evidence if e.chain]
    through = [c for c in chains if c[1].function == "curl_easy_perform"]
    assert through, [chain_text(c) for c in chains]
    assert chain_text(through[0]).startswith("fetch → curl_easy_perform (libcurl")
    assert _findings(scanned, "/usr/bin/fetch", "PS202")  # libcurl binds and listens (FTP)


def test_without_reachability_every_library_function_counts(tmp_path: Path) -> None:
    """The control: the same programs judged whole-library are threaded and networked,
    so the tests above test reachability and not the inputs."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    root = _root(tmp_path)
    flag, source = PROGRAMS["escape"]
    (tmp_path / "escape.c").write_text(source + "\n")
    program = root / "usr/bin/escape"
    subprocess.run(["gcc", "-o", str(program), str(tmp_path / "escape.c"), flag], check=True)
    _install(root, program)
    whole = scan_image(f"dir:{root}", ScanOptions(reach=False))
    escape = _component(whole, "/usr/bin/escape")
    assert escape.judged_on == ""
    assert (
        escape.verdicts[Target.WASIP1].rank
        <= _component(scan_image(f"dir:{root}"), "/usr/bin/escape").verdicts[Target.WASIP1].rank
    )
    libcurl = next(c for c in whole.components if "libcurl" in c.path)
    assert any(f.rule_id == "PS201" for f in libcurl.findings)


DEAD_FORK = r"""#include <stdio.h>
#include <unistd.h>
pid_t never_called(void) { return fork(); }
int main(void) { puts("hello"); return 0; }
"""
LIVE_FORK = r"""#include <stdio.h>
#include <unistd.h>
#include <sys/wait.h>
int main(void) { pid_t p = fork(); if (p == 0) _exit(0); waitpid(p, 0, 0); return 0; }
"""


@pytest.mark.parametrize(("source", "forks"), [(DEAD_FORK, False), (LIVE_FORK, True)])
def test_static_program_keeps_only_the_syscall_sites_its_entry_reaches(
    tmp_path: Path, source: str, forks: bool
) -> None:
    """A stripped static program is judged by its syscall sites: fork's `clone` in a
    function nothing calls is set apart as unreached; called from main it stays."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    (tmp_path / "p.c").write_text(source)
    program = tmp_path / "p"
    done = subprocess.run(
        ["gcc", "-static", "-s", "-O1", "-o", str(program), str(tmp_path / "p.c")],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"no static C library: {done.stderr.strip()[:200]}")
    binary = analyse_elf_facts("/usr/bin/p", program.read_bytes())
    report = binary.syscalls
    assert binary.stripped and report is not None and report.reach == "complete"
    reached = {s.name for s in report.resolved}
    unreached = {s.name for s in report.unreached}
    assert ("clone" in reached) is forks
    assert ("clone" in unreached) is not forks
    findings = lint_binary(binary, Where("/usr/bin/p", None, None), nx.DiGraph(), {})
    assert any(f.rule_id == "PS101" for f in findings) is forks  # fork: creating processes


LIBX = r"""#include <stdio.h>
#include <unistd.h>
int x_print(void) { return puts("x"); }
int x_spawn(void) { return (int)fork(); }
"""
LOOKS_UP = r"""#include <dlfcn.h>
int x_print(void);
int main(int argc, char **argv) {
  x_print();
  if (argc > 5) { int (*f)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "x_spawn"); return f(); }
  return 0;
}
"""
CALLS_ONLY = r"""int x_print(void);
int main(void) { return x_print(); }
"""


def _libx_programs(tmp_path: Path) -> Path:
    """A root with libx and two programs linking it: looks-up (names x_spawn to dlsym)
    and calls-only (calls x_print)."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    root = _root(tmp_path)
    lib = root / "usr/lib/libx.so.1"
    (tmp_path / "libx.c").write_text(LIBX)
    subprocess.run(
        [
            "gcc",
            "-shared",
            "-fPIC",
            "-Wl,-soname,libx.so.1",
            "-o",
            str(lib),
            str(tmp_path / "libx.c"),
        ],
        check=True,
    )
    for name, source in (("looks-up", LOOKS_UP), ("calls-only", CALLS_ONLY)):
        (tmp_path / f"{name}.c").write_text(source)
        program = root / "usr/bin" / name
        command = ["gcc", "-o", str(program), str(tmp_path / f"{name}.c"), f"-L{root}/usr/lib",
                   "-Wl,--no-as-needed", "-l:libx.so.1", "-ldl"]  # fmt: skip
        subprocess.run(command, check=True)
        _install(root, program)  # the C library; ldd does not find libx outside the root
    return root


def test_a_name_looked_up_with_dlsym_is_a_root(tmp_path: Path) -> None:
    """x_spawn (fork) is reached by the program that names it to dlsym, not by the one
    that only calls x_print: there fork stays latent in libx."""
    result = scan_image(f"dir:{_libx_programs(tmp_path)}")
    (fork,) = _findings(result, "/usr/bin/looks-up", "PS101")
    assert "dlsym(x_spawn)" in _chain(fork, "fork")
    assert not _findings(result, "/usr/bin/calls-only", "PS101")


def test_names_are_read_from_a_program_without_a_call_graph(tmp_path: Path) -> None:
    """A program whose own call graph cannot be built (stripped, its unwind tables
    removed: no function starts) is judged whole, and so are the names it hands to
    dlsym: its read-only strings are read all the same (from its headers and data)."""
    if shutil.which("objcopy") is None:
        pytest.skip("objcopy is not installed")
    root = _libx_programs(tmp_path)
    program = root / "usr/bin/looks-up"
    subprocess.run(["strip", str(program)], check=True)
    sections = ("--remove-section", ".eh_frame", "--remove-section", ".eh_frame_hdr")
    subprocess.run(["objcopy", *sections, str(program)], check=True)
    assert CallGraph.from_bytes(program.read_bytes()).status == NO_FUNCTIONS
    result = scan_image(f"dir:{root}")
    (fork,) = _findings(result, "/usr/bin/looks-up", "PS101")
    assert "dlsym(x_spawn)" in _chain(fork, "fork")
