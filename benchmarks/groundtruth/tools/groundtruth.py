#!/usr/bin/env python3
# Copied from the team's shared/groundtruth/tools/ (issue 13), unchanged but for these three lines:
# the labels were measured with this code as it is, so it is kept as it ran, not restyled.
# ruff: noqa
"""Build every case natively and for wasm32-wasi, run both, and write the labels.

Usage (from anywhere; build.sh is the normal entry point):
    python3 tools/groundtruth.py [--only CASE[,CASE...]] [--jobs N]

Every case is measured for wasm32-wasi twice, with two toolchains:
    clang14   Debian bookworm's clang-14 + its 2022-05-10 wasi-libc snapshot   (wasi_p1_2022_result)
    zig       `zig cc -target wasm32-wasi` from the PyPI `ziglang` package, with the
              wasi-libc that zig bundles (a 2025-08-15 upstream snapshot)  (wasi_p1_zig_result)

All paths below are relative to the groundtruth directory.  Outputs:
    native/NAME, native/NAME.static   native ELF builds (gcc / g++)
    wasm/NAME.wasm                    plain wasm32-wasi build (when it links)
    wasm/NAME.emu.wasm                build with the emulation libraries (when needed and it links)
    build/zig/wasm-*/NAME.wasm        the zig builds (left in build/: zig cc keeps DWARF, ~1 MB each)
    labels.tsv                        the ground-truth labels
    details.tsv                       per-stage outcomes behind each label
    toolchain.txt                     versions of everything that produced the labels
Scratch (objects, logs, the private sysroot, zig's cache in build/zig-cache) goes to build/.

Classification of the wasm32-wasi result, per case:
    as-is           plain build compiles, links and runs under wasmtime with the expected output
    with-emulation  only succeeds with wasi-libc's emulation libraries
                    (-D_WASI_EMULATED_{SIGNAL,MMAN,PROCESS_CLOCKS,GETPID} + -lwasi-emulated-*)
    blocked         fails to compile or link even with them, or traps / misbehaves at run time
"""

import argparse
import concurrent.futures
import os
import re
import shutil
import socketserver
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Debian's wasi-libc package installs a multiarch layout rather than a standalone sysroot:
# headers in /usr/include/wasm32-wasi, crt1.o/libc.a/emulation libs in /usr/lib/wasm32-wasi.
# `--sysroot=/usr` (and clang's default) would also put the host's glibc headers from
# /usr/include on the search path, so a build for wasm could silently pick up e.g. glibc's
# <pwd.h>.  A private sysroot of two symlinks keeps only the wasi-libc files visible.
WASI_INCLUDE = "/usr/include/wasm32-wasi"
WASI_LIB = "/usr/lib/wasm32-wasi"
SYSROOT = "build/sysroot"

CC_NATIVE, CXX_NATIVE = "gcc", "g++"
CC_WASM, CXX_WASM = "clang-14", "clang++-14"
WASM_BASE = ["--target=wasm32-wasi", f"--sysroot={SYSROOT}", "-O2"]

# The second, modern measurement: zig's bundled clang + wasi-libc (PyPI package `ziglang`, run as
# `python3 -m ziglang cc`).  zig layers its wasm-wasi-musl headers over generic musl headers and
# builds libc from source into its cache; keep that cache inside build/ so nothing is written to
# ~/.cache and a rebuild is self-contained.
ZIG_CACHE = "build/zig-cache"
# zig records no wasi-libc version or commit anywhere in lib/libc/.  For ziglang 0.17.1 it was
# identified by comparing lib/libc/wasi/ (351 files) and the bundled headers with the history of
# github.com/WebAssembly/wasi-libc: 342 files are byte-identical to upstream commit c89896107d7b
# ("Adapt to custom-page-sizes (#616)", 2025-08-15, between wasi-sdk-27 and wasi-sdk-28), the
# best match of all 660 upstream commits (its __macro_PAGESIZE.h change is present, the 2025-08-27
# commits are not); the other 9 carry zig patches (malloc and close() come from zig's own libzigc).
ZIG_WASI_LIBC = {
    "0.17.1": "WebAssembly/wasi-libc c89896107d7b57aef69dcadede47409ee4f702ee (2025-08-15) + zig patches"
    " (identified by file comparison, not recorded by zig)",
}
ZIG_BASE = ["-target", "wasm32-wasi", "-O2"]


