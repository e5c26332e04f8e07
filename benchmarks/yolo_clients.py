"""What YOLO users run today, for bench_yolo.py: the cv2 client and onnxruntime-extensions' pre/post-processing.

``Cv2Client``
    The client code of the Ultralytics examples and of the libraries that
    ship these models (nudenet.py, ddddocr's ``DetectionEngine``), with the
    config's settings: ``cv2.resize`` (linear) and ``cv2.copyMakeBorder``
    (the letterbox), ``/ scale``, one onnxruntime call, the decode in NumPy
    (YOLOX's grid and strides where the export leaves them out), the score
    threshold and ``cv2.dnn.NMSBoxes`` (``NMSBoxesBatched`` when class-aware),
    boxes back in frame pixels.
``ortx_model``
    onnxruntime-extensions' ``pre_post_processing`` steps around the network,
    as its ``add_pre_post_processing_to_model.yolo_detection`` puts them, but
    fed the same decoded uint8 RGB frame as every other variant (not JPEG
    bytes: no ``ConvertImageToBGR``) and without the drawing: ``Resize``
    (aspect kept), ``LetterBox``, CHW, ``ImageBytesToFloat``, the network,
    the box/score split, ``SelectBestBoundingBoxesByNMS`` (ONNX
    ``NonMaxSuppression``, per class) and ``ScaleNMSBoundingBoxesAndKeyPoints``.
    Where the tools cannot express the export or the config, a sentence says why.
"""

from __future__ import annotations

import numpy as np
import onnx

from graphopt.backends.onnxruntime import create_session
from graphopt.detections import Detections
from graphopt_yolo.config import YoloConfig
from graphopt_yolo.layout import Layout

__all__ = ["ORTX_OPSET", "Cv2Client", "OrtxDetector", "ortx_model", "ortx_reference_config"]

#: The opset of the pre/post-processing graphs: 17 keeps their Resize without antialiasing (18 adds it).
ORTX_OPSET = 17


def _detections(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, config: YoloConfig) -> Detections:
    """Corner boxes clipped to the frame, as every variant reports them."""
    limit = np.array([config.frame_width, config.frame_height] * 2, np.float32)
    clipped = np.minimum(np.maximum(boxes.reshape(-1, 4).astype(np.float32), 0), limit)
    return Detections(boxes=clipped, scores=scores.astype(np.float32), cells=np.full((len(scores), 3), -1, np.int64),
                      classes=classes.astype(np.int64))


