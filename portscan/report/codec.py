"""Dataclasses to JSON-ready values and back, driven by the classes' type hints.

`encode` turns model objects into dicts, lists, strings and numbers (enums become their
values, `Evidence` drops its empty fields); `decode` rebuilds an object of a given type
from such values. A field missing from the input takes its default, so a document
written before a field was added still loads.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from typing import Any

from portscan.model import Evidence


def encode(value: Any) -> Any:
    """A JSON-ready copy of `value`."""
    if isinstance(value, Evidence):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(encode(k)): encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [encode(item) for item in value]
    return value


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def decode(kind: Any, value: Any) -> Any:
    """An object of type `kind` (a class or a typing form) rebuilt from `value`."""
    if kind is Any or value is None:
        return value
    origin = typing.get_origin(kind)
    args = typing.get_args(kind)
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in args if a is not type(None)]
        return decode(inner[0], value) if len(inner) == 1 else value
    if origin in (list, set, frozenset, tuple):
        item = args[0] if args else Any
        return origin(decode(item, v) for v in value)
    if origin is dict:
        key, item = args if args else (Any, Any)
        return {decode(key, k): decode(item, v) for k, v in value.items()}
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return kind(value)
    if dataclasses.is_dataclass(kind):
        hints = _hints(kind)
        names = {f.name for f in dataclasses.fields(kind) if f.init}
        return kind(**{k: decode(hints[k], v) for k, v in value.items() if k in names})
    return value
