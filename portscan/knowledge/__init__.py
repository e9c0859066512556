"""What portscan knows, read from the top-level signatures/ data: typed tables (tables.py),
the PS rule catalogue (rules.py), and what is the platform rather than the program
(platform.py). Data in, nothing printed; a new fact about WASI is a data change."""

import os
from pathlib import Path

SIGNATURES_ENV = "PORTSCAN_SIGNATURES"
_PACKAGED_DIR = Path(__file__).resolve().parents[1] / "_signatures"  # inside an installed wheel
_SOURCE_DIR = Path(__file__).resolve().parents[2] / "signatures"  # a source checkout
DEFAULT_DIR = _PACKAGED_DIR if _PACKAGED_DIR.is_dir() else _SOURCE_DIR


def signatures_dir() -> Path:
    """The directory the data is read from (here, not in tables.py: the scan cache's
    keys digest the data without loading the tables)."""
    return Path(os.environ.get(SIGNATURES_ENV) or DEFAULT_DIR)
