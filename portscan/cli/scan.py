"""`portscan image`, `portscan report` and `portscan diff`: one image, its reports, its gates."""

from __future__ import annotations

import functools
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import click

from portscan.cli import options
from portscan.errors import EXIT_GATE_FAILED
from portscan.report.formats import FORMATS


def write_reports(
    result: Any,
    planned: list[tuple[str, Path | None]],
    html_path: Path | None,
    gate: tuple[str | None, int | None, tuple[str, ...]],
) -> None:
    """Print or write each planned (format, file) output, write --html, then apply
    the gates. `result` is a ScanResult or a codec.EncodedResult (the scan cache's)."""
    from portscan.codec import full_result
    from portscan.model import Target, Verdict
    from portscan.report.formats import rendered
    from portscan.report.gates import Gates, check

    for output_format, output in planned:
        options.save(rendered(output_format, result), output)
    if html_path is not None:
        options.save(rendered("html", result), html_path)
    fail_on, min_score, targets = gate
    gates = Gates(
        Verdict(fail_on) if fail_on else None, min_score, tuple(Target(t) for t in targets)
    )
    failures = check(full_result(result), gates) if gates.active else []
    for failure in failures:
        click.echo(f"portscan: gate failed: {failure}", err=True)
    if failures:
        sys.exit(EXIT_GATE_FAILED)


@click.command("image")
@click.argument("reference")
@options.platform
@click.option(
    "-f",
    "--format",
    "output_format",
    type=click.Choice(FORMATS),
    help="Output format (default: table; none when only -o FORMAT=FILE outputs are given).",
)
@options.outputs
@options.reports
@options.insecure
@options.timeout
@options.credentials
@options.enterprise
@options.offline
@click.option(
    "--sbom",
    type=click.Choice(["syft"]),
    help="Also run syft (pip install 'portscan[syft]') and merge its packages.",
)
@click.option(
    "--wasi-libc-as-of",
    metavar="DATE",
    callback=options.check_date,
    help="Judge against wasi-libc as it was on this ISO date (default: the newest data).",
)
@click.option(
    "--wasix-libc",
    metavar="FLAVOUR",
    help="Judge wasix by this wasix-libc flavour: wasm32-wasi (default), wasm32-wasi-eh, "
    "wasm32-wasi-ehpic or wasm32-wasi-threads (signatures/wasix-libc.json).",
)
@options.judging
@click.option(
    "--no-cache",
    is_flag=True,
    help="Read every layer and walk every library again, and keep nothing "
    "(default: reuse and extend the scan cache in $XDG_CACHE_HOME/portscan).",
)
@options.quiet
@options.debug
def image_command(
    reference: str,
    platform_text: str,
    output_format: str | None,
    outputs: tuple[str, ...],
    html_path: Path | None,
    fail_on: str | None,
    min_score: int | None,
    gate_targets: tuple[str, ...],
    insecure: bool,
    timeout: float,
    username: str | None,
    password_stdin: bool,
    ca_certs: tuple[Path, ...],
    authfile: Path | None,
    offline: bool,
    sbom: str | None,
    wasi_libc_as_of: str | None,
    wasix_libc: str | None,
    waivers_path: Path | None,
    exclude: tuple[str, ...],
    base: str | None,
    no_cache: bool,
    quiet: bool,
    debug: bool,
) -> None:
    """Scan one image without running it.

    REFERENCE is NAME[:TAG|@DIGEST] (local daemon first, then the registry),
    registry:NAME (or docker://NAME), docker:NAME, podman:NAME,
    docker-archive:PATH[:REPO:TAG|@N] (- for stdin), oci-archive:PATH[:TAG],
    oci:PATH[:TAG], dir:PATH, or the path of an archive, layout or directory.
    """

    def body() -> None:
        from portscan.sources.refs import parse_reference

        parse_reference(reference)  # a malformed reference fails before the heavy imports
        from portscan.inspect.elf import worker
        from portscan.scan import ScanOptions, scan_image

        planned = options.plan_outputs(output_format, outputs, FORMATS, "table")
        waivers = options.load_waivers(waivers_path)
        if wasix_libc is not None:  # a flavour wasix-libc.json lacks fails before the scan
            from portscan.knowledge import tables
            from portscan.model import Target

            tables.libc().list_of(Target.WASIX, wasix_libc)
        scan_options = ScanOptions(
            source=options.source_options(
                platform_text,
                insecure,
                username,
                password_stdin,
                timeout,
                ca_certs=ca_certs,
                authfile=authfile,
                offline=offline,
            ),
            wasi_libc_as_of=wasi_libc_as_of,
            wasix_libc=wasix_libc,
            sbom=sbom,
            waivers=waivers,
            exclude=exclude,
            base=base,
        )
        with ExitStack() as stack:
            stack.enter_context(worker.started())
            scan = functools.partial(scan_image, reference, scan_options)
            if not no_cache:
                from portscan.audit.cache import ScanCache
                from portscan.errors import StoreError

                try:
                    cache = stack.enter_context(ScanCache())
                    document = any(name == "json" for name, _ in planned)
                    needed = (  # the result itself: another format, or a gate
                        any(name != "json" for name, _ in planned)
                        or html_path is not None
                        or fail_on is not None
                        or min_score is not None
                    )
                    scan = functools.partial(
                        cache.result, reference, scan_options, document=document, needed=needed
                    )
                except StoreError as exc:  # e.g. a read-only home: scan, just slower
                    click.echo(f"portscan: warning: no scan cache: {exc}", err=True)
            if not quiet and sys.stderr.isatty():
                from portscan.cli.progress import LayerProgress

                result = scan(stack.enter_context(LayerProgress()))
            else:
                result = scan()
        gate = (fail_on, min_score, gate_targets)
        write_reports(result, planned, html_path, gate)

    options.run_guarded(body, debug)


