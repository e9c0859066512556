"""The registry source against real registries (Debian's docker-registry) on loopback."""

from __future__ import annotations

import base64
import email.utils
import json
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from portscan.errors import (
    AuthError,
    CorruptImageError,
    ImageNotFoundError,
    PlatformNotFoundError,
    RegistryUnreachableError,
)
from portscan.inspect import keep
from portscan.layers import merge_layers, read_layer
from portscan.model import ImageRef, LayerDescriptor, LayerResult, Platform, SourceKind
from portscan.sources import SourceOptions, registry
from portscan.sources.auth import load_credentials, parse_challenges
from portscan.sources.base import ImageSource
from portscan.sources.manifests import DOCKER_MANIFEST_LIST
from portscan.sources.oci_layout import open_oci_layout_image
from portscan.sources.refs import is_loopback, parse_reference
from portscan.sources.registry import (
    RegistryClient,
    candidate_schemes,
    open_registry_image,
    retry_after,
)
from tests import imagebuild as ib
from tests.registry_server import (
    PASSWORD,
    REFRESH_TOKEN,
    USER,
    Fault,
    Registry,
    ScriptedRegistry,
    free_port,
    index_blob,
    registry_available,
    scripted_registry,
    start_registry,
)

pytestmark = [
    pytest.mark.registry,
    pytest.mark.skipif(not registry_available(), reason="needs /usr/bin/docker-registry"),
]

ANON = SourceOptions(docker_config=Path("/nonexistent/config.json"))
ALICE = SourceOptions(username=USER, password=PASSWORD, docker_config=ANON.docker_config)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def plain_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with start_registry(tmp_path_factory.mktemp("registry-plain")) as server:
        yield server


@pytest.fixture(scope="session")
def basic_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with start_registry(tmp_path_factory.mktemp("registry-basic"), auth="htpasswd") as server:
        yield server


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with start_registry(tmp_path_factory.mktemp("registry-token"), auth="token") as server:
        yield server


@pytest.fixture(scope="session")
def pushed_fixture(plain_registry: Registry, fixture_image: ib.Image) -> str:
    """The conftest fixture image in the plain registry; returns its reference."""
    plain_registry.push("fixture/app", "v1", fixture_image)
    return f"{plain_registry.host}/fixture/app:v1"


def small_image(text: str, architecture: str = "amd64", **kwargs: object) -> ib.Image:
    """A two-layer image whose blobs are unique to `text`."""
    layers = [
        [ib.directory("srv"), ib.file("srv/name", text)],
        [ib.file(f"srv/{architecture}.txt", f"{text} on {architecture}\n", 0o600)],
    ]
    return ib.Image(layers, config={"Cmd": [text]}, architecture=architecture, **kwargs)  # type: ignore[arg-type]


def reader(blob, descriptor: LayerDescriptor, progress) -> LayerResult:  # type: ignore[no-untyped-def]
    return read_layer(blob, descriptor, keep, progress=progress)


def tree_rows(source: ImageSource) -> list[tuple[object, ...]]:
    with source:
        _, results = source.read_layers(reader)
    tree = merge_layers(results)
    return [(e.path, e.kind, e.mode, e.size, e.link_target, e.layer) for e in tree.entries()]


def pull(reference: str, options: SourceOptions = ANON) -> registry.RegistryImage:
    return open_registry_image(parse_reference(reference), options)


# --------------------------------------------------------------------------- pulling


def test_registry_layout_and_archive_give_the_same_tree(
    pushed_fixture: str, oci_layout: Path, docker_archive: Path, fixture_image: ib.Image
) -> None:
    from_registry = tree_rows(pull(pushed_fixture))
    layout_ref = ImageRef(SourceKind.OCI, f"oci:{oci_layout}", path=str(oci_layout))
    from_layout = tree_rows(open_oci_layout_image(layout_ref, ANON))
    assert from_registry == from_layout
    paths = {row[0]: row for row in from_registry}
    assert "/tmp/delete-me" not in paths and "/etc/app/old.conf" not in paths
    assert paths["/usr/bin/hello"][5] == 2 and paths["/usr/local/bin/run.sh"][5] == 1
    assert paths["/bin"][4] == "usr/bin"
    try:
        from portscan.sources.archive import open_archive_image
    except ImportError:
        return  # the docker-archive source is not written yet
    archive_ref = parse_reference(f"docker-archive:{docker_archive}")
    assert tree_rows(open_archive_image(archive_ref, ANON)) == from_registry


