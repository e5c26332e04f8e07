"""The camera's own effects: exposure, contrast, colour cast, vignetting and sensor noise."""

from __future__ import annotations

import numpy as np

from .geometry import Rays

__all__ = ["finish"]


def finish(rng: np.random.Generator, image: np.ndarray, rays: Rays) -> np.ndarray:
    """Global brightness, contrast and colour cast, vignetting, sensor noise; to uint8."""
    brightness = float(rng.uniform(0.65, 1.2))
    contrast = float(rng.uniform(0.75, 1.15))
    cast = (1 + rng.normal(0, 0.05, size=3)).astype(np.float32)
    gain = (255.0 * brightness * contrast * cast).astype(np.float32)
    offset = (255.0 * brightness * 0.45 * (1 - contrast) * cast).astype(np.float32)
    vignette = float(rng.uniform(0.0, 0.35))
    sigma = float(rng.uniform(1.0, 5.0))
    out = image * gain[:, None, None] + offset[:, None, None]
    if vignette > 0.02:
        out *= 1 - vignette * rays.vignette
    # Triangular noise from two random bytes per pixel: as good as Gaussian here and several times cheaper.
    pair = np.frombuffer(rng.bytes(2 * out[0].size), dtype=np.int8).reshape(2, *rays.shape)
    out += (pair[0].astype(np.float32) + pair[1]) * (sigma / 104.5)
    np.clip(out, 0, 255, out=out)
    return np.ascontiguousarray(out.astype(np.uint8).transpose(1, 2, 0))
