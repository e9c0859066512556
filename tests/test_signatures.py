"""The signatures/ data: generated tables match their sources, curated tables hang together."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

from portscan import knowledge
from portscan.knowledge import tables as sig
from portscan.knowledge.rules import all_rules
from portscan.model import Target, Verdict

REPO = Path(__file__).resolve().parent.parent
SIGNATURES = REPO / "signatures"
LISTS = SIGNATURES / "data" / "wasi-libc"
WASIX_LISTS = SIGNATURES / "data" / "wasix-libc"
LIST_TARGETS = (Target.WASIP1, Target.WASIP2, Target.WASIP3)  # judged by wasi-libc's lists


def _gen_libc():
    spec = importlib.util.spec_from_file_location("gen_libc", SIGNATURES / "tools" / "gen_libc.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_libc"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gen_libc():
    return _gen_libc()


@pytest.mark.skipif(
    not (LISTS.is_dir() and WASIX_LISTS.is_dir()), reason="needs signatures/data/wasi*-libc"
)
def test_generated_libc_matches_its_sources(gen_libc, tmp_path: Path) -> None:
    committed = (SIGNATURES / "wasi-libc.json").read_text()
    committed_wasix = (SIGNATURES / "wasix-libc.json").read_text()
    date = json.loads(committed)["generated_on"]
    assert json.loads(committed_wasix)["generated_on"] == date  # one run makes both
    out, wasix_out = tmp_path / "wasi-libc.json", tmp_path / "wasix-libc.json"
    args = ["--source", str(LISTS), "--out", str(out), "--date", date]
    args += ["--wasix-source", str(WASIX_LISTS), "--wasix-out", str(wasix_out)]
    assert gen_libc.main(args) == 0
    assert out.read_text() == committed, "regenerate with signatures/tools/gen_libc.py"
    assert wasix_out.read_text() == committed_wasix, "regenerate with signatures/tools/gen_libc.py"


def _copy(source: Path, target: Path) -> Path:
    for path in source.rglob("*"):
        if path.is_file():
            (target / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
            (target / path.relative_to(source)).write_bytes(path.read_bytes())
    return target


@pytest.mark.skipif(not WASIX_LISTS.is_dir(), reason="needs signatures/data/wasix-libc")
def test_generator_checks_wasix_lists_and_notes(gen_libc, tmp_path: Path) -> None:
    notes = SIGNATURES / "wasix-libc-notes.json"
    source = _copy(WASIX_LISTS, tmp_path / "lists")
    listed = source / "wasm32-wasi-eh" / "defined-symbols.txt"
    listed.write_text(listed.read_text() + "fork\n")
    with pytest.raises(gen_libc.SourceError, match="sha256"):
        gen_libc.generate_wasix(source, notes, "2026-01-01")
    doc = json.loads(notes.read_text())  # a curated claim the list contradicts
    doc["flavours"]["wasm32-wasi-eh"]["defines"].append("fork")
    (tmp_path / "notes.json").write_text(json.dumps(doc))
    with pytest.raises(gen_libc.SourceError, match="said to be defined"):
        gen_libc.generate_wasix(WASIX_LISTS, tmp_path / "notes.json", "2026-01-01")


@pytest.mark.skipif(not LISTS.is_dir(), reason="needs signatures/data/wasi-libc")
def test_generator_refuses_a_list_that_differs_from_its_readme(gen_libc, tmp_path: Path) -> None:
    source = tmp_path / "lists"
    for path in LISTS.rglob("*"):
        if path.is_file():
            target = source / path.relative_to(LISTS)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    listed = source / "wasm32-wasip1" / "defined-symbols.txt"
    listed.write_text(listed.read_text().replace("\nfork\n", "\n") + "\nzzz_extra")
    notes = SIGNATURES / "wasi-libc-notes.json"
    with pytest.raises(gen_libc.SourceError, match="sha256"):
        gen_libc.generate(source, notes, "2026-01-01")


def test_membership_counts_match_the_stated_counts() -> None:
    libc = sig.libc()
    for c_library, provenance in libc.provenance.items():
        for entry in provenance["lists"]:
            assert libc.c_library[entry["name"]] == c_library
            assert len(libc.list_symbols(entry["name"])) == entry["count"]
    assert libc.list_for_target == {
        Target.WASIP1: "wasm32-wasip1",
        Target.WASIP2: "wasm32-wasip2",
        Target.WASIP3: "wasm32-wasip3",
        Target.WASIX: "wasm32-wasi",
    }
    assert set(libc.list_for_target) == set(Target)  # no target is left without a list


def test_list_facts_the_source_readme_states() -> None:
    libc = sig.libc()
    for symbol in ("fork", "execve", "sigaction", "dlopen", "flock", "getuid", "msync"):
        assert not libc.known(symbol)
    assert libc.defines("accept", Target.WASIP1)
    assert not libc.defines("socket", Target.WASIP1)
    assert libc.defines("socket", Target.WASIP2)
    assert libc.defines("pthread_create", Target.WASIP1)
    assert libc.defines("gethostname", Target.WASIP1)
    assert not libc.defines("gethostname", Target.WASIP1, as_of="2025-08-15")
    assert libc.library_for("setjmp").name == "libsetjmp"
    assert libc.library_for("mmap").flags == ("-D_WASI_EMULATED_MMAN",)
    assert libc.library_for("mmap", Target.WASIX) is None  # wasixcc links the emulation


def test_wasix_list_facts_the_source_readme_states() -> None:
    """signatures/data/wasix-libc/README.md: what the default flavour has and lacks, and
    what the exception-handling flavours lack."""
    libc, wasix = sig.libc(), Target.WASIX
    assert libc.flavours[wasix][0] == libc.list_of(wasix) == "wasm32-wasi"
    defined = "fork vfork pthread_create socket epoll_create dlopen setjmp execve posix_spawn"
    for symbol in (*defined.split(), "sigaction", "mmap", "getpid"):
        assert libc.defines(symbol, wasix), symbol
    for symbol in ("getgroups", "setresuid", "setresgid", "shmget", "getauxval", "getcontext"):
        assert libc.defines(symbol, wasix) is False, symbol
    for flavour in ("wasm32-wasi-eh", "wasm32-wasi-ehpic"):
        for symbol in ("fork", "vfork", "_Fork"):
            assert not libc.defines(symbol, wasix, flavour=flavour), (flavour, symbol)
        assert "setjmp" not in libc.list_symbols(flavour)  # the compiler lowers it:
        assert libc.defines("setjmp", wasix, flavour=flavour)  # __wasm_setjmp is there
        assert libc.defines("pthread_create", wasix, flavour=flavour)
    assert not libc.defines("dlopen", wasix, flavour="wasm32-wasi-eh")
    assert libc.defines("dlopen", wasix, flavour="wasm32-wasi-ehpic")
    assert libc.defines("fork", Target.WASIP1) is False  # a flavour is wasix's only
    assert libc.defines("fork", Target.WASIP1, flavour="wasm32-wasi-eh") is False
    with pytest.raises(sig.UsageError, match="wasm32-wasi-ehpic"):
        libc.defines("fork", wasix, flavour="wasm32-wasip1")


def test_targets_and_verdict_order_match_the_model() -> None:
    doc = sig.load("targets.json")
    assert [t["id"] for t in doc["targets"]] == [t.value for t in Target]
    assert doc["verdicts"]["order"] == [v.value for v in Verdict]
    for info in sig.targets().values():
        assert info.libc_list == sig.libc().list_for_target.get(info.target)


def test_capabilities_are_named_once_and_cover_every_target() -> None:
    capabilities = sig.capability_map().capabilities
    used = {rule.capability for rule in all_rules() if rule.capability}
    used |= {path.capability for path in sig.path_signatures()}
    assert used <= set(capabilities)  # every id used elsewhere is defined here
    for info in capabilities.values():
        assert set(info.support) == set(Target), info.capability
        assert info.weak_syscalls <= set(info.syscalls), info.capability
        for target, support in info.support.items():
            assert support.how, (info.capability, target)
            assert support.missing <= set(info.symbols), (info.capability, target)
            if support.uses:
                assert support.uses in sig.libc().libraries


def test_hand_written_missing_lists_agree_with_the_generated_lists() -> None:
    """'missing' is for a target without a list; where a target has one, a hand-written
    list must name exactly the capability's functions that the list lacks."""
    libc = sig.libc()
    for info in sig.capability_map().capabilities.values():
        for target, support in info.support.items():
            if not support.missing or libc.list_of(target) is None:
                continue
            lacking = {s for s in info.symbols if not libc.defines(s, target)}
            assert support.missing == lacking, (info.capability, target)


