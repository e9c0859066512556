"""The application code an image's entrypoint hands to a language runtime.

Along the image command's chain (inspect/commands.py: `sh -c`, launchers such as
`tini --`, wrapper scripts' `exec "$@"` lines and `npm start`), find each command whose
program is, or is a script run by, a runtime that a language table names
(signatures/python-modules.json: cpython, javascript-modules.json: nodejs). Its entry
file (`python app.py`, `python -m pkg`, `node server.js`, `node .`, the script itself)
and what the entry reads are judged as an `Application`; the runtime binary keeps its
own runtime rule.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping

from portscan.inspect.apps.javascript import javascript_files, package_main, resolve_relative
from portscan.inspect.apps.python import entry_module_file, python_files
from portscan.inspect.apps.source import SourceFacts, match_uses
from portscan.inspect.commands import CommandWalker
from portscan.knowledge import tables as sig
from portscan.layers import Tree
from portscan.model import Application, Binary, ImageConfig, Script

TABLES = {"python": "python-modules.json", "javascript": "javascript-modules.json"}
_PY_OPTIONS_WITH_VALUE = {"-W", "-X", "-Q"}
_NODE_OPTIONS_WITH_VALUE = {"-r", "--require", "--import", "--loader", "--experimental-loader"}
_APP_ARGUMENT = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.()]*$")  # gunicorn/uvicorn app:app
_PACKAGE_DIRS = ("site-packages", "dist-packages")
_PYTHON_STDLIB = re.compile(r"/lib(?:64)?/python3(?:\.\d+)?/")
_PYTHON_PACKAGES = ("/site-packages/", "/dist-packages/")
_JS_EXTENSIONS = (".js", ".mjs", ".cjs")
_JS_SYSTEM = ("/usr/share/nodejs/", "/usr/lib/node_modules/", "/usr/local/lib/node_modules/",
              "/usr/share/javascript/", "/usr/lib/nodejs/", "/usr/share/doc/")  # fmt: skip


def is_app_source(path: str) -> bool:
    """Whether a file may be application source whose bytes the layers must keep: a
    .py file outside the standard library (site-packages and dist-packages are not
    the standard library), a .js/.mjs/.cjs file outside node_modules and the system's
    JavaScript directories."""
    if path.endswith(".py"):
        return _PYTHON_STDLIB.search(path) is None or any(p in path for p in _PYTHON_PACKAGES)
    if path.endswith(_JS_EXTENSIONS):
        return "/node_modules/" not in path and not path.startswith(_JS_SYSTEM)
    return False


class _Finder:
    def __init__(
        self,
        tree: Tree,
        config: ImageConfig,
        binaries: Mapping[str, Binary],
        scripts: Mapping[str, Script],
    ) -> None:
        self.tree = tree
        self.binaries = binaries
        self.scripts = scripts
        self.walker = CommandWalker(tree, config, scripts, package_scripts=True)
        self.workdir = self.walker.workdir
        self.which = self.walker.resolve
        self._package_dirs: list[str] | None = None
        self.languages = {
            table.runtime: language
            for language, name in TABLES.items()
            if (table := sig.api_table(name)).runtime
        }

    def read(self, path: str) -> bytes | None:
        """A file's kept bytes (an empty file has none to keep)."""
        entry = self.tree.get(path)
        if entry is not None and entry.is_regular and entry.size == 0:
            return b""
        return self.tree.read(path)

    def exists(self, path: str) -> bool:
        entry = self.tree.get(path)
        return entry is not None and entry.is_regular

    def runtime_language(self, path: str) -> str | None:
        binary = self.binaries.get(path)
        runtime = binary.runtime.name if binary is not None and binary.runtime else None
        return self.languages.get(runtime) if runtime else None

    # -- entries
    def entry(self, argv: list[str]) -> tuple[str, str, list[str]] | None:
        """(language, runtime binary, entry files) of one command, or None."""
        path = self.which(argv[0])
        if path is None:
            return None
        language = self.runtime_language(path)
        if language is not None:
            read = self.python_entries if language == "python" else self.node_entries
            entries = read(argv[1:])
            return (language, path, entries) if entries else None
        script = self.scripts.get(path)
        interpreter = script.resolved_interpreter if script is not None else None
        language = self.runtime_language(interpreter) if interpreter else None
        if language is None or interpreter is None:
            return None
        extra = self.python_app_arguments(argv[1:]) if language == "python" else []
        return language, interpreter, [path, *extra]

    def python_entries(self, args: list[str]) -> list[str]:
        index = 0
        while index < len(args) and args[index].startswith("-"):
            option = args[index]
            if option == "-m" and index + 1 < len(args):
                roots = [self.workdir, *self.package_dirs()]
                found = entry_module_file(args[index + 1], roots, self.exists)
                return [found, *self.python_app_arguments(args[index + 2 :])] if found else []
            if option == "-c":
                return []
            index += 2 if option in _PY_OPTIONS_WITH_VALUE else 1
        if index >= len(args):
            return []
        script = self.tree.resolve(posixpath.join(self.workdir, args[index]))
        return [script] if script and self.exists(script) else []

    def python_app_arguments(self, args: list[str]) -> list[str]:
        """Modules named as `module:attribute` (gunicorn app:app, uvicorn main:app)."""
        roots = [self.workdir, *self.package_dirs()]
        found = []
        for arg in args:
            if _APP_ARGUMENT.match(arg):
                module = entry_module_file(arg.split(":", 1)[0], roots, self.exists)
                if module:
                    found.append(module)
        return found

    def node_entries(self, args: list[str]) -> list[str]:
        index = 0
        while index < len(args) and args[index].startswith("-"):
            if args[index] in ("-e", "--eval", "-p", "--print"):
                return []
            index += 2 if args[index] in _NODE_OPTIONS_WITH_VALUE else 1
        if index >= len(args):
            return []
        target = args[index]
        directory = self.workdir
        found = resolve_relative(target, directory, self.exists, self.read)
        if found is None and target in (".", "./"):
            main = package_main(directory, self.read) or "index.js"
            found = resolve_relative(main, directory, self.exists, self.read)
        return [found] if found else []

    def extension_modules(self, roots: list[str]) -> dict[str, str]:
        """Native extension modules (`name.cpython-311-x86_64-linux-gnu.so`, `name.abi3.so`,
        `name.so`) under the search roots: dotted module name -> file, first root first."""
        found: dict[str, str] = {}
        for root in roots:
            prefix = root.rstrip("/") + "/"
            for entry in self.tree.entries():
                path = entry.path
                if not (path.startswith(prefix) and path.endswith(".so") and entry.is_regular):
                    continue
                *dirs, name = path[len(prefix) :].split("/")
                found.setdefault(".".join([*dirs, name.split(".", 1)[0]]), path)
        return found

    def package_dirs(self) -> list[str]:
        """Every site-packages and dist-packages directory of the image."""
        if self._package_dirs is None:
            self._package_dirs = sorted(
                entry.path
                for entry in self.tree.entries()
                if entry.path.rsplit("/", 1)[-1] in _PACKAGE_DIRS and not entry.is_regular
            )
        return self._package_dirs


