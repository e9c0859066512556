"""The data that flows between stages: plain dataclasses, no behaviour beyond lookups.

Every stage takes and returns these objects; `codec.py` turns them into the
documented JSON. Later stages append their own dataclasses at the end of this file.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NewType

from portscan.errors import UsageError

_ARCHITECTURES = frozenset(
    {"386", "amd64", "arm", "arm64", "loong64", "mips64le", "ppc64le", "riscv64", "s390x"}
)  # GOARCH values OCI platforms use, to read `arm64/v8` as linux/arm64/v8


@dataclass(frozen=True)
class Platform:
    """An OCI platform: `os/architecture[/variant]`."""

    os: str = "linux"
    architecture: str = "amd64"
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        """`os/arch[/variant]`; an architecture alone (`arm64`, `arm64/v8`) means Linux."""
        parts = text.strip().split("/")
        if not all(parts) or len(parts) > 3:
            parts = []
        if len(parts) == 1 or (len(parts) == 2 and parts[0] in _ARCHITECTURES):
            parts = ["linux", *parts]
        if len(parts) not in (2, 3):
            raise UsageError(
                f"invalid platform {text!r}",
                "write it as os/arch[/variant] or arch alone, e.g. linux/arm64 or arm64",
            )
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    def matches(self, other: Platform) -> bool:
        """True when `other` (from an index) satisfies this requested platform."""
        if (self.os, self.architecture) != (other.os, other.architecture):
            return False
        return self.variant is None or self.variant == other.variant

    def __str__(self) -> str:
        base = f"{self.os}/{self.architecture}"
        return f"{base}/{self.variant}" if self.variant else base


class SourceKind(enum.StrEnum):
    """Where an image comes from (the prefix of a reference)."""

    REGISTRY = "registry"
    DOCKER = "docker"
    DOCKER_ARCHIVE = "docker-archive"
    OCI = "oci"
    DIR = "dir"
    # Reference kinds only: their images report `oci` and `docker` as `ImageMeta.source`
    # (the result schema's values), and their reference says where they came from.
    OCI_ARCHIVE = "oci-archive"
    PODMAN = "podman"


@dataclass(frozen=True)
class ImageRef:
    """A parsed image reference. Registry fields are set for registry/docker sources,
    `path` for archive, layout and directory sources."""

    kind: SourceKind
    original: str
    registry: str | None = None
    repository: str | None = None
    tag: str | None = None
    digest: str | None = None
    path: str | None = None
    explicit_kind: bool = False  # False for a bare NAME: try the daemon, then the registry

    @property
    def name(self) -> str:
        """The canonical spelling: `registry/repo:tag@digest`, or `kind:path[:tag]`."""
        if self.repository is None:
            suffix = f":{self.tag}" if self.tag else ""
            return f"{self.kind.value}:{self.path}{suffix}"
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


@dataclass(frozen=True)
class LayerDescriptor:
    """A layer blob as the manifest describes it."""

    digest: str  # digest of the blob as stored (compressed for registries)
    size: int  # bytes of the blob, -1 when unknown
    media_type: str
    diff_id: str | None = None  # digest of the uncompressed tar, from the config


@dataclass
class HistoryEntry:
    created_by: str = ""
    created: str | None = None
    empty_layer: bool = False
    comment: str | None = None


@dataclass
class ImageConfig:
    """The parts of the OCI image config that the analysis needs (read, type-checked,
    by `sources.validate.image_config`)."""

    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    user: str = ""
    working_dir: str = ""
    exposed_ports: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    stop_signal: str | None = None
    history: list[HistoryEntry] = field(default_factory=list)
    diff_ids: list[str] = field(default_factory=list)

    def env_dict(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in self.env:
            key, _, value = item.partition("=")
            out[key] = value
        return out


class FileKind(enum.StrEnum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"
    CHAR = "char"
    BLOCK = "block"
    FIFO = "fifo"


class _NoFacts(Mapping[str, Any]):
    """The facts of a file no analyser looked at: one shared, read-only empty mapping
    (a million entries need no million empty dicts), pickled as the same object."""

    def __getitem__(self, key: str) -> Any:
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "{}"

    def __reduce__(self) -> str:
        return "NO_FACTS"


NO_FACTS: Mapping[str, Any] = _NoFacts()


@dataclass(slots=True)
class FileEntry:
    """One path: a tar entry of one layer (its path already made safe), then, once the
    layers are merged, a path of the merged tree.

    `layer` is the index (0 = base) of the layer that last wrote the path; None in a
    layer's own entries, before the merge. `data` holds the bytes only of files a later
    stage asked to keep (see `layers.KeepPolicy`); `facts` holds what analysers computed
    from the bytes while the layer streamed by, keyed by analyser name, so the bytes
    themselves need not be kept. It is the shared `NO_FACTS` until `set_fact` records
    one (slots and no per-entry dict: about 0.25 KiB an entry over a scan, docs/security.md).
    """

    path: str  # absolute, normalised, e.g. "/usr/bin/nginx"
    kind: FileKind
    mode: int
    size: int
    layer: int | None = None
    link_target: str | None = None
    uid: int = 0
    gid: int = 0
    data: bytes | None = None
    facts: Mapping[str, Any] = NO_FACTS

    @property
    def is_regular(self) -> bool:
        return self.kind in (FileKind.FILE, FileKind.HARDLINK)

    @property
    def is_executable(self) -> bool:
        return self.is_regular and bool(self.mode & 0o111)

    def set_fact(self, name: str, value: Any) -> None:
        """Record analyser `name`'s fact (the shared `NO_FACTS` is never written)."""
        if not isinstance(self.facts, dict):
            self.facts = dict(self.facts)
        self.facts[name] = value


