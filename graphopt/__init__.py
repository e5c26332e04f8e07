"""graphopt: graph optimization for deploying CNN detectors with ONNX and TensorRT.

The public API::

    import graphopt
    model, report = graphopt.optimize("model.onnx", input_shapes={"input": (1, 3, 480, 640)}, verify=True)
    report.render()

Every pass is usable on its own (``graphopt.passes.RemoveRedundantNodesPass()(model)``)
and a :class:`Pipeline` runs any sequence of passes with the same instrumentation.
"""

__version__ = "0.1.0"

from .api import optimize
from .errors import GraphoptError, ModelLoadError, PassFailedError, ShapeSpecError, UnknownPassError
from .model_io import load_model, save_model
from .options import OptimizeOptions, VerifyOptions
from .passes import Pass, PassResult
from .pipeline import Pipeline
from .report import Report

__all__ = [
    "GraphoptError",
    "ModelLoadError",
    "OptimizeOptions",
    "Pass",
    "PassFailedError",
    "PassResult",
    "Pipeline",
    "Report",
    "ShapeSpecError",
    "UnknownPassError",
    "VerifyOptions",
    "__version__",
    "load_model",
    "optimize",
    "save_model",
]