def test_meta_has_manifest_digest_config_and_diff_ids(
    pushed_fixture: str, fixture_image: ib.Image
) -> None:
    with pull(pushed_fixture) as source:
        meta = source.meta
    assert meta.source is SourceKind.REGISTRY
    assert meta.digest == fixture_image.manifest_blob.digest
    assert meta.platform == Platform("linux", "amd64")
    assert meta.config.entrypoint == ["/usr/local/bin/run.sh"]
    assert meta.config.history[0].created_by == "ADD base"
    blobs, tars = fixture_image.layer_blobs, fixture_image.layer_tars
    assert [layer.digest for layer in meta.layers] == [b.digest for b in blobs]
    assert [layer.diff_id for layer in meta.layers] == [ib.sha256(t) for t in tars]
    assert [layer.size for layer in meta.layers] == [len(b.data) for b in blobs]


def test_pull_by_digest(pushed_fixture: str, fixture_image: ib.Image) -> None:
    name = pushed_fixture.rsplit(":", 1)[0]
    with pull(f"{name}@{fixture_image.manifest_blob.digest}") as source:
        assert source.meta.digest == fixture_image.manifest_blob.digest
    missing = "sha256:" + "0" * 64
    with pytest.raises(ImageNotFoundError, match=f"manifest {missing} not found"):
        pull(f"{name}@{missing}")


def test_docker_media_types_and_zstd_layers(plain_registry: Registry) -> None:
    docker = small_image("docker-types", docker_media_types=True)
    zstd = small_image("zstd-layers", compression="zstd")
    plain_registry.push("media/docker", "v1", docker)
    plain_registry.push("media/zstd", "v1", zstd)
    for repo, image in (("media/docker", docker), ("media/zstd", zstd)):
        rows = tree_rows(pull(f"{plain_registry.host}/{repo}:v1"))
        assert ("/srv/amd64.txt", 0o600) in {(r[0], r[2]) for r in rows}
        with pull(f"{plain_registry.host}/{repo}:v1") as source:
            assert source.meta.layers[0].media_type == image.layer_blobs[0].media_type


@pytest.mark.parametrize("index_type", [ib.OCI_INDEX, DOCKER_MANIFEST_LIST])
def test_multi_arch_index_platform_choice(plain_registry: Registry, index_type: str) -> None:
    docker = index_type == DOCKER_MANIFEST_LIST
    amd64 = small_image(f"multi-{docker}", docker_media_types=docker)
    arm64 = small_image(f"multi-{docker}", "arm64", variant="v8", docker_media_types=docker)
    repo = f"multi/{'docker' if docker else 'oci'}"
    for image in (amd64, arm64):
        plain_registry.push(repo, image.manifest_blob.digest, image)
    index = index_blob([amd64, arm64], index_type)
    plain_registry.push_manifest(repo, "v1", index)
    ref = f"{plain_registry.host}/{repo}:v1"

    with pull(ref) as source:
        assert source.meta.digest == amd64.manifest_blob.digest
        assert source.meta.platform == Platform("linux", "amd64")
    arm = SourceOptions(platform=Platform.parse("linux/arm64"), docker_config=ANON.docker_config)
    with pull(ref, arm) as source:
        assert source.meta.digest == arm64.manifest_blob.digest
        assert source.meta.platform == Platform("linux", "arm64", "v8")
    assert "/srv/arm64.txt" in {row[0] for row in tree_rows(pull(ref, arm))}
    with pull(f"{plain_registry.host}/{repo}@{index.digest}", arm) as source:
        assert source.meta.digest == arm64.manifest_blob.digest

    s390x = SourceOptions(platform=Platform.parse("linux/s390x"), docker_config=ANON.docker_config)
    with pytest.raises(PlatformNotFoundError) as caught:
        pull(ref, s390x)
    assert "linux/s390x" in str(caught.value)
    assert "linux/amd64, linux/arm64/v8" in str(caught.value)


