"""Which certificates a registry connection trusts, and which client certificate it shows.

A verified connection trusts, all at once:
1. the operating system's trust store (`ssl.create_default_context()`: OpenSSL's default
   paths, e.g. /etc/ssl/certs on Debian, which `update-ca-certificates` fills, and
   `$SSL_CERT_FILE` / `$SSL_CERT_DIR`; the system store on Windows);
2. certifi's Mozilla bundle (what httpx trusts by default);
3. every `--ca-cert FILE` (PEM, one or more certificates);
4. the registry's certs.d directory: `ROOT/HOST[:PORT]/*.crt` are CAs, and a `NAME.cert`
   with its `NAME.key` is a client certificate (mutual TLS), as Docker and podman read
   them. The roots are /etc/containers/certs.d, `$XDG_CONFIG_HOME/containers/certs.d`
   (~/.config/...) and /etc/docker/certs.d, or the `os.pathsep`-separated list in
   `$PORTSCAN_CERTS_D`.

Sources (read 2026-12-04): https://docs.docker.com/engine/security/certificates/ and
containers-certs.d(5), https://github.com/containers/image/blob/main/docs/containers-certs.d.5.md
"""

from __future__ import annotations

import functools
import logging
import os
import ssl
from collections.abc import Sequence
from pathlib import Path

import certifi

from portscan.errors import UsageError

log = logging.getLogger(__name__)

CERTS_D_ENV = "PORTSCAN_CERTS_D"


def certs_d_roots() -> tuple[Path, ...]:
    """The certs.d roots to look in, in order (see the module docstring)."""
    override = os.environ.get(CERTS_D_ENV)
    if override is not None:
        return tuple(Path(p) for p in override.split(os.pathsep) if p)
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return (
        Path("/etc/containers/certs.d"),
        Path(config_home) / "containers" / "certs.d",
        Path("/etc/docker/certs.d"),
    )


def host_directories(host: str, roots: Sequence[Path]) -> list[Path]:
    """The existing certs.d directories for `host` (HOST or HOST:PORT, as written)."""
    return [root / host for root in roots if (root / host).is_dir()]


def _load_ca(context: ssl.SSLContext, path: Path, what: str) -> None:
    try:
        context.load_verify_locations(cafile=str(path))
    except ssl.SSLError:  # an OSError too: first
        raise UsageError(
            f"{what} {path} holds no PEM certificate", "pass a PEM file (-----BEGIN CERTIFICATE)"
        ) from None
    except FileNotFoundError:
        raise UsageError(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror}") from None


def _load_client_pair(context: ssl.SSLContext, cert: Path) -> None:
    key = cert.with_suffix(".key")
    if not key.is_file():
        raise UsageError(
            f"client certificate {cert} has no key {key.name} next to it",
            "put NAME.key beside NAME.cert, as Docker expects",
        )
    try:
        context.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)
        raise UsageError(
            f"cannot load client certificate {cert} with {key.name}: {reason}"
        ) from None


@functools.lru_cache(maxsize=64)
def _context(host: str, ca_certs: tuple[Path, ...], roots: tuple[Path, ...]) -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=certifi.where())
    for path in ca_certs:
        _load_ca(context, path, "--ca-cert")
    for directory in host_directories(host, roots):
        log.debug("tls for %s: certs.d directory %s", host, directory)
        for ca in sorted(directory.glob("*.crt")):
            _load_ca(context, ca, "certs.d CA")
        for cert in sorted(directory.glob("*.cert")):
            _load_client_pair(context, cert)
    return context


def ssl_context(host: str, ca_certs: Sequence[Path] = ()) -> ssl.SSLContext:
    """A verifying context for `host` (HOST or HOST:PORT): OS store, certifi, `ca_certs`
    and the host's certs.d files. Contexts are cached per host and settings."""
    return _context(host, tuple(Path(p) for p in ca_certs), certs_d_roots())
