"""The core's graph building blocks, each run in onnxruntime against NumPy."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from graphopt.blocks import (
    GraphWriter,
    fold_normalization,
    frame_to_tensor,
    iou_suppression,
    keep_first,
    max_pool_peaks,
    normalize,
    resize,
    top_k,
)
from graphopt.nms import cluster_nms, fast_nms, greedy_nms, overlaps
from graphopt.passes.nms_logits import PRECISION_KEY
from graphopt.verify import run_onnxruntime

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _model(writer: GraphWriter, inputs: list[onnx.ValueInfoProto], outputs: list[str],
           extra: list[onnx.TensorProto] = ()) -> onnx.ModelProto:  # type: ignore[assignment]
    graph = helper.make_graph(writer.nodes, "blocks", inputs, [helper.make_value_info(n, onnx.TypeProto()) for n in
                                                               outputs], [*writer.initializers, *extra])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_names_are_scoped_and_unique() -> None:
    writer = GraphWriter("fused")
    assert writer.constant("pre", "a", np.zeros(1)) == "fused/pre/a"
    assert writer.constant("pre", "a", np.zeros(1)) == "fused/pre/a_1"
    assert writer.op("pre", "Relu", ["x"]) == "fused/pre/Relu" and writer.op("pre", "Relu", ["x"]) == "fused/pre/Relu_1"
    assert writer.op("pre", "Relu", ["x"], output="y") == "y"


def test_frame_to_tensor_and_normalize_match_numpy() -> None:
    writer = GraphWriter("t")
    out = normalize(writer, frame_to_tensor(writer, "frame"), mean=MEAN, std=STD)
    model = _model(writer, [helper.make_tensor_value_info("frame", TensorProto.UINT8, [6, 5, 3])], [out])
    frame = np.random.default_rng(0).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    got = run_onnxruntime(model, {"frame": frame})[out]
    expected = ((frame / 255.0 - np.array(MEAN)) / np.array(STD)).transpose(2, 0, 1)[None]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def _conv_network(pads: tuple[int, int, int, int]) -> onnx.GraphProto:
    rng = np.random.default_rng(1)
    weight = onnx.numpy_helper.from_array(rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "w")
    bias = onnx.numpy_helper.from_array(rng.normal(size=(4,)).astype(np.float32), "b")
    conv = helper.make_node("Conv", ["image", "w", "b"], ["y"], pads=list(pads))
    return helper.make_graph([conv], "net", [helper.make_tensor_value_info("image", TensorProto.FLOAT, None)],
                             [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [weight, bias])


def test_normalization_folds_into_an_unpadded_conv_exactly_and_not_into_a_padded_one() -> None:
    assert fold_normalization(GraphWriter("t"), _conv_network((1, 1, 1, 1)), "image", mean=MEAN, std=STD) is None
    network = _conv_network((0, 0, 0, 0))
    frame = np.random.default_rng(2).integers(0, 256, (8, 7, 3), dtype=np.uint8)
    results = []
    for fold in (False, True):
        writer = GraphWriter("t")
        x = frame_to_tensor(writer, "frame")
        replaced = fold_normalization(writer, network, "image", mean=MEAN, std=STD) if fold else None
        if replaced is None:
            replaced = {}
            x = normalize(writer, x, mean=MEAN, std=STD)
        conv = helper.make_node("Conv", [x, replaced.get("w", "w"), replaced.get("b", "b")], ["y"])
        writer.nodes.append(conv)
        kept = [init for init in network.initializer if init.name not in replaced]
        model = _model(writer, [helper.make_tensor_value_info("frame", TensorProto.UINT8, [8, 7, 3])], ["y"], kept)
        results.append(run_onnxruntime(model, {"frame": frame})["y"])
        assert (len(writer.nodes) == 4) == fold  # Cast, Transpose, Unsqueeze, Conv: the three element-wise ops gone
    np.testing.assert_allclose(results[1], results[0], rtol=1e-4, atol=1e-4)


def test_resize_is_bilinear_with_half_pixel_centres() -> None:
    writer = GraphWriter("t")
    out = resize(writer, "s", "x", (1, 1, 2, 2))
    model = _model(writer, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])], [out])
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    np.testing.assert_allclose(run_onnxruntime(model, {"x": x})[out], [[[[2.5, 4.5], [10.5, 12.5]]]])


@pytest.mark.parametrize("planes", [False, True], ids=["volume", "planes"])
@pytest.mark.parametrize("window", [(1, 3, 3), (3, 5, 3), (3, 1, 1), (3, 1, 3)])
def test_max_pool_peaks_and_top_k_match_a_numpy_reference(window: tuple[int, int, int], planes: bool) -> None:
    shape = (3, 9, 11)
    writer = GraphWriter("t")
    names = [f"plane{s}" for s in range(shape[0])]
    if planes:
        writer.op("v", "Concat", names, axis=0, output="volume")
    candidates, threshold = max_pool_peaks(writer, "volume", shape, window, 0.5, planes=names if planes else ())
    values, indices = top_k(writer, candidates, 6)
    inputs = ([helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, *shape[1:]]) for n in names] if planes
              else [helper.make_tensor_value_info("volume", TensorProto.FLOAT, list(shape))])
    model = _model(writer, inputs, [values, indices, candidates])
    # Probabilities with one wide plateau at 0 (as cells no scale reaches are), where every cell is a peak.
    volume = np.random.default_rng(3).random(shape, dtype=np.float32)
    volume[1, 2:6, 3:9] = 0
    feeds = {n: volume[s:s + 1] for s, n in enumerate(names)} if planes else {"volume": volume}
    got = run_onnxruntime(model, feeds)
    padded = np.pad(volume, [(k // 2, k // 2) for k in window], constant_values=-np.inf)
    windows = np.lib.stride_tricks.sliding_window_view(padded, window)
    peaks = volume >= windows.max(axis=(-3, -2, -1))
    # Not a peak: 0, which ranks below every peak the (positive) threshold keeps; the values are never negative.
    np.testing.assert_array_equal(got[candidates], np.where(peaks, volume, 0).ravel())
    assert "Where" not in [n.op_type for n in writer.nodes]
    flat = np.where(peaks, volume, -np.inf).ravel()
    order = np.argsort(-flat, kind="stable")[:6]
    np.testing.assert_array_equal(got[values], flat[order])
    np.testing.assert_array_equal(got[indices], order)
    # The threshold is the caller's test of the picked values: those at least it are the thresholded peaks.
    limit = numpy_helper.to_array(next(t for t in writer.initializers if t.name == threshold))
    above = flat[flat >= 0.5]
    np.testing.assert_array_equal(got[values][got[values] >= limit], np.sort(above)[::-1][:6])


def test_max_pool_peaks_without_a_positive_threshold_sets_non_peaks_to_minus_infinity() -> None:
    # A threshold of 0 keeps peaks of probability 0: a non-peak at 0 would pass with them, −inf does not.
    writer = GraphWriter("t")
    candidates, _ = max_pool_peaks(writer, "volume", (1, 1, 4), (1, 1, 3), 0.0)
    model = _model(writer, [helper.make_tensor_value_info("volume", TensorProto.FLOAT, [1, 1, 4])], [candidates])
    got = run_onnxruntime(model, {"volume": np.array([[[0.0, 0.5, 0.0, 0.0]]], np.float32)})[candidates]
    np.testing.assert_array_equal(got, [-np.inf, 0.5, -np.inf, 0.0])


def _clustered_boxes(seed: int, k: int) -> np.ndarray:
    """``k`` boxes around a few centres, so that chains of overlaps (where Fast-NMS and greedy differ) occur."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(20, 200, size=(3, 2))[rng.integers(0, 3, size=k)]
    xy = centres + rng.normal(scale=8, size=(k, 2))
    size = rng.uniform(20, 40, size=(k, 1)) * np.array([0.41, 1.0])
    return np.concatenate([xy, xy + size], axis=1).astype(np.float32)


