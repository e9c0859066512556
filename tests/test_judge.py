"""Judging symbols, paths and syscall sites, on real gcc-built binaries and on the ground truth."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from portscan.knowledge.platform import parse_name
from portscan.lint import symbols as judge
from portscan.model import Evidence, Finding, Target, Verdict
from portscan.score import verdicts_by_target

REPO = Path(__file__).resolve().parent.parent
GROUNDTRUTH = REPO / "benchmarks" / "groundtruth"
ACCURACY_FLOOR = 0.97  # 39/39 with the labels' wasi-libc date (poll_select: runtime-semantics.json)

FORK_EXEC_C = r"""
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
    pid_t pid = fork();
    if (pid == 0) { execvp(argv[1], argv + 1); _exit(127); }
    int status = 0;
    waitpid(pid, &status, 0);
    printf("%d\n", WEXITSTATUS(status));
    return 0;
}
"""
PURE_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv) {
    char *copy = strdup(argc > 1 ? argv[1] : "x");
    printf("%zu %s\n", strlen(copy), getenv("HOME") ? "home" : "none");
    free(copy);
    return 0;
}
"""
SIGNAL_C = r"""
#include <signal.h>
#include <stdio.h>
static volatile sig_atomic_t got;
static void handler(int sig) { got = sig; }
int main(void) {
    signal(SIGUSR1, handler);
    raise(SIGUSR1);
    printf("%d\n", (int)got);
    return 0;
}
"""


def _imports(tmp: Path, name: str, source: str) -> list[str]:
    """Build with gcc -O2 and read the undefined dynamic symbols, versions kept."""
    if shutil.which("gcc") is None or shutil.which("nm") is None:
        pytest.fail("gcc and nm are required (apt-get install gcc binutils)")
    src, out = tmp / f"{name}.c", tmp / name
    src.write_text(source)
    subprocess.run(["gcc", "-O2", "-o", str(out), str(src)], check=True)
    text = subprocess.run(
        ["nm", "-D", "--undefined-only", str(out)], check=True, capture_output=True, text=True
    ).stdout
    return [line.split()[-1] for line in text.splitlines() if line.strip()]


def _by_target(findings: list[Finding]) -> dict[Target, Verdict]:
    return verdicts_by_target(findings)


def _rules(findings: list[Finding], target: Target) -> dict[str, Verdict]:
    return {f.rule_id: f.verdict for f in findings if f.target is target}


def test_fork_exec_program(tmp_path: Path) -> None:
    symbols = _imports(tmp_path, "forkexec", FORK_EXEC_C)
    assert any(s.startswith("fork@GLIBC_") for s in symbols)
    findings = judge.judge_symbols(symbols, file="usr/bin/forkexec", assume_libc=False)
    verdicts = _by_target(findings)
    assert verdicts[Target.WASIP1] is Verdict.REWORK
    assert verdicts[Target.WASIP2] is Verdict.REWORK
    assert verdicts[Target.WASIX] is Verdict.READY
    p1 = _rules(findings, Target.WASIP1)
    assert p1["PS101"] is p1["PS102"] is p1["PS103"] is Verdict.REWORK
    assert p1["PS600"] is Verdict.READY  # printf and friends
    fork = next(f for f in findings if f.rule_id == "PS101" and f.target is Target.WASIP1)
    assert fork.capability == "process-fork"
    assert [e.symbol for e in fork.evidence] == [s for s in symbols if s.startswith("fork@")]
    assert fork.evidence[0].file == "usr/bin/forkexec"


def test_pure_program_is_ready_everywhere(tmp_path: Path) -> None:
    symbols = _imports(tmp_path, "pure", PURE_C)
    findings = judge.judge_symbols(symbols, file="pure", assume_libc=False)
    assert set(_by_target(findings).values()) == {Verdict.READY}
    ignored = {"__libc_start_main", "__gmon_start__", "__cxa_finalize"}
    # ready functions share one evidence whose detail lists them
    texts = [f"{f.message} {e.symbol or ''} {e.detail}" for f in findings for e in f.evidence]
    assert not any(name in text for text in texts for name in ignored)
    assert all(len(f.evidence) == 1 for f in findings if f.verdict is Verdict.READY)