def test_emulated_functions_map_to_shim_capabilities_using_their_library() -> None:
    capmap = sig.capability_map()
    for library in sig.libc().libraries.values():
        if not library.in_lists:
            continue
        for symbol in library.symbols:
            if symbol.startswith("__SIG_"):  # data objects of the signal emulation
                continue
            info = capmap.for_symbol(symbol)
            assert info is not None, symbol
            for target in LIST_TARGETS:
                support = info.support[target]
                assert (support.verdict, support.uses) == (Verdict.SHIM, library.name), symbol


def test_functions_a_target_lacks_for_usable_capabilities_come_with_advice() -> None:
    libc, capmap = sig.libc(), sig.capability_map()
    for info in capmap.capabilities.values():
        if info.provided_by:
            continue
        for target in LIST_TARGETS:
            if info.support[target].verdict.rank <= Verdict.REWORK.rank:
                continue
            for symbol in info.symbols:
                library = libc.library_for(symbol)
                provided = library is not None and not library.in_lists
                if not libc.defines(symbol, target) and not provided:
                    assert symbol in capmap.hints, (info.capability, target, symbol)


def test_syscall_names_exist_in_the_syscall_tables() -> None:
    tables = sorted((SIGNATURES / "syscalls").glob("*.json"))
    if not tables:
        pytest.skip("no syscall tables yet")
    docs = [json.loads(t.read_text()) for t in tables]
    names = {s["name"] for doc in docs for s in doc.get("syscalls", ())}
    unknown = sorted(set(sig.capability_map().by_syscall) - names)
    assert not unknown


