"""Shebang scripts resolved to interpreters inside the image's own tree."""

from __future__ import annotations

import pytest

from portscan.inspect import keep
from portscan.inspect.scripts import env_program, inspect_scripts, parse_shebang
from portscan.layers import Tree
from portscan.model import Script
from tests import imagebuild as ib
from tests.test_packages import tree_from

ELF = b"\x7fELF\x02\x01\x01"
BASE = [
    ib.symlink("bin", "usr/bin"),
    ib.file("usr/bin/dash", ELF, 0o755),
    ib.symlink("usr/bin/sh", "dash"),
    ib.file("usr/bin/env", ELF, 0o755),
    ib.file("usr/bin/python3.11", ELF, 0o755),
    ib.symlink("usr/bin/python3", "python3.11"),
    ib.file("usr/local/bin/node", ELF, 0o755),
    ib.file("usr/bin/perl", ELF, 0o644),  # not executable
    ib.file("opt/tools/bin/ruby", ELF, 0o755),  # only on a custom PATH
]
SCRIPTS = {
    "app/sh-e": "#!/bin/sh -e\nset -x\n",
    "app/spaced": "#! /bin/sh\t \n",
    "app/py": "#!/usr/bin/env python3\nprint()\n",
    "app/node": "#!/usr/bin/env -S node --flag\n",
    "app/split": "#!/usr/bin/env --split-string=PYTHONPATH=/x -i python3 -u\n",
    "app/py-u": "#!/usr/bin/env python3 -u\n",  # Linux passes "python3 -u" as one word
    "app/crlf": "#!/bin/sh\r\necho\r\n",
    "app/perl": "#!/usr/bin/perl -w\n",
    "app/missing": "#!/usr/bin/tclsh\n",
    "app/relative": "#!python3\n",
    "app/ruby": "#!/usr/bin/env ruby\n",
}


def image(*extra: ib.Entry) -> Tree:
    scripts = [ib.file(path, text, 0o755) for path, text in SCRIPTS.items()]
    return tree_from(BASE, [*scripts, *extra], keep=keep)


def by_path(scripts: list[Script]) -> dict[str, Script]:
    return {s.path.removeprefix("/app/"): s for s in scripts}


def test_shebang_variants_resolve_in_the_image() -> None:
    found = by_path(inspect_scripts(image(ib.file("app/data.sh", "#!/bin/sh\n", 0o644))))
    assert "data.sh" not in found  # not executable: not a script the kernel would start
    assert found["sh-e"] == Script("/app/sh-e", "#!/bin/sh -e", "/bin/sh", "/usr/bin/dash", ["-e"])
    assert (found["spaced"].interpreter, found["spaced"].args) == ("/bin/sh", [])
    assert found["py"].interpreter == "python3"
    assert found["py"].resolved_interpreter == "/usr/bin/python3.11"
    node = found["node"]
    assert (node.interpreter, node.resolved_interpreter, node.args) == (
        "node",
        "/usr/local/bin/node",
        ["--flag"],
    )
    split = found["split"]
    assert (split.interpreter, split.resolved_interpreter, split.args) == (
        "python3",
        "/usr/bin/python3.11",
        ["-u"],
    )


@pytest.mark.parametrize(
    ("name", "interpreter"),
    [
        ("py-u", "python3 -u"),  # no program has that name
        ("crlf", "/bin/sh\r"),  # the CR is part of the interpreter's name
        ("perl", "/usr/bin/perl"),  # present but not executable
        ("missing", "/usr/bin/tclsh"),
        ("relative", "python3"),  # the kernel does not search PATH
        ("ruby", "ruby"),  # not on the default PATH
    ],
)
def test_scripts_that_cannot_start_are_unresolved(name: str, interpreter: str) -> None:
    script = by_path(inspect_scripts(image()))[name]
    assert (script.interpreter, script.resolved_interpreter) == (interpreter, None)


def test_env_searches_the_image_path() -> None:
    found = by_path(inspect_scripts(image(), path_env="/opt/tools/bin:/usr/bin"))
    assert found["ruby"].resolved_interpreter == "/opt/tools/bin/ruby"
    assert found["node"].resolved_interpreter is None  # /usr/local/bin is not on this PATH


def test_missing_env_leaves_the_program_unresolved() -> None:
    tree = tree_from(
        [e for e in BASE if e.name != "usr/bin/env"],
        [ib.file("app/py", SCRIPTS["app/py"], 0o755)],
        keep=keep,
    )
    (script,) = inspect_scripts(tree)
    assert (script.interpreter, script.resolved_interpreter) == ("python3", None)


def test_parsers_follow_the_kernel_and_env() -> None:
    assert parse_shebang(b"#!/bin/bash -e -x\n") == ("/bin/bash", ["-e -x"])
    assert parse_shebang(b"#!\n") is None and parse_shebang(b"\x7fELF") is None
    assert parse_shebang(b"#!/bin/sh" + b" x" * 200 + b"\n")[1][0].count("x") < 200  # 256 bytes
    assert env_program(["-S"]) is None  # nothing to split: env runs no program
    assert env_program(["-S -u HOME node --x"]) == ("node", ["--x"])
    assert env_program(["-i"]) is None
