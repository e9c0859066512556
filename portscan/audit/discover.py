"""What a registry audit covers: repositories from `/v2/_catalog`, their tags from
`tags/list` (both paginated: each answer's `Link: <...>; rel="next"` header names the
next page), filtered by a prefix and globs, tags chosen by a policy, and every chosen
tag resolved to one platform's manifest and config, exactly as `portscan image` would.

Tag policies: `latest-or-newest` (the default, also spelled `default`: the tag named
latest, else the newest image by its config's `created` time, with every tag naming it),
`latest` (the tag named latest, where there is one), `all`, and `newest:N` (the N newest
distinct images of each repository by `created` time, with every tag naming them).

Nothing is left out silently: every repository or tag not audited is a `Skipped` entry
with its reason (excluded by a glob, no tags, not chosen by the policy, no image for the
platform, not a container image); tags that cannot be read are failures the audit
reports. `discover_references` does the same for a list of references (`--images-from`),
on any number of registries, without the catalog.
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
    RegistryListingError,
    UsageError,
)
from portscan.model import ImageMeta, ImageRef, Platform, SourceKind
from portscan.sources import SourceOptions
from portscan.sources.auth import Credentials, load_credentials
from portscan.sources.manifests import (
    IMAGE_CONFIG_TYPES,
    build_meta,
    parse_document,
    resolve_manifest,
)
from portscan.sources.refs import parse_reference
from portscan.sources.registry import (
    ATTEMPTS,
    RETRY_STATUSES,
    RegistryClient,
    candidate_schemes,
    endpoint_host,
)

CATALOG_SCOPE = "registry:catalog:*"
DEFAULT_PAGE_SIZE = 100
MAX_PAGES = 100_000  # a registry whose Link headers loop would otherwise never end
_LINK = re.compile(r'<([^>]*)>\s*;[^,]*?\brel="?next"?', re.IGNORECASE)
_TAG_POLICY = re.compile(r"^(latest-or-newest|default|latest|all|newest:([1-9][0-9]*))$")
DEFAULT_TAG_POLICY = "latest-or-newest"
_IMAGE_LINE = re.compile(r"^\s*(?:-\s*)?image\s*:\s+\S", re.MULTILINE)


@dataclass(frozen=True)
class Skipped:
    """A repository (`repository`) or tag (`repository:tag`) not audited, and why."""

    name: str
    reason: str


# --------------------------------------------------------------------------- selection


@dataclass(frozen=True)
class TagPolicy:
    """Which tags of a repository to audit: `latest-or-newest` (the default), `latest`,
    `all` or `newest:N`."""

    kind: str = DEFAULT_TAG_POLICY
    count: int = 0

    @classmethod
    def parse(cls, text: str) -> TagPolicy:
        match = _TAG_POLICY.match(text.strip())
        if match is None:
            raise UsageError(
                f"invalid --tags {text!r}",
                "use latest-or-newest (or default), latest, all or newest:N (N >= 1)",
            )
        if match.group(2):
            return cls("newest", int(match.group(2)))
        kind = match.group(1)
        return cls(DEFAULT_TAG_POLICY if kind == "default" else kind)

    def __str__(self) -> str:
        return f"newest:{self.count}" if self.kind == "newest" else self.kind

    def candidates(self, tags: Iterable[str]) -> list[str]:
        """The tags to resolve (all of them when the newest must be found: that needs
        their configs)."""
        unique = sorted(set(tags))
        if self.kind == "latest" or (self.kind == DEFAULT_TAG_POLICY and "latest" in unique):
            return [t for t in unique if t == "latest"]
        return unique

    def left_out(self) -> str:
        """Why the tags `candidates` does not return are not audited."""
        if self.kind == "latest":
            return "not chosen by --tags latest"
        return f"not chosen by --tags {self} (the repository has a latest tag)"

    def choose(self, found: list[FoundImage]) -> list[FoundImage]:
        """The resolved tags of one repository that the policy keeps."""
        if self.kind == "newest" or (
            self.kind == DEFAULT_TAG_POLICY and all(i.tag != "latest" for i in found)
        ):
            count = self.count if self.kind == "newest" else 1
        else:
            return found
        newest: dict[str, tuple[str, str]] = {}  # digest -> (created, tag), the latest name
        for image in found:
            key = (image.created or "", image.tag)
            newest[image.digest] = max(newest.get(image.digest, key), key)
        ranked = sorted(newest, key=lambda d: newest[d], reverse=True)
        kept = set(ranked[:count])
        return [image for image in found if image.digest in kept]

    def not_chosen(self, found: list[FoundImage], kept: list[FoundImage]) -> list[Skipped]:
        """The resolved tags `choose` left out, with the reason."""
        names = {image.name for image in kept}
        if self.kind == "newest":
            reason = f"older than the {self.count} newest images (--tags {self})"
        else:
            newest = ", ".join(sorted(i.name for i in kept)) or "none"
            reason = f"no latest tag; the newest image is audited instead ({newest}; --tags {self})"
        return [Skipped(i.name, reason) for i in found if i.name not in names]


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
        return self.in_scope(repository) and self.excluded_by(repository) is None

    def in_prefix(self, repository: str) -> bool:
        return (
            not self.prefix or repository == self.prefix or repository.startswith(self.prefix + "/")
        )

    def in_scope(self, repository: str) -> bool:
        """Under the prefix and matching an include glob (if any): what the audit covers."""
        return self.in_prefix(repository) and (
            not self.include or any(fnmatch.fnmatchcase(repository, g) for g in self.include)
        )

    def excluded_by(self, repository: str) -> str | None:
        """Why a repository in scope is dropped by an exclude glob, else None."""
        for glob in self.exclude:
            if fnmatch.fnmatchcase(repository, glob):
                return f"excluded by --exclude {glob}"
        return None


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
    """Every item of a paginated listing (`repositories` or `tags`); a status other
    than 200, a page that is not `{key: [strings]}`, or pagination that returns to a
    page it gave or goes on past `MAX_PAGES` is a `RegistryListingError` (exit 5)."""
    items: list[str] = []
    next_path: str | None = path
    seen: set[str] = set()
    while next_path is not None:
        if next_path in seen or len(seen) >= MAX_PAGES:
            again = (
                "returns to a page it gave"
                if next_path in seen
                else f"goes on past {MAX_PAGES} pages"
            )
            raise RegistryListingError(
                f"{client.registry} paginates {what} without end: its Link header {again}",
                "the registry is misbehaving; report it to its operator",
            )
        seen.add(next_path)
        response = client.request(next_path)
        _check_page_status(client, response, key, what)
        items.extend(_page_items(client, response, key, what))
        next_path = next_page(response)
    return items


def _check_page_status(
    client: RegistryClient, response: httpx.Response, key: str, what: str
) -> None:
    status = response.status_code
    if status == 404:
        raise ImageNotFoundError(
            f"{client.registry} answered 404 for {what}",
            "the registry may not offer the catalog API (Docker Hub does not)"
            if key == "repositories"
            else "the repository does not exist, or has no tags",
        )
    if status in (401, 403):
        raise AuthError(
            f"{client.registry} does not allow listing {what} with these credentials",
            f"log in with docker login {client.registry} or pass --username",
        )
    if status != 200:
        retried = f" after {ATTEMPTS} attempts" if status in RETRY_STATUSES else ""
        raise RegistryListingError(
            f"{client.registry} answered HTTP {status} for {what}{retried}",
            "check the registry; --page-size may be above what it accepts",
        )


def _page_items(client: RegistryClient, response: httpx.Response, key: str, what: str) -> list[str]:
    """The items of one page: `{key: [strings]}`, where `null` or a missing key is none."""
    try:
        doc = response.json()
    except ValueError:  # not JSON, or not UTF-8
        doc = None
    page = doc.get(key) if isinstance(doc, dict) else doc
    if page is None and isinstance(doc, dict):
        return []
    if not isinstance(page, list) or not all(isinstance(item, str) for item in page):
        raise RegistryListingError(
            f"{client.registry} sent a malformed answer for {what}: "
            f"not a JSON object with a list of strings under {key!r}",
            "the registry, or something between it and portscan, is misbehaving",
        )
    return page


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
    tag: str  # or a digest, for a reference by digest
    digest: str
    meta: ImageMeta
    created: str | None
    registry: str = ""  # set for references (--images-from): part of the name

    @property
    def name(self) -> str:
        """`repository:tag` on the audited registry; `registry/repository:tag` (or
        `@digest`) for references, which may be on several registries."""
        prefix = f"{self.registry}/" if self.registry else ""
        return f"{prefix}{self.repository}{'@' if ':' in self.tag else ':'}{self.tag}"


@dataclass
class Discovery:
    """What a walk found: resolved images, what was left out (with why), what failed."""

    images: list[FoundImage] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
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
            selection.registry,
            options.username,
            options.password,
            options.docker_config,
            authfile=options.authfile,
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
            ca_certs=self.options.ca_certs,
        )
        if scope:
            client.scope = scope
        client.connect()
        return client

    def repositories(self, skipped: list[Skipped] | None = None) -> list[str]:
        """The catalog's repositories in scope (the prefix, --include) that no --exclude
        glob drops; those an --exclude drops are added to `skipped`."""
        client = self.client("", CATALOG_SCOPE)
        try:
            names = list_repositories(client, self.page_size)
        finally:
            client.close()
        kept = []
        for name in sorted(set(names)):
            if not self.selection.in_scope(name):
                continue
            why = self.selection.excluded_by(name)
            if why is None:
                kept.append(name)
            elif skipped is not None:
                skipped.append(Skipped(name, why))
        return kept

    def resolve(
        self, client: RegistryClient, tag: str, qualified: bool = False
    ) -> FoundImage | Skipped:
        """The image a tag (or digest) names for the selected platform, or why it is
        skipped; `qualified` names it with its registry."""
        sep = "@" if ":" in tag else ":"
        where = f"{self.selection.registry}/{client.repository}{sep}{tag}"
        name = where if qualified else f"{client.repository}{sep}{tag}"
        platform = self.selection.platform
        data, content_type, digest = client.get_manifest(tag)
        document = parse_document(data, content_type, where)
        try:
            manifest, digest, claimed = resolve_manifest(
                document, digest, client.fetch_document, platform, where
            )
        except PlatformNotFoundError:
            return Skipped(name, f"no {platform} image")
        if manifest.config.media_type and manifest.config.media_type not in IMAGE_CONFIG_TYPES:
            return Skipped(name, f"not a container image ({manifest.config.media_type})")
        config = client.fetch_blob(manifest.config.digest, manifest.config.size)
        meta = build_meta(manifest, digest, config, where, SourceKind.REGISTRY, claimed or platform)
        registry = self.selection.registry if qualified else ""
        return FoundImage(client.repository, tag, digest, meta, created_of(config), registry)

    def tags(self, repository: str) -> tuple[RegistryClient | None, list[str] | str, list[Skipped]]:
        """A client for `repository`, its candidate tags and the tags the policy leaves
        out; or no client and why the tags cannot be listed."""
        try:
            client = self.client(repository)
        except PortscanError as exc:
            return None, str(exc), []
        try:
            listed = sorted(set(list_tags(client, self.page_size)))
        except ImageNotFoundError:  # in the catalog, so there: docker-registry's "no tags"
            listed = []
        except PortscanError as exc:
            client.close()
            return None, str(exc), []
        policy = self.selection.tags
        candidates = policy.candidates(listed)
        reason = policy.left_out()
        left = [Skipped(f"{repository}:{t}", reason) for t in listed if t not in candidates]
        return client, candidates, left


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

    def resolve(job: tuple[RegistryClient, str]) -> FoundImage | Skipped | PortscanError:
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
            repositories = walker.repositories(result.skipped)
            jobs: list[tuple[RegistryClient, str]] = []
            for repository, (client, tags, left) in zip(
                repositories, pool.map(walker.tags, repositories), strict=True
            ):
                if client is None:
                    result.failed[f"{repository}:*"] = str(tags)
                    continue
                clients.append(client)
                if not tags and not left:
                    result.skipped.append(Skipped(repository, "no tags"))
                elif not tags:
                    result.skipped.append(
                        Skipped(repository, f"no tag matches --tags {selection.tags}")
                    )
                result.skipped.extend(left)
                jobs.extend((client, tag) for tag in tags)
            by_repository: dict[str, list[FoundImage]] = {}
            for (client, tag), outcome in zip(jobs, pool.map(resolve, jobs), strict=True):
                if isinstance(outcome, PortscanError):
                    result.failed[f"{client.repository}:{tag}"] = str(outcome)
                elif isinstance(outcome, Skipped):
                    result.skipped.append(outcome)
                else:
                    by_repository.setdefault(client.repository, []).append(outcome)
        finally:
            for client in clients:
                client.close()
    for repository in sorted(by_repository):
        found_here = by_repository[repository]
        kept = selection.tags.choose(found_here)
        result.images.extend(kept)
        result.skipped.extend(selection.tags.not_chosen(found_here, kept))
    return result


# --------------------------------------------------------------------------- references


@dataclass(frozen=True)
class ReferenceList:
    """Images named one by one (`--images-from FILE`), on any number of registries:
    no catalog needed. A reference without a tag follows the tag policy."""

    source: str  # the file, absolute: the audit's identity in the store
    references: tuple[tuple[str, str], ...]  # (where in the file, reference)
    tags: TagPolicy = field(default_factory=TagPolicy)
    platform: Platform = field(default_factory=Platform)

    @property
    def registry(self) -> str:
        """The audit's name in the store, where a registry audit has its host."""
        return f"images-from:{self.source}"

    def to_dict(self) -> dict[str, Any]:
        return {"images_from": self.source, "tags": str(self.tags), "platform": str(self.platform)}