class Toolchain:
    """One wasm32-wasi compiler setup.  `prefix` names the log files; build/out are directories."""

    def __init__(self, name, cc, cxx, base, build, out, prefix, env=None):
        self.name, self.cc, self.cxx, self.base = name, cc, cxx, base
        self.build, self.out, self.prefix, self.env = build, out, prefix, env


def zig_dir():
    import importlib.util

    spec = importlib.util.find_spec("ziglang")
    return spec.submodule_search_locations[0] if spec and spec.submodule_search_locations else None


def zig_env():
    env = dict(os.environ)
    env["ZIG_GLOBAL_CACHE_DIR"] = str(ROOT / ZIG_CACHE)
    env["ZIG_LOCAL_CACHE_DIR"] = str(ROOT / ZIG_CACHE)
    return env


CLANG14 = Toolchain("clang14", [CC_WASM], [CXX_WASM], WASM_BASE, "build", "wasm", "wasm")
# zig's wasm modules stay in build/zig/ (about 1 MB each: zig cc keeps DWARF by default).
ZIG = Toolchain(
    "zig",
    [sys.executable, "-m", "ziglang", "cc"],
    [sys.executable, "-m", "ziglang", "c++"],
    ZIG_BASE,
    "build/zig",
    "build/zig/wasm",
    "zig",
    env=zig_env(),
)

EMULATIONS = [  # (short name, macro, library)
    ("signal", "_WASI_EMULATED_SIGNAL", "wasi-emulated-signal"),
    ("mman", "_WASI_EMULATED_MMAN", "wasi-emulated-mman"),
    ("process-clocks", "_WASI_EMULATED_PROCESS_CLOCKS", "wasi-emulated-process-clocks"),
    ("getpid", "_WASI_EMULATED_GETPID", "wasi-emulated-getpid"),
]

ARGS = ["alpha", "beta"]  # every case gets the same argv[1:]
GT_VAR = "groundtruth"  # and GT_VAR in its environment
NATIVE_TIMEOUT = 30
WASM_TIMEOUT = 90
WASM_RUNS = 5  # a wasm build counts as passing only if all runs pass (poll_select is flaky)
ERR_RE = re.compile(r"(^|\s)(fatal )?error:")


# ----------------------------------------------------------------------------- helpers


def sanitize(text: str, *extra_paths: str) -> str:
    zd = zig_dir()
    if zd:  # zig's bundled headers: <zig>/lib/libc/include/wasm-wasi-musl/...
        text = text.replace(zd.rstrip("/"), "<zig>")
    for p in sorted({str(ROOT) + "/", str(ROOT), *extra_paths}, key=len, reverse=True):
        if p:
            text = text.replace(p, "<sandbox>" if p in extra_paths else "")
    text = re.sub(r"/tmp/[A-Za-z0-9._-]+", "<tmp>", text)
    return text


def one_line(text: str) -> str:
    return " ".join(text.replace("\t", " ").split())[:400]


def run(cmd, cwd=ROOT, timeout=300, **kw):
    """Run cmd; return (rc, combined output). rc is None on timeout."""
    try:
        p = subprocess.run(
            cmd,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            timeout=timeout,
            **kw,
        )
        return p.returncode, p.stdout
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        return None, out


def first_error(output: str) -> str:
    for line in output.splitlines():
        if ERR_RE.search(line):
            return line.strip()
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    return lines[0] if lines else "(no output)"


def log(name: str, stage: str, text: str) -> None:
    d = ROOT / "build" / "logs"
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{name}.{stage}.log").write_text(text)


