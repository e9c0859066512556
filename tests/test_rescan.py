"""Usage errors answer before the ELF worker starts; warm rescans reuse the scan cache."""

from __future__ import annotations

import pytest

from portscan.errors import PortscanError
from portscan.inspect.elf import worker
from portscan.scan import scan_image


def _no_worker() -> None:
    raise AssertionError("the ELF worker started for a reference that cannot be scanned")


@pytest.mark.parametrize("reference", ["::bad", "oci:/nonexistent/layout"])
def test_a_bad_reference_fails_before_the_worker_starts(
    reference: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker, "start", _no_worker)
    with pytest.raises(PortscanError):
        scan_image(reference)


def test_the_cli_rejects_a_malformed_reference_without_starting_the_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from click.testing import CliRunner

    from portscan.cli.main import cli

    monkeypatch.setattr(worker, "start", _no_worker)
    result = CliRunner().invoke(cli, ["image", "::bad"])
    assert result.exit_code == 2, result.output
    assert "invalid repository name" in result.output
