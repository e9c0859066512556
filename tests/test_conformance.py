"""The OCI image-spec's own schema test vectors, through portscan's validating layer.

tests/fixtures/imagespec-vectors.json holds every document the image-spec's schema
tests (schema/*_test.go) check, with the outcome they expect; it names the commit it
was extracted from (tools/imagespec/extract_vectors.py). A vector the spec calls
invalid must be refused with `CorruptImageError` (exit 6); every valid one must be
accepted, digests of algorithms other than sha256 and sha512 included: portscan
refuses those only when it is to read content under them (tests/test_hostile.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from portscan.errors import CorruptImageError
from portscan.sources import manifests
from portscan.sources.oci_layout import check_layout_marker
from portscan.sources.validate import load_json

FIXTURE = Path(__file__).parent / "fixtures" / "imagespec-vectors.json"
VECTORS: dict[str, Any] = json.loads(FIXTURE.read_text())


def _check(kind: str, data: bytes) -> None:
    """Run one document through the layer a source would use for it."""
    where = "vector"
    if kind == "manifest":
        manifests.parse_document(data, manifests.OCI_MANIFEST, where)
    elif kind == "index":
        manifests.parse_document(data, manifests.OCI_INDEX, where)
    elif kind == "config":
        doc = load_json(data, where)
        diff_ids = (doc.get("rootfs") or {}).get("diff_ids") if isinstance(doc, dict) else None
        manifests.parse_config(data, len(diff_ids) if isinstance(diff_ids, list) else 0, where)
    elif kind == "descriptor":
        manifests.Descriptor.from_json(load_json(data, where), where)
    elif kind == "layout":
        check_layout_marker(data, where)
    else:  # pragma: no cover - the extractor knows these kinds only
        raise AssertionError(kind)


def _label(vector: dict[str, Any]) -> str:
    return f"{vector['kind']}-{vector['number']}"


def test_the_fixture_names_its_source_and_holds_every_kind() -> None:
    assert VECTORS["source"] == "https://github.com/opencontainers/image-spec"
    assert len(VECTORS["commit"]) == 40
    kinds = {v["kind"] for v in VECTORS["vectors"]}
    assert kinds == {"manifest", "index", "config", "descriptor", "layout"}
    assert len(VECTORS["vectors"]) > 60


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=_label)
def test_image_spec_vector(vector: dict[str, Any]) -> None:
    data = vector["document"].encode()
    if vector["fail"]:
        with pytest.raises(CorruptImageError):
            _check(vector["kind"], data)
    else:
        _check(vector["kind"], data)
