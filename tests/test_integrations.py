"""The integrations as far as this machine runs them: the GitHub Action's scan script
against a real OCI layout, the pre-commit hooks' entries as pre-commit invokes them, and
the Dockerfile (checked statically here; built and run by tests/test_container_image.py).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "integrations/github-action/scan.sh"
CORPUS_LAYOUT = Path("/tmp/portscan-corpus/oci/busybox-static")  # blocked on wasip1


@pytest.fixture
def layout(oci_layout: Path) -> str:
    """A corpus OCI layout when the corpus is built, else the conftest fixture's."""
    return f"oci:{CORPUS_LAYOUT if CORPUS_LAYOUT.is_dir() else oci_layout}"


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    """A directory with a `portscan` command that runs this checkout, first on PATH
    (what `pip install` gives the action and the hooks)."""
    directory = tmp_path / "bin"
    directory.mkdir()
    shim = directory / "portscan"
    shim.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m portscan "$@"\n')
    shim.chmod(0o755)
    return directory


def environment(bin_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INPUT_", "GITHUB_"))}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env['PATH']}", PYTHONPATH=str(REPO))
    env.update(extra)
    return env


# --------------------------------------------------------------------------- GitHub Action


def test_action_yml_wires_inputs_to_the_script() -> None:
    action = yaml.safe_load((REPO / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    steps = {step.get("id") or step["name"]: step for step in action["runs"]["steps"]}
    scan = steps["scan"]
    assert "integrations/github-action/scan.sh" in scan["run"] and "${{" not in scan["run"]
    for step in action["runs"]["steps"]:  # inputs reach shells through env, never inline
        assert "${{" not in step.get("run", "")
    inputs = set(action["inputs"])
    for value in scan["env"].values():
        for name in re.findall(r"\$\{\{\s*inputs\.([\w-]+)\s*\}\}", value):
            assert name in inputs, name
    used = set(re.findall(r"\bINPUT_[A-Z_]+", SCRIPT.read_text()))
    assert used == set(scan["env"]), used ^ set(scan["env"])
    assert action["inputs"]["image"]["required"] is True
    for name, output in action["outputs"].items():
        assert output["value"] == f"${{{{ steps.scan.outputs.{name} }}}}"
    upload = steps["Upload SARIF"]
    assert upload["uses"].startswith("github/codeql-action/upload-sarif@")
    assert upload["if"].startswith("always()")


def _evaluate(template: str, inputs: dict[str, str], defaults: dict[str, str]) -> str:
    """A step's `${{ inputs.NAME }}` / `${{ github.action_path }}` expressions, as the
    runner evaluates them (an input not given takes its action.yml default)."""

    def value(match: re.Match[str]) -> str:
        expression = match.group(1)
        if expression == "github.action_path":
            return str(REPO)
        assert expression.startswith("inputs."), expression
        name = expression.removeprefix("inputs.")
        return inputs.get(name, defaults[name])

    return re.sub(r"\$\{\{\s*([\w.-]+)\s*\}\}", value, template)


def run_action(bin_dir: Path, work: Path, **inputs: str) -> subprocess.CompletedProcess[str]:
    """The action's scan step as the runner runs it: its `env:` evaluated from the
    inputs (keyword arguments, `_` for `-`) and action.yml's defaults, its `run:` in
    bash as the runner starts it, from the workspace, with GITHUB_ACTION_PATH, GITHUB_OUTPUT and
    GITHUB_STEP_SUMMARY set. The install step is stood in for by `bin_dir`."""
    action = yaml.safe_load((REPO / "action.yml").read_text())
    (step,) = [s for s in action["runs"]["steps"] if s.get("id") == "scan"]
    assert step["shell"] == "bash"
    defaults = {name: spec.get("default", "") for name, spec in action["inputs"].items()}
    given = {name.replace("_", "-"): value for name, value in inputs.items()}
    assert set(given) <= set(defaults), set(given) - set(defaults)
    work.mkdir(exist_ok=True)
    (work / "output").write_text("")
    (work / "summary.md").write_text("")
    env = environment(
        bin_dir,
        GITHUB_ACTION_PATH=str(REPO),
        GITHUB_OUTPUT=str(work / "output"),
        GITHUB_STEP_SUMMARY=str(work / "summary.md"),
        **{key: _evaluate(value, given, defaults) for key, value in step["env"].items()},
    )
    script = work / "step.sh"  # `shell: bash` is bash --noprofile --norc -eo pipefail {0}
    script.write_text(step["run"])
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def outputs(work: Path) -> dict[str, str]:
    lines = (work / "output").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines)


def test_action_script_scans_a_layout(bin_dir: Path, tmp_path: Path, layout: str) -> None:
    work = tmp_path / "work"
    done = run_action(bin_dir, work, image=layout, target="wasip2 wasix")
    assert done.returncode == 0, done.stderr
    assert "wasip1" in done.stdout  # the table on the log
    assert outputs(work) == {"exit-code": "0", "sarif": "portscan.sarif", "json": "portscan.json"}
    log = json.loads((work / "portscan.sarif").read_text())
    assert log["version"] == "2.1.0"
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    assert all(rule["help"]["markdown"] for rule in rules)
    result = json.loads((work / "portscan.json").read_text())
    assert result["image"]["digest"].startswith("sha256:")
    assert (work / "summary.md").read_text().startswith("#")


@pytest.mark.skipif(not CORPUS_LAYOUT.is_dir(), reason="needs the corpus busybox-static layout")
def test_action_script_gate_fails_after_writing_everything(bin_dir: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    image = f"oci:{CORPUS_LAYOUT}"
    done = run_action(bin_dir, work, image=image, sarif="out/scan.sarif", args="--platform amd64")
    assert done.returncode == 2, done.stderr  # out/ does not exist: a one-line error
    assert "cannot write out/scan.sarif" in done.stderr
    (work / "out").mkdir()
    gate = {"fail_on": "blocked", "target": "wasip1", "sarif": "out/scan.sarif"}
    done = run_action(bin_dir, work, image=image, **gate)
    assert done.returncode == 10, done.stderr
    assert "gate failed" in done.stderr
    found = outputs(work)
    assert found["exit-code"] == "10" and found["sarif"] == "out/scan.sarif"
    results = json.loads((work / "out/scan.sarif").read_text())["runs"][0]["results"]
    assert any(r["level"] == "error" for r in results)

    # a waiver file in args: the blocker is suppressed in the SARIF log, the gate passes
    (work / "waivers.toml").write_text(
        '[[waiver]]\nrule = "PS618"\npath = "/bin/busybox"\nreason = "mount is never run"\n'
    )
    done = run_action(bin_dir, work, image=image, args="--waivers waivers.toml", **gate)
    assert done.returncode == 0, done.stderr
    assert outputs(work)["exit-code"] == "0"
    results = json.loads((work / "out/scan.sarif").read_text())["runs"][0]["results"]
    suppressed = {r["ruleId"] for r in results if r.get("suppressions")}
    assert suppressed == {"PS618"}
    assert "mount is never run" in (work / "summary.md").read_text()


def test_action_script_without_an_image(bin_dir: Path, tmp_path: Path) -> None:
    done = run_action(bin_dir, tmp_path / "work", image="")
    assert done.returncode == 2 and "image input is empty" in done.stderr


# --------------------------------------------------------------------------- pre-commit


def hooks() -> dict[str, dict[str, object]]:
    manifest = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    return {hook["id"]: hook for hook in manifest}


def test_hook_manifest_is_complete() -> None:
    found = hooks()
    assert set(found) == {"portscan-results", "portscan-image"}
    for hook in found.values():
        assert {"id", "name", "entry", "language"} <= set(hook)
        assert hook["language"] == "python"  # pre-commit pip-installs this repository
        assert str(hook["entry"]).split()[0] in ("portscan", "bash")
    assert found["portscan-image"]["pass_filenames"] is False
    assert re.search(str(found["portscan-results"]["files"]), "build/app.portscan.json")


def run_hook(
    hook_id: str, args: list[str], files: list[str], bin_dir: Path, cwd: Path
) -> subprocess.CompletedProcess[str]:
    """As pre-commit runs a hook: shlex-split entry, then args, then the file names."""
    hook = hooks()[hook_id]
    command = [*shlex.split(str(hook["entry"])), *args]
    if hook.get("pass_filenames", True):
        command += files
    return subprocess.run(
        command, cwd=cwd, env=environment(bin_dir), capture_output=True, text=True, timeout=300
    )


def test_results_hook_gates_each_saved_result(bin_dir: Path, tmp_path: Path, layout: str) -> None:
    saved = subprocess.run(
        ["portscan", "image", layout, "-q", "-f", "json", "-o", "app.portscan.json"],
        cwd=tmp_path,
        env=environment(bin_dir),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert saved.returncode == 0, saved.stderr
    shutil.copy(tmp_path / "app.portscan.json", tmp_path / "copy.portscan.json")
    files = ["app.portscan.json", "copy.portscan.json"]
    passed = run_hook("portscan-results", [], files, bin_dir, tmp_path)
    assert passed.returncode == 0, passed.stderr
    assert passed.stdout.count("wasip2") >= 2  # one table per file
    result = json.loads((tmp_path / "app.portscan.json").read_text())
    scores = [t["score"] for t in result["targets"].values()]
    gate = f"--min-score={max(scores) + 1}"  # fails on every target, whatever the image
    failed = run_hook("portscan-results", [gate], files, bin_dir, tmp_path)
    assert failed.returncode == 10, failed.stderr
    assert failed.stderr.count("gate failed") >= 2 * len(scores)  # both files were judged


def test_image_hook_scans_the_reference_in_args(bin_dir: Path, tmp_path: Path, layout: str) -> None:
    done = run_hook("portscan-image", [layout, "-f", "json"], ["ignored.py"], bin_dir, tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["image"]["reference"].startswith("oci:")
    missing = run_hook("portscan-image", [], [], bin_dir, tmp_path)
    assert missing.returncode == 2 and "REFERENCE" in missing.stderr


def _git(cwd: Path, *args: str) -> None:
    identity = ("-c", "user.name=portscan tests", "-c", "user.email=tests@portscan.invalid")
    subprocess.run(["git", *identity, *args], cwd=cwd, check=True, capture_output=True)


def test_results_hook_with_the_real_pre_commit(bin_dir: Path, tmp_path: Path, layout: str) -> None:
    """`pre-commit try-repo` this checkout: pre-commit builds the hook's own virtualenv
    (pip-installing this repository and its dependencies), then runs portscan-results on
    a project's saved results; the gates and waivers come from PORTSCAN_* variables."""
    pytest.importorskip("pre_commit", reason="pre-commit is in the test extras")
    project = tmp_path / "project"
    project.mkdir()
    saved = subprocess.run(
        ["portscan", "image", layout, "-q", "-f", "json", "-o", "app.portscan.json"],
        cwd=project,
        env=environment(bin_dir),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert saved.returncode == 0, saved.stderr
    (project / "notes.json").write_text("{}")  # not a *.portscan.json: never given to it
    _git(project, "init", "-q")
    _git(project, "add", ".")
    _git(project, "commit", "-qm", "saved results")
    result = json.loads((project / "app.portscan.json").read_text())
    scores = [t["score"] for t in result["targets"].values()]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTSCAN_", "PYTHON"))}
    env["PRE_COMMIT_HOME"] = str(tmp_path / "pre-commit-home")

    def try_repo(**variables: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "pre_commit", "try-repo", str(REPO), "portscan-results",
                   "--all-files", "--verbose"]  # fmt: skip
        return subprocess.run(
            command, cwd=project, env={**env, **variables}, capture_output=True, text=True,
            timeout=900,
        )  # fmt: skip

    passed = try_repo()
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert re.search(r"portscan gates on saved results\.+Passed", passed.stdout)
    assert "wasip2" in passed.stdout  # --verbose shows the table the hook printed
    failed = try_repo(PORTSCAN_MIN_SCORE=str(max(scores) + 1))
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert re.search(r"portscan gates on saved results\.+Failed", failed.stdout)
    assert "- exit code: 10" in failed.stdout and "gate failed" in failed.stdout
    (project / "broken.portscan.json").write_text('{"schema_version": "0.1"}')
    _git(project, "add", ".")
    broken = try_repo()
    assert broken.returncode == 1 and "- exit code: 2" in broken.stdout, broken.stdout
    assert "broken.portscan.json is not a portscan result" in broken.stdout


# --------------------------------------------------------------------------- Dockerfile


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def test_dockerfile_copies_what_exists_and_runs_portscan() -> None:
    instructions = dockerfile_instructions()
    assert instructions[0] == ("ARG", "BASE=python:3.11-slim")
    assert ("FROM", "${BASE}") in instructions
    assert ("ENTRYPOINT", '["portscan"]') in instructions
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    copied = []
    for keyword, rest in instructions:
        if keyword == "COPY":
            *sources, _ = rest.split()
            copied += sources
    assert copied
    for source in copied:
        assert (REPO / source).exists(), source
        assert f"!{source.rstrip('/')}" in {line.rstrip("/") for line in ignore}, source
    run = " ".join(rest for keyword, rest in instructions if keyword == "RUN")
    assert "pip install" in run and "portscan version" in run
    # what setuptools needs to build the wheel is all copied
    pyproject = (REPO / "pyproject.toml").read_text()
    assert 'readme = "README.md"' in pyproject and '"signatures"' in pyproject
