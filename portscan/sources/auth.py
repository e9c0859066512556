"""Registry credentials and the authentication handshake.

Credentials, first match wins:
1. `SourceOptions.username` / `password`;
2. podman's and skopeo's auth file (containers-auth.json(5), read 2026-12-04 from
   https://github.com/containers/image/blob/main/docs/containers-auth.json.5.md):
   `--authfile FILE` alone when given, else `$REGISTRY_AUTH_FILE`, else
   `$XDG_RUNTIME_DIR/containers/auth.json` and `$XDG_CONFIG_HOME/containers/auth.json`
   (~/.config/...); same format as the Docker config below; a key may name a
   repository (`quay.io/org`), and the longest key matching the image wins;
3. the Docker CLI config (`SourceOptions.docker_config`, else `$DOCKER_CONFIG/config.json`,
   else `~/.docker/config.json`): a `credHelpers` entry for the host, else `credsStore`,
   each run as `docker-credential-NAME get` (server URL on stdin, JSON `{Username,
   Secret}` on stdout, per docker/docker-credential-helpers), else an `auths` entry
   (`auth` = base64 "user:password", or `username`/`password`, or `identitytoken`).
   Keys are compared by host name, so `https://index.docker.io/v1/` is Docker Hub.
4. none: anonymous.

The handshake follows the distribution token spec (docs/spec/auth/token.md): a 401 with
`WWW-Authenticate: Bearer realm=..,service=..,scope=..` sends us to the realm for a
token (GET with basic credentials, or POST with `grant_type=refresh_token` when we hold
an identity token); tokens are cached per scope until they expire. A `Basic` challenge
is answered with the credentials themselves.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from portscan.errors import AuthError

log = logging.getLogger(__name__)

DOCKER_HUB = "docker.io"
DOCKER_HUB_SERVER = "https://index.docker.io/v1/"  # the key `docker login` writes for Hub
_HUB_ALIASES = ("docker.io", "index.docker.io", "registry-1.docker.io")
_TOKEN_MARGIN = 10.0  # seconds before expiry at which a cached token is renewed
_DEFAULT_TOKEN_LIFETIME = 60  # the token spec's default for a missing expires_in
_PARAM = re.compile(r'([A-Za-z_][\w-]*)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)')

SendFn = Callable[[httpx.Request], httpx.Response]


@dataclass(frozen=True)
class Credentials:
    """A user name and password, or an OAuth2 refresh token from `docker login`."""

    username: str = ""
    password: str = ""
    identity_token: str | None = None
    origin: str = ""  # where they came from, for error messages

    def basic_header(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower case: "bearer" or "basic"
    params: dict[str, str]


# --------------------------------------------------------------------------- credentials


def docker_config_path(explicit: Path | None = None) -> Path:
    """The Docker CLI config file to read (a directory means its config.json)."""
    if explicit is not None:
        explicit = Path(explicit)
        return explicit / "config.json" if explicit.is_dir() else explicit
    base = os.environ.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


def _hostname(key: str) -> str:
    """`https://index.docker.io/v1/` -> `index.docker.io`, as the Docker CLI compares."""
    key = key.strip()
    for scheme in ("http://", "https://"):
        if key.startswith(scheme):
            key = key[len(scheme) :]
    return key.split("/", 1)[0]


def _same_registry(key: str, registry: str) -> bool:
    host = _hostname(key)
    if registry == DOCKER_HUB:
        return host in _HUB_ALIASES
    return host == registry


def server_url(registry: str) -> str:
    """What a credential helper is asked about for `registry`."""
    return DOCKER_HUB_SERVER if registry == DOCKER_HUB else registry


def containers_auth_files(authfile: Path | None = None) -> list[Path]:
    """The podman/skopeo auth files to read, in order (see the module docstring)."""
    if authfile is not None:
        return [Path(authfile)]
    explicit = os.environ.get("REGISTRY_AUTH_FILE")
    if explicit:
        return [Path(explicit)]
    files = []
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        files.append(Path(runtime) / "containers" / "auth.json")
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    files.append(Path(config_home) / "containers" / "auth.json")
    return files


def load_credentials(
    registry: str,
    username: str | None = None,
    password: str | None = None,
    docker_config: Path | None = None,
    authfile: Path | None = None,
    repository: str | None = None,
) -> Credentials | None:
    """Credentials for `registry` (a host, `docker.io` for Hub), or None for anonymous.
    `authfile` (--authfile) replaces every other file; `repository` lets a
    repository-scoped auth.json key match."""
    if authfile is not None and not Path(authfile).is_file():
        raise AuthError(f"--authfile {authfile} does not exist", "pass the auth.json to read")
    found = _find_credentials(registry, username, password, docker_config, authfile, repository)
    if found is None:
        log.debug("auth for %s: none found, anonymous", registry)
    else:
        log.debug("auth for %s: from %s", registry, found.origin)
    return found


def _find_credentials(
    registry: str,
    username: str | None,
    password: str | None,
    docker_config: Path | None,
    authfile: Path | None = None,
    repository: str | None = None,
) -> Credentials | None:
    if username:
        return Credentials(username, password or "", origin="--username")
    for path in containers_auth_files(authfile):
        found = _from_config(path, _read_config(path), registry, repository)
        if found is not None:
            return found
    if authfile is not None:
        return None
    path = docker_config_path(docker_config)
    return _from_config(path, _read_config(path), registry, repository)


def _key_match(key: str, registry: str, repository: str | None) -> int:
    """How well an auths/credHelpers key names the image: 0 not at all, else the
    number of path parts it matched (a bare host is 1)."""
    if not _same_registry(key, registry):
        return 0
    stripped = key.strip()
    for scheme in ("http://", "https://"):
        stripped = stripped.removeprefix(scheme)
    path = stripped.split("/", 1)[1].strip("/") if "/" in stripped else ""
    if not path or path in ("v1", "v2") or repository is None:  # the whole registry
        return 1
    if repository == path or repository.startswith(path + "/"):
        return 1 + path.count("/") + 1
    return 0


def _from_config(
    path: Path, config: dict[str, Any], registry: str, repository: str | None
) -> Credentials | None:
    """Credentials for the image from one Docker config or auth.json document."""
    helpers = config.get("credHelpers") or {}
    helper = next((name for key, name in helpers.items() if _same_registry(key, registry)), None)
    if helper:
        return run_credential_helper(helper, registry)
    store = config.get("credsStore")
    if isinstance(store, str) and store:
        found = run_credential_helper(store, registry)
        if found is not None:
            return found
    auths = config.get("auths") or {}
    ranked = sorted(
        ((_key_match(key, registry, repository), key) for key in auths),
        key=lambda pair: -pair[0],
    )
    for rank, key in ranked:
        entry = auths[key]
        if rank and isinstance(entry, dict):
            found = _from_auths_entry(entry, f"{path} auths[{key!r}]")
            if found is not None:
                return found
    return None


def _read_config(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise AuthError(f"cannot read {path}: {exc.strerror}", "fix its permissions") from None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AuthError(f"{path} is not valid JSON ({exc})", "fix or remove the file") from None
    return config if isinstance(config, dict) else {}


def _from_auths_entry(entry: dict[str, Any], origin: str) -> Credentials | None:
    if entry.get("identitytoken"):
        return Credentials(identity_token=str(entry["identitytoken"]), origin=origin)
    if entry.get("auth"):
        try:
            decoded = base64.b64decode(str(entry["auth"]), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise AuthError(
                f"{origin}: `auth` is not base64 of user:password", "run docker login again"
            ) from None
        user, sep, secret = decoded.partition(":")
        if not sep:
            raise AuthError(f"{origin}: `auth` has no ':'", "run docker login again")
        return Credentials(user, secret, origin=origin)
    if entry.get("username"):
        return Credentials(str(entry["username"]), str(entry.get("password") or ""), origin=origin)
    return None


def run_credential_helper(name: str, registry: str) -> Credentials | None:
    """Ask `docker-credential-NAME get`; None when it has nothing for this registry."""
    program = f"docker-credential-{name}"
    try:
        done = subprocess.run(
            [program, "get"],
            input=server_url(registry),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except FileNotFoundError:
        raise AuthError(
            f"credential helper {program} is not installed",
            "install it or remove it from your docker config.json",
        ) from None
    except subprocess.TimeoutExpired:
        raise AuthError(f"credential helper {program} did not answer within 60 s") from None
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()
        if "credentials not found" in output.lower():
            return None
        first_line = output.splitlines()[0] if output else f"exit status {done.returncode}"
        raise AuthError(f"credential helper {program} failed: {first_line}")
    try:
        answer = json.loads(done.stdout)
        user, secret = str(answer["Username"]), str(answer["Secret"])
    except (json.JSONDecodeError, KeyError, TypeError):
        raise AuthError(
            f"credential helper {program} printed no JSON with Username and Secret"
        ) from None
    if user == "<token>":
        return Credentials(identity_token=secret, origin=program)
    return Credentials(user, secret, origin=program)


# --------------------------------------------------------------------------- handshake


def parse_challenges(values: list[str]) -> list[Challenge]:
    """Parse `WWW-Authenticate` header values (RFC 7235 auth-params, quoted or not)."""
    challenges = []
    for value in values:
        for part in re.split(r",?\s*(?=\b(?:Bearer|Basic)\s)", value, flags=re.IGNORECASE):
            scheme, _, rest = part.strip().partition(" ")
            if not scheme:
                continue
            params = {}
            for key, raw in _PARAM.findall(rest):
                if raw.startswith('"'):
                    raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
                params[key.lower()] = raw
            challenges.append(Challenge(scheme.lower(), params))
    return challenges


class Authenticator:
    """Holds what a registry asked for and answers it: no auth, basic, or bearer tokens
    cached per scope. `send` performs one request (with retries) and reads the body."""

    def __init__(self, registry: str, credentials: Credentials | None, send: SendFn) -> None:
        self.registry = registry
        self.credentials = credentials
        self._send = send
        self._challenge: Challenge | None = None
        self._tokens: dict[str, tuple[str, float]] = {}  # scope -> (token, renew after)

    def headers(self, scope: str) -> dict[str, str]:
        """The Authorization header to send for a request needing `scope`."""
        if self._challenge is None:
            return {}
        creds = self.credentials
        if self._challenge.scheme == "basic":
            if creds is None or creds.identity_token:
                return {}
            return {"Authorization": creds.basic_header()}
        cached = self._tokens.get(scope)
        if cached is None or cached[1] < time.monotonic():
            self._tokens[scope] = self._fetch_token(scope)
            cached = self._tokens[scope]
        return {"Authorization": f"Bearer {cached[0]}"}

    def learn(self, response: httpx.Response, scope: str) -> bool:
        """Take a 401's challenge; True when retrying with what it asks for can help
        (a fresh token for `scope`, or basic credentials that we have)."""
        challenges = parse_challenges(response.headers.get_list("www-authenticate"))
        bearer = next((c for c in challenges if c.scheme == "bearer"), None)
        chosen = bearer or next((c for c in challenges if c.scheme == "basic"), None)
        if chosen is None:
            return False
        self._challenge = chosen
        if chosen.scheme == "basic":
            return self.credentials is not None and not self.credentials.identity_token
        self._tokens.pop(scope, None)
        return True

    def _fetch_token(self, scope: str) -> tuple[str, float]:
        assert self._challenge is not None
        realm = self._challenge.params.get("realm")
        if not realm:
            raise AuthError(f"{self.registry} sent a Bearer challenge without a realm")
        params = {"scope": scope}
        if "service" in self._challenge.params:
            params["service"] = self._challenge.params["service"]
        creds = self.credentials
        try:
            request = self._token_request(realm, params, creds)
        except httpx.InvalidURL as exc:
            raise AuthError(
                f"{self.registry} sent a Bearer challenge whose realm {realm!r} is not a URL"
                f" ({exc})"
            ) from None
        response = self._send(request)
        if response.status_code in (401, 403):
            raise AuthError(
                f"the token service of {self.registry} refused the credentials"
                + (f" from {creds.origin}" if creds and creds.origin else ""),
                f"log in again with docker login {self.registry} or pass --username",
            )
        if response.status_code != 200:
            raise AuthError(
                f"the token service of {self.registry} answered HTTP {response.status_code}",
                "try again later",
            )
        try:
            body = response.json()
            token = body.get("token") or body.get("access_token")
            lifetime = float(body.get("expires_in") or _DEFAULT_TOKEN_LIFETIME)
        except (json.JSONDecodeError, AttributeError, TypeError, ValueError):
            token = None
        if not isinstance(token, str) or not token:
            raise AuthError(f"the token service of {self.registry} returned no token")
        return token, time.monotonic() + max(lifetime - _TOKEN_MARGIN, lifetime / 2)

    @staticmethod
    def _token_request(
        realm: str, params: dict[str, str], creds: Credentials | None
    ) -> httpx.Request:
        """GET with basic credentials, or POST with the refresh token we hold."""
        if creds is not None and creds.identity_token:
            form = {
                **params,
                "grant_type": "refresh_token",
                "refresh_token": creds.identity_token,
                "client_id": "portscan",
            }
            return httpx.Request("POST", realm, data=form)
        headers = {"Authorization": creds.basic_header()} if creds else {}
        return httpx.Request("GET", realm, params=params, headers=headers)
