"""The results store: one SQLite file holding per-layer analysis, per-image results and
the record of registry audits.

It is safe to interrupt at any point: the database runs in WAL mode and every finished
unit (one layer analysed, one image scanned, one image found in the store) is written in
one transaction, so Ctrl-C, SIGTERM or kill -9 loses at most the units still running.
Only the process that runs an audit writes; workers never open the store.

Tables (docs/registry-audit.md shows them with every column):
- `layers`: (blob digest, layer key) -> the stored `LayerResult` (see `portscan.audit.keys`).
- `images`: (manifest digest, result key) -> the scan result's JSON, the fleet summary,
  and the image's metadata, which with the layer rows is enough to rebuild the result.
- `image_layers`: which layers each image result was built from, in order.
- `reach`: (library digest, walk root, reach key) -> a stored reachability walk
  (graph/reach.py), kept by the scan cache (portscan.audit.cache).
- `results`: scan result key (keys.scan_result_key) -> a whole result of `portscan
  image`, kept by the scan cache: the pickled ScanResult and its JSON document but the
  time fields (codec.document_parts), under the code key `store gc` keeps.
- `audits`, `audit_images`: each audit of a registry and what it found per repository
  and tag; `runs`: each invocation working on an audit, with its counters.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pickle
import random
import sqlite3
import time
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from portscan.audit.keys import content_digests, decode_layer
from portscan.errors import StoreError
from portscan.inspect.elf import content
from portscan.model import ImageMeta

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 30_000
CONTENT_GRACE = 3600  # seconds: `gc` leaves content files this young alone

_SCHEMA = """
CREATE TABLE IF NOT EXISTS info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS layers (
    digest TEXT NOT NULL,
    layer_key TEXT NOT NULL,
    data BLOB NOT NULL,
    compressed_bytes INTEGER NOT NULL,
    uncompressed_bytes INTEGER NOT NULL,
    entries INTEGER NOT NULL,
    seconds REAL NOT NULL,
    analysed_at TEXT NOT NULL,
    run_id INTEGER,
    PRIMARY KEY (digest, layer_key)
);
CREATE TABLE IF NOT EXISTS images (
    digest TEXT NOT NULL,
    result_key TEXT NOT NULL,
    layer_key TEXT NOT NULL,
    reference TEXT NOT NULL,
    platform TEXT NOT NULL,
    created TEXT,
    verdicts TEXT NOT NULL,
    summary TEXT NOT NULL,
    result BLOB NOT NULL,
    meta BLOB NOT NULL,
    seconds REAL NOT NULL,
    scanned_at TEXT NOT NULL,
    run_id INTEGER,
    PRIMARY KEY (digest, result_key)
);
CREATE TABLE IF NOT EXISTS image_layers (
    digest TEXT NOT NULL,
    result_key TEXT NOT NULL,
    position INTEGER NOT NULL,
    layer_digest TEXT NOT NULL,
    size INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    PRIMARY KEY (digest, result_key, position)
);
CREATE INDEX IF NOT EXISTS image_layers_by_layer ON image_layers (layer_digest);
CREATE TABLE IF NOT EXISTS reach (
    digest TEXT NOT NULL,
    root TEXT NOT NULL,
    reach_key TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (digest, root, reach_key)
);
CREATE TABLE IF NOT EXISTS results (
    result_key TEXT PRIMARY KEY,
    code_key TEXT NOT NULL,
    reference TEXT NOT NULL,
    data BLOB NOT NULL,
    head TEXT NOT NULL,
    tail BLOB NOT NULL,
    seconds REAL NOT NULL,
    stored_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audits (
    id INTEGER PRIMARY KEY,
    registry TEXT NOT NULL,
    selection TEXT NOT NULL,
    started TEXT NOT NULL,
    finished TEXT,
    images INTEGER,
    failed INTEGER
);
CREATE TABLE IF NOT EXISTS audit_images (
    audit_id INTEGER NOT NULL REFERENCES audits (id),
    repository TEXT NOT NULL,
    tag TEXT NOT NULL,
    digest TEXT,
    result_key TEXT,
    status TEXT NOT NULL,
    verdicts TEXT NOT NULL,
    error TEXT,
    PRIMARY KEY (audit_id, repository, tag)
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    audit_id INTEGER NOT NULL REFERENCES audits (id),
    executor TEXT NOT NULL,
    started TEXT NOT NULL,
    finished TEXT,
    layers_analysed INTEGER NOT NULL DEFAULT 0,
    images_scanned INTEGER NOT NULL DEFAULT 0,
    images_reused INTEGER NOT NULL DEFAULT 0,
    images_failed INTEGER NOT NULL DEFAULT 0
);
"""


def default_path() -> Path:
    """$XDG_CACHE_HOME/portscan/store.db, else ~/.cache/portscan/store.db."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "portscan" / "store.db"


def now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


# --------------------------------------------------------------------------- rows


@dataclass
class LayerRow:
    """One analysed layer, as stored."""

    digest: str
    layer_key: str
    data: bytes
    compressed_bytes: int
    uncompressed_bytes: int
    entries: int
    seconds: float


@dataclass
class ResultRow:
    """One whole scan result, as the scan cache stores it (portscan.audit.cache)."""

    result_key: str
    code_key: str
    reference: str
    data: bytes  # zstd(pickle(ScanResult))
    head: str  # its JSON document before the time fields ("" when not stored)
    tail: bytes  # zstd of the document after them (b"" when not stored)
    seconds: float  # how long the scan that made it took


@dataclass
class ImageLayer:
    digest: str
    size: int
    created_by: str


@dataclass
class ImageRow:
    """One scanned image, as stored. `result` is zlib-compressed JSON (report.json)."""

    digest: str
    result_key: str
    layer_key: str
    reference: str
    platform: str
    created: str | None
    verdicts: dict[str, str]  # target -> verdict
    summary: dict[str, Any]  # the fleet summary (fleet.image_summary)
    result: bytes
    meta: ImageMeta
    seconds: float
    layers: list[ImageLayer] = field(default_factory=list)
    scanned_at: str = ""


@dataclass(frozen=True)
class AuditImage:
    """What an audit found for one repository:tag."""

    repository: str
    tag: str
    digest: str | None
    result_key: str | None
    status: str  # scanned | reused | failed
    verdicts: dict[str, str]
    error: str | None = None


@dataclass(frozen=True)
class Audit:
    id: int
    registry: str
    selection: dict[str, Any]
    started: str
    finished: str | None
    images: int | None
    failed: int | None


@dataclass(frozen=True)
class Run:
    id: int
    audit_id: int
    executor: str
    started: str
    finished: str | None
    layers_analysed: int
    images_scanned: int
    images_reused: int
    images_failed: int


@dataclass
class StoreStats:
    path: Path
    file_bytes: int
    layers: int
    layer_bytes: int
    stale_layers: int
    images: int
    image_bytes: int
    stale_images: int
    audits: int
    unfinished_audits: int
    last_audits: dict[str, str]  # registry -> start of its latest audit
    results: int = 0  # the scan cache's whole results (`portscan image`)
    result_bytes: int = 0
    stale_results: int = 0  # stored by other portscan code or signatures
    walks: int = 0  # reachability walks
    walk_bytes: int = 0
    stale_walks: int = 0  # made by other call-graph code
    files: int = 0  # ELF files kept in the content directory for walks
    file_content_bytes: int = 0


@dataclass
class GcReport:
    images: int = 0
    results: int = 0  # whole scan results of the scan cache
    layers: int = 0
    walks: int = 0  # stored reachability walks
    files: int = 0  # ELF files of the content directory
    freed_bytes: int = 0


# --------------------------------------------------------------------------- store


def _pack(value: Any) -> bytes:
    return zlib.compress(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))


