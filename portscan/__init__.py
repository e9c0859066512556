"""portscan: what of a container image could move to WebAssembly (WASI), and at what cost."""

__version__ = "0.1.0"