class _Echo(socketserver.StreamRequestHandler):
    def handle(self):
        self.request.settimeout(10)
        try:
            while True:
                data = self.request.recv(4096)
                if not data:
                    break
                self.request.sendall(data)
        except OSError:
            pass


class EchoServer:
    """Loopback TCP echo server for tcp_client; bounded by the case's run time."""

    def __enter__(self):
        self.srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
        self.srv.daemon_threads = True
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()
        return self.srv.server_address[1]

    def __exit__(self, *exc):
        self.srv.shutdown()
        self.srv.server_close()


# ----------------------------------------------------------------------------- running


def execute(case: str, kind: str, binary: str, logprefix: str = ""):
    """Run a built case (kind 'native' or 'wasm') in a fresh sandbox directory.

    Returns (ok, detail) where detail is a one-line reason when not ok."""
    sandbox = tempfile.mkdtemp(prefix="gt-run-")
    os.mkdir(os.path.join(sandbox, "tmp"))
    env = {"PATH": "/usr/bin:/bin", "GT_VAR": GT_VAR, "LANG": "C"}
    try:
        with EchoServer() if case == "tcp_client" else _Null() as port:
            if port:
                env["GT_PORT"] = str(port)
            if kind == "native":
                env["HOME"] = sandbox
                cmd = [str(ROOT / binary), *ARGS]
                timeout = NATIVE_TIMEOUT
                # native children see the real /tmp and the real filesystem
            else:
                env["HOME"] = "/"
                cmd = [
                    sys.executable,
                    str(ROOT / "tools" / "wasmrun.py"),
                    "--dir",
                    f"{sandbox}::/",
                    "--stdin",
                    "/dev/null",
                ]
                cmd += [x for k, v in sorted(env.items()) for x in ("--env", f"{k}={v}")]
                cmd += [str(ROOT / binary), *ARGS]
                timeout = WASM_TIMEOUT
            # stdout/stderr go to regular files outside the sandbox rather than pipes, so that a
            # child left behind by a case (daemonize) cannot hold the harness's pipe open.
            with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
                try:
                    p = subprocess.run(
                        cmd,
                        cwd=sandbox,
                        env=env if kind == "native" else None,
                        stdin=subprocess.DEVNULL,
                        stdout=fo,
                        stderr=fe,
                        timeout=timeout,
                    )
                    rc = p.returncode
                except subprocess.TimeoutExpired:
                    rc = None
                fo.seek(0)
                fe.seek(0)
                out = fo.read().decode(errors="replace")
                err = fe.read().decode(errors="replace")
        log(
            case,
            f"{logprefix or kind}-run-{Path(binary).name}",
            sanitize(f"$ {' '.join(cmd)}\nrc={rc}\n--- stdout\n{out}--- stderr\n{err}", sandbox),
        )
        lines = [ln for ln in out.splitlines() if ln.strip()]
        if rc == 0 and lines and lines[-1].strip() == f"OK {case}":
            return True, ""
        if rc is None:
            return False, f"timed out after {timeout}s"
        trap = next((ln for ln in err.splitlines() if ln.startswith("wasmrun: ")), None)
        if trap:
            return False, sanitize(trap.strip(), sandbox)
        fail = next((ln for ln in lines if ln.startswith("FAIL ")), None)
        if fail:
            return False, f"exit {rc}: {sanitize(fail.strip(), sandbox)}"
        errl = [ln for ln in err.splitlines() if ln.strip()]
        return False, sanitize(
            f"exit {rc}: " + (errl[0] if errl else (lines[-1] if lines else "no output")), sandbox
        )
    finally:
        shutil.rmtree(sandbox, ignore_errors=True)


class _Null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


# ----------------------------------------------------------------------------- building


def native_build(case: str, src: str, ldflags: list, static: bool):
    cc = CXX_NATIVE if src.endswith(".cpp") else CC_NATIVE
    out = f"native/{case}" + (".static" if static else "")
    cmd = [cc, "-O2", *(["-static"] if static else []), "-o", out, f"cases/{src}", *ldflags]
    rc, text = run(cmd)
    log(
        case, "native-build" + ("-static" if static else ""), f"$ {' '.join(cmd)}\n{sanitize(text)}"
    )
    return (rc == 0), out, ("" if rc == 0 else sanitize(first_error(text)))


