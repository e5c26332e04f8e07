"""Deprecated alias of the person workload's module (it moved out of the core); removed in graphopt 0.3."""

import importlib
import sys
import warnings

warnings.warn("graphopt.detector.ground_plane is deprecated; import graphopt_person.ground_plane instead",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = importlib.import_module("graphopt_person.ground_plane")
