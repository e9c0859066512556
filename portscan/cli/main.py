"""The `portscan` command group: the table of commands, each defined in its own module."""

from __future__ import annotations

import click

from portscan import __version__
from portscan.cli.audit import registry_command, store_group
from portscan.cli.rules import explain_command, rules_command
from portscan.cli.scan import diff_command, image_command, report_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="portscan")
def cli() -> None:
    """portscan: what of a container image could move to WebAssembly (WASI)."""


for _command in (
    report_command,
    diff_command,
    image_command,
    rules_command,
    explain_command,
    registry_command,
    store_group,
):
    cli.add_command(_command)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="portscan")


if __name__ == "__main__":
    main()
