"""What the commands share: options defined once, the one-line error guard, output files.

Every failure a command body raises becomes one line on stderr and a documented exit
code (README.md, "Exit codes"); only `--debug` shows a traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from portscan.errors import (
    EXIT_GATE_FAILED,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    PortscanError,
    UsageError,
)
from portscan.model import Platform, Target

Decorator = Callable[[Callable[..., None]], Callable[..., None]]
DEFAULT_TIMEOUT = 60.0  # seconds, as SourceOptions.timeout (not imported: startup time)


def fail(message: str, code: int) -> None:
    click.echo(f"portscan: error: {message}", err=True)
    sys.exit(code)


def run_guarded(action: Callable[[], None], debug: bool) -> None:
    """Run a command body, turning every failure into one line and an exit code."""
    try:
        action()
    except PortscanError as exc:
        fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        fail("interrupted", EXIT_INTERRUPTED)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as exc:
        if debug:
            raise
        fail(
            f"internal error: {type(exc).__name__}: {exc} "
            "(rerun with --debug for the traceback and report it)",
            EXIT_INTERNAL,
        )


def save(text: str, path: Path | None) -> None:
    """Write UTF-8 text to `path`, or to stdout when it is None."""
    if path is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None


def open_output(path: Path) -> Any:
    """`path` opened for writing text, or a UsageError that says why not."""
    try:
        return path.open("w")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None


def source_options(
    platform_text: str,
    insecure: bool,
    username: str | None = None,
    password_stdin: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
) -> Any:
    """The `SourceOptions` of a command: platform, transport, credentials (the password
    from stdin with --password-stdin, else $PORTSCAN_PASSWORD), registry timeout."""
    from portscan.sources import SourceOptions

    password = os.environ.get("PORTSCAN_PASSWORD")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    if password and not username:
        raise UsageError("a password was given without --username")
    return SourceOptions(
        platform=Platform.parse(platform_text),
        insecure=insecure,
        username=username,
        password=password,
        timeout=timeout,
    )


def apply(*decorators: Decorator) -> Decorator:
    """Several options as one decorator, listed in the order --help shows them."""

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        for decorator in reversed(decorators):
            command = decorator(command)
        return command

    return decorate


platform = click.option(
    "--platform",
    "platform_text",
    default="linux/amd64",
    show_default=True,
    help="Platform to pick from a multi-platform image (os/arch[/variant]).",
)
insecure = click.option(
    "--insecure", is_flag=True, help="Allow plain HTTP and unverified TLS registries."
)
timeout = click.option(
    "--timeout",
    type=click.FloatRange(min=0.1, max=3600),
    default=DEFAULT_TIMEOUT,
    show_default=True,
    metavar="SECONDS",
    help="Registry connect and read timeout per request; a failing registry gives up "
    "after 4 attempts each (docs/security.md, Registries).",
)
credentials = apply(
    click.option(
        "--username", envvar="PORTSCAN_USERNAME", help="Registry user (else docker config)."
    ),
    click.option(
        "--password-stdin", is_flag=True, help="Read the registry password from standard input."
    ),
)
output = click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here."
)
quiet = click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
debug = click.option("--debug", is_flag=True, help="Show tracebacks of internal errors.")
store = click.option(
    "--store",
    "store_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Results store (default: $XDG_CACHE_HOME/portscan/store.db or ~/.cache/portscan/).",
)


def _gate_help(what: str) -> str:
    return f"Exit {EXIT_GATE_FAILED} when {what}."


reports = apply(  # --html and the CI gates, shared by `image` and `report`
    click.option(
        "--html",
        "html_path",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Also write the self-contained HTML report here.",
    ),
    click.option(
        "--fail-on",
        type=click.Choice(["rework", "blocked"]),
        help=_gate_help("a target's verdict is this or worse"),
    ),
    click.option(
        "--min-score",
        type=click.IntRange(0, 100),
        help=_gate_help("a target's score is below this"),
    ),
    click.option(
        "--target",
        "gate_targets",
        multiple=True,
        type=click.Choice([t.value for t in Target]),
        help="Target the gates check (repeatable; default: every target).",
    ),
)
