"""Length-prefixed pickle frames: how the scan talks to its helper processes (the ELF
worker, inspect/elf/worker.py, and the walk helper, inspect/elf/walks.py) over their
stdin and stdout. A frame is two little-endian 64-bit sizes, the pickled message, then
raw bytes as they are (a file is not copied by pickle)."""

from __future__ import annotations

import pickle
import struct
from typing import Any, BinaryIO

_HEADER = struct.Struct("<Q")


def write_frame(stream: BinaryIO, message: Any, raw: bytes = b"") -> None:
    """A pickled message, then `raw` bytes as they are (a file is not copied by pickle)."""
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(payload)) + _HEADER.pack(len(raw)))
    stream.write(payload)
    if raw:
        stream.write(raw)
    stream.flush()


def garbled_frame(message: bytes) -> bytes:
    """A frame whose header is right and whose `message` does not unpickle: what the
    test hooks (PORTSCAN_TEST_GARBLE_*) send for a garbled stream."""
    return _HEADER.pack(len(message)) + _HEADER.pack(0) + message


NOT_UTF8 = b"\x80\x05\x8c\x02\xff\xfe\x94."  # a pickled str that is not UTF-8
NOT_PICKLE = b"\x80\x05\x95garbled"  # pickle.UnpicklingError


def read_header(stream: BinaryIO) -> tuple[Any, int]:
    """A frame's message and the size of the raw bytes that follow it."""
    header = stream.read(2 * _HEADER.size)
    if len(header) < 2 * _HEADER.size:
        raise EOFError
    size = _HEADER.unpack_from(header)[0]
    raw_size = _HEADER.unpack_from(header, _HEADER.size)[0]
    payload = stream.read(size)
    if len(payload) < size:
        raise EOFError
    return pickle.loads(payload), raw_size


def read_frame(stream: BinaryIO) -> tuple[Any, bytes]:
    """A frame's message and its raw bytes (EOFError when the stream ends first)."""
    message, raw_size = read_header(stream)
    raw = stream.read(raw_size) if raw_size else b""
    if len(raw) < raw_size:
        raise EOFError
    return message, raw
