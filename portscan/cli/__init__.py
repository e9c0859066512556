"""The command line: parse arguments, call the pipeline, print. No analysis happens here.

`main.py` is the command table; each command group lives in its own module (`scan.py`:
image, report, diff; `audit.py`: registry, store; `rules.py`: rules, explain), with the
options they share defined once in `options.py` and progress displays in `progress.py`.
"""

from portscan.cli.main import main  # the console script of installs made before cli/ was a package

__all__ = ["main"]
