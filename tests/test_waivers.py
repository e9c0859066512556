"""Waivers and --exclude on a real corpus image: a waived finding is shown with its
reason and no longer decides a verdict or a gate; an expired waiver stops the run."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import jsonschema
import markupsafe
import pytest

from portscan.errors import UsageError
from portscan.model import Target
from portscan.report import html
from portscan.waivers import load_waivers
from tests.test_cli import assert_one_line_error
from tests.test_config import run

BUSYBOX = Path("/tmp/portscan-corpus/oci/busybox-static")
SCHEMA = Path(__file__).parents[1] / "portscan/report/schema/portscan-result.schema.json"
REASON = "busybox's mount applet is never run in this service"

pytestmark = pytest.mark.skipif(
    not (BUSYBOX / "index.json").is_file(), reason="corpus OCI layouts not on this machine"
)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "xdg"
    path.mkdir()
    return path


def waiver_file(tmp_path: Path, body: str, name: str = "waivers.toml") -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


KERNEL_ADMIN = f"""
[[waiver]]
rule = "kernel-admin"          # PS618, by name
path = "/bin/busybox"
reason = "{REASON}"
expires = 2099-12-31
"""


def scan(*args: str, home: Path) -> dict:
    result = run("image", f"oci:{BUSYBOX}", "-f", "json", *args, home=home)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_waived_blocker_no_longer_fails_the_gate(tmp_path: Path, home: Path) -> None:
    gate = ("image", f"oci:{BUSYBOX}", "--fail-on", "blocked", "-o", "json=/dev/null")
    failed = run(*gate, home=home)
    assert failed.returncode == 10 and "verdict blocked" in failed.stderr

    waivers = waiver_file(tmp_path, KERNEL_ADMIN)
    passed = run(*gate, "--waivers", str(waivers), home=home)
    assert passed.returncode == 0, passed.stderr

    before, after = scan(home=home), scan("--waivers", str(waivers), home=home)
    assert {s["verdict"] for s in before["targets"].values()} == {"blocked"}
    assert {s["verdict"] for s in after["targets"].values()} == {"rework"}
    assert all(b["rule_id"] != "PS618" for s in after["targets"].values() for b in s["blockers"])
    (busybox,) = after["components"]
    waived = [f for f in busybox["findings"] if f.get("waived")]
    assert {f["rule_id"] for f in waived} == {"PS618"}
    assert {f["target"] for f in waived} == {t.value for t in Target}
    assert all(f["waived"] == REASON for f in waived)
    assert busybox["verdicts"]["wasip1"] == "rework"
    jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).validate(after)
    assert not any("waived" in f for f in before["components"][0]["findings"])

    table = run("image", f"oci:{BUSYBOX}", "--waivers", str(waivers), home=home).stdout
    assert f"  PS618 /bin/busybox on wasip1, wasip2, wasip3, wasix: {REASON}" in table
    assert "waived (not counted for verdicts or gates):" in table


def test_saved_results_keep_their_waivers(tmp_path: Path, home: Path) -> None:
    waivers = waiver_file(tmp_path, KERNEL_ADMIN)
    saved = tmp_path / "result.json"
    result = run("image", f"oci:{BUSYBOX}", "--waivers", str(waivers), "-o", f"json={saved}",
                 home=home)  # fmt: skip
    assert result.returncode == 0, result.stderr
    again = run("report", str(saved), "-f", "markdown", "--fail-on", "blocked", home=home)
    assert again.returncode == 0, again.stderr
    assert "**Waived** (not counted for verdicts or gates)" in again.stdout
    assert REASON in again.stdout
    page = run("report", str(saved), "-f", "html", home=home).stdout
    data = re.search(r'id="portscan-data-0" data-encoding="base64">([A-Za-z0-9+/=]+)<', page)
    assert data is not None
    (row,) = html.unpack_data(data.group(1))  # the first chunk of the rows' details
    assert {f["rule"]: f["waived"] for f in row["findings"] if f["waived"]} == {"PS618": REASON}
    sarif = json.loads(run("report", str(saved), "-f", "sarif", home=home).stdout)
    suppressed = [r for r in sarif["runs"][0]["results"] if r.get("suppressions")]
    assert suppressed and {r["ruleId"] for r in suppressed} == {"PS618"}
    assert suppressed[0]["suppressions"] == [{"kind": "external", "justification": REASON}]


def _judged(doc: dict) -> dict:
    """A result without what differs between two runs (timing, warnings' order)."""
    return {k: v for k, v in doc.items() if k not in {"scanned_at", "duration_seconds",
            "warnings"}} | {"warnings": sorted(doc["warnings"])}  # fmt: skip


def test_report_and_diff_apply_waivers_to_saved_results(tmp_path: Path, home: Path) -> None:
    """A saved result judged with --waivers by `report` or `diff` is the result a scan
    with the waivers gives; the gates judge what is left."""
    waivers = waiver_file(tmp_path, KERNEL_ADMIN)
    plain, waived = tmp_path / "plain.json", tmp_path / "waived.json"
    for path, extra in ((plain, ()), (waived, ("--waivers", str(waivers)))):
        done = run("image", f"oci:{BUSYBOX}", *extra, "-o", f"json={path}", home=home)
        assert done.returncode == 0, done.stderr
    again = run("report", str(plain), "--waivers", str(waivers), "-f", "json", home=home)
    assert again.returncode == 0, again.stderr
    assert _judged(json.loads(again.stdout)) == _judged(json.loads(waived.read_text()))
    gate = ("report", str(plain), "--fail-on", "blocked", "-o", "json=/dev/null")
    assert run(*gate, home=home).returncode == 10
    assert run(*gate, "--waivers", str(waivers), home=home).returncode == 0

    changes = run("diff", str(plain), str(waived), "-f", "json", home=home)
    assert changes.returncode == 0, changes.stderr
    doc = json.loads(changes.stdout)
    assert {t["direction"] for t in doc["targets"]} == {"better"} and not doc["worse"]
    marked = [(f["key"]["rule_id"], f["waived"], f["waived_before"])
              for t in doc["targets"] for f in t["changed"]]  # fmt: skip
    assert marked == [("PS618", REASON, None)] * len(Target)
    worse = run("diff", str(waived), str(plain), "--fail-on-worse", home=home)
    assert worse.returncode == 10 and f"[no longer waived: {REASON}]" in worse.stdout
    both = run("diff", str(waived), str(plain), "--waivers", str(waivers), "--fail-on-worse",
               home=home)  # fmt: skip
    assert both.returncode == 0 and "no change in portability" in both.stdout, both.stderr
    scanned = run("diff", str(plain), f"oci:{BUSYBOX}", "--waivers", str(waivers), home=home)
    assert scanned.returncode == 0 and "no change in portability" in scanned.stdout
    refused = run("diff", str(plain), str(plain), "--waivers", str(tmp_path / "none.toml"),
                  home=home)  # fmt: skip
    assert_one_line_error(refused, 2, "none.toml")


def test_waivers_from_the_config_file_and_in_json(tmp_path: Path, home: Path) -> None:
    waivers = waiver_file(
        tmp_path,
        json.dumps({"waivers": [{"rule": "PS618", "target": "wasix", "reason": "ok on wasix"}]}),
        "waivers.json",
    )
    (home / "portscan").mkdir()
    (home / "portscan" / "portscan.toml").write_text(f'waivers = "{waivers}"\n')
    doc = scan(home=home)
    assert doc["targets"]["wasix"]["verdict"] == "rework"
    assert doc["targets"]["wasip1"]["verdict"] == "blocked"  # the waiver names wasix only
    waived = [f for f in doc["components"][0]["findings"] if f.get("waived")]
    assert [(f["rule_id"], f["target"]) for f in waived] == [("PS618", "wasix")]


def test_an_unused_waiver_is_a_warning(tmp_path: Path, home: Path) -> None:
    waivers = waiver_file(
        tmp_path, '[[waiver]]\nrule = "PS618"\npath = "/usr/bin/*"\nreason = "elsewhere"\n'
    )
    doc = scan("--waivers", str(waivers), home=home)
    assert "waiver 1 (PS618 /usr/bin/*) matched no finding" in doc["warnings"]
    assert {s["verdict"] for s in doc["targets"].values()} == {"blocked"}


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (
            '[[waiver]]\nrule = "PS618"\nreason = "r"\nexpires = 2020-01-31\n',
            ["waiver 1 (PS618 *)", "expired on 2020-01-31"],
        ),
        ('[[waiver]]\nrule = "PS999"\nreason = "r"\n', ["waiver 1", "no rule 'PS999'"]),
        ('[[waiver]]\nrule = "PS618"\n', ["waiver 1", "reason is required"]),
        ('[[waiver]]\nrule = "PS618"\nreason = "r"\nwhy = 1\n', ["unknown key 'why'"]),
        ('[[waiver]]\nrule = "PS618"\nreason = "r"\ntarget = "wasm"\n', ["target 'wasm'"]),
        ('[[waiver]]\nrule = "PS618"\nreason = "r"\nexpires = "soon"\n', ["expires", "soon"]),
        ("[[waiver]\n", ["not valid TOML"]),
    ],
)
def test_bad_or_expired_waivers_exit_2(
    tmp_path: Path, home: Path, body: str, words: list[str]
) -> None:
    waivers = waiver_file(tmp_path, body)
    result = run("image", f"oci:{BUSYBOX}", "--waivers", str(waivers), home=home)
    assert_one_line_error(result, 2, str(waivers), *words)


