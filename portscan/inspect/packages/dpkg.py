"""Debian packages: `/var/lib/dpkg/status`, or one file per package in
`/var/lib/dpkg/status.d/` (distroless). Format: deb822 paragraphs (deb-status(5)).

Files owned come from `/var/lib/dpkg/info/NAME[:ARCH].list` (deb-list; multi-arch
packages use the `:ARCH` name), or for distroless from `status.d/NAME.md5sums` plus
the paragraph's Conffiles. Licenses come from the `License:` lines of a
machine-readable `/usr/share/doc/NAME/copyright` (DEP-5).
"""

from __future__ import annotations

from portscan.inspect.packages import purl
from portscan.inspect.packages.base import Cataloger, Env
from portscan.model import Package

STATUS = "/var/lib/dpkg/status"
STATUS_D = "/var/lib/dpkg/status.d/"
INFO = "/var/lib/dpkg/info/"
# dpkg's package states (deb-status(5)) in which the package's files are on disk
_PRESENT = frozenset(
    {"installed", "half-configured", "unpacked", "half-installed"}
    | {"triggers-awaited", "triggers-pending"}
)
_FIELDS = frozenset({"Package", "Status", "Version", "Architecture", "Source"})


def paragraphs(text: str) -> list[dict[str, str]]:
    """The fields this cataloger uses from each paragraph; `Conffiles` holds the
    conffile paths, one a line."""
    out: list[dict[str, str]] = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        conffiles: list[str] = []
        current = ""
        for line in block.split("\n"):
            if not line:
                continue
            if line[0] in " \t":
                if current == "Conffiles":
                    conffiles.append(line.split(None, 1)[0])
                continue
            current, _, value = line.partition(":")
            if current in _FIELDS:
                fields[current] = value.strip()
        if "Package" in fields:
            if conffiles:
                fields["Conffiles"] = "\n".join(conffiles)
            out.append(fields)
    return out


def _purl(fields: dict[str, str], env: Env) -> str:
    name, version = fields["Package"], fields["Version"]
    source, _, source_version = fields.get("Source", "").partition(" (")
    source_version = source_version.rstrip(")")
    upstream = ""
    if source_version and source_version != version:
        upstream = f"{source or name}@{source_version}"
    elif source and source != name:
        upstream = source
    distro = env.distro
    return purl.build(
        "deb",
        name,
        version,
        namespace=distro.id if distro else "debian",  # dpkg databases are Debian's format
        qualifiers={
            "arch": fields.get("Architecture", ""),
            "distro": distro.qualifier if distro else "",
            "upstream": upstream,
        },
    )


def _lines(data: bytes | None) -> list[str]:
    return data.decode("utf-8", "backslashreplace").splitlines() if data else []


def _listed_files(fields: dict[str, str], env: Env, db_path: str) -> list[str]:
    name, arch = fields["Package"], fields.get("Architecture", "")
    if db_path == STATUS:
        data = env.read(f"{INFO}{name}:{arch}.list") or env.read(f"{INFO}{name}.list")
        return env.owned_all(_lines(data))
    md5sums = env.read(db_path + ".md5sums") or env.read(f"{STATUS_D}{name}.md5sums")
    listed = ["/" + line.partition("  ")[2].lstrip("/") for line in _lines(md5sums)]
    return env.owned_all(listed + fields.get("Conffiles", "").split("\n"))


def copyright_licenses(data: bytes | None) -> list[str]:
    """Distinct `License:` values of a DEP-5 copyright file, in order of appearance."""
    if not data:
        return []
    text = data.decode("utf-8", "replace")
    found: dict[str, None] = {}
    start = 0 if text.startswith("License:") else text.find("\nLicense:")
    while start != -1:
        begin = text.find(":", start) + 1
        end = text.find("\n", begin)
        value = text[begin : end if end != -1 else len(text)].strip()
        if value:
            found[value] = None
        start = text.find("\nLicense:", begin)
    return list(found)


def parse(path: str, data: bytes | None, env: Env) -> list[Package]:
    """Packages of one dpkg status file (or one distroless status.d file)."""
    if path.endswith(".md5sums") or not data:
        return []
    packages = []
    for fields in paragraphs(data.decode("utf-8", "backslashreplace")):
        state = fields.get("Status", "install ok installed").rpartition(" ")[2]
        if state not in _PRESENT or "Version" not in fields:
            continue
        name = fields["Package"]
        packages.append(
            Package(
                name=name,
                version=fields["Version"],
                ecosystem="deb",
                purl=_purl(fields, env),
                architecture=fields.get("Architecture", ""),
                licenses=copyright_licenses(env.read(f"/usr/share/doc/{name}/copyright")),
                source=path,
                files=_listed_files(fields, env, path),
            )
        )
    return packages


CATALOGER = Cataloger(
    name="dpkg",
    globs=(STATUS, STATUS_D + "*"),
    reads=(INFO + "*.list", "/usr/share/doc/*/copyright"),
    parse=parse,
    max_bytes=32 << 20,  # Debian's largest status files are a few MiB
)
