"""Scripts: executable files that start with `#!`, and the interpreter each would run.

Linux (fs/binfmt_script.c) reads the first line: the interpreter is the first word
after `#!`, and the rest of the line, spaces and tabs trimmed, is ONE argument. So
`#!/usr/bin/env python3 -u` asks env for a program named "python3 -u", which does
not exist, and a CRLF line makes the CR part of the last word. `#!/usr/bin/env NAME`
runs NAME from PATH: the image's PATH (from its config) or Docker's default. GNU
env's `-S` (`--split-string`) splits its argument into the program and its arguments.
"""

from __future__ import annotations

from portscan.layers import Tree
from portscan.model import Script

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_MAX_LINE = 256  # BINPRM_BUF_SIZE: the kernel reads no more of the first line
_ENV_WITH_VALUE = ("-u", "--unset", "-C", "--chdir")  # env options whose value is the next word


def first_line(data: bytes) -> str:
    return data[:_MAX_LINE].split(b"\n", 1)[0].decode("utf-8", "backslashreplace")


def parse_shebang(data: bytes) -> tuple[str, list[str]] | None:
    """(interpreter, [argument]) as the kernel splits a `#!` line, or None."""
    if not data.startswith(b"#!"):
        return None
    text = first_line(data)[2:].strip(" \t")
    cut = min((i for i in (text.find(" "), text.find("\t")) if i != -1), default=len(text))
    interpreter, rest = text[:cut], text[cut:].strip(" \t")
    return (interpreter, [rest] if rest else []) if interpreter else None


def env_program(args: list[str]) -> tuple[str, list[str]] | None:
    """The program and arguments `env` runs when the kernel passes it `args` (at most
    one word, see the module docstring); None when env would run no program."""
    if not args:
        return None
    arg = args[0]
    if arg.startswith("--split-string="):
        words = arg.partition("=")[2].split()
    elif arg.startswith("-S"):
        words = arg[2:].split()
    elif arg.startswith("-"):
        return None  # env would parse the whole word as options and fail
    else:
        return arg, []  # the literal word, spaces and all
    while words:
        word = words.pop(0)
        if word == "--":
            break
        if word in _ENV_WITH_VALUE:
            words = words[1:]
        elif not (word.startswith("-") or "=" in word):
            return word, words
    return (words[0], words[1:]) if words else None


def executable(tree: Tree, path: str) -> str | None:
    """The tree path `path` names after symlinks, if it is an executable regular file."""
    real = tree.resolve(path)
    entry = tree.get(real) if real else None
    return real if entry is not None and entry.is_executable else None


def find_on_path(tree: Tree, name: str, path_env: str | None) -> str | None:
    """What `execvp(name)` would run: `name` itself when it has a slash, else the first
    executable on PATH."""
    if "/" in name:
        return executable(tree, name)
    for directory in (path_env or DEFAULT_PATH).split(":"):
        found = executable(tree, f"{directory.rstrip('/')}/{name}") if directory else None
        if found is not None:
            return found
    return None


def script_of(tree: Tree, path: str, data: bytes, path_env: str | None) -> Script | None:
    """The Script for one file's bytes, or None when they do not start with `#!`.
    The kernel does not search PATH: a relative interpreter depends on the working
    directory and is left unresolved."""
    shebang = parse_shebang(data)
    if shebang is None:
        return None
    interpreter, args = shebang
    resolved = executable(tree, interpreter) if interpreter.startswith("/") else None
    if interpreter.rpartition("/")[2] == "env":
        program = env_program(args)
        if program is not None:  # a missing env leaves the program unresolved too
            interpreter, args = program
            resolved = find_on_path(tree, interpreter, path_env) if resolved else None
    return Script(path, first_line(data), interpreter, resolved, args)


def inspect_scripts(tree: Tree, path_env: str | None = None) -> list[Script]:
    """Every executable regular file with a kept `#!` line, sorted by path. `path_env`
    is the image's PATH (from its config); None means Docker's default PATH."""
    scripts = []
    for entry in tree.files():
        if entry.is_executable and entry.data and entry.data.startswith(b"#!"):
            script = script_of(tree, entry.path, entry.data, path_env)
            if script is not None:
                scripts.append(script)
    return scripts