def test_expiry_is_inclusive(tmp_path: Path) -> None:
    waivers = waiver_file(
        tmp_path, '[[waiver]]\nrule = "PS618"\nreason = "r"\nexpires = 2027-03-01\n'
    )
    (waiver,) = load_waivers(waivers, today=dt.date(2027, 3, 1))
    assert waiver.expires == "2027-03-01" and waiver.rule_id == "PS618"
    with pytest.raises(UsageError, match="expired on 2027-03-01"):
        load_waivers(waivers, today=dt.date(2027, 3, 2))


def test_exclude_drops_components(home: Path) -> None:
    doc = scan("--exclude", "/bin/busy*", home=home)
    assert doc["components"] == []
    assert "--exclude /bin/busy*: not judged: /bin/busybox" in doc["warnings"]
    assert {s["verdict"] for s in doc["targets"].values()} == {"n/a"}
    kept = scan("--exclude", "/usr/*", home=home)
    assert [c["path"] for c in kept["components"]] == ["/bin/busybox"]
    assert "--exclude /usr/*: matched no component" in kept["warnings"]
    env_doc = json.loads(
        run("image", f"oci:{BUSYBOX}", "-f", "json", home=home,
            env={"PORTSCAN_EXCLUDE": "/bin/busybox /opt/*"}).stdout
    )  # fmt: skip
    assert env_doc["components"] == []