def test_runtimes_match_the_runtime_markers() -> None:
    markers = SIGNATURES / "runtimes-markers.json"
    if not markers.exists():
        pytest.skip("no runtime markers yet")
    names = {r["name"] for r in json.loads(markers.read_text())["runtimes"]}
    assert set(sig.runtimes()) <= names
    for info in sig.runtimes().values():
        assert set(info.support) == set(Target)


def test_every_reference_resolves() -> None:
    known = sig.references()
    cited = [r for info in sig.capability_map().capabilities.values() for r in info.references]
    cited += [r for info in sig.runtimes().values() for r in info.references]
    cited += [r for info in sig.targets().values() for r in info.references]
    cited += [r for rule in sig.load("rules.json")["rules"] for r in rule.get("references", ())]
    for notes in ("wasi-libc-notes.json", "wasix-libc-notes.json"):
        doc = sig.load(notes)
        groups = [
            doc.get(k, {})
            for k in ("emulation", "excluded_libraries", "history", "flavours", "lowered")
        ]
        cited += [entry["source"] for group in groups for entry in group.values()]
    assert set(cited) <= set(known)
    for ref in known.values():
        assert (
            (ref.url or "").startswith("https://")
            or (ref.path and (REPO / ref.path).exists())  # a file of this repository
        ), ref.id


def test_normalisation_data_is_consistent() -> None:
    norm = sig.normalisation()
    libc, capmap = sig.libc(), sig.capability_map()
    for alias, function in norm.aliases.items():
        assert libc.known(function) or capmap.for_symbol(function), (alias, function)
    assert not set(norm.ignored) & set(capmap.by_symbol)
    assert all(isinstance(pattern, re.Pattern) for pattern, _ in norm.rewrites)


def test_path_signatures_name_capabilities_with_a_rule() -> None:
    from portscan.knowledge import rules

    for signature in sig.path_signatures():
        assert rules.rule_for_capability(signature.capability).evidence == ("path",)


def test_another_signatures_directory_can_be_used(tmp_path: Path, monkeypatch) -> None:
    for path in SIGNATURES.glob("*.json"):
        (tmp_path / path.name).write_text(path.read_text())
    doc = json.loads((tmp_path / "paths.json").read_text())
    doc["paths"] = doc["paths"][:1]
    (tmp_path / "paths.json").write_text(json.dumps(doc))
    monkeypatch.setenv(knowledge.SIGNATURES_ENV, str(tmp_path))
    sig.clear_cache()
    try:
        assert len(sig.path_signatures()) == 1
    finally:
        monkeypatch.delenv(knowledge.SIGNATURES_ENV)
        sig.clear_cache()
    assert len(sig.path_signatures()) > 1


def test_missing_data_is_a_portscan_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(knowledge.SIGNATURES_ENV, str(tmp_path))
    sig.clear_cache()
    try:
        with pytest.raises(sig.SignaturesError, match="cannot read signature data"):
            sig.capability_map()
    finally:
        monkeypatch.delenv(knowledge.SIGNATURES_ENV)
        sig.clear_cache()


def test_interpreted_runtimes_are_never_ready() -> None:
    runtimes = sig.runtimes()
    interpreted = {key for key, info in runtimes.items() if info.interpreted}
    assert {"cpython", "nodejs", "ruby", "php", "perl", "jvm", "dotnet"} <= interpreted
    assert not interpreted & {"go", "rust"}  # compiled: the program is rebuilt, not swapped
    for key in interpreted:  # swapped for a Wasm build (shim) or reworked, never as is
        verdicts = {s.verdict for s in runtimes[key].support.values()}
        assert not verdicts & {Verdict.READY, Verdict.UNKNOWN}, key
