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


class _StderrProgress:
    """A transient rich progress display on stderr, started and stopped as a context."""

    def __init__(self, *columns: Any) -> None:
        from rich.console import Console
        from rich.progress import Progress

        self._progress = Progress(*columns, console=Console(stderr=True), transient=True)

    def __enter__(self) -> Any:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()


class _LayerProgress(_StderrProgress):
    """Rich progress bars (stderr) fed by the `ScanProgress` events of a scan."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        super().__init__(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
        )
        self._tasks: dict[str, Any] = {}

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


# --------------------------------------------------------------------------- reports and CI gates
# Output formats, --html, the CI gates of `image` and `report`, and the `report` and
# `diff` commands (docs/report-formats.md).

EXIT_GATE_FAILED = 10  # a CI gate (--fail-on, --min-score) did not pass
_FORMATS = ["table", "json", "sarif", "cyclonedx", "markdown", "html"]


def _save(text: str, path: Path | None) -> None:
    """Write UTF-8 text to `path`, or to stdout when it is None."""
    if path is None:
        _emit(text, None)
        return
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None


def _report_options(command: Callable[..., None]) -> Callable[..., None]:
    """--html and the CI gates, shared by `image` and `report`."""
    from portscan.model import Target

    options = [
        click.option(
            "--html",
            "html_path",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Also write the self-contained HTML report here.",
        ),
        click.option(
            "--fail-on",
            type=click.Choice(["rework", "blocked"]),
            help=f"Exit {EXIT_GATE_FAILED} when a target's verdict is this or worse.",
        ),
        click.option(
            "--min-score",
            type=click.IntRange(0, 100),
            help=f"Exit {EXIT_GATE_FAILED} when a target's score is below this.",
        ),
        click.option(
            "--target",
            "gate_targets",
            multiple=True,
            type=click.Choice([t.value for t in Target]),
            help="Target the gates check (repeatable; default: every target).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _write_reports(
    result: Any,
    output_format: str | None,
    output: Path | None,
    html_path: Path | None,
    gate: tuple[str | None, int | None, tuple[str, ...]],
) -> None:
    """Print or write the chosen format, write --html, then apply the gates."""
    from portscan.model import Target, Verdict
    from portscan.report.formats import renderer
    from portscan.report.gates import Gates, check

    if output_format is not None:
        _save(renderer(output_format)(result), output)
    if html_path is not None:
        _save(renderer("html")(result), html_path)
    fail_on, min_score, targets = gate
    gates = Gates(
        Verdict(fail_on) if fail_on else None, min_score, tuple(Target(t) for t in targets)
    )
    failures = check(result, gates)
    for failure in failures:
        click.echo(f"portscan: gate failed: {failure}", err=True)
    if failures:
        sys.exit(EXIT_GATE_FAILED)


@cli.command("report")
@click.argument("result_file", metavar="RESULT.json", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "output_format",
    type=click.Choice(_FORMATS),
    help="Output format (default: table, or none when only --html is given).",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here.")
@_report_options
@click.option("--debug", is_flag=True, help="Show tracebacks of internal errors.")
def report_command(
    result_file: Path,
    output_format: str | None,
    output: Path | None,
    html_path: Path | None,
    fail_on: str | None,
    min_score: int | None,
    gate_targets: tuple[str, ...],
    debug: bool,
) -> None:
    """Render a saved result (`portscan image REF --format json -o RESULT.json`) again,
    in any format, and apply the CI gates to it."""

    def body() -> None:
        from portscan.report.load import load_result

        result = load_result(result_file)
        chosen = output_format or (None if html_path else "table")
        _write_reports(result, chosen, output, html_path, (fail_on, min_score, gate_targets))

    _run_guarded(body, debug)


@cli.command("diff")
@click.argument("old")
@click.argument("new")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
    help="Output format.",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here.")
@click.option(
    "--fail-on-worse",
    is_flag=True,
    help=f"Exit {EXIT_GATE_FAILED} when NEW is less portable than OLD on any target.",
)
@click.option(
    "--platform",
    "platform_text",
    default="linux/amd64",
    show_default=True,
    help="Platform to pick from a multi-platform image (os/arch[/variant]).",
)
@click.option("--insecure", is_flag=True, help="Allow plain HTTP and unverified TLS registries.")
@click.option("--debug", is_flag=True, help="Show tracebacks of internal errors.")
def diff_command(
    old: str,
    new: str,
    output_format: str,
    output: Path | None,
    fail_on_worse: bool,
    platform_text: str,
    insecure: bool,
    debug: bool,
) -> None:
    """What got more or less portable between OLD and NEW, per target.

    OLD and NEW are image references or saved JSON results (files ending in .json).
    """

    def body() -> None:
        from portscan.report import diff
        from portscan.report.load import is_saved_result, load_result
        from portscan.scan import ScanOptions, scan_image
        from portscan.sources import SourceOptions

        options = ScanOptions(
            source=SourceOptions(platform=Platform.parse(platform_text), insecure=insecure)
        )
        sides = [
            load_result(Path(arg)) if is_saved_result(arg) else scan_image(arg, options)
            for arg in (old, new)
        ]
        changes = diff.diff_results(*sides)
        render = {
            "text": diff.render_text,
            "json": diff.render_json,
            "markdown": diff.render_markdown,
        }[output_format]
        _save(render(changes), output)
        if fail_on_worse and changes.worse:
            click.echo("portscan: gate failed: NEW is less portable than OLD", err=True)
            sys.exit(EXIT_GATE_FAILED)

    _run_guarded(body, debug)


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
    type=click.Choice(_FORMATS),
    default="table",
    show_default=True,
    help="Output format.",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here.")
@_report_options
@click.option("--insecure", is_flag=True, help="Allow plain HTTP and unverified TLS registries.")
@click.option("--username", envvar="PORTSCAN_USERNAME", help="Registry user (else docker config).")
@click.option(
    "--password-stdin", is_flag=True, help="Read the registry password from standard input."
)
@click.option(
    "--sbom",
    type=click.Choice(["syft"]),
    help="Also run syft (pip install 'portscan[syft]') and merge its packages.",
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
    html_path: Path | None,
    fail_on: str | None,
    min_score: int | None,
    gate_targets: tuple[str, ...],
    insecure: bool,
    username: str | None,
    password_stdin: bool,
    sbom: str | None,
    wasi_libc_as_of: str | None,
    quiet: bool,
    debug: bool,
) -> None:
    """Scan one image without running it.

    REFERENCE is NAME[:TAG|@DIGEST] (local daemon first, then the registry),
    registry:NAME, docker:NAME, docker-archive:PATH, oci:PATH[:TAG] or dir:PATH.
    """

    def body() -> None:
        from portscan.inspect import worker

        worker.start()  # lief loads in the worker while the rest of portscan imports

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
            sbom=sbom,
        )
        show_progress = not quiet and sys.stderr.isatty()
        if show_progress:
            with _LayerProgress() as progress:
                result = scan_image(reference, options, progress)
        else:
            result = scan_image(reference, options)
        gate = (fail_on, min_score, gate_targets)
        _write_reports(result, output_format, output, html_path, gate)

    _run_guarded(body, debug)


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        output.write_text(text, encoding="utf-8")
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


# --------------------------------------------------------------------------- registry audits

EXIT_PARTIAL = 9  # the audit finished, but some images could not be scanned


class _AuditProgress(_StderrProgress):
    """Rich progress (stderr) for an audit: images and layers, each with an ETA."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        super().__init__(
            TextColumn("{task.description:<12}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
        )
        self._found = self._progress.add_task("discovering", total=None)
        self._images: Any = None
        self._layers: Any = None

    def discovered(self, images: int) -> None:
        self._progress.advance(self._found, images)

    def planned(self, images: int, layers: int) -> None:
        self._progress.update(self._found, visible=False)
        self._images = self._progress.add_task("images", total=images)
        self._layers = self._progress.add_task("layers", total=layers)

    def layer_done(self) -> None:
        self._progress.advance(self._layers)

    def image_done(self) -> None:
        if self._images is not None:
            self._progress.advance(self._images)


