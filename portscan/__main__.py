"""`python -m portscan`."""

from portscan.cli.main import main

main()
