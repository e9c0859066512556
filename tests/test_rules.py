"""The rule catalogue: stable ids, complete documentation, one rule per capability."""

from __future__ import annotations

import pytest

from portscan.knowledge import rules
from portscan.knowledge import tables as sig
from portscan.model import Target, Verdict
from portscan.report.rules import render_rule_text

# Ids are stable: a released id keeps its name forever. New rules are added below.
RELEASED = """
PS101 process-fork  PS102 process-exec  PS103 process-wait  PS104 process-session
PS105 process-id  PS106 process-parent  PS107 signals-sync  PS108 signals-async
PS109 signal-timers  PS110 threads  PS111 ptrace  PS112 resource-limits  PS113 privileges
PS201 socket-client  PS202 socket-server  PS203 socket-io  PS204 dns  PS205 local-sockets
PS206 network-interfaces  PS207 epoll  PS208 polling  PS209 raw-sockets
PS301 memory-map  PS302 memory-map-coherent  PS303 shared-memory  PS304 sysv-ipc
PS305 message-queues  PS306 pipes  PS307 fifos
PS401 dynamic-loading  PS402 setjmp  PS403 cxx-exceptions  PS404 cxx-library-throws
PS405 cxx-stdlib  PS410 cpython  PS411 go  PS412 rust  PS413 nodejs  PS414 jvm
PS415 dotnet  PS416 php  PS417 ruby  PS418 perl  PS421 native-extension  PS430 port-exists
PS501 listening-server  PS502 event-loop  PS503 daemonising  PS504 fork-per-connection
PS505 prefork-workers  PS506 shared-memory-state  PS507 shell-entrypoint
PS510 exposed-ports  PS511 volumes  PS512 user-root  PS513 stop-signal
PS520 device-paths  PS521 procfs-paths
PS600 libc-available  PS601 libc-missing  PS602 libc-emulated  PS603 filesystem
PS604 file-ownership  PS605 file-locking  PS606 temp-files  PS607 fs-events
PS608 terminal  PS609 users-groups  PS610 process-clocks  PS611 time  PS612 randomness
PS613 environment  PS614 system-info  PS615 syslog  PS616 fd-duplication  PS617 kernel-io
PS618 kernel-admin  PS619 raw-syscall  PS620 ioctl  PS630 links-but-fails
PS631 run-time-semantics
PS901 malformed-elf  PS902 unresolved-library  PS903 unknown-symbol
PS904 unsupported-binary  PS905 syscall-evidence-only  PS906 no-target-data
"""
EVIDENCE_KINDS = {"symbol", "syscall", "path", "config", "pattern", "runtime", "file", "source"}


def test_released_ids_keep_their_names() -> None:
    words = RELEASED.split()
    released = dict(zip(words[::2], words[1::2], strict=True))
    current = {rule.id: rule.name for rule in rules.all_rules()}
    assert {key: current.get(key) for key in released} == released


def test_ids_and_names_are_unique_and_well_formed() -> None:
    all_rules = rules.all_rules()
    assert len({r.id for r in all_rules}) == len(all_rules)
    assert len({r.name for r in all_rules}) == len(all_rules)
    families = sig.load("rules.json")["families"]
    for rule in all_rules:
        assert rules.RULE_ID.match(rule.id), rule.id
        assert rule.family == families[rule.id[:3]]
        assert set(rule.evidence) <= EVIDENCE_KINDS, rule.id


def test_every_rule_is_documented_for_every_target() -> None:
    for rule in rules.all_rules():
        assert rule.title and rule.rationale and rule.example, rule.id
        assert set(rule.support) == set(Target), rule.id
        for target in Target:
            assert rule.remediation(target), (rule.id, target)
        if not rule.id.startswith("PS9"):
            assert rule.references, rule.id


def test_every_rule_renders() -> None:
    for rule in rules.all_rules():
        text = render_rule_text(rule)
        assert text.startswith(f"{rule.id} {rule.name}: {rule.title}\n"), rule.id
        for heading in ("## What it finds", "## Why it matters on WASI", "## Example"):
            assert heading in text, (rule.id, heading)
        for target in Target:
            assert f"\n{target.value:<7} {rule.verdict(target).value}\n" in text, rule.id


def test_shim_remediation_names_the_flags() -> None:
    text = render_rule_text(rules.get_rule("PS107"))
    assert "-D_WASI_EMULATED_SIGNAL" in text and "-lwasi-emulated-signal" in text
    assert "-fno-exceptions" in rules.get_rule("PS404").remediation(Target.WASIP1)
    assert "-wasm-enable-sjlj" in rules.get_rule("PS402").remediation(Target.WASIP1)


def test_each_capability_has_exactly_one_reporting_rule() -> None:
    entries = {e["id"]: e for e in sig.load("rules.json")["rules"]}
    for capability in sig.capability_map().capabilities:
        reporting = [
            r
            for r in rules.all_rules()
            if r.capability == capability and "targets" not in entries[r.id]
        ]
        if capability == "language-runtime":
            assert not reporting
            continue
        assert len(reporting) == 1, capability
        assert rules.rule_for_capability(capability) is reporting[0]
        info = sig.capability_map().capabilities[capability]
        assert reporting[0].support is info.support


def test_every_runtime_has_a_rule() -> None:
    covered = {r.runtime for r in rules.all_rules() if r.runtime}
    assert covered == set(sig.runtimes())


def test_rule_verdicts_follow_the_design() -> None:
    assert rules.get_rule("PS111").verdict(Target.WASIX) is Verdict.BLOCKED  # ptrace
    assert rules.get_rule("PS101").verdict(Target.WASIP2) is Verdict.REWORK  # fork
    assert rules.get_rule("PS101").verdict(Target.WASIX) is Verdict.READY
    assert rules.get_rule("PS201").verdict(Target.WASIP1) is Verdict.REWORK  # sockets
    assert rules.get_rule("PS201").verdict(Target.WASIP2) is Verdict.READY
    assert rules.get_rule("PS301").verdict(Target.WASIP1) is Verdict.SHIM  # mman
    assert rules.get_rule("PS304").verdict(Target.WASIP1) is Verdict.REWORK  # sysv
    for rule_id in ("PS901", "PS902", "PS903", "PS904", "PS905", "PS906"):
        assert {rules.get_rule(rule_id).verdict(t) for t in Target} == {Verdict.UNKNOWN}


def test_get_rule_is_case_insensitive_and_errors_are_usage_errors() -> None:
    assert rules.get_rule(" ps101 ").id == "PS101"
    with pytest.raises(rules.UnknownRuleError) as caught:
        rules.get_rule("PS999")
    assert caught.value.exit_code == 2
    assert "PS999" in str(caught.value)
