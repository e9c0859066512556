"""The rule registry (ruff's model): every catalogue rule is one documented unit that a real
input makes fire, and no code emits an id the catalogue lacks.

Each rule is run through the real lint stage (`lint_image`, which calls lint_binary,
lint_script, lint_application and lint_config, and through them judge_symbols,
judge_syscalls and judge_paths) on hand-made `Binary`, `Script`, `Application` and
`ImageConfig` objects, with the graph built by graph.build.build_graph. The input comes from
how `rules.emitter(rule)` says the rule is emitted: a capability's symbols, syscalls, path
strings and API uses from signatures/; a binary of the rule's runtime; the names that
complete the rule's pattern; the functions of the runtime-semantics.json rows that name the
rule; a hand-made case for each id that code emits by name.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest

from portscan import knowledge
from portscan.graph.build import GraphInputs, build_graph, reachable
from portscan.graph.reach import ImageReach, LibraryReach, reach_image
from portscan.knowledge import ruleids, rules
from portscan.knowledge import tables as sig
from portscan.layers import merge_layers
from portscan.lint.components import lint_image
from portscan.lint.uses import TABLES
from portscan.model import (
    ApiUse,
    Application,
    Binary,
    ChainStep,
    FileEntry,
    FileKind,
    Finding,
    ImageConfig,
    LayerResult,
    Runtime,
    Script,
    SyscallReport,
    SyscallSite,
)

PACKAGE = Path(__file__).resolve().parent.parent / "portscan"
ANY_ID = re.compile(r"\bPS\d{3}\b")
APP = "/usr/bin/app"
NOT_ROOT = ImageConfig(user="app")  # else every image fires PS512

# Rules no input can make fire today: each names the gap, and the test fails (strict
# xfail) as soon as the gap is closed, so that this list is kept honest.
GAPS = {
    "PS209": "raw-sockets is documented as seen 'in code patterns, not in symbol names' "
    "(socket(AF_PACKET), SOCK_RAW, AF_NETLINK), but capabilities.json maps no symbol, "
    "syscall or path to it, patterns.json has no entry for it, and no API table names it: "
    "nothing reads socket() arguments",
}


def _without_wasix_list(lint: Callable[[], list[Finding]]) -> list[Finding]:
    """`lint()` with signature data that names no C-library list for wasix: every shipped
    target has one, so PS906 needs a copy of signatures/ without it."""
    with tempfile.TemporaryDirectory() as copy:
        for path in knowledge.signatures_dir().glob("*.json"):
            doc = json.loads(path.read_text())
            if path.name == "wasix-libc.json":
                doc["list_for_target"] = {}
            (Path(copy) / path.name).write_text(json.dumps(doc))
        previous = os.environ.get(knowledge.SIGNATURES_ENV)
        os.environ[knowledge.SIGNATURES_ENV] = copy
        sig.clear_cache()
        try:
            findings = lint()
        finally:
            if previous is None:
                del os.environ[knowledge.SIGNATURES_ENV]
            else:
                os.environ[knowledge.SIGNATURES_ENV] = previous
            sig.clear_cache()
    missing = [e.detail for f in findings if f.rule_id == "PS906" for e in f.evidence]
    assert missing and all("no defined-symbol list of wasix's C library" in d for d in missing)
    return findings


def _lint(
    binaries: Mapping[str, Binary] = {},
    *,
    scripts: Mapping[str, Script] = {},
    config: ImageConfig = NOT_ROOT,
    applications: Sequence[Application] = (),
    go_uses: Mapping[str, list[ApiUse]] | None = None,
    files: Mapping[str, bytes] = {},
    reach: ImageReach | bool = False,
) -> list[Finding]:
    """Every finding the lint stage makes of an image holding these facts; with `reach`
    (True: worked out from the facts, no bytes kept) judged by what programs reach."""
    data = {path: b"\x7fELF" for path in binaries} | {path: b"#!" for path in scripts}
    data |= {app.entry: b"" for app in applications} | dict(files)
    entries = [
        FileEntry(path, FileKind.FILE, 0o755, len(content), data=content)
        for path, content in sorted(data.items())
    ]
    tree = merge_layers([LayerResult(digest=None, entries=entries)])
    graph = build_graph(GraphInputs(tree, config, binaries, scripts))
    if reach is True:
        reach = reach_image(graph, binaries, None, reachable(graph))
    components, image_findings = lint_image(
        config, graph, binaries, scripts, {}, {}, reachable(graph),
        applications=applications, go_uses=go_uses, reach=reach or None,
    )  # fmt: skip
    return [f for c in components for f in c.findings] + image_findings


def _binary(**facts: object) -> Binary:
    facts = {"machine": "x86_64", "elf_class": 64, "file_type": "executable"} | facts
    return Binary(**facts)  # type: ignore[arg-type]


def _syscalls(*names: str) -> SyscallReport:
    sites = [
        SyscallSite(0x401000 + i, "instruction", "syscall", "x86_64", None, name)
        for i, name in enumerate(names)
    ]
    return SyscallReport(abi="x86_64", resolved=sites)


def _app(language: str, uses: Sequence[str] = (), unread: Mapping[str, str] = {}) -> Application:
    entry = "/app/main.py" if language == "python" else "/app/main.js"
    api_uses = [ApiUse(api, api, entry, 1) for api in uses]
    return Application(language, entry, None, [entry], api_uses, dict(unread))


ENTRY_SCRIPT = Script("/docker-entrypoint.sh", "#!/bin/sh", "/bin/sh", "/bin/sh")

# One hand-made input per id that code emits by name (knowledge/ruleids.py).
DIRECT = {
    ruleids.APPLICATION_CODE: lambda: _lint(applications=[_app("python")]),
    ruleids.UNREAD_SOURCE: lambda: _lint(
        applications=[_app("python", unread={"/app/legacy.py": "invalid syntax (line 3)"})]
    ),
    ruleids.NATIVE_EXTENSION: lambda: _lint(
        applications=[
            dataclasses.replace(_app("python"), extensions={"_fast": "/app/_fast.abi3.so"})
        ]
    ),
    ruleids.SHELL_ENTRYPOINT: lambda: _lint(
        {"/bin/sh": _binary(linkage="static")},
        scripts={"/docker-entrypoint.sh": ENTRY_SCRIPT},
        config=ImageConfig(entrypoint=["/docker-entrypoint.sh"], user="app"),
        files={"/docker-entrypoint.sh": b"#!/bin/sh\nexec /bin/sh\n"},
    ),
    ruleids.LIBC_AVAILABLE: lambda: _lint(
        {APP: _binary(linkage="dynamic", imported_symbols=["printf@GLIBC_2.2.5"])}
    ),
    ruleids.LIBC_MISSING: lambda: _lint(
        {APP: _binary(linkage="dynamic", imported_symbols=["getrandom@GLIBC_2.25"])}
    ),
    # rules.json's example, times, is now process-clocks' (PS610): only the emulation
    # libraries' names that no capability claims are left
    ruleids.LIBC_EMULATED: lambda: _lint(
        {APP: _binary(linkage="static", linked_calls=["__SIG_IGN"])}
    ),
    ruleids.UNKNOWN_SYMBOL: lambda: _lint(
        {APP: _binary(linkage="dynamic", imported_symbols=["puts@GLIBC_2.2.5", "frobnicate"])}
    ),
    ruleids.NO_TARGET_DATA: lambda: _without_wasix_list(
        lambda: _lint({APP: _binary(linkage="dynamic", imported_symbols=["getmntent@GLIBC_2.2.5"])})
    ),
    ruleids.SYSCALLS_ONLY: lambda: _lint(
        {APP: _binary(linkage="static", syscalls=_syscalls("read", "write"))}
    ),
    ruleids.MALFORMED: lambda: _lint({APP: Binary(error="truncated section header table")}),
    ruleids.UNRESOLVED_LIBRARY: lambda: _lint(
        {APP: _binary(linkage="dynamic", libc="glibc", needed=["libfoo.so.1"])}
    ),
    ruleids.UNSUPPORTED: lambda: _lint({APP: _binary(linkage="static")}),
    # a program with a known Wasm port (signatures/ports.json), matched by its file name
    ruleids.PORT_EXISTS: lambda: _lint({"/usr/bin/bash": _binary(linkage="dynamic")}),
    # a plugin: a library nothing in the image loads (tests/test_reach.py walks real ones)
    ruleids.JUDGED_WHOLE: lambda: _lint(
        {
            "/usr/lib/plugin.so": _binary(
                linkage="dynamic", file_type="shared-library", imported_symbols=["fork@GLIBC_2.2.5"]
            )
        },
        reach=True,
    ),
    # a library of which the program reaches only puts (a walk's outcome, made by hand)
    ruleids.LATENT_IMPORTS: lambda: _lint(
        {
            APP: _binary(linkage="dynamic", needed=["libx.so.1"], imported_symbols=["x_print"]),
            "/usr/lib/libx.so.1": _binary(
                linkage="dynamic",
                file_type="shared-library",
                soname="libx.so.1",
                exported_symbols=["x_print", "x_spawn"],
                imported_symbols=["puts@GLIBC_2.2.5", "fork@GLIBC_2.2.5"],
            ),
        },
        reach=ImageReach(
            libraries={
                "/usr/lib/libx.so.1": LibraryReach(
                    "/usr/lib/libx.so.1",
                    {
                        "puts@GLIBC_2.2.5": (
                            ChainStep(APP),
                            ChainStep("/usr/lib/libx.so.1", "x_print"),
                        )
                    },
                )
            }
        ),
    ),
}


def _capability_findings(rule: rules.Rule) -> list[Finding]:
    """The capability's symbols (and the symbols its rule's example names), its strong
    syscalls, its path strings and the API uses of every language table that maps to it."""
    assert rule.capability is not None
    info = sig.capability_map().capabilities[rule.capability]
    example = [w.strip(",") for w in rule.example.split() if "@" in w]
    symbols = [*info.symbols, *example]
    syscalls = [s for s in info.syscalls if s not in info.weak_syscalls]
    paths = [  # a signature ending in "/" matches what lies under it
        s.path + "x" * s.path.endswith("/")
        for s in sig.path_signatures()
        if s.capability == rule.capability
    ]
    uses = {
        language: [api.id for api in sig.api_table(table).apis if api.capability == rule.capability]
        for language, table in TABLES.items()
    }
    findings = []
    if symbols or paths:
        binary = _binary(linkage="dynamic", imported_symbols=symbols, path_strings=paths)
        findings += _lint({APP: binary})
    if syscalls:
        findings += _lint({APP: _binary(linkage="static", syscalls=_syscalls(*syscalls))})
    if uses["go"]:
        go = _binary(linkage="static", libc="none", runtime=Runtime("go"))
        go_uses = {APP: [ApiUse(api, api, APP) for api in uses["go"]]}
        findings += _lint({APP: go}, go_uses=go_uses)
    apps = [_app(language, uses[language]) for language in ("python", "javascript")]
    findings += _lint(applications=[app for app in apps if app.uses])
    return findings


def _pattern_findings(rule: rules.Rule) -> list[Finding]:
    """A program importing one name of each group of the rule's pattern."""
    (pattern,) = [p for p in sig.load("patterns.json")["patterns"] if p["rule"] == rule.id]
    names = [group[0] for group in pattern["all"]]
    return _lint({APP: _binary(linkage="dynamic", imported_symbols=names)})


