"""Generate signatures/wasi-libc.json and signatures/wasix-libc.json from the C libraries'
defined-symbol lists.

Reads the lists under signatures/data/wasi-libc/ (one directory per wasi-libc target,
each with defined-symbols.txt), checks them against the sha256 sums and counts that the
folder's README.md states, adds the curated notes from signatures/wasi-libc-notes.json
(emulation libraries, libraries upstream leaves out of the lists, when symbols appeared)
after checking those against the lists, and writes one JSON file with its provenance.
Then the same for wasix-libc: the lists under signatures/data/wasix-libc/ (one directory
per flavour), checked the same way, with signatures/wasix-libc-notes.json (which flavour
stands for the wasix target, what each flavour is, what the compiler lowers), written to
signatures/wasix-libc.json.

    python signatures/tools/gen_libc.py [--source DIR] [--notes FILE] [--out FILE]
        [--wasix-source DIR] [--wasix-notes FILE] [--wasix-out FILE] [--date D]

Standard library only; output is deterministic for a given --date.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

SIGNATURES = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = SIGNATURES / "data" / "wasi-libc"
SOURCE_ENV = "PORTSCAN_WASI_LIBC_LISTS"
DEFAULT_WASIX_SOURCE = SIGNATURES / "data" / "wasix-libc"
WASIX_SOURCE_ENV = "PORTSCAN_WASIX_LIBC_LISTS"
LIST_FILE = "defined-symbols.txt"

_TABLE_ROW = re.compile(
    r"^\| `(?P<list>[^`/]+)/defined-symbols\.txt` \| `(?P<upstream>[^`]+)` "
    r"\| `(?P<commit>[0-9a-f]+)` \| (?P<count>\d+) \|",
    re.MULTILINE,
)
_SHA_LINE = re.compile(r"^(?P<sha>[0-9a-f]{64})  (?P<list>[^/\s]+)/defined-symbols\.txt$", re.M)
_SNAPSHOT = re.compile(r"Snapshot commit[^`]*`(?P<commit>[0-9a-f]{40})`(?P<rest>[^\n]*\n[^\n]*)")
_REPOSITORY = re.compile(r"Source repository: (?P<url>\S+)")
_DATE = re.compile(r"committed (?P<date>\d{4}-\d{2}-\d{2})")


class SourceError(Exception):
    """The lists or the notes disagree with what their README or the lists say."""


def read_provenance(readme: str) -> dict[str, Any]:
    """What the source folder's README states: upstream repository, snapshot, per-list facts."""
    snapshot = _SNAPSHOT.search(readme)
    repository = _REPOSITORY.search(readme)
    if not snapshot or not repository:
        raise SourceError("README.md does not state the source repository and snapshot commit")
    date = _DATE.search(snapshot.group("rest"))
    rows = {m["list"]: m for m in _TABLE_ROW.finditer(readme)}
    sums = {m["list"]: m["sha"] for m in _SHA_LINE.finditer(readme)}
    return {
        "repository": repository["url"],
        "commit": snapshot["commit"],
        "committed": date["date"] if date else None,
        "lists": {
            name: {
                "upstream_path": row["upstream"],
                "last_commit": row["commit"],
                "count": int(row["count"]),
                "sha256": sums.get(name),
            }
            for name, row in rows.items()
        },
    }


