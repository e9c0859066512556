"""The call-graph builder (portscan/inspect/elf/callgraph.py) on crafted shared libraries
compiled here with gcc (x86-64, and aarch64 when the cross compiler is installed), and
on real Debian libraries of this machine when they are present."""

from __future__ import annotations

import array
import bisect
import re
from pathlib import Path

import pytest

from portscan.inspect.elf import callgraph
from portscan.inspect.elf.callgraph import (
    BOUND,
    COMPLETE,
    INDIRECT,
    MALFORMED,
    UNSUPPORTED,
    CallGraph,
    reachable_imports,
)
from tests.elfbuild import ElfBuilder, builder, tool_output

HELPER_PLT = r"""
#include <string.h>
#include <unistd.h>

__attribute__((noinline, noclone)) static int helper(int x) {
    if (x > 3)
        return fork();
    return x;
}
int export_a(int x) { return helper(x) + 1; }
size_t export_b(const char *s) { return strlen(s) + 1; }
"""
TAIL_CALL = r"""
#include <sys/socket.h>

__attribute__((noinline)) int make_socket(int family) { return socket(family, SOCK_STREAM, 0) + 1; }
int entry(int family) { return make_socket(family); }
"""
CONSTRUCTOR = r"""
#include <unistd.h>

static int pid;
__attribute__((constructor)) static void init_pid(void) { pid = getpid(); }
int get(void) { return pid; }
"""
CALLBACK_TABLE = r"""
#include <pthread.h>

static void *worker(void *arg) { return arg; }
static int spawn(void) { pthread_t t; return pthread_create(&t, 0, worker, 0); }
static int quiet(void) { return 0; }
static int (*const table[])(void) = {quiet, spawn};
int dispatch(int i) { return table[i & 1]() + 1; }
int plain(int x) { return x * 2; }
"""
NO_PLT = r"""
#include <stdlib.h>
#include <unistd.h>

int twice(void) { int a = getpid(); return a + getpid(); }
int parent(void) { return getppid(); }
void *handler(void) { return (void *)&abort; }
"""


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> ElfBuilder:
    return builder(tmp_path_factory)


def library(
    build: ElfBuilder, name: str, source: str, *flags: str, compiler: str = "gcc"
) -> CallGraph:
    path = build.c(name, source, "-shared", "-fPIC", *flags, compiler=compiler)
    graph = CallGraph.from_bytes(path.read_bytes())
    assert graph.status == COMPLETE, graph.note
    return graph


@pytest.mark.parametrize("compiler", ["gcc", "aarch64-linux-gnu-gcc"])
def test_export_reaches_fork_through_a_static_helper(build: ElfBuilder, compiler: str) -> None:
    graph = library(build, f"libhelper-{compiler}.so", HELPER_PLT, compiler=compiler)
    a = graph.reach(["export_a"], constructors=False)
    assert a.complete and not a.address_taken
    assert a.imports == {"fork"}
    assert a.chains["fork"] == ("export_a", "helper", "fork")
    b = graph.reach(["export_b"], constructors=False)
    assert b.imports == {"strlen"}
    assert b.chains["strlen"] == ("export_b", "strlen")


def test_stripped_library_names_the_helper_by_address(build: ElfBuilder) -> None:
    path = build.c("libhelper.so", HELPER_PLT, "-shared", "-fPIC")
    stripped = build.strip("libhelper-stripped.so", path)
    reach = reachable_imports(stripped.read_bytes(), ["export_a"], constructors=False)
    assert reach.complete and reach.imports == {"fork"}
    root, helper, fork = reach.chains["fork"]
    assert (root, fork) == ("export_a", "fork") and helper.startswith("sub_")


@pytest.mark.parametrize("compiler", ["gcc", "aarch64-linux-gnu-gcc"])
def test_tail_call_and_callback_table_on_both_architectures(
    build: ElfBuilder, compiler: str
) -> None:
    tail = library(build, f"libtail-{compiler}.so", TAIL_CALL, compiler=compiler)
    assert tail.reach(["entry"]).chains["socket"] == ("entry", "make_socket", "socket")
    table = library(build, f"libtable-{compiler}.so", CALLBACK_TABLE, compiler=compiler)
    reach = table.reach(["dispatch"], constructors=False)
    assert reach.chains["pthread_create"] == ("dispatch", INDIRECT, "spawn", "pthread_create")
    plain = table.reach(["plain"])  # the C runtime's constructors call nothing indirectly
    assert plain.complete and not plain.address_taken
    assert "pthread_create" not in plain.imports