def _semantics_findings(rule: rules.Rule) -> list[Finding]:
    """A program importing the functions of every runtime-semantics.json row that names the
    rule (the newest data: every row holds)."""
    names = [
        f"{function}@GLIBC_2.2.5"
        for row in sig.runtime_semantics()
        if row.rule == rule.id
        for function in row.functions
    ]
    return _lint({APP: _binary(linkage="dynamic", imported_symbols=names)})


def _config_findings(rule: rules.Rule) -> list[Finding]:
    """An image config whose field the rule checks holds a value that fires it."""
    check = rule.config
    assert check is not None
    value = check.values[0] if check.values is not None else ["8080/tcp"]  # a list field
    return _lint(config=dataclasses.replace(NOT_ROOT, **{check.field: value}))


def _findings_for(rule: rules.Rule) -> list[Finding]:
    way = rules.emitter(rule)
    if way == rules.CAPABILITY:
        return _capability_findings(rule)
    if way == rules.RUNTIME:
        return _lint({APP: _binary(linkage="dynamic", runtime=Runtime(str(rule.runtime)))})
    if way == rules.PATTERN:
        return _pattern_findings(rule)
    if way == rules.CONFIG:
        return _config_findings(rule)
    if way == rules.SEMANTICS:
        return _semantics_findings(rule)
    return DIRECT[rule.id]()


