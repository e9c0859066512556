"""What the commands share: options defined once, the one-line error guard, output files.

Every failure a command body raises becomes one line on stderr and a documented exit
code (README.md, "Exit codes"); only `--debug` shows a traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

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


def save(text: str | Iterable[str] | Iterable[bytes], path: Path | None) -> None:
    """Write UTF-8 text (or its pieces in order, text or UTF-8 bytes, such as a stored
    document's) to `path`, or to stdout when None."""
    pieces = [text] if isinstance(text, str) else text
    if path is None:
        stdout = getattr(sys.stdout, "buffer", None)
        if stdout is None:  # a text-only stream (tests)
            for piece in pieces:
                sys.stdout.write(piece.decode() if isinstance(piece, bytes) else piece)
            sys.stdout.flush()
            return
        sys.stdout.flush()  # what was written as text goes first
        _write(stdout, pieces)
        stdout.flush()
        return
    try:
        with path.open("wb") as out:
            _write(out, pieces)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None


def _write(out: BinaryIO, pieces: Iterable[str] | Iterable[bytes]) -> None:
    for piece in pieces:
        out.write(piece if isinstance(piece, bytes) else piece.encode())


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
    ca_certs: Sequence[Path] = (),
    authfile: Path | None = None,
    offline: bool = False,
) -> Any:
    """The `SourceOptions` of a command: platform, transport, credentials (the password
    from stdin with --password-stdin, else $PORTSCAN_PASSWORD), registry timeout, extra
    CAs, the auth file, --offline."""
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
        ca_certs=tuple(ca_certs),
        authfile=authfile,
        offline=offline,
    )


def load_waivers(path: Path | None) -> tuple[Any, ...]:
    """The waivers of `--waivers PATH` (portscan.waivers, loaded only then: a rescan the
    scan cache answers judges nothing), none without it."""
    if path is None:
        return ()
    from portscan.waivers import load_waivers as load

    return load(path)


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
enterprise = apply(  # private CAs and podman/skopeo auth files (sources.tls, sources.auth)
    click.option(
        "--ca-cert",
        "ca_certs",
        multiple=True,
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        metavar="FILE",
        help="Also trust the CA certificates in this PEM file (repeatable); the OS trust "
        "store, certifi and /etc/docker/certs.d/HOST/ are always trusted.",
    ),
    click.option(
        "--authfile",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        metavar="FILE",
        help="Read registry credentials from this podman/skopeo auth.json only "
        "(default: $REGISTRY_AUTH_FILE, containers/auth.json, then ~/.docker/config.json).",
    ),
)
offline = click.option(
    "--offline",
    is_flag=True,
    help="Never use the network: a reference only a registry serves is refused (exit 2); "
    "local archives, layouts, directories and engines still work.",
)
output = click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here."
)
outputs = click.option(
    "-o",
    "--output",
    "outputs",
    multiple=True,
    metavar="[FORMAT=]FILE|FORMAT",
    help="Where output goes (repeatable, as syft's -o): FORMAT=FILE writes that format "
    "there, FORMAT prints it, a plain FILE takes the --format output.",
)


def plan_outputs(
    output_format: str | None, outputs: Sequence[str], formats: Sequence[str], default: str | None
) -> list[tuple[str, Path | None]]:
    """The (format, file or None for stdout) pairs of `--format` and `-o` values: a
    plain `-o FILE` takes `--format` (or `default`); `FORMAT=FILE` and `FORMAT` are
    outputs of their own, and with any of them no default format is printed."""
    planned: list[tuple[str, Path | None]] = []
    plain: list[Path] = []
    for value in outputs:
        name, sep, file = value.partition("=")
        if sep and name in formats:
            if not file:
                raise UsageError(f"-o {value}: no file after '='", f"-o {name}=FILE")
            planned.append((name, Path(file)))
        elif sep and name.isalpha() and name.islower():
            raise UsageError(
                f"-o {value}: unknown format {name!r}", f"choose from {', '.join(formats)}"
            )
        elif value in formats:
            planned.append((value, None))
        else:
            plain.append(Path(value))
    if len(plain) > 1:
        raise UsageError(
            f"more than one plain -o FILE ({', '.join(map(str, plain))})",
            "write further formats with -o FORMAT=FILE",
        )
    chosen = output_format or (default if plain or not planned else None)
    if chosen is not None:
        planned.insert(0, (chosen, plain[0] if plain else None))
    elif plain:
        raise UsageError(f"-o {plain[0]}: no --format to write there", "add --format FORMAT")
    if sum(1 for _, file in planned if file is None) > 1:
        raise UsageError(
            "more than one format on standard output", "write the others with -o FORMAT=FILE"
        )
    return planned


def check_date(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A click callback: `value` must be an ISO date (YYYY-MM-DD)."""
    import datetime as dt

    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO date (YYYY-MM-DD)") from None


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


def log_to_stderr() -> None:
    """`-v`: portscan's log messages (auth source, daemon probe, fallbacks, per-stage
    timing) go to stderr, one line each."""
    import logging

    logger = logging.getLogger("portscan")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("portscan: %(name)s: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)


waivers = click.option(  # accepted findings (portscan.waivers); image, registry, report, diff
    "--waivers",
    "waivers_path",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Accepted findings (TOML or JSON: rule, reason, path glob, target, expires); "
    "waived findings are shown with their reason and count for no verdict or gate.",
)
base = click.option(
    "--base",
    metavar="IMAGE",
    help="Judge what the image adds on top of IMAGE (any reference): the components "
    "of the layers it shares with IMAGE are summarised apart and gate nothing.",
)
judging = apply(  # what of the image is judged: waivers, exclusions, base (portscan.waivers)
    waivers,
    click.option(
        "--exclude",
        multiple=True,
        metavar="GLOB",
        help="Do not judge image paths matching GLOB (repeatable); the result says which.",
    ),
    base,
)
