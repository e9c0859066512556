"""The results store and its cache keys, on real SQLite files."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from portscan.audit import keys as cache
from portscan.audit.store import (
    ImageLayer,
    ImageRow,
    LayerRow,
    ResultRow,
    Store,
    StoreError,
    default_path,
)
from portscan.model import (
    Binary,
    FileEntry,
    FileKind,
    ImageConfig,
    ImageMeta,
    LayerDescriptor,
    LayerResult,
    Platform,
    SourceKind,
)

LKEY, RKEY = "layer-key", "result-key"


class Counting:
    name = "count"
    version = 1

    def wants(self, path: str, head: bytes) -> bool:
        return True

    def analyse(self, path: str, data: bytes) -> int:
        return len(data)


def layer_result(digest: str = "sha256:aa") -> LayerResult:
    entry = FileEntry("/bin/x", FileKind.FILE, 0o755, 3, data=b"abc")
    entry.set_fact("elf", Binary(machine="x86_64", needed=["libc.so.6"]))
    return LayerResult(digest, [entry], whiteouts=["/gone"], opaque_dirs=["/etc"])


def meta(digest: str, layers: list[str]) -> ImageMeta:
    return ImageMeta(
        reference=f"r/{digest}",
        source=SourceKind.REGISTRY,
        digest=digest,
        platform=Platform(),
        config=ImageConfig(),
        layers=[
            LayerDescriptor(d, 10, "application/vnd.oci.image.layer.v1.tar+gzip") for d in layers
        ],
    )


def image_row(digest: str, layers: list[str], key: str = RKEY, verdict: str = "ready") -> ImageRow:
    return ImageRow(
        digest=digest,
        result_key=key,
        layer_key=LKEY,
        reference=f"r/{digest}",
        platform="linux/amd64",
        created=None,
        verdicts={"wasip1": verdict},
        summary={"targets": {"wasip1": {"verdict": verdict, "score": 90}}},
        result=b"x\x9c\xab\xae\x05\x00\x01u\x00\xf9",  # zlib of "{}"
        meta=meta(digest, layers),
        seconds=0.1,
        layers=[ImageLayer(d, 10, f"RUN {d}") for d in layers],
    )


def put_layer(store: Store, run: int, digest: str, key: str = LKEY) -> None:
    data = cache.encode_layer(layer_result(digest))
    store.put_layer(run, LayerRow(digest, key, data, 10, 20, 1, 0.01))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "cache" / "store.db") as opened:
        yield opened


# --------------------------------------------------------------------------- keys


def test_layer_key_follows_analysers_and_keep_policy() -> None:
    from portscan import inspect

    base = cache.layer_key(inspect.ANALYSERS, inspect.keep)
    assert base == cache.layer_key(inspect.ANALYSERS, inspect.keep)
    assert base != cache.layer_key((*inspect.ANALYSERS, Counting()), inspect.keep)
    bumped = Counting()
    bumped.version = 2
    assert cache.layer_key([Counting()], inspect.keep) != cache.layer_key([bumped], inspect.keep)
    assert base != cache.layer_key(inspect.ANALYSERS, lambda path, head: True)


def test_layer_and_walk_keys_follow_library_versions_and_limits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stored layer or walk made by another lief or capstone, or under other read
    limits, is not reused (an upgrade of either changes what they find)."""
    from portscan import inspect
    from portscan.audit.cache import reach_key

    layer, walk = cache.layer_key(inspect.ANALYSERS, inspect.keep), reach_key()
    with monkeypatch.context() as patch:
        patch.setenv("PORTSCAN_MAX_ENTRIES", "1000")
        assert cache.layer_key(inspect.ANALYSERS, inspect.keep) != layer
    assert cache.layer_key(inspect.ANALYSERS, inspect.keep) == layer
    monkeypatch.setitem(cache.library_versions(), "capstone", "0.0")
    assert cache.layer_key(inspect.ANALYSERS, inspect.keep) != layer
    assert reach_key() != walk


