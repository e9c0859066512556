"""Hostile images through the real command line (issue 16, the image side): every
crafted input ends in a scan or in one line and a documented exit code, never exit 1,
a traceback or a hang, and memory stays bounded. The images come from tests/hostile.py.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from benchmarks.bench_syft import timed
from portscan.layers import Limits
from tests import hostile
from tests import imagebuild as ib
from tests.registry_server import registry_available, start_registry

CORRUPT = 6  # errors.CorruptImageError
USAGE = 2
SIMPLE = [
    hostile.plain_tar(ib.file("etc/hello", "hi\n"), ib.file("bin/sh", "#!/bin/true\n", 0o755))
]


def portscan(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portscan", *args],
        capture_output=True,
        text=True,
        timeout=120,  # a hang is a failure, not a stuck CI job
        env={**os.environ, **(env or {})},
    )


def refused(reference: str, code: int, *words: str) -> str:
    """Scan `reference`; assert one error line with `code` and every word; return it."""
    result = portscan("image", reference, "--format", "json")
    assert result.returncode == code, result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("portscan: error: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def scanned(reference: str, tmp_path: Path, **env: str) -> dict[str, Any]:
    out = tmp_path / "result.json"
    result = portscan("image", reference, "--format", "json", "-o", str(out), env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(out.read_text())


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """An edit hook setting `a.b.c` in a document."""

    def edit(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        for key in parents:
            doc = doc.setdefault(key, {})
        doc[last] = value

    return edit


# --------------------------------------------------------------------------- types


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("config.Env", "PATH=/usr/bin", "config.Env"),
        ("config.Entrypoint", 42, "config.Entrypoint"),
        ("config.Cmd", ["/bin/sh", 7], "config.Cmd[1]"),
        ("config.User", 0, "config.User"),
        ("os", 1, "os"),
        ("config.Labels", {"a": {"b": "c"}}, "config.Labels.a"),
        ("config.ExposedPorts", ["80/tcp"], "config.ExposedPorts"),
        ("config", "none", "config"),
        ("history", {"created_by": "x"}, "history"),
        ("rootfs.diff_ids", "sha256:0", "rootfs.diff_ids"),
    ],
)
def test_config_fields_of_the_wrong_type_are_refused_by_name(
    tmp_path: Path, field: str, value: Any, named: str
) -> None:
    layout = hostile.write_layout(tmp_path / "img", SIMPLE, edit_config=_set(field, value))
    refused(layout.ref, CORRUPT, f"field {named} is", "config blob")


def test_env_entries_without_equals_are_refused(tmp_path: Path) -> None:
    edit = _set("config.Env", ["PATH=/usr/bin", "JUSTANAME"])  # config.md: VARNAME=VARVALUE
    layout = hostile.write_layout(tmp_path / "img", SIMPLE, edit_config=edit)
    refused(layout.ref, CORRUPT, "config.Env[1]", "no '='")


def test_the_same_validation_holds_for_docker_archives(tmp_path: Path) -> None:
    archive = hostile.write_docker_save(
        tmp_path / "a.tar", SIMPLE, edit_config=_set("config.Entrypoint", 42)
    )
    refused(f"docker-archive:{archive}", CORRUPT, "config.Entrypoint")


# --------------------------------------------------------------------------- depth


def test_deeply_nested_config_is_refused(tmp_path: Path) -> None:
    edit = _set("config.Labels", {"x": hostile.DEEP})
    layout = hostile.write_layout(tmp_path / "img", SIMPLE, edit_config=edit, depth=10_000)
    refused(layout.ref, CORRUPT, "nests JSON deeper than")


def test_deeply_nested_manifest_is_refused(tmp_path: Path) -> None:
    edit = _set("annotations", {"x": hostile.DEEP})
    layout = hostile.write_layout(tmp_path / "img", SIMPLE, edit_manifest=edit, depth=100_000)
    refused(layout.ref, CORRUPT, "nests JSON deeper than")


def test_deeply_nested_index_is_refused(tmp_path: Path) -> None:
    raw = hostile.serialise({"schemaVersion": 2, "manifests": hostile.DEEP}, 5_000)
    layout = hostile.write_layout(tmp_path / "img", SIMPLE, raw_index=raw)
    refused(layout.ref, CORRUPT, "index.json", "nests JSON deeper than")


def test_a_directory_tree_10000_levels_deep_scans(tmp_path: Path) -> None:
    deep = hostile.deep_tree_tar(10_000)
    gone = hostile.plain_tar(ib.whiteout("d"))  # removing it walks the whole tree too
    layout = hostile.write_layout(tmp_path / "img", [deep, deep, gone])
    doc = scanned(layout.ref, tmp_path)
    assert not any(f["path"].startswith("/d") for f in doc["files"])
    layout = hostile.write_layout(tmp_path / "img2", [deep])
    doc = scanned(layout.ref, tmp_path)
    leaf = "/" + "/".join(["d"] * 10_000) + "/leaf"
    assert leaf in {f["path"] for f in doc["files"]}


@pytest.mark.parametrize("form", ["table", "json", "markdown", "sarif", "html", "cyclonedx"])
def test_names_that_are_not_utf8_are_reported_in_every_format(tmp_path: Path, form: str) -> None:
    """Tar names are bytes and JSON may escape lone surrogates: every report prints them."""
    edit = _set("config.Entrypoint", ["/bin/link", "\udcff"])  # json writes "\udcff"
    tar = hostile.non_utf8_names_tar()
    layout = hostile.write_layout(tmp_path / "img", [tar], edit_config=edit)
    out = tmp_path / f"result.{form}"
    result = portscan("image", layout.ref, "--format", form, "-o", str(out))
    assert result.returncode == 0, result.stderr
    text = out.read_text(encoding="utf-8")
    assert "run\\xff" in text or "run\\\\xff" in text or "run%5Cxff" in text, text[:2000]
    if form == "json":  # no lone surrogate reaches the result, which strict parsers refuse
        assert "\\ud" not in text.lower()
        packages = json.loads(text)["packages"]
        assert [(p["name"], p["version"]) for p in packages] == [("bad\\xffname", "1.\\xfe")]


CONTROL_NAMES = ["esc\x1b]0;owned\x07", "csi\x9b2J", "cr\rfake", "nl\nwarning: all is well"]


@pytest.mark.parametrize("form", ["table", "json", "markdown", "sarif", "html", "cyclonedx"])
def test_control_characters_in_names_never_reach_a_report_raw(tmp_path: Path, form: str) -> None:
    """File names with terminal escape sequences (OSC, C1 CSI) and line breaks: every
    report shows them as `\\xNN` escapes, so an image cannot drive the terminal the
    table is printed on, nor add a line to a report. The table also escapes the
    config's strings (an Entrypoint with an escape sequence and a line break)."""
    tar = hostile.plain_tar(
        *(ib.file(f"bin/{name}", "#!/bin/sh\n", 0o755) for name in CONTROL_NAMES)
    )
    edit = _set("config.Entrypoint", ["/bin/csi\x1b[2J", "x\nwarning: fine", "y\r# forged"])
    layout = hostile.write_layout(tmp_path / "img", [tar], edit_config=edit)
    out = tmp_path / f"result.{form}"
    result = portscan("image", layout.ref, "--format", form, "-o", str(out))
    assert result.returncode == 0, result.stderr
    text = out.read_text(encoding="utf-8")
    if form in ("table", "markdown"):  # text read by people: no control character but \n
        assert not re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]", text), text
        assert "# forged" not in text.splitlines()
    if form == "table":
        assert "warning: fine" not in text.splitlines() and "x\\x0awarning: fine" in text
    if form == "json":
        paths = {f["path"] for f in json.loads(text)["files"]}
        assert {"/bin/esc\\x1b]0;owned\\x07", "/bin/nl\\x0awarning: all is well"} <= paths
    assert not any(line.startswith("warning: all is well") for line in text.splitlines())
    assert "owned\x07" not in text and "\x9b2J" not in text and "cr\rfake" not in text


