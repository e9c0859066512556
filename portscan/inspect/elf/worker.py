"""The ELF analyser, run in a worker process so parsing overlaps layer reading.

On two cores the main process inflates, hashes and walks tar entries while a worker
(`serve` in a new interpreter, started at the beginning of a scan) parses ELF
files with lief and capstone, which the main process never imports. Files go to the
worker and facts come back as length-prefixed pickle frames over its stdin and stdout;
`analyse` returns a Future that `layers.read_layer` resolves at the end of the layer, so
a LayerResult always holds plain facts. A plain subprocess rather than multiprocessing:
it never re-imports the caller's main module. If the worker dies, the files in flight
are analysed in-process (slower, same facts) and the next scan starts a new worker.
`PORTSCAN_WORKERS=0` analyses in-process throughout. Once a scan's files are analysed,
`handoff` turns the worker into the reachability stage's walk helper (walks.py) rather
than stopping it: its interpreter and imports are ready, and the second core is idle.

With a `content_dir`, each ELF file is also kept there once by its sha256
(`Binary.sha256`, content.py: in a pack of this process), where the reachability
stage (graph/reach.py) maps the libraries it walks after the merge: bytes on disk, not
in memory. The layer reader keeps it there itself (hashing and writing let go of the
GIL, and it waits for the worker anyway) and hands the worker where it is: the worker,
the critical path of reading an image, neither reads it from a pipe nor writes it
(nginx: 1.2 -> 0.9 s). Without one, the bytes go through the pipe and the worker spools
them to a scratch file. Either way the worker reads the file from disk (`serve`), so
its heap never holds the whole of a large file but in lief's copy.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import fnmatch
import hashlib
import mmap
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, BinaryIO

from portscan.inspect.elf import spec
from portscan.inspect.elf.content import Location, mapped, store_content, whole_file
from portscan.inspect.elf.frames import (
    NOT_UTF8,
    garbled_frame,
    read_frame,
    read_header,
    write_frame,
)
from portscan.inspect.elf.layout import Bytes, header_only
from portscan.layers import AnalysisFailed, failure_reason
from portscan.lifecycle import serving
from portscan.model import Binary

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: the pipe keeps the system's size
    fcntl = None  # type: ignore[assignment]

MAX_IN_FLIGHT = 16 << 20  # bytes of ELF files handed over and not yet answered
# the worker's answers wait in its stdout's pipe for this process's reader, a thread
# that needs the GIL: at the default 64 KiB, the worker stood blocked in writes for
# 0.11 s of nginx's 0.7 s of analysis; at 1 MiB (Linux's cap for a user), 0.07 s
_PIPE_SIZE = 1 << 20
_SPOOL_CHUNK = 1 << 20  # the worker copies a file from its stdin to disk in pieces this big
_TRIM_AFTER = 16 << 20  # after a file this large, the worker returns free heap to the system
_WORKER_MAIN = serving(__name__)  # the process's command (portscan.lifecycle)


_HANDOFF = -1  # the task id that turns the worker into a walk helper (`handoff`)

TEST_FAIL = "PORTSCAN_TEST_FAIL_ANALYSIS"  # test hook: a glob of image paths whose analysis
TEST_CRASH = "PORTSCAN_TEST_CRASH_ANALYSIS"  # raises / crashes the worker (docs/security.md)
TEST_GARBLE = "PORTSCAN_TEST_GARBLE_ANALYSIS"  # / has the worker send an unreadable answer
# what a crash in lief or capstone ends the worker with (SIGKILL is the OOM killer, or a user)
_CRASH_SIGNALS = frozenset(
    {signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGABRT}
)
_in_worker = False  # set by `serve`: the crash hook only ever kills the worker


def _test_hooks(path: str) -> None:
    """Test hooks, read only here and named PORTSCAN_TEST_*: fail (or, in the worker,
    crash) the analysis of the image paths matching a glob, as a bug in portscan or a
    lief crash on crafted bytes would, or have the worker put a frame on its stdout that
    does not unpickle, as a garbled stream would (tests/test_hostile.py)."""
    failing, crashing = os.environ.get(TEST_FAIL), os.environ.get(TEST_CRASH)
    if failing and fnmatch.fnmatchcase(path, failing):
        raise RuntimeError(f"{TEST_FAIL} matches {path}")
    if crashing and _in_worker and fnmatch.fnmatchcase(path, crashing):
        os.kill(os.getpid(), signal.SIGSEGV)
    garbling = os.environ.get(TEST_GARBLE)
    if garbling and _in_worker and fnmatch.fnmatchcase(path, garbling):
        os.write(1, garbled_frame(NOT_UTF8))  # stdout: the frames, flushed after each


def _elf_facts(path: str, data: Bytes, file: str) -> Binary:
    """`analyse_elf_facts`, where an unexpected exception (a bug, a library failing on
    crafted bytes past parse.py's own guard) is this file's failure: `AnalysisFailed`
    carrying what its header says, as for a malformed file. MemoryError passes."""
    from portscan.inspect.elf.program import analyse_elf_facts

    try:
        _test_hooks(path)
        return analyse_elf_facts(path, data, file)
    except MemoryError:
        raise
    except Exception as exc:
        raise _failed(exc, bytes(data[:20])) from None


def _failed(exc: Exception, head: bytes) -> AnalysisFailed:
    """`exc` as a file's `AnalysisFailed` (`_failure`)."""
    return exc if isinstance(exc, AnalysisFailed) else _failure(failure_reason(exc), head)


def _failure(reason: str, head: bytes) -> AnalysisFailed:
    """A file's failed analysis: its fact is what the header says, with `error` set."""
    return AnalysisFailed(reason, header_only(head, f"analysis failed ({reason})"))


def _analyse_here(path: str, data: bytes | bytearray, content_dir: str | None = None) -> Binary:
    """The ELF analysis in this process (lief and capstone are imported on first use),
    and the file's copy in `content_dir`, else in a temporary file lief reads it from."""
    if content_dir is not None:
        kept, sha256 = store_content(content_dir, data)
        binary = _elf_facts(path, data, whole_file(kept))
    else:
        sha256 = hashlib.sha256(data).hexdigest()
        with tempfile.NamedTemporaryFile(prefix="portscan-elf-") as file:
            file.write(data)
            file.flush()
            binary = _elf_facts(path, data, file.name)
    binary.sha256 = sha256
    return binary


def _analyse_file(path: str, location: Location, sha256: str) -> Binary:
    """The ELF analysis of a file kept on disk (content.py): the byte scans go over a
    read-only map of it, so no copy of it lives in this process's heap, and lief reads
    a file of its own from there (one kept in a pack, from the map)."""
    data = mapped(location)
    try:
        binary = _elf_facts(path, data, whole_file(location))
    finally:
        if isinstance(data, mmap.mmap):
            data.close()
    binary.sha256 = sha256
    return binary


def _spool(chunks: Iterable[bytes], directory: str) -> tuple[str, str]:
    """Write `chunks` to a new file in `directory`; (its path, the sha256 of the bytes)."""
    digest = hashlib.sha256()
    descriptor, file = tempfile.mkstemp(dir=directory, suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as out:
            for chunk in chunks:
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        os.unlink(file)
        raise
    return file, digest.hexdigest()


def _pieces(stream: BinaryIO, size: int) -> Iterator[bytes]:
    """`size` bytes of `stream`, a MiB at a time (EOFError when it ends before)."""
    while size:
        chunk = stream.read(min(size, _SPOOL_CHUNK))
        if not chunk:
            raise EOFError
        size -= len(chunk)
        yield chunk


@dataclass
class _Task:
    """A file handed to the worker: its bytes, or (a large one) the file it was
    spooled to by the layer reader (`ElfAnalyser.analyse_stream`)."""

    future: Future[Any]
    path: str
    content_dir: str | None
    data: bytes | bytearray = b""
    file: Location | None = None  # on disk already (kept, or spooled), with this sha256
    sha256: str = ""

    def head(self) -> bytes:
        """The file's first bytes, for what its header says."""
        return bytes(self.data[:20]) if self.file is None else _head(self.file)

    def discard(self) -> None:
        """Remove the spooled file, if it is not in the content directory."""
        if self.file is not None and self.content_dir is None:
            with contextlib.suppress(OSError):
                os.unlink(self.file[0])

    def analyse_here(self) -> Binary:
        """The same facts, in this process (the worker is gone or disabled)."""
        if self.file is None:
            return _analyse_here(self.path, self.data, self.content_dir)
        try:
            return _analyse_file(self.path, self.file, self.sha256)
        finally:
            if self.content_dir is None:
                os.unlink(self.file[0])


class _Worker:
    """One worker process, a writer thread feeding it and a reader thread settling."""

    def __init__(self) -> None:
        # where the worker spools a file handed over in the pipe: this process's, so
        # that it goes when the worker crashes too (`_forget_scratch`)
        self.scratch = tempfile.mkdtemp(prefix="portscan-elf-")
        self.process = subprocess.Popen(
            [*_WORKER_MAIN, self.scratch],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.process.stdout is not None
        resize = getattr(fcntl, "F_SETPIPE_SZ", None)  # Linux's
        if resize is not None:
            with contextlib.suppress(OSError):  # 64 KiB -> 1 MiB
                fcntl.fcntl(self.process.stdout.fileno(), resize, _PIPE_SIZE)
        self._pending: dict[int, _Task] = {}
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)  # caps the bytes in flight
        self._in_flight = 0
        self._next_id = 0
        self._outbox: queue.SimpleQueue[tuple[int, _Task] | None]
        self._outbox = queue.SimpleQueue()
        self.alive = True
        self._writer = threading.Thread(
            target=self._write_loop, name="portscan-elf-send", daemon=True
        )
        self._writer.start()
        self._reader = threading.Thread(
            target=self._read_loop, name="portscan-elf-recv", daemon=True
        )
        self._reader.start()

    def submit(
        self,
        path: str,
        data: bytes | bytearray,
        content_dir: str | None,
        file: Location | None = None,
        sha256: str = "",
    ) -> Future[Any]:
        """Hand a file over: its bytes, or (`file`, `sha256`) where it is on disk."""
        task = _Task(Future(), path, content_dir, data, file, sha256)
        size = len(data)
        with self._room:
            while self.alive and self._in_flight and self._in_flight + size > MAX_IN_FLIGHT:
                self._room.wait()  # the worker is behind: let it catch up
            if not self.alive:
                task.future.set_result(task.analyse_here())
                return task.future
            task_id = self._next_id
            self._next_id += 1
            self._pending[task_id] = task
            self._in_flight += size
        self._outbox.put((task_id, task))
        return task.future

    def _write_loop(self) -> None:
        stdin = self.process.stdin
        assert stdin is not None
        try:
            while (item := self._outbox.get()) is not None:
                task_id, task = item
                if task_id == _HANDOFF:  # the last frame: stdin stays open for the walks
                    write_frame(stdin, (_HANDOFF, "", None, None, ""))
                    return
                header = (task_id, task.path, task.content_dir, task.file, task.sha256)
                write_frame(stdin, header, task.data)
            stdin.close()
        except (BrokenPipeError, OSError, ValueError):
            pass  # the reader sees the worker gone and settles what is pending

    def _read_loop(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        try:
            while True:
                (task_id, ok, value), _ = read_frame(stdout)
                if task_id == _HANDOFF:  # what comes next is walks' (`handoff`)
                    return
                with self._room:
                    task = self._pending.pop(task_id)
                    self._in_flight -= len(task.data)
                    self._room.notify_all()
                if ok:
                    task.future.set_result(value)
                else:
                    task.future.set_exception(value)
        except (EOFError, OSError):
            self._settle_in_process()
        except Exception:  # an answer that does not unpickle: nothing after it is trusted
            with contextlib.suppress(OSError):
                self.process.kill()
            self._settle_in_process()

    def _settle_in_process(self) -> None:
        """The worker is gone: analyse what it had not answered here instead, except
        the file it crashed on (the first unanswered, when a signal such as SIGSEGV
        ended it), which would crash this process too: that one's analysis failed."""
        with self._room:
            self.alive = False
            pending, self._pending = self._pending, {}
            self._in_flight = 0
            self._room.notify_all()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)  # its stdout is closed: it has exited, or is exiting
        self._forget_scratch()
        code = self.process.returncode
        if pending and code is not None and -code in _CRASH_SIGNALS:
            task = pending.pop(min(pending))
            reason = f"the ELF worker died of {signal.Signals(-code).name} analysing it"
            task.future.set_exception(_failure(reason, task.head()))
            task.discard()
        for task in pending.values():
            try:
                task.future.set_result(task.analyse_here())
            except BaseException as exc:  # handed to whoever waits for the facts
                task.future.set_exception(exc)

    def handoff(self) -> subprocess.Popen[bytes] | None:
        """Turn the worker, its files all answered, into a walk helper
        (inspect/elf/walks.py): its process, or None if it is gone."""
        self._outbox.put((_HANDOFF, None))  # type: ignore[arg-type]
        self._reader.join()  # it ends at the worker's answer, or settles if it died
        self._forget_scratch()  # its files are all answered: nothing is spooled any more
        return self.process if self.alive else None

    def stop(self) -> None:
        """Let the worker finish its files and end. One never given a file is killed (it
        has only imported) and its threads waited for, which end at once: a command that
        needed no scan then exits without the interpreter's teardown (lifecycle.leave).
        Other threads are not waited for (after an error, the reader may be analysing
        what the worker left)."""
        unused = self._next_id == 0
        if unused:
            with contextlib.suppress(OSError):
                self.process.kill()
        self._outbox.put(None)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
        if unused:
            self._writer.join(timeout=5)
            self._reader.join(timeout=5)
        self._forget_scratch()

    def _forget_scratch(self) -> None:
        """Remove the scratch directory, with a file a crashed worker was analysing."""
        shutil.rmtree(self.scratch, ignore_errors=True)


_worker: _Worker | None = None


def _enabled() -> bool:
    return os.environ.get("PORTSCAN_WORKERS", "1") != "0"


def _get_worker() -> _Worker:
    global _worker
    if _worker is None or not _worker.alive:
        _worker = _Worker()
        atexit.register(_worker.stop)
    return _worker


def start() -> None:
    """Start the worker now, so its imports overlap the image's download."""
    if _enabled():
        _get_worker()


@contextlib.contextmanager
def started() -> Iterator[None]:
    """The worker started at once, for a scan to come, and stopped at the end if the
    scan has not handed it off: its interpreter and imports (some 0.17 s, on the other
    core) run while the command opens the scan cache, reads the manifest and looks for
    a stored result, rather than while the first layer is read. A stored result or an
    error stops it given nothing: killed then, so neither waits for its imports."""
    start()
    try:
        yield
    finally:
        stop()


def handoff() -> subprocess.Popen[bytes] | None:
    """The worker's process, now making call-graph walks (`walks.serve`) for the
    reachability stage, so it need not start a helper (a new interpreter and its
    imports); None when no worker runs. Its files are all analysed by then."""
    global _worker
    worker, _worker = _worker, None
    return worker.handoff() if worker is not None and worker.alive else None


def stop() -> None:
    """Stop the worker once a scan's ELF files are all analysed, so its memory goes back
    before the stages after; the next file starts a new one. Anything still pending is
    analysed in this process (`_settle_in_process`)."""
    global _worker
    if _worker is not None:
        _worker.stop()
        _worker = None


class ElfAnalyser:
    """The layers.Analyser of ELF files (inspect/elf/spec.py); its results are Futures
    when a worker runs. With `content_dir`, every file is also kept there by digest."""

    name = spec.NAME
    version = spec.ELF_FACTS_VERSION

    def __init__(self, content_dir: str | None = None) -> None:
        self.content_dir = content_dir

    def wants(self, path: str, head: bytes) -> bool:
        return spec.wants(path, head)

    def analyse(self, path: str, data: bytes | bytearray) -> Binary | Future[Any]:
        if not _enabled():
            return _analyse_here(path, data, self.content_dir)
        if self.content_dir is not None:  # kept anyway: the worker reads it from there
            # (hashing and writing let go of the GIL: the tar walk goes on meanwhile)
            kept, sha256 = store_content(self.content_dir, data)
            return _get_worker().submit(path, b"", self.content_dir, kept, sha256)
        return _get_worker().submit(path, data, self.content_dir)

    def analyse_stream(self, path: str, chunks: Iterable[bytes]) -> Binary | Future[Any]:
        """The same for a large file, given as it streams by: it goes to disk (the
        content directory, else a temporary file the analysis removes) a piece at a
        time and is analysed from there, so this process never holds it whole."""
        directory = self.content_dir or tempfile.gettempdir()
        file, sha256 = _spool(chunks, directory)
        if self.content_dir is not None:
            file = _place(file, os.path.join(self.content_dir, sha256))
        kept = (file, 0, os.path.getsize(file))
        if not _enabled():
            return _Task(Future(), path, self.content_dir, file=kept, sha256=sha256).analyse_here()
        return _get_worker().submit(path, b"", self.content_dir, kept, sha256)


def serve(stdin: BinaryIO, stdout: BinaryIO, scratch: str) -> None:
    """The worker's loop: a file in, its facts out, until stdin closes. Each file goes
    from the pipe to disk (the content directory, else `scratch`, a directory the parent
    made and removes) in 1 MiB pieces, or is on disk already (kept by the layer reader,
    or a large file it spooled), and is analysed from there: the worker's heap never
    holds a file's bytes, but where lief reads one (its own copy; for a file kept in a
    pack, under 16 MiB as a rule, also the copy lief is handed). A file outside the
    content directory is removed once analysed."""
    import portscan.inspect.elf.program  # noqa: F401  (lief and capstone, imported once)

    global _in_worker
    _in_worker = True

    while True:
        try:
            (task_id, path, content_dir, file, sha256), size = read_header(stdin)
            if task_id == _HANDOFF:
                write_frame(stdout, (_HANDOFF, True, None))
                release_free_memory()
                from portscan.inspect.elf.walks import serve as serve_walks

                serve_walks(stdin, stdout)
                return
            spooled = file is None  # else the layer reader kept or spooled it
            if spooled:
                spool, sha256 = _spool(_pieces(stdin, size), content_dir or scratch)
                file = (spool, 0, size)
        except EOFError:
            return
        try:
            if spooled and content_dir is not None:
                file = (_place(file[0], os.path.join(content_dir, sha256)), 0, file[2])
            size = file[2]
            message = (task_id, True, _analyse_file(path, file, sha256))
        except MemoryError as exc:  # ends the scan, as it would in-process
            message = (task_id, False, MemoryError(f"{path}: {exc}"))
        except Exception as exc:  # this file's failure (layers.AnalysisFailed), not the scan's
            message = (task_id, False, _failed(exc, _head(file)))
        finally:
            if content_dir is None:
                with contextlib.suppress(OSError):
                    os.unlink(file[0])
        write_frame(stdout, message)
        if size >= _TRIM_AFTER:
            release_free_memory()


def _head(file: Location) -> bytes:
    """The first bytes of the file (none if it cannot be read)."""
    with contextlib.suppress(OSError), open(file[0], "rb") as handle:
        handle.seek(file[1])
        return handle.read(min(20, file[2]))
    return b""


def release_free_memory() -> None:
    """Hand the heap's free pages back to the system (glibc's malloc_trim): after a large
    file, freed buffers and objects would otherwise stay in the process's RSS (the
    worker idling through the rest of the scan, the scan after its layers)."""
    with contextlib.suppress(AttributeError, OSError):  # not glibc: musl has none
        ctypes.CDLL(None).malloc_trim(0)


def _place(temporary: str, target: str) -> str:
    """Move a spooled file to its name by digest (a loose file, content.py), unless a
    file of that name is there: the same bytes, from another layer or scan."""
    if os.path.exists(target):
        os.unlink(temporary)
    else:
        os.replace(temporary, target)
    return target
