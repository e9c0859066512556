"""Resolve DT_NEEDED names to files of the image the way the dynamic loader would.

glibc's ld.so (ld.so(8), "Finding shared libraries") searches, for each needed name
without a slash:
  1. DT_RPATH of the loading object, then of its loaders up to the executable, unless
     the loading object has DT_RUNPATH;
  2. LD_LIBRARY_PATH (from the image's environment);
  3. DT_RUNPATH of the loading object (for its own DT_NEEDED only);
  4. the ld.so cache, which `ldconfig` builds from /etc/ld.so.conf and its `include`s;
  5. the trusted default directories (/lib, /usr/lib; /lib64, /usr/lib64 on 64-bit).
musl's loader reads /etc/ld-musl-ARCH.path instead (else /lib:/usr/local/lib:/usr/lib)
and has no cache. `$ORIGIN`, `$LIB` and `$PLATFORM` expand in RPATH and RUNPATH.
A candidate whose ELF class or machine differs from the loader's is skipped, as
ld.so skips it. Paths are looked up in the merged `Tree`, never on the host.
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from portscan.layers import Tree

GLIBC_DEFAULT_64 = ("/lib64", "/usr/lib64", "/lib", "/usr/lib")
GLIBC_DEFAULT_32 = ("/lib", "/usr/lib")
MUSL_DEFAULT = ("/lib", "/usr/local/lib", "/usr/lib")

# Compatible(path) -> bool: is the ELF at `path` loadable by the loading object?
Compatible = Callable[[str], bool]


@dataclass
class LoaderContext:
    """What the loader knows before it resolves anything: the image's configuration."""

    ld_library_path: list[str] = field(default_factory=list)
    cache_dirs: list[str] = field(default_factory=list)  # ld.so.conf, or musl's path file
    default_dirs: tuple[str, ...] = GLIBC_DEFAULT_64
    lib_token: str = "lib64"  # what $LIB expands to
    platform_token: str = "x86_64"  # what $PLATFORM expands to


def read_ld_so_conf(tree: Tree, path: str = "/etc/ld.so.conf", depth: int = 0) -> list[str]:
    """Directories listed in ld.so.conf, following `include` globs (ldconfig(8))."""
    data = tree.read(path)
    if data is None or depth > 8:
        return []
    dirs: list[str] = []
    for raw in data.decode("utf-8", "replace").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("include"):
            pattern = line.split(None, 1)[1] if " " in line or "\t" in line else ""
            if not pattern.startswith("/"):
                pattern = posixpath.join(posixpath.dirname(path), pattern)
            for match in _glob(tree, pattern):
                dirs.extend(read_ld_so_conf(tree, match, depth + 1))
        elif not line.startswith("hwcap"):
            dirs.extend(part for part in line.replace(",", " ").split() if part.startswith("/"))
    return dirs


def _glob(tree: Tree, pattern: str) -> list[str]:
    directory, name_pattern = posixpath.split(pattern)
    real_dir = tree.resolve(directory)
    if real_dir is None:
        return []
    return [
        posixpath.join(real_dir, name)
        for name in tree.children(real_dir)
        if fnmatch.fnmatchcase(name, name_pattern)
    ]


def loader_context(
    tree: Tree, env: dict[str, str], elf_class: int, machine: str, libc: str
) -> LoaderContext:
    """The search context for programs of one class, machine and C library."""
    ld_library_path = [p for p in env.get("LD_LIBRARY_PATH", "").split(":") if p]
    if libc == "musl":
        arch = {"x86_64": "x86_64", "aarch64": "aarch64", "i386": "i386"}.get(machine, machine)
        data = tree.read(f"/etc/ld-musl-{arch}.path")
        dirs = data.decode("utf-8", "replace").replace(":", "\n").split() if data else []
        return LoaderContext(ld_library_path, dirs, () if data else MUSL_DEFAULT, "lib", machine)
    defaults = GLIBC_DEFAULT_64 if elf_class == 64 else GLIBC_DEFAULT_32
    lib = "lib64" if elf_class == 64 else "lib"
    return LoaderContext(ld_library_path, read_ld_so_conf(tree), defaults, lib, machine)


def expand(entry: str, origin: str, context: LoaderContext) -> str:
    """Expand $ORIGIN, $LIB and $PLATFORM (also in ${...} form) in an RPATH entry."""
    for token, value in (
        ("ORIGIN", origin),
        ("LIB", context.lib_token),
        ("PLATFORM", context.platform_token),
    ):
        entry = entry.replace("${" + token + "}", value).replace("$" + token, value)
    return posixpath.normpath(entry) if entry else entry


def search_dirs(
    object_path: str,
    rpath: Iterable[str],
    runpath: Iterable[str],
    loader_rpaths: Iterable[tuple[str, list[str]]],
    context: LoaderContext,
) -> list[str]:
    """The directories ld.so tries, in order, for the DT_NEEDED of one object.

    `loader_rpaths` are (path, DT_RPATH) of the objects that loaded this one, nearest
    first; they count only when this object has no DT_RUNPATH.
    """
    origin = posixpath.dirname(object_path)
    runpath = list(runpath)
    dirs: list[str] = []
    if not runpath:
        dirs += [expand(d, origin, context) for d in rpath]
        for loader_path, loader_rpath in loader_rpaths:
            loader_origin = posixpath.dirname(loader_path)
            dirs += [expand(d, loader_origin, context) for d in loader_rpath]
    dirs += context.ld_library_path
    dirs += [expand(d, origin, context) for d in runpath]
    dirs += context.cache_dirs
    dirs += list(context.default_dirs)
    seen: set[str] = set()
    return [d for d in dirs if d and not (d in seen or seen.add(d))]


def find_library(
    tree: Tree, name: str, dirs: Iterable[str], compatible: Compatible, cwd: str = "/"
) -> str | None:
    """The tree path that `name` resolves to (symlinks followed), or None."""
    if "/" in name:
        candidate = tree.resolve(posixpath.join(cwd, name))
        return candidate if candidate and compatible(candidate) else None
    for directory in dirs:
        candidate = tree.resolve(posixpath.join(directory, name))
        if candidate is None:
            continue
        entry = tree.get(candidate)
        if entry is not None and entry.is_regular and compatible(candidate):
            return candidate
    return None
