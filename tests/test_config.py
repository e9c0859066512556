"""Settings as a user sets them: a config file, PORTSCAN_* variables, the command line;
`portscan config`, `version`, `completion`, `-v` and several outputs in one run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from portscan import knowledge
from portscan.audit.keys import signatures_digest
from portscan.cli.config import commands, env_names, settings_of
from portscan.cli.main import cli
from portscan.knowledge import tables
from tests.test_cli import assert_one_line_error

BASE_ENV = {k: v for k, v in os.environ.items() if not k.startswith("PORTSCAN_")}


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, home: Path
) -> subprocess.CompletedProcess[str]:
    """portscan in a subprocess whose user config dir is `home` (empty unless a test
    writes there) and whose scan cache is the test's own, with only the PORTSCAN_*
    variables given."""
    cache = str(home.parent / "cache")
    environ = {**BASE_ENV, "XDG_CONFIG_HOME": str(home), "XDG_CACHE_HOME": cache, **(env or {})}
    repo = str(Path(__file__).resolve().parent.parent)
    environ["PYTHONPATH"] = repo + os.pathsep + environ.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-m", "portscan", *args],
        capture_output=True,
        text=True,
        env=environ,
        cwd=cwd,
        timeout=120,
    )


def settings(result: subprocess.CompletedProcess[str]) -> dict[tuple[str, str], dict]:
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    return {(row["command"], row["option"]): row for row in doc["settings"]}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "xdg"
    path.mkdir()
    return path


def test_precedence_is_cli_then_env_then_file_then_default(
    tmp_path: Path, home: Path, oci_layout: Path
) -> None:
    config = tmp_path / "portscan.toml"
    config.write_text('platform = "linux/arm64"\nformat = "sarif"\n[image]\nformat = "json"\n')
    env = {"PORTSCAN_PLATFORM": "linux/arm/v7"}
    rows = settings(run("--config", str(config), "config", "--format", "json", env=env, home=home))
    assert rows[("image", "--format")]["value"] == "json"
    assert rows[("image", "--format")]["origin"] == f"config {config}: [image] format"
    assert rows[("report", "--format")]["value"] == "sarif"  # a top-level key
    assert ("diff", "--format") in rows and rows[("diff", "--format")]["origin"] == "default"
    assert rows[("image", "--platform")] == {
        "command": "image", "option": "--platform", "value": "linux/arm/v7",
        "origin": "env PORTSCAN_PLATFORM",
    }  # fmt: skip
    assert rows[("image", "--min-score")]["origin"] == "default"

    # the settings are used: the config's json, then the variable's markdown, then -f
    scan = ("image", f"oci:{oci_layout}", "--config", str(config))
    result = run(*scan, home=home)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["image"]["config"]["entrypoint"] == ["/usr/local/bin/run.sh"]
    result = run(*scan, env={"PORTSCAN_IMAGE_FORMAT": "markdown"}, home=home)
    assert result.stdout.startswith("### portscan: WASI portability of"), result.stderr
    result = run(*scan, "-f", "table", env={"PORTSCAN_IMAGE_FORMAT": "markdown"}, home=home)
    assert result.stdout.startswith("image      oci:"), result.stderr


def test_default_config_is_the_user_config_dir_never_the_working_dir(
    tmp_path: Path, home: Path
) -> None:
    (home / "portscan").mkdir()
    (home / "portscan" / "portscan.toml").write_text("[registry]\njobs = 3\n")
    tree = tmp_path / "project"
    tree.mkdir()
    (tree / "portscan.toml").write_text('fail-on = "nonsense"\n')  # never read
    (tree / "pyproject.toml").write_text('[tool.portscan]\nfail-on = "nonsense"\n')
    rows = settings(run("config", "registry", "--format", "json", cwd=tree, home=home))
    assert rows[("registry", "--jobs")]["value"] == 3
    assert "portscan.toml: [registry] jobs" in rows[("registry", "--jobs")]["origin"]
    text = run("config", "registry", cwd=tree, home=home).stdout
    assert text.splitlines()[0] == f"config file: {home / 'portscan' / 'portscan.toml'}"


def test_pyproject_tool_table_when_given_explicitly(tmp_path: Path, home: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\n[tool.portscan]\nmin-score = 70\n')
    rows = settings(
        run("config", "image", "--format", "json", "--config", str(pyproject), home=home)
    )
    assert rows[("image", "--min-score")]["value"] == 70
    pyproject.write_text('[project]\nname = "x"\n')
    result = run("--config", str(pyproject), "config", home=home)
    assert_one_line_error(result, 2, str(pyproject), "[tool.portscan]")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('fail-on = "sometimes"\n', ["fail-on", "sometimes"]),
        ("[image]\nmin-score = 130\n", ["[image]", "min-score", "130"]),
        ('colour = "red"\n', ["unknown key 'colour'"]),
        ("[image]\nnope = 1\n", ["[image]", "unknown key 'nope'"]),
        ("[store.nope]\nx = 1\n", ["[store]", "no command 'nope'"]),
        ('wasi-libc-as-of = "notadate"\n', ["wasi-libc-as-of", "ISO date"]),
        ("platform = [\n", ["not valid TOML"]),
    ],
)
def test_bad_config_is_one_line_naming_file_and_key(
    tmp_path: Path, home: Path, text: str, words: list[str]
) -> None:
    config = tmp_path / "portscan.toml"
    config.write_text(text)
    result = run("image", "busybox", "--config", str(config), home=home)
    assert_one_line_error(result, 2, str(config), *words)


def test_bad_variable_and_missing_config_exit_2(tmp_path: Path, home: Path) -> None:
    result = run("config", env={"PORTSCAN_MIN_SCORE": "lots"}, home=home)
    assert_one_line_error(result, 2, "PORTSCAN_MIN_SCORE", "min-score")
    result = run("config", env={"PORTSCAN_IMAGE_FAIL_ON": "never"}, home=home)
    assert_one_line_error(result, 2, "PORTSCAN_IMAGE_FAIL_ON", "never")
    missing = tmp_path / "nowhere.toml"
    result = run("config", env={"PORTSCAN_CONFIG": str(missing)}, home=home)
    assert_one_line_error(result, 2, str(missing), "does not exist")


def test_every_option_has_its_variables() -> None:
    """Each option of each command answers to PORTSCAN_<OPTION> and
    PORTSCAN_<COMMAND>_<OPTION> (docs/configuration.md lists them)."""
    seen = set()
    for path, command in commands(cli):
        for key in settings_of(command):
            own, general = env_names(path, key)
            assert own.startswith("PORTSCAN_" + "_".join(p.upper() for p in path) + "_")
            assert general == "PORTSCAN_" + key.upper().replace("-", "_")
            seen.add(key)
    assert {"platform", "fail-on", "waivers", "exclude", "verbose", "output"} <= seen


def test_wasi_libc_as_of_must_be_a_date(home: Path, oci_layout: Path) -> None:
    result = run("image", f"oci:{oci_layout}", "--wasi-libc-as-of", "notadate", home=home)
    assert_one_line_error(result, 2, "--wasi-libc-as-of", "'notadate' is not an ISO date")


def test_a_bad_command_line_is_one_line_and_exit_2(home: Path) -> None:
    result = run("image", "busybox", "--fail-on", "sometimes", home=home)
    assert_one_line_error(result, 2, "--fail-on", "sometimes", "portscan image --help")
    assert_one_line_error(run("imagine", home=home), 2, "No such command 'imagine'")
    assert_one_line_error(run("image", home=home), 2, "REFERENCE")


def test_version_shows_the_data_snapshot(home: Path) -> None:
    result = run("version", "--format", "json", home=home)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["signatures"]["digest"] == signatures_digest(knowledge.signatures_dir())
    wasi = tables.load("wasi-libc.json")["source"]
    assert doc["wasi-libc"]["commit"] == wasi["commit"]
    assert doc["wasi-libc"]["committed"] == wasi["committed"]
    text = run("version", home=home).stdout
    assert doc["signatures"]["digest"] in text and wasi["commit"][:12] in text


def test_completion_scripts_and_the_protocol_they_use(home: Path) -> None:
    names = [path[0] for path, _ in commands(cli)]
    for shell in ("bash", "zsh", "fish"):
        result = run("completion", shell, home=home)
        assert result.returncode == 0, result.stderr
        assert "_PORTSCAN_COMPLETE" in result.stdout
        checker = shutil.which(shell)
        if checker is not None and shell != "fish":
            check = subprocess.run([checker, "-n"], input=result.stdout, text=True, timeout=30)
            assert check.returncode == 0
    # what the scripts ask portscan: every command, and the options of one
    env = {"_PORTSCAN_COMPLETE": "bash_complete", "COMP_WORDS": "portscan ", "COMP_CWORD": "1"}
    offered = run(env=env, home=home).stdout.split()
    assert sorted(f"plain,{name}" for name in set(names)) == sorted(offered)
    env |= {"COMP_WORDS": "portscan image --wa", "COMP_CWORD": "2"}
    assert set(run(env=env, home=home).stdout.split()) == {
        "plain,--wasi-libc-as-of", "plain,--wasix-libc", "plain,--waivers",
    }  # fmt: skip
    assert run("completion", "tcsh", home=home).returncode == 2


def test_several_outputs_in_one_run(tmp_path: Path, home: Path, oci_layout: Path) -> None:
    out_json, out_sarif = tmp_path / "r.json", tmp_path / "r.sarif"
    result = run(
        "image", f"oci:{oci_layout}", "-o", f"json={out_json}", "-o", f"sarif={out_sarif}",
        "-o", "markdown", home=home,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("### portscan:")
    assert json.loads(out_json.read_text())["image"]["reference"].startswith("oci:")
    assert json.loads(out_sarif.read_text())["version"] == "2.1.0"
    # only FORMAT=FILE outputs: nothing on stdout; the old --format + -o FILE still works
    table = tmp_path / "t.txt"
    result = run("image", f"oci:{oci_layout}", "-o", f"json={out_json}", home=home)
    assert result.returncode == 0 and result.stdout == ""
    result = run("image", f"oci:{oci_layout}", "--format", "table", "-o", str(table), home=home)
    assert result.returncode == 0 and table.read_text().startswith("image ")
    # report renders a saved result the same way
    result = run("report", str(out_json), "-f", "json", "-o", f"markdown={table}", home=home)
    assert result.returncode == 0 and json.loads(result.stdout)["schema_version"]
    assert table.read_text().startswith("### portscan:")


@pytest.mark.parametrize(
    ("outputs", "words"),
    [
        (["-o", "json", "-o", "table"], ["more than one format on standard output"]),
        (["-o", "xml=out.xml"], ["unknown format 'xml'"]),
        (["-o", "a.txt", "-o", "b.txt"], ["more than one plain -o FILE"]),
    ],
)
def test_bad_outputs_exit_2(
    home: Path, oci_layout: Path, outputs: list[str], words: list[str]
) -> None:
    result = run("image", f"oci:{oci_layout}", *outputs, home=home)
    assert_one_line_error(result, 2, *words)


def test_verbose_logs_stages_to_stderr(home: Path, oci_layout: Path) -> None:
    result = run("image", f"oci:{oci_layout}", "-v", "-o", "json=/dev/null", home=home)
    assert result.returncode == 0, result.stderr
    assert "read 3 layers in" in result.stderr and "linted in" in result.stderr
    quiet = run("image", f"oci:{oci_layout}", "-o", "json=/dev/null", home=home)
    assert quiet.stderr == ""
    # as a setting too, and before the command; the scan cache has the result whole now
    result = run("-v", "image", f"oci:{oci_layout}", "-o", "json=/dev/null", home=home)
    assert "reused the stored result" in result.stderr
    assert "inspected the tree in" not in result.stderr


def test_an_explicit_config_wins_over_a_broken_default_one(tmp_path: Path, home: Path) -> None:
    (home / "portscan").mkdir()
    default = home / "portscan" / "portscan.toml"
    default.write_text("fail-on = 3\n")
    assert_one_line_error(run("config", home=home), 2, str(default), "fail-on")
    good = tmp_path / "good.toml"
    good.write_text("[image]\nmin-score = 10\n")
    rows = settings(run("config", "--format", "json", "--config", str(good), home=home))
    assert rows[("image", "--min-score")]["value"] == 10
