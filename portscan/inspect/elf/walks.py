"""Walks of the call graphs of kept ELF files, by content digest, here or in a helper.

The reachability stage (graph/reach.py) asks, round after round, for batches of walks:
(digest of a file in the content directory, root name or None for its constructors).
`Walks` answers them in this process; `WalkHelper` answers its share in a second
interpreter (`serve`), so an image's walks use both cores. A file's walks always run
where its graph is open: the graph caches the functions it disassembled, and its budget
(`callgraph.GRAPH_BUDGET`) counts over every walk of the file, so which of a file's
walks complete depends on the order they come in. The caller gives each batch in a
fixed order and sends a file's walks to one place, so results do not depend on where
they ran. Facts go back as pickled `Reach` objects, or the reason a file has no graph.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import select
import subprocess
import time
from collections.abc import Iterable
from typing import BinaryIO

from portscan.codec import pack
from portscan.inspect.elf import callgraph
from portscan.inspect.elf.callgraph import CallGraph, Reach
from portscan.inspect.elf.content import locate, mapped
from portscan.inspect.elf.frames import NOT_PICKLE, garbled_frame, read_frame, write_frame
from portscan.inspect.elf.layout import MalformedElf, read_layout
from portscan.lifecycle import serving

# A file larger than this is judged whole without building its call graph: its tables
# alone (symbols, relocations) cost hundreds of MiB (libLLVM: 110 MB file, ~280 MiB).
MAX_WALKED_BYTES = 64 << 20

Walk = tuple[str, str | None]  # (content digest, root name or None: the constructors)
NOT_KEPT = "its bytes were not kept (the layer came from a store without them)"

TEST_GARBLE_WALKS = "PORTSCAN_TEST_GARBLE_WALKS"  # test hook (`serve`), docs/configuration.md
_HELPER_MAIN = serving(__name__)  # the process's command (portscan.lifecycle)


class Walks:
    """The call graphs open in this process, by digest, and the walks made in them."""

    def __init__(self, content_dir: str | None, budget: int | None = None) -> None:
        self.content_dir = content_dir
        self.budget = callgraph.GRAPH_BUDGET if budget is None else budget
        self.graphs: dict[str, CallGraph | str] = {}  # digest -> graph, or why none

    def graph(self, digest: str) -> CallGraph | str:
        """The call graph of the kept file `digest`, or why it has none."""
        found = self.graphs.get(digest)
        if found is None:
            found = self.graphs[digest] = open_graph(self.content_dir, digest)
            if not isinstance(found, str):
                found.budget = self.budget
        return found

    def walk(self, digest: str, root: str | None) -> Reach | str:
        """What `root` (None: the constructors) reaches in the file, or why its graph
        cannot say. A bound hit is a Reach that is not complete."""
        graph = self.graph(digest)
        if isinstance(graph, str):
            return graph
        if root is None:
            return graph.reach((), constructors=True)
        return graph.reach((root,), constructors=False)

    def drop_pages(self) -> None:
        """Let the open files' mapped pages go (read again from the page cache when a
        walk needs them): they count in the process's resident memory meanwhile."""
        advice = getattr(mmap, "MADV_DONTNEED", None)
        for graph in self.graphs.values():
            data = None if isinstance(graph, str) else graph.data
            if advice is not None and isinstance(data, mmap.mmap):
                data.madvise(advice)

    def release(self, digests: Iterable[str]) -> None:
        """Close these files' graphs: no later walk needs them."""
        for digest in digests:
            self.graphs.pop(digest, None)


def open_graph(content_dir: str | None, digest: str) -> CallGraph | str:
    """The call graph of the file kept under `digest`, or why there is none."""
    data = _walkable(content_dir, digest)
    if isinstance(data, str):
        return data
    graph = CallGraph.from_bytes(data)
    return graph if graph.status == "complete" else f"{graph.status}: {graph.note}"


def kept_strings(content_dir: str | None, digest: str) -> frozenset[str] | None:
    """`callgraph.rodata_strings` of the file kept under `digest`, read without its call
    graph (from its headers); None where it is not kept, is over MAX_WALKED_BYTES, or
    its headers do not read."""
    data = _walkable(content_dir, digest)
    if isinstance(data, str):
        return None
    try:
        return callgraph.rodata_strings(data, read_layout(data))
    except MalformedElf:
        return None


