"""Registry audits: discover images (discover.py), analyse each distinct layer once and
assemble each image from stored layers (tasks.py) on a local pool or Dask (executors.py),
keyed by analyser versions and signatures (keys.py) in a SQLite store (store.py), and
summarised as a fleet (fleet.py). run.py drives it."""