@dataclass(frozen=True)
class LayerInfo(LayerDescriptor):
    """A layer as reported: its descriptor, its history line and what reading it found."""

    index: int = 0
    created_by: str = ""
    entries: int = 0
    whiteouts: int = 0
    skipped: list[str] = field(default_factory=list)  # unsafe or unsupported entries


@dataclass
class ImageMeta:
    """An image as resolved by its source: the reference, its manifest digest (where there
    is a manifest), platform, config and layers; everything but the layers' contents.
    The layers are descriptors as the source gives them, and `LayerInfo` in a result."""

    reference: str
    source: SourceKind
    digest: str | None
    platform: Platform
    config: ImageConfig
    layers: list[LayerDescriptor] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # what reading the metadata noticed

    @property
    def size(self) -> int:
        return sum(layer.size for layer in self.layers if layer.size > 0)


@dataclass
class ScanResult:
    """Everything one scan produced; `report/` renders it, nothing else prints it."""

    image: ImageMeta  # its layers are LayerInfo
    files: list[FileEntry]
    portscan_version: str
    scanned_at: str
    duration_seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    binaries: dict[str, Binary] = field(default_factory=dict)  # path -> ELF facts
    packages: list[Package] = field(default_factory=list)
    scripts: list[Script] = field(default_factory=list)
    owner_of: dict[str, str] = field(default_factory=dict)  # path -> package purl
    dependencies: list[Dependency] = field(default_factory=list)
    reachable: list[str] = field(default_factory=list)  # graph nodes the entrypoint reaches
    components: list[Component] = field(default_factory=list)
    image_findings: list[Finding] = field(default_factory=list)  # from the image config
    targets: dict[Target, TargetSummary] = field(default_factory=dict)
    base: BaseImage | None = None  # --base: the image's first layers are this image's


@dataclass(frozen=True)
class Dependency:
    """One edge of the dependency graph (graph/build.py explains node names and kinds)."""

    source: str
    target: str
    kind: str


@dataclass
class Package:
    """An installed package, from a package database or a language's metadata file.

    `purl` follows the purl specification (github.com/package-url/purl-spec), e.g.
    `pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc`.
    `ecosystem` is deb, apk, rpm, python, npm, java or go (a package only syft found
    keeps syft's type, e.g. `binary`). `files` are the tree paths the package owns;
    `source` is the database or metadata file it came from and `layer` that file's layer.
    """

    name: str
    version: str
    ecosystem: str
    purl: str
    architecture: str = ""
    licenses: list[str] = field(default_factory=list)
    source: str = ""
    found_by: str = "portscan"  # portscan | syft | portscan+syft
    files: list[str] = field(default_factory=list)
    layer: int = -1


@dataclass
class Script:
    """An executable file that starts with `#!`, and the interpreter the kernel would run.

    For `#!/usr/bin/env [-S] NAME ...`, `interpreter` is NAME, found on the image's
    PATH; `resolved_interpreter` is the interpreter's tree path after symlinks, or None
    when the image has no such executable (the script cannot start as it is).
    """

    path: str
    interpreter_line: str
    interpreter: str
    resolved_interpreter: str | None = None
    args: list[str] = field(default_factory=list)


