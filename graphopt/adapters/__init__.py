"""Adapters that run graphopt's passes inside other pass infrastructures, and theirs inside graphopt's.

:mod:`graphopt.adapters.onnx_ir`: onnx-ir's pass manager (what PyTorch's
ONNX exporter and onnxscript use), with the ``ir`` extra.
"""