def _yaml_images(node: Any) -> Iterable[str]:
    """Every string value of an `image` key, at any depth (Kubernetes, compose)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "image" and isinstance(value, str):
                yield value
            else:
                yield from _yaml_images(value)
    elif isinstance(node, list):
        for item in node:
            yield from _yaml_images(item)


def read_references(path: str, text: str) -> list[tuple[str, str]]:
    """(where, reference) pairs from a reference list: one reference a line (`#` starts
    a comment, blank lines are ignored), or a YAML file (Kubernetes manifests, several
    documents allowed, or a docker-compose file) whose `image:` values are taken. A file
    is YAML when its name ends in .yaml/.yml or a line reads `image: ...`."""
    if path.endswith((".yaml", ".yml")) or _IMAGE_LINE.search(text):
        import yaml

        try:
            documents = list(yaml.safe_load_all(text))
        except yaml.YAMLError as exc:
            raise UsageError(f"{path}: not valid YAML: {exc}") from None
        found = [value.strip() for doc in documents for value in _yaml_images(doc)]
        return [(f"{path}: image {value!r}", value) for value in found if value]
    pairs = []
    for number, line in enumerate(text.splitlines(), 1):
        reference = line.split("#", 1)[0].strip()
        if reference:
            pairs.append((f"{path}:{number}", reference))
    return pairs


def _has_tag(ref: ImageRef) -> bool:
    """Whether the reference spells a tag or a digest (parse_reference adds `latest`)."""
    if ref.digest:
        return True
    text = ref.original.partition(":")[2] if ref.explicit_kind else ref.original
    return text.rfind(":") > text.rfind("/")


def discover_references(
    references: ReferenceList,
    options: SourceOptions,
    page_size: int = DEFAULT_PAGE_SIZE,
    threads: int = 8,
    found: Callable[[int], None] | None = None,
) -> Discovery:
    """Resolve every reference as `discover` resolves a catalog's tags. Images are named
    `registry/repository:tag` (or `@digest`); a reference that cannot be read is a
    failure, one that is not a registry image is skipped, with the reason."""
    result = Discovery()
    policy = references.tags
    jobs: dict[str, tuple[ImageRef, bool]] = {}  # what is named -> reference, tagged
    for where, text in references.references:
        try:
            ref = parse_reference(text)
        except UsageError as exc:
            result.skipped.append(Skipped(text, f"{where}: not an image reference ({exc})"))
            continue
        if ref.kind is not SourceKind.REGISTRY or not ref.registry or not ref.repository:
            result.skipped.append(Skipped(text, f"{where}: not a registry image"))
            continue
        tagged = _has_tag(ref)
        key = f"{ref.registry}/{ref.repository}"
        if tagged:
            key += f"@{ref.digest}" if ref.digest else f":{ref.tag}"
        jobs.setdefault(key, (ref, tagged))
    walkers = {
        registry: Walker(
            Selection(registry, tags=policy, platform=references.platform), options, page_size
        )
        for registry in sorted({ref.registry for ref, _ in jobs.values() if ref.registry})
    }

    def run(job: tuple[ImageRef, bool]) -> Discovery:
        ref, tagged = job
        assert ref.registry and ref.repository
        walker, base, out = walkers[ref.registry], f"{ref.registry}/{ref.repository}", Discovery()
        wanted = ref.digest or ref.tag or "latest"
        label = f"{base}{'@' if ':' in wanted else ':'}{wanted}" if tagged else f"{base}:*"
        try:
            client = walker.client(ref.repository)
        except PortscanError as exc:
            out.failed[label] = str(exc)
            return out
        try:
            if tagged:
                tags = [wanted]
            else:
                listed = sorted(set(list_tags(client, page_size)))
                tags = policy.candidates(listed)
                if not listed:
                    out.skipped.append(Skipped(base, "no tags"))
                elif not tags:
                    out.skipped.append(Skipped(base, f"no tag matches --tags {policy}"))
                reason = policy.left_out()
                out.skipped += [Skipped(f"{base}:{t}", reason) for t in listed if t not in tags]
            here: list[FoundImage] = []
            for tag in tags:
                try:
                    outcome = walker.resolve(client, tag, qualified=True)
                except PortscanError as exc:
                    out.failed[f"{base}{'@' if ':' in tag else ':'}{tag}"] = str(exc)
                    continue
                if found:
                    found(1)
                if isinstance(outcome, Skipped):
                    out.skipped.append(outcome)
                else:
                    here.append(outcome)
            kept = here if tagged else policy.choose(here)
            out.images = kept
            if not tagged:
                out.skipped += policy.not_chosen(here, kept)
        except PortscanError as exc:
            out.failed[label] = str(exc)
        finally:
            client.close()
        return out

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for part in pool.map(run, list(jobs.values())):
            result.images.extend(part.images)
            result.skipped.extend(part.skipped)
            result.failed.update(part.failed)
    return result