def test_signal_raise_program_needs_the_signal_emulation(tmp_path: Path) -> None:
    findings = judge.judge_symbols(_imports(tmp_path, "sig", SIGNAL_C), file="sig")
    assert _by_target(findings)[Target.WASIP1] is Verdict.SHIM
    shim = next(f for f in findings if f.target is Target.WASIP1 and f.verdict is Verdict.SHIM)
    assert shim.rule_id == "PS107"
    assert "-D_WASI_EMULATED_SIGNAL" in shim.message and "-lwasi-emulated-signal" in shim.message
    assert _by_target(findings)[Target.WASIX] is Verdict.READY


@pytest.mark.parametrize(
    ("symbol", "function"),
    [
        ("__printf_chk@GLIBC_2.3.4", "printf"),
        ("__isoc99_sscanf@GLIBC_2.7", "__isoc99_sscanf"),  # wasi-libc defines it: kept
        ("__isoc23_strtol@GLIBC_2.38", "strtol"),
        ("open64@GLIBC_2.2.5", "open"),
        ("readdir64", "readdir"),
        ("__xstat@GLIBC_2.2.5", "stat"),
        ("_setjmp@GLIBC_2.2.5", "setjmp"),
        ("__sigsetjmp@GLIBC_2.2.5", "sigsetjmp"),
        ("__register_atfork@GLIBC_2.3.2", "pthread_atfork"),
        ("__res_init@GLIBC_2.2.5", "res_init"),
        ("fopen64@GLIBC_2.2.5", "fopen64"),  # wasi-libc defines it: kept
        ("printf", "printf"),
    ],
)
def test_glibc_spellings_are_normalised(symbol: str, function: str) -> None:
    name = parse_name(symbol)
    assert name.function == function
    assert name.ignored is None


def test_start_up_symbols_and_foreign_versions_are_skipped() -> None:
    for symbol in ("__libc_start_main@GLIBC_2.34", "__gmon_start__", "_ITM_registerTMCloneTable"):
        assert parse_name(symbol).ignored
    assert judge.judge_symbols(["SSL_new@OPENSSL_3.0.0", "__gmon_start__"], file="x") == []


def test_unknown_names_depend_on_what_the_caller_knows() -> None:
    unknown = judge.judge_symbols(["frobnicate"], file="x", assume_libc=False)
    assert {f.rule_id for f in unknown} == {"PS903"}
    assert set(_by_target(unknown).values()) == {Verdict.UNKNOWN}
    from_libc = judge.judge_symbols(["frobnicate@GLIBC_2.2.5"], file="x")
    assert _rules(from_libc, Target.WASIP1) == {"PS601": Verdict.REWORK}
    assert _rules(from_libc, Target.WASIX) == {"PS601": Verdict.REWORK}  # wasix-libc's list
    musl = judge.judge_symbols(["frobnicate", "printf"], file="x")  # no versions at all
    assert _rules(musl, Target.WASIP1)["PS601"] is Verdict.REWORK
    mixed = judge.judge_symbols(["printf@GLIBC_2.2.5", "jv_parse"], file="x")  # glibc + a lib
    assert _rules(mixed, Target.WASIP1) == {"PS600": Verdict.READY, "PS903": Verdict.UNKNOWN}


def test_bookkeeping_alone_is_judged_as_a_plain_function() -> None:
    """pthread_join with no pthread_create has no thread to join: the threads capability
    is decided by what creates a thread, in whichever order the names come."""
    alone = judge.judge_symbols(["pthread_join@GLIBC_2.34", "printf@GLIBC_2.2.5"], file="x")
    assert not any(f.capability == "threads" for f in alone)
    assert _rules(alone, Target.WASIP1) == {"PS600": Verdict.READY}
    for names in (
        ["pthread_join@GLIBC_2.34", "pthread_create@GLIBC_2.34"],
        ["pthread_create@GLIBC_2.34", "pthread_join@GLIBC_2.34"],
    ):
        findings = judge.judge_symbols(names, file="x")
        threads = [f for f in findings if f.target is Target.WASIP1 and f.capability == "threads"]
        assert [f.verdict for f in threads] == [Verdict.REWORK]
        assert {e.symbol for e in threads[0].evidence} == set(names)


def test_a_missing_function_of_a_ready_capability_is_a_link_error() -> None:
    findings = judge.judge_symbols(["getrandom@GLIBC_2.25"], file="x")
    p1 = next(f for f in findings if f.target is Target.WASIP1)
    assert (p1.rule_id, p1.verdict, p1.capability) == ("PS601", Verdict.REWORK, "randomness")
    assert "getentropy" in p1.evidence[0].detail
    assert _rules(findings, Target.WASIX) == {"PS612": Verdict.READY}


