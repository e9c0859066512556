"""Node.js applications are judged by what their own JavaScript uses (read with
tree-sitter), Node itself by the engines that replace it: the corpus node:18 image, and
app trees laid over its layers."""

from __future__ import annotations

import gzip
import json
import shutil
import socket
from pathlib import Path

import pytest

from portscan.inspect.apps.javascript import read_javascript
from portscan.inspect.apps.source import match_uses
from portscan.knowledge import tables as sig
from portscan.model import ScanResult, Target, Verdict
from portscan.scan import scan_image
from tests import imagebuild as ib

CORPUS = Path("/tmp/portscan-corpus")
NODE_LAYOUT = CORPUS / "oci" / "node-18"
needs_node_corpus = pytest.mark.skipif(
    not NODE_LAYOUT.exists(), reason="no corpus: run tools/corpus/build_corpus.sh"
)

PURE_MAIN = """'use strict';
const { median } = require('./lib/stats');

const values = JSON.parse(process.argv[2] || '[1, 2, 3]');
console.log(median(values));
"""
PURE_STATS = """export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}
"""
SERVER_MAIN = """import http from 'node:http';
import { render } from './render.mjs';

http
  .createServer((req, res) => res.end(render(req.url)))
  .listen(process.env.PORT || 3000);
"""
SERVER_RENDER = """import { execFile } from 'node:child_process';

export function render(url) {
  execFile('convert', [url]);
  return 'queued';
}
"""


def over_node_corpus(root: Path, app: list[ib.Entry], config: dict) -> Path:
    """An OCI layout of the corpus node:18 image with one more layer (`app`) and its
    own config: the corpus blobs are copied, the new layer and config written."""
    index = json.loads((NODE_LAYOUT / "index.json").read_text())
    blobs = NODE_LAYOUT / "blobs" / "sha256"
    manifest = json.loads((blobs / index["manifests"][0]["digest"][7:]).read_bytes())
    base = json.loads((blobs / manifest["config"]["digest"][7:]).read_bytes())
    (root / "blobs").mkdir(parents=True)
    shutil.copytree(blobs, root / "blobs" / "sha256")
    tar = ib.layer_tar(app)
    layer = ib.Blob(ib.OCI_LAYER_GZIP, gzip.compress(tar, mtime=0))
    base["config"] = config
    base["rootfs"]["diff_ids"].append(ib.sha256(tar))
    base["history"].append({"created_by": "COPY app /app"})
    config_blob = ib.Blob(ib.OCI_CONFIG, json.dumps(base).encode())
    manifest["config"] = config_blob.descriptor()
    manifest["layers"].append(layer.descriptor())
    manifest_blob = ib.Blob(ib.OCI_MANIFEST, json.dumps(manifest).encode())
    for blob in (layer, config_blob, manifest_blob):
        (root / "blobs" / "sha256" / blob.digest[7:]).write_bytes(blob.data)
    top = manifest_blob.descriptor(annotations={"org.opencontainers.image.ref.name": "latest"})
    (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [top]}))
    return root


def application(result: ScanResult):
    return next(c for c in result.components if c.kind == "application")


def component(result: ScanResult, path: str):
    return next(c for c in result.components if c.path == path)


def registry_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 5000), timeout=1).close()
        return True
    except OSError:
        return False


@needs_node_corpus
def test_corpus_node_server_is_judged_by_its_code_not_by_node() -> None:
    if not registry_up():
        pytest.skip("no corpus registry on 127.0.0.1:5000 (tools/corpus/registry.sh start)")
    result = scan_image("127.0.0.1:5000/corpus/node:18")
    app = application(result)
    assert app.path == "/app/server.js" and app.reachable  # CMD node /app/server.js
    assert app.package == "pkg:npm/corpus-hello@1.0.0"
    serve = next(f for f in app.findings if f.rule_id == "PS202" and f.target is Target.WASIP2)
    assert {(e.file, e.line, e.symbol) for e in serve.evidence} == {
        ("/app/server.js", 2, "http.createServer"),
        ("/app/server.js", 2, ".listen()"),
    }
    assert "fetch event handler" in serve.message  # what StarlingMonkey offers instead
    node = component(result, "/usr/bin/node")
    assert node.runtime == "nodejs" and {f.rule_id for f in node.findings} == {"PS413"}
    assert "Node.js" in node.findings[0].message
    summary = sig.runtimes()["nodejs"].summary
    assert all(engine in summary for engine in ("Javy", "StarlingMonkey", "ComponentizeJS"))
    # node's own libraries are the runtime's: not what the image must port
    libuv = next(c for c in result.components if "libuv" in c.path)
    assert not libuv.reachable and libuv.verdicts[Target.WASIP1] is Verdict.REWORK
    assert result.targets[Target.WASIP1].verdict is Verdict.REWORK  # the server, at line 2
    assert "the application code" in app.plan.summary


