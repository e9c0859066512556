"""`python -m portscan.cli`."""

from portscan.cli.main import main

main()