def test_as_of_judges_against_an_older_wasi_libc() -> None:
    latest = judge.judge_symbols(["gethostname@GLIBC_2.2.5"], file="x")
    assert _rules(latest, Target.WASIP1) == {"PS614": Verdict.READY}
    old = judge.judge_symbols(["gethostname@GLIBC_2.2.5"], file="x", as_of="2025-08-15")
    assert _rules(old, Target.WASIP1) == {"PS601": Verdict.REWORK}
    detail = next(f for f in old if f.target is Target.WASIP1).evidence[0].detail
    assert "added to wasi-libc in 2025-11-12, wasi-sdk 29" in detail


def test_per_target_differences() -> None:
    findings = judge.judge_symbols(["socket", "bind", "dup2", "pipe", "clone"], file="x")
    p1 = _rules(findings, Target.WASIP1)
    assert set(p1) == {"PS201", "PS202", "PS616", "PS306", "PS101"}
    assert set(p1.values()) == {Verdict.REWORK}
    p2 = _rules(findings, Target.WASIP2)
    assert p2["PS201"] is p2["PS202"] is p2["PS616"] is Verdict.READY
    assert p2["PS306"] is Verdict.REWORK  # pipe: ENOTSUP stub on wasip2
    assert _rules(findings, Target.WASIP3)["PS306"] is Verdict.READY
    wasix = _rules(findings, Target.WASIX)
    assert wasix["PS601"] is Verdict.REWORK  # clone: not in wasix-libc
    assert wasix["PS201"] is Verdict.READY


def test_wasix_is_judged_by_wasix_libc() -> None:
    findings = judge.judge_symbols(
        ["getgroups@GLIBC_2.2.5", "fork@GLIBC_2.2.5", "pthread_create@GLIBC_2.34"], file="x"
    )
    wasix = [f for f in findings if f.target is Target.WASIX]
    missing = next(f for f in wasix if f.rule_id == "PS601")
    assert (missing.verdict, missing.capability) == (Verdict.REWORK, "users-groups")
    assert [e.symbol for e in missing.evidence] == ["getgroups@GLIBC_2.2.5"]
    assert "not defined by wasix-libc (wasm32-wasi)" in missing.evidence[0].detail
    assert _rules(findings, Target.WASIX)["PS101"] is Verdict.READY  # fork: defined
    assert not any(f.rule_id == "PS906" for f in findings)


def test_a_wasix_libc_flavour_can_be_picked() -> None:
    symbols = ["fork@GLIBC_2.2.5", "setjmp@GLIBC_2.2.5"]
    default = _rules(judge.judge_symbols(symbols, file="x"), Target.WASIX)
    assert "PS601" not in default
    eh = judge.judge_symbols(symbols, file="x", wasix_libc="wasm32-wasi-eh")
    missing = next(f for f in eh if f.target is Target.WASIX and f.rule_id == "PS601")
    assert [e.symbol for e in missing.evidence] == ["fork@GLIBC_2.2.5"]  # setjmp is lowered
    assert "wasix-libc (wasm32-wasi-eh)" in missing.evidence[0].detail
    default_p1 = _rules(judge.judge_symbols(symbols, file="x"), Target.WASIP1)
    assert _rules(eh, Target.WASIP1) == default_p1  # the flavour is wasix's only


def test_cxx_symbols() -> None:
    findings = judge.judge_symbols(
        [
            "__cxa_throw@CXXABI_1.3",
            "_ZSt24__throw_out_of_range_fmtPKcz@GLIBCXX_3.4.20",
            "_ZNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEE9_M_createERmm@GLIBCXX_3.4.21",
            "_Znwm@GLIBCXX_3.4",
            "__gxx_personality_v0@CXXABI_1.3",
        ],
        file="x",
    )
    p1 = _rules(findings, Target.WASIP1)
    assert p1 == {"PS403": Verdict.REWORK, "PS404": Verdict.SHIM, "PS405": Verdict.READY}
    assert _rules(findings, Target.WASIX)["PS403"] is Verdict.SHIM


