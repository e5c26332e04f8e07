"""Deprecated alias of :mod:`graphopt_person.cli` (removed in graphopt 0.3)."""

import importlib
import sys
import warnings

warnings.warn("graphopt.cli.detector is deprecated; import graphopt_person.cli instead", DeprecationWarning,
              stacklevel=2)
sys.modules[__name__] = importlib.import_module("graphopt_person.cli")
