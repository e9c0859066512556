"""Manifest and index parsing, platform choice and config pairing, on hand-made documents."""

from __future__ import annotations

import hashlib
import json

import pytest

from portscan.errors import CorruptImageError, PlatformNotFoundError
from portscan.model import Platform, SourceKind
from portscan.sources.manifests import (
    ACCEPT,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    ImageIndex,
    ImageManifest,
    build_meta,
    choose_platform,
    parse_document,
    resolve_manifest,
    verify_digest,
)
from tests import imagebuild as ib

IMAGE = ib.Image([[ib.file("a", "1")], [ib.file("b", "2")]], architecture="arm", variant="v7")


def _doc(**fields: object) -> bytes:
    return json.dumps(fields).encode()


def _entry(arch: str, variant: str | None = None, **extra: object) -> dict[str, object]:
    platform = {"os": "linux", "architecture": arch} | ({"variant": variant} if variant else {})
    digest = "sha256:" + hashlib.sha256(f"{arch}{variant}".encode()).hexdigest()
    return {"mediaType": OCI_MANIFEST, "digest": digest, "size": 1, "platform": platform, **extra}


def _index(*entries: dict[str, object]) -> ImageIndex:
    document = parse_document(_doc(schemaVersion=2, manifests=list(entries)), OCI_INDEX, "t")
    assert isinstance(document, ImageIndex)
    return document


# --------------------------------------------------------------------------- parsing


def test_accept_names_all_four_types() -> None:
    for media_type in (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST):
        assert media_type in ACCEPT.split(", ")


def test_image_manifest() -> None:
    manifest = parse_document(IMAGE.manifest_blob.data, None, "t")
    assert isinstance(manifest, ImageManifest)
    assert manifest.media_type == OCI_MANIFEST
    assert manifest.config.digest == IMAGE.config_blob.digest
    assert [d.digest for d in manifest.layers] == [b.digest for b in IMAGE.layer_blobs]


@pytest.mark.parametrize(
    ("transport_type", "expected"),
    [(None, OCI_MANIFEST), (DOCKER_MANIFEST, DOCKER_MANIFEST), ("application/json", OCI_MANIFEST)],
)
def test_manifest_without_media_type(transport_type: str | None, expected: str) -> None:
    """umoci leaves `mediaType` out: the transport's type wins, else the shape decides."""
    body = json.loads(IMAGE.manifest_blob.data)
    del body["mediaType"]
    manifest = parse_document(json.dumps(body).encode(), transport_type, "t")
    assert isinstance(manifest, ImageManifest) and manifest.media_type == expected


def test_index_without_media_type_is_sniffed() -> None:
    index = parse_document(_doc(schemaVersion=2, manifests=[_entry("amd64")]), None, "t")
    assert isinstance(index, ImageIndex) and index.manifests[0].platform == Platform()


@pytest.mark.parametrize(
    ("data", "transport_type"),
    [
        (_doc(schemaVersion=1, name="x", fsLayers=[]), None),
        (_doc(signatures=[]), "application/vnd.docker.distribution.manifest.v1+prettyjws"),
    ],
)
def test_schema1_is_refused_with_advice(data: bytes, transport_type: str | None) -> None:
    with pytest.raises(CorruptImageError, match="schema 1 manifests are not supported, re-push"):
        parse_document(data, transport_type, "t")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00not json", "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (_doc(schemaVersion=2, mediaType=OCI_MANIFEST, layers=[]), "no config or layers"),
        (_doc(schemaVersion=2, mediaType=OCI_INDEX, manifests={}), "no manifests list"),
        (_doc(mediaType="application/vnd.oci.artifact.manifest.v1+json"), "unsupported manifest"),
        (
            _doc(mediaType=OCI_INDEX, manifests=[{"digest": "sha256:../../etc/passwd", "size": 1}]),
            "invalid digest",
        ),
        (
            _doc(mediaType=OCI_INDEX, manifests=[{"digest": "sha256:" + "a" * 64, "size": "1"}]),
            "size",
        ),
    ],
)
def test_malformed_documents(data: bytes, message: str) -> None:
    with pytest.raises(CorruptImageError, match=message):
        parse_document(data, None, "t")


def test_verify_digest() -> None:
    verify_digest(b"abc", ib.sha256(b"abc"), "blob")
    verify_digest(b"abc", "sha512:" + hashlib.sha512(b"abc").hexdigest(), "blob")
    with pytest.raises(CorruptImageError, match="does not match its digest"):
        verify_digest(b"abd", ib.sha256(b"abc"), "blob")
    with pytest.raises(CorruptImageError, match=r"blob md5:9001.* verifies sha256 and sha512 only"):
        verify_digest(b"abc", "md5:900150983cd24fb0d6963f7d28e17f72", "blob")