def _registry_options(
    platform_text: str, insecure: bool, username: str | None, password_stdin: bool
) -> Any:
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
    )


def _interrupt_on_sigterm() -> None:
    """SIGTERM stops an audit as Ctrl-C does: workers ended, finished work kept."""
    import signal

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)


_STORE_OPTION = click.option(
    "--store",
    "store_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Results store (default: $XDG_CACHE_HOME/portscan/store.db or ~/.cache/portscan/).",
)


@cli.command("registry")
@click.argument("target", metavar="HOST[/PREFIX]")
@click.option("--include", multiple=True, metavar="GLOB", help="Only repositories matching.")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Skip repositories matching.")
@click.option(
    "--tags",
    "tags_text",
    default="latest",
    show_default=True,
    help="Tags per repository: latest, all or newest:N (by the config's created time).",
)
@click.option(
    "--platform",
    "platform_text",
    default="linux/amd64",
    show_default=True,
    help="Platform to pick from multi-platform images (os/arch[/variant]).",
)
@click.option(
    "--jobs", type=click.IntRange(min=1), help="Local worker processes (default: CPU count)."
)
@click.option("--scheduler", metavar="tcp://HOST:PORT", help="Run the tasks on a Dask cluster.")
@_STORE_OPTION
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "jsonl", "json"]),
    default="table",
    show_default=True,
    help="table: summary; jsonl: one line per image as it completes; json: the fleet.",
)
@click.option("--with-results", is_flag=True, help="jsonl: add each image's full scan JSON.")
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the fleet report (one self-contained HTML file).",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here.")
@click.option(
    "--page-size",
    type=click.IntRange(1, 1000),
    default=100,
    show_default=True,
    help="Entries per catalog and tag-list request.",
)
@click.option("--insecure", is_flag=True, help="Allow plain HTTP and unverified TLS registries.")
@click.option("--username", envvar="PORTSCAN_USERNAME", help="Registry user (else docker config).")
@click.option(
    "--password-stdin", is_flag=True, help="Read the registry password from standard input."
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@click.option("--debug", is_flag=True, help="Show tracebacks of internal errors.")
def registry_command(
    target: str,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    tags_text: str,
    platform_text: str,
    jobs: int | None,
    scheduler: str | None,
    store_path: Path | None,
    output_format: str,
    with_results: bool,
    html_path: Path | None,
    output: Path | None,
    page_size: int,
    insecure: bool,
    username: str | None,
    password_stdin: bool,
    quiet: bool,
    debug: bool,
) -> None:
    """Audit every image of a registry (or of HOST/PREFIX), scanning each once.

    Results go to the store; a rerun after an interruption resumes the audit and
    rescans nothing it finished. Exit 9 when some images could not be scanned.
    """

    def body() -> None:
        from contextlib import ExitStack, closing

        from portscan.batch import AuditOptions, ImageRecord, run_audit
        from portscan.catalog import Selection, TagPolicy, parse_target
        from portscan.executors import make_executor
        from portscan.report import audit as audit_report
        from portscan.scan import ScanOptions
        from portscan.store import Store, default_path

        registry, prefix = parse_target(target)
        source = _registry_options(platform_text, insecure, username, password_stdin)
        selection = Selection(
            registry, prefix, include, exclude, TagPolicy.parse(tags_text), source.platform
        )
        options = AuditOptions(
            selection,
            ScanOptions(source=source),
            page_size=page_size,
            with_results=with_results,
        )
        _interrupt_on_sigterm()
        with ExitStack() as stack:
            store = stack.enter_context(Store(store_path or default_path()))
            executor = make_executor(jobs or os.cpu_count() or 1, scheduler)
            stack.enter_context(closing(executor))
            sink = sys.stdout if output is None else stack.enter_context(_open_output(output))

            def line(record: ImageRecord) -> None:
                sink.write(audit_report.record_line(record))
                sink.flush()

            on_image = line if output_format == "jsonl" else None
            if not quiet and sys.stderr.isatty():
                with _AuditProgress() as progress:
                    fleet = run_audit(store, executor, options, progress, on_image)
            else:
                fleet = run_audit(store, executor, options, None, on_image)
            if output_format == "table":
                sink.write(audit_report.fleet_table(fleet))
            elif output_format == "json":
                sink.write(audit_report.fleet_json(fleet))
            sink.flush()
            if html_path is not None:
                from portscan.report import fleet_html

                try:
                    html_path.write_text(fleet_html.render(fleet), encoding="utf-8")
                except OSError as exc:
                    raise UsageError(f"cannot write {html_path}: {exc.strerror}") from None
        if fleet.failed:
            sys.exit(EXIT_PARTIAL)

    _run_guarded(body, debug)


def _open_output(path: Path) -> Any:
    try:
        return path.open("w")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None


@cli.group("store")
def store_group() -> None:
    """Show and prune the results store."""


@store_group.command("stats")
@_STORE_OPTION
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table")
def store_stats_command(store_path: Path | None, output_format: str) -> None:
    """Rows, sizes and audits in the store; rows of other analyser versions are stale."""

    def body() -> None:
        from portscan.batch import Keys
        from portscan.report import audit as audit_report
        from portscan.scan import ScanOptions
        from portscan.store import Store, default_path

        keys = Keys.of(ScanOptions())
        with Store(store_path or default_path()) as store:
            stats = store.stats(keys.layer, keys.result)
        render = audit_report.stats_json if output_format == "json" else audit_report.stats_text
        sys.stdout.write(render(stats))

    _run_guarded(body, debug=False)


@store_group.command("gc")
@_STORE_OPTION
@click.option(
    "--older-than",
    type=click.FloatRange(min=0),
    metavar="DAYS",
    help="Also drop image results scanned more than DAYS ago.",
)
def store_gc_command(store_path: Path | None, older_than: float | None) -> None:
    """Drop results of other analyser versions and layers no image result uses."""

    def body() -> None:
        from portscan.batch import Keys
        from portscan.report import audit as audit_report
        from portscan.scan import ScanOptions
        from portscan.store import Store, default_path

        keys = Keys.of(ScanOptions())
        with Store(store_path or default_path()) as store:
            report = store.gc(keys.layer, keys.result, older_than)
        sys.stdout.write(audit_report.gc_text(report))

    _run_guarded(body, debug=False)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="portscan")


if __name__ == "__main__":
    main()
