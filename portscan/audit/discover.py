"""What a registry audit covers: repositories from `/v2/_catalog`, their tags from
`tags/list` (both paginated: each answer's `Link: <...>; rel="next"` header names the
next page), filtered by a prefix and globs, tags chosen by a policy, and every chosen
tag resolved to one platform's manifest and config, exactly as `portscan image` would.

Tag policies: `latest` (the tag named latest, where there is one), `all`, and
`newest:N` (the N newest distinct images of each repository by the config's `created`
time, with every tag naming them). Tags that are not container images (signatures,
attestations, Helm charts) and images without the requested platform are skipped with
a note; tags that cannot be read are failures the audit reports.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from portscan.errors import (
    AuthError,
    ImageNotFoundError,
    PlatformNotFoundError,
    PortscanError,
    UsageError,
)
from portscan.model import ImageMeta, Platform, SourceKind
from portscan.sources import SourceOptions
from portscan.sources.auth import Credentials, load_credentials
from portscan.sources.manifests import (
    IMAGE_CONFIG_TYPES,
    build_meta,
    parse_document,
    resolve_manifest,
)
from portscan.sources.registry import RegistryClient, candidate_schemes, endpoint_host

CATALOG_SCOPE = "registry:catalog:*"
DEFAULT_PAGE_SIZE = 100
MAX_PAGES = 100_000  # a registry whose Link headers loop would otherwise never end
_LINK = re.compile(r'<([^>]*)>\s*;[^,]*?\brel="?next"?', re.IGNORECASE)
_TAG_POLICY = re.compile(r"^(latest|all|newest:([1-9][0-9]*))$")


# --------------------------------------------------------------------------- selection


@dataclass(frozen=True)
class TagPolicy:
    """Which tags of a repository to audit: `latest`, `all` or `newest:N`."""

    kind: str = "latest"
    count: int = 0

    @classmethod
    def parse(cls, text: str) -> TagPolicy:
        match = _TAG_POLICY.match(text.strip())
        if match is None:
            raise UsageError(f"invalid --tags {text!r}", "use latest, all or newest:N (N >= 1)")
        if match.group(2):
            return cls("newest", int(match.group(2)))
        return cls(match.group(1))

    def __str__(self) -> str:
        return f"newest:{self.count}" if self.kind == "newest" else self.kind

    def candidates(self, tags: Iterable[str]) -> list[str]:
        """The tags to resolve (all of them for `newest`, which needs their configs)."""
        if self.kind == "latest":
            return [t for t in tags if t == "latest"]
        return sorted(set(tags))

    def choose(self, found: list[FoundImage]) -> list[FoundImage]:
        """The resolved tags of one repository that the policy keeps."""
        if self.kind != "newest":
            return found
        newest: dict[str, tuple[str, str]] = {}  # digest -> (created, tag), the latest name
        for image in found:
            key = (image.created or "", image.tag)
            newest[image.digest] = max(newest.get(image.digest, key), key)
        ranked = sorted(newest, key=lambda d: newest[d], reverse=True)
        kept = set(ranked[: self.count])
        return [image for image in found if image.digest in kept]


@dataclass(frozen=True)
class Selection:
    """What to audit: a registry, a repository prefix, globs and a tag policy."""

    registry: str
    prefix: str = ""
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    tags: TagPolicy = field(default_factory=TagPolicy)
    platform: Platform = field(default_factory=Platform)

    def to_dict(self) -> dict[str, Any]:
        """The audit's identity in the store: same dict, same audit to resume."""
        return {
            "prefix": self.prefix,
            "include": sorted(self.include),
            "exclude": sorted(self.exclude),
            "tags": str(self.tags),
            "platform": str(self.platform),
        }

    def wants(self, repository: str) -> bool:
        """True when `repository` is under the prefix, matches an include glob (if any)
        and no exclude glob. Globs are fnmatch patterns on the full repository name."""
        if self.prefix and not (
            repository == self.prefix or repository.startswith(self.prefix + "/")
        ):
            return False
        if self.include and not any(fnmatch.fnmatchcase(repository, g) for g in self.include):
            return False
        return not any(fnmatch.fnmatchcase(repository, g) for g in self.exclude)


