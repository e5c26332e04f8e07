"""The benchmark set of real exported models (benchmarks/models.toml): fetch, inputs, peers, checks.

Used by ``bench_peers.py`` (node counts, errors and interleaved latency of
graphopt against every peer) and by ``tests/test_model_set.py`` (node counts
and accuracy per model in CI). The wheels are downloaded with
``pip download --no-deps`` at the pinned version, checked against the pinned
sha256, unzipped and cached; a failed download or a hash mismatch is an
error, never a skip.

Peers, each given the same pinned model (the manifest's shape written into
the graph input) and the same session options when run:

``ort_basic``
    onnxruntime's basic offline level written to file (standard operators).
``onnxsim``
    ``onnxsim.simplify`` with its defaults.
``onnxslim``
    ``onnxslim.slim`` with its defaults.
``polygraphy``
    ``polygraphy surgeon sanitize --fold-constants``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from graphopt.graph import count_nodes, set_dims
from graphopt.passes.ort_basic import onnxruntime_basic

__all__ = [
    "MANIFEST",
    "PEERS",
    "ModelEntry",
    "cache_dir",
    "fetch",
    "load_manifest",
    "pinned",
    "real_inputs",
    "within_tolerance",
]

logger = logging.getLogger(__name__)

MANIFEST = Path(__file__).with_name("models.toml")
ATOL = RTOL = 1e-4


@dataclass(frozen=True)
class ModelEntry:
    """One model of the set, as the manifest describes it."""

    name: str
    about: str
    wheel: str
    version: str
    file: str
    sha256: str
    path: str
    shape: tuple[int, ...]
    input: str
    scale: float
    mean: tuple[float, ...]
    std: tuple[float, ...]
    tensorrt: bool


def load_manifest(path: Path = MANIFEST) -> list[ModelEntry]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    entries = []
    for name, model in data["models"].items():
        wheel = data["wheels"][model["wheel"]]
        channels = model["shape"][1]
        entries.append(ModelEntry(
            name=name, about=model["about"], wheel=model["wheel"], version=wheel["version"], file=wheel["file"],
            sha256=wheel["sha256"], path=model["path"], shape=tuple(model["shape"]), input=model["input"],
            scale=float(model.get("scale", 255.0)), mean=tuple(model.get("mean", [0.0] * channels)),
            std=tuple(model.get("std", [1.0] * channels)), tensorrt=bool(model.get("tensorrt", True)),
        ))
    return entries


def cache_dir() -> Path:
    return Path(os.environ.get("GRAPHOPT_MODEL_CACHE", Path.home() / ".cache" / "graphopt" / "models"))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download_wheel(entry: ModelEntry, target: Path) -> None:
    """``pip download --no-deps`` of the pinned wheel into ``target``'s folder, hash checked."""
    with tempfile.TemporaryDirectory(prefix="graphopt-wheel-") as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "--quiet",
                   "--dest", tmp, f"{entry.wheel}=={entry.version}"]
        proc = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
        found = Path(tmp) / entry.file
        if proc.returncode != 0 or not found.exists():
            raise RuntimeError(f"cannot download {entry.wheel}=={entry.version}: {proc.stderr.strip()[-300:]}")
        if _sha256(found) != entry.sha256:
            raise RuntimeError(f"{entry.file}: sha256 {_sha256(found)} is not the pinned {entry.sha256}")
        shutil.move(str(found), target)


def fetch(entry: ModelEntry) -> Path:
    """The model file, from the cache or downloaded, checked and unzipped into it."""
    root = cache_dir() / entry.wheel / entry.version
    model = root / entry.path
    if model.exists():
        return model
    root.mkdir(parents=True, exist_ok=True)
    wheel = root / entry.file
    if not wheel.exists() or _sha256(wheel) != entry.sha256:
        _download_wheel(entry, wheel)
    with zipfile.ZipFile(wheel) as archive, tempfile.TemporaryDirectory(dir=root) as tmp:
        archive.extract(entry.path, tmp)
        model.parent.mkdir(parents=True, exist_ok=True)
        os.replace(Path(tmp) / entry.path, model)
    return model


def pinned(model: onnx.ModelProto, shape: tuple[int, ...]) -> onnx.ModelProto:
    """``model`` with its one tensor input declared at ``shape``: what every tool is given."""
    result = onnx.ModelProto()
    result.CopyFrom(model)
    initializers = {t.name for t in result.graph.initializer}
    value = next(v for v in result.graph.input if v.name not in initializers)
    set_dims(value, shape)
    return result


