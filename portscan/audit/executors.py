"""Where audit tasks run: a local pool of processes, or a Dask distributed cluster.

Both take the same task functions (portscan.audit.tasks) and deliver outcomes the same way:
`submit(tag, fn, *args)` and then `next()` returns `(tag, value)` as tasks finish, in
the client process, where the value is the task's return value or the exception that
prevented one (a worker that died, a cancelled task).
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.process import BaseProcess
from typing import Any, Protocol

from portscan.errors import SchedulerError, UsageError
from portscan.lifecycle import collect_rarely

Tag = tuple[str, str]  # (kind of task, what it is about)
Outcome = tuple[Tag, Any]
PARENT_POLL_SECONDS = 0.5  # how often a local worker checks that its client lives
EXIT_GRACE = 10.0  # seconds idle workers get to exit after the audit


class Executor(Protocol):
    name: str
    slots: int  # how many tasks can run at once

    def submit(self, tag: Tag, fn: Callable[..., Any], *args: Any) -> None: ...

    def next(self) -> Outcome: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


def _value(future: Any) -> Any:
    try:
        return future.result()
    except BaseException as exc:  # handed to the client as the task's outcome
        return exc


class LocalExecutor:
    """A pool of `jobs` worker processes, spawned (fork would copy the client's threads
    and locks). A worker that dies (killed, out of memory) fails its task and the pool
    is renewed; workers exit by themselves when the client dies."""

    def __init__(self, jobs: int) -> None:
        self.jobs = max(1, jobs)
        self.name = f"local:{self.jobs}"
        self.slots = self.jobs
        self._done: queue.Queue[Outcome] = queue.Queue()
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self.jobs,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=init_worker,
        )

    def submit(self, tag: Tag, fn: Callable[..., Any], *args: Any) -> None:
        try:
            future = self._pool.submit(fn, *args)
        except BrokenProcessPool:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
            future = self._pool.submit(fn, *args)
        future.add_done_callback(lambda f: self._done.put((tag, _value(f))))

    def next(self) -> Outcome:
        return self._done.get()

    def close(self) -> None:
        """Let the workers exit; end any that has not within `EXIT_GRACE` seconds."""
        workers = self._workers()
        self._pool.shutdown(wait=False)
        _end(workers, EXIT_GRACE)
        self._settle()

    def abort(self) -> None:
        """Cancel what waits and end the workers now (their units are not stored)."""
        workers = self._workers()
        self._pool.shutdown(wait=False, cancel_futures=True)
        _end(workers, 0)
        self._settle()

    def _settle(self) -> None:
        """Wait (5 s at most) for the pool's manager thread to close its wake-up pipe:
        at exit, concurrent.futures wakes every manager thread, and one closing its pipe
        meanwhile made that write fail ("Exception ignored ... Bad file descriptor" after
        an interrupted audit, seen once under load)."""
        manager = getattr(self._pool, "_executor_manager_thread", None)
        if manager is not None:
            manager.join(timeout=5)

    def _workers(self) -> list[BaseProcess]:
        # the pool's own processes (public as terminate_workers() only from Python 3.14)
        return list((getattr(self._pool, "_processes", None) or {}).values())


def _end(workers: list[BaseProcess], grace: float) -> None:
    deadline = time.monotonic() + grace
    for worker in workers:
        worker.join(timeout=max(0.0, deadline - time.monotonic()))
    for worker in workers:
        if worker.is_alive():
            worker.terminate()
            worker.join(timeout=5)


class DaskExecutor:
    """Tasks on a Dask distributed cluster; outcomes flow back to this process."""

    def __init__(self, address: str, connect_timeout: float = 10.0) -> None:
        try:
            from distributed import Client
        except ImportError:
            raise UsageError(
                "--scheduler needs Dask", "install it with pip install 'portscan[dask]'"
            ) from None
        self.name = f"dask:{address}"
        try:
            self._client = Client(address, timeout=connect_timeout, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise SchedulerError(
                f"cannot reach the Dask scheduler at {address}: {exc}",
                "check --scheduler (tcp://HOST:PORT) and that the scheduler runs",
            ) from None
        self.slots = max(1, sum(self._client.nthreads().values()))
        self._done: queue.Queue[Outcome] = queue.Queue()
        self._futures: dict[Tag, Any] = {}  # distributed.Future by tag
        self._lock = threading.Lock()

    def submit(self, tag: Tag, fn: Callable[..., Any], *args: Any) -> None:
        future = self._client.submit(fn, *args, pure=False)
        with self._lock:
            self._futures[tag] = future
        future.add_done_callback(lambda f: self._done.put((tag, _value(f))))

    def next(self) -> Outcome:
        tag, value = self._done.get()
        with self._lock:
            self._futures.pop(tag, None)  # release the result on the cluster
        return tag, value

    def close(self) -> None:
        self._client.close()

    def abort(self) -> None:
        with self._lock:
            pending = list(self._futures.values())
            self._futures.clear()
        if pending:
            self._client.cancel(pending)
        self._client.close()


def make_executor(jobs: int, scheduler: str | None) -> Executor:
    """Dask when a scheduler address is given, else the local pool."""
    return DaskExecutor(scheduler) if scheduler else LocalExecutor(jobs)


def init_worker() -> None:
    """Local worker initialiser. Ctrl-C is the client's to handle (it ends the workers),
    and a worker whose client died (kill -9) exits instead of lingering. The pool has a
    process per core already, so ELF files are analysed in the worker itself rather
    than in a helper process of its own (`PORTSCAN_WORKERS=0`, see inspect.worker). Its
    collector runs as the command's (`lifecycle.collect_rarely`)."""
    collect_rarely()
    os.environ.setdefault("PORTSCAN_WORKERS", "0")
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="portscan-parent-watch", daemon=True).start()
