"""`codec.encode`, the walk behind every JSON result, on each kind of value it meets."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from portscan.codec import encode
from portscan.model import ChainStep, Evidence, FileKind, Target


@dataclass
class _Empty:
    pass


@dataclass
class _Inner:
    kind: FileKind
    names: tuple[str, ...] = ()


@dataclass
class _Outer:
    name: str
    inner: _Inner
    by_target: dict[Target, list[_Inner]] = field(default_factory=dict)
    tags: frozenset[str] = frozenset()
    evidence: list[Evidence] = field(default_factory=list)
    empty: _Empty = field(default_factory=_Empty)
    counts: OrderedDict[int, float] = field(default_factory=OrderedDict)


def test_encode_takes_every_kind_of_value_apart() -> None:
    value = _Outer(
        "x",
        _Inner(FileKind.SYMLINK, ("a", "b")),
        {Target.WASIP1: [_Inner(FileKind.DIR)]},
        frozenset({"t"}),
        [Evidence("/bin/sh", symbol="fork")],
        counts=OrderedDict({1: 0.5}),
    )
    assert encode(value) == {
        "name": "x",
        "inner": {"kind": "symlink", "names": ["a", "b"]},
        "by_target": {"wasip1": [{"kind": "dir", "names": []}]},
        "tags": ["t"],
        "evidence": [{"file": "/bin/sh", "symbol": "fork"}],  # empty fields dropped
        "empty": {},  # a dataclass without fields is an object, not its own to_dict
        "counts": {"1": 0.5},
    }
    assert encode([None, True, 3, (1, 2), {5: FileKind.FILE}]) == [
        None, True, 3, [1, 2], {"5": "file"},
    ]  # fmt: skip


def test_the_document_text_is_utf8_json_with_json_s_values() -> None:
    """`_compact` (orjson) writes what json.loads reads back as the same values: non-ASCII
    as it is, not escaped; an integer past 64 bits (which orjson refuses) through json."""
    import json

    from portscan.codec import _compact

    value = {"name": "gojq.funcNameArity·2", "size": 2**64 - 1, "score": 0.1, "none": None}
    text = _compact(value).decode()  # UTF-8: a decoding error fails the test
    assert "·" in text and "\\u" not in text and json.loads(text) == value
    huge = {"address": 2**70, "name": "é"}
    assert json.loads(_compact(huge)) == huge and "é" in _compact(huge).decode()


def test_a_chain_is_written_as_objects_of_its_steps_fields_by_both_encoders() -> None:
    """Evidence keeps its chain's ChainSteps: orjson writes each as {"file", "function"},
    and json (for a document with an integer past 64 bits) the same."""
    import json

    from portscan.codec import _compact, encode

    chain = (ChainStep("/usr/bin/hello"), ChainStep("/usr/lib/libgreet.so.1", "greet"))
    evidence = Evidence("/usr/bin/hello", symbol="greet", chain=chain)
    written = [
        {"file": "/usr/bin/hello", "function": ""},
        {"file": "/usr/lib/libgreet.so.1", "function": "greet"},
    ]
    assert json.loads(_compact(encode(evidence)))["chain"] == written
    huge = {"address": 2**70, "evidence": encode(evidence)}
    assert json.loads(_compact(huge))["evidence"]["chain"] == written
