"""Registry audits against a real docker-registry on loopback: catalog pagination, one
analysis per unique layer, the same results as `portscan image`, resuming after
SIGKILL, and the same audit on a real Dask cluster."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from portscan.audit.discover import Selection, TagPolicy, Walker, discover, list_repositories
from portscan.audit.executors import LocalExecutor
from portscan.audit.keys import decode_layer
from portscan.audit.run import AuditOptions, Keys, rebuild_result, run_audit
from portscan.audit.store import Store
from portscan.codec import to_dict
from portscan.inspect.elf import content
from portscan.scan import ScanOptions, scan_image
from portscan.sources import SourceOptions
from tests import imagebuild as ib
from tests.registry_server import Registry, registry_available, start_registry

pytestmark = [
    pytest.mark.registry,
    pytest.mark.skipif(not registry_available(), reason="needs /usr/bin/docker-registry"),
]

ANON = SourceOptions(docker_config=Path("/nonexistent/config.json"))
SCAN = ScanOptions(source=ANON)
MAIN = ("apps/*", "other/*", "tools/*")  # the repositories of the main audit
SLOW_IMAGES = 12


# --------------------------------------------------------------------------- images


def base_layer(bins: dict[str, bytes]) -> list[ib.Entry]:
    return [
        ib.directory("usr"),
        ib.directory("usr/bin"),
        ib.directory("usr/lib"),
        ib.file("usr/lib/libgreet.so.1", bins["libgreet.so.1"], 0o755),
        ib.file("usr/bin/hello", bins["hello"], 0o755),
        ib.file("etc/os-release", "ID=fixture\n"),
        ib.symlink("bin", "usr/bin"),
    ]


def app(layers: list[list[ib.Entry]], name: str) -> ib.Image:
    config = {"Entrypoint": ["/usr/bin/hello"], "Cmd": [name], "Env": ["PATH=/usr/bin:/bin"]}
    return ib.Image(layers, config=config, history=[f"{name} {i}" for i in range(len(layers))])


def with_created(image: ib.Image, created: str) -> ib.Image:
    """The image with a config `created` time (imagebuild writes none)."""
    doc = json.loads(image.config_blob.data)
    doc["created"] = created
    image.config_blob = ib.Blob(image.config_blob.media_type, json.dumps(doc).encode())
    manifest = json.loads(image.manifest_blob.data)
    manifest["config"] = image.config_blob.descriptor()
    image.manifest_blob = ib.Blob(image.manifest_blob.media_type, json.dumps(manifest).encode())
    return image


def build_images(bins: dict[str, bytes]) -> dict[str, ib.Image]:
    """repository:tag -> image. Most share the base layer; beta and delta share a
    second one; apps/alpha's two tags are one image."""
    base = base_layer(bins)
    script = [ib.file("usr/local/bin/run.sh", "#!/bin/sh\nexec /usr/bin/hello\n", 0o755)]
    alpha = app([base, [ib.file("srv/alpha", "alpha\n")]], "alpha")
    images = {
        "apps/alpha:v1": alpha,
        "apps/alpha:latest": alpha,
        "apps/beta:latest": app([base, script, [ib.file("srv/beta", "beta\n")]], "beta"),
        "apps/gamma:v1": with_created(
            app([base, [ib.file("srv/gamma", "1\n")]], "gamma1"), "2024-01-01T00:00:00Z"
        ),
        "apps/gamma:v2": with_created(
            app([base, [ib.file("srv/gamma", "2\n")]], "gamma2"), "2025-01-01T00:00:00Z"
        ),
        "other/delta:latest": app([base, script, [ib.file("srv/delta", "delta\n")]], "delta"),
        "tools/static:latest": app(
            [[ib.directory("usr/bin"), ib.file("usr/bin/hello", bins["hello-static"], 0o755)]],
            "static",
        ),
    }
    for i in range(SLOW_IMAGES):  # each with a layer of its own to analyse
        tool = ib.file("opt/bin/tool", bins["hello"] + f"{i}".encode(), 0o755)
        images[f"slow/image{i:02d}:latest"] = app([base, [tool]], f"slow{i}")
    broken = app([base], "broken")
    bad = ib.Blob(ib.OCI_LAYER_GZIP, zlib.compress(b"this is not a tar archive" * 40))
    broken.layer_blobs = [broken.layer_blobs[0], bad]
    manifest = json.loads(broken.manifest_blob.data)
    manifest["layers"].append(bad.descriptor())
    doc = json.loads(broken.config_blob.data)
    doc["rootfs"]["diff_ids"].append(bad.digest)
    broken.config_blob = ib.Blob(broken.config_blob.media_type, json.dumps(doc).encode())
    manifest["config"] = broken.config_blob.descriptor()
    broken.manifest_blob = ib.Blob(ib.OCI_MANIFEST, json.dumps(manifest).encode())
    images["broken/image:latest"] = broken
    return images


