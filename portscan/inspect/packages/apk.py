"""Alpine packages: `/lib/apk/db/installed`, the apk-tools installed database.

Format (wiki.alpinelinux.org/wiki/Apk_spec, "Installed Database"): one paragraph per
package, lines `X:value`. Used here: P name, V version, A arch, L license, o origin,
F a directory (relative to /), R a file in the last F directory.
"""

from __future__ import annotations

from portscan.inspect.packages import purl
from portscan.inspect.packages.base import Cataloger, Env
from portscan.model import Package

INSTALLED = "/lib/apk/db/installed"


def _package(record: dict[str, str], files: list[str], path: str, env: Env) -> Package:
    name, version, arch = record["P"], record.get("V", ""), record.get("A", "")
    origin = record.get("o", "")
    distro = env.distro
    return Package(
        name=name,
        version=version,
        ecosystem="apk",
        purl=purl.build(
            "apk",
            name,
            version,
            namespace=distro.id if distro else "alpine",
            qualifiers={
                "arch": arch,
                "distro": distro.qualifier if distro else "",
                "upstream": origin if origin != name else "",
            },
        ),
        architecture=arch,
        licenses=[record["L"]] if record.get("L") else [],
        source=path,
        files=env.owned_all(files),
    )


def parse(path: str, data: bytes | None, env: Env) -> list[Package]:
    """Packages of one apk installed database."""
    packages: list[Package] = []
    for block in (data or b"").decode("utf-8", "backslashreplace").split("\n\n"):
        record: dict[str, str] = {}
        files: list[str] = []
        directory = ""
        for line in block.split("\n"):
            key, sep, value = line.partition(":")
            if not sep or len(key) != 1:
                continue
            if key == "F":
                directory = "/" + value.strip("/")
            elif key == "R":
                files.append(f"{directory.rstrip('/')}/{value}")
            elif key not in record:
                record[key] = value
        if record.get("P"):
            packages.append(_package(record, files, path, env))
    return packages


CATALOGER = Cataloger(name="apk", globs=(INSTALLED,), parse=parse, max_bytes=32 << 20)
