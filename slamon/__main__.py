"""`python -m slamon` runs the CLI."""

from slamon.cli import main

main()
