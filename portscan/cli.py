"""Command line: parse arguments, call the pipeline, print. No analysis happens here."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from portscan import __version__
from portscan.errors import PortscanError, UsageError
from portscan.model import LayerDescriptor, Platform

EXIT_INTERNAL = 1
EXIT_INTERRUPTED = 130


class _LayerProgress:
    """Rich progress bars (stderr) fed by the `ScanProgress` events of a scan."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> _LayerProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def layer_started(self, descriptor: LayerDescriptor) -> None:
        label = f"layer {descriptor.digest.split(':')[-1][:12]}"
        total = descriptor.size if descriptor.size >= 0 else None
        self._tasks[descriptor.digest] = self._progress.add_task(label, total=total)

    def layer_advanced(self, descriptor: LayerDescriptor, nbytes: int) -> None:
        self._progress.advance(self._tasks[descriptor.digest], nbytes)

    def layer_finished(self, descriptor: LayerDescriptor) -> None:
        task = self._tasks[descriptor.digest]
        self._progress.update(task, completed=self._progress.tasks[task].total or 0)


def _fail(message: str, code: int) -> None:
    click.echo(f"portscan: error: {message}", err=True)
    sys.exit(code)


def _run_guarded(action: Callable[[], None], debug: bool) -> None:
    """Run a command body, turning every failure into one line and an exit code."""
    try:
        action()
    except PortscanError as exc:
        _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", EXIT_INTERRUPTED)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as exc:
        if debug:
            raise
        _fail(
            f"internal error: {type(exc).__name__}: {exc} "
            "(rerun with --debug for the traceback and report it)",
            EXIT_INTERNAL,
        )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="portscan")
def cli() -> None:
    """portscan: what of a container image could move to WebAssembly (WASI)."""


@cli.command("image")
@click.argument("reference")
@click.option(
    "--platform",
    "platform_text",
    default="linux/amd64",
    show_default=True,
    help="Platform to pick from a multi-platform image (os/arch[/variant]).",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Output format.",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here.")
@click.option("--insecure", is_flag=True, help="Allow plain HTTP and unverified TLS registries.")
@click.option("--username", envvar="PORTSCAN_USERNAME", help="Registry user (else docker config).")
@click.option(
    "--password-stdin", is_flag=True, help="Read the registry password from standard input."
)
@click.option(
    "--wasi-libc-as-of",
    metavar="DATE",
    help="Judge against wasi-libc as it was on this ISO date (default: the newest data).",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@click.option("--debug", is_flag=True, help="Show tracebacks of internal errors.")
def image_command(
    reference: str,
    platform_text: str,
    output_format: str,
    output: Path | None,
    insecure: bool,
    username: str | None,
    password_stdin: bool,
    wasi_libc_as_of: str | None,
    quiet: bool,
    debug: bool,
) -> None:
    """Scan one image without running it.

    REFERENCE is NAME[:TAG|@DIGEST] (local daemon first, then the registry),
    registry:NAME, docker:NAME, docker-archive:PATH, oci:PATH[:TAG] or dir:PATH.
    """

    def body() -> None:
        from portscan.report import json as json_report
        from portscan.report import table
        from portscan.scan import ScanOptions, scan_image
        from portscan.sources import SourceOptions

        password = os.environ.get("PORTSCAN_PASSWORD")
        if password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        if password and not username:
            raise UsageError("a password was given without --username")
        options = ScanOptions(
            source=SourceOptions(
                platform=Platform.parse(platform_text),
                insecure=insecure,
                username=username,
                password=password,
            ),
            wasi_libc_as_of=wasi_libc_as_of,
        )
        show_progress = not quiet and sys.stderr.isatty()
        if show_progress:
            with _LayerProgress() as progress:
                result = scan_image(reference, options, progress)
        else:
            result = scan_image(reference, options)
        text = json_report.render(result) if output_format == "json" else table.render(result)
        _emit(text, output)

    _run_guarded(body, debug)


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        output.write_text(text)
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror}") from None


@cli.command("rules")
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table")
def rules_command(output_format: str) -> None:
    """List every rule: id, name, verdict per target, title."""

    def body() -> None:
        from portscan.report.rules import render_rule_list

        sys.stdout.write(render_rule_list(output_format))

    _run_guarded(body, debug=False)


@cli.command("explain")
@click.argument("rule_id")
def explain_command(rule_id: str) -> None:
    """Print one rule's documentation: what it finds, why, what to do per target."""

    def body() -> None:
        from portscan.rules import get_rule, render_rule_text

        sys.stdout.write(render_rule_text(get_rule(rule_id)))

    _run_guarded(body, debug=False)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="portscan")


if __name__ == "__main__":
    main()