@pytest.fixture(scope="module")
def images(native_bins: dict[str, bytes]) -> dict[str, ib.Image]:
    return build_images(native_bins)


@pytest.fixture(scope="module")
def registry(
    tmp_path_factory: pytest.TempPathFactory, images: dict[str, ib.Image]
) -> Iterator[Registry]:
    with start_registry(tmp_path_factory.mktemp("audit-registry")) as server:
        for name, image in images.items():
            repository, _, tag = name.rpartition(":")
            server.push(repository, tag, image)
        yield server


def selection(registry: Registry, include: tuple[str, ...] = MAIN, tags: str = "all") -> Selection:
    return Selection(registry.host, include=include, tags=TagPolicy.parse(tags))


def audit(store_path: Path, options: AuditOptions, executor: Any = None) -> Any:
    executor = executor or LocalExecutor(2)
    with Store(store_path) as store:
        try:
            return run_audit(store, executor, options)
        finally:
            executor.close()


def unique_layers(images: dict[str, ib.Image], patterns: tuple[str, ...]) -> set[str]:
    import fnmatch

    return {
        blob.digest
        for name, image in images.items()
        if any(fnmatch.fnmatchcase(name.rpartition(":")[0], p) for p in patterns)
        for blob in image.layer_blobs
    }


def normalised(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k not in ("scanned_at", "duration_seconds")}


def store_rows(path: Path) -> dict[str, Any]:
    """The store's content without timestamps, run ids and the pickles' byte spelling."""
    db = sqlite3.connect(path)
    try:
        layers = {
            (digest, key): decode_layer(data)
            for digest, key, data in db.execute("SELECT digest, layer_key, data FROM layers")
        }
        images = {
            (row[0], row[1]): (row[2:6], normalised(json.loads(zlib.decompress(row[6]))))
            for row in db.execute(
                "SELECT digest, result_key, reference, platform, verdicts, summary, result"
                " FROM images"
            )
        }
        image_layers = sorted(db.execute("SELECT * FROM image_layers"))
        audits = sorted(
            db.execute(
                "SELECT registry, selection, finished IS NOT NULL, images, failed FROM audits"
            )
        )
        audit_images = sorted(
            db.execute(
                "SELECT repository, tag, digest, result_key, status, verdicts, error"
                " FROM audit_images"
            )
        )
    finally:
        db.close()
    return {
        "layers": layers,
        "images": images,
        "image_layers": image_layers,
        "audits": audits,
        "audit_images": audit_images,
    }


