"""Registry walking without a registry: Link headers, selections, tag policies."""

from __future__ import annotations

import json

import httpx
import pytest

from portscan.audit.discover import (
    FoundImage,
    Selection,
    TagPolicy,
    created_of,
    next_page,
    parse_target,
)
from portscan.errors import UsageError
from portscan.model import ImageConfig, ImageMeta, Platform, SourceKind


def response(*links: str) -> httpx.Response:
    return httpx.Response(200, headers=[("Link", link) for link in links])


def test_next_page_reads_relative_and_absolute_links() -> None:
    assert next_page(response('</v2/_catalog?last=b&n=2>; rel="next"')) == "/v2/_catalog?last=b&n=2"
    absolute = '<https://r.example/v2/x/tags/list?n=50&last=v9>; rel="next"'
    assert next_page(response(absolute)) == "/v2/x/tags/list?n=50&last=v9"
    assert next_page(response('</v2/_catalog?last=a>; rel="prev"')) is None
    two = '</v2/_catalog?last=a>; rel="prev", </v2/_catalog?last=z&n=2>; rel=next'
    assert next_page(response(two)) == "/v2/_catalog?last=z&n=2"
    assert next_page(response()) is None


def test_parse_target() -> None:
    assert parse_target("127.0.0.1:5000") == ("127.0.0.1:5000", "")
    assert parse_target("registry.example/team/apps/") == ("registry.example", "team/apps")
    for bad in ("https://registry.example", "", "/prefix", "a b"):
        with pytest.raises(UsageError):
            parse_target(bad)


def test_selection_prefix_and_globs() -> None:
    selection = Selection("r", prefix="team", include=("team/*",), exclude=("*-test",))
    assert selection.wants("team/api")
    assert not selection.wants("teamwork/api")  # the prefix is a path, not a string prefix
    assert not selection.wants("team/api-test")
    assert not selection.wants("other/api")
    assert Selection("r").wants("anything/at/all")
    assert Selection("r", prefix="team").wants("team")


def test_tag_policies_parse_and_name_themselves() -> None:
    for text in ("latest", "all", "newest:3"):
        assert str(TagPolicy.parse(text)) == text
    for bad in ("newest", "newest:0", "newest:-1", "some", "newest:x"):
        with pytest.raises(UsageError, match="--tags"):
            TagPolicy.parse(bad)
    tags = ["v2", "latest", "v1", "v2"]
    assert TagPolicy.parse("latest").candidates(tags) == ["latest"]
    assert TagPolicy.parse("all").candidates(tags) == ["latest", "v1", "v2"]
    assert TagPolicy.parse("newest:1").candidates(tags) == ["latest", "v1", "v2"]


def found(tag: str, digest: str, created: str | None) -> FoundImage:
    meta = ImageMeta(f"r/x:{tag}", SourceKind.REGISTRY, digest, Platform(), ImageConfig())
    return FoundImage("x", tag, digest, meta, created)


def test_newest_counts_distinct_images_and_keeps_all_their_tags() -> None:
    images = [
        found("1.0", "sha256:a", "2023-01-01T00:00:00Z"),
        found("1.1", "sha256:b", "2024-01-01T00:00:00Z"),
        found("latest", "sha256:c", "2025-01-01T00:00:00Z"),
        found("1.2", "sha256:c", "2025-01-01T00:00:00Z"),
        found("undated", "sha256:d", None),
    ]
    kept = TagPolicy.parse("newest:2").choose(images)
    assert [image.tag for image in kept] == ["1.1", "latest", "1.2"]
    assert TagPolicy.parse("all").choose(images) == images


def test_created_of_prefers_the_config_then_history() -> None:
    assert created_of(json.dumps({"created": "2025-01-01T00:00:00Z"}).encode()) == (
        "2025-01-01T00:00:00Z"
    )
    history = {
        "history": [{"created": "2023-01-01T00:00:00Z"}, {"created": "2024-06-01T00:00:00Z"}]
    }
    assert created_of(json.dumps(history).encode()) == "2024-06-01T00:00:00Z"
    assert created_of(b"{}") is None and created_of(b"not json") is None
