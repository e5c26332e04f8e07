"""Writes the ONNX support matrix of TensorRT's parser per TensorRT version, from onnx-tensorrt's ``docs/operators.md``.

``graphopt/backends/tensorrt_support.py`` checks a graph against the matrix of
the TensorRT version it targets; the matrices are data
(``graphopt/backends/onnx_matrix/<version>.json``) written by this script from
the documents onnx-tensorrt publishes at each release, never typed by hand:

* ``10.0``: ``docs/operators.md`` at onnx-tensorrt ``10.0-GA``
  (73f629e0; "TensorRT 10.0 supports … opset 9 to opset 20");
* ``10.3``: at ``10.1-GA`` (96e78110, the same header; ``DeformConv`` added).
  The changelog (``docs/Changelog.md``) adds no operator in 10.2 or 10.3
  (10.3: tensor ``axes`` of ``Slice``), so this is 10.3's operator set;
  10.3 is what JetPack 6 ships;
* ``10.15``: at ``main`` 6d0ab7be ("TensorRT 10.15 … opset 9 to opset 24");
* ``11.0``: the 10.15 matrix plus ``Swish``, which the TensorRT 11.0 release
  notes add to the parser (no 11.x ``operators.md`` was available when this
  was written; 11.2 adds ``DFT`` through a plugin and 11.5 opset 25, both
  left out, so the 11.x check errs on the side of refusing).

Versions between two matrices are checked against the older one (a node the
newer parser accepts can be reported; none the older one refuses is passed).

Run: ``python tools/trt_onnx_matrix.py --docs DIR`` where ``DIR`` holds
``10.0-GA.operators.md``, ``10.1-GA.operators.md`` and
``10.15-main-6d0ab7be.operators.md`` (``git show <ref>:docs/operators.md`` in
a clone of github.com/onnx/onnx-tensorrt).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from pathlib import Path

__all__ = ["TARGETS", "main", "parse_operators_md"]

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "graphopt" / "backends" / "onnx_matrix"

#: Matrix name → the operators.md it is read from, what is added, and where that comes from.
TARGETS = {
    "10.0": {"document": "10.0-GA.operators.md", "ref": "onnx/onnx-tensorrt 10.0-GA (73f629e0) docs/operators.md"},
    "10.3": {"document": "10.1-GA.operators.md", "ref": "onnx/onnx-tensorrt 10.1-GA (96e78110) docs/operators.md; "
             "docs/Changelog.md adds no operator in 10.2 or 10.3"},
    "10.15": {"document": "10.15-main-6d0ab7be.operators.md",
              "ref": "onnx/onnx-tensorrt main (6d0ab7be) docs/operators.md"},
    "11.0": {"document": "10.15-main-6d0ab7be.operators.md", "add": {"Swish": ["FLOAT", "FLOAT16", "BFLOAT16"]},
             "ref": "the 10.15 matrix plus Swish (TensorRT 11.0 release notes: 'Added support for Swish operator'); "
             "opset 25 arrives in 11.5"},
}

# The type words of the matrix → ONNX TensorProto data-type names ("INF64" is a typo of the 10.1 document).
_TYPES = {
    "FP32": "FLOAT", "FP16": "FLOAT16", "BF16": "BFLOAT16", "INT32": "INT32", "INT64": "INT64", "INF64": "INT64",
    "INT8": "INT8", "UINT8": "UINT8", "BOOL": "BOOL", "FP8": "FLOAT8E4M3FN", "INT4": "INT4", "FP4": "FLOAT4E2M1",
    "DOUBLE": "DOUBLE",
}


def parse_operators_md(text: str) -> dict[str, object]:
    """The opset range and the operator rows (supported with their types, or not) of one ``operators.md``."""
    header = re.search(r"TensorRT\s+([0-9.]+)\s+supports operators in the inclusive range of opset\s+(\d+)\s+to "
                       r"opset\s+(\d+)", text)
    if header is None:
        raise ValueError("no 'supports operators in the inclusive range of opset' line")
    supported: dict[str, list[str]] = {}
    unsupported: list[str] = []
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not re.fullmatch(r"[A-Z][A-Za-z0-9]*", cells[0]) or cells[1] not in ("Y", "N"):
            continue
        if cells[1] == "N":
            unsupported.append(cells[0])
            continue
        words = [w for w in re.split(r"[,\s]+", cells[2] if len(cells) > 2 else "") if w]  # "INT64 BOOL" in 10.0
        unknown = [w for w in words if w not in _TYPES]
        if unknown:
            logger.warning("%s: type words %s not understood, left out", cells[0], unknown)
        supported[cells[0]] = sorted({_TYPES[w] for w in words if w in _TYPES})
    return {"documented_as": header.group(1), "opsets": [int(header.group(2)), int(header.group(3))],
            "supported": dict(sorted(supported.items())), "unsupported": sorted(unsupported)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=Path, required=True, help="directory of the operators.md files")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    for name, target in TARGETS.items():
        matrix = parse_operators_md((args.docs / str(target["document"])).read_text())
        for op, types in dict(target.get("add", {})).items():  # type: ignore[call-overload]
            matrix["supported"][op] = types  # type: ignore[index]
        document = {"tensorrt": name, "source": target["ref"], "generated_by": "tools/trt_onnx_matrix.py", **matrix}
        path = args.out / f"{name}.json"
        path.write_text(json.dumps(document, indent=1) + "\n")
        logger.info("wrote %s: opsets %s, %d supported, %d unsupported operators", path.name, matrix["opsets"],
                    len(matrix["supported"]), len(matrix["unsupported"]))  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main())