@pytest.fixture(scope="module")
def main_audit(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """The main audit, once, with the local pool and catalog pages of two."""
    path = tmp_path_factory.mktemp("main-audit") / "store.db"
    fleet = audit(path, AuditOptions(selection(registry), SCAN, page_size=2))
    return path, fleet


# --------------------------------------------------------------------------- catalog


def test_catalog_pages_give_every_repository(
    registry: Registry, images: dict[str, ib.Image]
) -> None:
    first = httpx.get(f"{registry.url}/v2/_catalog?n=2")
    assert 'rel="next"' in first.headers["link"]  # the registry really paginates
    walker = Walker(Selection(registry.host), ANON, page_size=2)
    client = walker.client("", "registry:catalog:*")
    try:
        listed = list_repositories(client, page_size=2)
        assert listed == list_repositories(client, page_size=1000)
    finally:
        client.close()
    assert sorted(listed) == sorted({name.rpartition(":")[0] for name in images})


def test_discovery_resolves_every_tag_and_applies_the_policies(
    registry: Registry, images: dict[str, ib.Image]
) -> None:
    found = discover(selection(registry), ANON, page_size=2)
    names = {image.name for image in found.images}
    assert names == {n for n in images if n.split("/")[0] in ("apps", "other", "tools")}
    assert not found.failed
    for image in found.images:
        assert image.digest == images[image.name].manifest_blob.digest

    latest = discover(selection(registry, tags="latest"), ANON, page_size=2)
    assert {i.name for i in latest.images} == {n for n in names if n.endswith(":latest")}
    notes = {note.name: note.reason for note in latest.skipped}
    assert notes["apps/gamma"] == "no tag matches --tags latest"
    assert notes["apps/alpha:v1"] == "not chosen by --tags latest"

    newest = discover(selection(registry, ("apps/gamma",), "newest:1"), ANON)
    assert [i.name for i in newest.images] == ["apps/gamma:v2"]
    assert newest.images[0].created == "2025-01-01T00:00:00Z"

    excluded = discover(
        Selection(registry.host, prefix="apps", exclude=("apps/g*",), tags=TagPolicy("all")), ANON
    )
    assert {i.repository for i in excluded.images} == {"apps/alpha", "apps/beta"}


# --------------------------------------------------------------------------- the audit


def test_audit_analyses_each_unique_layer_once(
    main_audit: tuple[Path, Any], images: dict[str, ib.Image]
) -> None:
    path, fleet = main_audit
    unique = unique_layers(images, MAIN)
    assert fleet.run["layers_analysed"] == len(unique)
    digests = {
        images[n].manifest_blob.digest
        for n in images
        if n.split("/")[0] in ("apps", "other", "tools")
    }
    assert fleet.run["images_scanned"] == len(digests) == 6  # alpha's two tags: one image
    with Store(path) as store:
        assert store.stats("", "").layers == len(unique)
    alpha = next(image for image in fleet.images if "apps/alpha:v1" in image.names)
    assert alpha.names == ["apps/alpha:latest", "apps/alpha:v1"]
    assert all(image.status == "scanned" for image in fleet.images)
    base = images["apps/beta:latest"].layer_blobs[0].digest
    shared = {layer.digest: len(layer.images) for layer in fleet.shared_layers}
    assert shared[base] == 5  # every image but tools/static
    assert shared[images["apps/beta:latest"].layer_blobs[1].digest] == 2  # beta and delta


def test_audit_results_equal_single_image_scans(
    main_audit: tuple[Path, Any], registry: Registry
) -> None:
    path, fleet = main_audit
    keys = Keys.of(SCAN)
    with Store(path) as store:
        for image in fleet.images:
            stored = store.image_result(image.digest, keys.result)
            assert stored is not None
            single = to_dict(scan_image(f"registry:{registry.host}/{image.names[0]}", SCAN))
            assert normalised(stored) == normalised(single), image.names
            assert image.verdicts == {t: s["verdict"] for t, s in single["targets"].items()}
            rebuilt = to_dict(rebuild_result(store, image.digest, SCAN))
            assert normalised(rebuilt) == normalised(single)


def test_the_audit_keeps_its_reachability_walks_in_the_store(
    main_audit: tuple[Path, Any],
) -> None:
    """Image tasks share walks through the store (audit.cache.StoredWalks): a library
    another image already walked from the same root is not walked again, and the walks
    are there for the next audit."""
    from portscan.audit.cache import reach_key

    path, _ = main_audit
    with Store(path) as store:
        rows = store._db.execute("SELECT DISTINCT digest, reach_key FROM reach").fetchall()
        kept = set(content.kept(store.content_dir))
    assert rows, "no walk was kept"
    assert {key for _, key in rows} == {reach_key()}
    assert {digest for digest, _ in rows} <= kept  # walks of ELF files the audit kept


def test_a_second_audit_reuses_everything_and_compares(
    main_audit: tuple[Path, Any], registry: Registry, tmp_path: Path
) -> None:
    path, first = main_audit
    copy = tmp_path / "store.db"
    with Store(path) as source, sqlite3.connect(copy) as target:
        source._db.backup(target)
    fleet = audit(copy, AuditOptions(selection(registry), SCAN))
    assert fleet.run["layers_analysed"] == fleet.run["images_scanned"] == 0
    assert fleet.run["images_reused"] == len(first.images)
    assert fleet.previous_audit_id == first.audit_id and fleet.audit_id != first.audit_id
    assert fleet.changes == []
    assert [i.verdicts for i in fleet.images] == [i.verdicts for i in first.images]


def test_an_unreadable_layer_fails_its_image_only(registry: Registry, tmp_path: Path) -> None:
    fleet = audit(
        tmp_path / "store.db", AuditOptions(selection(registry, ("broken/*", "tools/*")), SCAN)
    )
    statuses = {image.names[0]: image.status for image in fleet.images}
    assert statuses == {"broken/image:latest": "failed", "tools/static:latest": "scanned"}
    error = fleet.failed[0].error or ""
    assert "not a valid tar archive" in error or "not valid gzip" in error
    with Store(tmp_path / "store.db") as store:
        assert store.audit(fleet.audit_id).finished is not None  # type: ignore[union-attr]


# --------------------------------------------------------------------------- interruption


def cli(*args: str, **kwargs: Any) -> subprocess.Popen[str]:
    env = {**os.environ, "XDG_CACHE_HOME": "/nonexistent-cache"}
    options: dict[str, Any] = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **kwargs}
    return subprocess.Popen(
        [sys.executable, "-m", "portscan", "registry", *args], text=True, env=env, **options
    )


