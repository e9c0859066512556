"""The one validating layer between untrusted image metadata and the rest of portscan.

Every JSON document an image source reads (index, manifest, config, `manifest.json`
of a `docker save` archive) goes through `load_json`: its size is capped before it is
read (`read_capped`) and its nesting depth while it is parsed. Every config field
portscan uses is read through `image_config`, which checks its JSON type against the
OCI image spec (config.md) and Docker's image spec v1.2:

- a field of the wrong type (`Env` a string, `Entrypoint` a number, a numeric `os` or
  `User`) is refused with `CorruptImageError` (exit 6) naming the field, as Docker,
  containerd and go-containerregistry refuse it when they decode the config;
- a value of the right type that the spec forbids (an `Env` entry without `=`, a
  malformed media type, an empty OCI `layers` list) is refused the same way; what the
  spec allows but portscan cannot use (an unknown layer media type) is a warning.

Digests follow the image spec's grammar (descriptor.md) whatever their algorithm
(`digest`); content under one portscan cannot verify (not sha256 or sha512) is refused
by `verifiable` where a source is about to read it, never while a document is parsed.

Blob files of OCI layouts are opened with `open_regular`: no symlinks, no FIFOs or
devices (a FIFO would block `open()` forever, `/dev/zero` never ends).
Limits and how to change them: docs/security.md.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import stat
from pathlib import Path
from typing import Any, BinaryIO

from portscan.errors import CorruptImageError
from portscan.model import HistoryEntry, ImageConfig

MAX_DOCUMENT_BYTES = 16 << 20  # manifests, indexes and configs are read whole
MAX_JSON_DEPTH = 64  # real documents nest 4 to 6 deep; Python's parser recurses
# descriptor.md, "Digests": the registered algorithms portscan verifies, and the length
# of their lowercase hex encoding; a digest naming one must have exactly that encoding.
VERIFIED_ALGORITHMS = {"sha256": 64, "sha512": 128}
DIGEST = re.compile(  # a digest portscan can verify
    "^(?:" + "|".join(f"{a}:[0-9a-f]{{{n}}}" for a, n in VERIFIED_ALGORITHMS.items()) + ")$"
)
# descriptor.md, "Digests": the grammar any digest follows, algorithm registered or not
ANY_DIGEST = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")  # RFC 3986 section 3: a scheme, then more
# RFC 6838 section 4.2, as the image spec's JSON schema writes it (defs-descriptor.json)
MEDIA_TYPE = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$"
)

_JSON_TYPES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    int: "a number",
    float: "a number",
    type(None): "null",
}


def json_type(value: Any) -> str:
    """The JSON type of a parsed value, as a message says it ("a string")."""
    return _JSON_TYPES.get(type(value), type(value).__name__)


def load_json(data: bytes, where: str, limit: int = MAX_DOCUMENT_BYTES) -> Any:
    """Parse a JSON document of at most `limit` bytes nesting at most `MAX_JSON_DEPTH`
    levels; `CorruptImageError` (naming `where`) for anything else."""
    if len(data) > limit:
        raise CorruptImageError(f"{where} is {len(data)} bytes, more than the {limit} allowed")
    # Each level opens a bracket, so few brackets cannot nest deep: skip the walk.
    brackets = data.count(b"[") + data.count(b"{")
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptImageError(f"{where} is not valid JSON ({exc})") from None
    except RecursionError:  # the C parser stops at the interpreter's recursion limit
        raise _too_deep(where) from None
    if brackets > MAX_JSON_DEPTH and _depth(doc) > MAX_JSON_DEPTH:
        raise _too_deep(where)
    if b"\\u" in data or b"\xed" in data:  # how a lone surrogate gets into a string
        doc = _without_surrogates(doc)
    return doc


_SURROGATE = re.compile("[\ud800-\udfff]")


def _without_surrogates(doc: Any) -> Any:
    """`doc` with each lone UTF-16 surrogate replaced by U+FFFD, as Go's decoder does
    (they are not characters: no UTF-8 writer would print them). Iterative."""

    def clean(value: Any) -> Any:
        return _SURROGATE.sub("\ufffd", value) if isinstance(value, str) else value

    root = [clean(doc)]
    stack: list[Any] = [root[0]]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            items = [(clean(k), clean(v)) for k, v in value.items()]
            value.clear()
            value.update(items)
            stack += [v for _, v in items if isinstance(v, dict | list)]
        elif isinstance(value, list):
            value[:] = [clean(v) for v in value]
            stack += [v for v in value if isinstance(v, dict | list)]
    return root[0]


def _too_deep(where: str) -> CorruptImageError:
    return CorruptImageError(
        f"{where} nests JSON deeper than {MAX_JSON_DEPTH} levels",
        "no image manifest or config is built that way",
    )


def _depth(doc: Any) -> int:
    """The nesting depth of a parsed document, without recursion."""
    deepest = 0
    stack = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_JSON_DEPTH:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest


def read_capped(handle: BinaryIO, where: str, limit: int = MAX_DOCUMENT_BYTES) -> bytes:
    """Read a whole document from `handle`, refusing (before buffering it) one above `limit`."""
    data = handle.read(limit + 1)
    if len(data) > limit:
        raise CorruptImageError(f"{where} is larger than the {limit} bytes allowed")
    return data


def open_regular(path: Path, where: str) -> BinaryIO:
    """Open `path` for reading if it is a regular file, never blocking on a FIFO and
    never following a symlink; `CorruptImageError` otherwise (FileNotFoundError passes)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        if path.is_symlink():
            raise CorruptImageError(f"{where} is a symlink, not a regular file") from None
        raise CorruptImageError(f"{where} cannot be opened ({exc.strerror})") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise CorruptImageError(f"{where} is a {_file_type(mode)}, not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _file_type(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISDIR, "directory"),
    ):
        if test(mode):
            return name
    return "special file"


