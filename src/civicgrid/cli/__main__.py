"""`python -m civicgrid.cli` is the `civicgrid` command."""

from civicgrid.cli.main import main

main()
