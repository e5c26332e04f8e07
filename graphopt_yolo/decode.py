"""The numbers the host pipeline and the fused graph share: where the frame goes, and how scores are compared.

* :class:`Placement`: the camera frame resized (``letterbox``: aspect kept,
  ``round(side·r)`` with ``r = min(h/H, w/W)``, as Ultralytics'
  ``LetterBox``; ``stretch``: to the input size) and padded (``center``:
  the odd pixel at the bottom/right, as Ultralytics; ``top-left``: all of it
  there, as ddddocr's and NudeNet's clients), and the gain and offset that
  map input pixels back to frame pixels.
* :class:`ScoreForm`: ranking, threshold and top-K run on what the graph
  gives. With logits, they run before the sigmoid, which is monotone, so the
  order is exact and the sigmoid is applied only to the kept rows: for the
  anchor-free layout on the best class logit (threshold ``logit(t)``), for
  objectness layouts on ``log σ(obj) + log σ(cls) = −softplus(−obj) −
  softplus(−cls)`` (threshold ``log t``; ``exp`` at the end). With
  probabilities (a Sigmoid inside the exported graph), on the probability,
  ``obj · cls`` for objectness layouts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .config import YoloConfig
from .layout import Layout

__all__ = ["Placement", "ScoreForm", "placement", "score_form"]


@dataclass(frozen=True)
class Placement:
    """The frame in the network's input: resized to ``resized_hw``, padded by ``pads``, and back.

    Attributes:
        resized_hw: the frame's size after the resize.
        pads: ``(top, left, bottom, right)`` rows and columns of padding.
        gain: ``(x, y)`` input pixels per frame pixel.
    """

    resized_hw: tuple[int, int]
    pads: tuple[int, int, int, int]
    gain: tuple[float, float]

    @property
    def offset(self) -> tuple[int, int]:
        """``(left, top)``: where the frame's origin lands in the input."""
        return self.pads[1], self.pads[0]

    def box_offset(self, row_offset: int = 0) -> np.ndarray:
        """``(left, top, left, top)`` float32, subtracted from the boxes of a network reading from ``row_offset`` on.

        A cropped network's boxes are in its band's pixels: the band's top is added back
        (:mod:`graphopt_yolo.crop`).
        """
        left, top = self.offset
        return np.array([left, top - row_offset, left, top - row_offset], np.float32)

    def box_gain(self) -> np.ndarray:
        """``(gx, gy, gx, gy)`` float32, divided out of input-pixel boxes."""
        gx, gy = self.gain
        return np.array([gx, gy, gx, gy], np.float32)


def placement(config: YoloConfig, input_hw: tuple[int, int]) -> Placement:
    """Where ``config``'s frames go in a network input of ``input_hw``."""
    height, width = input_hw
    frame_h, frame_w = config.frame_height, config.frame_width
    if config.resize == "stretch":
        return Placement((height, width), (0, 0, 0, 0), (width / frame_w, height / frame_h))
    ratio = min(height / frame_h, width / frame_w)
    new_h, new_w = round(frame_h * ratio), round(frame_w * ratio)
    extra_h, extra_w = height - new_h, width - new_w
    top, left = (extra_h // 2, extra_w // 2) if config.pad == "center" else (0, 0)
    return Placement((new_h, new_w), (top, left, extra_h - top, extra_w - left), (ratio, ratio))


@dataclass(frozen=True)
class ScoreForm:
    """What ranking runs on, its threshold, and the op that turns a kept rank into a probability.

    Attributes:
        final_op: ``Sigmoid`` (a class logit), ``Exp`` (a log-probability) or ``None`` (a probability).
        threshold: the configured probability threshold in this form.
    """

    final_op: str | None
    threshold: np.float32

    def probability(self, rank: np.ndarray) -> np.ndarray:
        """The NumPy form of :attr:`final_op`, float32."""
        rank = np.asarray(rank, np.float32)
        if self.final_op == "Sigmoid":
            return (1 / (1 + np.exp(-rank))).astype(np.float32)
        if self.final_op == "Exp":
            return np.exp(rank).astype(np.float32)
        return rank


def score_form(layout: Layout, threshold: float) -> ScoreForm:
    """The score form of ``layout`` at a probability ``threshold``."""
    if layout.probabilities:
        return ScoreForm(None, np.float32(threshold))
    if layout.objectness:
        return ScoreForm("Exp", np.float32(math.log(threshold)))
    return ScoreForm("Sigmoid", np.float32(math.log(threshold / (1 - threshold))))


def softplus(x: np.ndarray) -> np.ndarray:
    """``log(1 + exp(x))`` without overflow, float32."""
    return np.logaddexp(np.float32(0), x).astype(np.float32)


def decode(output: np.ndarray, layout: Layout) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The network's output as ``(boxes [N, 4] x0 y0 x1 y1 in input pixels, rank [N], classes [N] int64)``.

    The same float32 operations, in the same order, as the graph's decode (:func:`graphopt_yolo.fused.decode`).
    """
    from .layout import grid_and_strides

    n, c = layout.predictions, layout.classes
    table = output.reshape(4 + c, n).T if not layout.objectness else output.reshape(n, 5 + c)
    xy, wh = table[:, 0:2], table[:, 2:4]
    if layout.decoded:
        half = wh * np.float32(0.5)
    else:  # YOLOX's (t_xy + grid)·stride and exp(t_wh)·stride, halved
        grid, stride = grid_and_strides(*layout.network_hw)
        xy, half = (xy + grid) * stride, np.exp(wh) * (stride * np.float32(0.5))
    boxes = np.concatenate([xy - half, xy + half], axis=1)
    scores = table[:, 5:] if layout.objectness else table[:, 4:]
    labels = np.argmax(scores, axis=1)
    best = np.take_along_axis(scores, labels[:, None], axis=1)[:, 0]
    if not layout.objectness:
        return boxes, best, labels
    objectness = table[:, 4]
    if layout.probabilities:
        return boxes, objectness * best, labels
    return boxes, -softplus(-objectness) - softplus(-best), labels
