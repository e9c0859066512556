"""Fleet input against a real docker-registry on loopback: the default tag policy audits
a repository without a `latest` tag (its newest image), lists a repository without any
tag as skipped, and `--images-from` audits references without the catalog, through the
command line, in every output format."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from portscan.audit.discover import (
    ReferenceList,
    Selection,
    Skipped,
    TagPolicy,
    discover,
    discover_references,
    read_references,
)
from portscan.sources import SourceOptions
from tests import imagebuild as ib
from tests.registry_server import Registry, registry_available, start_registry
from tests.test_audit import with_created

pytestmark = [
    pytest.mark.registry,
    pytest.mark.skipif(not registry_available(), reason="needs /usr/bin/docker-registry"),
]

ANON = SourceOptions(docker_config=Path("/nonexistent/config.json"))


def image(name: str, created: str | None = None) -> ib.Image:
    built = ib.Image([[ib.directory("srv"), ib.file(f"srv/{name}", f"{name}\n")]])
    return with_created(built, created) if created else built


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """app/latest has `latest` and `v1`; app/nolatest `3.10` (older) and `3.11`;
    app/untagged a manifest with no tag at all."""
    with start_registry(tmp_path_factory.mktemp("fleet-input-registry")) as server:
        server.push("app/latest", "latest", image("latest", "2025-03-01T00:00:00Z"))
        server.push("app/latest", "v1", image("v1", "2025-04-01T00:00:00Z"))
        server.push("app/nolatest", "3.10", image("310", "2024-01-01T00:00:00Z"))
        server.push("app/nolatest", "3.11", image("311", "2025-01-01T00:00:00Z"))
        orphan = image("orphan")
        server.push("app/untagged", orphan.manifest_blob.digest, orphan)
        yield server


def reasons(skipped: list[Skipped]) -> dict[str, str]:
    return {entry.name: entry.reason for entry in skipped}


def test_default_policy_audits_every_repository_and_says_what_it_leaves_out(
    registry: Registry,
) -> None:
    assert TagPolicy.parse("default") == TagPolicy() == TagPolicy.parse("latest-or-newest")
    found = discover(Selection(registry.host), ANON, page_size=1)
    assert not found.failed
    assert sorted(i.name for i in found.images) == ["app/latest:latest", "app/nolatest:3.11"]
    notes = reasons(found.skipped)
    assert notes["app/untagged"] == "no tags"
    assert "has a latest tag" in notes["app/latest:v1"]
    assert "no latest tag" in notes["app/nolatest:3.10"] and "3.11" in notes["app/nolatest:3.10"]
    assert len(notes) == 3

    latest = discover(Selection(registry.host, tags=TagPolicy.parse("latest")), ANON)
    notes = reasons(latest.skipped)
    assert notes["app/nolatest"] == "no tag matches --tags latest"
    assert notes["app/nolatest:3.10"] == notes["app/latest:v1"] == "not chosen by --tags latest"

    excluded = discover(Selection(registry.host, exclude=("app/no*",)), ANON)
    assert reasons(excluded.skipped)["app/nolatest"] == "excluded by --exclude app/no*"


def test_reference_files_lines_and_yaml(tmp_path: Path) -> None:
    text = "# fleet\nnginx:1.25  # web\n\n  ghcr.io/o/api@sha256:" + "a" * 64 + "\n"
    assert [r for _, r in read_references("list.txt", text)] == [
        "nginx:1.25",
        "ghcr.io/o/api@sha256:" + "a" * 64,
    ]
    manifest = """
apiVersion: apps/v1
kind: Deployment
spec:
  template:
    spec:
      initContainers:
        - name: init
          image: "busybox:1.36"
      containers:
        - {name: web, image: nginx}
---
services:
  db:
    image: postgres:15