def _param(rule_id: str) -> object:
    if rule_id in GAPS:
        return pytest.param(rule_id, marks=pytest.mark.xfail(strict=True, reason=GAPS[rule_id]))
    return rule_id


@pytest.mark.parametrize("rule_id", [_param(rule.id) for rule in rules.all_rules()])
def test_every_rule_fires_on_a_real_input(rule_id: str) -> None:
    findings = _findings_for(rules.get_rule(rule_id))
    emitted = {f.rule_id for f in findings}
    catalogued = {rule.id for rule in rules.all_rules()}
    assert emitted <= catalogued, f"uncatalogued ids emitted: {sorted(emitted - catalogued)}"
    assert rule_id in emitted, f"{rule_id} did not fire; the input made {sorted(emitted)}"


@pytest.mark.xfail(
    strict=True,
    reason="PS513 documents `config` evidence (StopSignal: SIGQUIT, and the entrypoint "
    "imports sigaction) but lint_config never reads ImageConfig.stop_signal: PS513 fires "
    "only from its symbol pattern (signatures/patterns.json). The rule does not say "
    "whether StopSignal alone suffices, so no config finding is made up here.",
)
def test_stop_signal_config_evidence() -> None:
    config = ImageConfig(stop_signal="SIGQUIT", user="app")
    assert "PS513" in {f.rule_id for f in _lint(config=config)}


