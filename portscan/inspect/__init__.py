"""What a file is: one module per kind of file, each stating what it needs.

The layers are streamed once, so before the first byte is read this package says
which files' bytes must be kept (`keep`) and which analysers run on bytes as they go
by (`ANALYSERS`); after the merge, `inspect_tree` runs the inspectors that need the
whole tree (packages, scripts).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from portscan.inspect.elf import spec
from portscan.inspect.elf.worker import ElfAnalyser
from portscan.layers import Analyser
from portscan.model import ApiUse, Application, Binary, ImageConfig, Package, Script

if TYPE_CHECKING:  # the inspectors load when a scan reads its first layer: a rescan
    # whose whole result the scan cache holds needs none of them (portscan.audit.cache)
    from portscan.layers import Tree

ANALYSERS: tuple[Analyser, ...] = (ElfAnalyser(),)
LOADER_CONFIG_PREFIXES = ("/etc/ld.so.conf", "/etc/ld-musl-")  # ld.so.conf(.d/), musl path


def keep(path: str, head: bytes) -> bool:
    """Keep policy: scripts (for `#!` and `exec` lines), loader configuration, every
    file a package cataloger reads, and application sources (.py outside the standard
    library, .js outside node_modules: apps.is_app_source). ELF bytes are not kept: the
    `elf` analyser has read them on the way."""
    needs_bytes, is_app_source = kept_by_inspectors()
    return (
        head.startswith(b"#!")
        or path.startswith(LOADER_CONFIG_PREFIXES)
        or needs_bytes(path)
        or is_app_source(path)
    )


@functools.cache
def kept_by_inspectors() -> tuple[Callable[[str], bool], Callable[[str], bool]]:
    """The catalogers' and the application finder's keep tests, loaded on first use."""
    from portscan.inspect.apps.find import is_app_source
    from portscan.inspect.packages import needs_bytes

    return needs_bytes, is_app_source


@dataclass
class Inspection:
    """Facts about the files of one image."""

    binaries: dict[str, Binary] = field(default_factory=dict)  # path -> ELF facts
    packages: list[Package] = field(default_factory=list)
    owner_of: dict[str, str] = field(default_factory=dict)  # path -> package purl
    scripts: dict[str, Script] = field(default_factory=dict)  # path -> script
    applications: list[Application] = field(default_factory=list)  # what runtimes run
    go_uses: dict[str, list[ApiUse]] = field(default_factory=dict)  # Go program -> stdlib uses
    warnings: list[str] = field(default_factory=list)


def inspect_tree(tree: Tree, config: ImageConfig) -> Inspection:
    """Collect the analysers' facts and run the whole-tree inspectors."""
    from portscan.inspect import packages
    from portscan.inspect.apps.find import find_applications
    from portscan.inspect.apps.go import go_uses
    from portscan.inspect.scripts import inspect_scripts

    binaries = {
        entry.path: entry.facts[spec.NAME] for entry in tree.files() if spec.NAME in entry.facts
    }
    inventory = packages.catalog(tree)
    scripts = {s.path: s for s in inspect_scripts(tree, config.env_dict().get("PATH"))}
    return Inspection(
        binaries=binaries,
        packages=inventory.packages,
        owner_of=inventory.owner_of,
        scripts=scripts,
        applications=find_applications(tree, config, binaries, scripts),
        go_uses={path: found for path, b in binaries.items() if (found := go_uses(b, path))},
        warnings=list(inventory.warnings),
    )
