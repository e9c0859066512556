"""What a command line runs: shell forms, launchers and wrapper scripts' `exec` lines.

Shared by the graph (which programs the entrypoint reaches) and the application finder
(which of them hand code to a language runtime). Best effort, never a shell: words are
split as shlex does, and only literal commands are followed.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Iterable

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SHELLS = {"sh", "bash", "dash", "ash", "busybox", "zsh"}
_SHELL_SEPARATORS = re.compile(r"&&|\|\||[;|&\n]")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_EXEC_LINE = re.compile(r"^\s*exec\s+(.+?)\s*$", re.MULTILINE)
_REDIRECTION = re.compile(r"^\d*[<>]")
PASSTHROUGH = {"$@", "${@}", "$*", "${*}"}  # the script's arguments (after shlex)
# Launchers that run the program named after them: name -> operands before the program
# (gosu USER CMD...); their options and a `--` are skipped too.
_LAUNCHERS = {
    "exec": 0, "env": 0, "nohup": 0, "time": 0, "command": 0, "nice": 0, "setsid": 0,
    "tini": 0, "dumb-init": 0, "catatonit": 0, "gosu": 1, "su-exec": 1, "chpst": 0,
}  # fmt: skip


def strip_prefixes(argv: list[str]) -> list[str]:
    """Drop `VAR=value` words and launchers (`exec`, `env -i`, `gosu USER`, `tini --`)
    in front of the program they start."""
    index = 0
    while index < len(argv):
        word = argv[index]
        if _ASSIGNMENT.match(word):
            index += 1
            continue
        operands = _LAUNCHERS.get(posixpath.basename(word))
        if operands is None:
            break
        index += 1
        while index < len(argv) and argv[index].startswith("-"):
            index += 1
            if argv[index - 1] == "--":
                break
        index += operands
    return argv[index:]


def shell_commands(text: str) -> list[list[str]]:
    """The simple commands of a shell command line, as word lists (best effort)."""
    commands = []
    for part in _SHELL_SEPARATORS.split(text):
        try:
            words = shlex.split(part, comments=True)
        except ValueError:
            words = part.split()
        if words:
            commands.append(words)
    return commands


def exec_targets(script_text: str) -> Iterable[list[str]]:
    """What `exec ...` lines of a wrapper script start, as word lists."""
    for match in _EXEC_LINE.finditer(script_text):
        try:
            words = shlex.split(match.group(1), comments=True)
        except ValueError:
            continue
        words = [w for w in words if not _REDIRECTION.match(w)]
        if words:
            yield (
                [match.group(1).split()[0]] if match.group(1).split()[0] in PASSTHROUGH else words
            )