def _uses(facts: Mapping[str, SourceFacts], table: sig.ApiTable) -> list:
    return [use for path, found in facts.items() for use in match_uses(found, path, table)]


def find_applications(
    tree: Tree,
    config: ImageConfig,
    binaries: Mapping[str, Binary],
    scripts: Mapping[str, Script],
) -> list[Application]:
    """The applications the image's command runs, each read and matched once."""
    finder = _Finder(tree, config, binaries, scripts)
    argv = [*config.entrypoint, *config.cmd] if config.entrypoint else list(config.cmd)
    found: dict[str, Application] = {}
    for step in finder.walker.walk(argv):
        entry = finder.entry(step.argv)
        if entry is None or entry[2][0] in found:
            continue
        language, runtime, entries = entry
        table = sig.api_table(TABLES[language])
        app = Application(language, entries[0], runtime)
        if language == "python":
            roots = [posixpath.dirname(entries[0]), finder.workdir]
            roots = [r for r in dict.fromkeys(roots) if r != "/"] + finder.package_dirs()
            extensions = finder.extension_modules(roots)
            facts, app.unread, app.extensions = python_files(
                entries, roots, finder.read, finder.exists, extensions
            )
        else:
            facts, app.unread, app.dependencies = javascript_files(
                entries, finder.read, finder.exists, table.globals
            )
        app.files = sorted(facts)
        app.uses = _uses(facts, table)
        found[app.entry] = app
    return list(found.values())
