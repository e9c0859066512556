"""Settings from a config file and the environment, below the command line.

Precedence, highest first: an option on the command line, `PORTSCAN_<COMMAND>_<OPTION>`,
`PORTSCAN_<OPTION>`, the config file's `[<command>]` table, its top-level keys, the
option's default (docs/configuration.md). The config file is `--config PATH` (or
`$PORTSCAN_CONFIG`), else `$XDG_CONFIG_HOME/portscan/portscan.toml` (`~/.config/...`);
never a file of the scanned tree or of the working directory. A `pyproject.toml` given
explicitly is read from its `[tool.portscan]` table.

The settings become click's `default_map`, so the command line overrides them as it
overrides any default. A top-level key or a `PORTSCAN_<OPTION>` variable applies to every
command that has the option and accepts the value (`format = "sarif"` sets `image` and
`report`, not `diff`); one that no command accepts is an error, as is any value under a
command's own table or variable that this command refuses.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from portscan.errors import UsageError

CONFIG_NAME = "portscan.toml"
CONFIG_ENV = "PORTSCAN_CONFIG"
ENV_PREFIX = "PORTSCAN_"
# Options that are not settings: where the settings come from, and help.
NOT_SETTINGS = frozenset({"config", "help", "version"})


def default_path() -> Path:
    """`$XDG_CONFIG_HOME/portscan/portscan.toml`, else `~/.config/portscan/portscan.toml`."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "portscan" / CONFIG_NAME


def option_key(param: click.Parameter) -> str | None:
    """The settings key of an option: its long spelling without dashes (`fail-on`),
    None for arguments and for options that are not settings."""
    if not isinstance(param, click.Option):
        return None
    longs = [opt for opt in param.opts if opt.startswith("--")]
    if not longs:
        return None
    key = max(longs, key=len)[2:]
    return None if key in NOT_SETTINGS else key


def env_names(command: tuple[str, ...], key: str) -> tuple[str, str]:
    """The command's own variable and the general one, in the order they are asked."""
    word = key.upper().replace("-", "_")
    own = ENV_PREFIX + "_".join(part.upper() for part in command) + "_" + word
    return own, ENV_PREFIX + word


def commands(
    group: click.Group, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """Every leaf command of the table with its path (`("store", "gc")`), in order."""
    for name, command in group.commands.items():
        path = (*prefix, name)
        if isinstance(command, click.Group):
            yield from commands(command, path)
        else:
            yield path, command


def settings_of(command: click.Command) -> dict[str, click.Option]:
    """The command's options by settings key."""
    found = {}
    for param in command.params:
        key = option_key(param)
        if key is not None:
            assert isinstance(param, click.Option)
            found[key] = param
    return found


@dataclass(frozen=True)
class Setting:
    """One option's value for one command, and where it came from."""

    value: Any
    origin: str  # "config FILE: KEY", "env NAME"


@dataclass
class Settings:
    """The config file read (if any) and every setting per command path."""

    path: Path | None
    found: bool
    values: dict[tuple[str, ...], dict[str, Setting]] = field(default_factory=dict)

    def default_map(self) -> dict[str, Any]:
        """click's nested `default_map`: command name -> param name -> value."""
        result: dict[str, Any] = {}
        for path, settings in self.values.items():
            node = result
            for part in path:
                node = node.setdefault(part, {})
            options = _COMMANDS[path]
            for key, setting in settings.items():
                node[options[key].name] = setting.value
        return result


_COMMANDS: dict[tuple[str, ...], dict[str, click.Option]] = {}


def _convert(option: click.Option, command: click.Command, value: Any) -> Any:
    """`value` as the option takes it, or click.BadParameter."""
    if option.multiple and not isinstance(value, list | tuple):
        value = [value]
    if option.is_flag and not isinstance(value, bool):
        value = click.BOOL.convert(value, option, None)
    ctx = click.Context(command)
    converted = option.type_cast_value(ctx, value)
    if option.callback is not None and option.expose_value:
        converted = option.callback(ctx, option, converted)
    return value if isinstance(value, list) else converted


def _fail(where: str, key: str, exc: click.BadParameter | UsageError) -> UsageError:
    message = exc.format_message() if isinstance(exc, click.BadParameter) else str(exc)
    return UsageError(f"{where}: {key}: {message}")


def _read(path: Path, explicit: bool) -> tuple[dict[str, Any], bool]:
    """The settings table of the file, and whether it exists."""
    if not path.is_file():
        if explicit:
            raise UsageError(f"config file {path} does not exist")
        return {}, False
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read config file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}") from None
    if path.name == "pyproject.toml":
        tool = doc.get("tool")
        table = tool.get("portscan") if isinstance(tool, dict) else None
        if not isinstance(table, dict):
            raise UsageError(f"{path} has no [tool.portscan] table")
        return table, True
    return doc, True


