"""The `portscan` command group: the table of commands, each defined in its own module.

Every command also takes `--config PATH` and `-v/--verbose` (added here, so that each
command module defines only its own options); the settings of the config file and of
`PORTSCAN_*` variables become click's `default_map` (portscan.cli.config).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn

import click

# portscan speaks HTTP synchronously (httpx): httpcore's optional async back ends (trio,
# anyio), which it imports when they are installed, and httpx's own command line (rich)
# are never used. Marked absent, their import fails at once, as both packages expect:
# 0.1 s of every run, most of a rescan answered from the scan cache.
for _unused in ("trio", "anyio", "httpx._main"):
    sys.modules.setdefault(_unused, None)  # type: ignore[arg-type]

from portscan import __version__  # noqa: E402
from portscan.cli import options  # noqa: E402
from portscan.cli.audit import registry_command, store_group  # noqa: E402
from portscan.cli.config import CONFIG_ENV  # noqa: E402
from portscan.cli.rules import explain_command, rules_command  # noqa: E402
from portscan.cli.scan import diff_command, image_command, report_command  # noqa: E402
from portscan.cli.tools import completion_command, config_command, version_command  # noqa: E402
from portscan.errors import EXIT_INTERRUPTED, PortscanError, UsageError  # noqa: E402
from portscan.lifecycle import collect_rarely, leave  # noqa: E402

_DEFERRED = "portscan.settings_error"


def _load_settings(ctx: click.Context, path: Path | None, defer: bool = False) -> None:
    """Read the config file and the environment into the root's default_map. With
    `defer`, an error is kept for the command, whose own --config may name another file."""
    from portscan.cli import config

    root = ctx.find_root()
    try:
        settings = config.load(path, os.environ, root.command)  # type: ignore[arg-type]
    except UsageError as exc:
        if not defer:
            options.fail(str(exc), exc.exit_code)
        root.meta[_DEFERRED] = exc
        return
    root.meta.pop(_DEFERRED, None)
    root.meta["portscan.settings"] = settings
    root.default_map = settings.default_map()
    node: dict | None = root.default_map
    for part in ctx.command_path.split()[1:]:
        node = (node or {}).get(part)
    ctx.default_map = node


def _leaf_config(ctx: click.Context, param: click.Parameter, value: Path | None) -> None:
    if ctx.resilient_parsing:
        return
    if value is not None:
        _load_settings(ctx, value)
    elif (error := ctx.find_root().meta.get(_DEFERRED)) is not None:
        options.fail(str(error), error.exit_code)


def _verbose(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        options.log_to_stderr()


def _config_option(eager: bool) -> click.Option:
    return click.Option(
        ["--config"],
        type=click.Path(dir_okay=False, path_type=Path),
        envvar=None if eager else CONFIG_ENV,
        is_eager=eager,
        expose_value=False,
        callback=_leaf_config if eager else None,
        help="Config file (portscan.toml, or a pyproject.toml's [tool.portscan]); default: "
        "$PORTSCAN_CONFIG, else $XDG_CONFIG_HOME/portscan/portscan.toml.",
    )


def _verbose_option() -> click.Option:
    return click.Option(
        ["-v", "--verbose"],
        is_flag=True,
        is_eager=True,
        expose_value=False,
        callback=_verbose,
        help="Log what portscan does (auth source, daemon probe, fallbacks, timings) to stderr.",
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="portscan")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar=CONFIG_ENV,
    help="Config file (portscan.toml, or a pyproject.toml's [tool.portscan]); default: "
    "$XDG_CONFIG_HOME/portscan/portscan.toml.",
)
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    callback=_verbose,
    expose_value=False,
    help="Log what portscan does (auth source, daemon probe, fallbacks, timings) to stderr.",
)
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None) -> None:
    """portscan: what of a container image could move to WebAssembly (WASI)."""
    _load_settings(ctx, config_path, defer=config_path is None)


COMMANDS: tuple[click.Command, ...] = (
    report_command,
    diff_command,
    image_command,
    rules_command,
    explain_command,
    registry_command,
    store_group,
    config_command,
    version_command,
    completion_command,
)


def _add_common(command: click.Command) -> None:
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _add_common(sub)
        return
    command.params += [_config_option(eager=True), _verbose_option()]


for _command in COMMANDS:
    _add_common(_command)
    cli.add_command(_command)


def main() -> NoReturn:
    """Console-script entry point. A bad command line is one line and exit 2, as every
    other error (`portscan image --help` shows the options)."""
    try:
        code = run()
    except SystemExit as exc:
        code = exc.code
    leave(code)


class _ClosedOutput:
    """Standard output when portscan started without one (`>&-`): what a command would
    print there is a usage error of one line, not an internal one; a command that
    prints nothing there (`image -o FILE`) runs as usual."""

    def write(self, text: str) -> int:
        raise UsageError("cannot write to standard output: it is closed")

    def flush(self) -> None:
        pass


def run() -> int:
    """Run the command line in `sys.argv`; its exit code (an error exits, SystemExit)."""
    collect_rarely()
    if sys.stdout is None:
        sys.stdout = _ClosedOutput()  # type: ignore[assignment]
    try:
        code = cli.main(prog_name="portscan", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "portscan"
        options.fail(f"{exc.format_message()} (see `{where} --help`)", exc.exit_code)
    except click.ClickException as exc:
        options.fail(exc.format_message(), exc.exit_code)
    except click.Abort:
        options.fail("interrupted", EXIT_INTERRUPTED)
    except PortscanError as exc:  # raised outside a command's body (--help, --version)
        options.fail(str(exc), exc.exit_code)
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    main()
