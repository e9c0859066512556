"""signatures/ports.json: every known port cites a public reference and a date, names real
capabilities, and is found by package, binary path or runtime."""

from __future__ import annotations

import datetime
import fnmatch
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from portscan import knowledge
from portscan.errors import SignaturesError
from portscan.knowledge import tables as sig
from portscan.model import Target

REPO = Path(__file__).resolve().parent.parent
SIGNATURES = REPO / "signatures"


def _raw() -> dict:
    return json.loads((SIGNATURES / "ports.json").read_text())


def test_every_row_and_target_cites_an_https_reference() -> None:
    known = sig.references()
    rows = _raw()["ports"]
    assert rows
    for row in rows:
        assert row["targets"], row["id"]
        for target, entry in row["targets"].items():
            refs = entry.get("references") or []
            assert refs, (row["id"], target)
            for ref in refs:
                assert ref in known, (row["id"], target, ref)
                assert (known[ref].url or "").startswith("https://"), (row["id"], ref)


def test_targets_dates_and_capabilities_are_known() -> None:
    capabilities = set(sig.capability_map().capabilities)
    targets = {t.value for t in Target}
    for row in _raw()["ports"]:
        for target, entry in row["targets"].items():
            assert target in targets, (row["id"], target)
            datetime.date.fromisoformat(entry["checked"])
            assert set(entry["lacks"]) <= capabilities, (row["id"], target)
            assert entry["port"] and entry["note"], (row["id"], target)


def test_loader_types_every_row() -> None:
    ports = sig.ports()
    assert len(ports) == len(_raw()["ports"])
    assert len({p.id for p in ports}) == len(ports)
    for port in ports:
        assert port.packages or port.binaries or port.runtimes, port.id
        assert set(port.runtimes) <= set(sig.runtimes()), port.id
        for entry in port.targets.values():
            assert entry.references


@pytest.fixture
def ports_doc(tmp_path: Path, monkeypatch) -> Iterator:
    """Write a changed ports.json into a copy of signatures/ and load it."""
    for path in SIGNATURES.glob("*.json"):
        (tmp_path / path.name).write_text(path.read_text())
    monkeypatch.setenv(knowledge.SIGNATURES_ENV, str(tmp_path))

    def write(change) -> None:
        doc = _raw()
        change(doc)
        (tmp_path / "ports.json").write_text(json.dumps(doc))
        sig.clear_cache()

    yield write
    monkeypatch.delenv(knowledge.SIGNATURES_ENV)
    sig.clear_cache()


def _bash_wasix(doc: dict) -> dict:
    return next(r for r in doc["ports"] if r["id"] == "bash")["targets"]["wasix"]


@pytest.mark.parametrize(
    "change",
    [
        lambda d: _bash_wasix(d).update(references=[]),
        lambda d: _bash_wasix(d).pop("references"),
        lambda d: _bash_wasix(d).update(references=["no-such-reference"]),
        lambda d: _bash_wasix(d).update(lacks=["no-such-capability"]),
        lambda d: _bash_wasix(d).update(checked="last week"),
    ],
    ids=[
        "empty-references",
        "no-references",
        "unknown-reference",
        "unknown-capability",
        "bad-date",
    ],
)
def test_a_bad_row_fails_to_load(ports_doc, change) -> None:
    ports_doc(change)
    with pytest.raises(SignaturesError):
        sig.ports()


def test_the_unchanged_copy_loads(ports_doc) -> None:
    ports_doc(lambda d: None)
    assert sig.port_for("bash", None, None) is not None


def test_port_for_bash_by_package_and_binary_path() -> None:
    by_package = sig.port_for("bash", None, None)
    by_path = sig.port_for(None, "/usr/bin/bash", None)
    assert by_package is not None and by_package.id == "bash"
    assert by_path is not None and by_path.id == "bash"
    assert Target.WASIX in by_package.targets


def test_port_for_python_by_runtime_package_and_binary() -> None:
    by_runtime = sig.port_for(None, None, "cpython")
    assert by_runtime is not None and by_runtime.id == "cpython"
    assert {Target.WASIP1, Target.WASIX} <= set(by_runtime.targets)
    assert "threads" in by_runtime.targets[Target.WASIP1].lacks
    assert sig.port_for("python3.11-minimal", None, None) is by_runtime
    assert sig.port_for(None, "/usr/local/bin/python3.11", None) is by_runtime


def test_port_for_unknown_component_is_none() -> None:
    assert sig.port_for("nginx", "/usr/sbin/nginx", "go") is None
    assert sig.port_for(None, None, None) is None


def _row_by_row(package: str | None, path: str | None) -> sig.Port | None:
    """port_for's answer as the rows give it one by one (fnmatch, case-sensitive):
    package globs, then binary globs on the path's basename."""
    rows = sig.ports()
    for row in rows if package else ():
        if any(fnmatch.fnmatchcase(package or "", glob) for glob in row.packages):
            return row
    name = (path or "").rstrip("/").rsplit("/", 1)[-1]
    for row in rows if path else ():
        if any(fnmatch.fnmatchcase(name, glob) for glob in row.binaries):
            return row
    return None


def test_port_for_finds_the_first_matching_row_as_row_by_row(ports_doc) -> None:
    """port_for's one regex per kind answers as the rows tried in order: on names made
    from every glob of ports.json, and with a row put first whose globs match every
    name (it must then win everywhere)."""

    def names() -> list[tuple[str | None, str | None]]:
        made: list[tuple[str | None, str | None]] = [("nginx", "/usr/sbin/nginx")]
        for row in sig.ports():
            for glob in row.packages:
                made.append((glob.replace("*", "x-1").replace("?", "y"), None))
            for glob in row.binaries:
                made.append((None, "/usr/bin/" + glob.replace("*", "3.11").replace("?", "z")))
        return made

    cases = names()
    found = [sig.port_for(package, path, None) for package, path in cases]
    assert found == [_row_by_row(package, path) for package, path in cases]
    assert sum(f is not None for f in found) > 20
    catch_all = {"id": "catch-all", "title": "every name", "match": {"packages": ["*"],
                 "binaries": ["*"]}, "targets": _raw()["ports"][0]["targets"]}  # fmt: skip
    ports_doc(lambda doc: doc["ports"].insert(0, catch_all))
    assert {sig.port_for(package, path, None).id for package, path in cases} == {"catch-all"}
