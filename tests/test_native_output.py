"""Capturing third-party output at the file-descriptor level (graphopt/native_output.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from graphopt.native_output import summarise


def test_native_writes_are_captured_and_python_output_still_shows():
    script = textwrap.dedent("""
        import os, sys
        from graphopt.native_output import capture_native_output
        with capture_native_output() as captured:
            os.write(2, b'WARNING: failed to run "Concat" op (name is "c"), skip...\\n')
            os.write(1, b"native stdout\\n")
            print("python stdout")
            print("python stderr", file=sys.stderr)
        print(len(captured.lines), "|".join(captured.summary()))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert "failed to run" not in proc.stderr and "native stdout\n" not in proc.stdout.split("python stdout")[0]
    assert "python stdout" in proc.stdout and "python stderr" in proc.stderr
    assert proc.stdout.strip().endswith("2 onnxsim skipped folding 1 node(s) whose inputs are not constant and "
                                        "left them in the graph (Concat ×1)|native stdout")


def test_the_library_leaves_file_descriptors_alone(rng):
    from onnx import helper

    import graphopt
    from tests.conftest import make_model, value

    before = os.fstat(2).st_ino, os.fstat(1).st_ino
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], [value("x", [1, 4])], [value("y", [1, 4])])
    graphopt.optimize(model)
    assert (os.fstat(2).st_ino, os.fstat(1).st_ino) == before


def test_summary_counts_repeats():
    lines = ['WARNING: failed to run "Reshape" op (name is "a"), skip...'] * 3 + ["other", "other", ""]
    assert summarise(lines) == [
        "onnxsim skipped folding 3 node(s) whose inputs are not constant and left them in the graph (Reshape ×3)",
        "other (×2)",
    ]
