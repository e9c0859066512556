"""Every rule id that code emits by name, defined once, with the lint function that emits it.

The other rules of signatures/rules.json are emitted through data and have no name here:
- a capability's rule (rules.rule_for_capability) for the symbols, syscalls, path strings
  and application API uses that signatures/ maps to that capability;
- a runtime's rule (Rule.runtime) for a binary of that runtime;
- a pattern's rule (signatures/patterns.json) for the function names that complete it;
- a config rule (its "config" in rules.json) for the image-config field it checks.
`rules.emitter(rule)` says how each catalogue rule is emitted, and the catalogue refuses to
load when an id named here is not in rules.json. tests/test_rule_registry.py proves that
every catalogue rule fires on a real input and that code emits no id the catalogue lacks.
"""

from __future__ import annotations

EMITTED_BY: dict[str, str] = {}  # rule id -> the lint function that emits it by name


def _emitted_by(emitter: str, rule_id: str) -> str:
    if rule_id in EMITTED_BY:
        raise ValueError(f"rule id {rule_id} defined twice")
    EMITTED_BY[rule_id] = emitter
    return rule_id


# lint/uses.py: the application's own code
APPLICATION_CODE = _emitted_by("lint.uses.lint_application", "PS420")
UNREAD_SOURCE = _emitted_by("lint.uses.lint_application", "PS907")
NATIVE_EXTENSION = _emitted_by("lint.uses.lint_application", "PS421")

# lint/config.py: the image config
SHELL_ENTRYPOINT = _emitted_by("lint.config.lint_config", "PS507")

# lint/symbols.py: C-library names and syscall sites
LIBC_AVAILABLE = _emitted_by("lint.symbols.judge_function", "PS600")
LIBC_MISSING = _emitted_by("lint.symbols.judge_function", "PS601")
LIBC_EMULATED = _emitted_by("lint.symbols.judge_function", "PS602")
UNKNOWN_SYMBOL = _emitted_by("lint.symbols.judge_function", "PS903")
SYSCALLS_ONLY = _emitted_by("lint.symbols.judge_syscalls", "PS905")
NO_TARGET_DATA = _emitted_by("lint.symbols.judge_function", "PS906")

# lint/components.py: ELF files and scripts
PORT_EXISTS = _emitted_by("lint.components.lint_binary", "PS430")
MALFORMED = _emitted_by("lint.components.lint_binary", "PS901")
UNRESOLVED_LIBRARY = _emitted_by("lint.components.lint_binary", "PS902")  # and lint_script
UNSUPPORTED = _emitted_by("lint.components.lint_binary", "PS904")
LATENT_IMPORTS = _emitted_by("lint.components.lint_binary", "PS908")
JUDGED_WHOLE = _emitted_by("lint.components.lint_binary", "PS909")
