"""syft as enrichment: the real syft binary on real inputs, and the merge by purl."""

from __future__ import annotations

import importlib.metadata
import json
import socket
from collections.abc import Sequence
from pathlib import Path

import pytest

from portscan.errors import PortscanError, UsageError
from portscan.inspect.elf.worker import ElfAnalyser
from portscan.inspect.packages import Inventory, catalog
from portscan.inspect.sbom import (
    SyftNotFoundError,
    enrich_with_syft,
    find_syft,
    merge,
    syft_source,
)
from portscan.layers import Analyser, Tree, merge_layers, read_layer
from portscan.model import LayerDescriptor, Package
from tests import imagebuild as ib
from tests.test_packages import DEBIAN_OS_RELEASE, host_list, keep_catalogued, tree_from

CORPUS = Path("/tmp/portscan-corpus")
JQ_LAYOUT = CORPUS / "oci/jq-latest"
needs_corpus = pytest.mark.skipif(
    not CORPUS.exists(), reason="no corpus: run tools/corpus/build_corpus.sh"
)
CARGO_LOCK = """\
version = 3

[[package]]
name = "itoa"
version = "1.0.11"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "49f1f14873335454500d59611f1cf4a4b0f786f9ac11f4312a78e4cf2566695b"
"""


@pytest.fixture(scope="module")
def syft() -> str:
    try:
        return find_syft()
    except SyftNotFoundError:
        pytest.fail("syft is required: pip install 'portscan[syft]' (or the test extra)")


def test_syft_source_maps_reference_syntax() -> None:
    assert syft_source("registry:127.0.0.1:5000/corpus/jq") == (
        "registry:127.0.0.1:5000/corpus/jq:latest",
        [],
    )
    assert syft_source("docker:nginx:1.27")[0] == "docker:docker.io/library/nginx:1.27"
    assert syft_source("nginx")[0] == "nginx"  # syft tries the daemon, then the registry
    assert syft_source("docker-archive:/tmp/a.tar")[0] == "docker-archive:/tmp/a.tar"
    assert syft_source("oci-dir:/tmp/layout") == ("oci-dir:/tmp/layout", [])
    source, lost = syft_source("oci:/tmp/layout:v2")
    assert source == "oci-dir:/tmp/layout" and "v2" in lost[0]
    assert syft_source("dir:/srv/rootfs")[0] == "dir:/srv/rootfs"
    assert syft_source("podman:nginx:1.27")[0] == "podman:docker.io/library/nginx:1.27"
    source, lost = syft_source("oci-archive:/tmp/missing-layout.tar:v2")
    assert source == "oci-archive:/tmp/missing-layout.tar" and "v2" in lost[0]
    source, lost = syft_source("docker-archive:/tmp/missing-two.tar@1")
    assert source == "docker-archive:/tmp/missing-two.tar" and "@1" in lost[0]
    with pytest.raises(UsageError, match="standard input"):
        syft_source("docker-archive:-")


def test_missing_syft_raises_with_install_hint(tmp_path: Path) -> None:
    with pytest.raises(SyftNotFoundError) as raised:
        find_syft(search_path=str(tmp_path))
    assert isinstance(raised.value, PortscanError)
    assert "pip install 'portscan[syft]'" in str(raised.value)


def fixture_entries() -> list[ib.Entry]:
    """A dpkg database (two real host packages: adduser's copyright is DEP-5, libc6's
    is not), a real dist-info, and a Cargo.lock, which only syft reads."""
    status = Path("/var/lib/dpkg/status").read_text()
    paragraphs = [
        p for p in status.split("\n\n") if p.startswith(("Package: adduser\n", "Package: libc6\n"))
    ]
    dist = importlib.metadata.distribution("pluggy")
    meta = Path(str(dist.locate_file(""))) / f"pluggy-{dist.version}.dist-info"
    site = "usr/local/lib/python3.11/site-packages"
    entries = [
        ib.file("etc/os-release", DEBIAN_OS_RELEASE),
        ib.file("var/lib/dpkg/status", "\n\n".join(paragraphs) + "\n"),
        ib.file("app/Cargo.lock", CARGO_LOCK),
        *(
            ib.file(f"{site}/{meta.name}/{n}", (meta / n).read_bytes())
            for n in ("METADATA", "RECORD")
        ),
    ]
    for name in ("adduser", "libc6"):
        listing = host_list(name)
        entries.append(ib.file(str(listing).lstrip("/"), listing.read_bytes()))
        copyright_ = Path(f"/usr/share/doc/{name}/copyright")
        entries.append(ib.file(str(copyright_).lstrip("/"), copyright_.read_bytes()))
    return entries


