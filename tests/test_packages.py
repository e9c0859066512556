"""Package catalogers on real metadata: this machine's dpkg database, an rpmdb built
by rpm, real dist-info and package.json files, jars built with the JDK's `jar`."""

from __future__ import annotations

import importlib.metadata
import io
import os
import shutil
import sqlite3
import subprocess
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import quote

import pytest

from portscan.inspect.elf.worker import ElfAnalyser
from portscan.inspect.packages import CATALOGERS, catalog, needs_bytes, purl
from portscan.inspect.packages.base import GlobSet, glob_regex
from portscan.layers import Analyser, Tree, merge_layers, read_layer
from portscan.model import LayerDescriptor
from tests import imagebuild as ib

FIXTURES = Path(__file__).parent / "fixtures"
DEBIAN_OS_RELEASE = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'


def keep_catalogued(path: str, head: bytes) -> bool:
    return needs_bytes(path)


def tree_from(
    *layers: list[ib.Entry],
    keep: Callable[[str, bytes], bool] = keep_catalogued,
    analysers: Sequence[Analyser] = (),
) -> Tree:
    """Stream real layer tars through read_layer and merge them, as a scan does."""
    results = []
    for entries in layers:
        blob = ib.layer_tar(entries)
        descriptor = LayerDescriptor(ib.sha256(blob), len(blob), ib.OCI_LAYER_TAR)
        results.append(read_layer(io.BytesIO(blob), descriptor, keep=keep, analysers=analysers))
    return merge_layers(results)


def dir_entries(root: Path, under: str) -> list[ib.Entry]:
    """Every file below `root`, placed below `under` in the image."""
    return [
        ib.file(f"{under}/{p.relative_to(root)}".lstrip("/"), p.read_bytes())
        for p in sorted(root.rglob("*"))
        if p.is_file()
    ]


# --------------------------------------------------------------------------- dpkg

HOST_PACKAGES = ("adduser", "bash", "libc6", "sed")  # arch all, plain, multi-arch, plain
USRMERGE = [ib.symlink(name, f"usr/{name}") for name in ("bin", "lib", "lib64", "sbin")]


def host_list(name: str) -> Path:
    info = Path("/var/lib/dpkg/info")
    multiarch = sorted(info.glob(f"{name}:*.list"))
    return multiarch[0] if multiarch else info / f"{name}.list"


def host_canonical(listed: str) -> str | None:
    """Where the host's own filesystem puts a listed path (the oracle for ownership)."""
    parent, base = os.path.split(listed)
    real = os.path.join(os.path.realpath(parent), base)
    if not os.path.lexists(real) or os.path.isdir(real):  # a directory, or a symlink to one
        return None
    return real


def host_file_entries(listed: list[str], skip: tuple[str, ...] = ()) -> list[ib.Entry]:
    """Empty stand-ins for the host files behind `listed` (symlinks as symlinks)."""
    entries = []
    for path in listed:
        real = host_canonical(path)
        if real is None or real.startswith(skip):
            continue
        if os.path.islink(real):
            entries.append(ib.symlink(real.lstrip("/"), os.readlink(real)))
        else:
            entries.append(ib.file(real.lstrip("/"), b""))
    return entries


def host_paragraph(name: str) -> str:
    status = Path("/var/lib/dpkg/status").read_text()
    return next(p for p in status.split("\n\n") if p.startswith(f"Package: {name}\n"))


def host_conffiles(paragraph: str) -> list[str]:
    lines = paragraph.split("\n")
    if "Conffiles:" not in lines:
        return []
    start = lines.index("Conffiles:") + 1
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith(" ")), len(lines))
    return [line.split()[0] for line in lines[start:end]]