# --------------------------------------------------------------------------- integrity


def test_corrupted_layer_blob_is_caught_by_read_layer(plain_registry: Registry) -> None:
    image = small_image("corrupt-me-please", compression="none")
    plain_registry.push("integrity/layer", "v1", image)
    stored = plain_registry.blob_path(image.layer_blobs[1].digest)
    data = bytearray(stored.read_bytes())
    offset = data.index(b"corrupt-me-please on amd64")
    data[offset] ^= 0x20  # same length, still a valid tar: only the digest can tell
    stored.write_bytes(bytes(data))
    with pull(f"{plain_registry.host}/integrity/layer:v1") as source:
        with source.open_blob(source.meta.layers[0]) as blob:
            first = read_layer(blob, source.meta.layers[0], keep)
        assert first.entries
        with (
            source.open_blob(source.meta.layers[1]) as blob,
            pytest.raises(CorruptImageError, match="does not match its digest"),
        ):
            read_layer(blob, source.meta.layers[1], keep)


def test_corrupted_manifest_is_refused(plain_registry: Registry) -> None:
    image = small_image("manifest-corruption")
    plain_registry.push("integrity/manifest", "v1", image)
    stored = plain_registry.blob_path(image.manifest_blob.digest)
    stored.write_bytes(stored.read_bytes().replace(b", ", b",\t", 1))
    with pytest.raises(CorruptImageError, match="does not match its digest"):
        pull(f"{plain_registry.host}/integrity/manifest:v1")


# --------------------------------------------------------------------------- errors


def test_unknown_tag_lists_the_tags(pushed_fixture: str) -> None:
    name = pushed_fixture.rsplit(":", 1)[0]
    with pytest.raises(ImageNotFoundError) as caught:
        pull(f"{name}:nope")
    assert str(caught.value).startswith("tag nope not found in ")
    assert "available tags: v1" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_unknown_repository(plain_registry: Registry) -> None:
    with pytest.raises(ImageNotFoundError, match=r"repository .*/no/such-repo not found"):
        pull(f"{plain_registry.host}/no/such-repo:v1")


def test_unreachable_port_and_unknown_host() -> None:
    with pytest.raises(RegistryUnreachableError, match="connection refused"):
        pull(f"127.0.0.1:{free_port()}/app:v1")
    with pytest.raises(RegistryUnreachableError, match="cannot resolve"):
        pull("registry.invalid/app:v1")


def test_tls_to_a_plain_http_registry_suggests_insecure(plain_registry: Registry) -> None:
    """What a non-loopback host gets: HTTPS only, certificates checked."""
    client = RegistryClient(plain_registry.host, "fixture/app", None, [("https", True)])
    with pytest.raises(RegistryUnreachableError, match="--insecure"):
        client.connect()


def test_transport_choice() -> None:
    assert candidate_schemes("ghcr.io", insecure=False) == [("https", True)]
    assert candidate_schemes("ghcr.io", insecure=True) == [("https", False), ("http", False)]
    for host in ("localhost:5000", "127.0.0.1", "127.1.2.3:80", "[::1]:5000", "::1"):
        assert is_loopback(host), host
        assert candidate_schemes(host, insecure=False)[-1] == ("http", False)
    for host in ("example.com", "10.0.0.1:5000", "localhost.example.com"):
        assert not is_loopback(host), host


# --------------------------------------------------------------------------- basic auth


def _write_config(path: Path, doc: dict[str, object]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture(scope="session")
def basic_ref(basic_registry: Registry) -> str:
    basic_registry.push("private/app", "v1", small_image("basic-auth"))
    return f"{basic_registry.host}/private/app:v1"


def test_basic_auth_with_options(basic_ref: str) -> None:
    with pull(basic_ref, ALICE) as source:
        assert source.meta.config.cmd == ["basic-auth"]
    assert "/srv/name" in {row[0] for row in tree_rows(pull(basic_ref, ALICE))}


def test_basic_auth_refusals(basic_ref: str) -> None:
    with pytest.raises(AuthError, match="denied anonymous access") as caught:
        pull(basic_ref)
    assert "docker login" in str(caught.value) and "--username" in str(caught.value)
    wrong = SourceOptions(username=USER, password="nope", docker_config=ANON.docker_config)
    with pytest.raises(AuthError, match="credentials from --username"):
        pull(basic_ref, wrong)


def test_docker_config_auths(
    basic_registry: Registry, basic_ref: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = basic_registry.host
    encoded = _write_config(
        tmp_path / "a" / "config.json", {"auths": {host: {"auth": _b64(f"{USER}:{PASSWORD}")}}}
    )
    with pull(basic_ref, SourceOptions(docker_config=encoded)) as source:
        assert source.meta.config.cmd == ["basic-auth"]
    # a URL-style key with fields, found through $DOCKER_CONFIG
    _write_config(
        tmp_path / "b" / "config.json",
        {"auths": {f"http://{host}/v1/": {"username": USER, "password": PASSWORD}}},
    )
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "b"))
    with pull(basic_ref, SourceOptions()) as source:
        assert source.meta.config.cmd == ["basic-auth"]
    # --username and --password win over a stale config entry
    stale = _write_config(
        tmp_path / "c" / "config.json", {"auths": {host: {"auth": _b64(f"{USER}:stale")}}}
    )
    with pytest.raises(AuthError, match=str(stale)):
        pull(basic_ref, SourceOptions(docker_config=stale))
    fixed = SourceOptions(username=USER, password=PASSWORD, docker_config=stale)
    with pull(basic_ref, fixed) as source:
        assert source.meta.digest


def _install_helper(bin_dir: Path, name: str, script: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir.mkdir(parents=True, exist_ok=True)
    helper = bin_dir / f"docker-credential-{name}"
    helper.write_text("#!/bin/sh\n" + script)
    helper.chmod(helper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return helper


def test_credential_helpers(
    basic_registry: Registry, basic_ref: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = basic_registry.host
    asked = tmp_path / "asked"
    _install_helper(
        tmp_path / "bin",
        "test",
        f'[ "$1" = get ] || exit 2\ncat > {asked}\n'
        f'printf \'{{"Username":"{USER}","Secret":"{PASSWORD}"}}\'\n',
        monkeypatch,
    )
    _install_helper(
        tmp_path / "bin",
        "empty",
        "echo 'credentials not found in native keychain'; exit 1\n",
        monkeypatch,
    )
    helpers = _write_config(tmp_path / "h" / "config.json", {"credHelpers": {host: "test"}})
    with pull(basic_ref, SourceOptions(docker_config=helpers)) as source:
        assert source.meta.config.cmd == ["basic-auth"]
    assert asked.read_text() == host  # the helper was asked about this registry

    store = _write_config(tmp_path / "s" / "config.json", {"credsStore": "test"})
    with pull(basic_ref, SourceOptions(docker_config=store)) as source:
        assert source.meta.digest
    # a store that knows nothing falls back to auths; with nothing there, access is denied
    empty = _write_config(tmp_path / "e" / "config.json", {"credsStore": "empty", "auths": {}})
    with pytest.raises(AuthError, match="denied anonymous access"):
        pull(basic_ref, SourceOptions(docker_config=empty))
    missing = _write_config(tmp_path / "m" / "config.json", {"credHelpers": {host: "absent"}})
    with pytest.raises(AuthError, match="docker-credential-absent is not installed"):
        pull(basic_ref, SourceOptions(docker_config=missing))


# --------------------------------------------------------------------------- token auth


@pytest.fixture(scope="session")
def token_refs(token_registry: Registry) -> tuple[str, str]:
    token_registry.push("public/app", "v1", small_image("token-public"))
    token_registry.push("team/app", "v1", small_image("token-private"))
    host = token_registry.host
    return f"{host}/public/app:v1", f"{host}/team/app:v1"


def test_token_auth_anonymous_pull_caches_the_token(
    token_registry: Registry, token_refs: tuple[str, str]
) -> None:
    assert token_registry.token_server is not None
    requests = token_registry.token_server.requests
    requests.clear()
    rows = tree_rows(pull(token_refs[0]))  # manifest, config and two layers: one token
    assert "/srv/name" in {row[0] for row in rows}
    assert requests == {"repository:public/app:pull": 1}


def test_token_auth_private_repository(
    token_registry: Registry, token_refs: tuple[str, str], tmp_path: Path
) -> None:
    private = token_refs[1]
    with pytest.raises(AuthError, match="denied anonymous access to team/app"):
        pull(private)
    assert "/srv/name" in {row[0] for row in tree_rows(pull(private, ALICE))}
    wrong = SourceOptions(username=USER, password="nope", docker_config=ANON.docker_config)
    with pytest.raises(AuthError, match=r"token service .* refused the credentials"):
        pull(private, wrong)
    # `docker login` against an OAuth2 token service stores an identity (refresh) token
    config = _write_config(
        tmp_path / "config.json",
        {"auths": {token_registry.host: {"auth": "", "identitytoken": REFRESH_TOKEN}}},
    )
    with pull(private, SourceOptions(docker_config=config)) as source:
        assert source.meta.config.cmd == ["token-private"]


# --------------------------------------------------------------------------- retries


@pytest.fixture
def scripted() -> Iterator[ScriptedRegistry]:
    with scripted_registry("flaky/app", "v1", small_image("flaky", compression="none")) as server:
        yield server


def _manifest_requests(server: ScriptedRegistry) -> list[float]:
    return [entry.at for entry in server.requests_to("/manifests/v1")]


def test_retry_after_seconds_is_honoured(scripted: ScriptedRegistry) -> None:
    scripted.faults["/manifests/v1"] = [Fault("status", 429, {"Retry-After": "1"})]
    with pull(f"{scripted.host}/flaky/app:v1") as source:
        assert source.meta.digest == scripted.image.manifest_blob.digest
    first, second = _manifest_requests(scripted)
    assert second - first >= 0.95  # backoff alone would wait at most 0.5 s


def test_retry_after_http_date_is_honoured(scripted: ScriptedRegistry) -> None:
    when = email.utils.formatdate(time.time() + 2, usegmt=True)
    scripted.faults["/manifests/v1"] = [Fault("status", 503, {"Retry-After": when})]
    with pull(f"{scripted.host}/flaky/app:v1"):
        pass
    first, second = _manifest_requests(scripted)
    assert second - first >= 0.9  # the date has one-second resolution


def test_backoff_on_5xx_resets_and_timeouts(
    scripted: ScriptedRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "BACKOFF_BASE", 0.01)
    scripted.faults["/manifests/v1"] = [
        Fault("status", 502),
        Fault("drop"),
        Fault("stall", seconds=2),
    ]
    options = SourceOptions(timeout=0.5, docker_config=ANON.docker_config)
    with pull(f"{scripted.host}/flaky/app:v1", options) as source:
        assert source.meta.digest == scripted.image.manifest_blob.digest
    assert len(_manifest_requests(scripted)) == 4

    scripted.faults["/manifests/v1"] = [Fault("status", 503)] * registry.ATTEMPTS
    with pytest.raises(RegistryUnreachableError, match=r"HTTP 503 .* after 4 attempts"):
        pull(f"{scripted.host}/flaky/app:v1")

    scripted.faults["/manifests/v1"] = [Fault("stall", seconds=1)] * registry.ATTEMPTS
    quick = SourceOptions(timeout=0.2, docker_config=ANON.docker_config)
    with pytest.raises(RegistryUnreachableError, match=r"did not answer in time \(4 attempts\)"):
        pull(f"{scripted.host}/flaky/app:v1", quick)


@pytest.mark.parametrize("honour_range", [True, False])
def test_blob_stream_resumes_after_a_drop(scripted: ScriptedRegistry, honour_range: bool) -> None:
    scripted.honour_range = honour_range
    layer = scripted.image.layer_blobs[0]
    scripted.faults[f"/blobs/{layer.digest}"] = [Fault("drop", after=700)]
    source = pull(f"{scripted.host}/flaky/app:v1")
    with source, source.open_blob(source.meta.layers[0]) as blob:
        result = read_layer(blob, source.meta.layers[0], keep)
    assert "/srv/name" in {entry.path for entry in result.entries}
    assert [r.range for r in scripted.requests_to(f"/blobs/{layer.digest}")] == [None, "bytes=700-"]


def test_blob_stream_gives_up_when_drops_persist(
    scripted: ScriptedRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "BACKOFF_BASE", 0.01)
    layer = scripted.image.layer_blobs[0]
    scripted.faults[f"/blobs/{layer.digest}"] = [Fault("drop", after=100)] * 10
    source = pull(f"{scripted.host}/flaky/app:v1")
    with (
        source,
        source.open_blob(source.meta.layers[0]) as blob,
        pytest.raises(RegistryUnreachableError, match="kept dropping"),
    ):
        read_layer(blob, source.meta.layers[0], keep)


def test_blobs_are_read_in_larger_pieces_than_httpcore_s(plain_registry: Registry) -> None:
    """httpcore's own reads are 64 KiB; portscan's are up to 256 KiB (_READ_SIZE), each
    one a pass through h11 and httpx in Python, in the thread that feeds the inflater."""
    image = ib.Image([[ib.file("srv/noise", os.urandom(6 << 20))]], compression="none")
    plain_registry.push("reads/big", "v1", image)
    with pull(f"{plain_registry.host}/reads/big:v1") as source:
        digest = source.meta.layers[0].digest
        with source._client.open_blob_response(digest) as response:
            sizes = [len(chunk) for chunk in response.iter_bytes()]
    assert sum(sizes) > 6 << 20
    assert max(sizes) > 64 << 10, sizes
    assert max(sizes) <= registry._READ_SIZE


def test_retry_after_parsing() -> None:
    import httpx

    def answer(value: str) -> float | None:
        return retry_after(httpx.Response(429, headers={"Retry-After": value}))

    assert answer("3") == 3.0
    assert answer("86400") == registry.RETRY_AFTER_CAP
    assert answer(email.utils.formatdate(time.time() - 60, usegmt=True)) == 0.0
    assert answer("soon") is None


# --------------------------------------------------------------------------- auth parts


def test_parse_challenges() -> None:
    hub = (
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:samalba/my-app:pull,push"'
    )
    (bearer,) = parse_challenges([hub])
    assert bearer.scheme == "bearer"
    assert bearer.params == {
        "realm": "https://auth.docker.io/token",
        "service": "registry.docker.io",
        "scope": "repository:samalba/my-app:pull,push",
    }
    both = parse_challenges(['Basic realm="a \\"b\\"", Bearer realm=https://x/t,error=invalid'])
    assert [(c.scheme, c.params) for c in both] == [
        ("basic", {"realm": 'a "b"'}),
        ("bearer", {"realm": "https://x/t", "error": "invalid"}),
    ]


def test_docker_hub_config_keys(tmp_path: Path) -> None:
    config = _write_config(
        tmp_path / "config.json",
        {"auths": {"https://index.docker.io/v1/": {"auth": _b64("hubuser:hubpass")}}},
    )
    found = load_credentials("docker.io", docker_config=config)
    assert found is not None and (found.username, found.password) == ("hubuser", "hubpass")
    assert load_credentials("ghcr.io", docker_config=config) is None
    assert load_credentials("docker.io", docker_config=tmp_path) == found  # a directory works
    broken = _write_config(tmp_path / "b" / "config.json", {"auths": {"docker.io": {"auth": "*"}}})
    with pytest.raises(AuthError, match="not base64"):
        load_credentials("docker.io", docker_config=broken)