def native_imports(binary: str) -> str:
    rc, text = run(["nm", "-D", "--undefined-only", binary])
    names = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[-2] in ("U", "w", "v"):
            n = parts[-1].split("@")[0]
            if n not in names:
                names.append(n)
    return ",".join(names)


def wasm_attempt(case: str, src: str, emus: list, tag: str, tc: Toolchain = CLANG14):
    """Compile, link and run one wasm variant.  Returns dict(stage, error, wasm, undefined)."""
    cxx = src.endswith(".cpp")
    cc = tc.cxx if cxx else tc.cc
    obj = f"{tc.build}/obj/{case}.{tag}.o"
    wasm = f"{tc.build}/wasm-{tag}/{case}.wasm"
    (ROOT / tc.build / "obj").mkdir(parents=True, exist_ok=True)
    (ROOT / f"{tc.build}/wasm-{tag}").mkdir(parents=True, exist_ok=True)
    defs = [f"-D{m}" for (n, m, l) in EMULATIONS if n in emus]
    libs = [f"-l{l}" for (n, m, l) in EMULATIONS if n in emus]
    res = {"stage": "ok", "error": "", "wasm": wasm, "undefined": "", "runs": "-"}
    cmd = [*cc, *tc.base, *defs, "-c", f"cases/{src}", "-o", obj]
    rc, text = run(cmd, env=tc.env)
    log(case, f"{tc.prefix}-{tag}-compile", f"$ {' '.join(cmd)}\nrc={rc}\n{sanitize(text)}")
    if rc != 0:
        res.update(stage="compile", error=sanitize(first_error(text)))
        return res
    cmd = [*cc, *tc.base, "-o", wasm, obj, *libs]
    rc, text = run(cmd, env=tc.env)
    log(case, f"{tc.prefix}-{tag}-link", f"$ {' '.join(cmd)}\nrc={rc}\n{sanitize(text)}")
    undef = []
    for m in re.finditer(r"undefined symbol: (\S+)", text):
        if m.group(1) not in undef:
            undef.append(m.group(1))
    res["undefined"] = ",".join(undef)
    if rc != 0:
        res.update(stage="link", error=sanitize(first_error(text)))
        return res
    # A build must pass all WASM_RUNS runs: some WASI behaviour is timing-dependent (poll_select
    # passes roughly one run in six under wasmtime 50), and a label must not depend on luck.
    outcomes = [execute(case, "wasm", wasm, tc.prefix) for _ in range(WASM_RUNS)]
    fails = [why for ok, why in outcomes if not ok]
    res["runs"] = f"{len(outcomes) - len(fails)}/{len(outcomes)}"
    if fails:
        res.update(stage="run", error=fails[0])
    return res


def classify(case: str, src: str, tc: Toolchain = CLANG14):
    asis = wasm_attempt(case, src, [], "plain", tc)
    out = {"asis": asis, "emu": None, "needed": [], "result": None}
    (ROOT / tc.out).mkdir(parents=True, exist_ok=True)
    if asis["stage"] == "ok":
        shutil.copyfile(ROOT / asis["wasm"], ROOT / f"{tc.out}/{case}.wasm")
        out["result"] = "as-is"
        return out
    if asis["stage"] in ("link", "run"):  # keep the plain module for inspection when it linked
        if (ROOT / asis["wasm"]).exists():
            shutil.copyfile(ROOT / asis["wasm"], ROOT / f"{tc.out}/{case}.wasm")
    all_emus = [n for (n, _, _) in EMULATIONS]
    emu = wasm_attempt(case, src, all_emus, "emu-all", tc)
    out["emu"] = emu
    if emu["stage"] != "ok":
        if emu["stage"] == "run" and (ROOT / emu["wasm"]).exists():
            shutil.copyfile(ROOT / emu["wasm"], ROOT / f"{tc.out}/{case}.emu.wasm")
        out["result"] = "blocked"
        return out
    # Which emulation libraries are actually needed: drop each in turn.
    needed = []
    for n in all_emus:
        trial = wasm_attempt(case, src, [e for e in all_emus if e != n], f"emu-no-{n}", tc)
        if trial["stage"] != "ok":
            needed.append(n)
    final = wasm_attempt(case, src, needed, "emu-min", tc) if needed != all_emus else emu
    if final["stage"] != "ok":  # interactions between emulations: keep the full set
        needed, final = all_emus, emu
    shutil.copyfile(ROOT / final["wasm"], ROOT / f"{tc.out}/{case}.emu.wasm")
    out["needed"] = needed
    out["result"] = "with-emulation"
    return out