def test_tail_call_is_an_edge(build: ElfBuilder) -> None:
    path = build.c("libtail.so", TAIL_CALL, "-shared", "-fPIC")
    listing = tool_output("objdump", "-d", "--no-show-raw-insn", str(path))
    entry = listing.split("<entry>:", 1)[1].split("\n\n", 1)[0]
    assert re.search(r"\bjmp\b.*<make_socket", entry), entry  # the test tests a tail call
    reach = CallGraph.from_bytes(path.read_bytes()).reach(["entry"], constructors=False)
    assert reach.imports == {"socket"}
    assert reach.chains["socket"] == ("entry", "make_socket", "socket")


def test_constructor_is_a_root(build: ElfBuilder) -> None:
    graph = library(build, "libctor.so", CONSTRUCTOR)
    assert "getpid" not in graph.reach(["get"], constructors=False).imports
    reach = graph.reach(["get"])
    assert reach.complete and "getpid" in reach.imports
    assert reach.chains["getpid"] == ("init_pid (DT_INIT_ARRAY[1])", "getpid")


def test_indirect_call_makes_address_taken_functions_reachable(build: ElfBuilder) -> None:
    graph = library(build, "libtable.so", CALLBACK_TABLE)
    reach = graph.reach(["dispatch"], constructors=False)
    assert reach.complete and reach.address_taken
    assert reach.chains["pthread_create"] == ("dispatch", INDIRECT, "spawn", "pthread_create")
    plain = graph.reach(["plain"], constructors=False)
    assert plain.complete and not plain.address_taken and plain.imports == frozenset()


@pytest.mark.parametrize("compiler", ["gcc", "aarch64-linux-gnu-gcc"])
def test_got_indirect_calls_without_plt(build: ElfBuilder, compiler: str) -> None:
    graph = library(build, f"libnoplt-{compiler}.so", NO_PLT, "-fno-plt", compiler=compiler)
    stubs = {target for _start, _end, target in graph.plt}
    assert not stubs & {"getpid", "getppid", "abort"}  # the code calls through the GOT
    assert graph.reach(["twice"], constructors=False).imports == {"getpid"}
    parent = graph.reach(["parent"], constructors=False)
    assert parent.imports == {"getppid"} and not parent.address_taken
    assert graph.reach(["handler"], constructors=False).imports == {"abort"}  # address taken


def test_position_dependent_executable_tables_are_address_taken(build: ElfBuilder) -> None:
    main = CALLBACK_TABLE + "int main(int argc, char **argv) { return dispatch(argc); }\n"
    path = build.c("table-nopie", main, "-no-pie", "-fno-pie", "-pthread")
    reach = reachable_imports(path.read_bytes(), ["main"], constructors=False)
    assert reach.complete and reach.address_taken
    chain = reach.chains["pthread_create"]  # dispatch may be inlined into main
    assert chain[0] == "main" and chain[-3:] == (INDIRECT, "spawn", "pthread_create")


def test_missing_roots_and_bound(build: ElfBuilder) -> None:
    graph = library(build, "libhelper.so", HELPER_PLT)
    reach = graph.reach(["no_such_export", "export_b"], constructors=False)
    assert reach.complete and reach.missing_roots == ("no_such_export",)
    bounded = graph.reach(["export_a"], constructors=False, max_functions=1)
    assert bounded.status == BOUND and bounded.fallback and bounded.note
    again = graph.reach(["export_a"], constructors=False)  # the cache changes nothing
    assert again.complete and again.imports == {"fork"}


def test_unsupported_and_malformed(build: ElfBuilder) -> None:
    data = bytearray(build.c("libhelper.so", HELPER_PLT, "-shared", "-fPIC").read_bytes())
    data[18:20] = (20).to_bytes(2, "little")  # EM_PPC
    reach = reachable_imports(bytes(data), ["export_a"])
    assert reach.status == UNSUPPORTED and reach.fallback and "ppc" in reach.note
    assert reachable_imports(b"\x7fELF\x02\x01", ["x"]).status == MALFORMED


LIBZ = Path("/usr/lib/x86_64-linux-gnu/libz.so.1")
LIBSYSTEMD = Path("/usr/lib/x86_64-linux-gnu/libsystemd.so.0")
THREADS_AND_SOCKETS = {"socket", "connect", "bind", "listen", "accept", "pthread_create", "fork"}


