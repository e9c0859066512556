"""Python distributions: `*.dist-info/METADATA` (files owned from `RECORD`), and
`*.egg-info/PKG-INFO` or a single-file `*.egg-info` (files from `installed-files.txt`).

Metadata is the core metadata format (packaging.python.org, "Core metadata
specifications"): RFC 822 style headers up to the first empty line.
"""

from __future__ import annotations

import csv
import posixpath
import re

from portscan.inspect.packages import purl
from portscan.inspect.packages.base import Cataloger, Env, ParseError
from portscan.model import Package

_NORMALISE = re.compile(r"[-_.]+")
_HEADERS = frozenset({"Name", "Version", "License", "License-Expression", "Classifier"})


def headers(text: str) -> dict[str, list[str]]:
    """The header fields this cataloger uses; a multi-line value keeps its lines."""
    fields: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.split("\n"):
        line = line.rstrip("\r")
        if not line:
            break
        if line[0] in " \t":
            if current is not None:
                current[-1] += "\n" + line.strip()
            continue
        key, _, value = line.partition(":")
        current = fields.setdefault(key, []) if key in _HEADERS else None
        if current is not None:
            current.append(value.strip())
    return fields


def licenses(fields: dict[str, list[str]]) -> list[str]:
    """License-Expression, else a one-line License, else the license classifiers."""
    if fields.get("License-Expression"):
        return fields["License-Expression"][:1]
    text = (fields.get("License") or [""])[0]
    if text and "\n" not in text.strip() and text.upper() != "UNKNOWN" and len(text) <= 120:
        return [text]
    prefix = "License :: "
    return [c.rpartition(" :: ")[2] for c in fields.get("Classifier", []) if c.startswith(prefix)]


def _installed(data: bytes | None, base: str, record: bool) -> list[str]:
    """Installed paths, relative to `base`, from a RECORD (CSV: path, hash, size) or an
    installed-files.txt (one path a line)."""
    if not data:
        return []
    lines = data.decode("utf-8", "backslashreplace").splitlines()
    relative = [row[0] for row in csv.reader(lines) if row] if record else lines
    return [posixpath.normpath(posixpath.join(base, p)) for p in relative if p]


def parse(path: str, data: bytes | None, env: Env) -> list[Package]:
    """The distribution one metadata file describes."""
    fields = headers((data or b"").decode("utf-8", "replace"))
    name, version = (fields.get("Name") or [""])[0], (fields.get("Version") or [""])[0]
    if not name or not version:
        raise ParseError("metadata has no Name or no Version")
    meta_dir, _, base = path.rpartition("/")
    if base.endswith(".egg-info"):  # a single-file egg-info: nothing lists its files
        listed: list[str] = []
    elif meta_dir.endswith(".dist-info"):
        record = env.read(meta_dir + "/RECORD")
        listed = _installed(record, posixpath.dirname(meta_dir), record=True)
    else:
        listed = _installed(env.read(meta_dir + "/installed-files.txt"), meta_dir, record=False)
    return [
        Package(
            name=name,
            version=version,
            ecosystem="python",
            purl=purl.build("pypi", _NORMALISE.sub("-", name).lower(), version),
            licenses=licenses(fields),
            source=path,
            files=env.owned_all(listed),
        )
    ]


CATALOGER = Cataloger(
    name="python",
    globs=("**/*.dist-info/METADATA", "**/*.egg-info/PKG-INFO", "**/*.egg-info"),
    reads=("**/*.dist-info/RECORD", "**/*.egg-info/installed-files.txt"),
    parse=parse,
)
