"""ELF files kept on disk by content digest for the stages after the merge.

The layers stream by once; the reachability stage (graph/reach.py) needs the bytes of
the libraries a program loads only once the graph says which those are. The ELF
analyser writes each file it sees to a content directory under its sha256 (a scan's
temporary directory, or the audit store's), and the later stage maps it from there.
"""

from __future__ import annotations

import hashlib
import os
import threading


def store_content(content_dir: str, data: bytes | bytearray) -> tuple[str, str]:
    """Keep `data` as `content_dir/SHA256` unless it is there: through a temporary name
    and a rename, so concurrent scans sharing the directory never see half a file.
    (its path, SHA256)."""
    sha256 = hashlib.sha256(data).hexdigest()
    target = os.path.join(content_dir, sha256)
    if not os.path.exists(target):
        temporary = f"{target}.{os.getpid()}.{threading.get_ident()}.tmp"
        with open(temporary, "wb") as out:
            out.write(data)
        os.replace(temporary, target)
    return target, sha256


def content_path(content_dir: str, sha256: str | None) -> str | None:
    """Where `store_content` put the file of this digest, if it did."""
    if not sha256:
        return None
    path = os.path.join(content_dir, sha256)
    return path if os.path.isfile(path) else None