def test_result_key_follows_layers_signatures_and_options() -> None:
    key = cache.result_key("l", "s", {"wasi_libc_as_of": "None"})
    assert key != cache.result_key("l2", "s", {"wasi_libc_as_of": "None"})
    assert key != cache.result_key("l", "s2", {"wasi_libc_as_of": "None"})
    assert key != cache.result_key("l", "s", {"wasi_libc_as_of": "'2024-01-01'"})


def test_the_wasix_libc_flavour_is_part_of_the_result_key() -> None:
    from portscan.audit.keys import Keys
    from portscan.scan import ScanOptions

    default = Keys.of(ScanOptions())
    assert default == Keys.of(ScanOptions())
    eh = Keys.of(ScanOptions(wasix_libc="wasm32-wasi-eh"))
    assert eh.layer == default.layer and eh.result != default.result


def test_signatures_digest_sees_every_file(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("{}")
    first = cache.signatures_digest(tmp_path)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.json").write_text("[]")
    second = cache.signatures_digest(tmp_path)
    (tmp_path / "sub" / "b.json").write_text("[1]")
    assert len({first, second, cache.signatures_digest(tmp_path)}) == 3


def test_shape_fingerprint_names_the_fields_of_stored_classes() -> None:
    shapes = cache.shape_fingerprint()
    entry = next(s for s in shapes if s.startswith("portscan.model.FileEntry("))
    assert "facts:" in entry and "data:" in entry
    assert any(s.startswith("portscan.model.Binary(") for s in shapes)


def test_layer_round_trip_keeps_entries_bytes_and_facts() -> None:
    original = layer_result()
    decoded = cache.decode_layer(cache.encode_layer(original))
    assert decoded == original and decoded is not original
    assert decoded.entries[0].facts["elf"].needed == ["libc.so.6"]


# --------------------------------------------------------------------------- store


def test_default_path_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_path() == tmp_path / "portscan" / "store.db"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_path() == Path.home() / ".cache" / "portscan" / "store.db"


def test_store_is_wal_and_refuses_other_schemas(store: Store, tmp_path: Path) -> None:
    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        db.execute("UPDATE info SET value = '99' WHERE key = 'schema'")
    with pytest.raises(StoreError, match="schema version 99"):
        Store(store.path)
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreError, match="cannot use the results store"):
        Store(garbage)


def test_a_failed_transaction_leaves_nothing(store: Store) -> None:
    run = store.start_run(store.open_audit("r", {})[0].id, "test")
    with pytest.raises(RuntimeError), store.transaction() as db:
        db.execute("INSERT INTO info VALUES ('half', 'written')")
        raise RuntimeError("interrupted")
    assert store._db.execute("SELECT COUNT(*) FROM info WHERE key = 'half'").fetchone()[0] == 0
    put_layer(store, run, "sha256:aa")
    assert store.has_layer("sha256:aa", LKEY) and not store.has_layer("sha256:aa", "other")
    assert cache.decode_layer(store.layer("sha256:aa", LKEY) or b"") == layer_result("sha256:aa")
    assert store.run(run).layers_analysed == 1  # type: ignore[union-attr]