def test_enrich_merges_syft_packages_by_purl(tmp_path: Path, syft: str) -> None:
    entries = fixture_entries()
    for entry in entries:  # the same files on disk, for `syft dir:`
        (tmp_path / entry.name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / entry.name).write_bytes(entry.data)
    ours = catalog(tree_from(entries)).packages
    assert sorted(p.name for p in ours) == ["adduser", "libc6", "pluggy"]
    merged, warnings = enrich_with_syft(f"dir:{tmp_path}", ours, timeout=120, syft=syft)
    assert warnings == []
    by_name = {p.name: p for p in merged}
    for name in ("adduser", "libc6", "pluggy"):
        assert by_name[name].found_by == "portscan+syft", name
    assert ours[0].found_by == "portscan"  # the input is not modified
    # syft reads common-licenses references in a non-DEP-5 copyright; portscan does not
    assert next(p for p in ours if p.name == "libc6").licenses == []
    assert by_name["libc6"].licenses and "GPL-2+" in by_name["adduser"].licenses
    itoa = by_name["itoa"]
    assert (itoa.found_by, itoa.ecosystem, itoa.purl) == (
        "syft",
        "rust-crate",
        "pkg:cargo/itoa@1.0.11",
    )
    assert itoa.source == "/app/Cargo.lock"
    assert len(merged) == 4


def test_syft_failure_and_timeout_are_warnings(tmp_path: Path, syft: str) -> None:
    ours = [Package("a", "1", "deb", "pkg:deb/debian/a@1")]
    merged, warnings = enrich_with_syft(f"dir:{tmp_path / 'absent'}", ours, timeout=120, syft=syft)
    assert merged == ours and len(warnings) == 1 and warnings[0].startswith("syft failed (exit ")
    merged, warnings = enrich_with_syft(f"dir:{tmp_path}", ours, timeout=0.001, syft=syft)
    assert merged == ours and warnings == [
        "syft did not finish within 0.001 s; its packages are not merged"
    ]


def test_merge_falls_back_to_name_and_prefers_the_same_file() -> None:
    ours = [
        Package("hello", "1.0", "java", "pkg:maven/hello@1.0", source="/a/hello-1.0.jar"),
        Package("hello", "1.0", "java", "pkg:maven/hello@1.0", source="/b/hello-1.0.jar"),
    ]
    artifact = {  # syft writes the group it guessed into the purl
        "name": "hello",
        "version": "1.0",
        "type": "java-archive",
        "purl": "pkg:maven/hello/hello@1.0",
        "licenses": [{"value": "MIT"}],
        "locations": [{"path": "/b/hello-1.0.jar", "layerID": "sha256:bb"}],
    }
    merged = merge(ours, [artifact], diff_ids=["sha256:aa", "sha256:bb"])
    assert [(p.source, p.found_by, p.licenses) for p in merged] == [
        ("/a/hello-1.0.jar", "portscan", []),
        ("/b/hello-1.0.jar", "portscan+syft", ["MIT"]),
    ]
    (only_syft,) = merge([], [artifact], diff_ids=["sha256:aa", "sha256:bb"])
    assert (only_syft.layer, only_syft.ecosystem, only_syft.found_by) == (1, "java", "syft")


# --------------------------------------------------------------------------- corpus


