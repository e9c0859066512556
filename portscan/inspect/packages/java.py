"""Java archives (`.jar`, `.war`, `.ear`), read in memory with zipfile.

Each `META-INF/maven/GROUP/ARTIFACT/pom.properties` is a Maven package; when none
names the archive itself, `META-INF/MANIFEST.MF` (JAR File Specification, "Main
Attributes") and the file name give one. Archives nested one level deep
(`WEB-INF/lib/*.jar`, `BOOT-INF/lib/*.jar`) are read the same way; their `source` is
`outer:inner` and they own no tree path.

Nothing is inflated past a limit (docs/security.md, "Memory"): a zip entry states its
inflated size, and zipfile stops at it (a longer stream fails its CRC), so each read
is checked against `MAX_TEXT_ENTRY` (manifests, pom.properties) or `MAX_NESTED_ENTRY`
(nested archives) and all reads of one archive against `MAX_INFLATED` before it
happens; an entry over a limit is skipped with a warning. zipfile turns the whole
central directory into objects on opening, so an archive whose central directory is
over `MAX_CENTRAL_DIRECTORY` bytes (APPNOTE.TXT 4.3.16, 4.3.14) is not opened.
"""

from __future__ import annotations

import io
import posixpath
import re
import zipfile

from portscan.inspect.packages import purl
from portscan.inspect.packages.base import Cataloger, Env, ParseError
from portscan.model import Package

ARCHIVE_SUFFIXES = (".jar", ".war", ".ear")
MANIFEST = "META-INF/MANIFEST.MF"
_NAME_VERSION = re.compile(r"(?P<name>.+?)-(?P<version>\d[^/]*)")
MAX_TEXT_ENTRY = 1 << 20
MAX_NESTED_ENTRY = 64 << 20
MAX_INFLATED = 256 << 20
MAX_CENTRAL_DIRECTORY = 8 << 20  # about 100,000 entries; real fat jars have some 20,000
_EOCD, _ZIP64_LOCATOR, _ZIP64_EOCD = b"PK\x05\x06", b"PK\x06\x07", b"PK\x06\x06"


def central_directory_size(data: bytes) -> int:
    """The central directory size an archive's end records state (0 if none found)."""
    end = data.rfind(_EOCD, max(0, len(data) - 65_557))
    if end < 0 or end + 22 > len(data):
        return 0
    size = int.from_bytes(data[end + 12 : end + 16], "little")
    locator = end - 20
    if size == 0xFFFFFFFF and locator >= 0 and data[locator : locator + 4] == _ZIP64_LOCATOR:
        record = int.from_bytes(data[locator + 8 : locator + 16], "little")
        if data[record : record + 4] == _ZIP64_EOCD:
            size = int.from_bytes(data[record + 40 : record + 48], "little")
    return size


class _Inflater:
    """Reads entries of one archive within the limits of the module docstring."""

    def __init__(self, archive: zipfile.ZipFile, source: str, warnings: list[str]) -> None:
        self.archive = archive
        self.source = source
        self.warnings = warnings
        self.total = 0

    def read(self, name: str, limit: int) -> bytes | None:
        size = self.archive.getinfo(name).file_size
        if size > limit or self.total + size > MAX_INFLATED:
            self.warnings.append(
                f"{self.source}: {name} would inflate to {size} bytes, more than the "
                f"{min(limit, MAX_INFLATED - self.total)} allowed; not read"
            )
            return None
        self.total += size
        return self.archive.read(name)

    def text(self, name: str) -> str | None:
        data = self.read(name, MAX_TEXT_ENTRY)
        return None if data is None else data.decode("utf-8", "replace")


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


def archive_packages(
    data: bytes, source: str, nested: bool, warnings: list[str] | None = None
) -> list[Package]:
    """Packages of one archive, the one naming the archive itself first; entries over
    the inflate limits are skipped with a line in `warnings`."""
    warnings = [] if warnings is None else warnings
    if (directory := central_directory_size(data)) > MAX_CENTRAL_DIRECTORY:
        raise ParseError(
            f"its central directory is {directory} bytes, more than the "
            f"{MAX_CENTRAL_DIRECTORY} read"
        )
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        inflater = _Inflater(archive, source, warnings)
        names = archive.namelist()
        manifest_text = inflater.text(MANIFEST) if MANIFEST in names else None
        main = manifest_main(manifest_text) if manifest_text is not None else {}
        pom_texts = [
            inflater.text(n)
            for n in names
            if n.startswith("META-INF/maven/") and n.endswith("/pom.properties")
        ]
        poms = [properties(text) for text in pom_texts if text is not None]
        inner = [n for n in names if n.endswith(ARCHIVE_SUFFIXES)] if nested else []
        inner_read = [(n, inflater.read(n, MAX_NESTED_ENTRY)) for n in inner]
        inner_data = [(n, blob) for n, blob in inner_read if blob is not None]
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
            found += archive_packages(blob, f"{source}:{name}", nested=False, warnings=warnings)
        except zipfile.BadZipFile:
            continue  # a resource that merely ends in .jar
        except ParseError as exc:
            warnings.append(f"{source}:{name}: not read: {exc}")
    return found


def parse(path: str, data: bytes | None, env: Env) -> list[Package]:
    """Packages of one archive in the tree; the archive's own package owns the file."""
    packages = archive_packages(data or b"", path, nested=True, warnings=env.warnings)
    packages[0].files = [path]
    return packages


CATALOGER = Cataloger(name="java", globs=tuple("**/*" + s for s in ARCHIVE_SUFFIXES), parse=parse)