def read_lists(source: Path, stated: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """Each list's symbols, after checking its sha256 and count against the README."""
    lists: dict[str, list[str]] = {}
    for path in sorted(source.glob(f"*/{LIST_FILE}"), key=lambda p: p.parent.name):
        name = path.parent.name
        data = path.read_bytes()
        facts = stated.get(name)
        if facts is None:
            raise SourceError(f"{name}: not described in README.md")
        digest = hashlib.sha256(data).hexdigest()
        if facts["sha256"] != digest:
            raise SourceError(f"{name}: sha256 {digest} differs from README.md")
        symbols = data.decode().split()
        if len(symbols) != facts["count"] or symbols != sorted(set(symbols)):
            raise SourceError(f"{name}: {len(symbols)} symbols, README.md says {facts['count']}")
        lists[name] = symbols
    if not lists:
        raise SourceError(f"no */{LIST_FILE} under {source}")
    return lists


def membership(lists: dict[str, list[str]]) -> dict[str, str]:
    """symbol -> one character per list, in list order: 1 = defined there, 0 = not."""
    names = list(lists)
    sets = [set(lists[n]) for n in names]
    union = sorted(set().union(*sets))
    return {sym: "".join("1" if sym in s else "0" for s in sets) for sym in union}


def check_notes(notes: dict[str, Any], lists: dict[str, list[str]]) -> None:
    """Every curated claim about a symbol must agree with the lists."""
    every = set.intersection(*(set(v) for v in lists.values()))
    some = set().union(*(set(v) for v in lists.values()))
    for lib, entry in notes["emulation"].items():
        missing = [s for s in entry["symbols"] if s not in every]
        if missing:
            raise SourceError(f"{lib}: {missing} not defined in every list")
    for lib, entry in notes["excluded_libraries"].items():
        present = [s for s in entry["symbols"] if s in some]
        if present:
            raise SourceError(f"{lib}: {present} are in the lists, yet said to be left out")
    for sym in notes["history"]:
        if sym not in some:
            raise SourceError(f"history: {sym} is in no list")
    for target, name in notes["list_for_target"].items():
        if name not in lists:
            raise SourceError(f"list_for_target: {target} -> {name}, no such list")


def _provenance(
    libc: str, provenance: dict[str, Any], lists: dict[str, Any], date: str
) -> dict[str, Any]:
    """Where a generated document comes from: the tool, the date, the upstream commit and
    the lists (their sha256 were checked against the data README while reading them)."""
    return {
        "generated_by": "signatures/tools/gen_libc.py",
        "generated_on": date,
        "source": {
            "dir": f"signatures/data/{libc}",
            "repository": provenance["repository"],
            "commit": provenance["commit"],
            "committed": provenance["committed"],
            "notes": f"signatures/{libc}-notes.json",
        },
        "lists": [
            {"name": name, **provenance["lists"][name], "count": len(symbols)}
            for name, symbols in lists.items()
        ],
    }


def generate(source: Path, notes_path: Path, date: str) -> dict[str, Any]:
    """The complete document written to signatures/wasi-libc.json."""
    provenance = read_provenance((source / "README.md").read_text())
    lists = read_lists(source, provenance["lists"])
    notes = json.loads(notes_path.read_text())
    check_notes(notes, lists)
    return {
        "about": (
            "GENERATED by signatures/tools/gen_libc.py; do not edit. Which symbols each "
            "wasi-libc target defines ('symbols': one character per entry of 'lists', 1 = "
            "defined), plus the curated notes of signatures/wasi-libc-notes.json. The lists "
            "include the emulation libraries and exclude libsetjmp and libdl (see "
            "'emulation' and 'excluded_libraries')."
        ),
        **_provenance("wasi-libc", provenance, lists, date),
        "list_for_target": notes["list_for_target"],
        "emulation": notes["emulation"],
        "excluded_libraries": notes["excluded_libraries"],
        "history": notes["history"],
        "symbols": membership(lists),
    }


def check_wasix_notes(notes: dict[str, Any], lists: dict[str, list[str]]) -> None:
    """Every curated claim about a wasix-libc flavour must agree with its list."""
    for target, name in notes["list_for_target"].items():
        if name not in lists:
            raise SourceError(f"list_for_target: {target} -> {name}, no such list")
    if set(notes["flavours"]) != set(lists):
        raise SourceError(f"flavours {sorted(notes['flavours'])} differ from lists {sorted(lists)}")
    for name, flavour in notes["flavours"].items():
        symbols = set(lists[name])
        absent = [s for s in flavour["defines"] if s not in symbols]
        if absent:
            raise SourceError(f"{name}: {absent} said to be defined, not in the list")
        present = [s for s in flavour["lacks"] if s in symbols]
        if present:
            raise SourceError(f"{name}: {present} said to be lacking, yet in the list")
    for symbol, entry in notes["lowered"].items():
        where = [n for n, v in lists.items() if symbol not in v and entry["to"] in v]
        if not where:
            raise SourceError(f"lowered: no list lacks {symbol} and defines {entry['to']}")


def lowered_in(notes: dict[str, Any], lists: dict[str, list[str]]) -> dict[str, Any]:
    """The notes' `lowered` entries, each with the lists it applies to (the ones that lack
    the symbol and define what the compiler turns it into)."""
    return {
        symbol: {
            **entry,
            "lists": [n for n, v in lists.items() if symbol not in v and entry["to"] in v],
        }
        for symbol, entry in notes["lowered"].items()
    }


def generate_wasix(source: Path, notes_path: Path, date: str) -> dict[str, Any]:
    """The complete document written to signatures/wasix-libc.json."""
    provenance = read_provenance((source / "README.md").read_text())
    lists = read_lists(source, provenance["lists"])
    notes = json.loads(notes_path.read_text())
    check_wasix_notes(notes, lists)
    return {
        "about": (
            "GENERATED by signatures/tools/gen_libc.py; do not edit. Which symbols each "
            "wasix-libc flavour defines ('symbols': one character per entry of 'lists', 1 = "
            "defined), which flavour stands for the wasix target ('list_for_target'; another "
            "is picked with portscan image --wasix-libc), what each flavour is, and which "
            "functions the compiler lowers to others in a flavour ('lowered'), from the "
            "curated notes of signatures/wasix-libc-notes.json. The lists include "
            "wasix-libc's emulation libraries, which wasixcc always links, and setjmp and "
            "the dl* functions where a flavour has them."
        ),
        **_provenance("wasix-libc", provenance, lists, date),
        "list_for_target": notes["list_for_target"],
        "default_because": notes["default_because"],
        "flavours": notes["flavours"],
        "lowered": lowered_in(notes, lists),
        "symbols": membership(lists),
    }


def render(document: dict[str, Any]) -> str:
    """Stable text: one symbol per line so that upstream changes read as small diffs."""
    return json.dumps(document, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_source = Path(os.environ.get(SOURCE_ENV, DEFAULT_SOURCE))
    parser.add_argument("--source", type=Path, default=default_source)
    parser.add_argument("--notes", type=Path, default=SIGNATURES / "wasi-libc-notes.json")
    parser.add_argument("--out", type=Path, default=SIGNATURES / "wasi-libc.json")
    default_wasix = Path(os.environ.get(WASIX_SOURCE_ENV, DEFAULT_WASIX_SOURCE))
    parser.add_argument("--wasix-source", type=Path, default=default_wasix)
    parser.add_argument("--wasix-notes", type=Path, default=SIGNATURES / "wasix-libc-notes.json")
    parser.add_argument("--wasix-out", type=Path, default=SIGNATURES / "wasix-libc.json")
    parser.add_argument("--date", default=datetime.date.today().isoformat())
    args = parser.parse_args(argv)
    try:  # both checked before either is written
        texts = {
            args.out: render(generate(args.source, args.notes, args.date)),
            args.wasix_out: render(generate_wasix(args.wasix_source, args.wasix_notes, args.date)),
        }
    except (SourceError, OSError) as exc:
        print(f"gen_libc: {exc}", file=sys.stderr)
        return 1
    for out, text in texts.items():
        out.write_text(text)
        print(f"gen_libc: wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