def _suppression_model(k: int, threshold: float, method: str) -> tuple[onnx.ModelProto, str, tuple[str, str, str]]:
    writer = GraphWriter("t")
    keep = iou_suppression(writer, "boxes", "valid", k, iou_threshold=threshold, method=method)
    compact = keep_first(writer, keep, k)
    inputs = [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [k, 4]),
              helper.make_tensor_value_info("valid", TensorProto.BOOL, [k])]
    return _model(writer, inputs, [keep, *compact]), keep, compact


@pytest.mark.parametrize("seed", range(6))
def test_cluster_iou_suppression_is_greedy_nms_exactly(seed: int) -> None:
    k = 24
    boxes = _clustered_boxes(seed, k)
    valid = np.random.default_rng(seed).random(k) < 0.85
    model, keep, (order, kept, count) = _suppression_model(k, 0.5, "cluster")
    got = run_onnxruntime(model, {"boxes": boxes, "valid": valid})
    expected = greedy_nms(boxes, 0.5, valid)
    np.testing.assert_array_equal(got[keep], expected)
    np.testing.assert_array_equal(cluster_nms(boxes, 0.5, valid), expected)
    # Kept rows first, in their order; the rest after; the count says how many.
    n = int(expected.sum())
    assert int(got[count]) == n
    np.testing.assert_array_equal(got[order][:n], np.flatnonzero(expected))
    np.testing.assert_array_equal(got[kept], np.arange(k) < n)
    assert sorted(got[order].tolist()) == list(range(k))