# --------------------------------------------------------------------------- typed fields


class Fields:
    """Typed reads of one JSON object; `where` and the field path name any refusal."""

    def __init__(self, doc: Any, where: str, path: str = "") -> None:
        if doc is not None and not isinstance(doc, dict):
            raise _wrong_type(where, path or "(document)", doc, "an object")
        self.doc: dict[str, Any] = doc or {}
        self.where = where
        self.path = path

    def _name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def _get(self, key: str, expected: type, says: str) -> Any:
        value = self.doc.get(key)
        if value is not None and not isinstance(value, expected):
            raise _wrong_type(self.where, self._name(key), value, says)
        return value

    def string(self, key: str) -> str | None:
        return self._get(key, str, "a string")

    def boolean(self, key: str) -> bool | None:
        return self._get(key, bool, "a boolean")

    def obj(self, key: str) -> Fields:
        return Fields(self._get(key, dict, "an object"), self.where, self._name(key))

    def strings(self, key: str) -> list[str]:
        """An array of strings (null or absent: empty)."""
        items = self._get(key, list, "an array of strings") or []
        for i, item in enumerate(items):
            if not isinstance(item, str):
                raise _wrong_type(self.where, f"{self._name(key)}[{i}]", item, "a string")
        return list(items)

    def keys(self, key: str) -> list[str]:
        """The keys of an object used as a set (`ExposedPorts`, `Volumes`)."""
        return sorted(self._get(key, dict, "an object") or {})

    def string_map(self, key: str) -> dict[str, str]:
        """An object of strings (`Labels`, `annotations`)."""
        items = self._get(key, dict, "an object of strings") or {}
        for name, value in items.items():
            if not isinstance(value, str):
                raise _wrong_type(self.where, f"{self._name(key)}.{name}", value, "a string")
        return dict(items)

    def objects(self, key: str) -> list[Fields]:
        items = self._get(key, list, "an array of objects") or []
        return [Fields(item, self.where, f"{self._name(key)}[{i}]") for i, item in enumerate(items)]


def _wrong_type(where: str, name: str, value: Any, says: str) -> CorruptImageError:
    return CorruptImageError(
        f"{where}: field {name} is {json_type(value)}, the image spec says {says}",
        "the image was built by a broken tool; rebuild it",
    )