@pytest.mark.skipif(not LIBZ.exists(), reason="no libz.so.1 on this machine")
def test_real_libz_compress_is_neither_server_nor_threaded() -> None:
    reach = reachable_imports(LIBZ.read_bytes(), ["compress"])
    assert reach.complete
    assert {"malloc", "free"} <= reach.imports
    assert not reach.imports & THREADS_AND_SOCKETS


@pytest.mark.skipif(not LIBSYSTEMD.exists(), reason="no libsystemd.so.0 on this machine")
def test_real_libsystemd_sd_notify_reaches_sockets_not_setns() -> None:
    graph = CallGraph.from_bytes(LIBSYSTEMD.read_bytes())
    reach = graph.reach(["sd_notify"])
    assert reach.complete
    assert {"socket", "sendmsg"} <= reach.imports
    assert not reach.imports & {"setns", "fork", "clone", "pthread_create"}
    assert reach.chains["socket"][0] == "sd_notify"
    assert "setns" in {name for name, _t, _v, defined in graph.symbols.dynamic if not defined}


WEAK_CHECK = r"""
#include <pthread.h>
extern int pthread_create(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *)
    __attribute__((weak));
int threads_loaded(void) { return &pthread_create != 0; }
void *handed_on(void) { return (void *)&pthread_create; }
int started(void *(*run)(void *)) {
    pthread_t t;
    return &pthread_create ? pthread_create(&t, 0, run, 0) : -1;
}
"""


def test_testing_a_weak_import_does_not_reach_it(build: ElfBuilder) -> None:
    """`&pthread_create != NULL` only asks whether threads are linked in; returning the
    address or calling it does reach it."""
    graph = library(build, "libweak.so", WEAK_CHECK)
    assert "pthread_create" not in graph.reach(["threads_loaded"], constructors=False).imports
    assert "pthread_create" in graph.reach(["handed_on"], constructors=False).imports
    assert "pthread_create" in graph.reach(["started"], constructors=False).imports


LIBCRYPTO = Path("/usr/lib/x86_64-linux-gnu/libcrypto.so.3")


def _run_of_pointers(graph: CallGraph, address: int) -> tuple[int, ...]:
    """The documented run rule of `object_slots`, one address at a time: pointers from
    within 64 bytes of `address` on, each at most OBJECT_GAP bytes after the last,
    until an address some pointer holds (another object's start) lies between two."""
    from portscan.inspect.elf.callgraph import MAX_OBJECT_SLOTS, OBJECT_GAP

    slots = sorted(graph.pointers)
    held = set(graph._object_starts_held())
    run: list[int] = []
    at = bisect.bisect_left(slots, address)
    while at < len(slots) and len(run) < MAX_OBJECT_SLOTS:
        gap = slots[at] - (run[-1] if run else address)
        if gap > (OBJECT_GAP if run else 64):
            break
        if run and any(a in held for a in range(run[-1] + 1, slots[at] + 1)):
            break
        run.append(slots[at])
        at += 1
    return tuple(run)


