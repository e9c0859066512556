"""Whole-result reuse: a rescan of an unchanged image with the same options is the stored
result (portscan.audit.cache, `ScanCache.result`), byte for byte but for its times."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from portscan import codec
from portscan.audit import keys
from portscan.audit.cache import ScanCache
from portscan.audit.store import Store
from portscan.codec import EncodedResult
from portscan.errors import EXIT_GATE_FAILED
from portscan.graph import reach
from portscan.model import ScanResult, Target
from portscan.scan import ScanOptions
from portscan.waivers import Waiver
from tests import imagebuild as ib
from tests.conftest import FIXTURE_CONFIG, cached_env, fixture_layers

SCANNED_IN = re.compile(rb"scanned in [0-9.]+ s")  # the table's last line
TIMES = re.compile(rb'"scanned_at":"[^"]*","duration_seconds":[0-9.e+-]+')


def _masked(document: bytes) -> bytes:
    """A JSON document with its two time fields blanked."""
    masked, count = TIMES.subn(b'"scanned_at":"","duration_seconds":0', document, count=1)
    assert count == 1
    return masked


def _portscan(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "portscan", "image", *args],
        capture_output=True,
        env=env,
        timeout=180,
    )


def _rows(store_path: Path) -> int:
    with Store(store_path) as store:
        return store._db.execute("SELECT COUNT(*) FROM results").fetchone()[0]


def test_a_rescan_prints_the_stored_document_with_new_times(
    oci_layout: Path, tmp_path: Path
) -> None:
    """Cold then warm `portscan image --format json` of a real image: the same document
    but the two time fields, the same gate verdict and exit code, and the warm run
    judged nothing (its stored result was found)."""
    env = cached_env(tmp_path / "xdg")
    args = (f"oci:{oci_layout}", "--format", "json", "--fail-on", "blocked")
    cold = _portscan(env, *args)
    assert _rows(tmp_path / "xdg" / "portscan" / "store.db") == 1
    warm = _portscan(env, *args)
    assert (cold.returncode, cold.stderr) == (warm.returncode, warm.stderr)
    assert _masked(warm.stdout) == _masked(cold.stdout)
    assert warm.stdout != cold.stdout or b'"duration_seconds":0.' in cold.stdout
    warm_doc, cold_doc = json.loads(warm.stdout), json.loads(cold.stdout)
    assert warm_doc["duration_seconds"] < cold_doc["duration_seconds"]
    assert warm_doc["scanned_at"] >= cold_doc["scanned_at"]


def test_a_table_scan_stores_no_document_and_a_json_rescan_adds_it(
    oci_layout: Path, tmp_path: Path
) -> None:
    """A cold scan printing a table stores the result without its JSON document (no
    34 MB document made for nothing); the first JSON rescan makes and stores it, the
    next one prints it as stored: both the document a scan without the cache prints."""
    env = cached_env(tmp_path / "xdg")
    store = tmp_path / "xdg" / "portscan" / "store.db"
    reference = f"oci:{oci_layout}"
    table = _portscan(env, reference, "--format", "table")
    assert table.returncode == 0, table.stderr
    with Store(store) as opened:
        assert opened._db.execute("SELECT head, length(tail) FROM results").fetchall() == [("", 0)]
    first, second = (_portscan(env, reference, "--format", "json") for _ in range(2))
    with Store(store) as opened:
        (length,) = opened._db.execute("SELECT length(tail) FROM results").fetchone()
    assert length > 0
    fresh = _portscan(env, reference, "--format", "json", "--no-cache")
    assert _masked(first.stdout) == _masked(second.stdout) == _masked(fresh.stdout)
    again = _portscan(env, reference, "--format", "table").stdout
    assert SCANNED_IN.sub(b"", again) == SCANNED_IN.sub(b"", table.stdout)


def test_a_json_scan_stores_no_pickle_and_another_format_decodes_the_document(
    oci_layout: Path, tmp_path: Path
) -> None:
    """A cold scan writing only JSON stores its document, not the pickled result (0.25 s
    of nginx's scan); a rescan in another format decodes the document, stores the pickle
    and renders what a scan without the cache renders, and so does the next; a JSON scan
    with a gate stores both."""
    env = cached_env(tmp_path / "xdg")
    store = tmp_path / "xdg" / "portscan" / "store.db"
    reference = f"oci:{oci_layout}"

    def stored() -> tuple[int, int]:
        with Store(store) as opened:
            return opened._db.execute("SELECT length(data), length(tail) FROM results").fetchone()

    assert _portscan(env, reference, "--format", "json").returncode == 0
    assert stored()[0] == 0 and stored()[1] > 0
    fresh = _portscan(env, reference, "--format", "sarif", "--no-cache").stdout
    for _ in range(2):
        warm = _portscan(env, reference, "--format", "sarif")
        assert warm.returncode == 0, warm.stderr
        assert stored()[0] > 0
        scanned = re.compile(rb'"scannedAt": "[^"]*"')
        assert scanned.sub(b"", warm.stdout) == scanned.sub(b"", fresh)
    gated = cached_env(tmp_path / "gated")
    cold = _portscan(gated, reference, "--format", "json", "--min-score", "100")
    warm = _portscan(gated, reference, "--format", "json", "--min-score", "100")
    assert cold.returncode == warm.returncode == EXIT_GATE_FAILED, cold.stderr
    assert cold.stderr == warm.stderr
    with Store(tmp_path / "gated" / "portscan" / "store.db") as opened:
        row = opened._db.execute("SELECT length(data), length(tail) FROM results").fetchone()
    assert row[0] > 0 and row[1] > 0


def test_the_spliced_document_is_the_encoded_result(oci_layout: Path, tmp_path: Path) -> None:
    """Cold and warm, the document the scan cache hands out is byte for byte what
    encoding its result gives; the warm result is the cold one with new times."""
    reference = f"oci:{oci_layout}"
    with ScanCache(tmp_path / "store.db") as cache:
        cold = cache.result(reference, ScanOptions())
    reach._REACH_CACHE.clear()  # as in a new process
    with ScanCache(tmp_path / "store.db") as cache:
        warm = cache.result(reference, ScanOptions())
        assert cache.results_reused == 1 and cache.layers_reused == cache.layers_read == 0
    assert isinstance(cold, EncodedResult) and isinstance(warm, EncodedResult)
    for encoded in (cold, warm):
        assert b"".join(encoded.pieces()) == codec.render(encoded.result()).encode()
    warm_result = warm.result()
    assert warm_result.scanned_at == warm.scanned_at
    assert warm_result.duration_seconds == warm.duration_seconds
    times = {"scanned_at": "", "duration_seconds": 0.0}
    assert dataclasses.replace(warm_result, **times) == dataclasses.replace(cold.result(), **times)
    assert any(c.judged_on == "reach" for c in warm_result.components)


def _scan(store: Path, reference: str, options: ScanOptions) -> tuple[ScanResult, int]:
    """The result and whether it was reused."""
    with ScanCache(store) as cache:
        return codec.full_result(cache.result(reference, options)), cache.results_reused


def test_a_changed_option_or_layer_or_portscan_is_a_miss(
    oci_layout: Path,
    tmp_path: Path,
    native_bins: dict[str, bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = tmp_path / "store.db"
    reference = f"oci:{oci_layout}"
    plain, reused = _scan(store, reference, ScanOptions())
    assert reused == 0 and _scan(store, reference, ScanOptions())[1] == 1
    rule_id = next(f.rule_id for c in plain.components for f in c.findings)
    changed = {  # options, whether the result differs (else only the key does)
        ScanOptions(exclude=("/usr/local/**",)): True,
        ScanOptions(waivers=(Waiver(1, rule_id, "accepted", "*"),)): True,
        ScanOptions(wasi_libc_as_of="2023-01-01"): False,
        ScanOptions(reach=False): False,
    }
    for options, differs in changed.items():
        result, reused = _scan(store, reference, options)
        assert reused == 0, options
        if differs:
            assert _masked(codec.render(result).encode()) != _masked(codec.render(plain).encode())
        assert _scan(store, reference, options)[1] == 1  # and now stored under its own key
    layers = fixture_layers(native_bins)
    layers[2][1] = ib.file("etc/app/new.conf", "new=2\n")
    image = ib.Image(layers, config=FIXTURE_CONFIG, history=["a", "b", "c"])
    other = ib.write_oci_layout(tmp_path / "other", [image])
    assert _scan(store, f"oci:{other}", ScanOptions())[1] == 0
    monkeypatch.setenv("PORTSCAN_MAX_KEEP_MIB", "1")  # a read limit (layers.Limits)
    assert _scan(store, reference, ScanOptions())[1] == 0
    monkeypatch.delenv("PORTSCAN_MAX_KEEP_MIB")
    assert _scan(store, reference, ScanOptions())[1] == 1
    monkeypatch.setattr(keys, "__version__", "999.0")
    assert _scan(store, reference, ScanOptions())[1] == 0
    monkeypatch.setitem(keys.library_versions(), "lief", "0.0")
    assert _scan(store, reference, ScanOptions())[1] == 0


def test_library_versions_are_what_importlib_metadata_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The versions in the code key are read from dist-info names, the first on sys.path
    winning, as importlib.metadata answers; a library installed otherwise is asked of it."""
    from importlib import metadata

    keys.library_versions.cache_clear()
    try:
        found = keys.library_versions()
        for name in keys._LIBRARIES:
            assert found[name] == metadata.version(name), name
        first = tmp_path / "first"
        for folder, name, version in (
            ("Tree_Sitter-9.9.dist-info", "tree-sitter", "9.9"),  # case and separators
            ("tree_sitter_javascript-8.8.dist-info", "tree-sitter-javascript", "8.8"),
            ("networkx-0.1.egg-info", "networkx", "0.1"),  # not a dist-info
        ):
            (first / folder).mkdir(parents=True)
            metadata_file = "PKG-INFO" if folder.endswith("egg-info") else "METADATA"
            (first / folder / metadata_file).write_text(f"Name: {name}\nVersion: {version}\n")
        monkeypatch.setattr(sys, "path", [str(first), *sys.path])
        keys.library_versions.cache_clear()
        found = keys.library_versions()
        assert found["tree-sitter"] == metadata.version("tree-sitter") == "9.9"
        assert found["tree-sitter-javascript"] == "8.8"
        assert found["networkx"] == metadata.version("networkx") == "0.1"  # asked of it
        assert found["python"] == sys.version
        monkeypatch.setattr(keys, "_LIBRARIES", ("no-such-library",))
        keys.library_versions.cache_clear()
        assert keys.library_versions() == {"python": sys.version, "no-such-library": "absent"}
    finally:
        keys.library_versions.cache_clear()


def test_a_base_that_moved_is_a_miss(
    oci_layout: Path, tmp_path: Path, native_bins: dict[str, bytes]
) -> None:
    """`--base` names an image, whose identity is in the key: the same name resolving
    to another image is a miss, and judged against the new base."""
    store, reference = tmp_path / "store.db", f"oci:{oci_layout}"
    layers = fixture_layers(native_bins)
    base = tmp_path / "base"
    ib.write_oci_layout(base, [ib.Image(layers[:1], config=FIXTURE_CONFIG, history=["a"])])
    options = ScanOptions(base=f"oci:{base}")
    first, reused = _scan(store, reference, options)
    assert reused == 0 and first.base is not None and first.base.layers == 1
    assert _scan(store, reference, options)[1] == 1
    shutil.rmtree(base)
    moved = [*layers[0], ib.file("etc/moved", "1\n")]
    ib.write_oci_layout(base, [ib.Image([moved], config=FIXTURE_CONFIG, history=["a"])])
    second, reused = _scan(store, reference, options)
    assert reused == 0 and second.base is not None and second.base.layers == 0


def test_what_the_key_cannot_spell_is_never_reused(oci_layout: Path, tmp_path: Path) -> None:
    """A keep policy that is no named part of portscan, or syft's inventory: no key,
    a plain ScanResult, nothing whole stored."""
    from portscan import inspect

    def keep(path: str, head: bytes) -> bool:
        return inspect.keep(path, head)

    reference = f"oci:{oci_layout}"
    for options in (ScanOptions(keep=keep), ScanOptions(keep=lambda p, h: inspect.keep(p, h))):
        with ScanCache(tmp_path / "store.db") as cache:
            assert isinstance(cache.result(reference, options), ScanResult)
    assert _rows(tmp_path / "store.db") == 0
    with ScanCache(tmp_path / "store.db") as cache:
        meta = cache.scan(reference, ScanOptions()).image
    assert keys.scan_result_key(reference, meta, ScanOptions(sbom="syft"), None) is None
    assert keys.scan_result_key(reference, meta, ScanOptions(), None) is not None
    with pytest.raises(keys.NotCanonical):
        keys.canonical(object())


def test_credentials_and_timeouts_do_not_change_the_key(oci_layout: Path, tmp_path: Path) -> None:
    from portscan.sources import SourceOptions

    with ScanCache(tmp_path / "store.db") as cache:
        meta = cache.scan(f"oci:{oci_layout}", ScanOptions()).image
    plain = keys.scan_result_key("r", meta, ScanOptions(), None)
    reach_only = SourceOptions(username="u", password="p", timeout=5.0)
    assert keys.scan_result_key("r", meta, ScanOptions(source=reach_only), None) == plain
    assert keys.scan_result_key("r", meta, ScanOptions(content_dir="/x"), None) == plain
    assert keys.scan_result_key("s", meta, ScanOptions(), None) != plain
    excluded = ScanOptions(exclude=("/a",))
    assert keys.scan_result_key("r", meta, excluded, None) != plain


def test_concurrent_scans_store_one_result(oci_layout: Path, tmp_path: Path) -> None:
    reference = f"oci:{oci_layout}"

    def scan() -> str:
        with ScanCache(tmp_path / "store.db") as cache:
            result = cache.result(reference, ScanOptions())
            assert isinstance(result, EncodedResult)
            return _masked(b"".join(result.pieces())).decode()

    with ThreadPoolExecutor(3) as pool:
        documents = list(pool.map(lambda _: scan(), range(3)))
    assert documents[0] == documents[1] == documents[2]
    assert _rows(tmp_path / "store.db") == 1
    assert scan() == documents[0]


def test_no_cache_neither_reads_nor_writes_results(oci_layout: Path, tmp_path: Path) -> None:
    env = cached_env(tmp_path / "xdg")
    cold = _portscan(env, f"oci:{oci_layout}", "-f", "json")
    assert cold.returncode == 0, cold.stderr
    store = tmp_path / "xdg" / "portscan" / "store.db"
    with Store(store) as opened:  # a stored result the flag must not hand out
        opened._db.execute("UPDATE results SET tail = ?", (b"not zlib",))
    uncached = _portscan(env, f"oci:{oci_layout}", "-f", "json", "--no-cache")
    assert uncached.returncode == 0, uncached.stderr
    assert _masked(uncached.stdout) == _masked(cold.stdout)
    assert _rows(store) == 1


def test_gc_drops_results_of_other_code_and_old_ones(oci_layout: Path, tmp_path: Path) -> None:
    with ScanCache(tmp_path / "store.db") as cache:
        cache.result(f"oci:{oci_layout}", ScanOptions())
    current = keys.code_key(ScanOptions().analysers, ScanOptions().keep)
    with Store(tmp_path / "store.db") as store:
        assert store.gc("l", "r", None, "w", current).results == 0
        assert store.gc("l", "r", 1.0, "w", current).results == 0
        store._db.execute("UPDATE results SET stored_at = '2000-01-01T00:00:00+00:00'")
        assert store.gc("l", "r", 1.0, "w", current).results == 1
    with ScanCache(tmp_path / "store.db") as cache:
        cache.result(f"oci:{oci_layout}", ScanOptions())
    with Store(tmp_path / "store.db") as store:
        assert store.gc("l", "r", None, "w", "other code").results == 1
        assert store._db.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 0


def test_gates_and_other_formats_of_a_reused_result(oci_layout: Path, tmp_path: Path) -> None:
    """A hit renders the table and SARIF from the unpickled result and applies the gates
    as a cold scan does (the table's "scanned in" line says the run's own time)."""
    env = cached_env(tmp_path / "xdg")
    for output_format in ("table", "sarif"):
        cold = _portscan(env, f"oci:{oci_layout}", "-f", output_format, "--min-score", "100")
        warm = _portscan(env, f"oci:{oci_layout}", "-f", output_format, "--min-score", "100")
        assert cold.returncode == warm.returncode == EXIT_GATE_FAILED, cold.stderr
        assert cold.stderr == warm.stderr and b"gate failed" in warm.stderr
        if output_format == "table":
            scanned_in = re.compile(rb"scanned in [0-9.]+ s")
            assert scanned_in.sub(b"", cold.stdout) == scanned_in.sub(b"", warm.stdout)
    assert Target.WASIP1.value in warm.stderr.decode()