# --------------------------------------------------------------------------- platforms


def test_choose_platform_by_arch_and_variant() -> None:
    index = _index(_entry("amd64"), _entry("arm", "v6"), _entry("arm", "v7"), _entry("arm64"))
    assert choose_platform(index, Platform(), "t").platform == Platform()
    arm7 = choose_platform(index, Platform.parse("linux/arm/v7"), "t")
    assert arm7.platform == Platform("linux", "arm", "v7")
    # arm64 without a variant is arm64/v8, as containerd normalises it
    arm64 = choose_platform(index, Platform.parse("linux/arm64/v8"), "t")
    assert arm64.platform == Platform("linux", "arm64")


def test_wrong_platform_lists_what_there_is_without_attestations() -> None:
    attestation = _entry(
        "unknown", annotations={"vnd.docker.reference.type": "attestation-manifest"}
    )
    attestation["platform"] = {"os": "unknown", "architecture": "unknown"}
    index = _index(_entry("arm64", "v8"), _entry("amd64"), attestation)
    with pytest.raises(PlatformNotFoundError) as caught:
        choose_platform(index, Platform.parse("linux/s390x"), "img")
    assert str(caught.value) == (
        "img has no image for platform linux/s390x; it has linux/amd64, linux/arm64/v8 "
        "(pass --platform with one of those)"
    )


def test_resolve_follows_nested_indexes_and_stops_on_cycles() -> None:
    inner = _doc(schemaVersion=2, mediaType=OCI_INDEX, manifests=[_entry("amd64")])
    inner_digest = ib.sha256(inner)
    nested = {"mediaType": OCI_INDEX, "digest": inner_digest, "size": len(inner)}
    outer = _index(nested)
    fetched: list[str] = []

    def fetch(descriptor: Descriptor) -> bytes:
        fetched.append(descriptor.digest)
        return inner if descriptor.digest == inner_digest else IMAGE.manifest_blob.data

    manifest, digest, claimed = resolve_manifest(outer, "sha256:top", fetch, Platform(), "t")
    assert isinstance(manifest, ImageManifest)
    assert fetched == [inner_digest, _entry("amd64")["digest"]]
    assert digest == _entry("amd64")["digest"] and claimed == Platform()

    def loop(descriptor: Descriptor) -> bytes:
        return _doc(schemaVersion=2, mediaType=OCI_INDEX, manifests=[nested])

    with pytest.raises(CorruptImageError, match="nest deeper"):
        resolve_manifest(outer, "sha256:top", loop, Platform(), "t")


# --------------------------------------------------------------------------- config


def _manifest(image: ib.Image) -> ImageManifest:
    manifest = parse_document(image.manifest_blob.data, None, "t")
    assert isinstance(manifest, ImageManifest)
    return manifest


def test_build_meta_pairs_layers_with_diff_ids() -> None:
    meta = build_meta(
        _manifest(IMAGE), "sha256:m", IMAGE.config_blob.data, "ref", SourceKind.OCI, Platform()
    )
    assert meta.digest == "sha256:m" and meta.reference == "ref"
    assert meta.platform == Platform("linux", "arm", "v7")  # the config's, not the fallback
    expected = zip(IMAGE.layer_blobs, IMAGE.layer_tars, strict=True)
    assert [(d.digest, d.diff_id) for d in meta.layers] == [
        (blob.digest, ib.sha256(tar)) for blob, tar in expected
    ]


def test_build_meta_refusals() -> None:
    manifest = _manifest(IMAGE)
    with pytest.raises(CorruptImageError, match="config blob does not match"):
        build_meta(manifest, "d", IMAGE.config_blob.data + b" ", "r", SourceKind.OCI, Platform())

    config = json.loads(IMAGE.config_blob.data)
    config["rootfs"]["diff_ids"].pop()
    short = ib.Blob(ib.OCI_CONFIG, json.dumps(config).encode())
    body = json.loads(IMAGE.manifest_blob.data) | {"config": short.descriptor()}
    lopsided = parse_document(json.dumps(body).encode(), None, "t")
    assert isinstance(lopsided, ImageManifest)
    with pytest.raises(CorruptImageError, match="2 layers but the config has 1 diff_ids"):
        build_meta(lopsided, "d", short.data, "r", SourceKind.OCI, Platform())

    helm = ib.Blob("application/vnd.cncf.helm.config.v1+json", b"{}")
    body = json.loads(IMAGE.manifest_blob.data) | {"config": helm.descriptor()}
    artifact = parse_document(json.dumps(body).encode(), None, "t")
    assert isinstance(artifact, ImageManifest)
    with pytest.raises(CorruptImageError, match="not a container image"):
        build_meta(artifact, "d", helm.data, "r", SourceKind.OCI, Platform())
