"""Shared fixtures: real ELF files built with gcc, and a small real image built from them."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import imagebuild as ib

HELLO_C = r"""
#include <stdio.h>
int greet(const char *who);
int main(int argc, char **argv) { return greet(argc > 1 ? argv[1] : "world"); }
"""
GREET_C = r"""
#include <stdio.h>
int greet(const char *who) { return printf("hello %s\n", who) < 0; }
"""
STATIC_C = r"""
#include <stdio.h>
int main(void) { puts("static"); return 0; }
"""


def _gcc(tmp: Path, name: str, source: str, *flags: str) -> bytes:
    if shutil.which("gcc") is None:
        pytest.fail("gcc is required to build test binaries (apt-get install gcc)")
    src = tmp / f"{name}.c"
    src.write_text(source)
    out = tmp / name
    subprocess.run(["gcc", "-O1", "-o", str(out), str(src), *flags], check=True, cwd=tmp)
    return out.read_bytes()


@pytest.fixture(scope="session")
def native_bins(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """gcc-built ELF files: a shared library with a SONAME, an executable that needs it,
    and a static executable."""
    tmp = tmp_path_factory.mktemp("elf")
    lib = _gcc(tmp, "libgreet.so.1", GREET_C, "-shared", "-fPIC", "-Wl,-soname,libgreet.so.1")
    hello = _gcc(tmp, "hello", HELLO_C, f"-L{tmp}", "-l:libgreet.so.1", "-Wl,-rpath,$ORIGIN/../lib")
    static = _gcc(tmp, "hello-static", STATIC_C, "-static")
    return {"libgreet.so.1": lib, "hello": hello, "hello-static": static}


def fixture_layers(bins: dict[str, bytes]) -> list[list[ib.Entry]]:
    """Three layers exercising symlinks, hard links, whiteouts and an opaque directory."""
    base = [
        ib.directory("usr"),
        ib.directory("usr/bin"),
        ib.directory("usr/lib"),
        ib.file("usr/lib/libgreet.so.1", bins["libgreet.so.1"], 0o755),
        ib.symlink("usr/lib/libgreet.so", "libgreet.so.1"),
        ib.file("usr/bin/hello", bins["hello"], 0o755),
        ib.hardlink("usr/bin/hello-again", "usr/bin/hello"),
        ib.file("etc/os-release", "ID=fixture\n"),
        ib.directory("etc/app"),
        ib.file("etc/app/old.conf", "old=1\n"),
        ib.file("etc/app/keep-not.conf", "x\n"),
        ib.file("tmp/delete-me", "gone\n"),
        ib.symlink("bin", "usr/bin"),
    ]
    middle = [
        ib.file("usr/local/bin/hello-static", bins["hello-static"], 0o755),
        ib.whiteout("tmp/delete-me"),
        ib.file("usr/local/bin/run.sh", '#!/bin/sh\nexec /usr/bin/hello "$@"\n', 0o755),
    ]
    top = [
        ib.opaque("etc/app"),
        ib.file("etc/app/new.conf", "new=1\n"),
        ib.file("usr/bin/hello", bins["hello"], 0o755),  # rewritten: owned by the top layer
    ]
    return [base, middle, top]


FIXTURE_CONFIG = {
    "Entrypoint": ["/usr/local/bin/run.sh"],
    "Cmd": ["fixture"],
    "Env": ["PATH=/usr/local/bin:/usr/bin:/bin"],
    "WorkingDir": "/srv",
    "User": "1000",
    "ExposedPorts": {"8080/tcp": {}},
    "Volumes": {"/data": {}},
}


@pytest.fixture(scope="session")
def fixture_image(native_bins: dict[str, bytes]) -> ib.Image:
    return ib.Image(
        fixture_layers(native_bins),
        config=FIXTURE_CONFIG,
        history=["ADD base", "COPY static + run.sh", "RUN rewrite config"],
    )


@pytest.fixture(scope="session")
def oci_layout(tmp_path_factory: pytest.TempPathFactory, fixture_image: ib.Image) -> Path:
    return ib.write_oci_layout(tmp_path_factory.mktemp("oci") / "layout", [fixture_image])


@pytest.fixture(scope="session")
def docker_archive(tmp_path_factory: pytest.TempPathFactory, fixture_image: ib.Image) -> Path:
    return ib.write_docker_archive(tmp_path_factory.mktemp("archive") / "image.tar", fixture_image)


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Scans in tests (and the portscan processes they start) keep their scan cache in
    a directory of the test session, never in the user's $XDG_CACHE_HOME, and use none
    (PORTSCAN_NO_CACHE=1): a test of fetching, verifying or limits must see its image
    read. tests/test_rescan.py turns the cache on where it tests it (`cached_env`)."""
    saved = {name: os.environ.get(name) for name in ("XDG_CACHE_HOME", "PORTSCAN_NO_CACHE")}
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    os.environ["PORTSCAN_NO_CACHE"] = "1"
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def cached_env(cache_home: Path) -> dict[str, str]:
    """The environment of a portscan process that uses a scan cache under `cache_home`."""
    env = {k: v for k, v in os.environ.items() if k != "PORTSCAN_NO_CACHE"}
    return {**env, "XDG_CACHE_HOME": str(cache_home)}