def image_config(doc: Any, where: str) -> tuple[ImageConfig, list[str]]:
    """The `ImageConfig` of a config document, every field type-checked (module
    docstring), and warnings for what was dropped."""
    top = Fields(doc, where)
    for key in ("os", "architecture", "variant", "created", "author"):
        top.string(key)
    cfg = top.obj("config")
    warnings: list[str] = []
    env = cfg.strings("Env")
    for i, item in enumerate(env):
        if "=" not in item:  # config.md: "entries are in the format of VARNAME=VARVALUE"
            raise CorruptImageError(f"{where}: field config.Env[{i}] {item[:60]!r} has no '='")
    rootfs = top.obj("rootfs")
    rootfs_type = rootfs.string("type")
    if rootfs_type is not None and rootfs_type != "layers":
        raise CorruptImageError(f"{where}: field rootfs.type is {rootfs_type!r}, not 'layers'")
    diff_ids = rootfs.strings("diff_ids")
    for i, diff_id in enumerate(diff_ids):
        if not is_digest(diff_id):
            raise CorruptImageError(f"{where}: field rootfs.diff_ids[{i}] is not a digest")
    history = [
        HistoryEntry(
            created_by=h.string("created_by") or "",
            created=h.string("created"),
            empty_layer=bool(h.boolean("empty_layer")),
            comment=h.string("comment"),
        )
        for h in top.objects("history")
    ]
    config = ImageConfig(
        entrypoint=cfg.strings("Entrypoint"),
        cmd=cfg.strings("Cmd"),
        env=env,
        user=cfg.string("User") or "",
        working_dir=cfg.string("WorkingDir") or "",
        exposed_ports=cfg.keys("ExposedPorts"),
        volumes=cfg.keys("Volumes"),
        labels=cfg.string_map("Labels"),
        stop_signal=cfg.string("StopSignal"),
        history=history,
        diff_ids=diff_ids,
    )
    return config, warnings


def media_type(value: Any, where: str, name: str) -> str:
    """A media type the image spec requires (RFC 6838 form); `CorruptImageError` naming
    field `name` if it is missing or malformed."""
    if value is None or value == "":
        raise CorruptImageError(f"{where}: {name} is missing (the image spec requires it)")
    if not isinstance(value, str):
        raise _wrong_type(where, name, value, "a string")
    if not MEDIA_TYPE.match(value):
        raise CorruptImageError(f"{where}: {name} {value[:80]!r} is not a media type")
    return value


def is_digest(value: Any) -> bool:
    """Whether `value` is a digest as the image spec writes one (descriptor.md): any
    algorithm, but sha256 and sha512 only with their lowercase hex encoding."""
    if not isinstance(value, str) or not ANY_DIGEST.match(value):
        return False
    return value.partition(":")[0] not in VERIFIED_ALGORITHMS or bool(DIGEST.match(value))


def digest(value: Any, where: str, name: str) -> str:
    """A digest in a document (`is_digest`); one of an algorithm portscan cannot verify
    is accepted here and refused by `verifiable` when its content is to be read."""
    if is_digest(value):
        return value
    raise CorruptImageError(f"{where}: invalid digest {str(value)[:80]!r} in {name}")


def verifiable(value: str, what: str) -> str:
    """`value` if portscan can verify content under it (sha256, sha512); otherwise
    `CorruptImageError` naming `what` (the blob), before a byte of it is read."""
    if DIGEST.match(value):
        return value
    algorithm = value.partition(":")[0]
    shown = value if len(value) <= 160 else value[:157] + "..."
    raise CorruptImageError(
        f"{what} {shown} uses the digest algorithm {algorithm[:40]}; portscan verifies "
        f"{' and '.join(VERIFIED_ALGORITHMS)} only, so it does not read content it cannot check"
    )


def descriptor_extras(fields: Fields) -> None:
    """The optional descriptor fields portscan does not use, checked as the image spec
    says (descriptor.md): `urls` are URIs, `artifactType` a media type, `data` base64."""
    for i, url in enumerate(fields.strings("urls")):
        if not URI.match(url):
            raise CorruptImageError(f"{fields.where}: {fields._name('urls')}[{i}] is not a URI")
    artifact = fields.doc.get("artifactType")
    if artifact is not None:
        media_type(artifact, fields.where, fields._name("artifactType"))
    data = fields.string("data")
    if data is not None:
        try:
            base64.b64decode(data, validate=True)
        except binascii.Error:
            raise CorruptImageError(
                f"{fields.where}: {fields._name('data')} is not base64 (RFC 4648)"
            ) from None
