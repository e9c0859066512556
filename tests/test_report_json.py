"""The JSON result: valid against its schema, and loaded back into the same ScanResult."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from portscan import codec as json_report
from portscan.codec import ResultFormatError, from_dict, is_saved_result, load_result
from portscan.errors import UsageError
from tests import reportfixtures as rf

SCHEMA = Path(__file__).parents[1] / "portscan/report/schema/portscan-result.schema.json"


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> rf.Scans:
    return rf.fixture_scans(tmp_path_factory)


def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def test_output_validates_against_the_schema(scans: rf.Scans) -> None:
    doc = json.loads(json_report.render(scans.new))
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator().iter_errors(doc)]
    assert errors == []
    assert doc["schema_version"] == json_report.SCHEMA_VERSION
    assert {c["path"] for c in doc["components"]} >= {"/usr/bin/server", rf.WEIRD_PATH}
    assert doc["targets"]["wasip1"]["verdict"] == "rework"


def test_the_schema_rejects_a_wrong_verdict(scans: rf.Scans) -> None:
    doc = json.loads(json_report.render(scans.old))
    doc["targets"]["wasip1"]["verdict"] = "fine"
    assert any("fine" in e.message for e in validator().iter_errors(doc))


def test_a_saved_result_loads_back_unchanged(scans: rf.Scans) -> None:
    text = json_report.render(scans.new)
    loaded = from_dict(json.loads(text))
    assert loaded.components == scans.new.components
    assert loaded.targets == scans.new.targets
    assert loaded.binaries == scans.new.binaries
    assert loaded.image == scans.new.image
    assert json_report.render(loaded) == text


def test_loading_refuses_other_documents(tmp_path: Path) -> None:
    bad = tmp_path / "not.json"
    bad.write_text("{nope")
    with pytest.raises(ResultFormatError, match="not JSON"):
        load_result(bad)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"schema_version": "2.0"}))
    with pytest.raises(ResultFormatError, match=r"schema 1\.x"):
        load_result(other)
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"schema_version": "1.1", "image": {}}))
    with pytest.raises(ResultFormatError, match="malformed"):
        load_result(broken)
    assert issubclass(ResultFormatError, UsageError)


def test_saved_results_are_told_from_references(tmp_path: Path) -> None:
    saved = tmp_path / "scan.json"
    saved.write_text("{}")
    assert is_saved_result(str(saved))
    assert not is_saved_result("nginx:latest")
    assert not is_saved_result(str(tmp_path / "missing.json"))