def parse_target(text: str) -> tuple[str, str]:
    """`HOST[:PORT][/PREFIX]` -> (registry host, repository prefix)."""
    if "://" in text:
        raise UsageError(
            f"{text!r}: give the registry as HOST[:PORT][/PREFIX], without a scheme",
            "plain HTTP is chosen with --insecure (and always tried on loopback)",
        )
    text = text.strip()
    host, _, prefix = text.partition("/")
    if not host or any(c.isspace() for c in text):
        raise UsageError(f"invalid registry {text!r}", "write it as HOST[:PORT][/PREFIX]")
    return host, prefix.strip("/")


# --------------------------------------------------------------------------- listing


def next_page(response: httpx.Response) -> str | None:
    """The path and query of the next page named by a `Link` header, if any."""
    for value in response.headers.get_list("link"):
        match = _LINK.search(value)
        if match:
            url = urlsplit(match.group(1))
            return url.path + (f"?{url.query}" if url.query else "")
    return None


def _pages(client: RegistryClient, path: str, key: str, what: str) -> list[str]:
    items: list[str] = []
    next_path: str | None = path
    for _ in range(MAX_PAGES):
        if next_path is None:
            return items
        response = client.request(next_path)
        if response.status_code == 404:
            raise ImageNotFoundError(
                f"{client.registry} answered 404 for {what}",
                "the registry may not offer the catalog API (Docker Hub does not)",
            )
        if response.status_code in (401, 403):
            raise AuthError(
                f"{client.registry} does not allow listing {what} with these credentials",
                f"log in with docker login {client.registry} or pass --username",
            )
        if response.status_code != 200:
            raise PortscanError(
                f"{client.registry} answered HTTP {response.status_code} for {what}",
                "check the registry; --page-size may be above what it accepts",
            )
        try:
            page = response.json().get(key) or []
        except (ValueError, AttributeError):
            raise PortscanError(f"{client.registry} sent a malformed answer for {what}") from None
        items.extend(str(item) for item in page)
        next_path = next_page(response)
    raise PortscanError(f"{client.registry} paginates {what} without end")


def list_repositories(client: RegistryClient, page_size: int = DEFAULT_PAGE_SIZE) -> list[str]:
    """Every repository in the catalog, following pagination."""
    return _pages(client, f"/v2/_catalog?n={page_size}", "repositories", "its catalog")


def list_tags(client: RegistryClient, page_size: int = DEFAULT_PAGE_SIZE) -> list[str]:
    """Every tag of the client's repository, following pagination."""
    repository = client.repository
    return _pages(client, f"/v2/{repository}/tags/list?n={page_size}", "tags", repository)


# --------------------------------------------------------------------------- resolving


@dataclass
class FoundImage:
    """One `repository:tag`, resolved to a platform's manifest and config."""

    repository: str
    tag: str
    digest: str
    meta: ImageMeta
    created: str | None

    @property
    def name(self) -> str:
        return f"{self.repository}:{self.tag}"


@dataclass
class Discovery:
    """What a walk found: resolved images, tags skipped (with why), tags that failed."""

    images: list[FoundImage] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # repository:tag -> error


def created_of(config: bytes) -> str | None:
    """The config's `created` time, else its newest history entry's."""
    try:
        doc = json.loads(config)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    if isinstance(doc.get("created"), str):
        return doc["created"]
    times = [h["created"] for h in doc.get("history") or [] if isinstance(h.get("created"), str)]
    return max(times, default=None)


