"""The ``graphopt`` command line: thin click commands over the library."""

from .app import cli, main

__all__ = ["cli", "main"]