# ----------------------------------------------------------------------------- main


def load_manifest():
    rows = []
    lines = (ROOT / "cases" / "manifest.tsv").read_text().splitlines()
    header = lines[0].split("\t")
    for line in lines[1:]:
        if not line.strip():
            continue
        rec = dict(zip(header, line.split("\t")))
        case = rec["case"]
        src = f"{case}.cpp" if (ROOT / "cases" / f"{case}.cpp").exists() else f"{case}.c"
        rec["src"] = src
        rec["ldflags"] = rec.get("native_ldflags", "").split()
        rec["static"] = rec.get("static_variant", "no") == "yes"
        rows.append(rec)
    return rows


def setup_sysroot():
    sr = ROOT / SYSROOT
    (sr / "include").mkdir(parents=True, exist_ok=True)
    (sr / "lib").mkdir(parents=True, exist_ok=True)
    for link, target in (
        (sr / "include" / "wasm32-wasi", WASI_INCLUDE),
        (sr / "lib" / "wasm32-wasi", WASI_LIB),
    ):
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)
    for p in (
        WASI_INCLUDE + "/stdio.h",
        WASI_LIB + "/libc.a",
        WASI_LIB + "/libwasi-emulated-signal.a",
    ):
        if not os.path.exists(p):
            sys.exit(f"missing {p}: install Debian's wasi-libc package (build.sh does)")


def setup_zig():
    """Check that zig works and build its libc, libc++ and compiler-rt into build/zig-cache once,
    before the cases run in parallel (each would otherwise wait on zig's cache lock)."""
    if not zig_dir():
        sys.exit("missing the `ziglang` PyPI package (build.sh installs it)")
    d = ROOT / "build" / "zig" / "warmup"
    d.mkdir(parents=True, exist_ok=True)
    (d / "hello.c").write_text(
        '#include <stdio.h>\nint main(void) { puts("OK hello"); return 0; }\n'
    )
    (d / "hello.cpp").write_text(
        "#include <string>\n#include <cstdio>\n"
        'int main() { std::string s("OK hello"); std::puts(s.c_str()); return 0; }\n'
    )
    libs = [f"-l{l}" for (_, _, l) in EMULATIONS]
    text_all = ""
    for cc, src in ((ZIG.cc, "hello.c"), (ZIG.cxx, "hello.cpp")):
        cmd = [
            *cc,
            *ZIG.base,
            "-o",
            f"build/zig/warmup/{src}.wasm",
            f"build/zig/warmup/{src}",
            *libs,
        ]
        rc, text = run(cmd, env=ZIG.env, timeout=1800)
        text_all += f"$ {' '.join(cmd)}\nrc={rc}\n{sanitize(text)}\n"
        if rc != 0:
            log("_zig", "warmup", text_all)
            sys.exit(
                f"zig cc does not work for wasm32-wasi (see build/logs/_zig.warmup.log):\n{sanitize(text)}"
            )
    log("_zig", "warmup", text_all)