class Walker:
    """Lists and resolves what a `Selection` covers, with one client per repository."""

    def __init__(self, selection: Selection, options: SourceOptions, page_size: int) -> None:
        self.selection = selection
        self.options = options
        self.page_size = page_size
        self._credentials: Credentials | None = load_credentials(
            selection.registry, options.username, options.password, options.docker_config
        )

    def client(self, repository: str, scope: str | None = None) -> RegistryClient:
        """A connected client for `repository` (or the catalog, with its scope)."""
        host = endpoint_host(self.selection.registry)
        client = RegistryClient(
            self.selection.registry,
            repository,
            self._credentials,
            candidate_schemes(host, self.options.insecure),
            timeout=self.options.timeout,
        )
        if scope:
            client.scope = scope
        client.connect()
        return client

    def repositories(self) -> list[str]:
        client = self.client("", CATALOG_SCOPE)
        try:
            names = list_repositories(client, self.page_size)
        finally:
            client.close()
        return sorted(name for name in set(names) if self.selection.wants(name))

    def resolve(self, client: RegistryClient, tag: str) -> FoundImage | str:
        """The image a tag names for the selected platform, or why it is skipped."""
        where = f"{self.selection.registry}/{client.repository}:{tag}"
        platform = self.selection.platform
        data, content_type, digest = client.get_manifest(tag)
        document = parse_document(data, content_type, where)
        try:
            manifest, digest, claimed = resolve_manifest(
                document, digest, client.fetch_document, platform, where
            )
        except PlatformNotFoundError:
            return f"{where}: no {platform} image"
        if manifest.config.media_type and manifest.config.media_type not in IMAGE_CONFIG_TYPES:
            return f"{where}: not a container image ({manifest.config.media_type})"
        config = client.fetch_blob(manifest.config.digest)
        meta = build_meta(manifest, digest, config, where, SourceKind.REGISTRY, claimed or platform)
        return FoundImage(client.repository, tag, digest, meta, created_of(config))

    def tags(self, repository: str) -> tuple[RegistryClient | None, list[str] | str]:
        """A client for `repository` and its candidate tags, or why they cannot be listed."""
        try:
            client = self.client(repository)
        except PortscanError as exc:
            return None, str(exc)
        try:
            return client, self.selection.tags.candidates(list_tags(client, self.page_size))
        except PortscanError as exc:
            client.close()
            return None, str(exc)


def discover(
    selection: Selection,
    options: SourceOptions,
    page_size: int = DEFAULT_PAGE_SIZE,
    threads: int = 8,
    found: Callable[[int], None] | None = None,
) -> Discovery:
    """Walk the catalog and resolve every chosen tag, `threads` requests at a time;
    `found` hears of each tag resolved. Registry-wide failures (unreachable, catalog
    refused) raise; a repository or tag that fails is recorded and the walk goes on."""
    walker = Walker(selection, options, page_size)
    result = Discovery()
    clients: list[RegistryClient] = []

    def resolve(job: tuple[RegistryClient, str]) -> FoundImage | str | PortscanError:
        client, tag = job
        try:
            outcome = walker.resolve(client, tag)
        except PortscanError as exc:
            return exc
        if found:
            found(1)
        return outcome

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        try:
            repositories = walker.repositories()
            jobs: list[tuple[RegistryClient, str]] = []
            for repository, (client, tags) in zip(
                repositories, pool.map(walker.tags, repositories), strict=True
            ):
                if client is None:
                    result.failed[f"{repository}:*"] = str(tags)
                    continue
                clients.append(client)
                if not tags:
                    result.skipped.append(f"{repository}: no tag matches --tags {selection.tags}")
                jobs.extend((client, tag) for tag in tags)
            by_repository: dict[str, list[FoundImage]] = {}
            for (client, tag), outcome in zip(jobs, pool.map(resolve, jobs), strict=True):
                if isinstance(outcome, PortscanError):
                    result.failed[f"{client.repository}:{tag}"] = str(outcome)
                elif isinstance(outcome, str):
                    result.skipped.append(outcome)
                else:
                    by_repository.setdefault(client.repository, []).append(outcome)
        finally:
            for client in clients:
                client.close()
    for repository in sorted(by_repository):
        result.images.extend(selection.tags.choose(by_repository[repository]))
    return result