# --------------------------------------------------------------------------- blob files


def test_a_fifo_blob_does_not_block(tmp_path: Path) -> None:
    layout = hostile.write_layout(tmp_path / "img", SIMPLE)
    blob = layout.blob(layout.layers[0])
    blob.unlink()
    os.mkfifo(blob)
    refused(layout.ref, CORRUPT, layout.layers[0], "FIFO")


def test_a_config_blob_linked_to_dev_zero_is_refused(tmp_path: Path) -> None:
    layout = hostile.write_layout(tmp_path / "img", SIMPLE)
    blob = layout.blob(layout.config)
    blob.unlink()
    blob.symlink_to("/dev/zero")
    refused(layout.ref, CORRUPT, layout.config, "symlink")


def test_an_index_json_that_is_a_device_is_refused(tmp_path: Path) -> None:
    layout = hostile.write_layout(tmp_path / "img", SIMPLE)
    (layout.root / "index.json").unlink()
    (layout.root / "index.json").symlink_to("/dev/zero")
    refused(layout.ref, CORRUPT, "index.json", "symlink")
    (layout.root / "index.json").unlink()
    os.mkfifo(layout.root / "index.json")
    refused(layout.ref, CORRUPT, "index.json", "FIFO")


# --------------------------------------------------------------------------- verification


