"""CycloneDX 1.6: valid for cyclonedx-python-lib, with components, the dependency graph
and portscan's verdicts as properties."""

from __future__ import annotations

import json

import pytest
from cyclonedx.model.bom import Bom
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from portscan.model import Target
from portscan.report import cyclonedx
from tests import reportfixtures as rf

FORKER = "/usr/local/bin/forker"


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> rf.Scans:
    return rf.fixture_scans(tmp_path_factory)


@pytest.fixture(scope="module")
def text(scans: rf.Scans) -> str:
    return cyclonedx.render(scans.new)


def test_the_bom_validates_with_cyclonedx_python_lib(text: str) -> None:
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    bom = Bom.from_json(json.loads(text))
    bom.validate()  # every dependency names a component of the BOM
    assert bom.metadata.component is not None and bom.metadata.component.bom_ref.value == "image"


def _properties(component: dict) -> dict[str, str]:
    return {p["name"]: p["value"] for p in component.get("properties", [])}


def _all_components(doc: dict) -> list[dict]:
    out, stack = [], list(doc["components"])
    while stack:
        item = stack.pop()
        out.append(item)
        stack.extend(item.get("components", []))
    return out


def test_verdicts_are_properties(scans: rf.Scans, text: str) -> None:
    doc = json.loads(text)
    assert doc["specVersion"] == "1.6"
    image = _properties(doc["metadata"]["component"])
    for target, summary in scans.new.targets.items():
        assert image[f"portscan:verdict:{target.value}"] == summary.verdict.value
        assert image[f"portscan:score:{target.value}"] == str(summary.score)
    files = {c["name"]: c for c in _all_components(doc) if c["type"] == "file"}
    forker = _properties(files["/usr/local/bin/forker"])
    assert forker["portscan:verdict:wasip1"] == "rework"
    assert forker["portscan:verdict:wasix"] == "ready"
    assert forker["portscan:plan:path"] == "target-wasix"
    assert set(files) == {c.path for c in scans.new.components}


def test_files_sit_in_their_packages_and_the_graph_is_kept(text: str) -> None:
    doc = json.loads(text)
    tools = next(c for c in doc["components"] if c["name"] == "fixture-tools")
    assert tools["purl"].startswith("pkg:deb/debian/fixture-tools@1.0-1")
    assert {c["name"] for c in tools["components"]} == {"/usr/bin/hello", "/usr/bin/server"}
    depends = {d["ref"]: set(d.get("dependsOn", [])) for d in doc["dependencies"]}
    assert depends["image"] == {"file:/usr/bin/server"}
    libc = "file:/usr/lib/x86_64-linux-gnu/libc.so.6"
    assert libc in depends["file:/usr/bin/server"]
    libc6 = next(c["bom-ref"] for c in doc["components"] if c["name"] == "libc6")
    assert libc6 in depends[tools["bom-ref"]]  # package edge derived from the file edge


def test_waived_findings_are_properties_with_their_reason(scans: rf.Scans) -> None:
    from portscan.scan import ScanOptions, scan_image
    from portscan.waivers import Waiver

    reason = "forks only while starting"
    waivers = (Waiver(1, "PS101", reason, "/usr/local/bin/*"),)
    result = scan_image(f"oci:{scans.new_layout}", ScanOptions(waivers=waivers))
    text = cyclonedx.render(result)
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    files = {}
    for package in json.loads(text)["components"]:
        for item in [package, *package.get("components", [])]:
            files[item["name"]] = {p["name"]: p["value"] for p in item.get("properties", [])}
    waived = {k: v for k, v in files[FORKER].items() if k.startswith("portscan:waived:")}
    assert waived == {f"portscan:waived:PS101:{t.value}": reason for t in Target}
    others = [name for name, props in files.items() if name != FORKER and
              any(k.startswith("portscan:waived:") for k in props)]  # fmt: skip
    assert others == []
    assert "portscan:waived:" not in cyclonedx.render(scans.new)
