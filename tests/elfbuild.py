"""Compile the small, real ELF files the ELF inspector tests read: C with gcc, musl-gcc and
aarch64-linux-gnu-gcc, Go (static and cgo) and Rust.

Builds are cached on disk under one directory per test session, so test modules that
ask for the same program share it. A missing compiler skips the tests that need it
(CI installs all of them). Go runs offline: GOFLAGS=-mod=mod, GOPROXY=off, GOCACHE
and GOPATH in the build directory, standard library only (plus a local module).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

GO_MAIN = r"""
package main

import (
	"fmt"
	"os"
	"syscall"

	"example.com/greeting"
)

func main() {
	pid, _, _ := syscall.RawSyscall(syscall.SYS_GETPID, 0, 0, 0)
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		os.Exit(1)
	}
	fmt.Println(greeting.Hello(), pid, u.Machine[0] != 0)
}
"""
GO_CGO_MAIN = r"""
package main

// #include <unistd.h>
import "C"

import (
	"fmt"

	"example.com/greeting"
)

func main() {
	fmt.Println(greeting.Hello(), C.getpid())
}
"""
GO_BASELINE = """
package main

func main() {}
"""
GO_GREETING = """
package greeting

//go:noinline
func Hello() string { return "hello" }
"""
RUST_MAIN = r"""
fn main() {
    let args: Vec<String> = std::env::args().collect();
    println!("hello {} {}", args.len(), std::process::id());
}
"""


def require(tool: str) -> str:
    """The tool's path; skips the calling test when it is not installed."""
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed")
    return path


class ElfBuilder:
    """Builds programs into `root`, once per name."""

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def _cached(self, name: str) -> Path | None:
        out = self.root / name
        return out if out.exists() else None

    def c(self, name: str, source: str, *flags: str, compiler: str = "gcc") -> Path:
        """Compile one C file with `compiler`; `flags` go after the source."""
        out = self._cached(name)
        if out is not None:
            return out
        cc = require(compiler)
        work = self.root / f"{name}.src"
        work.mkdir(exist_ok=True)
        src = work / "main.c"
        src.write_text(source)
        out = self.root / name
        subprocess.run([cc, "-O2", "-o", str(out), str(src), *flags], check=True, cwd=work)
        return out

    def strip(self, name: str, original: Path) -> Path:
        out = self._cached(name)
        if out is None:
            out = self.root / name
            subprocess.run([require("strip"), "-o", str(out), str(original)], check=True)
        return out

    def go(
        self, name: str, source: str, *, cgo: bool = False, ldflags: str = "", goarch: str = ""
    ) -> Path:
        """Build a Go main package that imports example.com/greeting, a local module;
        `goarch` cross-compiles (pure Go only)."""
        out = self._cached(name)
        if out is not None:
            return out
        go = require("go")
        work = self.root / f"{name}.go"
        (work / "app").mkdir(parents=True, exist_ok=True)
        (work / "greeting").mkdir(exist_ok=True)
        (work / "greeting" / "go.mod").write_text("module example.com/greeting\n\ngo 1.18\n")
        (work / "greeting" / "greeting.go").write_text(GO_GREETING)
        (work / "app" / "go.mod").write_text(
            "module example.com/app\n\ngo 1.18\n\n"
            "require example.com/greeting v0.1.0\n\n"
            "replace example.com/greeting => ../greeting\n"
        )
        (work / "app" / "main.go").write_text(source)
        env = {
            **os.environ,
            "CGO_ENABLED": "1" if cgo else "0",
            "GOFLAGS": "-mod=mod",
            "GOPROXY": "off",
            "GOTOOLCHAIN": "local",
            "GOCACHE": str(self.root / "gocache"),
            "GOPATH": str(self.root / "gopath"),
        }
        if goarch:
            env["GOARCH"] = goarch
        command = [go, "build", "-o", str(self.root / name)]
        if ldflags:
            command.append(f"-ldflags={ldflags}")
        subprocess.run([*command, "."], check=True, cwd=work / "app", env=env)
        return self.root / name

    def rust(self, name: str, source: str) -> Path:
        out = self._cached(name)
        if out is not None:
            return out
        rustc = require("rustc")
        src = self.root / f"{name}.rs"
        src.write_text(source)
        subprocess.run([rustc, "-O", "-o", str(self.root / name), str(src)], check=True)
        return self.root / name


def builder(tmp_path_factory: pytest.TempPathFactory) -> ElfBuilder:
    """The session's builder: one directory under pytest's base temp, shared by modules."""
    return ElfBuilder(tmp_path_factory.getbasetemp() / "elfbuild")


def tool_output(*command: str) -> str:
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout
