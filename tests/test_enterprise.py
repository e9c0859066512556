"""Enterprise registries, end to end through `python -m portscan`: a private CA (HTTPS
with a CA made here; --ca-cert, certs.d, client certificates), podman/skopeo auth files,
a forward proxy (HTTPS_PROXY, NO_PROXY), and --offline.

The TLS registry is a real docker-registry on 127.0.0.1 named by this machine's host
name (which must resolve to 127.0.0.1): portscan treats `localhost` and 127.0.0.0/8 as
insecure, as Docker does, so only a name makes it check certificates.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from portscan.sources.auth import load_credentials
from tests import imagebuild as ib
from tests import podman_service as podman
from tests.forwardproxy import ForwardProxy, forward_proxy
from tests.registry_server import (
    PASSWORD,
    USER,
    Registry,
    TLSFiles,
    registry_available,
    start_registry,
)

x509 = pytest.importorskip("cryptography.x509")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
HOST = socket.gethostname()
CORPUS_LAYOUT = Path("/tmp/portscan-corpus/oci/busybox-static")


def _host_is_loopback_name() -> bool:
    try:
        return HOST != "localhost" and socket.gethostbyname(HOST) == "127.0.0.1"
    except OSError:
        return False


pytestmark = [
    pytest.mark.registry,
    pytest.mark.skipif(not registry_available(), reason="needs /usr/bin/docker-registry"),
]
needs_name = pytest.mark.skipif(
    not _host_is_loopback_name(), reason=f"host name {HOST!r} does not resolve to 127.0.0.1"
)


# --------------------------------------------------------------------------- PKI


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    path.with_suffix(".pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    extensions: list[tuple[x509.ExtensionType, bool]],
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer[0].subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical)
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256())


def _ca(directory: Path, name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    cert = _certificate(
        name,
        key,
        None,
        [
            (x509.BasicConstraints(ca=True, path_length=None), True),
            (x509.KeyUsage(False, False, False, False, False, True, True, False, False), True),
            (x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False),
        ],
    )
    _write(directory / name, cert, key)
    return cert, key


def _leaf(
    directory: Path,
    name: str,
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    server: bool,
) -> None:
    key = _key()
    usage = x509.ExtendedKeyUsageOID.SERVER_AUTH if server else x509.ExtendedKeyUsageOID.CLIENT_AUTH
    extensions: list[tuple[x509.ExtensionType, bool]] = [
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (x509.ExtendedKeyUsage([usage]), False),
        (
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca[1].public_key()),
            False,
        ),
    ]
    if server:
        names = [x509.DNSName(HOST), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        extensions.append((x509.SubjectAlternativeName(names), False))
    _write(directory / name, _certificate(name, key, ca, extensions), key)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ca.pem (signs server.pem), client-ca.pem (signs client.pem), other-ca.pem."""
    directory = tmp_path_factory.mktemp("pki")
    ca = _ca(directory, "ca")
    _leaf(directory, "server", ca, server=True)
    client_ca = _ca(directory, "client-ca")
    _leaf(directory, "client", client_ca, server=False)
    _ca(directory, "other-ca")
    return directory


def small_image(text: str) -> ib.Image:
    layers = [[ib.directory("srv"), ib.file("srv/name", text)]]
    return ib.Image(layers, config={"Cmd": [text]})


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory: pytest.TempPathFactory, pki: Path) -> Iterator[Registry]:
    tls = TLSFiles(pki / "server.pem", pki / "server.key", pki / "ca.pem")
    with start_registry(tmp_path_factory.mktemp("registry-tls"), tls=tls, host=HOST) as server:
        server.push("corp/app", "v1", small_image("private-ca"))
        yield server


@pytest.fixture(scope="module")
def mtls_registry(tmp_path_factory: pytest.TempPathFactory, pki: Path) -> Iterator[Registry]:
    tls = TLSFiles(
        pki / "server.pem",
        pki / "server.key",
        pki / "ca.pem",
        client_ca=pki / "client-ca.pem",
        client_cert=pki / "client.pem",
        client_key=pki / "client.key",
    )
    with start_registry(tmp_path_factory.mktemp("registry-mtls"), tls=tls, host=HOST) as server:
        server.push("corp/app", "v1", small_image("mutual-tls"))
        yield server


@pytest.fixture(scope="module")
def basic_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with start_registry(tmp_path_factory.mktemp("registry-auth"), auth="htpasswd") as server:
        server.push("private/app", "v1", small_image("auth-json"))
        yield server


# --------------------------------------------------------------------------- running


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty home: no docker config, no containers auth.json, no certs.d."""
    directory = tmp_path / "home"
    directory.mkdir()
    return directory


def portscan(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m portscan image ARGS -q -f json --timeout 20` (see `run`)."""
    return run(home, "image", *args, "-q", "-f", "json", "--timeout", "20", **env)


def run(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m portscan ARGS` with a clean home, no proxy unless `env` names one,
    and certs.d roots only from `env` (default: none)."""
    base = {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in {"https_proxy", "http_proxy", "all_proxy", "no_proxy"}
        and k not in {"REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "DOCKER_CONFIG"}
    }
    base.update(
        HOME=str(home),
        PYTHONPATH=str(REPO),
        PORTSCAN_CERTS_D=str(home / "no-certs.d"),
        PORTSCAN_RETRY_BASE="0.01",
    )
    base.update(env)
    return subprocess.run(
        [sys.executable, "-m", "portscan", *args],
        capture_output=True,
        text=True,
        env=base,
        timeout=180,
        check=False,
    )


def assert_scanned(done: subprocess.CompletedProcess[str], text: str) -> None:
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["image"]["config"]["cmd"] == [text], result["image"]["config"]


def assert_one_line_error(done: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    assert done.returncode == code, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("portscan: error: "), done.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


# --------------------------------------------------------------------------- private CA


@needs_name
def test_a_private_ca_fails_with_a_hint_then_works_with_ca_cert(
    tls_registry: Registry, pki: Path, home: Path
) -> None:
    ref = f"{tls_registry.host}/corp/app:v1"
    line = assert_one_line_error(portscan(home, ref), 5, "TLS", "--ca-cert", "certs.d")
    assert "CERTIFICATE_VERIFY_FAILED" in line
    wrong = portscan(home, ref, "--ca-cert", str(pki / "other-ca.pem"))
    assert_one_line_error(wrong, 5, "--ca-cert")
    assert_scanned(
        portscan(
            home, ref, "--ca-cert", str(pki / "other-ca.pem"), "--ca-cert", str(pki / "ca.pem")
        ),
        "private-ca",
    )


@needs_name
def test_certs_d_directory_is_trusted(tls_registry: Registry, pki: Path, home: Path) -> None:
    root = home / "certs.d"
    (root / tls_registry.host).mkdir(parents=True)
    (root / tls_registry.host / "ca.crt").write_bytes((pki / "ca.pem").read_bytes())
    ref = f"{tls_registry.host}/corp/app:v1"
    assert_scanned(portscan(home, ref, PORTSCAN_CERTS_D=str(root)), "private-ca")
    # the default roots include $XDG_CONFIG_HOME/containers/certs.d (rootless podman)
    config_home = home / "config"
    (config_home / "containers").mkdir(parents=True)
    root.rename(config_home / "containers" / "certs.d")
    env = {"XDG_CONFIG_HOME": str(config_home)}
    done = subprocess.run(
        [sys.executable, "-c", "from portscan.sources.tls import certs_d_roots as r; print(r())"],
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO), "HOME": str(home), **env},
        check=True,
    )
    assert str(config_home / "containers" / "certs.d") in done.stdout
    assert "/etc/docker/certs.d" in done.stdout and "/etc/containers/certs.d" in done.stdout


@needs_name
def test_client_certificate_from_certs_d(mtls_registry: Registry, pki: Path, home: Path) -> None:
    root = home / "certs.d"
    directory = root / mtls_registry.host
    directory.mkdir(parents=True)
    (directory / "ca.crt").write_bytes((pki / "ca.pem").read_bytes())
    ref = f"{mtls_registry.host}/corp/app:v1"
    refused = portscan(home, ref, PORTSCAN_CERTS_D=str(root))
    assert refused.returncode == 5, refused.stderr
    (directory / "client.cert").write_bytes((pki / "client.pem").read_bytes())
    assert_one_line_error(portscan(home, ref, PORTSCAN_CERTS_D=str(root)), 2, "client.key")
    (directory / "client.key").write_bytes((pki / "client.key").read_bytes())
    assert_scanned(portscan(home, ref, PORTSCAN_CERTS_D=str(root)), "mutual-tls")


@needs_name
def test_registry_audit_trusts_ca_cert_in_its_workers(
    tls_registry: Registry, pki: Path, home: Path
) -> None:
    """`portscan registry` hands --ca-cert to the discovery and to every worker."""
    audit = ("registry", tls_registry.host, "-q", "-f", "json", "--jobs", "1", "--timeout", "20")
    store = ("--store", str(home / "store.db"))
    refused = run(home, *audit, *store)
    assert refused.returncode == 5, refused.stderr
    assert "--ca-cert" in refused.stderr
    done = run(home, *audit, *store, "--ca-cert", str(pki / "ca.pem"))
    assert done.returncode == 0, done.stderr
    images = json.loads(done.stdout)["images"]
    assert [(i["names"], i["status"], i["error"]) for i in images] == [
        (["corp/app:v1"], "scanned", None)
    ]


def test_ca_cert_that_is_no_certificate(home: Path, tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a certificate\n")
    done = portscan(home, "registry.invalid/app:v1", "--ca-cert", str(bogus))
    assert_one_line_error(done, 2, "no PEM certificate", str(bogus))
    missing = portscan(home, "registry.invalid/app:v1", "--ca-cert", str(tmp_path / "nope.pem"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr


# --------------------------------------------------------------------------- auth files


def _auth_json(path: Path, key: str, user: str = USER, password: str = PASSWORD) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    path.write_text(json.dumps({"auths": {key: {"auth": token}}}))
    return path


def test_auth_json_files_in_podman_order(
    basic_registry: Registry, home: Path, tmp_path: Path
) -> None:
    ref = f"{basic_registry.host}/private/app:v1"
    assert_one_line_error(portscan(home, ref), 4)

    runtime = tmp_path / "run"
    _auth_json(runtime / "containers" / "auth.json", basic_registry.host)
    assert_scanned(portscan(home, ref, XDG_RUNTIME_DIR=str(runtime)), "auth-json")

    config_home = home / ".config"
    _auth_json(config_home / "containers" / "auth.json", basic_registry.host)
    assert_scanned(portscan(home, ref), "auth-json")

    # REGISTRY_AUTH_FILE replaces the default files; --authfile replaces everything
    wrong = _auth_json(tmp_path / "wrong.json", basic_registry.host, password="nope")
    assert_one_line_error(portscan(home, ref, REGISTRY_AUTH_FILE=str(wrong)), 4)
    right = _auth_json(tmp_path / "right.json", basic_registry.host)
    assert_scanned(portscan(home, ref, REGISTRY_AUTH_FILE=str(right)), "auth-json")
    done = portscan(home, ref, "--authfile", str(right), REGISTRY_AUTH_FILE=str(wrong))
    assert_scanned(done, "auth-json")
    assert_one_line_error(portscan(home, ref, "--authfile", str(wrong)), 4)


def test_repository_scoped_auth_json_keys(tmp_path: Path) -> None:
    """containers-auth.json(5): the most specific key naming the image wins."""
    path = tmp_path / "auth.json"
    entry = {"auth": base64.b64encode(b"org-user:org-pass").decode()}
    host_entry = {"auth": base64.b64encode(b"host-user:host-pass").decode()}
    path.write_text(json.dumps({"auths": {"quay.example": host_entry, "quay.example/org": entry}}))
    found = load_credentials("quay.example", authfile=path, repository="org/app")
    assert found is not None and found.username == "org-user"
    found = load_credentials("quay.example", authfile=path, repository="organic/app")
    assert found is not None and found.username == "host-user"
    assert load_credentials("other.example", authfile=path, repository="org/app") is None


# --------------------------------------------------------------------------- proxy


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    with forward_proxy() as running:
        yield running


@needs_name
def test_https_proxy_is_used_and_no_proxy_bypasses_it(
    tls_registry: Registry, pki: Path, home: Path, proxy: ForwardProxy
) -> None:
    ref = f"{tls_registry.host}/corp/app:v1"
    ca = ("--ca-cert", str(pki / "ca.pem"))
    assert_scanned(portscan(home, ref, *ca, HTTPS_PROXY=proxy.url), "private-ca")
    assert ("CONNECT", tls_registry.host) in proxy.seen
    proxy.seen.clear()
    done = portscan(home, ref, *ca, HTTPS_PROXY=proxy.url, NO_PROXY=HOST)
    assert_scanned(done, "private-ca")
    assert proxy.seen == []


@needs_name
def test_a_dead_proxy_is_an_unreachable_registry(
    tls_registry: Registry, pki: Path, home: Path
) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{unused.getsockname()[1]}"
    ref = f"{tls_registry.host}/corp/app:v1"
    done = portscan(home, ref, "--ca-cert", str(pki / "ca.pem"), HTTPS_PROXY=dead)
    assert_one_line_error(done, 5)


def test_http_proxy_forwards_plain_http(
    basic_registry: Registry, home: Path, tmp_path: Path, proxy: ForwardProxy
) -> None:
    """A loopback registry falls back to plain HTTP, which HTTP_PROXY forwards by URI."""
    ref = f"{basic_registry.host}/private/app:v1"
    auth = _auth_json(tmp_path / "auth.json", basic_registry.host)
    done = portscan(home, ref, "--authfile", str(auth), HTTP_PROXY=proxy.url)
    assert_scanned(done, "auth-json")
    assert ("GET", basic_registry.host) in proxy.seen


# --------------------------------------------------------------------------- offline


def test_offline_refuses_registries_and_scans_local_sources(
    basic_registry: Registry, home: Path, proxy: ForwardProxy
) -> None:
    ref = f"{basic_registry.host}/private/app:v1"
    env = {"HTTP_PROXY": proxy.url, "HTTPS_PROXY": proxy.url, "DOCKER_HOST": ""}
    assert_one_line_error(portscan(home, ref, "--offline", **env), 2, "--offline", ref)
    explicit = portscan(home, f"registry:{ref}", "--offline", **env)
    assert_one_line_error(explicit, 2, "--offline")
    bare = portscan(home, "busybox:1.36", PORTSCAN_OFFLINE="1", **env)  # the variable
    assert_one_line_error(bare, 2, "not in a local engine", "--offline")
    assert proxy.seen == []
    if CORPUS_LAYOUT.is_dir():
        local = portscan(home, f"oci:{CORPUS_LAYOUT}", "--offline", **env)
        assert local.returncode == 0, local.stderr
        assert json.loads(local.stdout)["image"]["digest"].startswith("sha256:")


podman_service = podman.podman_service  # the session fixture, registered in this module


@pytest.mark.podman
def test_offline_takes_a_bare_name_from_the_local_engine_with_syft(
    podman_service: podman.PodmanService, home: Path, proxy: ForwardProxy
) -> None:
    """A bare name the engine has scans offline, and syft is sent to the engine too
    (`docker:NAME`), never to a registry."""
    if not CORPUS_LAYOUT.is_dir():
        pytest.skip(f"needs the corpus layout {CORPUS_LAYOUT}")
    podman_service.podman("pull", "--quiet", f"oci:{CORPUS_LAYOUT}")
    podman_service.podman("tag", f"localhost{CORPUS_LAYOUT}:latest", "offline/busybox:1")
    env = {"DOCKER_HOST": podman_service.docker_host, "HTTPS_PROXY": proxy.url}
    done = portscan(home, "offline/busybox:1", "--offline", "--sbom", "syft", **env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["image"]["source"] == "docker"
    assert not [w for w in result["warnings"] if "syft" in w], result["warnings"]
    assert proxy.seen == []


def test_diff_offline_compares_local_sources_and_refuses_registries(home: Path) -> None:
    if not CORPUS_LAYOUT.is_dir():
        pytest.skip(f"needs the corpus layout {CORPUS_LAYOUT}")
    local = f"oci:{CORPUS_LAYOUT}"
    same = run(home, "diff", local, local, "--offline", "-f", "json", DOCKER_HOST="")
    assert same.returncode == 0, same.stderr
    remote = run(home, "diff", local, "registry.invalid/app:v1", "--offline", DOCKER_HOST="")
    assert_one_line_error(remote, 2, "--offline", "registry.invalid/app:v1")


@needs_name
def test_diff_takes_the_registry_options_of_image(
    tls_registry: Registry, basic_registry: Registry, pki: Path, home: Path, tmp_path: Path
) -> None:
    """`portscan diff` reaches registries as `portscan image` does: a private CA with
    --ca-cert, credentials from --authfile (the same option definitions)."""
    tls_registry.push("corp/app", "v2", small_image("private-ca-2"))
    old, new = f"{tls_registry.host}/corp/app:v1", f"{tls_registry.host}/corp/app:v2"
    diff = ("diff", old, new, "-f", "json", "--timeout", "20")
    line = assert_one_line_error(run(home, *diff), 5, "TLS", "--ca-cert")
    assert "CERTIFICATE_VERIFY_FAILED" in line
    done = run(home, *diff, "--ca-cert", str(pki / "ca.pem"))
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["old"].startswith(old) and doc["new"].startswith(new)
    assert doc["old"] != doc["new"] and not doc["worse"]  # two images, both read over TLS

    private = f"{basic_registry.host}/private/app:v1"
    denied = run(home, "diff", private, private, "--timeout", "20")
    assert_one_line_error(denied, 4)
    right = _auth_json(tmp_path / "right.json", basic_registry.host)
    same = run(home, "diff", private, private, "--authfile", str(right), "--timeout", "20")
    assert same.returncode == 0, same.stderr
    assert "no change in portability" in same.stdout
