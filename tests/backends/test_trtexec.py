"""The trtexec command written where no engine can be built: the same options as the backend's build."""

from __future__ import annotations

import shlex

from graphopt.backends.tensorrt import TensorRTOptions
from graphopt.backends.trtexec import trtexec_arguments, trtexec_fallback, trtexec_script

from ..conftest import make_model, value


def test_every_input_and_option_reaches_the_command() -> None:
    arguments = trtexec_arguments("det", {"frame": (480, 640, 3), "input:0": (1, 3, 8, 8)},
                                  TensorRTOptions(workspace_mb=2048, optimization_level=5))
    assert arguments == [
        "--onnx=det.onnx", "--saveEngine=det.engine", "--stronglyTyped", "--shapes=frame:480x640x3,'input:0':1x3x8x8",
        "--memPoolSize=workspace:2048", "--builderOptimizationLevel=5", "--profilingVerbosity=detailed",
        "--timingCacheFile=det.timing-cache",
    ]
    script = trtexec_script("det", {"input:0": (1, 3, 8, 8)}, TensorRTOptions(), reason="no TensorRT\nhere")
    assert "# Written by graphopt 0.1.0, which built no engine here: no TensorRT here\n" in script
    command = script.split('exec "$TRTEXEC" ', 1)[1].replace("\\\n", " ")
    assert shlex.split(command)[3] == "--shapes='input:0':1x3x8x8"  # what trtexec receives from the shell


def test_no_command_for_a_dynamic_input() -> None:
    model = make_model([], [value("x", ("N", 3))], [value("x", ("N", 3))], check=False)
    script, note = trtexec_fallback(model, "m", TensorRTOptions(), reason="no TensorRT")
    assert script is None
    assert note.startswith("no trtexec command was written: the graph input 'x' has shape Nx3; the TensorRT backend "
                           "builds static-shape engines")