@pytest.mark.parametrize("library", [LIBCRYPTO, LIBSYSTEMD], ids=lambda p: p.name)
def test_runs_of_pointers_end_where_another_object_starts(library: Path) -> None:
    """object_slots on real libraries' data, against the rule read naively: on the
    addresses that pointers hold outside sized symbols and the GOT (libcrypto's method
    tables, libsystemd's vtables), runs end at the next object's start."""
    if not library.exists():
        pytest.skip(f"no {library.name} on this machine")
    graph = CallGraph.from_bytes(library.read_bytes())
    starts = graph._object_starts
    unsized = [
        a
        for a in graph._object_starts_held()
        if not graph._in_got(a)
        and not ((i := bisect.bisect_right(starts, a) - 1) >= 0 and a < graph._objects[i][1])
    ]
    assert len(unsized) > 100
    ended = 0
    for address in unsized[:: max(1, len(unsized) // 1500)]:
        expected = _run_of_pointers(graph, address)
        assert graph.object_slots(address) == expected, hex(address)
        ended += bool(expected) and len(expected) < 4096
    assert ended > 50


def _graph_state(graph: CallGraph) -> tuple[object, ...]:
    """What `CallGraph._read` makes, dicts with their order."""
    s = graph.symbols
    tables = (s.names, s.sizes, s.exports, s.locals, graph.pointers, graph.got)
    return (graph.status, graph.starts, graph.plt, graph.address_taken, s.dynamic,
            graph._objects, graph.constructors, *[list(t.items()) for t in tables])  # fmt: skip


def _elf_files(folder: str, count: int) -> list[Path]:
    found = sorted(p for p in Path(folder).glob("*.so*") if p.is_file() and not p.is_symlink())
    found = [p for p in found if p.read_bytes()[:4] == b"\x7fELF"]
    return found[:: max(1, len(found) // count)][:count]


def test_the_compiled_table_loops_read_as_the_python_ones(
    build: ElfBuilder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`_read`'s symbol-table, relocation and code loops in C (_elftables.c) make the
    graph the Python loops make, order of every table included: on this machine's
    libraries (x86-64, and aarch64 ones where the cross toolchain put them), a test
    library of each architecture and a position-dependent program."""
    if callgraph._elftables is None:
        pytest.skip("_elftables.c is not built")
    files = _elf_files("/usr/lib/x86_64-linux-gnu", 40)
    files += _elf_files("/usr/aarch64-linux-gnu/lib", 10)
    arm64 = "aarch64-linux-gnu-gcc"
    program = CALLBACK_TABLE + "int main(void) { return dispatch(1); }\n"
    files += [
        build.c("parity.so", CALLBACK_TABLE, "-shared", "-fPIC"),
        build.c("parity-arm64.so", HELPER_PLT, "-shared", "-fPIC", compiler=arm64),
        build.c("parity-exec", program, "-no-pie"),
    ]
    compiled = [_graph_state(CallGraph.from_bytes(p.read_bytes())) for p in files]
    monkeypatch.setattr(callgraph, "_elftables", None)
    assert [_graph_state(CallGraph.from_bytes(p.read_bytes())) for p in files] == compiled
    assert sum(state[0] == COMPLETE and bool(state[-2]) for state in compiled) > 30


def test_the_compiled_table_loops_refuse_malformed_arguments() -> None:
    tables = callgraph._elftables
    if tables is None:
        pytest.skip("_elftables.c is not built")
    code = array.array("Q", [0x1000, 0x2000])
    kinds = (8, 37, 1, 6, 7)
    with pytest.raises(ValueError):
        tables.graph_symbols(bytes(23), b"", True, code, [], [], {}, {}, {}, {})
    with pytest.raises(ValueError):
        tables.graph_relocations(bytes(24), kinds, [], array.array("Q", [1]), {}, {}, set())
    symbolic = (0).to_bytes(8, "little") + ((1 << 32) | 1).to_bytes(8, "little") + bytes(8)
    with pytest.raises(TypeError):  # a .dynsym entry that is not (name, type, value, defined)
        tables.graph_relocations(symbolic, kinds, [(), "bad"], code, {}, {}, set())
    assert tables.in_code([0xFFF, 0x1000, 0x1FFF, 0x2000, -1, 1 << 70], code) == [0x1000, 0x1FFF]
    with pytest.raises(TypeError):
        tables.in_code(["0x1000"], code)


def test_the_compiled_chains_refuse_malformed_arguments() -> None:
    """`_x86scan.chains` (a walk's chains, tests/test_callgraph_fast.py holds them equal
    to the Python's): a walk's tables that are not what it makes raise, not crash."""
    scan = callgraph._x86scan
    if scan is None:
        pytest.skip("_x86scan.c is not built")
    parent = {1: (None, "root"), 2: (1, "call")}
    names = {2: "f"}
    assert scan.chains({"g": (2, True)}, parent, names, str, "<indirect>") == {
        "g": ("root", "f", "<indirect>", "g")
    }
    named = scan.chains({"g": (2, False)}, parent, {}, lambda at: f"sub_{at:x}", "<indirect>")
    assert named == {"g": ("root", "sub_2", "g")}  # a name not cached is asked for
    with pytest.raises(KeyError):  # a node the walk never reached
        scan.chains({"g": (3, False)}, parent, names, str, "<indirect>")
    with pytest.raises(TypeError):  # first maps an import to (node, via)
        scan.chains({"g": 2}, parent, names, str, "<indirect>")
    with pytest.raises(TypeError):
        scan.chains({"g": (2, False)}, parent, names, str, 7)
