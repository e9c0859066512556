"""Package URLs per the purl specification (github.com/package-url/purl-spec,
PURL-SPECIFICATION.rst): `pkg:type/namespace/name@version?qualifiers#subpath`.

Components are percent-encoded except the unreserved characters and `:`; qualifiers
are sorted by key and empty values are dropped, which is the canonical form.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

# what `quote(text, safe=":")` leaves as it is: most names and versions, as they are
_AS_IS = re.compile(r"[A-Za-z0-9_.~:-]*")


def _enc(text: str) -> str:
    return text if _AS_IS.fullmatch(text) else quote(text, safe=":")


def build(
    type_: str,
    name: str,
    version: str = "",
    namespace: str = "",
    qualifiers: dict[str, str] | None = None,
) -> str:
    """The canonical purl string for these components."""
    out = f"pkg:{type_.lower()}/"
    if namespace:
        out += "/".join(_enc(part) for part in namespace.split("/") if part) + "/"
    out += _enc(name)
    if version:
        out += "@" + _enc(version)
    pairs = sorted((k.lower(), v) for k, v in (qualifiers or {}).items() if v)
    if pairs:
        out += "?" + "&".join(f"{k}={_enc(v)}" for k, v in pairs)
    return out


def key(purl: str) -> tuple[str, str, str, str]:
    """(type, namespace, name, version), decoded and normalised per type: the identity
    two tools agree on even when their qualifiers differ."""
    body = purl.removeprefix("pkg:").partition("#")[0].partition("?")[0]
    path, _, version = body.rpartition("@") if "@" in body else (body, "", "")
    type_, _, rest = path.partition("/")
    namespace, _, name = rest.rpartition("/")
    type_ = type_.lower()
    name, namespace, version = unquote(name), unquote(namespace), unquote(version)
    if type_ == "pypi":
        name = name.lower().replace("_", "-").replace(".", "-")
    elif type_ in ("deb", "apk", "rpm", "npm", "golang"):
        namespace = namespace.lower()
    return type_, namespace, name, version
