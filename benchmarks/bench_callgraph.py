"""What the on-demand call graph (portscan/inspect/elf/callgraph.py) costs on real
libraries of this machine: seconds to read each file's tables, then to walk from a few
exports (with and without constructors), and the functions and instructions walked.

    PYTHONPATH=. python3 benchmarks/bench_callgraph.py [library:export,export ...]
"""

from __future__ import annotations

import glob
import sys
import time
from pathlib import Path

from portscan.inspect.elf.callgraph import CallGraph

LIB = "/usr/lib/x86_64-linux-gnu"
DEFAULT = [
    f"{LIB}/libz.so.1:compress,inflate,gzopen",
    f"{LIB}/libsystemd.so.0:sd_notify,sd_journal_send,sd_bus_open_system",
    f"{LIB}/libssl.so.3:SSL_CTX_new,SSL_connect",
    f"{LIB}/libcrypto.so.3:SHA256,EVP_EncryptInit_ex",
    *(
        f"{path}:LLVMContextCreate,LLVMModuleCreateWithName"
        for path in sorted(glob.glob("/usr/lib/llvm-*/lib/libLLVM-*.so.1"))[:1]
    ),
]


def main(specs: list[str]) -> None:
    for spec in specs:
        path, _, exports = spec.partition(":")
        if not Path(path).exists():
            print(f"{path}: not present")
            continue
        data = Path(path).read_bytes()
        began = time.perf_counter()
        graph = CallGraph.from_bytes(data)
        built = time.perf_counter() - began
        print(
            f"{path} ({len(data) / 1e6:.1f} MB): tables {built:.3f}s, "
            f"{len(graph.starts)} function starts, {len(graph.address_taken)} address-taken"
        )
        for constructors in (False, True):
            for export in exports.split(","):
                began = time.perf_counter()
                reach = graph.reach([export], constructors=constructors)
                took = time.perf_counter() - began
                print(
                    f"  {export:22} ctors={'yes' if constructors else 'no ':3} {took:7.3f}s "
                    f"{reach.status:17} {reach.functions_walked:6} functions "
                    f"{reach.instructions_walked:8} instructions {len(reach.imports):4} imports"
                    f"{'  (address-taken set)' if reach.address_taken else ''}"
                    f"{'  (not exported)' if reach.missing_roots else ''}"
                )


if __name__ == "__main__":
    main(sys.argv[1:] or DEFAULT)
