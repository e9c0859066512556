"""What a command line runs: shell forms, launchers and wrapper scripts' `exec` lines.

Shared by the graph (which programs the entrypoint reaches) and the application finder
(which of them hand code to a language runtime). Best effort, never a shell: words are
split as shlex does, and only literal commands are followed.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from portscan.layers import Tree
from portscan.model import ImageConfig, Script

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SHELLS = {"sh", "bash", "dash", "ash", "busybox", "zsh"}
_SHELL_SEPARATORS = re.compile(r"&&|\|\||[;|&\n]")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_EXEC_LINE = re.compile(r"^\s*exec\s+(.+?)\s*$", re.MULTILINE)
_REDIRECTION = re.compile(r"^\d*[<>]")
PASSTHROUGH = {"$@", "${@}", "$*", "${*}"}  # the script's arguments (after shlex)
PACKAGE_RUNNERS = {"npm", "yarn", "pnpm"}  # run a package.json script
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


def is_shell_command(argv: list[str]) -> bool:
    """`sh -c STRING` (or bash, dash, ...): the shell runs the commands of STRING."""
    return posixpath.basename(argv[0]) in SHELLS and len(argv) > 2 and argv[1] == "-c"


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


@dataclass(frozen=True)
class Step:
    """One command the image's command chain runs: `argv`, run by `parent` (a file's
    path; None for the image's own ENTRYPOINT/CMD), found at `path` (None: not in the
    image). `kind` is "entrypoint" for the image's command, "exec" for what it runs."""

    parent: str | None
    argv: list[str]
    path: str | None
    kind: str
    depth: int


class CommandWalker:
    """The one walk of an image's command chain, shared by the graph and the application
    finder: through `sh -c` strings, launchers, wrapper scripts' `exec` lines (with `"$@"`
    standing for the script's arguments) and, when asked, npm/yarn/pnpm package scripts.
    Steps come depth first, a step before what it runs, so a consumer can act on a step
    (add its node) before the walk descends into it."""

    MAX_DEPTH = 8

    def __init__(
        self,
        tree: Tree,
        config: ImageConfig,
        scripts: Mapping[str, Script],
        package_scripts: bool = False,
    ) -> None:
        self.tree = tree
        self.scripts = scripts
        self.workdir = config.working_dir or "/"
        self.path_dirs = (config.env_dict().get("PATH") or DEFAULT_PATH).split(":")
        self.package_scripts = package_scripts

    def resolve(self, word: str) -> str | None:
        """The regular file a command word runs: relative to the working directory when
        it has a slash, else the first match on PATH."""
        candidates = (
            [posixpath.join(self.workdir, word)]
            if "/" in word
            else [posixpath.join(d, word) for d in self.path_dirs]
        )
        for candidate in candidates:
            found = self.tree.resolve(candidate)
            if found and self._is_file(found):
                return found
        return None

    def _is_file(self, path: str) -> bool:
        entry = self.tree.get(path)
        return entry is not None and entry.is_regular

    def walk(
        self, argv: list[str], parent: str | None = None, kind: str = "entrypoint", depth: int = 0
    ) -> Iterator[Step]:
        """Every step `argv` (run by `parent`) leads to, itself first."""
        argv = strip_prefixes(argv)
        if not argv or depth > self.MAX_DEPTH:
            return
        program = posixpath.basename(argv[0])
        if self.package_scripts and program in PACKAGE_RUNNERS:
            for words in self._package_script(argv[1:]):
                yield from self.walk(words, parent, "exec", depth + 1)
            return
        path = self.resolve(argv[0])
        yield Step(parent, argv, path, kind, depth)
        if path is None:
            return
        if is_shell_command(argv):
            for command in shell_commands(argv[2]):
                yield from self.walk(command, path, "exec", depth + 1)
            return
        script = self.scripts.get(path)
        if script is not None:
            yield from self.script_steps(script, argv[1:], depth)

    def script_steps(self, script: Script, args: list[str], depth: int = 0) -> Iterator[Step]:
        """What a shell script's `exec` lines run, `"$@"` standing for `args`."""
        if posixpath.basename(script.interpreter) not in SHELLS:
            return  # `exec` lines mean something else in perl or python
        data = self.tree.read(script.path) or b""
        for words in exec_targets(data.decode("utf-8", "replace")):
            expanded = [w for word in words for w in (args if word in PASSTHROUGH else [word])]
            expanded = strip_prefixes(expanded)
            if expanded and not expanded[0].startswith("$"):
                yield from self.walk(expanded, script.path, "exec", depth + 1)

    def _package_script(self, args: list[str]) -> list[list[str]]:
        """`npm start` / `npm run NAME`: the package.json script of the working directory
        (`node server.js` when `start` is missing, as npm does), as command word lists."""
        args = [a for a in args if not a.startswith("-")]
        name = args[1] if args[:1] == ["run"] and len(args) > 1 else (args[0] if args else "")
        data = self.tree.read(posixpath.join(self.workdir, "package.json"))
        try:
            doc = json.loads(data) if data else {}
        except ValueError:
            doc = {}
        scripts = doc.get("scripts") if isinstance(doc, dict) else None
        command = scripts.get(name) if isinstance(scripts, dict) else None
        if not isinstance(command, str) and name == "start":
            command = "node server.js"
        return shell_commands(command) if isinstance(command, str) else []
