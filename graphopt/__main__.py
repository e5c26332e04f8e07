"""``python -m graphopt`` runs the command line."""

from .cli.app import main

main()