def test_a_layer_that_does_not_match_its_diff_id_is_refused(tmp_path: Path) -> None:
    lie = [hostile.sha256(b"something else")]
    layout = hostile.write_layout(tmp_path / "img", SIMPLE, diff_ids=lie)
    refused(layout.ref, CORRUPT, layout.layers[0], "diff_ids")


def test_a_docker_archive_layer_that_does_not_match_its_diff_id_is_refused(
    tmp_path: Path,
) -> None:
    archive = hostile.write_docker_save(
        tmp_path / "a.tar", SIMPLE, edit_config=_set("rootfs.diff_ids", [hostile.sha256(b"x")])
    )
    refused(f"docker-archive:{archive}", CORRUPT)


SHA384 = "sha384:" + "ab" * 48  # a registered-looking algorithm portscan does not verify
CUSTOM = "foo+b64:abc"  # well-formed for the image spec's grammar, of no known algorithm


@pytest.mark.parametrize(
    ("part", "digest"),
    [("layer", SHA384), ("layer", CUSTOM), ("config", SHA384), ("config", CUSTOM),
     ("diff_id", SHA384), ("manifest", CUSTOM)],
)  # fmt: skip
def test_content_under_a_digest_portscan_cannot_verify_is_not_read(
    tmp_path: Path, part: str, digest: str
) -> None:
    """The documents are valid (tests/test_conformance.py); reading the blob is refused."""

    def edit(manifest: dict[str, Any]) -> None:
        if part in ("layer", "config"):
            (manifest["layers"][0] if part == "layer" else manifest["config"])["digest"] = digest

    layout = hostile.write_layout(
        tmp_path / "img",
        SIMPLE,
        edit_manifest=edit,
        diff_ids=[digest] if part == "diff_id" else None,
        index_entry={"digest": digest} if part == "manifest" else None,
    )
    line = refused(layout.ref, CORRUPT, digest, "portscan verifies sha256 and sha512 only")
    assert {"layer": "layer blob", "config": "config blob", "manifest": "manifest blob",
            "diff_id": "rootfs.diff_ids[0]"}[part] in line  # fmt: skip


@pytest.mark.parametrize("size", [-1, -5, "12", True, None])
def test_a_descriptor_size_that_is_not_a_byte_count_is_refused(tmp_path: Path, size: Any) -> None:
    def edit(manifest: dict[str, Any]) -> None:
        manifest["layers"][0]["size"] = size

    layout = hostile.write_layout(tmp_path / "img", SIMPLE, edit_manifest=edit)
    refused(layout.ref, CORRUPT, "layers[0].size")


def test_a_config_declared_too_large_is_refused_before_reading(tmp_path: Path) -> None:
    def edit(manifest: dict[str, Any]) -> None:
        manifest["config"]["size"] = 1 << 40

    layout = hostile.write_layout(tmp_path / "img", SIMPLE, edit_manifest=edit)
    refused(layout.ref, CORRUPT, "config blob", "more than")


def test_a_bad_tar_header_checksum_mid_stream_is_refused(tmp_path: Path) -> None:
    layout = hostile.write_layout(tmp_path / "img", [hostile.bad_checksum_tar()])
    refused(layout.ref, CORRUPT, layout.layers[0], "tar header at offset", "checksum")


def test_a_tar_member_with_a_negative_size_is_refused(tmp_path: Path) -> None:
    layout = hostile.write_layout(tmp_path / "img", [hostile.negative_size_tar()])
    refused(layout.ref, CORRUPT, "negative size")


def test_a_tar_extended_header_too_large_to_buffer_is_refused(tmp_path: Path) -> None:
    layout = hostile.write_layout(tmp_path / "img", [hostile.huge_pax_header_tar(40 << 20)])
    refused(layout.ref, CORRUPT, layout.layers[0], "extended header")


