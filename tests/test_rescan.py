"""Usage errors answer before the ELF worker starts; warm rescans reuse the scan cache."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from portscan import inspect
from portscan.audit import cache as cache_module
from portscan.audit import keys
from portscan.audit.cache import ScanCache
from portscan.codec import to_dict
from portscan.errors import CorruptImageError, PortscanError
from portscan.graph import reach
from portscan.inspect.elf import content, worker
from portscan.model import ScanResult
from portscan.scan import ScanOptions, scan_image
from tests.conftest import cached_env


def _no_worker() -> None:
    raise AssertionError("the ELF worker started for a reference that cannot be scanned")


@pytest.mark.parametrize("reference", ["::bad", "oci:/nonexistent/layout"])
def test_a_bad_reference_fails_before_the_worker_starts(
    reference: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker, "start", _no_worker)
    with pytest.raises(PortscanError):
        scan_image(reference)


def test_the_cli_rejects_a_malformed_reference_without_starting_the_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from click.testing import CliRunner

    from portscan.cli.main import cli

    monkeypatch.setattr(worker, "start", _no_worker)
    result = CliRunner().invoke(cli, ["image", "::bad"])
    assert result.exit_code == 2, result.output
    assert "invalid repository name" in result.output


def _document(result: ScanResult) -> dict[str, Any]:
    """The result's JSON document without its timings."""
    document = to_dict(result)
    del document["scanned_at"], document["duration_seconds"]
    return document


def test_a_warm_scan_reads_no_layer_walks_no_library_and_finds_the_same(
    oci_layout: Path, tmp_path: Path
) -> None:
    reference = f"oci:{oci_layout}"
    with ScanCache(tmp_path / "store.db") as cache:
        cold = cache.scan(reference, ScanOptions())
        assert cache.layers_read == 3 and cache.layers_reused == 0
        stored_walks = cache.store._db.execute("SELECT COUNT(*) FROM reach").fetchone()[0]
        assert stored_walks > 0  # hello's calls into libgreet were walked
    reach._REACH_CACHE.clear()  # as in a new process
    with ScanCache(tmp_path / "store.db") as cache:
        warm = cache.scan(reference, ScanOptions())
        assert cache.layers_read == 0 and cache.layers_reused == 3
        assert cache.walks_reused == stored_walks
    reach._REACH_CACHE.clear()
    uncached = scan_image(reference)
    assert _document(cold) == _document(warm) == _document(uncached)
    assert any(c.judged_on == "reach" for c in warm.components)


def test_a_cached_layer_whose_elf_bytes_are_gone_is_read_again(
    oci_layout: Path, tmp_path: Path
) -> None:
    reference = f"oci:{oci_layout}"
    with ScanCache(tmp_path / "store.db") as cache:
        cold = cache.scan(reference, ScanOptions())
        assert content.kept(cache.content_dir)
        shutil.rmtree(cache.content_dir)
    reach._REACH_CACHE.clear()
    with ScanCache(tmp_path / "store.db") as cache:
        warm = cache.scan(reference, ScanOptions())
        assert cache.layers_read == 2  # the layers holding ELF files; the third has none
        assert content.kept(cache.content_dir)
    assert _document(cold) == _document(warm)