def read_oci_layout(root: Path, analysers: Sequence[Analyser] = ()) -> tuple[Tree, list[str]]:
    """The merged tree and diff_ids of a single-manifest OCI layout, read directly."""

    def blob(digest: str) -> Path:
        return root / "blobs" / "sha256" / digest.split(":", 1)[1]

    index = json.loads((root / "index.json").read_text())
    manifest = json.loads(blob(index["manifests"][0]["digest"]).read_bytes())
    config = json.loads(blob(manifest["config"]["digest"]).read_bytes())
    layers = []
    for layer in manifest["layers"]:
        descriptor = LayerDescriptor(layer["digest"], layer["size"], layer["mediaType"])
        with blob(layer["digest"]).open("rb") as stream:
            layers.append(read_layer(stream, descriptor, keep=keep_catalogued, analysers=analysers))
    return merge_layers(layers), config["rootfs"]["diff_ids"]


@pytest.fixture(scope="module")
def jq_image() -> tuple[Inventory, list[str]]:
    tree, diff_ids = read_oci_layout(JQ_LAYOUT)
    return catalog(tree), diff_ids


@needs_corpus
def test_corpus_jq_every_syft_deb_is_found_by_portscan(jq_image: tuple, syft: str) -> None:
    inventory, diff_ids = jq_image
    assert inventory.warnings == []
    expected = CORPUS / "expected/jq-latest.dpkg.tsv"
    truth = {tuple(line.split("\t")) for line in expected.read_text().splitlines()}
    ours = {(p.name, p.version, p.architecture) for p in inventory.packages if p.ecosystem == "deb"}
    assert ours == truth
    jq = next(p for p in inventory.packages if p.name == "jq")
    assert inventory.owner_of["/usr/bin/jq"] == jq.purl and jq.layer == 1
    merged, warnings = enrich_with_syft(
        f"oci:{JQ_LAYOUT}", inventory.packages, 300, diff_ids=diff_ids, syft=syft
    )
    assert warnings == []
    debs = [p for p in merged if p.ecosystem == "deb"]
    assert [p for p in debs if p.found_by != "portscan+syft"] == []  # syft found no deb we missed
    assert len(debs) == len(truth) == 91
    libc = next(p for p in merged if p.name == "libc6")
    assert len(libc.licenses) > len(
        next(p for p in inventory.packages if p.name == "libc6").licenses
    )


def registry_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 5000), timeout=1).close()
        return True
    except OSError:
        return False


@needs_corpus
def test_corpus_jq_through_the_plain_http_registry(jq_image: tuple, syft: str) -> None:
    if not registry_up():
        pytest.skip("no corpus registry on 127.0.0.1:5000 (tools/corpus/registry.sh start)")
    inventory, diff_ids = jq_image
    merged, warnings = enrich_with_syft(
        "registry:127.0.0.1:5000/corpus/jq:latest",
        inventory.packages,
        300,
        insecure_http=True,
        diff_ids=diff_ids,
        syft=syft,
    )
    assert warnings == []
    assert {p.found_by for p in merged} == {"portscan+syft"}
    assert len(merged) == len(inventory.packages) == 91


@needs_corpus
def test_corpus_gojq_go_modules_match_syft(syft: str) -> None:
    tree, diff_ids = read_oci_layout(CORPUS / "oci/gojq-latest", analysers=[ElfAnalyser()])
    inventory = catalog(tree)
    assert [(p.name, p.version) for p in inventory.packages] == [
        ("github.com/itchyny/gojq/cmd/gojq", "(devel)"),  # Debian builds without a main module
        ("stdlib", "go1.19.5"),
    ]
    merged, warnings = enrich_with_syft(
        f"oci:{CORPUS / 'oci/gojq-latest'}", inventory.packages, 300, diff_ids=diff_ids, syft=syft
    )
    assert warnings == []
    assert [(p.name, p.found_by) for p in merged] == [
        ("github.com/itchyny/gojq/cmd/gojq", "portscan+syft"),
        ("stdlib", "portscan+syft"),
    ]