REDIS = Path("/tmp/portscan-corpus/oci/redis-latest")
DEBIAN = Path("/tmp/portscan-corpus/oci/debian-bookworm")


@pytest.mark.skipif(not (REDIS / "index.json").is_file(), reason="corpus redis image missing")
def test_base_judges_what_the_image_adds(home: Path) -> None:
    """redis:latest is debian:bookworm plus two layers. Its entrypoint reaches libraries
    of both; with --base the image's verdict counts hold only the reached components of
    the two added layers, and the base's components are summarised apart."""
    whole = json.loads(run("image", f"oci:{REDIS}", "-f", "json", home=home).stdout)
    result = run("image", f"oci:{REDIS}", "--base", f"oci:{DEBIAN}", "-f", "json", home=home)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).validate(doc)
    base = doc["base"]
    assert base["reference"].startswith(f"oci:{DEBIAN}") and base["layers"] == 1
    judged = [c for c in doc["components"] if c["kind"] != "platform"]
    added = [c for c in judged if c["layer"] >= 1 and c["reachable"]]
    reached_base = [c for c in judged if c["layer"] == 0 and c["reachable"]]
    assert added and reached_base  # the entrypoint reaches into both
    assert base["components"] == len([c for c in doc["components"] if c["layer"] == 0])
    for target, summary in doc["targets"].items():
        assert sum(summary["counts"].values()) == len(added), target
        before = sum(whole["targets"][target]["counts"].values())
        assert before == len(added) + len(reached_base), target
        assert set(base["targets"][target]) >= {"verdict", "score", "counts", "blockers"}
    assert "--base oci:" in doc["warnings"][-1] and "layers 0-0" in doc["warnings"][-1]
    assert "base" not in whole
    table = run("image", f"oci:{REDIS}", "--base", f"oci:{DEBIAN}", home=home).stdout
    assert "components judged apart (not in the verdicts above): wasip1 " in table

    # the image does not start with busybox's layer: judged as without --base
    other = run("image", f"oci:{REDIS}", "--base", f"oci:{BUSYBOX}", "-f", "json", home=home)
    doc = json.loads(other.stdout)
    assert doc["base"]["layers"] == 0 and doc["targets"] == whole["targets"]
    assert "does not start with its layers" in doc["warnings"][-1]


def test_a_missing_base_is_the_usual_exit_code(tmp_path: Path, home: Path) -> None:
    missing = tmp_path / "no-such-layout"
    result = run("image", f"oci:{BUSYBOX}", "--base", f"oci:{missing}", home=home)
    assert_one_line_error(result, 3, str(missing))


CORPUS_REGISTRY = "127.0.0.1:5000"