def test_a_new_analyser_version_or_portscan_version_misses_the_cache(
    oci_layout: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = f"oci:{oci_layout}"
    with ScanCache(tmp_path / "store.db") as cache:
        cache.scan(reference, ScanOptions())
    monkeypatch.setattr(keys, "LAYER_FORMAT", keys.LAYER_FORMAT + 1)
    monkeypatch.setattr(cache_module, "__version__", "999.0")
    reach._REACH_CACHE.clear()
    with ScanCache(tmp_path / "store.db") as cache:
        cache.scan(reference, ScanOptions())
        assert cache.layers_read == 3 and cache.layers_reused == 0
        assert cache.walks_reused == 0


def test_concurrent_scans_share_the_cache(oci_layout: Path, tmp_path: Path) -> None:
    reference = f"oci:{oci_layout}"

    def scan() -> dict[str, Any]:
        with ScanCache(tmp_path / "store.db") as cache:
            return _document(cache.scan(reference, ScanOptions()))

    with ThreadPoolExecutor(3) as pool:
        documents = list(pool.map(lambda _: scan(), range(3)))
    assert documents[0] == documents[1] == documents[2]
    with ScanCache(tmp_path / "store.db") as cache:
        assert _document(cache.scan(reference, ScanOptions())) == documents[0]
        assert cache.layers_reused == 3


def test_no_cache_keeps_nothing(oci_layout: Path, tmp_path: Path) -> None:
    env = cached_env(tmp_path / "xdg")
    for flags, kept in ((["--no-cache"], False), ([], True)):
        done = subprocess.run(
            [sys.executable, "-m", "portscan", "image", f"oci:{oci_layout}", "-f", "json", *flags],
            capture_output=True,
            env=env,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert (tmp_path / "xdg" / "portscan" / "store.db").exists() is kept


def test_a_corrupt_blob_fails_a_cold_cache_and_is_not_kept(
    oci_layout: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "corrupt"
    shutil.copytree(oci_layout, copy)
    biggest = max((copy / "blobs" / "sha256").iterdir(), key=lambda p: p.stat().st_size)
    data = bytearray(biggest.read_bytes())
    data[len(data) // 2] ^= 0xFF
    biggest.write_bytes(bytes(data))
    with ScanCache(tmp_path / "store.db") as cache:
        with pytest.raises(CorruptImageError):
            cache.scan(f"oci:{copy}", ScanOptions())
        digest = f"sha256:{biggest.name}"
        assert not cache.store.has_layer(digest, keys.layer_key(inspect.ANALYSERS, inspect.keep))


def test_the_layers_read_before_a_corrupt_one_are_kept(
    oci_layout: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Layers are stored once the ELF worker's facts are in, after the last layer; a
    scan that fails on its last layer still keeps those read before it whose facts are
    in (here all: no worker, so each file's facts are made as it is read)."""
    monkeypatch.setenv("PORTSCAN_WORKERS", "0")
    copy = tmp_path / "corrupt"
    shutil.copytree(oci_layout, copy)
    index = json.loads((copy / "index.json").read_text())
    blobs = copy / "blobs" / "sha256"
    manifest = json.loads((blobs / index["manifests"][0]["digest"].split(":")[1]).read_text())
    *earlier, last = [layer["digest"] for layer in manifest["layers"]]
    blob = blobs / last.split(":")[1]
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    key = keys.layer_key(inspect.ANALYSERS, inspect.keep)
    with ScanCache(tmp_path / "store.db") as cache:
        with pytest.raises(CorruptImageError):
            cache.scan(f"oci:{copy}", ScanOptions())
        assert earlier and all(cache.store.has_layer(digest, key) for digest in earlier)
        assert not cache.store.has_layer(last, key)


def test_an_unusable_cache_is_a_warning_not_a_failure(oci_layout: Path, tmp_path: Path) -> None:
    (tmp_path / "xdg").write_text("a file where the cache directory should be")
    done = subprocess.run(
        [sys.executable, "-m", "portscan", "image", f"oci:{oci_layout}", "-f", "json"],
        capture_output=True,
        text=True,
        env=cached_env(tmp_path / "xdg"),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("portscan: warning: no scan cache: ")
    assert json.loads(done.stdout)["targets"]


def _age(directory: str) -> None:
    """Date every file of a content directory back past the grace period."""
    for path in Path(directory).rglob("*"):
        if path.is_file():
            os.utime(path, (0, 0))


def test_gc_drops_the_walks_and_elf_files_no_layer_needs(oci_layout: Path, tmp_path: Path) -> None:
    """`portscan store gc` after `portscan image` filled the scan cache (no audited
    image uses its layers, so they go): their walks go with them, and their kept ELF
    files once older than CONTENT_GRACE."""
    from portscan.audit import store as store_module

    with ScanCache(tmp_path / "store.db") as cache:
        cache.scan(f"oci:{oci_layout}", ScanOptions())
        kept = cache.content_dir
        files = sorted(content.kept(kept))
        walks = cache.store._db.execute("SELECT COUNT(*) FROM reach").fetchone()[0]
        reach_key = cache.reach_key
    assert files and walks
    with store_module.Store(tmp_path / "store.db") as store:
        report = store.gc("any layer key", "any result key", None, reach_key)
        assert (report.layers, report.walks, report.files) == (3, walks, 0)  # too young
        assert sorted(content.kept(kept)) == files
        _age(kept)  # older than the grace period
        report = store.gc("any layer key", "any result key", None, reach_key)
        assert report.files == len(files) and not content.kept(kept)
        assert not [p for p in Path(kept).rglob("*") if p.is_file()]
        assert report.freed_bytes > 0
        assert store._db.execute("SELECT COUNT(*) FROM reach").fetchone()[0] == 0


def test_gc_keeps_what_a_stored_layer_needs(oci_layout: Path, tmp_path: Path) -> None:
    """Walks of a file a remaining layer holds stay, unless another call-graph code
    made them; the file stays whatever its age."""
    from portscan.audit import keys as keys_module
    from portscan.audit import store as store_module

    with ScanCache(tmp_path / "store.db") as cache:
        cache.scan(f"oci:{oci_layout}", ScanOptions())
        kept = cache.content_dir
        files = sorted(content.kept(kept))
        walks = cache.store._db.execute("SELECT COUNT(*) FROM reach").fetchone()[0]
        reach_key = cache.reach_key
        layer_rows = cache.store._db.execute(
            "SELECT digest, layer_key, data FROM layers"
        ).fetchall()
    _age(kept)
    needed = set()
    for _digest, _key, blob in layer_rows:
        needed |= keys_module.content_digests(keys_module.decode_layer(blob))
    assert needed == set(files)
    with store_module.Store(tmp_path / "store.db") as store:
        # an image row that uses every layer keeps them (and so their files and walks)
        layer_key = layer_rows[0][1]
        store._db.executemany(
            "INSERT INTO image_layers VALUES ('sha256:img', 'r', ?, ?, 0, '')",
            [(i, digest) for i, (digest, _key, _blob) in enumerate(layer_rows)],
        )
        report = store.gc(layer_key, "r", None, reach_key)
        assert (report.layers, report.walks, report.files) == (0, 0, 0)
        assert sorted(content.kept(kept)) == files
        report = store.gc(layer_key, "r", None, "new call-graph code")
        assert (report.walks, report.files) == (walks, 0)
