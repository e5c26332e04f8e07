"""Exception types of graphopt.

Every error a user can cause (a bad file, a shape that contradicts the graph,
an unknown pass name) is a :class:`GraphoptError` whose message is one
sentence meant for a person. The CLI prints that sentence and exits with
code 2; anything else reaching the CLI is a bug in graphopt.
"""

from __future__ import annotations

import re

__all__ = [
    "BackendUnavailableError",
    "ConfigError",
    "GraphoptError",
    "ModelLoadError",
    "ModelSaveError",
    "PassFailedError",
    "RuntimeRunError",
    "ShapeSpecError",
    "UnknownPassError",
    "first_line",
]


def first_line(error: BaseException) -> str:
    """The first meaningful line of an exception's text, for a one-sentence message.

    ONNX's ``[ShapeInferenceError]`` tags are dropped and its
    ``(op_type:Conv, node name: c1):`` prefixes read ``Conv node 'c1':``.
    """
    text = re.sub(r"\[[A-Za-z]*Error\]\s*|Inference error\(s\):\s*", "", str(error))
    text = re.sub(r"\(op_type:(\w+), node name: ([^)]*)\):", r"\1 node '\2':", text)
    text = re.sub(r"\(op_type:(\w+)\):", r"\1 node:", text)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0].rstrip(".") if lines else type(error).__name__


class GraphoptError(Exception):
    """Base class of the errors caused by input: the message is one sentence."""


class ModelLoadError(GraphoptError):
    """A model file is missing, unreadable, corrupt or fails the ONNX checker."""


class ModelSaveError(GraphoptError):
    """An output could not be written (nothing partial is left behind)."""


class ShapeSpecError(GraphoptError):
    """A user-given input shape names no input or contradicts the graph."""


class UnknownPassError(GraphoptError):
    """A pass name is not in the registry."""


class PassFailedError(GraphoptError):
    """A pass raised, broke the model or changed its outputs beyond tolerance.

    The pipeline has already rolled the model back to its state before the
    pass when this is raised.
    """

    def __init__(self, pass_name: str, reason: str) -> None:
        super().__init__(f"pass '{pass_name}' was rolled back: {reason}")
        self.pass_name = pass_name
        self.reason = reason


class PreconditionError(GraphoptError):
    """A pass's requirement is not met (raised by ``Pass.requires``); the message is what it needs."""


class PassRequirementError(GraphoptError):
    """A pass the user named cannot run: one of its requirements is not met."""

    def __init__(self, pass_name: str, missing: str) -> None:
        super().__init__(f"pass '{pass_name}' cannot run: it needs {missing}")
        self.pass_name = pass_name
        self.missing = missing


class RuntimeRunError(GraphoptError):
    """A runtime (onnxruntime, TensorRT) cannot load or run a model."""


class BackendUnavailableError(GraphoptError):
    """A backend's runtime is not installed on this machine."""


class ConfigError(GraphoptError):
    """A detector or camera configuration file is missing, malformed or impossible."""