def test_images_audits_and_resuming(store: Store) -> None:
    audit, resumed = store.open_audit("reg", {"tags": "all"})
    assert not resumed
    run = store.start_run(audit.id, "test")
    store.put_image(run, audit.id, image_row("sha256:i1", ["sha256:l1"]), ["a/b:v1", "a/b:latest"])
    again, resumed = store.open_audit("reg", {"tags": "all"})
    assert resumed and again.id == audit.id
    assert store.open_audit("reg", {"tags": "latest"})[0].id != audit.id  # other selection

    run2 = store.start_run(audit.id, "test")
    store.record_reused(run2, audit.id, "sha256:i1", RKEY, ["a/b:v1", "c/d:v1"])
    store.record_failed(run2, audit.id, None, ["e/f:*"], "cannot list tags")
    rows = {f"{r.repository}:{r.tag}": r for r in store.audit_images(audit.id)}
    assert rows["a/b:v1"].status == "scanned"  # scanned by an earlier run of this audit
    assert rows["c/d:v1"].status == "reused" and rows["c/d:v1"].verdicts == {"wasip1": "ready"}
    assert rows["e/f:*"].status == "failed" and rows["e/f:*"].error == "cannot list tags"

    store.finish_audit(audit.id, ["a/b:v1", "c/d:v1", "e/f:*"])  # a/b:latest went away
    finished = store.audit(audit.id)
    assert (
        finished is not None and finished.finished and (finished.images, finished.failed) == (3, 1)
    )
    assert "a/b:latest" not in {f"{r.repository}:{r.tag}" for r in store.audit_images(audit.id)}
    assert store.image_meta("sha256:i1", RKEY) == meta("sha256:i1", ["sha256:l1"])
    assert store.image_result("sha256:i1", RKEY) == {}
    assert [layer.created_by for layer in store.image_layers("sha256:i1", RKEY)] == [
        "RUN sha256:l1"
    ]

    later, resumed = store.open_audit("reg", {"tags": "all"})
    assert not resumed and store.previous_audit(later) == finished


def test_stats_count_whole_results_walks_and_kept_files(store: Store) -> None:
    for code in ("code-now", "code-then"):
        row = ResultRow(f"key-{code}", code, "img:1", b"12345", "", b"", 1.0)
        store.put_result(row)
    store.put_reaches("reach-now", [("sha256:lib", "f", b"abc"), ("sha256:lib", "g", b"de")])
    store.put_reaches("reach-then", [("sha256:lib", "f", b"xyz")])
    kept = Path(store.content_dir)
    (kept / "ab").write_bytes(b"\x7fELF" + bytes(96))

    stats = store.stats(LKEY, RKEY, "code-now", "reach-now")
    assert (stats.results, stats.result_bytes, stats.stale_results) == (2, 10, 1)
    assert (stats.walks, stats.walk_bytes, stats.stale_walks) == (3, 8, 1)
    assert (stats.files, stats.file_content_bytes) == (1, 100)
    unkeyed = store.stats(LKEY, RKEY)  # without the keys nothing is called stale
    assert (unkeyed.stale_results, unkeyed.stale_walks) == (0, 0)


def test_stats_and_gc(store: Store) -> None:
    audit, _ = store.open_audit("reg", {})
    run = store.start_run(audit.id, "test")
    for digest in ("sha256:base", "sha256:top", "sha256:orphan"):
        put_layer(store, run, digest)
    put_layer(store, run, "sha256:base", key="old-layer-key")
    store.put_image(run, audit.id, image_row("sha256:new", ["sha256:base", "sha256:top"]), ["a:1"])
    store.put_image(run, audit.id, image_row("sha256:old", ["sha256:base"], key="old"), ["b:1"])

    stats = store.stats(LKEY, RKEY)
    assert (stats.layers, stats.stale_layers, stats.images, stats.stale_images) == (4, 1, 2, 1)
    assert stats.audits == 1 and stats.unfinished_audits == 1 and "reg" in stats.last_audits
    assert (stats.results, stats.walks, stats.files) == (0, 0, 0)

    report = store.gc(LKEY, RKEY, older_than_days=None)
    assert (report.images, report.layers) == (1, 2)  # the old result; orphan and old-key layer
    assert store.has_layer("sha256:base", LKEY) and store.has_layer("sha256:top", LKEY)
    assert not store.has_layer("sha256:orphan", LKEY)
    assert len(store.audit_images(audit.id)) == 2  # audit history stays

    assert store.gc(LKEY, RKEY, older_than_days=30).images == 0
    with store.transaction() as db:
        db.execute("UPDATE images SET scanned_at = '2000-01-01T00:00:00+00:00'")
    report = store.gc(LKEY, RKEY, older_than_days=30)
    assert (report.images, report.layers) == (1, 2)
    assert store.stats(LKEY, RKEY).layers == 0
