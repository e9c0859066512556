"""The dependency graph of an image: from its entrypoint through programs, scripts and
libraries (resolved as ld.so resolves them, ldpath.py) to packages (build.py)."""