def _image(name: str, height: int, width: int) -> np.ndarray:
    """A scikit-image sample as float RGB in [0, 255], resized to ``height``×``width``."""
    import skimage.data
    from skimage.transform import resize

    image = getattr(skimage.data, name)()
    if image.ndim == 2:  # a grey sample (page, camera) for a colour model
        image = np.stack([image] * 3, axis=-1)
    return np.asarray(resize(image, (height, width), preserve_range=True, anti_aliasing=True), np.float64)


def _text(text: str, height: int, width: int) -> np.ndarray:
    """``text`` rendered black on white with Pillow's bundled font, as float RGB in [0, 255]."""
    from PIL import Image, ImageDraw, ImageFont

    canvas = Image.new("RGB", (width, height), "white")
    font = ImageFont.load_default(size=max(8, int(height * 0.6)) if height < 100 else 40)
    ImageDraw.Draw(canvas).text((4, max(0, height // 2 - (height * 3) // 10)), text, fill="black", font=font)
    return np.asarray(canvas, np.float64)


def real_inputs(entry: ModelEntry, model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """The model's input on real data: a scikit-image photo or rendered text, preprocessed per the manifest."""
    _, channels, height, width = entry.shape
    kind, _, what = entry.input.partition(":")
    pixels = _image(what, height, width) if kind == "image" else _text(what, height, width)
    if channels == 1:
        pixels = pixels.mean(axis=2, keepdims=True)
    normalised = (pixels / entry.scale - np.asarray(entry.mean)) / np.asarray(entry.std)
    tensor = normalised.transpose(2, 0, 1)[None].astype(np.float32)
    initializers = {t.name for t in model.graph.initializer}
    name = next(v.name for v in model.graph.input if v.name not in initializers)
    return {name: tensor}


def run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The model's outputs in onnxruntime (CPU, default options)."""
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def within_tolerance(reference: list[np.ndarray], found: list[np.ndarray]) -> tuple[bool, float]:
    """Whether |a−b| ≤ 1e-4 + 1e-4·|b| everywhere (b the reference), and the largest |a−b|."""
    ok, worst = True, 0.0
    for ref, new in zip(reference, found, strict=True):
        if ref.shape != new.shape:
            return False, float("inf")
        ref64, new64 = ref.astype(np.float64), new.astype(np.float64)
        diff = np.abs(new64 - ref64)
        worst = max(worst, float(diff.max(initial=0.0)))
        ok = ok and bool(np.all(diff <= ATOL + RTOL * np.abs(ref64)))
    return ok, worst


def _onnxsim(model: onnx.ModelProto) -> onnx.ModelProto:
    import onnxsim

    with contextlib.redirect_stdout(io.StringIO()):
        result, ok = onnxsim.simplify(model, check_n=0)
    if not ok:
        raise RuntimeError("onnxsim's check failed")
    return result


def _onnxslim(model: onnx.ModelProto) -> onnx.ModelProto:
    import onnxslim

    with contextlib.redirect_stdout(io.StringIO()):
        return onnxslim.slim(model)


def _polygraphy(model: onnx.ModelProto) -> onnx.ModelProto:
    command = shutil.which("polygraphy", path=str(Path(sys.executable).parent)) or shutil.which("polygraphy")
    if command is None:
        raise FileNotFoundError("Polygraphy is not installed (pip install polygraphy)")
    with tempfile.TemporaryDirectory(prefix="graphopt-peer-") as tmp:
        source, target = Path(tmp) / "in.onnx", Path(tmp) / "out.onnx"
        onnx.save(model, str(source))
        proc = subprocess.run([command, "surgeon", "sanitize", str(source), "--fold-constants", "-o", str(target)],
                              capture_output=True, text=True, timeout=900, check=False)
        if proc.returncode != 0:
            raise RuntimeError((proc.stderr.strip().splitlines() or ["polygraphy failed"])[-1])
        return onnx.load(str(target))


PEERS: dict[str, Callable[[onnx.ModelProto], onnx.ModelProto]] = {
    "ort_basic": onnxruntime_basic,
    "onnxsim": _onnxsim,
    "onnxslim": _onnxslim,
    "polygraphy": _polygraphy,
}


def standard_ops_only(model: onnx.ModelProto) -> list[str]:
    """The operators outside the default ONNX domain (none expected)."""
    return sorted({f"{n.domain}::{n.op_type}" for n in model.graph.node if n.domain not in ("", "ai.onnx")})


def describe(model: onnx.ModelProto) -> dict[str, Any]:
    return {"nodes": count_nodes(model)}
