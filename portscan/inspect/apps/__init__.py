"""The application code a language runtime runs: found from the image command (find.py),
read per language (python.py, javascript.py; go.py from the binary), matched against the
language tables in signatures/ (source.py)."""
