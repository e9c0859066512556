"""The ELF analyser, run in a worker process so parsing overlaps layer reading.

On two cores the main process inflates, hashes and walks tar entries while a spawned
worker parses ELF files with lief and capstone (which the main process never imports).
`analyse` hands the bytes over and returns a Future; `layers.read_layer` resolves the
futures at the end of each layer, so a LayerResult always holds plain facts.
`PORTSCAN_WORKERS=0` analyses in-process instead (same code, same results).
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import sys
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from portscan.model import Binary

ELF_MAGIC = b"\x7fELF"
# Version of the facts the ELF analysis produces (elf.py + program.py): part of the
# per-layer cache key, so bump it whenever a Binary field's meaning or content changes.
ELF_FACTS_VERSION = 101

_pool: ProcessPoolExecutor | None = None


def analyse_elf_facts(path: str, data: bytes) -> Binary:
    """Everything known about one ELF file (runs in the worker, or in-process)."""
    from portscan.inspect.program import ProgramAnalyser

    return ProgramAnalyser().analyse(path, data)


def _workers() -> int:
    """1 worker by default; 0 (inline) when asked, or when a spawned child could not
    re-import the program that runs portscan (e.g. a script read from stdin)."""
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    if main_file is not None and not os.path.exists(main_file):
        return 0
    return int(os.environ.get("PORTSCAN_WORKERS", "1"))


def _get_pool() -> ProcessPoolExecutor:
    global _pool
    if _pool is None:
        context = multiprocessing.get_context("spawn")  # no fork: reader threads may run
        _pool = ProcessPoolExecutor(_workers(), mp_context=context, initializer=_warm_up)
        atexit.register(_pool.shutdown, wait=False, cancel_futures=True)
    return _pool


def _warm_up() -> None:
    """Import lief and capstone in the worker before the first file arrives."""
    import portscan.inspect.program  # noqa: F401


def _discard_pool() -> None:
    """Forget a pool whose worker died; the next file starts a fresh one."""
    global _pool
    if _pool is not None:
        _pool.shutdown(wait=False, cancel_futures=True)
    _pool = None


def start() -> None:
    """Start the worker now, so its imports overlap the image's download."""
    if _workers() > 0:
        try:
            _get_pool().submit(int)
        except BrokenProcessPool:
            _discard_pool()
            _get_pool().submit(int)


class ElfWorkerAnalyser:
    """layers.Analyser for ELF files; results are Futures when a worker runs."""

    name = "elf"
    version = ELF_FACTS_VERSION

    def wants(self, path: str, head: bytes) -> bool:
        return head.startswith(ELF_MAGIC)

    def analyse(self, path: str, data: bytes) -> Binary | Future[Any]:
        if _workers() <= 0:
            return analyse_elf_facts(path, data)
        try:
            remote = _get_pool().submit(analyse_elf_facts, path, data)
        except BrokenProcessPool:
            _discard_pool()
            return analyse_elf_facts(path, data)
        result: Future[Any] = Future()

        def settle(done: Future[Any]) -> None:
            # a worker that died (killed, out of memory) costs speed, never the facts
            try:
                result.set_result(done.result())
            except BrokenProcessPool:
                result.set_result(analyse_elf_facts(path, data))
            except BaseException as exc:
                result.set_exception(exc)

        remote.add_done_callback(settle)
        return result