@dataclass
class SyscallSite:
    """One place in a binary that enters the kernel, with the syscall number where known.

    `kind` is `instruction` for a raw `syscall`, `int 0x80` or `svc #0`, and
    `wrapper-call` for a call to a function that takes the number as an argument
    (libc's `syscall()`, Go's `syscall.Syscall` family), named in `via`. `abi` names
    the table the number was read with (x86_64, i386, aarch64); `function` is the
    function symbol that contains the site, when the binary has symbols.
    """

    address: int
    kind: str  # instruction | wrapper-call
    instruction: str  # as disassembled, e.g. "syscall", "svc #0", "call 0x401a20"
    abi: str
    number: int | None = None
    name: str | None = None  # None for a number the table does not know
    function: str | None = None
    via: str | None = None


@dataclass
class SyscallReport:
    """The syscall sites found in one ELF file.

    `resolved` sites have a number. `unresolved` ones take it from somewhere the scan
    could not follow (an argument, memory). `dispatch` sites sit inside a wrapper
    function itself: their number is the wrapper's argument, resolved (or not) at the
    wrapper's call sites.
    """

    abi: str  # the machine's own syscall ABI
    resolved: list[SyscallSite] = field(default_factory=list)
    unresolved: list[SyscallSite] = field(default_factory=list)
    dispatch: list[SyscallSite] = field(default_factory=list)
    # resolved sites in functions that nothing reachable from the entry point and the
    # constructors calls (static programs, inspect/elf/program.py); `reach` says whether
    # that walk was made ("complete") or why not (then every site stays in `resolved`)
    unreached: list[SyscallSite] = field(default_factory=list)
    reach: str = ""

    def names(self) -> list[str]:
        """The names of all resolved syscalls, sorted, each once."""
        return sorted({s.name for s in self.resolved if s.name})


@dataclass
class Runtime:
    """A language runtime an ELF file is, or carries.

    `name` is one of go, rust, cpython, jvm, nodejs, dotnet, php, ruby, perl, busybox.
    `evidence` says which markers matched (signatures/runtimes-markers.json);
    `details` holds what the runtime's own metadata adds, e.g. for Go the main
    module, its dependencies, build settings and the packages linked in.
    """

    name: str
    version: str | None = None
    evidence: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Binary:
    """What one ELF file is: the `elf` analyser's fact for a FileEntry.

    `file_type` is executable, pie, shared-library, relocatable or core; `linkage`
    is dynamic, static, static-pie, or none (relocatable objects, core dumps).
    Symbols carry their version as `name@VERSION` when they have one. `libc` is
    glibc, musl, none (no C library, e.g. Go without cgo) or unknown.
    `defined_functions` lists the functions of static binaries (the libc functions
    linked in) and of every Go binary, from .symtab or Go's pclntab. `syscalls` is None
    when the file was not scanned (the C library and loader themselves, dynamic
    programs that import no syscall wrapper, unsupported machines, malformed files).
    `error` is set, and the rest left at defaults past the header, when the file is
    truncated or malformed.
    """

    machine: str = "unknown"  # x86_64, aarch64, i386, arm, ... or em-<number>
    elf_class: int = 0  # 32 or 64
    endianness: str = "unknown"  # little | big
    file_type: str = "unknown"
    linkage: str = "unknown"
    interpreter: str | None = None
    stripped: bool = False  # no .symtab
    soname: str | None = None
    needed: list[str] = field(default_factory=list)
    rpath: list[str] = field(default_factory=list)
    runpath: list[str] = field(default_factory=list)
    imported_symbols: list[str] = field(default_factory=list)
    exported_symbols: list[str] = field(default_factory=list)
    libc: str = "unknown"
    build_id: str | None = None
    toolchain: list[str] = field(default_factory=list)  # the .comment entries
    defined_functions: list[str] = field(default_factory=list)
    syscalls: SyscallReport | None = None
    runtime: Runtime | None = None
    error: str | None = None
    sha256: str | None = None  # the file's content digest (the reachability cache key)
    # What the program itself asks for (inspect/elf/program.py), for non-platform files:
    linked_calls: list[str] = field(default_factory=list)  # static: libc calls from main
    path_strings: list[str] = field(default_factory=list)  # /dev, /proc, /sys strings


class Target(enum.StrEnum):
    """A WASI target portscan judges against; signatures/targets.json describes each."""

    WASIP1 = "wasip1"
    WASIP2 = "wasip2"
    WASIP3 = "wasip3"
    WASIX = "wasix"


