"""The compiled parts of portscan: five optional extensions.

- portscan/inspect/elf/_x86scan.c: without it the call-graph walker sorts instructions
  in Python instead: the same results, about twice the time (docs/reachability.md);
- portscan/_tarscan.c: without it every tar header is read by Python's tarfile: the
  same results, some 17 us more a header (layers.py);
- portscan/lint/_grouping.c: without it judging groups a symbol set's names in Python:
  the same findings, about 8% more of judging's instructions (lint/symbols.py);
- portscan/graph/_binding.c: without it reachability binds what each walk imports in
  Python: the same reach, binding nginx's imports in 0.27 s instead of 0.18
  (graph/reach.py);
- portscan/inspect/elf/_elftables.c: without it the direct ELF reader walks .dynsym,
  and a call graph its symbol tables and relocations, in Python: the same facts, the
  ELF analysis of nginx's 734 files some 10% longer (0.50 -> 0.56 s;
  inspect/elf/direct.py), the call graph of postgres's libLLVM (104 MiB) read in
  0.42 s instead of 0.20 (callgraph.py), and the syscall scanner's search for calls to
  syscall wrappers in its code 0.13-0.23 s instead of 0.06 (syscalls.py).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "portscan.inspect.elf._x86scan",
            ["portscan/inspect/elf/_x86scan.c"],
            optional=True,
        ),
        Extension("portscan._tarscan", ["portscan/_tarscan.c"], optional=True),
        Extension("portscan.lint._grouping", ["portscan/lint/_grouping.c"], optional=True),
        Extension("portscan.graph._binding", ["portscan/graph/_binding.c"], optional=True),
        Extension(
            "portscan.inspect.elf._elftables", ["portscan/inspect/elf/_elftables.c"], optional=True
        ),
    ]
)