def count(path: Path, table: str) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            return db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def group_ended(group: int, seconds: float) -> bool:
    """True once no process is left in the process group (within `seconds`)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


SLOW_ARGS = ("--include", "slow/*", "--tags", "all", "--jobs", "1", "-q")


@pytest.fixture(scope="module")
def slow_reference(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The store of an uninterrupted audit of slow/*."""
    path = tmp_path_factory.mktemp("slow-reference") / "store.db"
    done = cli(registry.host, *SLOW_ARGS, "--store", str(path))
    _, err = done.communicate(timeout=120)
    assert done.returncode == 0, err
    return store_rows(path)


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_interrupt_then_rerun_finishes_and_redoes_nothing(
    registry: Registry,
    images: dict[str, ib.Image],
    slow_reference: dict[str, Any],
    tmp_path: Path,
    signum: int,
) -> None:
    store = tmp_path / "store.db"
    args = (registry.host, *SLOW_ARGS, "--store", str(store))
    process = cli(*args, stdout=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while count(store, "images") < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(process.pid, signum)  # the CLI only: its workers must not outlive it
    _, err = process.communicate(timeout=60)
    if signum == signal.SIGTERM:
        assert process.returncode == 130 and err.strip() == "portscan: error: interrupted"
    assert group_ended(process.pid, 15), "a worker outlived the audit"
    images_before, layers_before = count(store, "images"), count(store, "layers")
    assert 1 <= images_before < SLOW_IMAGES

    rerun = cli(*args, "--format", "json")
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    fleet = json.loads(out)
    unique = len(unique_layers(images, ("slow/*",)))
    assert fleet["run"]["layers_analysed"] == unique - layers_before
    assert fleet["run"]["images_scanned"] == SLOW_IMAGES - images_before
    assert fleet["run"]["images_reused"] == images_before
    assert fleet["audit_id"] == 1  # resumed, not a new audit
    assert store_rows(store) == slow_reference


# --------------------------------------------------------------------------- dask


def test_dask_cluster_gives_the_local_pool_results(
    main_audit: tuple[Path, Any], registry: Registry, tmp_path: Path
) -> None:
    distributed = pytest.importorskip("distributed")
    from portscan.audit.executors import DaskExecutor

    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        executor = DaskExecutor(cluster.scheduler_address)
        fleet = audit(tmp_path / "dask.db", AuditOptions(selection(registry), SCAN), executor)
    assert fleet.run["executor"] == f"dask:{cluster.scheduler_address}"
    local_path, local = main_audit
    assert fleet.run["layers_analysed"] == local.run["layers_analysed"]
    dask_rows, local_rows = store_rows(tmp_path / "dask.db"), store_rows(local_path)
    assert dask_rows["layers"] == local_rows["layers"]
    assert dask_rows["images"] == local_rows["images"]
    assert dask_rows["audit_images"] == local_rows["audit_images"]


# --------------------------------------------------------------------------- command line


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CACHE_HOME": "/nonexistent-cache"}
    return subprocess.run(
        [sys.executable, "-m", "portscan", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_cli_jsonl_table_exit_codes_and_store_commands(
    registry: Registry, images: dict[str, ib.Image], tmp_path: Path
) -> None:
    store = str(tmp_path / "store.db")
    result = run_cli(
        "registry", registry.host, "--include", "tools/*", "--format", "jsonl", "--store", store
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # piped: no progress
    (line,) = result.stdout.splitlines()
    doc = json.loads(line)
    assert doc["names"] == ["tools/static:latest"] and doc["status"] == "scanned"
    assert doc["digest"] == images["tools/static:latest"].manifest_blob.digest
    assert set(doc["targets"]) and "result" not in doc

    full = run_cli(
        "registry", registry.host, "--include", "tools/*", "--format", "jsonl",
        "--with-results", "--store", store,
    )  # fmt: skip
    doc = json.loads(full.stdout)
    assert doc["status"] == "reused" and doc["result"]["image"]["digest"] == doc["digest"]

    failing = run_cli("registry", f"{registry.host}/broken", "--store", store)
    assert failing.returncode == 9, failing.stderr
    assert "failed: broken/image:latest: " in failing.stdout

    stats = run_cli("store", "stats", "--store", store, "--format", "json")
    assert stats.returncode == 0, stats.stderr
    counts = json.loads(stats.stdout)
    assert counts["images"] == 1 and counts["audits"] == 3 and counts["stale_images"] == 0
    gc = run_cli("store", "gc", "--store", store)
    removed = "removed 0 image results, 0 scan results, 1 layers, "
    assert gc.returncode == 0 and gc.stdout.startswith(removed)

    for args, words in (
        (["--tags", "sometimes"], "invalid --tags"),
        (["--page-size", "0"], "page-size"),
    ):
        bad = run_cli("registry", registry.host, "--store", store, *args)
        assert bad.returncode == 2 and "Traceback" not in bad.stderr and words in bad.stderr
    scheme = run_cli("registry", f"http://{registry.host}", "--store", store)
    assert scheme.returncode == 2 and scheme.stderr.startswith("portscan: error: ")


def test_an_unreachable_scheduler_is_a_one_line_error() -> None:
    from portscan.audit.executors import DaskExecutor, SchedulerError

    pytest.importorskip("distributed")
    with pytest.raises(SchedulerError, match="cannot reach the Dask scheduler"):
        DaskExecutor("tcp://127.0.0.1:9", connect_timeout=1)


def test_fleet_html_report(registry: Registry, tmp_path: Path) -> None:
    store, html = str(tmp_path / "store.db"), tmp_path / "fleet.html"
    args = ["registry", registry.host, "--store", store, "-q", "--html", str(html)]
    args += [arg for pattern in MAIN for arg in ("--include", pattern)]
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    page = html.read_text()
    assert "default-src &#39;none&#39;" in page  # the CSP, autoescaped in its attribute
    assert "http://" not in page and "https://" not in page
    assert "No previous audit of this registry" in page
    assert all(f'data-sort="r-{target}"' in page for target in ("wasip1", "wasip2", "wasix"))
    # each image's own report, written beside the page and linked from it
    links = re.findall(r'<a class="report" href="(fleet-images/[^"]+)"', page)
    assert links and all((tmp_path / link).is_file() for link in links)
    assert "WASI portability of" in (tmp_path / links[0]).read_text()
    assert 'id="shared-layers"' in page  # the images share a base layer
    second = run_cli(*args)
    assert second.returncode == 0, second.stderr
    assert "No previous audit" not in html.read_text()