class Verdict(enum.StrEnum):
    """What porting takes, worst first (DESIGN.md, "Targets and verdicts").

    `unknown` (a check found no evidence either way) sits between `shim` and `ready`: a
    known rework or blocked finding stays visible as the worst, and one unknown finding
    is enough to withhold `ready`. `n/a` (not code) is best, so it never worsens anything.
    """

    BLOCKED = "blocked"
    REWORK = "rework"
    SHIM = "shim"
    UNKNOWN = "unknown"
    READY = "ready"
    NA = "n/a"

    @property
    def rank(self) -> int:
        """0 for blocked up to 5 for n/a: smaller is worse."""
        return VERDICT_RANK[self]

    @classmethod
    def worst(cls, verdicts: Iterable[Verdict]) -> Verdict:
        """The worst of `verdicts`, or `unknown` when there are none."""
        return min(verdicts, key=VERDICT_RANK.__getitem__, default=cls.UNKNOWN)


VERDICT_RANK = {verdict: rank for rank, verdict in enumerate(Verdict)}  # `Verdict.rank`
TARGET_ORDER = {target: index for index, target in enumerate(Target)}  # findings' order
# each target and verdict as the plain str a document holds (Finding.to_dict)
_PLAIN: dict[Target | Verdict, str] = {member: str(member) for member in (*Target, *Verdict)}


# What a program asks of its platform: an id of signatures/capabilities.json, which says
# which symbols, syscalls and patterns reveal each one and what every target gives it. The
# ids are data, so this is a string; knowledge/tables.py refuses an id the file lacks.
Capability = NewType("Capability", str)


@dataclass(frozen=True)
class ChainStep:
    """One step of a call chain: a function in a file (no function: the program itself)."""

    file: str
    function: str = ""


INDIRECT = "<indirect call>"  # a chain step: the walk went through a function pointer
WHOLE = "<whole library>"  # a chain step: the library was taken whole (graph/reach.py)


def chain_text(chain: tuple[ChainStep, ...]) -> str:
    """`postgres → sd_notify (libsystemd.so.0) → sd_pid_notify_with_fds → socket (libc.so.6)`:
    each function, with its file's name where the file changes."""
    parts: list[str] = []
    current = None
    for step in chain:
        name = step.file.rsplit("/", 1)[-1]
        if not step.function:
            parts.append(name)
        elif step.function == INDIRECT:
            parts.append("(indirect call)")
        elif step.file != current and name:
            parts.append(f"{step.function} ({name})")
        else:
            parts.append(step.function)
        current = step.file
    return " → ".join(parts)