def _corpus_registry_up() -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", 5000), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.mark.skipif(
    not _corpus_registry_up(), reason="no corpus registry (tools/corpus/registry.sh start)"
)
def test_a_registry_audit_honours_waivers_and_base(tmp_path: Path, home: Path) -> None:
    """`portscan registry --waivers --base`: each image is judged as `portscan image`
    judges it with the same options; the fleet outputs show the waived findings with
    their reason, and leave them out of the verdicts and the recurring blockers."""
    busybox = f"{CORPUS_REGISTRY}/corpus/busybox:static"
    redis = f"{CORPUS_REGISTRY}/corpus/redis:latest"
    debian = f"{CORPUS_REGISTRY}/corpus/debian:bookworm"
    listed = tmp_path / "images.txt"
    listed.write_text(f"{busybox}\n{redis}\n")
    waivers = waiver_file(tmp_path, KERNEL_ADMIN)
    audit = ("registry", "--images-from", str(listed), "-q", "--jobs", "2")
    judging = ("--waivers", str(waivers), "--base", debian)
    store = ("--store", str(tmp_path / "store.db"))
    html_page = tmp_path / "fleet.html"
    done = run(*audit, *store, *judging, "-f", "json", "--html", str(html_page), home=home)
    assert done.returncode == 0, done.stderr
    fleet = json.loads(done.stdout)
    images = {image["names"][0]: image for image in fleet["images"]}
    for name in (busybox, redis):  # the very verdicts of `portscan image` with the options
        alone = run("image", name, "-q", "-f", "json", *judging, home=home)
        assert alone.returncode == 0, alone.stderr
        targets = json.loads(alone.stdout)["targets"]
        assert images[name]["verdicts"] == {t: s["verdict"] for t, s in targets.items()}
        assert images[name]["scores"] == {t: s["score"] for t, s in targets.items()}
    assert set(images[busybox]["verdicts"].values()) == {"rework"}  # blocked unwaived
    assert images[busybox]["waived"] == [
        {"rule_id": "PS618", "path": "/bin/busybox", "reason": REASON,
         "targets": [t.value for t in Target]}
    ]  # fmt: skip
    assert [(w["rule_id"], w["count"], w["reason"]) for w in fleet["waived"]] == [
        ("PS618", 1, REASON)
    ]
    assert not [b for b in fleet["blockers"] if b["rule_id"] == "PS618"]
    assert images[redis]["base"]["layers"] == 1 and images[redis]["base"]["components"] > 0
    assert images[busybox]["base"]["layers"] == 0  # it does not start with debian's layer
    page = html_page.read_text()
    assert 'id="waived-section"' in page and str(markupsafe.escape(REASON)) in page

    redis_saved = tmp_path / "redis.json"
    done = run("image", redis, "-q", "--base", debian, "-o", f"json={redis_saved}", home=home)
    assert done.returncode == 0, done.stderr  # with --base, and waivers matching both parts
    ipc = waiver_file(tmp_path, '[[waiver]]\nrule = "PS304"\nreason = "no SysV IPC"\n', "ipc.toml")
    scanned = run("image", redis, "-q", "-f", "json", "--base", debian, "--waivers", str(ipc),
                  home=home)  # fmt: skip
    rejudged = run("report", str(redis_saved), "-f", "json", "--waivers", str(ipc), home=home)
    doc = json.loads(rejudged.stdout)
    assert _judged(doc) == _judged(json.loads(scanned.stdout))
    assert {c["layer"] for c in doc["components"] for f in c["findings"] if f.get("waived")} == {
        0, 1}  # fmt: skip

    table = run(*audit, *store, *judging, home=home)  # reused from the store
    assert table.returncode == 0, table.stderr
    assert f"    1  PS618   /bin/busybox on wasip1, wasip2, wasip3, wasix: {REASON}" in table.stdout
    assert "its layers judged apart in 1 of 2 images" in table.stdout
    plain = json.loads(run(*audit, *store, "-f", "json", home=home).stdout)  # rescanned
    unwaived = {image["names"][0]: image for image in plain["images"]}[busybox]
    assert set(unwaived["verdicts"].values()) == {"blocked"} and unwaived["waived"] == []
    assert plain["waived"] == []

    expired = waiver_file(tmp_path, '[[waiver]]\nrule = "PS618"\nreason = "r"\n'
                          "expires = 2020-01-31\n", "old.toml")  # fmt: skip
    refused = run(*audit, *store, "--waivers", str(expired), home=home)
    assert_one_line_error(refused, 2, str(expired), "expired on 2020-01-31")
