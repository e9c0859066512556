"""What portscan knows, read from the top-level signatures/ data: typed tables (tables.py),
the PS rule catalogue (rules.py), and what is the platform rather than the program
(platform.py). Data in, nothing printed; a new fact about WASI is a data change."""