def _unpack(blob: bytes) -> Any:
    return pickle.loads(zlib.decompress(blob))


class Store:
    """The results store at `path` (created with its directory when missing)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = self._open()
        except (OSError, sqlite3.DatabaseError) as exc:
            raise StoreError(
                f"cannot use the results store {self.path}: {exc}",
                "pass --store with a writable path, or delete the file if it is damaged",
            ) from None

    @property
    def content_dir(self) -> str:
        """Where the audit keeps ELF files by digest for reachability (graph/reach.py):
        beside the database, created on first use."""
        self._content_path.mkdir(parents=True, exist_ok=True)
        return str(self._content_path)

    @property
    def _content_path(self) -> Path:
        return Path(f"{self.path}.content")

    def _open(self) -> sqlite3.Connection:
        """Connect, switch to WAL and migrate. Switching the journal mode takes the file
        without waiting on the busy handler, so a scan starting while another creates
        or opens the same store gets "locked" at once: it tries again, within the busy
        timeout."""
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            try:
                self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute("PRAGMA synchronous = NORMAL")
                self._migrate()
                return self._db
            except sqlite3.OperationalError as exc:
                self._db.close()
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(random.uniform(0.01, 0.1))

    def _migrate(self) -> None:
        with self.transaction():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            row = self._db.execute("SELECT value FROM info WHERE key = 'schema'").fetchone()
            if row is None:
                self._db.execute("INSERT INTO info VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            elif int(row[0]) != SCHEMA_VERSION:
                raise sqlite3.DatabaseError(
                    f"schema version {row[0]}, this portscan reads version {SCHEMA_VERSION}"
                )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of it lands, or none of it."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- layers
    def has_layer(self, digest: str, layer_key: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM layers WHERE digest = ? AND layer_key = ?", (digest, layer_key)
        ).fetchone()
        return row is not None

    def layer(self, digest: str, layer_key: str) -> bytes | None:
        row = self._db.execute(
            "SELECT data FROM layers WHERE digest = ? AND layer_key = ?", (digest, layer_key)
        ).fetchone()
        return None if row is None else bytes(row[0])

    def put_layer(self, run_id: int | None, layer: LayerRow) -> None:
        """Store one analysed layer and count the analysis (for the run `run_id`, if
        any), in one transaction."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO layers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    layer.digest, layer.layer_key, layer.data, layer.compressed_bytes,
                    layer.uncompressed_bytes, layer.entries, layer.seconds, now(), run_id,
                ),
            )  # fmt: skip
            db.execute(
                "UPDATE runs SET layers_analysed = layers_analysed + 1 WHERE id = ?", (run_id,)
            )

    # -- reachability walks
    def reach(self, digest: str, root: str, reach_key: str) -> bytes | None:
        row = self._db.execute(
            "SELECT data FROM reach WHERE digest = ? AND root = ? AND reach_key = ?",
            (digest, root, reach_key),
        ).fetchone()
        return None if row is None else bytes(row[0])

    def has_reaches(self, digest: str, reach_key: str) -> bool:
        """Whether any walk of the file of this digest is stored under `reach_key`."""
        row = self._db.execute(
            "SELECT 1 FROM reach WHERE digest = ? AND reach_key = ? LIMIT 1", (digest, reach_key)
        ).fetchone()
        return row is not None

    def put_reaches(self, reach_key: str, walks: Iterable[tuple[str, str, bytes]]) -> None:
        """Store (digest, root, data) walks made under `reach_key`, in one transaction."""
        with self.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO reach VALUES (?, ?, ?, ?)",
                [(digest, root, reach_key, data) for digest, root, data in walks],
            )

    # -- whole scan results
    def result(self, result_key: str) -> ResultRow | None:
        row = self._db.execute(
            "SELECT result_key, code_key, reference, data, head, tail, seconds FROM results"
            " WHERE result_key = ?",
            (result_key,),
        ).fetchone()
        return None if row is None else ResultRow(*row)

    def put_result(self, result: ResultRow) -> None:
        """Store one whole result, in one transaction (a concurrent scan storing the same
        key replaces it with the same result)."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    result.result_key, result.code_key, result.reference, result.data,
                    result.head, result.tail, result.seconds, now(),
                ),
            )  # fmt: skip

    # -- images
    def has_image(self, digest: str, result_key: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM images WHERE digest = ? AND result_key = ?", (digest, result_key)
        ).fetchone()
        return row is not None

    def image_summary(self, digest: str, result_key: str) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT summary FROM images WHERE digest = ? AND result_key = ?", (digest, result_key)
        ).fetchone()
        return None if row is None else json.loads(row[0])

    def image_result(self, digest: str, result_key: str) -> dict[str, Any] | None:
        """The scan result's JSON document (report.json.to_dict) as stored."""
        row = self._db.execute(
            "SELECT result FROM images WHERE digest = ? AND result_key = ?", (digest, result_key)
        ).fetchone()
        return None if row is None else json.loads(zlib.decompress(row[0]))

    def image_meta(self, digest: str, result_key: str) -> ImageMeta | None:
        row = self._db.execute(
            "SELECT meta FROM images WHERE digest = ? AND result_key = ?", (digest, result_key)
        ).fetchone()
        return None if row is None else _unpack(row[0])

    def image_layers(self, digest: str, result_key: str) -> list[ImageLayer]:
        rows = self._db.execute(
            "SELECT layer_digest, size, created_by FROM image_layers"
            " WHERE digest = ? AND result_key = ? ORDER BY position",
            (digest, result_key),
        )
        return [ImageLayer(*row) for row in rows]

    def put_image(self, run_id: int, audit_id: int, image: ImageRow, names: Iterable[str]) -> None:
        """Store one scanned image and what the audit found under each of its names
        (`repository:tag`), in one transaction."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO images VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    image.digest, image.result_key, image.layer_key, image.reference,
                    image.platform, image.created, json.dumps(image.verdicts, sort_keys=True),
                    json.dumps(image.summary, sort_keys=True), image.result, _pack(image.meta),
                    image.seconds, now(), run_id,
                ),
            )  # fmt: skip
            db.execute(
                "DELETE FROM image_layers WHERE digest = ? AND result_key = ?",
                (image.digest, image.result_key),
            )
            db.executemany(
                "INSERT INTO image_layers VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (image.digest, image.result_key, i, layer.digest, layer.size, layer.created_by)
                    for i, layer in enumerate(image.layers)
                ],
            )
            self._record(
                db, audit_id, names, image.digest, image.result_key, "scanned", image.verdicts
            )
            db.execute(
                "UPDATE runs SET images_scanned = images_scanned + 1 WHERE id = ?", (run_id,)
            )

    def record_reused(
        self, run_id: int, audit_id: int, digest: str, result_key: str, names: Iterable[str]
    ) -> None:
        """Record that the audit found an image whose result is in the store already."""
        with self.transaction() as db:
            row = db.execute(
                "SELECT verdicts FROM images WHERE digest = ? AND result_key = ?",
                (digest, result_key),
            ).fetchone()
            verdicts = json.loads(row[0]) if row else {}
            self._record(db, audit_id, names, digest, result_key, "reused", verdicts)
            db.execute("UPDATE runs SET images_reused = images_reused + 1 WHERE id = ?", (run_id,))

    def record_failed(
        self, run_id: int, audit_id: int, digest: str | None, names: Iterable[str], error: str
    ) -> None:
        with self.transaction() as db:
            self._record(db, audit_id, names, digest, None, "failed", {}, error)
            db.execute("UPDATE runs SET images_failed = images_failed + 1 WHERE id = ?", (run_id,))

    @staticmethod
    def _record(
        db: sqlite3.Connection,
        audit_id: int,
        names: Iterable[str],
        digest: str | None,
        result_key: str | None,
        status: str,
        verdicts: dict[str, str],
        error: str | None = None,
    ) -> None:
        rows = []
        for name in names:
            repository, _, tag = name.rpartition(":")
            rows.append(
                (audit_id, repository, tag, digest, result_key, status, json.dumps(verdicts), error)
            )
        # A resumed audit keeps `scanned` for what an earlier run of it scanned.
        db.executemany(
            "INSERT INTO audit_images VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (audit_id, repository, tag) DO UPDATE SET digest = excluded.digest,"
            " result_key = excluded.result_key, status = excluded.status,"
            " verdicts = excluded.verdicts, error = excluded.error"
            " WHERE NOT (excluded.status = 'reused' AND audit_images.status = 'scanned'"
            " AND audit_images.digest IS excluded.digest"
            " AND audit_images.result_key IS excluded.result_key)",
            rows,
        )

    # -- audits and runs
    def open_audit(self, registry: str, selection: dict[str, Any]) -> tuple[Audit, bool]:
        """The unfinished audit of `registry` with this selection, to resume, else a new
        one; the flag says whether it was resumed."""
        text = json.dumps(selection, sort_keys=True)
        with self.transaction() as db:
            row = db.execute(
                "SELECT id FROM audits WHERE registry = ? AND selection = ? AND finished IS NULL"
                " ORDER BY id DESC LIMIT 1",
                (registry, text),
            ).fetchone()
            resumed = row is not None
            if row is None:
                cursor = db.execute(
                    "INSERT INTO audits (registry, selection, started) VALUES (?, ?, ?)",
                    (registry, text, now()),
                )
                row = (cursor.lastrowid,)
        audit = self.audit(int(row[0]))
        assert audit is not None
        return audit, resumed

    def audit(self, audit_id: int) -> Audit | None:
        row = self._db.execute(
            "SELECT id, registry, selection, started, finished, images, failed FROM audits"
            " WHERE id = ?",
            (audit_id,),
        ).fetchone()
        if row is None:
            return None
        return Audit(row[0], row[1], json.loads(row[2]), *row[3:])

    def previous_audit(self, audit: Audit) -> Audit | None:
        """The latest finished audit before `audit` of the same registry and selection."""
        row = self._db.execute(
            "SELECT id FROM audits WHERE registry = ? AND selection = ? AND id < ?"
            " AND finished IS NOT NULL ORDER BY id DESC LIMIT 1",
            (audit.registry, json.dumps(audit.selection, sort_keys=True), audit.id),
        ).fetchone()
        return None if row is None else self.audit(int(row[0]))

    def audit_images(self, audit_id: int) -> list[AuditImage]:
        rows = self._db.execute(
            "SELECT repository, tag, digest, result_key, status, verdicts, error"
            " FROM audit_images WHERE audit_id = ? ORDER BY repository, tag",
            (audit_id,),
        )
        return [AuditImage(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6]) for r in rows]

    def finish_audit(self, audit_id: int, names: Iterable[str]) -> None:
        """Close the audit: keep only the rows of `names` (what the last discovery
        found) and count them."""
        keep = {tuple(name.rpartition(":")[::2]) for name in names}
        with self.transaction() as db:
            stale = [
                (audit_id, repository, tag)
                for repository, tag in db.execute(
                    "SELECT repository, tag FROM audit_images WHERE audit_id = ?", (audit_id,)
                )
                if (repository, tag) not in keep
            ]
            db.executemany(
                "DELETE FROM audit_images WHERE audit_id = ? AND repository = ? AND tag = ?",
                stale,
            )
            images, failed = db.execute(
                "SELECT COUNT(*), SUM(status = 'failed') FROM audit_images WHERE audit_id = ?",
                (audit_id,),
            ).fetchone()
            db.execute(
                "UPDATE audits SET finished = ?, images = ?, failed = ? WHERE id = ?",
                (now(), images, failed or 0, audit_id),
            )

    def start_run(self, audit_id: int, executor: str) -> int:
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT INTO runs (audit_id, executor, started) VALUES (?, ?, ?)",
                (audit_id, executor, now()),
            )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def finish_run(self, run_id: int) -> None:
        with self.transaction() as db:
            db.execute("UPDATE runs SET finished = ? WHERE id = ?", (now(), run_id))

    def run(self, run_id: int) -> Run | None:
        row = self._db.execute(
            "SELECT id, audit_id, executor, started, finished, layers_analysed,"
            " images_scanned, images_reused, images_failed FROM runs WHERE id = ?",
            (run_id,),
        ).fetchone()
        return None if row is None else Run(*row)

    # -- maintenance
    def stats(
        self,
        layer_key: str,
        result_key: str,
        code_key: str | None = None,
        reach_key: str | None = None,
    ) -> StoreStats:
        """Counts and sizes; rows not under the current keys count as stale (whole
        results under `code_key`, walks under `reach_key`, when given)."""
        db = self._db
        layers, layer_bytes, stale_layers = self._counts(
            "layers", "LENGTH(data)", "layer_key", layer_key
        )
        images, image_bytes, stale_images = self._counts(
            "images", "LENGTH(result) + LENGTH(meta)", "result_key", result_key
        )
        results, result_bytes, stale_results = self._counts(
            "results", "LENGTH(data) + LENGTH(head) + LENGTH(tail)", "code_key", code_key
        )
        walks, walk_bytes, stale_walks = self._counts(
            "reach", "LENGTH(data)", "reach_key", reach_key
        )
        audits, unfinished = db.execute(
            "SELECT COUNT(*), COALESCE(SUM(finished IS NULL), 0) FROM audits"
        ).fetchone()
        last = dict(
            db.execute("SELECT registry, MAX(started) FROM audits GROUP BY registry ORDER BY 1")
        )
        file_bytes = sum(
            p.stat().st_size
            for p in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm"))
            if p.exists()
        )
        kept = content.kept(str(self._content_path))  # none: no folder
        return StoreStats(
            self.path, file_bytes, layers, layer_bytes, stale_layers, images, image_bytes,
            stale_images, audits, unfinished, last,
            results=results, result_bytes=result_bytes, stale_results=stale_results,
            walks=walks, walk_bytes=walk_bytes, stale_walks=stale_walks,
            files=len(kept), file_content_bytes=content.disk_bytes(str(self._content_path)),
        )  # fmt: skip

    def _counts(
        self, table: str, size: str, key_column: str, key: str | None
    ) -> tuple[int, int, int]:
        """(rows, bytes by the SQL expression `size`, rows whose `key_column` is not
        `key`) of one table. `x != NULL` is NULL, which SUM skips: without a key
        nothing is stale."""
        return self._db.execute(
            f"SELECT COUNT(*), COALESCE(SUM({size}), 0),"
            f" COALESCE(SUM({key_column} != ?), 0) FROM {table}",
            (key,),
        ).fetchone()

    def gc(
        self,
        layer_key: str,
        result_key: str,
        older_than_days: float | None,
        reach_key: str | None = None,
        code_key: str | None = None,
    ) -> GcReport:
        """Drop image results not under `result_key` (or scanned more than
        `older_than_days` ago), the scan cache's whole results not under `code_key` (or
        stored more than `older_than_days` ago), then layers not under `layer_key` or
        not used by any remaining image result, then the walks not under `reach_key` or
        of files no remaining layer holds, and those files in the content directory
        (`_drop_content`); then compact the file. Audit records are kept."""
        before = self.path.stat().st_size if self.path.exists() else 0
        report = GcReport()
        with self.transaction() as db:
            doomed = "result_key != ?"
            params: list[Any] = [result_key]
            if older_than_days is not None:
                cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=older_than_days)
                doomed += " OR scanned_at < ?"
                params.append(cutoff.replace(microsecond=0).isoformat())
            db.execute(
                "DELETE FROM image_layers WHERE (digest, result_key) IN"
                f" (SELECT digest, result_key FROM images WHERE {doomed})",
                params,
            )
            report.images = db.execute(f"DELETE FROM images WHERE {doomed}", params).rowcount
            if code_key is not None:
                old = "code_key != ?" + (" OR stored_at < ?" if len(params) > 1 else "")
                stale = db.execute(f"DELETE FROM results WHERE {old}", [code_key, *params[1:]])
                report.results = stale.rowcount
            report.layers = db.execute(
                "DELETE FROM layers WHERE layer_key != ? OR digest NOT IN"
                " (SELECT layer_digest FROM image_layers)",
                (layer_key,),
            ).rowcount
            kept: set[str] = set()  # the ELF files the remaining layers found
            for (blob,) in db.execute("SELECT data FROM layers"):
                kept |= content_digests(decode_layer(blob))
            if reach_key is not None:
                stale = "DELETE FROM reach WHERE reach_key != ?"
                report.walks = db.execute(stale, (reach_key,)).rowcount
            walked = {digest for (digest,) in db.execute("SELECT DISTINCT digest FROM reach")}
            for digest in walked - kept:
                gone = db.execute("DELETE FROM reach WHERE digest = ?", (digest,)).rowcount
                report.walks += gone
        report.files, file_bytes = self._drop_content(kept)
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._db.execute("VACUUM")
        report.freed_bytes = max(0, before - self.path.stat().st_size) + file_bytes
        return report

    def _drop_content(self, kept: set[str]) -> tuple[int, int]:
        """Remove the ELF files of the content directory that are not in `kept`, except
        those written in the last `CONTENT_GRACE` seconds (a scan running now may not
        have stored the layer that needs them yet); (files removed, their bytes)."""
        return content.drop(str(self._content_path), kept, CONTENT_GRACE)