def dpkg_query(names: tuple[str, ...]) -> dict[str, tuple[str, str]]:
    if shutil.which("dpkg-query") is None:
        pytest.fail("dpkg-query is required (this suite runs on Debian)")
    out = subprocess.run(
        ["dpkg-query", "-W", "-f=${Package}\t${Version}\t${Architecture}\n", *names],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {n: (v, a) for n, v, a in (line.split("\t") for line in out.splitlines())}


@pytest.fixture(scope="module")
def host_dpkg() -> dict[str, object]:
    """A two-layer image: the host's status paragraphs, .list files and copyright
    files for HOST_PACKAGES (base layer), the files they list (top layer)."""
    wanted = [host_paragraph(name) for name in HOST_PACKAGES]
    lists = {name: host_list(name) for name in HOST_PACKAGES}
    listed = {name: path.read_text().splitlines() for name, path in lists.items()}
    base = [
        *USRMERGE,
        ib.file("etc/os-release", DEBIAN_OS_RELEASE),
        ib.file("var/lib/dpkg/status", "\n\n".join(wanted) + "\n"),
        *(ib.file(str(p).lstrip("/"), p.read_bytes()) for p in lists.values()),
        *(
            ib.file(
                f"usr/share/doc/{n}/copyright", Path(f"/usr/share/doc/{n}/copyright").read_bytes()
            )
            for n in HOST_PACKAGES
        ),
    ]
    everything = sorted({p for paths in listed.values() for p in paths})
    copyrights = tuple(f"/usr/share/doc/{n}/copyright" for n in HOST_PACKAGES)
    files = host_file_entries(everything, skip=copyrights)  # the base layer has the real ones
    return {"tree": tree_from(base, files), "listed": listed, "lists": lists}


def test_dpkg_matches_dpkg_query_and_owns_listed_files(host_dpkg: dict) -> None:
    inventory = catalog(host_dpkg["tree"])
    assert inventory.warnings == []
    by_name = {p.name: p for p in inventory.packages}
    assert set(by_name) == set(HOST_PACKAGES)
    for name, (version, arch) in dpkg_query(HOST_PACKAGES).items():
        package = by_name[name]
        assert (package.version, package.architecture, package.ecosystem) == (version, arch, "deb")
        assert package.purl.startswith(f"pkg:deb/debian/{name}@")
        assert f"arch={arch}" in package.purl and "distro=debian-12" in package.purl
        assert (package.source, package.layer, package.found_by) == (
            "/var/lib/dpkg/status",
            0,
            "portscan",
        )
        expected = {c for c in map(host_canonical, host_dpkg["listed"][name]) if c}
        assert set(package.files) == expected and expected
        assert all(inventory.owner_of[path] == package.purl for path in expected)
    # usrmerge: bash lists /bin/bash, the tree holds it at /usr/bin/bash
    assert "/bin/bash" in host_dpkg["listed"]["bash"]
    assert inventory.owner_of["/usr/bin/bash"] == by_name["bash"].purl
    assert "/bin/bash" not in inventory.owner_of
    # multi-arch: libc6's list is libc6:amd64.list on this machine
    assert ":" in host_dpkg["lists"]["libc6"].name
    assert "upstream=glibc" in by_name["libc6"].purl
    assert any(f.endswith("/libc.so.6") for f in by_name["libc6"].files)
    # DEP-5 copyright files give licenses; libc6's copyright is not DEP-5
    assert "GPL-2+" in by_name["adduser"].licenses and by_name["libc6"].licenses == []


def test_dpkg_whole_host_status_matches_dpkg_query() -> None:
    data = Path("/var/lib/dpkg/status").read_bytes()
    tree = tree_from([ib.file("var/lib/dpkg/status", data)])
    found = {(p.name, p.version, p.architecture) for p in catalog(tree).packages}
    out = subprocess.run(
        ["dpkg-query", "-W", "-f=${Package}\t${Version}\t${Architecture}\t${db:Status-Status}\n"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = [line.split("\t") for line in out.splitlines()]
    expected = {
        (n, v, a) for n, v, a, state in rows if state not in ("not-installed", "config-files")
    }
    assert found == expected and len(expected) > 100


def test_dpkg_distroless_status_d_with_md5sums() -> None:
    entries = [ib.file("etc/os-release", DEBIAN_OS_RELEASE), *USRMERGE]
    listed: dict[str, list[str]] = {}
    for name in ("bash", "sed"):
        paragraph = host_paragraph(name)
        md5sums = Path(f"/var/lib/dpkg/info/{name}.md5sums").read_text()
        entries += [
            ib.file(f"var/lib/dpkg/status.d/{name}", paragraph + "\n"),
            ib.file(f"var/lib/dpkg/status.d/{name}.md5sums", md5sums),
        ]
        listed[name] = ["/" + line.split("  ", 1)[1] for line in md5sums.splitlines()]
        listed[name] += host_conffiles(paragraph)
    everything = sorted({p for paths in listed.values() for p in paths})
    inventory = catalog(tree_from(entries, host_file_entries(everything)))
    assert inventory.warnings == []
    assert sorted(p.name for p in inventory.packages) == ["bash", "sed"]
    for package in inventory.packages:
        assert package.source == f"/var/lib/dpkg/status.d/{package.name}"
        expected = {c for c in map(host_canonical, listed[package.name]) if c}
        assert set(package.files) == expected
    bash = next(p for p in inventory.packages if p.name == "bash")
    assert "/etc/bash.bashrc" in bash.files  # a conffile: in Conffiles, not in md5sums


def test_dpkg_skips_removed_packages_and_reads_multiarch_lists() -> None:
    status = (
        "Package: gone\nStatus: deinstall ok config-files\nVersion: 1.0\nArchitecture: amd64\n\n"
        "Package: libfoo1\nStatus: install ok installed\nMulti-Arch: same\n"
        "Architecture: arm64\nVersion: 2.0-1\nSource: foo (2.0-0)\n"
    )
    tree = tree_from(
        [
            ib.file("var/lib/dpkg/status", status),
            ib.file("var/lib/dpkg/info/libfoo1:arm64.list", "/.\n/usr\n/usr/lib/libfoo.so.1\n"),
            ib.file("usr/lib/libfoo.so.1", b"\x7fELF"),
        ]
    )
    (package,) = catalog(tree).packages
    assert package.name == "libfoo1" and package.files == ["/usr/lib/libfoo.so.1"]
    assert package.purl == "pkg:deb/debian/libfoo1@2.0-1?arch=arm64&upstream=foo%402.0-0"


# --------------------------------------------------------------------------- apk


def test_apk_installed_database() -> None:
    # tests/fixtures/apk/installed follows the documented format (Apk_spec); see README
    tree = tree_from(
        [
            ib.file("etc/os-release", (FIXTURES / "apk/os-release").read_bytes()),
            ib.file("lib/apk/db/installed", (FIXTURES / "apk/installed").read_bytes()),
            ib.file("lib/ld-musl-x86_64.so.1", b"\x7fELF"),
            ib.symlink("lib/libc.musl-x86_64.so.1", "ld-musl-x86_64.so.1"),
            ib.file("bin/busybox", b"\x7fELF"),
            ib.symlink("bin/sh", "/bin/busybox"),
            ib.file("etc/securetty", "console\n"),
        ]
    )
    inventory = catalog(tree)
    by_name = {p.name: p for p in inventory.packages}
    assert list(by_name) == ["musl", "busybox", "busybox-binsh"]
    musl = by_name["musl"]
    assert (musl.version, musl.architecture, musl.licenses) == (
        "1.2.4_git20230717-r4",
        "x86_64",
        ["MIT"],
    )
    assert musl.purl == "pkg:apk/alpine/musl@1.2.4_git20230717-r4?arch=x86_64&distro=alpine-3.19.1"
    assert musl.files == ["/lib/ld-musl-x86_64.so.1", "/lib/libc.musl-x86_64.so.1"]
    binsh = by_name["busybox-binsh"]
    assert "upstream=busybox" in binsh.purl and binsh.files == ["/bin/sh"]
    # etc/udhcpd/udhcpd.conf is listed but absent from this tree: not owned
    assert by_name["busybox"].files == ["/bin/busybox", "/etc/securetty"]
    assert inventory.owner_of["/bin/sh"] == binsh.purl


# --------------------------------------------------------------------------- rpm

SPEC = """\
Name: portscan-hello
Version: 1.2.3
Release: 4
Epoch: 2
Summary: trivial package for portscan tests
License: MIT AND Apache-2.0
BuildArch: x86_64
%description
A trivial package.
%install
mkdir -p %{buildroot}/usr/bin %{buildroot}/usr/share/doc/portscan-hello
printf '#!/bin/sh\\necho hello\\n' > %{buildroot}/usr/bin/portscan-hello
echo doc > %{buildroot}/usr/share/doc/portscan-hello/README
%files
/usr/bin/portscan-hello
/usr/share/doc/portscan-hello/README
"""


@pytest.fixture(scope="module")
def rpmdb(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A real sqlite rpmdb: rpmbuild a package, `rpm -i --justdb` it into a new db."""
    if shutil.which("rpmbuild") is None or shutil.which("rpmdb") is None:
        pytest.fail("rpm is required to build a real rpmdb (apt-get install rpm)")
    tmp = tmp_path_factory.mktemp("rpm")
    (tmp / "hello.spec").write_text(SPEC)
    run = {"check": True, "capture_output": True, "cwd": tmp}
    subprocess.run(["rpmbuild", "--define", f"_topdir {tmp}/top", "-bb", "hello.spec"], **run)
    (package,) = (tmp / "top/RPMS").rglob("*.rpm")
    subprocess.run(["rpmdb", "--initdb", "--dbpath", str(tmp / "db")], **run)
    subprocess.run(
        ["rpm", "-i", "--justdb", "--nodeps", "--dbpath", str(tmp / "db"), str(package)], **run
    )
    return (tmp / "db/rpmdb.sqlite").read_bytes()


def test_rpm_sqlite_database(rpmdb: bytes) -> None:
    assert rpmdb[18:20] == b"\x02\x02"  # rpm leaves it in WAL mode, which the reader handles
    os_release = 'NAME="Fedora Linux"\nID=fedora\nVERSION_ID=39\n'
    tree = tree_from(
        [
            ib.file("etc/os-release", os_release),
            ib.file("usr/lib/sysimage/rpm/rpmdb.sqlite", rpmdb),
        ],
        [ib.file("usr/bin/portscan-hello", "#!/bin/sh\necho hello\n", 0o755)],
    )
    inventory = catalog(tree)
    assert inventory.warnings == []
    (package,) = inventory.packages
    assert (package.name, package.version, package.architecture) == (
        "portscan-hello",
        "2:1.2.3-4",
        "x86_64",
    )
    assert package.licenses == ["MIT AND Apache-2.0"]
    assert package.purl == (
        "pkg:rpm/fedora/portscan-hello@1.2.3-4?arch=x86_64&distro=fedora-39&epoch=2"
        "&upstream=portscan-hello-1.2.3-4.src.rpm"
    )
    assert (package.layer, package.source) == (0, "/usr/lib/sysimage/rpm/rpmdb.sqlite")
    assert package.files == ["/usr/bin/portscan-hello"]  # the README is not in this tree
    assert inventory.owner_of == {"/usr/bin/portscan-hello": package.purl}


def test_rpm_unsupported_backends_are_reported(rpmdb: bytes) -> None:
    # Berkeley DB hash database: magic 0x00061561 at offset 12 (db.h DB_HASHMAGIC)
    bdb = b"\0" * 12 + (0x00061561).to_bytes(4, "little") + b"\0" * 4080
    inventory = catalog(
        tree_from(
            [
                ib.file("var/lib/rpm/Packages", bdb),
                ib.file("usr/lib/sysimage/rpm/Packages.db", b"RpmP"),
            ]
        )
    )
    assert inventory.packages == []
    assert len(inventory.warnings) == 2
    ndb, berkeley = sorted(inventory.warnings, key=lambda w: "Berkeley" in w)
    assert (
        "Berkeley DB" in berkeley
        and "not supported" in berkeley
        and "/var/lib/rpm/Packages" in berkeley
    )
    assert "NDB" in ndb and "not supported" in ndb
    assert not needs_bytes("/var/lib/rpm/Packages")  # seen, never kept
    # beside an sqlite rpmdb, a leftover Packages file is not an error
    quiet = catalog(
        tree_from(
            [ib.file("var/lib/rpm/Packages", bdb), ib.file("var/lib/rpm/rpmdb.sqlite", rpmdb)]
        )
    )
    assert quiet.warnings == [] and [p.name for p in quiet.packages] == ["portscan-hello"]


def test_rpm_corrupt_database_is_a_warning(rpmdb: bytes) -> None:
    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob BLOB NOT NULL)")
    connection.execute("INSERT INTO Packages VALUES (1, ?)", (b"\0\0\0\x05\0\0\0\x10short",))
    connection.commit()
    broken = connection.serialize()
    inventory = catalog(tree_from([ib.file("var/lib/rpm/rpmdb.sqlite", broken)]))
    assert inventory.packages == []
    (warning,) = inventory.warnings
    assert "rpm cataloger could not parse it" in warning and "out of range" in warning


# --------------------------------------------------------------------------- python

SITE = "usr/local/lib/python3.11/site-packages"


def test_python_dist_info_from_a_real_installation() -> None:
    dist = importlib.metadata.distribution("pluggy")
    meta_dir = Path(str(dist.locate_file(""))) / f"pluggy-{dist.version}.dist-info"
    record = (meta_dir / "RECORD").read_text()
    installed = [line.split(",")[0] for line in record.splitlines() if line]
    entries = [
        ib.file(f"{SITE}/{path}", b"")
        for path in installed
        if not path.endswith(("METADATA", "RECORD"))
    ]
    entries += [
        ib.file(f"{SITE}/{meta_dir.name}/METADATA", (meta_dir / "METADATA").read_bytes()),
        ib.file(f"{SITE}/{meta_dir.name}/RECORD", record),
    ]
    inventory = catalog(tree_from(entries))
    (package,) = inventory.packages
    assert (package.name, package.version, package.ecosystem) == ("pluggy", dist.version, "python")
    assert package.purl == f"pkg:pypi/pluggy@{dist.version}"
    assert package.licenses == ["MIT"]
    assert package.source == f"/{SITE}/{meta_dir.name}/METADATA"
    assert f"/{SITE}/pluggy/__init__.py" in package.files
    assert len(package.files) == len(installed)
    assert inventory.owner_of[f"/{SITE}/pluggy/_hooks.py"] == package.purl


def test_python_egg_info_and_license_fallbacks() -> None:
    # core metadata 1.1 as setuptools writes it; the License field holds a whole text
    pkg_info = (
        "Metadata-Version: 1.1\nName: Foo_Bar\nVersion: 1.0\n"
        "License: Copyright (c) 2020\n        Permission is hereby granted...\n"
        "Classifier: License :: OSI Approved :: BSD License\n\nlong description\nLicense: no\n"
    )
    egg = "usr/lib/python3/dist-packages/Foo_Bar-1.0.egg-info"
    tree = tree_from(
        [
            ib.file(f"{egg}/PKG-INFO", pkg_info),
            ib.file(f"{egg}/installed-files.txt", "../foo_bar/__init__.py\nPKG-INFO\n"),
            ib.file("usr/lib/python3/dist-packages/foo_bar/__init__.py", b""),
            ib.file(
                "usr/lib/python3/dist-packages/single-2.0.egg-info",
                "Name: single\nVersion: 2.0\nLicense: ISC\n",
            ),
        ]
    )
    egg_pkg, single = catalog(tree).packages
    assert egg_pkg.purl == "pkg:pypi/foo-bar@1.0" and egg_pkg.licenses == ["BSD License"]
    assert egg_pkg.files == [
        "/usr/lib/python3/dist-packages/foo_bar/__init__.py",
        f"/{egg}/PKG-INFO",
    ]
    assert (single.name, single.licenses, single.files) == ("single", ["ISC"], [])


# --------------------------------------------------------------------------- node


def test_node_packages_from_real_package_json_files() -> None:
    inventory = catalog(tree_from(dir_entries(FIXTURES / "node", "")))
    by_name = {p.name: p for p in inventory.packages}
    assert sorted(by_name) == [
        "@npmcli/fs", "fixture-app", "glob", "minipass", "minipass-pipeline",
        "qrcode-terminal", "util-deprecate",
    ]  # fmt: skip  # glob/dist/esm/package.json is only {"type": "module"}
    assert by_name["@npmcli/fs"].purl == "pkg:npm/%40npmcli/fs@5.0.0"
    assert by_name["@npmcli/fs"].licenses == ["ISC"]
    assert by_name["qrcode-terminal"].licenses == ["Apache 2.0"]  # the old "licenses" list
    assert by_name["glob"].licenses == ["BlueOak-1.0.0"]
    modules = "/app/node_modules"
    assert inventory.owner_of[f"{modules}/glob/dist/esm/index.js"] == by_name["glob"].purl
    nested = f"{modules}/minipass-pipeline/node_modules/minipass/index.js"
    assert inventory.owner_of[nested] == by_name["minipass"].purl
    assert nested not in by_name["minipass-pipeline"].files
    assert by_name["fixture-app"].files == ["/app/package.json", "/app/server.js"]


# --------------------------------------------------------------------------- java

POM = "groupId=org.example\nartifactId=hello\nversion=1.0.0\n"
MANIFEST = (
    "Manifest-Version: 1.0\nImplementation-Title: hello\nImplementation-Version: 1.0.0\n"
    "Bundle-License: Apache-2.0\n"
)


@pytest.fixture(scope="module")
def hello_jar(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A jar built by the JDK's `jar` tool with a manifest and Maven metadata."""
    if shutil.which("jar") is None:
        pytest.fail("the JDK's jar tool is required (apt-get install default-jdk-headless)")
    tmp = tmp_path_factory.mktemp("jar")
    (tmp / "classes/META-INF/maven/org.example/hello").mkdir(parents=True)
    (tmp / "classes/META-INF/maven/org.example/hello/pom.properties").write_text(POM)
    (tmp / "classes/org/example").mkdir(parents=True)
    (tmp / "classes/org/example/Hello.class").write_bytes(b"\xca\xfe\xba\xbe")
    (tmp / "manifest.txt").write_text(MANIFEST)
    jar = tmp / "hello-1.0.0.jar"
    subprocess.run(
        ["jar", "cfm", str(jar), "manifest.txt", "-C", "classes", "."], cwd=tmp, check=True
    )
    return jar.read_bytes()


def zip_bytes(members: dict[str, bytes | str]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def test_java_jar_war_and_nested_jars(hello_jar: bytes) -> None:
    manifest_only = zip_bytes(
        {"META-INF/MANIFEST.MF": "Manifest-Version: 1.0\nImplementation-Version: 4.2\n"}
    )
    war = zip_bytes(
        {"WEB-INF/lib/hello-1.0.0.jar": hello_jar, "WEB-INF/lib/tool-4.2.jar": manifest_only}
    )
    tree = tree_from(
        [
            ib.file("opt/app/lib/hello-1.0.0.jar", hello_jar),
            ib.file("opt/app/lib/util-3.1.jar", zip_bytes({"a.txt": "no manifest"})),
            ib.file("srv/webapp.war", war),
            ib.file("opt/app/lib/broken.jar", b"not a zip"),
        ]
    )
    inventory = catalog(tree)
    by_source = {p.source: p for p in inventory.packages}
    hello = by_source["/opt/app/lib/hello-1.0.0.jar"]
    assert hello.purl == "pkg:maven/org.example/hello@1.0.0" and hello.licenses == ["Apache-2.0"]
    assert inventory.owner_of["/opt/app/lib/hello-1.0.0.jar"] == hello.purl
    util = by_source["/opt/app/lib/util-3.1.jar"]
    assert (util.name, util.version, util.purl) == ("util", "3.1", "pkg:maven/util@3.1")
    nested = by_source["/srv/webapp.war:WEB-INF/lib/hello-1.0.0.jar"]
    assert nested.purl == hello.purl and nested.files == []
    tool = by_source["/srv/webapp.war:WEB-INF/lib/tool-4.2.jar"]
    assert (tool.name, tool.version) == ("tool", "4.2")
    assert by_source["/srv/webapp.war"].name == "webapp"
    (warning,) = inventory.warnings
    assert warning.startswith("/opt/app/lib/broken.jar: java cataloger could not parse it")


# --------------------------------------------------------------------------- machinery


def test_globset_fast_paths_agree_with_the_glob_regex() -> None:
    patterns = [g for c in CATALOGERS for g in (*c.globs, *c.reads, *c.sees)]
    paths = [
        "/var/lib/dpkg/status", "/var/lib/dpkg/status.d/base", "/var/lib/dpkg/status.d/x.md5sums",
        "/var/lib/dpkg/info/libc6:amd64.list", "/var/lib/dpkg/info/sub/x.list",
        "/var/lib/dpkg/status-old", "/usr/share/doc/bash/copyright", "/usr/share/doc/copyright",
        "/usr/share/doc/bash/sub/copyright", "/lib/apk/db/installed", "/var/lib/rpm/Packages",
        "/usr/lib/sysimage/rpm/rpmdb.sqlite", "/x/site-packages/a-1.dist-info/METADATA",
        "/x/a.dist-info/sub/METADATA", "/a-1.egg-info", "/x/a.egg-info/PKG-INFO",
        "/app/package.json", "/app/package.json.bak", "/a/b.jar", "/a/b.jar/x", "/a/b.war",
        "/a/B.JAR", "/usr/bin/bash",
    ]  # fmt: skip
    for pattern in patterns:
        globs: GlobSet[str] = GlobSet()
        globs.add(pattern, pattern)
        regex = glob_regex(pattern)
        for path in paths:
            assert bool(globs.match(path)) == bool(regex.match(path)) == (path in globs), (
                pattern,
                path,
            )


def test_catalog_reports_bytes_the_keep_policy_dropped() -> None:
    tree = tree_from(
        [ib.file("var/lib/dpkg/status", "Package: a\nVersion: 1\n")], keep=lambda p, h: False
    )
    inventory = catalog(tree)
    assert inventory.packages == []
    assert inventory.warnings == [
        "dpkg cataloger: the bytes of 1 file(s) were not kept while the layers streamed; "
        "use a keep policy that includes packages.needs_bytes"
    ]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("deb", "curl", "7.50.3-1", "debian", {"arch": "i386", "distro": "jessie"}),
         "pkg:deb/debian/curl@7.50.3-1?arch=i386&distro=jessie"),
        (("npm", "animation", "12.3.1", "@angular"), "pkg:npm/%40angular/animation@12.3.1"),
        (("maven", "batik-anim", "1.9.1", "org.apache.xmlgraphics"),
         "pkg:maven/org.apache.xmlgraphics/batik-anim@1.9.1"),
        (("rpm", "curl", "7.50.3-1.fc25", "fedora", {"distro": "fedora-25", "arch": "i386"}),
         "pkg:rpm/fedora/curl@7.50.3-1.fc25?arch=i386&distro=fedora-25"),
        (("deb", "bsdutils", "1:2.38.1-5+deb12u3", "debian", {"upstream": "util-linux@2.38.1-5"}),
         "pkg:deb/debian/bsdutils@1:2.38.1-5%2Bdeb12u3?upstream=util-linux%402.38.1-5"),
    ],
)  # fmt: skip
def test_purl_build_matches_the_specification_examples(args: tuple, expected: str) -> None:
    # examples from the purl spec's PURL-TYPES; the last one as syft 1.18 writes it
    assert purl.build(*args) == expected
    assert purl.key(expected)[1:] == (args[3], args[1], args[2])


def test_purl_components_are_encoded_as_quote_encodes_them() -> None:
    """`purl._enc` passes plain text through without `quote`: every ASCII character
    alone and in a name, and some non-ASCII text, come out as `quote(text, safe=":")`."""
    samples = [chr(c) for c in range(128)] + [f"a{chr(c)}1.0" for c in range(128)]
    samples += ["", "1:2.38.1-5+deb12u3", "@scope", "naïve", "日本", "a b", "100%", "x~y_z"]
    for text in samples:
        assert purl._enc(text) == quote(text, safe=":"), repr(text)


def test_purl_key_normalises_pypi_names() -> None:
    assert purl.key("pkg:pypi/Foo_Bar@1.0") == purl.key("pkg:pypi/foo-bar@1.0?x=1")


# --------------------------------------------------------------------------- go

GO_MOD = """\
module example.com/hello

go 1.19

require (
\texample.com/dep v1.2.3
\texample.com/far v0.4.0
)

replace example.com/dep => ./dep

replace example.com/far => example.org/fork v0.5.0
"""


@pytest.fixture(scope="module")
def go_binary(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A Go program built offline: one module replaced by a local directory, one by
    another module served from a file:// GOPROXY (the proxy protocol's files)."""
    if shutil.which("go") is None:
        pytest.fail("the Go toolchain is required (apt-get install golang-go)")
    tmp = tmp_path_factory.mktemp("go")
    fork_mod = "module example.org/fork\n\ngo 1.19\n"
    fork_go = 'package fork\n\nfunc Fork() string { return "f" }\n'
    versions = tmp / "proxy/example.org/fork/@v"
    versions.mkdir(parents=True)
    (versions / "list").write_text("v0.5.0\n")
    (versions / "v0.5.0.info").write_text('{"Version": "v0.5.0", "Time": "2024-01-01T00:00:00Z"}')
    (versions / "v0.5.0.mod").write_text(fork_mod)
    (versions / "v0.5.0.zip").write_bytes(
        zip_bytes(
            {
                "example.org/fork@v0.5.0/go.mod": fork_mod,
                "example.org/fork@v0.5.0/x.go": fork_go,
            }
        )
    )
    src = tmp / "src"
    (src / "dep").mkdir(parents=True)
    (src / "dep/go.mod").write_text("module example.com/dep\n\ngo 1.19\n")
    (src / "dep/x.go").write_text('package dep\n\nfunc Dep() string { return "d" }\n')
    (src / "go.mod").write_text(GO_MOD)
    (src / "main.go").write_text(
        'package main\n\nimport (\n\t"example.com/dep"\n\tfar "example.com/far"\n)\n\n'
        "func main() { println(dep.Dep() + far.Fork()) }\n"
    )
    env = {**os.environ, "GOPROXY": f"file://{tmp}/proxy", "GOSUMDB": "off", "CGO_ENABLED": "0"}
    env |= {"GOFLAGS": "-mod=mod", "GOCACHE": str(tmp / "cache"), "GOPATH": str(tmp / "gopath")}
    subprocess.run(["go", "build", "-o", "hello", "."], cwd=src, env=env, check=True)
    return (src / "hello").read_bytes()


def test_go_modules_from_the_elf_analysers_buildinfo(go_binary: bytes) -> None:
    tree = tree_from(
        [ib.file("usr/local/bin/hello", go_binary, 0o755)],
        keep=lambda p, h: False,  # Go needs no bytes: the analyser's fact is enough
        analysers=[ElfAnalyser()],
    )
    inventory = catalog(tree)
    assert inventory.warnings == []
    purls = [p.purl for p in inventory.packages]
    go_version = next(p.version for p in inventory.packages if p.name == "stdlib")
    assert go_version.startswith("go1.")
    assert purls == [
        "pkg:golang/example.com/hello",  # (devel): built from a checkout, no version
        "pkg:golang/example.com/dep",  # replaced by ./dep: its code is local, (devel)
        "pkg:golang/example.org/fork@v0.5.0",  # replaced by another module
        f"pkg:golang/stdlib@{go_version.removeprefix('go')}",
    ]
    assert {p.ecosystem for p in inventory.packages} == {"go"}
    assert inventory.owner_of == {"/usr/local/bin/hello": "pkg:golang/example.com/hello"}