def test_a_malformed_media_type_is_refused(tmp_path: Path) -> None:
    layout = hostile.write_layout(
        tmp_path / "img", SIMPLE, edit_manifest=_set("layers", [{"mediaType": "not a type"}])
    )
    refused(layout.ref, CORRUPT)

    def edit(manifest: dict[str, Any]) -> None:
        manifest["layers"][0]["mediaType"] = "gzip please"

    layout = hostile.write_layout(tmp_path / "img2", SIMPLE, edit_manifest=edit)
    refused(layout.ref, CORRUPT, "layers[0].mediaType", "not a media type")


def test_what_the_image_spec_requires_is_required(tmp_path: Path) -> None:
    def edit(manifest: dict[str, Any]) -> None:
        del manifest["layers"][0]["mediaType"]

    layout = hostile.write_layout(tmp_path / "img", SIMPLE, edit_manifest=edit)
    refused(layout.ref, CORRUPT, "layers[0].mediaType is missing")
    refused(hostile.write_layout(tmp_path / "empty", []).ref, CORRUPT, "layers list is empty")


def test_doubtful_but_legal_manifests_scan_with_a_warning(tmp_path: Path) -> None:
    def edit(manifest: dict[str, Any]) -> None:
        manifest["layers"][1]["mediaType"] = "application/x-custom-blob"

    layout = hostile.write_layout(tmp_path / "img", [*SIMPLE, *SIMPLE], edit_manifest=edit)
    warnings = scanned(layout.ref, tmp_path)["warnings"]
    assert any("application/x-custom-blob" in w for w in warnings), warnings
    empty = hostile.write_layout(tmp_path / "empty", [], manifest_media_type=ib.DOCKER_MANIFEST)
    assert any("no layers" in w for w in scanned(empty.ref, tmp_path)["warnings"])


# --------------------------------------------------------------------------- valid shapes


def test_index_entries_without_platform_scan(tmp_path: Path) -> None:
    layout = hostile.write_unplatformed_index(tmp_path / "img", SIMPLE)
    doc = scanned(layout.ref, tmp_path)
    assert doc["image"]["platform"] == "linux/amd64"
    assert "/etc/hello" in {f["path"] for f in doc["files"]}
    assert any("names no platform" in w for w in doc["warnings"]), doc["warnings"]


def test_docker_manifest_with_an_octet_stream_config_scans(tmp_path: Path) -> None:
    layout = hostile.write_layout(
        tmp_path / "img",
        SIMPLE,
        manifest_media_type=ib.DOCKER_MANIFEST,
        config_media_type="application/octet-stream",
    )
    assert "/etc/hello" in {f["path"] for f in scanned(layout.ref, tmp_path)["files"]}


def test_docker_save_with_a_null_index_beside_manifest_json_scans(tmp_path: Path) -> None:
    index = json.dumps({"schemaVersion": 2, "mediaType": ib.OCI_INDEX, "manifests": None})
    archive = hostile.write_docker_save(tmp_path / "a.tar", SIMPLE, index_json=index.encode())
    doc = scanned(f"docker-archive:{archive}", tmp_path)
    assert doc["image"]["digest"].startswith("sha256:")
    assert any("index.json" in w for w in doc["warnings"])


def test_a_multi_image_docker_save_names_the_image_taken(tmp_path: Path) -> None:
    one, two = ib.Image([[ib.file("one", "1")]]), ib.Image([[ib.file("two", "2")]])
    images = [(one, "a/one:1"), (two, "b/two:2")]
    archive = ib.write_docker_archive_images(tmp_path / "m.tar", images)
    refused(f"docker-archive:{archive}", USAGE, "holds 2 images", "a/one:1", "b/two:2")
    doc = scanned(f"docker-archive:{archive}:b/two:2", tmp_path)
    assert doc["image"]["reference"].endswith("b/two:2")
    assert "/two" in {f["path"] for f in doc["files"]}


# --------------------------------------------------------------------------- limits


