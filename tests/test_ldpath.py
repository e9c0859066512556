"""Library resolution as ld.so does it, on trees merged from real layers."""

from __future__ import annotations

import io

from portscan.graph.ldpath import (
    LoaderContext,
    expand,
    find_library,
    loader_context,
    read_ld_so_conf,
    search_dirs,
)
from portscan.inspect import keep
from portscan.layers import Tree, merge_layers, read_layer
from portscan.model import LayerDescriptor
from tests import imagebuild as ib


def tree_of(*layers: list[ib.Entry]) -> Tree:
    image = ib.Image(list(layers))
    results = [
        read_layer(
            io.BytesIO(blob.data), LayerDescriptor(blob.digest, len(blob.data), "gzip"), keep
        )
        for blob in image.layer_blobs
    ]
    return merge_layers(results)


def always(_: str) -> bool:
    return True


def test_ld_so_conf_follows_includes_and_ignores_comments() -> None:
    tree = tree_of(
        [
            ib.file("etc/ld.so.conf", "include /etc/ld.so.conf.d/*.conf\n/opt/direct\n"),
            ib.file(
                "etc/ld.so.conf.d/x86_64-linux-gnu.conf", "# multiarch\n/lib/x86_64-linux-gnu\n"
            ),
            ib.file("etc/ld.so.conf.d/libc.conf", "/usr/local/lib\n"),
            ib.file("etc/ld.so.conf.d/README", "/not/included\n"),
        ]
    )
    assert read_ld_so_conf(tree) == ["/usr/local/lib", "/lib/x86_64-linux-gnu", "/opt/direct"]


def test_search_order_rpath_before_env_runpath_after() -> None:
    context = LoaderContext(ld_library_path=["/env"], cache_dirs=["/cache"])
    with_rpath = search_dirs("/app/bin/tool", ["$ORIGIN/../lib"], [], [], context)
    assert with_rpath[:3] == ["/app/lib", "/env", "/cache"]
    with_runpath = search_dirs("/app/bin/tool", ["/ignored"], ["${ORIGIN}/rt"], [], context)
    assert with_runpath[:3] == ["/env", "/app/bin/rt", "/cache"]
    assert "/ignored" not in with_runpath


def test_loader_rpath_applies_only_without_runpath() -> None:
    context = LoaderContext()
    loaders = [("/usr/bin/exe", ["$ORIGIN/../private"])]
    assert "/usr/private" in search_dirs("/usr/lib/liba.so", [], [], loaders, context)
    assert "/usr/private" not in search_dirs("/usr/lib/liba.so", [], ["/x"], loaders, context)


def test_expand_tokens() -> None:
    context = LoaderContext(lib_token="lib64", platform_token="x86_64")
    assert expand("$ORIGIN/../$LIB/${PLATFORM}", "/opt/app/bin", context) == "/opt/app/lib64/x86_64"


def test_find_library_follows_symlinks_and_skips_incompatible(native_bins) -> None:
    tree = tree_of(
        [
            ib.file("usr/lib/libgreet.so.1", native_bins["libgreet.so.1"], 0o755),
            ib.symlink("lib/libgreet.so.1", "../usr/lib/libgreet.so.1"),
            ib.file("opt/wrong/libgreet.so.1", b"not an elf"),
        ]
    )
    found = find_library(tree, "libgreet.so.1", ["/opt/wrong", "/lib"], lambda p: "wrong" not in p)
    assert found == "/usr/lib/libgreet.so.1"
    assert find_library(tree, "libmissing.so", ["/lib", "/usr/lib"], always) is None


def test_musl_context_reads_path_file() -> None:
    tree = tree_of([ib.file("etc/ld-musl-x86_64.path", "/lib:/usr/lib\n/opt/lib\n")])
    context = loader_context(tree, {"LD_LIBRARY_PATH": "/a:/b"}, 64, "x86_64", "musl")
    assert context.cache_dirs == ["/lib", "/usr/lib", "/opt/lib"]
    assert context.ld_library_path == ["/a", "/b"]
    assert context.default_dirs == ()
