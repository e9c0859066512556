"""`dir:PATH`: an unpacked tree read as one layer, through the same layer reader."""

from __future__ import annotations

import io
import os
import socket
from pathlib import Path

import pytest

from portscan.errors import ImageNotFoundError, UsageError
from portscan.layers import merge_layers, read_layer
from portscan.model import FileKind, ImageConfig, LayerDescriptor, Platform, SourceKind
from portscan.sources import SourceOptions, open_image
from portscan.sources.base import ImageSource
from portscan.sources.refs import parse_reference
from portscan.sources.rootfs import MEDIA_TYPE, RootfsImageSource
from tests import imagebuild as ib
from tests.test_archive import Recorder
from tests.test_layers import HeadAnalyser, read_all, scan, snapshot

ELF = b"\x7fELF\x02\x01\x01" + bytes(200)
LONG = "/".join(["a-rather-long-directory-name"] * 5) + "/file-past-the-ustar-name-limit"

# The tree written to disk below, as the equivalent single layer.
ENTRIES = [
    ib.directory("bin-real", 0o755),
    ib.file("bin-real/prog", ELF, 0o755),
    ib.Entry("bin-real/prog-again", "hardlink", mode=0o755, target="bin-real/prog"),
    ib.file("bin-real/run.sh", "#!/bin/sh\nexec /bin/prog\n", 0o750),
    ib.symlink("bin", "bin-real"),
    ib.symlink("evil", "../../../../etc"),
    ib.symlink("hostusr", "/usr"),
    ib.directory("etc", 0o700),
    ib.file("etc/app.conf", "x=1\n", 0o600),
    ib.directory("a-rather-long-directory-name"),
    *[ib.directory("/".join(["a-rather-long-directory-name"] * n)) for n in range(2, 6)],
    ib.file(LONG, "deep"),
    ib.directory("empty"),
]


def make_tree(root: Path) -> Path:
    """Write ENTRIES to disk under `root`, modes exactly as listed."""
    root.mkdir()
    for entry in ENTRIES:
        path = root / entry.name
        if entry.kind == "dir":
            path.mkdir(exist_ok=True)
            path.chmod(entry.mode)
        elif entry.kind == "file":
            path.write_bytes(entry.data)
            path.chmod(entry.mode)
        elif entry.kind == "symlink":
            path.symlink_to(entry.target)
        elif entry.kind == "hardlink":
            os.link(root / entry.target, path)
    return root


def rootfs(path: Path, platform: Platform | None = None) -> ImageSource:
    options = SourceOptions(platform=platform) if platform else SourceOptions()
    return open_image(parse_reference(f"dir:{path}"), options)


def without_owner(snap: dict[str, tuple[object, ...]]) -> dict[str, tuple[object, ...]]:
    """Owners are whoever ran the test; the layer tar says root."""
    return {path: (*values[:5], *values[7:]) for path, values in snap.items()}


def test_directory_reads_as_the_equivalent_layer(tmp_path: Path) -> None:
    source = rootfs(make_tree(tmp_path / "root"))
    assert isinstance(source, RootfsImageSource)
    _, tree = scan(source)
    tar = ib.layer_tar(ENTRIES)
    descriptor = LayerDescriptor(ib.sha256(tar), len(tar), MEDIA_TYPE)
    expected = merge_layers([read_all(io.BytesIO(tar), descriptor)])
    assert without_owner(snapshot(tree)) == without_owner(snapshot(expected))
    assert tree.get("/bin-real/prog-again").kind is FileKind.HARDLINK
    assert tree.get("/bin-real/prog-again").link_target == "/bin-real/prog"


def test_symlinks_are_recorded_never_followed(tmp_path: Path) -> None:
    _, tree = scan(rootfs(make_tree(tmp_path / "root")))
    assert tree.get("/evil").link_target == "../../../../etc"
    assert tree.get("/hostusr").link_target == "/usr"
    assert tree.resolve("/hostusr") is None  # the image has no /usr
    assert not [p for p in snapshot(tree) if p.startswith(("/hostusr/", "/evil/", "/usr"))]
    assert tree.read("/bin/run.sh") == b"#!/bin/sh\nexec /bin/prog\n"  # inside: resolved


def test_meta_and_layer_digest(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "root")
    arm = Platform("linux", "arm64", "v8")
    recorder = Recorder()
    with rootfs(root, arm) as source:
        meta, results = source.read_layers(read_all, recorder)
    assert (meta.source, meta.digest, meta.platform, meta.config) == (
        SourceKind.DIR,
        None,
        arm,
        ImageConfig(),
    )
    assert meta.reference == f"dir:{root}"
    [layer] = meta.layers
    assert layer.digest.startswith("sha256:") and layer.digest == layer.diff_id
    assert results[0].digest == layer.digest and layer.size > 0
    kinds = [kind for kind, _, _ in recorder.events]
    assert kinds[0] == "started" and kinds[-1] == "finished"
    assert sum(n for _, _, n in recorder.events) == layer.size
    assert recorder.events[0][1].digest == f"dir:{root}"

    again, _ = rootfs(root, arm).read_layers(read_all)
    assert again.layers == meta.layers  # same contents, same digest
    (root / "etc" / "app.conf").write_text("x=2\n")
    changed, _ = rootfs(root, arm).read_layers(read_all)
    assert changed.layers[0].digest != layer.digest


def test_keep_policy_and_analysers_apply_as_for_any_layer(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "root")

    def reader(blob, descriptor, progress):  # type: ignore[no-untyped-def]
        keep = lambda path, head: head.startswith((b"\x7fELF", b"#!"))  # noqa: E731
        return read_layer(blob, descriptor, keep, analysers=[HeadAnalyser()], progress=progress)

    _, tree = scan(rootfs(root), reader)
    assert tree.get("/bin-real/prog").facts == {"elf-size": len(ELF)}
    assert tree.get("/bin-real/prog").data == ELF
    assert tree.read("/bin/run.sh") is not None  # shebang: kept
    assert tree.get("/etc/app.conf").data is None  # plain config: not kept


@pytest.mark.timeout(30)  # opening a FIFO for reading would block forever
def test_special_files_non_utf8_names_and_sockets(tmp_path: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    os.mkfifo(root / "fifo")
    (root / "other").mkdir()
    Path(os.fsdecode(bytes(root) + b"/caf\xe9")).write_bytes(b"latin-1 name")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(root / "s"))
        _, results = rootfs(root).read_layers(read_all)
    tree = merge_layers(results)
    assert tree.get("/fifo").kind is FileKind.FIFO
    assert tree.read("/caf\\xe9") == b"latin-1 name"  # bytes that are not UTF-8: \xNN
    assert "/s" not in tree
    assert results[0].skipped == ["/s: socket or unknown file type"]
    assert tree.get("/other").kind is FileKind.DIR


def test_walk_writes_nothing(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "root")
    before = sorted((str(p), p.lstat().st_mtime_ns) for p in tmp_path.rglob("*"))
    scan(rootfs(root))
    assert sorted((str(p), p.lstat().st_mtime_ns) for p in tmp_path.rglob("*")) == before


def test_missing_path_and_file_path(tmp_path: Path) -> None:
    with pytest.raises(ImageNotFoundError, match="no directory"):
        rootfs(tmp_path / "absent")
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="not a directory") as caught:
        rootfs(tmp_path / "file")
    assert caught.value.hint and "docker-archive:" in caught.value.hint