def _walkable(content_dir: str | None, digest: str) -> mmap.mmap | bytes | str:
    """The bytes of the file kept under `digest`, mapped, or why it is not walked."""
    for _ in range(2):  # a pack dropped since it was found: where it went now
        location = locate(content_dir, digest)
        if location is None:
            return NOT_KEPT
        size = location[2]
        if size > MAX_WALKED_BYTES:
            return f"{size >> 20} MiB, over the {MAX_WALKED_BYTES >> 20} MiB walked at most"
        with contextlib.suppress(OSError):
            return mapped(location)
    return NOT_KEPT


def start_helper() -> subprocess.Popen[bytes]:
    """A walk helper in a new interpreter (`serve`), where no ELF worker can be handed
    over (worker.handoff)."""
    return subprocess.Popen(_HELPER_MAIN, stdin=subprocess.PIPE, stdout=subprocess.PIPE)


class WalkHelper:
    """A second process making walks (`serve`): `send` a batch, do other work, then
    `receive` its answers in the batch's order. If it dies, or an answer does not
    unpickle (a garbled stream), `receive` raises EOFError and the caller makes the
    walks itself. The process is the ELF worker the scan read its layers with
    (worker.handoff), or `start_helper`'s; `budget` is the caller's GRAPH_BUDGET, which
    the helper's graphs take too."""

    def __init__(
        self, content_dir: str | None, process: subprocess.Popen[bytes], budget: int
    ) -> None:
        self.content_dir = content_dir
        self.budget = budget
        self.process = process

    def send(self, batch: list[Walk], level: int | None = None) -> None:
        """Walks to make: `receive` answers them, and says how long they took. With a
        `level`, each answer comes in its stored form too, `codec.pack(reach, level)`:
        the helper, idle for part of the stage, makes it instead of this process."""
        self._send("walk", batch, level)

    def _send(self, kind: str, items: list, level: int | None = None) -> None:
        assert self.process.stdin is not None
        message = (kind, self.content_dir, self.budget, items, level)
        with contextlib.suppress(BrokenPipeError, OSError, ValueError):  # `receive` sees it died
            write_frame(self.process.stdin, message)

    def answered(self) -> bool:
        """Whether the answers to the walks sent are there to `receive` (or it died)."""
        assert self.process.stdout is not None
        try:
            return bool(select.select([self.process.stdout], [], [], 0)[0])
        except (OSError, ValueError):
            return True  # `receive` meets why

    def receive(self) -> tuple[list[Reach | str], list[bytes | None], float]:
        """The answers to the walks sent, in order: each a Reach or why the file has no
        graph; their stored forms, each None for a reason or when `send` asked for none;
        and the seconds the walks took."""
        assert self.process.stdout is not None
        try:
            (answers, packed, seconds), _ = read_frame(self.process.stdout)
        except Exception as exc:  # gone, or an answer that does not unpickle
            raise EOFError(str(exc)) from None
        return answers, packed, seconds

    def release(self, digests: list[str]) -> None:
        """Close these files' graphs (no answer)."""
        if digests:
            self._send("release", digests)

    def close(self) -> None:
        """Stop the helper (its graphs go with it)."""
        with contextlib.suppress(BrokenPipeError, OSError, ValueError):
            assert self.process.stdin is not None
            self.process.stdin.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def serve(stdin: BinaryIO, stdout: BinaryIO) -> None:
    """The helper's loop: batches of walks in, their answers out, until stdin closes.
    Whatever fails here (a bug, memory) ends the helper quietly: the caller makes the
    walks itself, and meets the failure as a scan without a helper would. Test hook:
    with PORTSCAN_TEST_GARBLE_WALKS set, the first batch is answered by a frame that is
    not a pickle (tests/test_reach.py)."""
    walks: Walks | None = None
    garble = bool(os.environ.get(TEST_GARBLE_WALKS))
    while True:
        try:
            (kind, content_dir, budget, items, level), _ = read_frame(stdin)
        except EOFError:
            return
        if walks is None:
            walks = Walks(content_dir, budget)
        try:
            if kind == "release":
                walks.release(items)
            else:
                began = time.perf_counter()
                answers = [walks.walk(digest, root) for digest, root in items]
                if garble:
                    garble = False
                    stdout.write(garbled_frame(NOT_PICKLE))
                    stdout.flush()
                    continue
                packed = [
                    None if level is None or isinstance(a, str) else pack(a, level) for a in answers
                ]
                write_frame(stdout, (answers, packed, time.perf_counter() - began))
                walks.drop_pages()
        except Exception:  # the caller makes the walks again (see above)
            return