@click.command("report")
@click.argument("result_file", metavar="RESULT.json", type=click.Path(path_type=Path))
@click.option(
    "-f",
    "--format",
    "output_format",
    type=click.Choice(FORMATS),
    help="Output format (default: table, or none when only --html or -o FORMAT=FILE "
    "outputs are given).",
)
@options.outputs
@options.reports
@options.waivers
@options.debug
def report_command(
    result_file: Path,
    output_format: str | None,
    outputs: tuple[str, ...],
    html_path: Path | None,
    fail_on: str | None,
    min_score: int | None,
    gate_targets: tuple[str, ...],
    waivers_path: Path | None,
    debug: bool,
) -> None:
    """Render a saved result (`portscan image REF --format json -o RESULT.json`) again,
    in any format, and apply the CI gates to it; --waivers accepts further findings
    (the result is judged again without them)."""

    def body() -> None:
        from portscan.codec import load_result
        from portscan.waivers import rejudge

        default = None if html_path and not outputs else "table"
        planned = options.plan_outputs(output_format, outputs, FORMATS, default)
        waivers = options.load_waivers(waivers_path)
        result = rejudge(load_result(result_file), waivers)
        write_reports(result, planned, html_path, (fail_on, min_score, gate_targets))

    options.run_guarded(body, debug)


@click.command("diff")
@click.argument("old")
@click.argument("new")
@click.option(
    "-f",
    "--format",
    "output_format",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
    help="Output format.",
)
@options.output
@click.option(
    "--fail-on-worse",
    is_flag=True,
    help=f"Exit {EXIT_GATE_FAILED} when NEW is less portable than OLD on any target.",
)
@options.waivers
@options.platform
@options.insecure
@options.timeout
@options.credentials
@options.enterprise
@options.offline
@options.debug
def diff_command(
    old: str,
    new: str,
    output_format: str,
    output: Path | None,
    fail_on_worse: bool,
    waivers_path: Path | None,
    platform_text: str,
    insecure: bool,
    timeout: float,
    username: str | None,
    password_stdin: bool,
    ca_certs: tuple[Path, ...],
    authfile: Path | None,
    offline: bool,
    debug: bool,
) -> None:
    """What got more or less portable between OLD and NEW, per target.

    OLD and NEW are image references or saved JSON results (files ending in .json).
    --waivers applies to both sides: waived findings are marked and decide nothing.
    """

    def body() -> None:
        from portscan.codec import is_saved_result, load_result
        from portscan.report import diff
        from portscan.scan import ScanOptions, scan_image
        from portscan.waivers import rejudge

        waivers = options.load_waivers(waivers_path)
        source = options.source_options(
            platform_text,
            insecure,
            username,
            password_stdin,
            timeout,
            ca_certs=ca_certs,
            authfile=authfile,
            offline=offline,
        )
        scan_options = ScanOptions(source=source, waivers=waivers)
        sides = [
            rejudge(load_result(Path(arg)), waivers)
            if is_saved_result(arg)
            else scan_image(arg, scan_options)
            for arg in (old, new)
        ]
        changes = diff.diff_results(*sides)
        render = {
            "text": diff.render_text,
            "json": diff.render_json,
            "markdown": diff.render_markdown,
        }[output_format]
        options.save(render(changes), output)
        if fail_on_worse and changes.worse:
            click.echo("portscan: gate failed: NEW is less portable than OLD", err=True)
            sys.exit(EXIT_GATE_FAILED)

    options.run_guarded(body, debug)
