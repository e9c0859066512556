"""Java archives (`.jar`, `.war`, `.ear`), read in memory with zipfile.

Each `META-INF/maven/GROUP/ARTIFACT/pom.properties` is a Maven package; when none
names the archive itself, `META-INF/MANIFEST.MF` (JAR File Specification, "Main
Attributes") and the file name give one. Archives nested one level deep
(`WEB-INF/lib/*.jar`, `BOOT-INF/lib/*.jar`) are read the same way; their `source` is
`outer:inner` and they own no tree path.
"""

from __future__ import annotations

import io
import posixpath
import re
import zipfile

from portscan.inspect.packages import purl
from portscan.inspect.packages.base import Cataloger, Env
from portscan.model import Package

ARCHIVE_SUFFIXES = (".jar", ".war", ".ear")
MANIFEST = "META-INF/MANIFEST.MF"
_NAME_VERSION = re.compile(r"(?P<name>.+?)-(?P<version>\d[^/]*)")


def manifest_main(text: str) -> dict[str, str]:
    """Main attributes of a manifest; continuation lines start with one space."""
    out: dict[str, str] = {}
    key = ""
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line:
            break
        if line.startswith(" ") and key:
            out[key] += line[1:]
            continue
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def properties(text: str) -> dict[str, str]:
    """`key=value` lines of a Java properties file (the subset pom.properties uses)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and line[0] not in "#!":
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def _package(group: str, artifact: str, version: str, source: str, lic: list[str]) -> Package:
    return Package(
        name=artifact,
        version=version,
        ecosystem="java",
        purl=purl.build("maven", artifact, version, namespace=group),
        licenses=lic,
        source=source,
    )


def archive_packages(data: bytes, source: str, nested: bool) -> list[Package]:
    """Packages of one archive, the one naming the archive itself first."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        main = (
            manifest_main(archive.read(MANIFEST).decode("utf-8", "replace"))
            if MANIFEST in names
            else {}
        )
        poms = [
            properties(archive.read(n).decode("utf-8", "replace"))
            for n in names
            if n.startswith("META-INF/maven/") and n.endswith("/pom.properties")
        ]
        inner = [n for n in names if n.endswith(ARCHIVE_SUFFIXES)] if nested else []
        inner_data = [(n, archive.read(n)) for n in inner]
    stem = posixpath.basename(source.rpartition(":")[2]).rpartition(".")[0]
    match = _NAME_VERSION.fullmatch(stem)
    file_name, file_version = (match["name"], match["version"]) if match else (stem, "")
    lic = [main["Bundle-License"]] if main.get("Bundle-License") else []
    found = [
        _package(p.get("groupId", ""), p["artifactId"], p.get("version", ""), source, [])
        for p in poms
        if p.get("artifactId")
    ]
    own = [p for p in found if p.name == file_name] or (found if len(found) == 1 else [])
    if own:
        own[0].licenses = lic
        found.remove(own[0])
        found.insert(0, own[0])
    else:
        version = (
            main.get("Implementation-Version")
            or main.get("Bundle-Version")
            or main.get("Specification-Version")
            or file_version
        )
        group = main.get("Implementation-Vendor-Id", "")
        found.insert(0, _package(group if "." in group else "", file_name, version, source, lic))
    for name, blob in inner_data:
        try:
            found += archive_packages(blob, f"{source}:{name}", nested=False)
        except zipfile.BadZipFile:
            continue  # a resource that merely ends in .jar
    return found


def parse(path: str, data: bytes | None, env: Env) -> list[Package]:
    """Packages of one archive in the tree; the archive's own package owns the file."""
    packages = archive_packages(data or b"", path, nested=True)
    packages[0].files = [path]
    return packages


CATALOGER = Cataloger(name="java", globs=tuple("**/*" + s for s in ARCHIVE_SUFFIXES), parse=parse)