def process(rec):
    case, src = rec["case"], rec["src"]
    r = {"rec": rec}
    ok, binary, err = native_build(case, src, rec["ldflags"], False)
    r["native_build"] = "ok" if ok else f"failed: {err}"
    r["native_imports"] = native_imports(binary) if ok else ""
    if ok:
        n_ok, n_why = execute(case, "native", binary)
        r["native_run"] = "ok" if n_ok else f"failed: {n_why}"
    else:
        r["native_run"] = "-"
    if rec["static"]:
        ok_s, binary_s, err_s = native_build(case, src, rec["ldflags"], True)
        r["static_build"] = "ok" if ok_s else f"failed: {err_s}"
        r["static_imports"] = native_imports(binary_s) if ok_s else ""
        if ok_s:
            s_ok, s_why = execute(case, "native", binary_s)
            r["static_run"] = "ok" if s_ok else f"failed: {s_why}"
        else:
            r["static_run"] = "-"
    r.update(classify(case, src))
    r["zig"] = classify(case, src, ZIG)
    return r


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="")
    ap.add_argument("--jobs", type=int, default=max(1, os.cpu_count() or 1))
    ns = ap.parse_args()

    os.chdir(ROOT)
    recs = load_manifest()
    if ns.only:  # partial run: touch only the named cases' outputs
        keep = set(ns.only.split(","))
        unknown = keep - {r["case"] for r in recs}
        if unknown:
            sys.exit(f"unknown case(s): {', '.join(sorted(unknown))}")
        recs = [r for r in recs if r["case"] in keep]
        for r in recs:
            for f in (ROOT / "native").glob(r["case"] + "*"):
                if f.name in (r["case"], r["case"] + ".static"):
                    f.unlink()
            for f in (ROOT / "wasm").glob(r["case"] + ".*"):
                if f.name in (r["case"] + ".wasm", r["case"] + ".emu.wasm"):
                    f.unlink()
    else:
        for d in ("native", "wasm", "build"):
            shutil.rmtree(ROOT / d, ignore_errors=True)
    for d in ("native", "wasm"):
        (ROOT / d).mkdir(exist_ok=True)
    if ns.only:  # the zig modules of the named cases, in build/zig/wasm
        for r in recs:
            for n in (r["case"] + ".wasm", r["case"] + ".emu.wasm"):
                (ROOT / ZIG.out / n).unlink(missing_ok=True)
    setup_sysroot()
    setup_zig()
    with concurrent.futures.ThreadPoolExecutor(ns.jobs) as ex:
        results = list(ex.map(process, recs))

    labels = [
        "case\tcapability\tnative_imports\twasi_p1_2022_result\tfirst_error"
        "\twasi_p1_zig_result\tzig_first_error"
    ]
    details = [
        "case\tnative_build\tnative_run\twasm_plain_stage\twasm_plain_error\twasm_plain_undefined"
        "\twasm_plain_runs_passed\twasm_emu_stage\twasm_emu_error\twasm_emu_undefined"
        "\twasm_emu_runs_passed\temulations_needed\tresult"
        "\tzig_plain_stage\tzig_plain_error\tzig_plain_undefined\tzig_plain_runs_passed"
        "\tzig_emu_stage\tzig_emu_error\tzig_emu_undefined\tzig_emu_runs_passed"
        "\tzig_emulations_needed\tzig_result"
    ]
    bad_native = []
    for r in results:
        rec = r["rec"]
        asis, emu = r["asis"], r["emu"] or {}
        ferr = first_error_col(r)
        zr = r["zig"]
        zcols = [zr["result"], first_error_col(zr)]
        labels.append(
            "\t".join(
                [rec["case"], rec["capability"], r["native_imports"], r["result"], ferr, *zcols]
            )
        )
        details.append(
            "\t".join(
                [rec["case"], r["native_build"], r["native_run"], *detail_cols(r), *detail_cols(zr)]
            )
        )
        if r["native_run"] != "ok":
            bad_native.append(f"{rec['case']}: {r['native_build']} / {r['native_run']}")
        if rec["static"]:
            sc = rec["case"] + ".static"
            labels.append(
                "\t".join([sc, rec["capability"], r["static_imports"], r["result"], ferr, *zcols])
            )
            details.append(
                "\t".join(
                    [sc, r["static_build"], r["static_run"], *detail_cols(r), *detail_cols(zr)]
                )
            )
            if r["static_run"] != "ok":
                bad_native.append(f"{sc}: {r['static_build']} / {r['static_run']}")
    if not ns.only:
        (ROOT / "labels.tsv").write_text("\n".join(labels) + "\n")
        (ROOT / "details.tsv").write_text("\n".join(details) + "\n")
        (ROOT / "toolchain.txt").write_text(toolchain())
    else:
        print("\n".join(labels))

    for title, get in (
        ("clang-14 + 2022 wasi-libc", lambda r: r),
        ("zig + bundled wasi-libc", lambda r: r["zig"]),
    ):
        counts = {}
        for r in results:
            counts[get(r)["result"]] = counts.get(get(r)["result"], 0) + 1
        print(
            f"results ({title}):",
            ", ".join(f"{k}={v}" for k, v in sorted(counts.items())),
            f"(of {len(results)} cases)",
        )
        for r in results:
            g = get(r)
            extra = f" [{','.join(g['needed'])}]" if g["needed"] else ""
            err = (
                ""
                if g["result"] == "as-is"
                else f"  {g['asis']['stage']}: {one_line(g['asis']['error'])[:110]}"
            )
            print(f"  {r['rec']['case']:<20} {g['result']}{extra}{err}")
    diff = [r for r in results if r["result"] != r["zig"]["result"]]
    print(f"label differs between clang-14/2022 and zig ({len(diff)} cases):")
    for r in diff:
        print(f"  {r['rec']['case']:<20} {r['result']} -> {r['zig']['result']}")
    if bad_native:
        print("NATIVE FAILURES (the case itself is broken or the machine differs):")
        print("\n".join("  " + b for b in bad_native))
        return 1
    return 0


