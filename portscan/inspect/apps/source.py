"""What one application source file names, and how that meets a language's API table.

python.py and javascript.py parse a file into `SourceFacts`: the modules it imports, the
qualified names it references (after its import aliases are resolved) and the methods
it calls on objects; `match_uses` turns them into `ApiUse`s with the table's ids.
Matching is data (signatures/*-modules.json): no language knowledge lives here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from portscan.knowledge.tables import ApiTable
from portscan.model import ApiUse


@dataclass
class SourceFacts:
    """The names one source file uses, each with the first line it appears on."""

    imports: dict[str, int] = field(default_factory=dict)  # module -> line
    references: dict[str, int] = field(default_factory=dict)  # qualified name -> line
    methods: dict[str, int] = field(default_factory=dict)  # method name -> line
    specifiers: list[str] = field(default_factory=list)  # what to follow: modules, paths

    def add_import(self, module: str, line: int) -> None:
        self.imports.setdefault(module, line)
        self.specifiers.append(module)

    def add_reference(self, name: str, line: int) -> None:
        self.references.setdefault(name, line)

    def add_method(self, name: str, line: int) -> None:
        self.methods.setdefault(name, line)


def _imports_any(facts: SourceFacts, modules: frozenset[str]) -> bool:
    return any(m in modules or m.split(".", 1)[0] in modules for m in facts.imports)


def match_uses(facts: SourceFacts, path: str, table: ApiTable) -> list[ApiUse]:
    """Every use of a table entry in one file. An import is evidence only where the file
    shows no reference or method call for that entry (the call line says more)."""
    uses: list[ApiUse] = []
    for api in table.apis:
        found = [
            ApiUse(api.id, name, path, line)
            for name, line in facts.references.items()
            if api.uses.fullmatch(name)
        ]
        for rule in api.methods:
            line = facts.methods.get(rule.name)
            if line is not None and _imports_any(facts, rule.modules):
                found.append(ApiUse(api.id, f".{rule.name}()", path, line))
        if not found:
            found = [
                ApiUse(api.id, f"import {module}", path, line)
                for module, line in facts.imports.items()
                if module in api.imports
            ]
        uses += sorted(found, key=lambda use: (use.line or 0, use.name))
    return uses
