"""`portscan registry` and `portscan store`: registry audits and their results store."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from portscan.cli import options
from portscan.errors import EXIT_PARTIAL


def _interrupt_on_sigterm() -> None:
    """SIGTERM stops an audit as Ctrl-C does: workers ended, finished work kept."""
    import signal

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)


@click.command("registry")
@click.argument("target", metavar="[HOST[/PREFIX]]", required=False)
@click.option(
    "--images-from",
    "images_from",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Audit the references in FILE (one a line, or the image: values of a Kubernetes "
    "or compose YAML file) instead of a registry's catalog.",
)
@click.option("--include", multiple=True, metavar="GLOB", help="Only repositories matching.")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Skip repositories matching.")
@click.option(
    "--tags",
    "tags_text",
    default="latest-or-newest",
    show_default=True,
    help="Tags per repository: latest-or-newest (alias default: latest, else the newest "
    "image by its config's created time), latest, all or newest:N.",
)
@options.platform
@click.option(
    "--jobs", type=click.IntRange(min=1), help="Local worker processes (default: CPU count)."
)
@click.option("--scheduler", metavar="tcp://HOST:PORT", help="Run the tasks on a Dask cluster.")
@options.store
@click.option(
    "-f",
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
@options.output
@click.option(
    "--page-size",
    type=click.IntRange(1, 1000),
    default=100,
    show_default=True,
    help="Entries per catalog and tag-list request.",
)
@options.waivers
@options.base
@options.insecure
@options.timeout
@options.credentials
@options.enterprise
@options.quiet
@options.debug
def registry_command(
    target: str | None,
    images_from: Path | None,
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
    waivers_path: Path | None,
    base: str | None,
    insecure: bool,
    timeout: float,
    username: str | None,
    password_stdin: bool,
    ca_certs: tuple[Path, ...],
    authfile: Path | None,
    quiet: bool,
    debug: bool,
) -> None:
    """Audit every image of a registry (or of HOST/PREFIX), or the images listed in
    --images-from FILE, scanning each once.

    Results go to the store; a rerun after an interruption resumes the audit and
    rescans nothing it finished. Every repository or tag left out is listed with the
    reason. --waivers and --base apply to every image, as on `portscan image`. Exit 9
    when some images could not be read or scanned.
    """

    def body() -> None:
        from contextlib import ExitStack, closing

        from portscan.audit.discover import (
            ReferenceList,
            Selection,
            TagPolicy,
            parse_target,
            read_references,
        )
        from portscan.audit.executors import make_executor
        from portscan.audit.fleet import ImageRecord
        from portscan.audit.run import AuditOptions, run_audit
        from portscan.audit.store import Store, default_path
        from portscan.errors import UsageError
        from portscan.report import audit as audit_report
        from portscan.scan import ScanOptions

        policy = TagPolicy.parse(tags_text)
        waivers = options.load_waivers(waivers_path)
        if (target is None) == (images_from is None):
            raise UsageError(
                "give a registry HOST[/PREFIX] or --images-from FILE"
                + (", not both" if target else ""),
                "portscan registry 127.0.0.1:5000, or portscan registry --images-from images.txt",
            )
        if images_from is not None and (include or exclude):
            raise UsageError(
                "--include and --exclude choose repositories of a catalog, not of --images-from",
                "edit the file instead",
            )
        source = options.source_options(
            platform_text,
            insecure,
            username,
            password_stdin,
            timeout,
            ca_certs=ca_certs,
            authfile=authfile,
        )
        selection: Selection | ReferenceList
        if images_from is not None:
            path = images_from.resolve()
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise UsageError(f"cannot read {images_from}: {exc}") from None
            pairs = read_references(str(path), text)
            selection = ReferenceList(str(path), tuple(pairs), policy, source.platform)
        else:
            assert target is not None
            registry, prefix = parse_target(target)
            selection = Selection(registry, prefix, include, exclude, policy, source.platform)
        audit_options = AuditOptions(
            selection,
            ScanOptions(source=source, waivers=waivers, base=base),
            page_size=page_size,
            with_results=with_results,
        )
        _interrupt_on_sigterm()
        with ExitStack() as stack:
            store = stack.enter_context(Store(store_path or default_path()))
            executor = make_executor(jobs or os.cpu_count() or 1, scheduler)
            stack.enter_context(closing(executor))
            sink = sys.stdout
            if output is not None:
                sink = stack.enter_context(options.open_output(output))

            def line(record: ImageRecord) -> None:
                sink.write(audit_report.record_line(record))
                sink.flush()

            on_image = line if output_format == "jsonl" else None
            if not quiet and sys.stderr.isatty():
                from portscan.cli.progress import AuditProgress

                with AuditProgress() as progress:
                    fleet = run_audit(store, executor, audit_options, progress, on_image)
            else:
                fleet = run_audit(store, executor, audit_options, None, on_image)
            if output_format == "jsonl":
                for skipped in fleet.skipped:
                    sink.write(audit_report.skipped_line(skipped))
            elif output_format == "table":
                sink.write(audit_report.fleet_table(fleet))
            elif output_format == "json":
                sink.write(audit_report.fleet_json(fleet))
            sink.flush()
            if html_path is not None:
                from portscan.audit.keys import Keys
                from portscan.report import fleet_html

                result_key = Keys.of(audit_options.scan).result
                pages = fleet_html.write_image_reports(store, result_key, fleet, html_path)
                options.save(fleet_html.render(fleet, pages), html_path)
        if fleet.failed:
            sys.exit(EXIT_PARTIAL)

    options.run_guarded(body, debug)


@click.group("store")
def store_group() -> None:
    """Show and prune the results store."""


@store_group.command("stats")
@options.store
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table")
def store_stats_command(store_path: Path | None, output_format: str) -> None:
    """Rows, sizes and audits in the store; rows of other analyser versions are stale."""

    def body() -> None:
        from portscan.audit.cache import reach_key
        from portscan.audit.keys import Keys, code_key
        from portscan.audit.store import Store, default_path
        from portscan.report import audit as audit_report
        from portscan.scan import ScanOptions

        defaults = ScanOptions()
        keys, code = Keys.of(defaults), code_key(defaults.analysers, defaults.keep)
        with Store(store_path or default_path()) as store:
            stats = store.stats(keys.layer, keys.result, code, reach_key())
        render = audit_report.stats_json if output_format == "json" else audit_report.stats_text
        sys.stdout.write(render(stats))

    options.run_guarded(body, debug=False)


@store_group.command("gc")
@options.store
@click.option(
    "--older-than",
    type=click.FloatRange(min=0),
    metavar="DAYS",
    help="Also drop image results scanned more than DAYS ago.",
)
def store_gc_command(store_path: Path | None, older_than: float | None) -> None:
    """Drop results of other analyser versions (and the scan cache's whole results of
    other portscan code or signatures), layers no image result uses, and the
    reachability walks and kept ELF files no remaining layer needs."""

    def body() -> None:
        from portscan.audit.cache import reach_key
        from portscan.audit.keys import Keys, code_key
        from portscan.audit.store import Store, default_path
        from portscan.report import audit as audit_report
        from portscan.scan import ScanOptions

        defaults = ScanOptions()
        keys, code = Keys.of(defaults), code_key(defaults.analysers, defaults.keep)
        with Store(store_path or default_path()) as store:
            report = store.gc(keys.layer, keys.result, older_than, reach_key(), code)
        sys.stdout.write(audit_report.gc_text(report))

    options.run_guarded(body, debug=False)