# Hashed by its fields as a frozen dataclass would be, but not frozen, and slotted: a
# frozen dataclass sets each field through object.__setattr__, and an image's judging
# makes tens of thousands (postgres: 48,000 Evidence, 36,000 Finding; judging 20% faster
# with both slotted, and 4 MB less). Nothing changes one once made.
@dataclass(unsafe_hash=True, slots=True)
class Evidence:
    """What a finding rests on: the file, and the symbol, syscall site (with its address)
    or string in it, or the line of a source file; the package owning the file and the
    layer it came from. `chain` is how the file's code reaches the symbol, from the
    program through its libraries (graph/reach.py), when that was worked out."""

    file: str
    symbol: str | None = None
    syscall: str | None = None
    address: int | None = None
    package: str | None = None
    layer: int | None = None
    detail: str = ""
    line: int | None = None  # in a source file (application code read with a parser)
    chain: tuple[ChainStep, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON form without the empty fields (None, "", no chain), `line` second. Field by
        field (a number is kept when 0): a report has one per symbol judged. The chain's
        steps stay ChainSteps, which the document's writers (codec) write as objects of
        their fields, {"file", "function"}: nginx's document has 180,000 of them."""
        doc: dict[str, Any] = {"file": self.file} if self.file else {}
        if self.line is not None:
            doc["line"] = self.line
        if self.symbol:
            doc["symbol"] = self.symbol
        if self.syscall:
            doc["syscall"] = self.syscall
        if self.address is not None:
            doc["address"] = self.address
        if self.package:
            doc["package"] = self.package
        if self.layer is not None:
            doc["layer"] = self.layer
        if self.detail:
            doc["detail"] = self.detail
        if self.chain:
            doc["chain"] = self.chain
        return doc


@dataclass(slots=True)
class Finding:
    """One rule raised for one target: rule id + target + verdict + evidence."""

    rule_id: str
    target: Target
    verdict: Verdict
    capability: Capability | None
    message: str
    evidence: list[Evidence] = field(default_factory=list)
    waived: str | None = None  # the reason of the waiver that accepts it (portscan.waivers)

    def to_dict(self) -> dict[str, Any]:
        """JSON form; enums become their string values; `waived` only when waived."""
        doc: dict[str, Any] = {
            "rule_id": self.rule_id,
            "target": _PLAIN[self.target],
            "verdict": _PLAIN[self.verdict],
            "capability": self.capability or None,
            "message": self.message,
            "evidence": [item.to_dict() for item in self.evidence],
        }
        if self.waived is not None:
            doc["waived"] = self.waived
        return doc


@dataclass
class MigrationStep:
    """The suggested path for one component, with the effort and the findings behind it.

    `path` is the id of a road in signatures/targets.json ("roads"). `effort` is S
    (hours), M (days), L (weeks) or "-" when there is nothing to port.
    """

    path: str
    target: Target | None
    effort: str
    summary: str
    rule_ids: list[str] = field(default_factory=list)


@dataclass
class Component:
    """A judged part of the image: an executable, library, script, runtime, or the
    application code a runtime runs (kind `application`, path = its entry file).

    `id` is its graph node (`file:/usr/sbin/nginx`). `verdicts` and `scores` are per
    target; `findings` are its own, and `inherited` names the components (libraries,
    interpreters) whose worse verdict flowed into this one. `judged_on` says what an ELF
    component was judged by: `reach` (what the image's programs reach: a program, itself
    and through its libraries; a library, what programs reach of it), `whole` (everything
    it imports: PS909 says why), or empty (no reachability was worked out).
    """

    id: str
    kind: str  # executable | library | script | platform | application
    path: str
    layer: int | None = None
    package: str | None = None  # purl of the owning package
    reachable: bool = False
    runtime: str | None = None
    verdicts: dict[Target, Verdict] = field(default_factory=dict)
    scores: dict[Target, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    inherited: dict[Target, list[str]] = field(default_factory=dict)
    plan: MigrationStep | None = None
    judged_on: str = ""  # reach | whole | "" (see the docstring)


@dataclass
class TargetSummary:
    """The image's verdict for one target: worst reachable component, a 0-100 score,
    how many components got each verdict, and the findings that block most."""

    target: Target
    verdict: Verdict
    score: int
    counts: dict[Verdict, int] = field(default_factory=dict)
    blockers: list[Finding] = field(default_factory=list)


@dataclass
class BaseImage:
    """The image `--base` named. The scanned image's first `layers` layers are its: their
    `components` are judged apart (`targets`) and count for none of the image's verdicts,
    scores or gates, which judge what the image adds on top."""

    reference: str
    digest: str | None
    layers: int
    components: int = 0
    targets: dict[Target, TargetSummary] = field(default_factory=dict)


@dataclass(frozen=True)
class ApiUse:
    """One place where a program's own code uses an API its language's table judges
    (signatures/go-stdlib.json, python-modules.json, javascript-modules.json): a Go
    function linked in, a Python or JavaScript reference, call or import."""

    api: str  # the table entry's id
    name: str  # as the code names it, qualified: subprocess.Popen, os/exec.(*Cmd).Start
    file: str
    line: int | None = None


@dataclass
class Application:
    """The code a language runtime of the image runs: the entry file the entrypoint
    names, the files read from it (its own, and installed distributions it imports), the
    runtime binary, and what the code uses. `unread` maps a file to why it was not read;
    `extensions` the native extension modules (ELF .so files) the code imports."""

    language: str  # python | javascript
    entry: str
    runtime: str | None  # the interpreter's tree path
    files: list[str] = field(default_factory=list)
    uses: list[ApiUse] = field(default_factory=list)
    unread: dict[str, str] = field(default_factory=dict)
    dependencies: list[str] = field(default_factory=list)  # packages named, not read (npm)
    extensions: dict[str, str] = field(default_factory=dict)  # module -> native .so it imports


# --------------------------------------------------------------------------- layers and images

ProgressFn = Callable[[int], None]  # called with the number of blob bytes just read


@dataclass
class LayerResult:
    """What one layer contributes, before merging."""

    digest: str | None
    entries: list[FileEntry] = field(default_factory=list)
    whiteouts: list[str] = field(default_factory=list)  # paths removed from lower layers
    opaque_dirs: list[str] = field(default_factory=list)  # dirs whose lower content is hidden
    skipped: list[str] = field(default_factory=list)  # unsafe or unsupported entries, explained
    diff_id: str | None = None  # digest of the uncompressed tar, as read
    compressed_bytes: int = 0
    uncompressed_bytes: int = 0


# --------------------------------------------------------------------------- graph nodes

IMAGE = "image"  # the graph node of the image itself (its entrypoint's source)


def file_node(path: str) -> str:
    return f"file:{path}"


def package_node(purl: str) -> str:
    return f"pkg:{purl}" if not purl.startswith("pkg:") else purl