def test_files_over_the_limits_are_skipped_with_a_warning(tmp_path: Path) -> None:
    elf = ib.file("usr/bin/big", hostile.ELF_HEAD + bytes(3 << 20), 0o755)
    status = ib.file("var/lib/dpkg/status", b"Package: x\nDescription: " + b"a" * (3 << 20))
    layout = hostile.write_layout(tmp_path / "img", [hostile.plain_tar(elf, status)])
    env = {"PORTSCAN_MAX_ANALYSE_MIB": "2", "PORTSCAN_MAX_KEEP_MIB": "2"}
    warnings = scanned(layout.ref, tmp_path, **env)["warnings"]
    assert any("/usr/bin/big" in w and "too large to analyse" in w for w in warnings), warnings
    assert any("/var/lib/dpkg/status" in w and "too large" in w for w in warnings), warnings


def test_a_package_database_too_large_to_parse_is_skipped(tmp_path: Path) -> None:
    status = ib.file("var/lib/dpkg/status", b"Package: x\nDescription: " + b"a" * (40 << 20))
    layout = hostile.write_layout(tmp_path / "img", [hostile.plain_tar(status)])
    warnings = scanned(layout.ref, tmp_path)["warnings"]
    assert any("/var/lib/dpkg/status" in w and "not parsed" in w for w in warnings), warnings


def test_a_jar_with_a_huge_central_directory_is_not_opened(tmp_path: Path) -> None:
    jar = ib.file("app/many-1.0.jar", hostile.jar_claiming_a_huge_central_directory(1 << 30))
    layout = hostile.write_layout(tmp_path / "img", [hostile.plain_tar(jar)])
    warnings = scanned(layout.ref, tmp_path)["warnings"]
    assert any("many-1.0.jar" in w and "central directory" in w for w in warnings), warnings


def test_a_limit_that_is_not_a_number_is_a_usage_error(tmp_path: Path) -> None:
    layout = hostile.write_layout(tmp_path / "img", SIMPLE)
    result = portscan("image", layout.ref, env={"PORTSCAN_MAX_KEEP_MIB": "lots"})
    assert result.returncode == USAGE and result.stderr.count("\n") == 1, result.stderr
    assert "PORTSCAN_MAX_KEEP_MIB" in result.stderr


def test_a_jar_whose_entry_inflates_without_bound_is_not_inflated(tmp_path: Path) -> None:
    jar = ib.file("app/bomb-1.0.jar", hostile.zip_bomb_jar(96 << 20))
    layout = hostile.write_layout(tmp_path / "img", [hostile.plain_tar(jar)])
    doc = scanned(layout.ref, tmp_path, PORTSCAN_MAX_KEEP_MIB="64")
    assert any("lib/zeros.jar" in w and "inflate" in w for w in doc["warnings"]), doc["warnings"]


def _three_programs(native_bins: dict[str, bytes], tmp_path: Path) -> hostile.Layout:
    layer = hostile.plain_tar(
        ib.file("usr/lib/libgreet.so.1", native_bins["libgreet.so.1"], 0o755),
        ib.file("usr/bin/hello", native_bins["hello"], 0o755),
        ib.file("usr/bin/hello-static", native_bins["hello-static"], 0o755),
    )
    return hostile.write_layout(
        tmp_path / "img", [layer], edit_config=_set("config.Cmd", ["/usr/bin/hello"])
    )


@pytest.mark.parametrize(
    ("hook", "workers", "reason"),
    [
        ("PORTSCAN_TEST_FAIL_ANALYSIS", "1", "RuntimeError: PORTSCAN_TEST_FAIL_ANALYSIS matches"),
        ("PORTSCAN_TEST_FAIL_ANALYSIS", "0", "RuntimeError: PORTSCAN_TEST_FAIL_ANALYSIS matches"),
        ("PORTSCAN_TEST_CRASH_ANALYSIS", "1", "the ELF worker died of SIGSEGV"),
    ],
)
def test_one_file_whose_analysis_fails_does_not_fail_the_scan(
    native_bins: dict[str, bytes], tmp_path: Path, hook: str, workers: str, reason: str
) -> None:
    """An unexpected exception while analysing one ELF file (a bug, a lief failure on
    crafted bytes), or the worker dying of a crash on it, is that file's error and a
    warning naming it; the other files are judged and the scan ends normally. Through
    the test hooks of inspect/elf/worker.py, in the worker and in-process."""
    layout = _three_programs(native_bins, tmp_path)
    scratch = tmp_path / "tmp"  # the scan's temporary directory: empty again at its end
    scratch.mkdir()
    hooks = {hook: "*/hello-static", "PORTSCAN_WORKERS": workers, "TMPDIR": str(scratch)}
    doc = scanned(layout.ref, tmp_path, **hooks)
    assert list(scratch.iterdir()) == []  # a worker's scratch directory too, if it crashed
    failed = doc["binaries"]["/usr/bin/hello-static"]
    assert failed["error"].startswith("analysis failed (") and reason in failed["error"]
    assert (failed["machine"], failed["elf_class"]) == ("x86_64", 64)  # from its header
    warnings = [w for w in doc["warnings"] if "/usr/bin/hello-static" in w]
    assert len(warnings) == 1 and "the elf analysis failed" in warnings[0], doc["warnings"]
    assert reason in warnings[0]
    hello = doc["binaries"]["/usr/bin/hello"]
    assert hello["error"] is None and hello["needed"] == ["libgreet.so.1", "libc.so.6"]
    assert doc["binaries"]["/usr/lib/libgreet.so.1"]["soname"] == "libgreet.so.1"
    judged = {c["path"]: c for c in doc["components"]}
    assert judged["/usr/bin/hello"]["verdicts"] and judged["/usr/bin/hello-static"]["verdicts"]