def test_setjmp_comes_from_libsetjmp_although_the_lists_leave_it_out() -> None:
    findings = judge.judge_symbols(["_setjmp@GLIBC_2.2.5", "longjmp@GLIBC_2.2.5"], file="x")
    p1 = next(f for f in findings if f.target is Target.WASIP1)
    assert (p1.rule_id, p1.verdict) == ("PS402", Verdict.SHIM)
    assert "-lsetjmp" in p1.message


def test_judge_paths() -> None:
    findings = judge.judge_paths(
        ["/dev/urandom", "/proc/self/status", "/etc/passwd", "/proc/"], file="x"
    )
    p1 = _rules(findings, Target.WASIP1)
    assert p1 == {"PS520": Verdict.REWORK, "PS521": Verdict.REWORK}
    assert _rules(findings, Target.WASIX) == {"PS520": Verdict.UNKNOWN, "PS521": Verdict.UNKNOWN}
    details = [e.detail for f in findings if f.target is Target.WASIP1 for e in f.evidence]
    assert any("/dev/urandom" in d and "getentropy" in d for d in details)


def test_judge_syscalls_never_says_ready() -> None:
    sites = [("fork", 0x401000), ("read", 0x401010), ("mmap", 0x401020), ("openat", 0x401030)]
    findings = judge.judge_syscalls(sites, file="static-app")
    p1 = _rules(findings, Target.WASIP1)
    assert p1["PS101"] is Verdict.REWORK and p1["PS905"] is Verdict.UNKNOWN
    assert "PS301" not in p1  # mmap is weak: every libc maps memory for itself
    fork = next(f for f in findings if f.rule_id == "PS101" and f.target is Target.WASIP1)
    assert fork.evidence[0] == Evidence("static-app", syscall="fork", address=0x401000)
    quiet = judge.judge_syscalls([("read", 1), ("write", 2)], file="x")
    assert set(_by_target(quiet).values()) == {Verdict.UNKNOWN}


def test_no_findings_means_unknown_and_findings_are_json() -> None:
    assert set(verdicts_by_target([]).values()) == {Verdict.UNKNOWN}
    findings = judge.judge_symbols(["fork@GLIBC_2.2.5"], file="x", package="pkg", layer=2)
    doc = json.loads(json.dumps([f.to_dict() for f in findings]))
    assert doc[0]["verdict"] == "rework" and doc[0]["capability"] == "process-fork"
    assert doc[0]["evidence"][0] == {
        "file": "x",
        "symbol": "fork@GLIBC_2.2.5",
        "package": "pkg",
        "layer": 2,
        "detail": "imported",
    }


def _groundtruth_module():
    path = REPO / "benchmarks" / "groundtruth.py"
    spec = importlib.util.spec_from_file_location("portscan_bench_groundtruth", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not GROUNDTRUTH.is_dir(), reason="needs benchmarks/groundtruth")
def test_groundtruth_agreement(tmp_path_factory: pytest.TempPathFactory) -> None:
    if shutil.which("g++") is None or shutil.which("nm") is None:
        pytest.fail("gcc, g++ and nm are required (apt-get install gcc g++ binutils)")
    groundtruth = _groundtruth_module()
    outcomes = groundtruth.evaluate(GROUNDTRUTH, tmp_path_factory.mktemp("groundtruth"))
    assert len(outcomes) == 39
    report = groundtruth.report(outcomes, "wasip1 vs wasi_p1_zig_result")
    assert groundtruth.accuracy(outcomes) >= ACCURACY_FLOOR, report
    assert all(o.hit for o in outcomes if o.case.endswith(".static")), report


def test_the_labels_wasi_libc_date_is_read_from_their_toolchain_record(tmp_path: Path) -> None:
    groundtruth = _groundtruth_module()
    zig = groundtruth.labels_libc(GROUNDTRUTH, "wasi_p1_zig_result")
    assert (zig.date, "c89896107d7b" in zig.record) == ("2025-08-15", True)
    assert groundtruth.labels_libc(GROUNDTRUTH, "wasi_p1_2022_result").date == "2022-05-10"
    record = tmp_path / "toolchain.txt"
    record.write_text("zig wasi-libc: WebAssembly/wasi-libc abc (2026-01-02)\n")
    assert groundtruth.labels_libc(tmp_path).date == "2026-01-02"
    record.write_text("zig: 0.17.1\n")
    with pytest.raises(ValueError, match="date is unknown"):
        groundtruth.labels_libc(tmp_path)
