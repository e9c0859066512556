"""`portscan image` against a registry that fails the way real ones do (issue 16, item 4).

A real docker-registry holds the conftest fixture image; `tests.faultproxy` sits in front
of it and injects faults. Transient faults (grouped, several per scan, each checked to
have happened) must give the same result as a clean scan; a persistent fault (one per
case) a documented exit code, one line on stderr, and an end well inside a hang guard.
Each case has a proxy of its own, so the cases of a kind run four scans at a time. Every
run is a real `python -m portscan` process with `--timeout 0.5` and
`PORTSCAN_RETRY_BASE=0.01`, so the file stays fast.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from tests import imagebuild as ib
from tests.faultproxy import FaultProxy, Rule, fault_proxy
from tests.registry_server import registry_available, start_registry

pytestmark = [
    pytest.mark.registry,
    pytest.mark.skipif(not registry_available(), reason="needs /usr/bin/docker-registry"),
]

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = "0.5"  # --timeout for every run: stalls are noticed within half a second
HANG_GUARD = 90  # seconds; a run this long is killed as hung, whatever the fault
BOUND = 45.0  # seconds; a hang guard (the bound of docs/security.md is seconds here)
PARALLEL = 4  # persistent-fault scans run at the same time
VOLATILE = ("scanned_at", "duration_seconds")
LAYER = "<layer digest>"  # stands for the largest layer's digest in rules written up front
CONFIG = "<config digest>"  # and this for the config blob's


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    seconds: float

    def result(self, host: str = "", as_host: str = "") -> dict[str, object]:
        """The JSON result without its volatile fields; `host` (a proxy's) written as
        `as_host`, so scans through different proxies compare."""
        text = self.stdout.replace(host, as_host) if host else self.stdout
        document = json.loads(text)
        return {k: v for k, v in document.items() if k not in VOLATILE}

    def error_line(self) -> str:
        lines = self.stderr.strip().splitlines()
        assert len(lines) == 1, self.stderr
        assert lines[0].startswith("portscan: error: "), lines[0]
        assert "Traceback" not in self.stderr and "internal error" not in self.stderr
        return lines[0]


@dataclass
class Setup:
    proxy: FaultProxy
    upstream: str  # the registry's URL
    reference: str
    layer: str  # digest of the largest layer blob
    layer_size: int
    other_layer: str  # digest of another layer blob
    config: str  # digest of the config blob
    env: dict[str, str]
    clean: dict[str, object]


def command(reference: str, *extra: str) -> list[str]:
    scan = [sys.executable, "-m", "portscan", "image", reference, "-q", "--format", "json"]
    return [*scan, "--timeout", TIMEOUT, *extra]


def scan(setup: Setup, *extra: str, env: dict[str, str] | None = None) -> Run:
    started = time.monotonic()
    done = subprocess.run(
        command(setup.reference, *extra),
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        env={**setup.env, **(env or {})},
        cwd=REPO,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


def run_all(setup: Setup, jobs: dict[str, list[str]], work: Path) -> dict[str, Run]:
    """Run every command, `PARALLEL` at a time (they mostly wait), each timed on its own
    and killed after `HANG_GUARD` seconds."""
    waiting = list(jobs)
    running: dict[str, tuple[subprocess.Popen[str], float, list[IO[str]]]] = {}
    runs: dict[str, Run] = {}
    while waiting or running:
        while waiting and len(running) < PARALLEL:
            name = waiting.pop(0)
            out, err = ((work / f"{len(runs)}-{len(running)}.{k}").open("w+") for k in "oe")
            process = subprocess.Popen(
                jobs[name], stdout=out, stderr=err, text=True, env=setup.env, cwd=REPO
            )
            running[name] = (process, time.monotonic(), [out, err])
        time.sleep(0.05)
        for name, (process, started, files) in list(running.items()):
            seconds = time.monotonic() - started
            if process.poll() is None and seconds < HANG_GUARD:
                continue
            if process.poll() is None:
                process.kill()
            process.wait()
            outputs = []
            for stream in files:
                stream.seek(0)
                outputs.append(stream.read())
                stream.close()
            runs[name] = Run(process.returncode, outputs[0], outputs[1], seconds)
            del running[name]
    return runs


def scan_all(setup: Setup, proxies: dict[str, FaultProxy], work: Path) -> dict[str, Run]:
    """One `portscan image` per proxy, through it, all at once (`run_all`)."""
    jobs = {
        name: command(setup.reference.replace(setup.proxy.host, proxy.host))
        for name, proxy in proxies.items()
    }
    return run_all(setup, jobs, work)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, fixture_image: ib.Image) -> Iterator[Setup]:
    work = tmp_path_factory.mktemp("faults")
    with start_registry(work / "registry") as registry:
        registry.push("faults/app", "v1", fixture_image)
        layers = sorted(fixture_image.layer_blobs, key=lambda blob: len(blob.data))
        (work / "docker").mkdir()
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "DOCKER_CONFIG": str(work / "docker"),  # anonymous: no credentials of the host
            "PORTSCAN_RETRY_BASE": "0.01",
            "PORTSCAN_WORKERS": "0",  # no lief worker process: runs that fail early stay cheap
        }
        with fault_proxy(registry.url) as proxy:
            setup = Setup(
                proxy,
                registry.url,
                f"registry:{proxy.host}/faults/app:v1",
                layers[-1].digest,
                len(layers[-1].data),
                layers[0].digest,
                fixture_image.config_blob.digest,
                env,
                {},
            )
            clean = scan(setup)
            assert clean.code == 0, clean.stderr
            setup.clean = clean.result()
            yield setup


@pytest.fixture
def proxy(setup: Setup) -> Iterator[FaultProxy]:
    yield setup.proxy
    setup.proxy.set_rules()
    setup.proxy.require_token = False


def transient_rules(setup: Setup, group: str) -> list[Rule]:
    """Transient faults, grouped so that one scan meets several (each must be hit)."""
    third = setup.layer_size // 3
    return {
        "429 with and without Retry-After, 500, 503": [
            Rule("status", "manifest", status=429, retry_after="1"),
            Rule("status", setup.config, status=429),
            Rule("status", "ping", status=500),
            Rule("status", setup.layer, status=503),
        ],
        "resets mid-blob and mid-manifest, truncated config": [
            Rule("reset", setup.layer, after=third),
            Rule("reset", "manifest", after=40),
            Rule("truncate", setup.config, after=10),
        ],
        "stalls mid-blob and before the manifest body": [
            Rule("stall", setup.layer, after=third, seconds=3),
            Rule("stall", "manifest", after=0, seconds=3),
        ],
        "truncated blobs with and without Content-Length": [
            Rule("truncate", setup.layer, after=third),
            Rule("truncate", setup.other_layer, after=10, length=False),
        ],
        "two resets in a row, wrong Content-Type, a token rejected once": [
            Rule("reset", setup.layer, times=2, after=third),
            Rule("auth_loop", "manifest", times=1),  # first: the first rule that applies wins
            Rule("content_type", "manifest", times=None),
        ],
    }[group]


TRANSIENT = [
    "429 with and without Retry-After, 500, 503",
    "resets mid-blob and mid-manifest, truncated config",
    "stalls mid-blob and before the manifest body",
    "truncated blobs with and without Content-Length",
    "two resets in a row, wrong Content-Type, a token rejected once",
]


@pytest.fixture(scope="module")
def transient(
    setup: Setup, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, tuple[Run, list[Rule], FaultProxy]]]:
    """Every transient group, each behind its own proxy, scanned at the same time."""
    proxies: dict[str, FaultProxy] = {}
    rules: dict[str, list[Rule]] = {}
    try:
        for group in TRANSIENT:
            rules[group] = transient_rules(setup, group)
            proxies[group] = FaultProxy(setup.upstream)
            proxies[group].set_rules(*rules[group])
        runs = scan_all(setup, proxies, tmp_path_factory.mktemp("transient"))
        yield {group: (runs[group], rules[group], proxies[group]) for group in TRANSIENT}
    finally:
        for proxy in proxies.values():
            proxy.stop()


@pytest.mark.parametrize("group", TRANSIENT)
def test_transient_faults_give_the_clean_result(
    setup: Setup, transient: dict[str, tuple[Run, list[Rule], FaultProxy]], group: str
) -> None:
    run, rules, proxy = transient[group]
    assert run.code == 0, run.stderr
    missed = [rule for rule in rules if rule.hits < (rule.times or 1)]
    assert not missed, f"faults that never happened: {missed}"
    assert run.result(proxy.host, setup.proxy.host) == setup.clean
    if rules[0].fault == "reset":  # the resumed download asked for the rest only
        ranges = [seen.range for seen in proxy.requests("blob") if setup.layer in seen.path]
        assert ranges[0] is None
        assert ranges[1] is not None and ranges[1].startswith("bytes=")
        assert 0 < int(ranges[1][6:].rstrip("-")) <= setup.layer_size // 3


def test_redirect_never_forwards_authorization(setup: Setup, proxy: FaultProxy) -> None:
    proxy.require_token = True  # so that portscan holds a token to (not) forward
    proxy.set_rules(Rule("redirect", "blob", times=None))
    run = scan(setup)
    assert run.code == 0, run.stderr
    assert run.result() == setup.clean
    blobs = proxy.requests("blob")
    assert blobs and any(seen.authorization for seen in blobs)  # the proxy did get tokens
    targets = proxy.blob_server.seen
    assert {seen.path for seen in targets} >= {p.path for p in blobs if p.authorization}
    assert [seen.authorization for seen in targets] == [None] * len(targets)


PERSISTENT = {  # name: (rule, exit code, words of the message)
    "429 with Retry-After on the manifest": (
        Rule("status", "manifest", times=None, status=429, retry_after="1"),
        5,
        "HTTP 429",
    ),
    "500 on the layer": (Rule("status", LAYER, times=None, status=500), 5, "HTTP 500"),
    "reset mid-blob": (Rule("reset", LAYER, times=None, after=500), 5, "kept dropping"),
    "stall mid-blob": (
        Rule("stall", LAYER, times=None, after=500, seconds=2),
        5,
        "kept dropping",
    ),
    "stalled manifest": (
        Rule("stall", "manifest", times=None, after=0, seconds=2),
        5,
        "did not answer in time",
    ),
    "blob trickled at 400 bytes/s": (
        Rule("trickle", LAYER, times=None, after=40, seconds=5),
        5,
        "kept dropping",
    ),
    "manifest trickled at 100 bytes/s": (
        Rule("trickle", "manifest", times=None, after=10, seconds=5),
        5,
        "did not answer in time",
    ),
    "blob longer than declared": (
        Rule("pad", LAYER, times=None, after=4096),
        6,
        "the manifest says",
    ),
    "endless blob without Content-Length": (
        Rule("pad", LAYER, times=None, after=1 << 20, length=False),
        6,
        "sends more than",
    ),
    "redirect to another scheme": (
        Rule("redirect_to", LAYER, times=None, location="ftp://127.0.0.1/blob"),
        5,
        "cannot fetch",
    ),
    "truncated blob": (Rule("truncate", LAYER, times=None, after=500), 5, "kept dropping"),
    "redirect loop": (Rule("redirect_loop", LAYER, times=None), 5, "redirected more than"),
    "HTML instead of the manifest": (Rule("html", "manifest", times=None), 6, "not valid JSON"),
    "config longer than declared, without Content-Length": (
        Rule("pad", CONFIG, times=None, after=1 << 20, length=False),
        6,
        "sends more than the",
    ),
    "auth loop": (Rule("auth_loop", "manifest", times=None), 4, "denied anonymous access"),
}


@pytest.fixture(scope="module")
def persistent(
    setup: Setup, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, tuple[Run, Rule, FaultProxy]]]:
    """Every persistent case, each behind its own proxy, scanned at the same time."""
    proxies, rules = {}, {}
    try:
        for name, (template, _, _) in PERSISTENT.items():
            match = template.match.replace(LAYER, setup.layer).replace(CONFIG, setup.config)
            rules[name] = dataclasses.replace(template, match=match)
            proxies[name] = FaultProxy(setup.upstream)
            proxies[name].set_rules(rules[name])
        runs = scan_all(setup, proxies, tmp_path_factory.mktemp("persistent"))
        yield {name: (runs[name], rules[name], proxies[name]) for name in PERSISTENT}
    finally:
        for proxy in proxies.values():
            proxy.stop()


@pytest.mark.parametrize("name", list(PERSISTENT))
def test_persistent_fault_ends_cleanly_and_in_time(
    persistent: dict[str, tuple[Run, Rule, FaultProxy]], name: str
) -> None:
    _, code, words = PERSISTENT[name]
    run, rule, proxy = persistent[name]
    assert run.code == code, run.stderr
    assert words in run.error_line()
    assert run.seconds < BOUND
    if rule.fault in ("html", "pad", "redirect_to"):  # nothing a retry could heal
        assert rule.hits == 1
    elif rule.fault == "auth_loop":  # one fresh token, one more try, then exit 4
        assert rule.hits == 2 and len(proxy.requests("token")) == 1
    else:
        assert rule.hits >= 4  # retried, not given up on at once
    if rule.retry_after:
        assert run.seconds >= 3.0  # three waits of the second Retry-After asked for


def test_malformed_error_and_tag_list_bodies(setup: Setup, proxy: FaultProxy) -> None:
    proxy.set_rules(
        Rule("status", "manifest", times=None, status=404, body=b'{"errors": 5}'),
        Rule("status", "/tags/list", times=None, status=200, body=b'{"tags": {"v1": 1}}'),
    )
    run = scan(setup)
    assert run.code == 3
    assert "tag v1 not found" in run.error_line()
    assert all(rule.hits == 1 for rule in proxy.rules)


def test_registry_audit_honours_the_timeout(
    setup: Setup, proxy: FaultProxy, tmp_path: Path
) -> None:
    # Stalls of 20 s: without --timeout 0.5 reaching the audit's clients, 4 of them would
    # outlast BOUND.
    proxy.set_rules(Rule("stall", setup.layer, times=None, after=500, seconds=20))
    images = tmp_path / "images.txt"
    images.write_text(setup.reference.removeprefix("registry:") + "\n")
    audit = [sys.executable, "-m", "portscan", "registry", "--images-from", str(images)]
    options = ["--jobs", "1", "--store", str(tmp_path / "store.db"), "--format", "jsonl", "-q"]
    started = time.monotonic()
    done = subprocess.run(
        [*audit, *options, "--timeout", TIMEOUT],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        env=setup.env,
        cwd=REPO,
        check=False,
    )
    assert time.monotonic() - started < BOUND
    assert done.returncode == 9, done.stderr  # the audit ends; the image is reported failed
    (line,) = done.stdout.splitlines()
    record = json.loads(line)
    assert record["status"] == "failed" and "kept dropping" in record["error"]


def test_timeout_option_is_checked(setup: Setup) -> None:
    run = scan(setup, "--timeout", "0")
    assert run.code == 2 and "--timeout" in run.stderr
    bad = scan(setup, env={"PORTSCAN_RETRY_BASE": "soon"})
    assert bad.code == 2
    assert "PORTSCAN_RETRY_BASE" in bad.error_line()
    for variable, value in (
        ("PORTSCAN_REQUEST_DEADLINE", "0"),
        ("PORTSCAN_DEADLINE_KIB_PER_S", "1.5"),
    ):
        bad = scan(setup, env={variable: value})
        assert bad.code == 2 and variable in bad.error_line()


def test_a_dripping_blob_ends_at_its_deadline(setup: Setup, proxy: FaultProxy) -> None:
    """256 bytes every 0.05 s (5 KiB/s) never stalls, and is faster than the 1 KiB/s
    stall rule; only the deadline (1 s here, the blob at 1 MiB/s if that is longer)
    ends each request, and after 4 of them the scan."""
    rule = Rule("drip", setup.layer, times=None, after=256, seconds=0.05)
    proxy.set_rules(rule)
    deadline = round(max(1.0, setup.layer_size / (1024 << 10)), 1)
    assert setup.layer_size > 4 * 5 * 1024 * deadline * 2  # the drip cannot finish in time
    env = {"PORTSCAN_REQUEST_DEADLINE": "1", "PORTSCAN_DEADLINE_KIB_PER_S": "1024"}
    run = scan(setup, env=env)
    assert run.code == 5, run.stderr
    line = run.error_line()
    assert setup.layer in line and f"deadline of {deadline:g} s" in line
    assert rule.hits == 4  # aborted and resumed, as any drop is
    ranges = [seen.range for seen in proxy.requests("blob") if setup.layer in seen.path]
    assert ranges[0] is None and all(r and r.startswith("bytes=") for r in ranges[1:])
    assert run.seconds < 4 * deadline + 10


LISTING = {  # name: (rule, words of the message); every one ends in exit 5
    "catalog answered 500 throughout": (
        Rule("status", "/_catalog", times=None, status=500),
        "answered HTTP 500 for its catalog after 4 attempts",
    ),
    "catalog answered 400": (
        Rule("status", "/_catalog", times=None, status=400, body=b'{"errors":[]}'),
        "answered HTTP 400 for its catalog",
    ),
    "catalog as an HTML page": (Rule("html", "/_catalog", times=None), "malformed answer"),
    "catalog of numbers": (
        Rule("status", "/_catalog", times=None, status=200, body=b'{"repositories": [1, 2]}'),
        "malformed answer",
    ),
    "catalog whose Link returns to the first page": (
        Rule("link", "/_catalog", times=None, location="/v2/_catalog?n=100"),
        "paginates its catalog without end: its Link header returns to a page it gave",
    ),
}


def audit_command(host: str, store: Path) -> list[str]:
    options = ["--store", str(store), "--format", "jsonl", "-q", "--timeout", TIMEOUT]
    return [sys.executable, "-m", "portscan", "registry", host, *options]


TAGS_LOOP = "tag list whose Link returns to a page it gave"


@pytest.fixture(scope="module")
def listings(
    setup: Setup, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, tuple[Run, Rule]]]:
    """`portscan registry` through a proxy per listing fault, all at the same time."""
    work = tmp_path_factory.mktemp("listings")
    cases = {name: rule for name, (rule, _) in LISTING.items()}
    cases[TAGS_LOOP] = Rule("link", "/tags/list", times=None, location="/v2/faults/app/tags/list")
    proxies: dict[str, FaultProxy] = {}
    try:
        for name, rule in cases.items():
            proxies[name] = FaultProxy(setup.upstream)
            proxies[name].set_rules(rule)
        jobs = {
            name: audit_command(proxy.host, work / f"store-{index}.db")
            for index, (name, proxy) in enumerate(proxies.items())
        }
        runs = run_all(setup, jobs, work)
        yield {name: (runs[name], cases[name]) for name in cases}
    finally:
        for proxy in proxies.values():
            proxy.stop()


@pytest.mark.parametrize("name", list(LISTING))
def test_a_catalog_the_registry_cannot_serve_is_exit_5(
    listings: dict[str, tuple[Run, Rule]], name: str
) -> None:
    run, rule = listings[name]
    assert run.code == 5, run.stderr
    assert LISTING[name][1] in run.error_line()
    assert rule.hits == (4 if rule.status == 500 and rule.fault == "status" else 1)


def test_a_tag_list_the_registry_cannot_serve_fails_that_repository(
    listings: dict[str, tuple[Run, Rule]],
) -> None:
    """A repository whose tags cannot be listed is a failure of the audit (exit 9, the
    repository named with the reason), not of portscan (exit 1)."""
    run, _ = listings[TAGS_LOOP]
    assert run.code == 9, run.stderr
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr
    assert "paginates faults/app without end" in run.stdout + run.stderr