def test_an_answer_of_the_worker_that_does_not_unpickle_is_analysed_here(
    native_bins: dict[str, bytes], tmp_path: Path
) -> None:
    """A frame from the ELF worker that cannot be read (a garbled stream: the bytes of
    a pickled string that is not UTF-8) stops the worker, and what it had not answered
    is analysed in this process: the scan ends normally with the same facts, never a
    reader thread dead on UnicodeDecodeError and a scan waiting for ever."""
    layout = _three_programs(native_bins, tmp_path)
    garbled = scanned(
        layout.ref, tmp_path, PORTSCAN_TEST_GARBLE_ANALYSIS="*/hello", PORTSCAN_WORKERS="1"
    )
    here = scanned(layout.ref, tmp_path, PORTSCAN_WORKERS="0")
    assert garbled["binaries"] == here["binaries"]
    assert garbled["binaries"]["/usr/bin/hello"]["error"] is None
    assert [c["verdicts"] for c in garbled["components"]] == [
        c["verdicts"] for c in here["components"]
    ]


RSS_BUDGET_MIB = 300  # docs/security.md, "Memory"


@pytest.mark.bomb
def test_a_multi_gib_bomb_scans_in_bounded_memory(tmp_path: Path) -> None:
    """2 GiB of ELF-headed zeros and a 512 MiB jar in one 3 MiB gzip layer: scanned,
    each file reported as too large, peak RSS of every process under the budget.
    (The inflating and hashing, about 5 s a GiB on a busy CI machine, set the size.)"""
    members = [
        ("usr/bin/bomb", hostile.ELF_HEAD, 2 << 30),
        ("app/bomb.jar", b"PK\x03\x04", 512 << 20),
    ]
    layout = hostile.write_bomb_layout(tmp_path / "bomb", members)
    assert layout.blob(layout.layers[0]).stat().st_size < 32 << 20
    out = tmp_path / "result.json"
    probe = (
        "import resource, subprocess, sys;"
        "r = subprocess.run(sys.argv[1:]);"
        "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    command = [sys.executable, "-m", "portscan", "image", layout.ref, "--format", "json"]
    result = subprocess.run(
        [sys.executable, "-c", probe, *command, "-o", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    code, peak_kib = map(int, result.stdout.split())
    assert code == 0, result.stderr
    warnings = json.loads(out.read_text())["warnings"]
    assert any("/usr/bin/bomb" in w and "too large" in w for w in warnings), warnings
    assert any("/app/bomb.jar" in w and "too large" in w for w in warnings), warnings
    assert peak_kib < RSS_BUDGET_MIB * 1024, f"peak RSS {peak_kib // 1024} MiB"
    print(f"bomb: peak RSS {peak_kib // 1024} MiB")


@pytest.mark.bomb
def test_an_image_of_as_many_entries_as_allowed_scans_within_the_budget(tmp_path: Path) -> None:
    """Every tar entry is held until the scan ends: a layer of as many empty files as
    PORTSCAN_MAX_ENTRIES allows by default scans with every file listed, and the whole
    process tree (the ELF worker included) peaks under the budget. 266 MiB measured;
    831 MiB for twice as many before FileEntry had slots (docs/security.md, "Memory")."""
    count = Limits().entries
    layout = hostile.many_files_layout(tmp_path / "many", count)
    out = tmp_path / "result.json"
    command = [sys.executable, "-m", "portscan", "image", layout.ref, "--format", "json"]
    env = {**os.environ, "PORTSCAN_NO_CACHE": "1"}
    _, peak_kib = timed([*command, "-o", str(out)], env)  # exits the test if the scan fails
    assert out.read_text().count('{"path":"/many/f') == count
    assert peak_kib < RSS_BUDGET_MIB * 1024, f"peak RSS of the tree {peak_kib // 1024} MiB"
    print(f"{count} entries: peak RSS of the tree {peak_kib // 1024} MiB")


def _docker25_with_lying_diff_id(tmp_path: Path) -> Path:
    """A Docker 25+ archive (OCI layout inside, gzip layers as the containerd store
    keeps them) whose config names a diff_id the layer does not have."""
    image = ib.Image([[ib.file("etc/hello", "hi\n")]])
    doc = json.loads(image.config_blob.data)
    doc["rootfs"]["diff_ids"] = [hostile.sha256(b"another layer")]
    image.config_blob = ib.Blob(ib.OCI_CONFIG, json.dumps(doc).encode())
    return ib.write_docker25_archive(tmp_path / "d25.tar", image, compressed=True)


def test_a_docker_archive_with_compressed_layers_checks_diff_ids(tmp_path: Path) -> None:
    archive = _docker25_with_lying_diff_id(tmp_path)
    refused(f"docker-archive:{archive}", CORRUPT, "diff_ids")  # read in place
    streamed = tmp_path / "d25.tar.gz"
    streamed.write_bytes(gzip.compress(archive.read_bytes(), mtime=0))
    refused(f"docker-archive:{streamed}", CORRUPT, "diff_ids")  # read once, as a stream


# --------------------------------------------------------------------------- registry


def _relabel(image: ib.Image, edit: Callable[[dict[str, Any]], None]) -> ib.Image:
    """`image` with its config document edited and its manifest rewritten to match."""
    doc = json.loads(image.config_blob.data)
    edit(doc)
    image.config_blob = ib.Blob(ib.OCI_CONFIG, json.dumps(doc).encode())
    manifest = json.loads(image.manifest_blob.data)
    manifest["config"] = image.config_blob.descriptor()
    image.manifest_blob = ib.Blob(ib.OCI_MANIFEST, json.dumps(manifest).encode())
    return image


@pytest.mark.registry
@pytest.mark.skipif(not registry_available(), reason="needs /usr/bin/docker-registry")
def test_a_registry_image_goes_through_the_same_validation(tmp_path: Path) -> None:
    layers = [[ib.file("etc/hello", "hi\n")]]
    with start_registry(tmp_path / "registry") as registry:
        registry.push("hostile/types", "1", ib.Image(layers, config={"Entrypoint": 42}))
        lie = _relabel(ib.Image(layers), _set("rootfs.diff_ids", [hostile.sha256(b"x")]))
        registry.push("hostile/diffid", "1", lie)
        refused(f"registry:{registry.host}/hostile/types:1", CORRUPT, "config.Entrypoint")
        refused(f"registry:{registry.host}/hostile/diffid:1", CORRUPT, "diff_ids")


def test_an_image_with_more_tar_entries_than_the_limit_is_refused(tmp_path: Path) -> None:
    """Every tar entry is held until the scan ends: past PORTSCAN_MAX_ENTRIES, counted
    over all layers, the scan stops with one line naming the limit."""
    layer = hostile.plain_tar(*(ib.file(f"many/f{i}", "") for i in range(30)))
    layout = hostile.write_layout(tmp_path / "img", [layer, layer])
    result = portscan("image", layout.ref, env={"PORTSCAN_MAX_ENTRIES": "50"})
    assert result.returncode == CORRUPT and result.stderr.count("\n") == 1, result.stderr
    assert "more than 50 tar entries" in result.stderr and "PORTSCAN_MAX_ENTRIES" in result.stderr
    assert layout.layers[1].split(":")[1][:12] in result.stderr  # the layer where it stopped
    doc = scanned(layout.ref, tmp_path, PORTSCAN_MAX_ENTRIES="60")  # exactly the limit
    assert len([f for f in doc["files"] if f["path"].startswith("/many/")]) == 30
    result = portscan("image", layout.ref, env={"PORTSCAN_MAX_ENTRIES": "1e6"})
    assert result.returncode == USAGE and "PORTSCAN_MAX_ENTRIES" in result.stderr