def test_every_rule_has_one_emitter_and_direct_ones_have_a_case() -> None:
    ways = {rule.id: rules.emitter(rule) for rule in rules.all_rules()}
    direct = {rule_id for rule_id, way in ways.items() if way.startswith("lint.")}
    assert direct == set(ruleids.EMITTED_BY) == set(DIRECT)
    for rule_id in direct:  # the function named exists in the lint stage
        module, _, function = ways[rule_id].rpartition(".")
        assert callable(getattr(importlib.import_module(f"portscan.{module}"), function)), rule_id
    assert {r for r, way in ways.items() if way == rules.PATTERN} == rules.pattern_rule_ids()
    assert all(way != rules.RUNTIME or rules.get_rule(r).runtime for r, way in ways.items())


def test_registry_disagreeing_with_the_catalogue_does_not_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    entries = sig.load("rules.json")["rules"]
    monkeypatch.setitem(ruleids.EMITTED_BY, "PS999", "lint.config.lint_config")
    with pytest.raises(sig.SignaturesError, match="PS999"):
        rules._check_emitters(entries)
    monkeypatch.delitem(ruleids.EMITTED_BY, "PS999")
    monkeypatch.setitem(ruleids.EMITTED_BY, "PS101", "lint.config.lint_config")
    with pytest.raises(sig.SignaturesError, match="PS101"):  # also a capability's rule
        rules._check_emitters(entries)


def test_ruleids_constants_are_the_registry() -> None:
    constants = {
        name: value
        for name, value in vars(ruleids).items()
        if name.isupper() and isinstance(value, str)
    }
    assert sorted(constants.values()) == sorted(ruleids.EMITTED_BY)
    assert all(rules.RULE_ID.match(value) for value in constants.values())


def _string_literals(tree: ast.Module) -> list[ast.Constant]:
    """String constants that are not docstrings."""
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        and id(node) not in docstrings
    ]  # fmt: skip


def test_no_code_spells_a_rule_id_outside_the_registry() -> None:
    """Rule ids in code are ruleids' names; data (signatures/) names the others."""
    catalogued = {rule.id for rule in rules.all_rules()}
    spelled = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in _string_literals(ast.parse(path.read_text(encoding="utf-8"))):
            for rule_id in ANY_ID.findall(node.value):
                spelled.append((path.relative_to(PACKAGE).as_posix(), node.lineno, rule_id))
    registry = [s for s in spelled if s[0] == "knowledge/ruleids.py"]
    assert [s for s in spelled if s[0] != "knowledge/ruleids.py"] == []
    assert {rule_id for _, _, rule_id in registry} <= catalogued
    assert len(registry) == len(ruleids.EMITTED_BY)
