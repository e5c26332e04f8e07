"""The ``trtexec`` command that builds, on the target, the engine the TensorRT backend would have built here.

Where TensorRT cannot build (not installed, or no CUDA device), ``--backend
tensorrt`` still writes the optimized ONNX; beside it, :func:`trtexec_script`
writes ``<name>.trtexec.sh``, which builds the same engine with TensorRT's
own command-line tool on the machine that has TensorRT and the GPU (on a
Jetson, JetPack's ``/usr/src/tensorrt/bin/trtexec``). Each option mirrors
:func:`graphopt.backends.tensorrt.build_engine` (flags as ``trtexec --help``
of TensorRT 10.x documents them):

* ``--stronglyTyped``: the network is strongly typed, every precision the
  graph's (no ``--fp16``); TensorRT 11 is strongly typed whatever is given;
* ``--shapes=name:DxD…`` for every input: the static shapes of the graph
  (one profile, min = opt = max; trtexec checks them against the graph);
* ``--memPoolSize=workspace:N``: the workspace limit in MiB (the unit trtexec
  takes without a suffix, in 8.6 as in 10.x and 11.x);
* ``--builderOptimizationLevel=N`` and ``--profilingVerbosity=detailed``;
* ``--timingCacheFile=<name>.timing-cache``: read before and written after
  the build, so a second run reuses the first one's kernel timings;
* ``--saveEngine=<name>.engine`` beside ``<name>.onnx``.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Mapping, Sequence

import onnx

from .. import __version__
from .tensorrt_common import EngineBuildError, TensorRTOptions, static_input_shapes

__all__ = ["SCRIPT_SUFFIX", "trtexec_arguments", "trtexec_fallback", "trtexec_script"]

logger = logging.getLogger(__name__)

#: The script is written as ``<name><SCRIPT_SUFFIX>`` beside ``<name>.onnx``.
SCRIPT_SUFFIX = ".trtexec.sh"


def _shape_spec(shapes: Mapping[str, Sequence[int]]) -> str:
    # trtexec reads names with ':' or ',' only when wrapped in single quotes.
    parts = []
    for name, dims in shapes.items():
        quoted = f"'{name}'" if any(c in name for c in ":,'") else name
        parts.append(f"{quoted}:{'x'.join(str(int(d)) for d in dims)}")
    return ",".join(parts)


def trtexec_arguments(name: str, shapes: Mapping[str, Sequence[int]], options: TensorRTOptions) -> list[str]:
    """The arguments of ``trtexec`` (without the program) that build ``<name>.engine`` from ``<name>.onnx``.

    Args:
        name: base name of the files, relative to the directory the command runs in.
        shapes: every graph input's static shape.
        options: the workspace and optimization level of the build (its timing cache is a path on
            this machine; the target's is ``<name>.timing-cache`` beside the engine, reused by every run).
    """
    arguments = [f"--onnx={name}.onnx", f"--saveEngine={name}.engine", "--stronglyTyped"]
    if shapes:
        arguments.append(f"--shapes={_shape_spec(shapes)}")
    arguments += [
        f"--memPoolSize=workspace:{options.workspace_mb}",
        f"--builderOptimizationLevel={options.optimization_level}",
        "--profilingVerbosity=detailed",
        f"--timingCacheFile={name}.timing-cache",
    ]
    return arguments


def trtexec_script(name: str, shapes: Mapping[str, Sequence[int]], options: TensorRTOptions, *, reason: str) -> str:
    """A POSIX shell script that runs :func:`trtexec_arguments` in its own directory.

    ``TRTEXEC`` chooses the program; otherwise ``trtexec`` on ``PATH``, else
    JetPack's ``/usr/src/tensorrt/bin/trtexec``.

    Args:
        reason: why no engine was built where the script was written (one sentence, for its header).
    """
    command = " \\\n    ".join(shlex.quote(a) for a in trtexec_arguments(name, shapes, options))
    return "\n".join([
        "#!/bin/sh",
        f"# Builds {name}.engine from {name}.onnx with TensorRT's trtexec, as graphopt's TensorRT backend does:",
        "# strongly typed, one profile at the static input shapes, the same workspace, optimization level and",
        "# timing cache. Run it where TensorRT and the GPU are (a Jetson: JetPack's trtexec).",
        f"# Written by graphopt {__version__}, which built no engine here: {' '.join(reason.split())}",
        "set -eu",
        'cd "$(dirname "$0")"',
        'TRTEXEC="${TRTEXEC:-$(command -v trtexec || echo /usr/src/tensorrt/bin/trtexec)}"',
        f'exec "$TRTEXEC" {command}',
        "",
    ])



def trtexec_fallback(model: onnx.ModelProto, name: str, options: TensorRTOptions, *,
                     reason: str) -> tuple[str | None, str]:
    """The script that builds ``model``'s engine on the target, and the report's sentence about it.

    Returns ``None`` for the script (and says why) where an input's shape is
    not static, since the backend builds static-shape engines only.
    """
    try:
        shapes = static_input_shapes(model)
    except EngineBuildError as error:
        return None, f"no trtexec command was written: {error}"
    command = shlex.join(["trtexec", *trtexec_arguments(name, shapes, options)])
    return (trtexec_script(name, shapes, options, reason=reason),
            f"no engine was built here; {name}{SCRIPT_SUFFIX} beside the ONNX builds it where TensorRT and the GPU "
            f"are: {command}")
