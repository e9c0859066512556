"""Errors the user can act on, each with a documented exit code.

The CLI turns a `PortscanError` into one line on stderr and exits with its
`exit_code`; anything else is a bug and is reported as such (exit 1).
The table of exit codes lives in README.md ("Exit codes").
"""

from __future__ import annotations


class PortscanError(Exception):
    """Base of every error that is the input's fault, not portscan's."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(PortscanError):
    """Bad arguments or an unparseable image reference."""

    exit_code = 2


class ImageNotFoundError(PortscanError):
    """The repository, tag, digest, archive or directory does not exist."""

    exit_code = 3


class AuthError(PortscanError):
    """The registry refused our credentials or asked for some we do not have."""

    exit_code = 4


class RegistryUnreachableError(PortscanError):
    """Network failure: connection refused, DNS, TLS, timeouts after retries."""

    exit_code = 5


class RegistryListingError(RegistryUnreachableError):
    """A catalog or tag listing the registry cannot serve: an unexpected HTTP status, an
    answer that is not the distribution spec's JSON, or pagination without end."""


class CorruptImageError(PortscanError):
    """A blob does not match its digest, or a manifest, config or layer is malformed."""

    exit_code = 6


class PlatformNotFoundError(PortscanError):
    """The image index has no manifest for the requested platform."""

    exit_code = 7


class DaemonError(PortscanError):
    """The local Docker daemon is not reachable or refused the request."""

    exit_code = 8


class StoreError(PortscanError):
    """The store file cannot be opened, or was written by an incompatible portscan."""

    exit_code = 2


class UnknownRuleError(UsageError):
    """No rule has the id asked for."""


class ResultFormatError(UsageError):
    """The file is not a portscan JSON result this version can read."""


class SchedulerError(PortscanError):
    """The Dask scheduler cannot be reached."""

    exit_code = 5


class SignaturesError(PortscanError):
    """The signatures/ data is missing or inconsistent."""

    exit_code = 11


# Exit codes that are outcomes, not errors (README.md, "Exit codes").
EXIT_INTERNAL = 1  # a bug: anything that is not a PortscanError
EXIT_PARTIAL = 9  # `registry`: the audit finished, but some images could not be scanned
EXIT_GATE_FAILED = 10  # a CI gate (--fail-on, --min-score, diff --fail-on-worse) did not pass
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM


def describe(exc: BaseException) -> str:
    """One line for a failed unit: the message of a PortscanError, else the type too."""
    if isinstance(exc, PortscanError):
        return str(exc)
    return f"internal error: {type(exc).__name__}: {exc}"
