"""The compiled part of portscan: one optional extension (portscan/inspect/elf/_x86scan.c).

Without a C compiler the build skips it and the call-graph walker sorts instructions in
Python instead: the same results, about twice the time (docs/reachability.md).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "portscan.inspect.elf._x86scan",
            ["portscan/inspect/elf/_x86scan.c"],
            optional=True,
        )
    ]
)
