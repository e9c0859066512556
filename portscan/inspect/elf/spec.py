"""The one ELF analyser's identity: its name, its facts' version, what it wants.

No heavy import here: the main process reads this, while lief and capstone are imported
only where ELF files are parsed (`program.analyse_elf_facts`, in the worker process).
"""

from __future__ import annotations

NAME = "elf"  # the key of a file's facts (FileEntry.facts) and the analyser's name
ELF_MAGIC = b"\x7fELF"
# Version of the facts the ELF analysis produces (parse.py + program.py): part of the
# per-layer cache key, so bump it whenever a Binary field's meaning or content changes.
ELF_FACTS_VERSION = 104  # 104: a static program's unreached syscall sites apart


def wants(path: str, head: bytes) -> bool:
    """Whether a file is an ELF file, from its first bytes."""
    return head.startswith(ELF_MAGIC)
