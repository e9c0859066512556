"""Go modules, from the buildinfo the `elf` analyser put in `Binary.runtime.details`
(main module or main package, dependencies with their replacements, toolchain).

Like syft, the toolchain is reported as the module `stdlib`; the main module owns
the binary, the modules linked into it own no file of their own.
"""

from __future__ import annotations

from typing import Any

from portscan.inspect.packages import purl
from portscan.inspect.packages.base import Cataloger, Env
from portscan.model import Binary, Package

DEVEL = "(devel)"  # the version Go records for a main module built from a checkout


def _module(path: str, version: str, source: str, files: list[str]) -> Package:
    namespace, _, name = path.rpartition("/")
    return Package(
        name=path,
        version=version,
        ecosystem="go",
        purl=purl.build("golang", name, "" if version == DEVEL else version, namespace),
        source=source,
        files=files,
    )


def _effective(module: dict[str, Any]) -> dict[str, Any]:
    """A module as linked: its `=> replacement` when it has one. A replacement by a
    local directory keeps the module's path, with the directory's version, (devel)."""
    replace = module.get("replace")
    if not replace:
        return module
    if replace.get("path", "").startswith((".", "/")):
        return {"path": module.get("path"), "version": replace.get("version") or DEVEL}
    return replace


def parse(path: str, binary: Any, env: Env) -> list[Package]:
    """The Go modules of one binary; none for a binary without Go buildinfo."""
    runtime = binary.runtime if isinstance(binary, Binary) else None
    details = runtime.details if runtime is not None and runtime.name == "go" else {}
    go_version = details.get("go_version")
    if not go_version:
        return []
    main = details.get("main_module")
    packages = []
    if main and main.get("path"):
        main = _effective(main)
        packages.append(_module(main["path"], main.get("version") or DEVEL, path, [path]))
    elif details.get("main_package"):
        packages.append(_module(details["main_package"], DEVEL, path, [path]))
    for dep in details.get("dependencies") or []:
        dep = _effective(dep)
        if dep.get("path"):
            packages.append(_module(dep["path"], dep.get("version", ""), path, []))
    stdlib = purl.build("golang", "stdlib", go_version.removeprefix("go"))
    packages.append(Package("stdlib", go_version, "go", stdlib, source=path))
    return packages


CATALOGER = Cataloger(name="go", globs=(), parse=parse, fact="elf")