"""
    pairs = read_references("deploy.yaml", manifest)
    assert [r for _, r in pairs] == ["busybox:1.36", "nginx", "postgres:15"]
    assert [r for _, r in read_references("compose", "services:\n  a:\n    image: redis\n")] == [
        "redis"
    ]
    assert read_references("list", "image:1\n") == [("list:1", "image:1")]  # a name, not YAML


def test_references_resolve_like_the_catalog(registry: Registry) -> None:
    host = registry.host
    refs = ReferenceList(
        "/refs.txt",
        (
            ("/refs.txt:1", f"{host}/app/nolatest"),  # no tag: the policy picks 3.11
            ("/refs.txt:2", f"{host}/app/latest:v1"),
            ("/refs.txt:3", f"{host}/app/missing:1"),
            ("/refs.txt:4", "Not A Reference"),
        ),
    )
    found = discover_references(refs, ANON)
    assert sorted(i.name for i in found.images) == [
        f"{host}/app/latest:v1",
        f"{host}/app/nolatest:3.11",
    ]
    assert list(found.failed) == [f"{host}/app/missing:1"]
    assert "not found" in found.failed[f"{host}/app/missing:1"]
    notes = reasons(found.skipped)
    assert "no latest tag" in notes[f"{host}/app/nolatest:3.10"]
    assert notes["Not A Reference"].startswith("/refs.txt:4: not an image reference")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CACHE_HOME": "/nonexistent-cache"}
    return subprocess.run(
        [sys.executable, "-m", "portscan", "registry", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_images_from_through_the_command_line(registry: Registry, tmp_path: Path) -> None:
    host, store = registry.host, str(tmp_path / "store.db")
    listing = tmp_path / "images.txt"
    listing.write_text(
        f"# what runs in production\n{host}/app/nolatest\n\n{host}/app/latest:latest\n"
        f"{host}/app/missing:1   # deleted last year\n"
    )
    html = tmp_path / "fleet.html"
    table = run_cli("--images-from", str(listing), "--store", store, "-q", "--html", str(html))
    assert table.returncode == 9, table.stderr  # one reference could not be read
    assert f"failed: {host}/app/missing:1: " in table.stdout
    assert f"{host}/app/nolatest:3.10: no latest tag" in table.stdout
    assert f"{host}/app/nolatest:3.11" in table.stdout
    page = html.read_text()
    assert 'id="skipped"' in page and f"{host}/app/nolatest:3.10" in page

    lines = run_cli("--images-from", str(listing), "--store", store, "--format", "jsonl")
    assert lines.returncode == 9, lines.stderr
    records = [json.loads(line) for line in lines.stdout.splitlines()]
    statuses = {record["names"][0]: record["status"] for record in records}
    assert statuses == {
        f"{host}/app/nolatest:3.11": "reused",  # same store, same keys: nothing rescanned
        f"{host}/app/latest:latest": "reused",
        f"{host}/app/missing:1": "failed",
        f"{host}/app/nolatest:3.10": "skipped",
    }
    assert records[-1]["status"] == "skipped" and "no latest tag" in records[-1]["reason"]

    doc = json.loads(
        run_cli("--images-from", str(listing), "--store", store, "--format", "json").stdout
    )
    assert doc["registry"] == f"images-from:{listing.resolve()}"
    assert doc["selection"]["tags"] == "latest-or-newest"
    assert doc["skipped"] == [
        {"name": f"{host}/app/nolatest:3.10", "reason": records[-1]["reason"]}
    ]

    catalog = run_cli(host, "--store", store, "--format", "json")
    assert catalog.returncode == 0, catalog.stderr
    fleet = json.loads(catalog.stdout)
    assert {"name": "app/untagged", "reason": "no tags"} in fleet["skipped"]
    assert sorted(n for i in fleet["images"] for n in i["names"]) == [
        "app/latest:latest",
        "app/nolatest:3.11",
    ]

    for args, words in (
        ((), "give a registry HOST[/PREFIX] or --images-from FILE"),
        ((host, "--images-from", str(listing)), "not both"),
        (("--images-from", str(listing), "--include", "app/*"), "--include"),
    ):
        bad = run_cli(*args, "--store", store)
        assert bad.returncode == 2 and words in bad.stderr and "Traceback" not in bad.stderr