@needs_node_corpus
def test_pure_and_server_apps_over_node_differ(tmp_path: Path) -> None:
    pure_files = [
        ib.file("app/package.json", '{"name": "median", "version": "1.0.0", "main": "main.js"}'),
        ib.file("app/main.js", PURE_MAIN),
        ib.file("app/lib/stats.js", PURE_STATS),
    ]
    pure = scan_image(
        "oci:" + str(over_node_corpus(tmp_path / "pure", pure_files, {
            "Cmd": ["node", "."], "WorkingDir": "/app", "User": "1000",
        }))
    )  # fmt: skip
    server_files = [
        ib.file(
            "app/package.json",
            json.dumps(
                {"name": "thumbs", "version": "2.0.0", "scripts": {"start": "node main.mjs"}}
            ),
        ),
        ib.file("app/main.mjs", SERVER_MAIN),
        ib.file("app/render.mjs", SERVER_RENDER),
    ]
    server = scan_image(
        "oci:" + str(over_node_corpus(tmp_path / "server", server_files, {
            "Cmd": ["npm", "start"], "WorkingDir": "/app", "User": "1000",
        }))
    )  # fmt: skip
    pure_app, server_app = application(pure), application(server)
    assert pure_app.path == "/app/main.js" and server_app.path == "/app/main.mjs"
    # no Node-only module: the engine swap (Javy, ComponentizeJS) is all it takes
    assert pure_app.verdicts[Target.WASIP1] is Verdict.SHIM
    assert pure_app.verdicts[Target.WASIP2] is Verdict.SHIM
    assert {f.rule_id for f in pure_app.findings} == {"PS420"}
    read = next(f for f in pure_app.findings if f.rule_id == "PS420")
    assert "/app/lib/stats.js" in read.evidence[0].detail  # followed require('./lib/stats')
    assert pure.targets[Target.WASIP1].verdict is Verdict.SHIM
    # child_process in a module the entry imports, and an http server
    assert server_app.verdicts[Target.WASIP1] is Verdict.REWORK
    wasip2 = {f.rule_id: f for f in server_app.findings if f.target is Target.WASIP2}
    spawn = wasip2["PS102"].evidence[0]
    assert (spawn.file, spawn.line, spawn.symbol) == (
        "/app/render.mjs",
        4,
        "child_process.execFile",
    )
    serve = {(e.file, e.line, e.symbol) for e in wasip2["PS202"].evidence}
    assert serve == {("/app/main.mjs", 5, "http.createServer"), ("/app/main.mjs", 6, ".listen()")}
    assert server.targets[Target.WASIP1].verdict is Verdict.REWORK


def test_read_javascript_resolves_require_and_import_bindings() -> None:
    source = b"""
const cp = require('node:child_process');
const { createServer: make } = require('net');
import * as fsp from 'fs/promises';
cp.spawnSync('ls');
make().listen(80);
await fetch('https://example.com');
const fs = { readFile() {} };
"""
    table = sig.api_table("javascript-modules.json")
    facts = read_javascript(source, table.globals)
    assert facts.references["child_process.spawnSync"] == 5
    assert facts.references["net.createServer"] == 6 and facts.references["fetch"] == 7
    found = {(u.api, u.name, u.line) for u in match_uses(facts, "/a.js", table)}
    assert found == {
        ("js-child-process", "child_process.spawnSync", 5),
        ("js-server", "net.createServer", 6),
        ("js-server", ".listen()", 6),
        ("js-fetch", "fetch", 7),
        ("js-fs", "import fs/promises", 4),
    }
    assert match_uses(read_javascript(b"console.log(1)"), "/b.js", table) == []
