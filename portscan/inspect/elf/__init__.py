"""ELF files: the analyser and its worker process (spec.py, worker.py), and what runs in
the worker: structure (layout.py, parse.py), syscall sites (syscalls.py), runtimes
(runtimes.py, gobuildinfo.py, gopclntab.py) and the program's own calls (program.py)."""