def first_error_col(r) -> str:
    """labels.tsv first_error: empty for as-is, else the plain build's failing stage and first error."""
    return "" if r["result"] == "as-is" else f"{r['asis']['stage']}: {one_line(r['asis']['error'])}"


def detail_cols(r) -> list:
    asis, emu = r["asis"], r["emu"] or {}
    return [
        asis["stage"],
        one_line(asis["error"]),
        asis["undefined"],
        asis["runs"],
        emu.get("stage", "-"),
        one_line(emu.get("error", "")),
        emu.get("undefined", ""),
        emu.get("runs", "-"),
        ",".join(r["needed"]),
        r["result"],
    ]


def toolchain() -> str:
    def ver(cmd, env=None):
        rc, t = run(cmd, env=env)
        return t.splitlines()[0].strip() if t.strip() else "?"

    def deb(pkg):
        rc, t = run(["dpkg-query", "-W", "-f=${Version}", pkg])
        return t.strip() if rc == 0 else "not installed"

    import importlib.metadata as md

    lines = [
        f"clang-14: {ver(['clang-14', '--version'])}",
        f"gcc: {ver(['gcc', '--version'])}",
        f"ldd (glibc): {ver(['ldd', '--version'])}",
    ]
    for pkg in (
        "wasi-libc",
        "clang-14",
        "lld-14",
        "libclang-rt-14-dev-wasm32",
        "libc++-14-dev-wasm32",
        "libc++abi-14-dev-wasm32",
        "gcc-12",
        "libc6-dev",
        "binutils",
    ):
        lines.append(f"debian {pkg}: {deb(pkg)}")
    lines.append(f"pypi wasmtime: {md.version('wasmtime')}")
    zv = md.version("ziglang")
    lines.append(f"pypi ziglang: {zv}")
    lines.append(f"zig: {ver([*ZIG.cc[:-1], 'version'], ZIG.env)}")
    lines.append(f"zig cc: {ver([*ZIG.cc, '--version'], ZIG.env)}")
    lines.append(
        f"zig wasi-libc: {ZIG_WASI_LIBC.get(zv, 'unknown (zig records no version in lib/libc/wasi)')}"
    )
    lines.append(f"python: {sys.version.split()[0]}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
