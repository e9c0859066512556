"""`portscan config`, `portscan version` and `portscan completion`: the tool about itself."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from portscan import __version__
from portscan.cli import options

SHELLS = ("bash", "zsh", "fish")


@click.command("config")
@click.argument("command", nargs=-1)
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table")
@click.pass_context
def config_command(ctx: click.Context, command: tuple[str, ...], output_format: str) -> None:
    """Print the effective settings of every command (or of COMMAND) and where each
    comes from: the config file, a PORTSCAN_* variable, or the default."""

    def body() -> None:
        from portscan.cli.config import Settings, commands, settings_of
        from portscan.errors import UsageError

        root = ctx.find_root()
        settings: Settings = root.meta["portscan.settings"]
        table = list(commands(root.command))  # type: ignore[arg-type]
        if command:
            table = [(p, c) for p, c in table if p[: len(command)] == command]
            if not table:
                raise UsageError(
                    f"no command {' '.join(command)!r}", "`portscan --help` lists them"
                )
        rows: list[dict[str, Any]] = []
        for path, cmd in table:
            chosen = settings.values.get(path, {})
            for key, option in settings_of(cmd).items():
                setting = chosen.get(key)
                value = setting.value if setting else _default(option)
                value = list(value) if isinstance(value, tuple) else value
                rows.append(
                    {
                        "command": " ".join(path),
                        "option": f"--{key}",
                        "value": value,
                        "origin": setting.origin if setting else "default",
                    }
                )
        file_line = (
            f"config file: {settings.path}"
            if settings.found
            else "config file: none (--config PATH, $PORTSCAN_CONFIG or "
            "$XDG_CONFIG_HOME/portscan/portscan.toml)"
        )
        if output_format == "json":
            doc = {"config_file": str(settings.path) if settings.found else None, "settings": rows}
            sys.stdout.write(json.dumps(doc, indent=2) + "\n")
            return
        lines = [file_line, ""]
        width = max((len(r["command"]) + len(r["option"]) for r in rows), default=0) + 1
        for row in rows:
            name = f"{row['command']} {row['option']}"
            shown = "-" if row["value"] is None else json.dumps(row["value"])
            lines.append(f"{name:<{width}}  {shown:<24} {row['origin']}")
        sys.stdout.write("\n".join(lines) + "\n")

    options.run_guarded(body, debug=False)


def _default(option: click.Option) -> Any:
    """The option's default as JSON can show it (None when it has none)."""
    value = option.default
    if isinstance(value, str | int | float | bool | list | tuple):
        return value
    if option.multiple:
        return []
    return False if option.is_flag else None


def data_snapshot() -> dict[str, Any]:
    """The version and the data it judges with: the signatures digest, and the commit
    and date of the wasi-libc and wasix-libc lists."""
    from portscan.audit.keys import signatures_digest
    from portscan.knowledge import signatures_dir, tables

    directory = signatures_dir()
    snapshot: dict[str, Any] = {
        "portscan": __version__,
        "signatures": {"dir": str(directory), "digest": signatures_digest(directory)},
    }
    for name in ("wasi-libc", "wasix-libc"):
        doc = tables.load(f"{name}.json")
        source = doc["source"]
        snapshot[name] = {
            "repository": source["repository"],
            "commit": source["commit"],
            "committed": source["committed"],
            "generated_on": doc["generated_on"],
        }
    return snapshot


@click.command("version")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text")
def version_command(output_format: str) -> None:
    """Print portscan's version and its data snapshot: the signatures digest and the
    wasi-libc and wasix-libc commits and dates the verdicts are judged against."""

    def body() -> None:
        snapshot = data_snapshot()
        if output_format == "json":
            sys.stdout.write(json.dumps(snapshot, indent=2) + "\n")
            return
        sigs = snapshot["signatures"]
        lines = [
            f"portscan    {snapshot['portscan']}",
            f"signatures  {sigs['digest']} ({sigs['dir']})",
        ]
        for name in ("wasi-libc", "wasix-libc"):
            libc = snapshot[name]
            lines.append(
                f"{name:<11} {libc['commit'][:12]} committed {libc['committed']} "
                f"({libc['repository']}; lists generated {libc['generated_on']})"
            )
        sys.stdout.write("\n".join(lines) + "\n")

    options.run_guarded(body, debug=False)


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion_command(ctx: click.Context, shell: str) -> None:
    """Print the shell completion script for SHELL (bash, zsh or fish).

    It completes every command and option of this portscan, asking portscan itself:
    bash: eval "$(portscan completion bash)" in ~/.bashrc; zsh: the same in ~/.zshrc;
    fish: portscan completion fish > ~/.config/fish/completions/portscan.fish
    """
    from click.shell_completion import get_completion_class

    root = ctx.find_root()
    completion = get_completion_class(shell)
    assert completion is not None  # every SHELLS entry is one click knows
    script = completion(root.command, {}, "portscan", "_PORTSCAN_COMPLETE").source()
    sys.stdout.write(script if script.endswith("\n") else script + "\n")
