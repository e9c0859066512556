#!/usr/bin/env python3
# Copied from the team's shared/groundtruth/tools/ (issue 13), unchanged but for these three lines:
# the labels were measured with this code as it is, so it is kept as it ran, not restyled.
# ruff: noqa
"""Minimal WASI preview1 command runner built on the `wasmtime` PyPI package.

The PyPI package ships only the library (no `wasmtime` CLI), so this script
plays the role of `wasmtime run`:

    python3 tools/wasmrun.py [--dir HOST::GUEST]... [--env K=V]... \
        [--stdin FILE] MODULE.wasm [ARGS...]

stdout/stderr are inherited.  Exit status: the guest's exit code when it calls
proc_exit (or returns from main); 134 when it traps; 125 when the module cannot
be loaded or instantiated.  A one-line diagnosis goes to stderr, prefixed with
"wasmrun:".
"""

import argparse
import os
import sys

import wasmtime


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--dir", action="append", default=[], help="HOST::GUEST directory to preopen (read/write)"
    )
    ap.add_argument("--env", action="append", default=[], help="K=V")
    ap.add_argument("--stdin", default=None)
    ap.add_argument("module")
    ap.add_argument("args", nargs=argparse.REMAINDER)
    ns = ap.parse_args()

    engine = wasmtime.Engine()
    try:
        module = wasmtime.Module.from_file(engine, ns.module)
    except Exception as e:  # noqa: BLE001
        print(f"wasmrun: load failed: {str(e).splitlines()[0]}", file=sys.stderr)
        return 125

    wasi = wasmtime.WasiConfig()
    wasi.argv = [os.path.basename(ns.module)] + ns.args
    wasi.env = [kv.split("=", 1) for kv in ns.env]
    if ns.stdin:
        wasi.stdin_file = ns.stdin
    wasi.inherit_stdout()
    wasi.inherit_stderr()
    for spec in ns.dir:
        host, _, guest = spec.partition("::")
        wasi.preopen_dir(host, guest or host)

    store = wasmtime.Store(engine)
    store.set_wasi(wasi)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    try:
        instance = linker.instantiate(store, module)
    except Exception as e:  # noqa: BLE001
        print(f"wasmrun: instantiate failed: {str(e).splitlines()[0]}", file=sys.stderr)
        return 125
    start = instance.exports(store)["_start"]
    try:
        start(store)
    except wasmtime.ExitTrap as e:
        return e.code
    except (wasmtime.Trap, wasmtime.WasmtimeError) as e:
        lines = [ln for ln in str(e).splitlines() if ln.strip()]
        # wasmtime puts the backtrace first and the cause ("wasm trap: ...")
        # or the host error last; report the cause.
        cause = next(
            (ln for ln in lines if "trap" in ln.lower() and "backtrace" not in ln.lower()), None
        )
        cause = cause or (lines[-1] if lines else "unknown trap")
        print(f"wasmrun: trap: {cause.strip()}", file=sys.stderr)
        sys.stderr.write("".join("wasmrun:   " + ln + "\n" for ln in lines[:12]))
        return 134
    return 0


if __name__ == "__main__":
    sys.exit(main())