class Cv2Client:
    """cv2 letterbox, NumPy decode and ``cv2.dnn.NMSBoxes`` around one onnxruntime call."""

    def __init__(self, network: onnx.ModelProto, config: YoloConfig, layout: Layout) -> None:
        import cv2  # the bench extra's opencv-python-headless

        self.cv2, self.config, self.layout = cv2, config, layout
        self.session = create_session(network, what="the YOLO network")
        height, width = layout.input_hw
        grids, strides = [], []
        for stride in (8, 16, 32):  # YOLOX's demo_postprocess
            xs, ys = np.meshgrid(np.arange(width // stride), np.arange(height // stride))
            grids.append(np.stack((xs, ys), 2).reshape(-1, 2))
            strides.append(np.full((grids[-1].shape[0], 1), stride))
        self.grid, self.stride = np.concatenate(grids).astype(np.float32), np.concatenate(strides).astype(np.float32)

    def preprocess(self, frame: np.ndarray) -> tuple[np.ndarray, tuple[float, float], tuple[int, int]]:
        """The network's input, the gain ``(x, y)`` and the frame's origin ``(left, top)`` in it."""
        cv2, config = self.cv2, self.config
        height, width = self.layout.input_hw
        image = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR) if config.channels == "bgr" else frame
        rows, cols = frame.shape[:2]
        if config.resize == "stretch":
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
            gain, origin = (width / cols, height / rows), (0, 0)
        else:
            ratio = min(height / rows, width / cols)
            new_w, new_h = round(cols * ratio), round(rows * ratio)
            image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
            extra_w, extra_h = width - new_w, height - new_h
            left, top = (extra_w // 2, extra_h // 2) if config.pad == "center" else (0, 0)
            image = cv2.copyMakeBorder(image, top, extra_h - top, left, extra_w - left, cv2.BORDER_CONSTANT,
                                       value=(config.pad_value,) * 3)
            gain, origin = (ratio, ratio), (left, top)
        blob = image.transpose(2, 0, 1)[None].astype(np.float32) / np.float32(config.scale)
        if any(config.mean) or any(s != 1 for s in config.std):
            blob = (blob - np.float32(config.mean).reshape(1, 3, 1, 1)) / np.float32(config.std).reshape(1, 3, 1, 1)
        return blob, gain, origin

    def decode(self, output: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes ``(cx, cy, w, h)`` in input pixels, the best class's score and the class, per prediction."""
        layout = self.layout
        table = output[0].T if not layout.objectness else output[0].copy()
        if not layout.probabilities:
            table[:, 4:] = 1 / (1 + np.exp(-table[:, 4:]))
        if layout.objectness and not layout.decoded:
            table[:, :2] = (table[:, :2] + self.grid) * self.stride
            table[:, 2:4] = np.exp(table[:, 2:4]) * self.stride
        scores = table[:, 5:] * table[:, 4:5] if layout.objectness else table[:, 4:]
        classes = scores.argmax(1)
        return table[:, :4], scores[np.arange(len(classes)), classes], classes

    def detect(self, frame: np.ndarray) -> Detections:
        cv2, config = self.cv2, self.config
        blob, (gx, gy), (left, top) = self.preprocess(frame)
        output = self.session.run(None, {self.layout.input: blob})[0]
        centres, scores, classes = self.decode(output)
        keep = scores >= config.score_threshold
        centres, scores, classes = centres[keep], scores[keep], classes[keep]
        corners = np.concatenate([centres[:, :2] - centres[:, 2:4] / 2, centres[:, 2:4]], axis=1)
        if config.class_agnostic:
            picked = cv2.dnn.NMSBoxes(corners.tolist(), scores.tolist(), config.score_threshold, config.iou_threshold)
        else:
            picked = cv2.dnn.NMSBoxesBatched(corners.tolist(), scores.tolist(), classes.tolist(),
                                             config.score_threshold, config.iou_threshold)
        picked = np.asarray(picked, np.int64).reshape(-1)[: config.max_detections]
        x0, y0 = corners[picked, 0], corners[picked, 1]
        boxes = np.stack([x0, y0, x0 + corners[picked, 2], y0 + corners[picked, 3]], axis=1)
        boxes = (boxes - np.float32([left, top, left, top])) / np.float32([gx, gy, gx, gy])
        return _detections(boxes, scores[picked], classes[picked], config)


def ortx_reference_config(config: YoloConfig) -> YoloConfig:
    """What onnxruntime-extensions' steps can express of ``config``: centred padding, NMS within each class."""
    import dataclasses

    return dataclasses.replace(config, pad="center", class_agnostic=False)


def _unsupported(config: YoloConfig, layout: Layout) -> str | None:
    if not layout.decoded:
        return ("not supported: the export leaves YOLOX's grid/stride decode to the client, and "
                "pre_post_processing has no step for it")
    if not layout.probabilities:
        return "not supported: the export's scores are logits, and pre_post_processing has no Sigmoid step"
    if config.resize != "letterbox":
        return "not supported: its Resize keeps the aspect ratio (no stretch)"
    return None


def ortx_model(network: onnx.ModelProto, config: YoloConfig, layout: Layout) -> onnx.ModelProto | str:
    """The network inside onnxruntime-extensions' pre/post-processing steps, or why it cannot be built."""
    why = _unsupported(config, layout)
    if why is not None:
        return why
    try:
        from onnxruntime_extensions.tools.pre_post_processing import PrePostProcessor, create_named_value, utils
        from onnxruntime_extensions.tools.pre_post_processing import steps as pp
    except ImportError:
        return "not installed (pip install onnxruntime-extensions)"
    height, width = layout.input_hw
    pinned = onnx.ModelProto()
    pinned.CopyFrom(network)
    # Its steps read the shapes as text: every dimension a number (the export's are expressions of the input's).
    out_dims = ((1, layout.predictions, 5 + layout.classes) if layout.objectness
                else (1, 4 + layout.classes, layout.predictions))
    for value_info, shape in ((pinned.graph.input[0], (1, 3, height, width)), (pinned.graph.output[0], out_dims)):
        dims = value_info.type.tensor_type.shape.dim
        for dim, value in zip(dims, shape, strict=True):
            dim.Clear()
            dim.dim_value = value
    del pinned.graph.value_info[:]  # onnx.compose refuses to merge graphs that both name the output there
    frame = create_named_value("frame", onnx.TensorProto.UINT8, [config.frame_height, config.frame_width, 3])
    pipeline = PrePostProcessor([frame], ORTX_OPSET)
    bgr = config.channels == "bgr"
    first = pp.ReverseAxis(axis=-1, dim_value=3, name="Frame") if bgr else pp.Identity(name="Frame")
    normalize = ([pp.Normalize([(m, s) for m, s in zip(config.mean, config.std, strict=True)])]
                 if any(config.mean) or any(s != 1 for s in config.std) else [])
    pipeline.add_pre_processing([
        first, pp.Resize((height, width), policy="not_larger"),
        pp.LetterBox((height, width), fill_value=int(config.pad_value)),
        pp.ChannelsLastToChannelsFirst(), pp.ImageBytesToFloat(rescale_factor=1 / config.scale), *normalize,
        pp.Unsqueeze([0]),
    ])
    split: list[pp.Step] = ([pp.SplitOutBoxAndScoreWithConf(num_classes=layout.classes)] if layout.objectness else
                            [pp.Transpose([1, 0]), pp.Split(num_outputs=2, axis=-1, splits=[4, layout.classes])])
    pipeline.add_post_processing([
        pp.Squeeze([0]), *split,
        pp.SelectBestBoundingBoxesByNMS(iou_threshold=config.iou_threshold, score_threshold=config.score_threshold,
                                        max_boxes_per_class=config.max_detections,
                                        max_detections=config.max_detections),
        (pp.ScaleNMSBoundingBoxesAndKeyPoints(name="ScaleBoundingBoxes"), [
            utils.IoMapEntry("Frame", producer_idx=0, consumer_idx=1),
            utils.IoMapEntry("Resize", producer_idx=0, consumer_idx=2),
            utils.IoMapEntry("LetterBox", producer_idx=0, consumer_idx=3),
        ]),
    ])
    return pipeline.run(pinned)


class OrtxDetector:
    """onnxruntime-extensions' graph on a frame: ``[n, 6]`` rows of ``(cx, cy, w, h, score, class)`` out."""

    def __init__(self, model: onnx.ModelProto, config: YoloConfig) -> None:
        self.config = config
        self.session = create_session(model, what="onnxruntime-extensions' YOLO graph")
        self.input = self.session.get_inputs()[0].name

    def detect(self, frame: np.ndarray) -> Detections:
        rows = self.session.run(None, {self.input: frame})[0]
        order = np.argsort(-rows[:, 4], kind="stable")
        rows = rows[order]
        boxes = np.concatenate([rows[:, :2] - rows[:, 2:4] / 2, rows[:, :2] + rows[:, 2:4] / 2], axis=1)
        return _detections(boxes, rows[:, 4], rows[:, 5].astype(np.int64), self.config)