def test_fast_nms_drops_what_a_suppressed_box_overlaps_and_greedy_keeps() -> None:
    # A chain: 1 overlaps 0, 2 overlaps 1 but not 0. Greedy keeps 0 and 2; Fast-NMS keeps only 0.
    boxes = np.array([[0, 0, 10, 10], [4, 0, 14, 10], [8, 0, 18, 10], [50, 50, 60, 60]], np.float32)
    assert greedy_nms(boxes, 0.3).tolist() == [True, False, True, True]
    assert fast_nms(boxes, 0.3).tolist() == [True, False, False, True]
    for method, expected in (("cluster", [True, False, True, True]), ("fast", [True, False, False, True])):
        model, keep, _ = _suppression_model(4, 0.3, method)
        got = run_onnxruntime(model, {"boxes": boxes, "valid": np.ones(4, bool)})[keep]
        assert got.tolist() == expected, method


@pytest.mark.parametrize("method", ["cluster", "fast"])
def test_class_aware_suppression_suppresses_within_each_class_only(method: str) -> None:
    k = 24
    boxes = _clustered_boxes(7, k)
    rng = np.random.default_rng(7)
    valid, classes = rng.random(k) < 0.9, rng.integers(0, 3, k)
    writer = GraphWriter("t")
    keep = iou_suppression(writer, "boxes", "valid", k, iou_threshold=0.4, method=method, classes="classes")
    inputs = [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [k, 4]),
              helper.make_tensor_value_info("valid", TensorProto.BOOL, [k]),
              helper.make_tensor_value_info("classes", TensorProto.INT64, [k])]
    got = run_onnxruntime(_model(writer, inputs, [keep]), {"boxes": boxes, "valid": valid, "classes": classes})[keep]
    reference = greedy_nms if method == "cluster" else fast_nms
    np.testing.assert_array_equal(got, reference(boxes, 0.4, valid, classes=classes))
    # Class by class, it is the class-agnostic suppression of that class's boxes.
    for label in range(3):
        rows = classes == label
        np.testing.assert_array_equal(got[rows], reference(boxes[rows], 0.4, valid[rows]))
    assert not np.array_equal(got, reference(boxes, 0.4, valid))  # the classes matter on these boxes


def test_overlap_is_strictly_above_the_threshold_and_boxes_without_area_overlap_nothing() -> None:
    # IoU of these two is exactly 0.5 (intersection 10, union 20): not above, so both stay.
    boxes = np.array([[0, 0, 15, 1], [5, 0, 20, 1], [3, 3, 3, 3]], np.float32)
    over = overlaps(boxes, 0.5)
    assert not over[0, 1] and not over[2].any()
    assert greedy_nms(boxes, 0.5).all()
    model, keep, _ = _suppression_model(3, 0.5, "cluster")
    assert run_onnxruntime(model, {"boxes": boxes, "valid": np.ones(3, bool)})[keep].all()


def test_iou_suppression_stays_float32() -> None:
    writer = GraphWriter("t")
    iou_suppression(writer, "boxes", "valid", 4, iou_threshold=0.5)
    assert all(any(p.key == PRECISION_KEY and p.value == "float32" for p in n.metadata_props) for n in writer.nodes)
    with pytest.raises(ValueError, match="unknown IoU suppression method"):
        iou_suppression(writer, "boxes", "valid", 4, iou_threshold=0.5, method="soft")