def _layers(
    doc: Mapping[str, Any], where: str
) -> tuple[dict[str, Any], dict[tuple[str, ...], dict[str, Any]]]:
    """Split the file into top-level keys and per-command tables (`[store.gc]`)."""
    general: dict[str, Any] = {}
    tables: dict[tuple[str, ...], dict[str, Any]] = {}
    group_names = {path[0] for path in _COMMANDS if len(path) > 1}

    def walk(node: Mapping[str, Any], path: tuple[str, ...]) -> None:
        for key, value in node.items():
            sub = (*path, key)
            if isinstance(value, dict) and (sub in _COMMANDS or (not path and key in group_names)):
                if sub in _COMMANDS:
                    tables[sub] = dict(value)
                else:
                    walk(value, sub)
            elif path:
                if path in _COMMANDS:
                    continue
                raise UsageError(f"{where}: [{'.'.join(path)}]: no command {key!r}")
            else:
                general[key] = value

    walk(doc, ())
    return general, tables


def load(path: Path | None, environ: Mapping[str, str], group: click.Group) -> Settings:
    """Read the config file (`path`, else the default one if it exists) and the
    environment into settings per command; any bad key or value is a UsageError
    naming the file (or variable) and the key."""
    if not _COMMANDS:
        _COMMANDS.update({p: settings_of(c) for p, c in commands(group)})
    explicit = path is not None
    chosen = path if path is not None else default_path()
    doc, found = _read(chosen, explicit)
    where = str(chosen)
    general, tables = _layers(doc, where)
    settings = Settings(chosen if found else None, found)
    every = set().union(*(options.keys() for options in _COMMANDS.values()))
    command_of = {p: c for p, c in commands(group)}
    for path_ in tables:
        unknown = sorted(set(tables[path_]) - set(_COMMANDS[path_]))
        if unknown:
            raise UsageError(
                f"{where}: [{'.'.join(path_)}]: unknown key {unknown[0]!r}",
                f"`portscan {' '.join(path_)} --help` lists the options",
            )
    for key in general:
        if key not in every:
            raise UsageError(
                f"{where}: unknown key {key!r}",
                "no command has this option (docs/configuration.md)",
            )
    for key, value in general.items():
        _spread(settings, command_of, key, value, f"config {where}: {key}", where)
    for path_, table in tables.items():
        name = f"[{'.'.join(path_)}]"
        for key, value in table.items():
            settings.values.setdefault(path_, {})[key] = _checked(
                command_of[path_], _COMMANDS[path_][key], value,
                f"config {where}: {name} {key}", f"{where}: {name}", key,
            )  # fmt: skip
    for key in sorted(every):
        variable = env_names((), key)[1]
        if variable in environ:
            _spread(settings, command_of, key, environ[variable], f"env {variable}", variable)
    for path_, options in _COMMANDS.items():
        for key, option in options.items():
            own = env_names(path_, key)[0]
            if own in environ:
                value = _env_value(option, environ[own])
                settings.values.setdefault(path_, {})[key] = _checked(
                    command_of[path_], option, value, f"env {own}", own, key
                )
    return settings


def _spread(
    settings: Settings,
    command_of: Mapping[tuple[str, ...], click.Command],
    key: str,
    value: Any,
    origin: str,
    where: str,
) -> None:
    """Set a general key on every command that has the option and accepts the value;
    a UsageError when none does."""
    first_error: click.BadParameter | UsageError | None = None
    accepted = False
    for path, options in _COMMANDS.items():
        if key not in options:
            continue
        option = options[key]
        raw = _env_value(option, value) if origin.startswith("env ") else value
        try:
            converted = _convert(option, command_of[path], raw)
        except (click.BadParameter, UsageError) as exc:
            first_error = first_error or exc
            continue
        settings.values.setdefault(path, {})[key] = Setting(converted, origin)
        accepted = True
    if not accepted and first_error is not None:
        raise _fail(where, key, first_error)


def _checked(
    command: click.Command, option: click.Option, value: Any, origin: str, where: str, key: str
) -> Setting:
    try:
        return Setting(_convert(option, command, value), origin)
    except (click.BadParameter, UsageError) as exc:
        raise _fail(where, key, exc) from None


def _env_value(option: click.Option, text: str) -> Any:
    """An environment variable's text as the option takes it: words for a repeatable
    option, the text itself otherwise."""
    return text.split() if option.multiple else text
