"""Miss-rate/FPPI evaluation and detector comparison on hand-made frames."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from graphopt.detections import Detections
from graphopt.evaluation import (
    LOG_AVERAGE_FPPI,
    compare_detections,
    evaluate,
    iou_matrix,
    match_frame,
    precision_recall,
)


def dets(*items: tuple[float, tuple[float, float, float, float]]) -> Detections:
    """Detections from ``(score, box)`` pairs, in any order."""
    if not items:
        return Detections.empty()
    scores = np.array([score for score, _ in items], dtype=np.float32)
    boxes = np.array([box for _, box in items], dtype=np.float32)
    return Detections.from_arrays(boxes, scores)


def gt(*boxes: tuple[float, float, float, float]) -> np.ndarray:
    return np.array(boxes, dtype=np.float32).reshape(-1, 4)


# ---------------------------------------------------------------- IoU


def test_iou_identical_disjoint_and_half_overlap() -> None:
    a = np.array([[0, 0, 2, 1], [0, 0, 2, 1], [0, 0, 2, 1]], dtype=np.float32)
    b = np.array([[0, 0, 2, 1], [5, 5, 6, 6], [1, 0, 3, 1]], dtype=np.float32)
    iou = iou_matrix(a, b)
    assert iou.shape == (3, 3)
    assert iou[0, 0] == pytest.approx(1.0)
    assert iou[1, 1] == 0.0
    assert iou[2, 2] == pytest.approx(1 / 3)


def test_iou_touching_boxes_and_empty_inputs() -> None:
    # Continuous coordinates: boxes sharing an edge do not overlap.
    assert iou_matrix(gt((0, 0, 1, 1)), gt((1, 0, 2, 1)))[0, 0] == 0.0
    # A degenerate box has no area and overlaps nothing.
    assert iou_matrix(gt((0, 0, 0, 0)), gt((0, 0, 0, 0)))[0, 0] == 0.0
    assert iou_matrix(np.zeros((0, 4)), gt((0, 0, 1, 1))).shape == (0, 1)
    assert iou_matrix(gt((0, 0, 1, 1)), np.zeros((0, 4))).shape == (1, 0)


def test_iou_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        iou_matrix(np.zeros((2, 3)), np.zeros((1, 4)))


# ---------------------------------------------------------------- matching


def test_higher_score_steals_the_ground_truth() -> None:
    # The 0.8 detection fits the person exactly, but the 0.9 one comes first.
    frame = dets((0.8, (0, 0, 10, 10)), (0.9, (2, 0, 12, 10)))
    match = match_frame(frame, gt((0, 0, 10, 10)))
    assert frame.scores.tolist() == pytest.approx([0.9, 0.8])
    assert match.true_positive.tolist() == [True, False]
    assert match.matched_gt.tolist() == [0, -1]
    assert match.gt_matched.tolist() == [True]
    assert (match.true_positives, match.false_positives, match.misses) == (1, 1, 0)


def test_duplicate_detections_of_one_person() -> None:
    match = match_frame(dets((0.9, (0, 0, 10, 10)), (0.7, (1, 0, 11, 10))), gt((0, 0, 10, 10)))
    assert match.true_positive.tolist() == [True, False]


def test_best_overlap_wins_and_ties_go_to_lowest_gt_index() -> None:
    # Both ground-truth boxes overlap the detection by 7/13.
    boxes = gt((0, 0, 10, 10), (6, 0, 16, 10))
    match = match_frame(dets((0.9, (3, 0, 13, 10)), (0.8, (3, 0, 13, 10))), boxes)
    assert match.matched_gt.tolist() == [0, 1]
    # Without a tie the larger IoU wins, whatever the index.
    match = match_frame(dets((0.9, (5, 0, 15, 10))), boxes)
    assert match.matched_gt.tolist() == [1]


def test_iou_exactly_at_and_just_below_threshold() -> None:
    person = gt((0, 0, 2, 1))
    assert match_frame(dets((0.9, (0, 0, 1, 1))), person).true_positive.tolist() == [True]  # IoU 0.5
    assert match_frame(dets((0.9, (0, 0, 0.98, 1))), person).true_positive.tolist() == [False]  # IoU 0.49
    assert match_frame(dets((0.9, (0, 0, 0.98, 1))), person, iou_threshold=0.4).true_positive.tolist() == [True]


def test_empty_frames() -> None:
    match = match_frame(Detections.empty(), np.zeros((0, 4)))
    assert match.true_positive.shape == (0,) and match.gt_matched.shape == (0,)
    match = match_frame(Detections.empty(), gt((0, 0, 1, 1)))
    assert match.gt_matched.tolist() == [False] and match.misses == 1
    match = match_frame(dets((0.5, (0, 0, 1, 1))), np.zeros((0, 4)))
    assert match.true_positive.tolist() == [False] and match.matched_gt.tolist() == [-1]


def test_bad_iou_threshold() -> None:
    with pytest.raises(ValueError, match="IoU threshold"):
        match_frame(Detections.empty(), np.zeros((0, 4)), iou_threshold=0.0)


# ---------------------------------------------------------------- the curve

# Four frames, five people; the scores are exact in float32.
#   frame 0: people A, B; 0.875 finds A, 0.5 finds B, 0.25 is a false positive.
#   frame 1: person C; 0.75 finds C, 0.625 is a second detection of C (false positive).
#   frame 2: nobody; 0.5 and 0.125 are false positives (0.5 ties with frame 0's hit).
#   frame 3: people D, E; 0.375 finds D, E is never found.
FOUR_FRAMES_DETECTIONS = [
    dets((0.875, (0, 0, 10, 10)), (0.5, (20, 0, 30, 10)), (0.25, (50, 50, 60, 60))),
    dets((0.75, (0, 0, 10, 10)), (0.625, (1, 0, 11, 10))),
    dets((0.5, (0, 0, 10, 10)), (0.125, (30, 30, 40, 40))),
    dets((0.375, (0, 0, 10, 20))),
]
FOUR_FRAMES_GT = [
    gt((0, 0, 10, 10), (20, 0, 30, 10)),
    gt((0, 0, 10, 10)),
    gt(),
    gt((0, 0, 10, 20), (40, 0, 50, 20)),
]
# (threshold, true positives, false positives) → fppi = FP / 4, miss rate = 1 - TP / 5
FOUR_FRAMES_CURVE = [
    (0.875, 0.00, 0.8),  # TP 1, FP 0
    (0.75, 0.00, 0.6),  # TP 2, FP 0
    (0.625, 0.25, 0.6),  # TP 2, FP 1
    (0.5, 0.50, 0.4),  # TP 3, FP 2: the tied hit and false positive enter together
    (0.375, 0.50, 0.2),  # TP 4, FP 2
    (0.25, 0.75, 0.2),  # TP 4, FP 3
    (0.125, 1.00, 0.2),  # TP 4, FP 4
]


def test_hand_computed_curve() -> None:
    curve = evaluate(FOUR_FRAMES_DETECTIONS, FOUR_FRAMES_GT)
    assert (curve.frames, curve.ground_truths, len(curve)) == (4, 5, 7)
    points = np.stack([curve.thresholds, curve.fppi, curve.miss_rate], axis=1)
    np.testing.assert_allclose(points, np.array(FOUR_FRAMES_CURVE), atol=1e-12)


def test_reading_the_curve() -> None:
    curve = evaluate(FOUR_FRAMES_DETECTIONS, FOUR_FRAMES_GT)
    assert curve.miss_rate_at(0.1) == pytest.approx(0.6)
    assert curve.threshold_at(0.1) == 0.75
    assert curve.miss_rate_at(1.0) == pytest.approx(0.2)
    # 0.375, 0.25 and 0.125 all reach 0.2; the highest threshold has the fewest false positives.
    assert curve.threshold_at(1.0) == 0.375
    assert curve.miss_rate_at(0.5) == pytest.approx(0.2)
    assert curve.miss_rate_at(0.3) == pytest.approx(0.6)


def test_nothing_within_the_target_fppi() -> None:
    # The only detection is a false positive in the only frame: FPPI 1 at every threshold.
    curve = evaluate([dets((0.5, (50, 50, 60, 60)))], [gt((0, 0, 10, 10))])
    assert curve.miss_rate_at(0.1) == 1.0
    assert curve.threshold_at(0.1) == math.inf
    assert curve.miss_rate_at(1.0) == 1.0


def test_ties_enter_together_whatever_the_order() -> None:
    curve = evaluate(FOUR_FRAMES_DETECTIONS, FOUR_FRAMES_GT)
    reordered = [2, 0, 3, 1]
    swapped = evaluate([FOUR_FRAMES_DETECTIONS[i] for i in reordered], [FOUR_FRAMES_GT[i] for i in reordered])
    np.testing.assert_array_equal(curve.thresholds, swapped.thresholds)
    np.testing.assert_allclose(curve.fppi, swapped.fppi)
    np.testing.assert_allclose(curve.miss_rate, swapped.miss_rate)
    # No operating point with only one of the two 0.5 detections: neither (0.25, 0.4) nor (0.5, 0.6).
    points = set(zip(curve.fppi.tolist(), np.round(curve.miss_rate, 9).tolist(), strict=True))
    assert (0.25, 0.4) not in points and (0.5, 0.6) not in points


def test_ties_within_one_frame() -> None:
    # Two equal-score detections of one person: one hit, one false positive, one operating point.
    curve = evaluate([dets((0.5, (0, 0, 10, 10)), (0.5, (0, 0, 10, 10)))], [gt((0, 0, 10, 10))])
    assert curve.thresholds.tolist() == [0.5]
    assert curve.fppi.tolist() == [1.0] and curve.miss_rate.tolist() == [0.0]


def test_log_average_miss_rate_of_the_four_frames() -> None:
    curve = evaluate(FOUR_FRAMES_DETECTIONS, FOUR_FRAMES_GT)
    # Samples 0.01 … 0.316 read FPPI 0 or 0.25 (miss rate 0.6); 0.562 and 1.0 read FPPI 0.5 (0.2).
    expected = math.exp((7 * math.log(0.6) + 2 * math.log(0.2)) / 9)
    assert curve.log_average_miss_rate() == pytest.approx(expected)


def test_log_average_miss_rate_with_no_point_below_one_fppi() -> None:
    # One frame: a false positive at 0.9 then the person at 0.5, so FPPI is 1 at both points.
    curve = evaluate([dets((0.9, (50, 50, 60, 60)), (0.5, (0, 0, 10, 10)))], [gt((0, 0, 10, 10))])
    assert curve.fppi.tolist() == [1.0, 1.0] and curve.miss_rate.tolist() == [1.0, 0.0]
    # Eight samples read 1.0 (no point), the last reads 0 (floored at 1e-10).
    assert curve.log_average_miss_rate() == pytest.approx(10 ** (-10 / 9))
    assert len(LOG_AVERAGE_FPPI) == 9
    assert LOG_AVERAGE_FPPI[0] == pytest.approx(0.01) and LOG_AVERAGE_FPPI[-1] == pytest.approx(1.0)


def test_curve_to_dict_is_json() -> None:
    data = json.loads(json.dumps(evaluate(FOUR_FRAMES_DETECTIONS, FOUR_FRAMES_GT).to_dict()))
    assert data["frames"] == 4 and data["ground_truths"] == 5
    assert data["miss_rate_at_0.1_fppi"] == pytest.approx(0.6)
    assert len(data["thresholds"]) == len(data["fppi"]) == len(data["miss_rate"]) == 7


def test_evaluate_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match="detections for 1 frames but ground truth for 2"):
        evaluate([Detections.empty()], [gt(), gt()])
    with pytest.raises(ValueError, match="no frames"):
        evaluate([], [])
    with pytest.raises(ValueError, match="undefined"):
        evaluate([dets((0.5, (0, 0, 1, 1)))], [gt()])
    with pytest.raises(ValueError, match="NaN"):
        evaluate([dets((float("nan"), (0, 0, 1, 1)))], [gt((0, 0, 1, 1))])


def test_no_detections_at_all() -> None:
    curve = evaluate([Detections.empty()], [gt((0, 0, 1, 1))])
    assert len(curve) == 0
    assert curve.miss_rate_at(1.0) == 1.0
    assert curve.log_average_miss_rate() == pytest.approx(1.0)


# ---------------------------------------------------------------- comparison


def test_identical_sets() -> None:
    result = compare_detections(FOUR_FRAMES_DETECTIONS, FOUR_FRAMES_DETECTIONS)
    assert result.identical and result.identical_frames == result.frames == 4
    assert (result.matched, result.missing, result.extra) == (8, 0, 0)
    assert result.max_abs_score_difference == 0.0
    assert result.mean_iou == pytest.approx(1.0)
    assert all(frame.identical for frame in result.per_frame)


def test_shifted_box_is_matched_but_not_identical() -> None:
    reference = [dets((0.9, (0, 0, 10, 10)))]
    candidate = [dets((0.9, (1, 0, 11, 10)))]
    result = compare_detections(reference, candidate)
    (pair,) = result.per_frame[0].pairs
    assert (pair.reference, pair.candidate) == (0, 0)
    assert pair.iou == pytest.approx(9 / 11)
    assert not result.per_frame[0].identical and result.identical_frames == 0
    # A looser tolerance accepts it.
    assert compare_detections(reference, candidate, identical_iou=0.8).identical


def test_one_missing_and_one_extra() -> None:
    reference = [dets((0.9, (0, 0, 10, 10)), (0.8, (20, 0, 30, 10)))]
    candidate = [dets((0.9, (0, 0, 10, 10)), (0.7, (50, 0, 60, 10)))]
    result = compare_detections(reference, candidate)
    frame = result.per_frame[0]
    assert frame.missing == (1,) and frame.extra == (1,)
    assert (result.matched, result.missing, result.extra) == (1, 1, 1)
    assert not frame.identical


def test_score_differences() -> None:
    reference = [dets((0.5, (0, 0, 10, 10)), (0.25, (20, 0, 30, 10)))]
    candidate = [dets((0.625, (0, 0, 10, 10)), (0.0, (20, 0, 30, 10)))]
    result = compare_detections(reference, candidate)
    assert [pair.score_difference for pair in result.per_frame[0].pairs] == pytest.approx([0.125, -0.25])
    assert result.max_abs_score_difference == pytest.approx(0.25)
    assert result.mean_abs_score_difference == pytest.approx(0.1875)
    assert result.median_abs_score_difference == pytest.approx(0.1875)
    assert result.identical_frames == 0
    assert compare_detections(reference, candidate, score_tolerance=0.3).identical


def test_scores_on_different_scales_are_not_compared() -> None:
    reference = [dets((0.9, (0, 0, 10, 10)))]
    candidate = [dets((2.2, (0, 0, 10, 10)))]  # a logit margin
    result = compare_detections(reference, candidate, compare_scores=False)
    assert result.identical
    assert result.per_frame[0].pairs[0].score_difference is None
    assert result.max_abs_score_difference is None and result.median_abs_score_difference is None
    assert "score" not in result.summary()


def test_candidate_order_follows_reference_scores() -> None:
    # The reference's higher-scored box takes the candidate both overlap; the other finds none.
    reference = [dets((0.8, (0, 0, 10, 10)), (0.9, (2, 0, 12, 10)))]
    candidate = [dets((0.9, (1, 0, 11, 10)))]
    frame = compare_detections(reference, candidate).per_frame[0]
    assert [(pair.reference, pair.candidate) for pair in frame.pairs] == [(0, 0)]
    assert frame.missing == (1,)


def test_comparison_summary_and_dict() -> None:
    result = compare_detections(FOUR_FRAMES_DETECTIONS, [*FOUR_FRAMES_DETECTIONS[:3], Detections.empty()])
    summary = result.summary()
    assert "\n" not in summary
    assert summary.startswith("3/4 frames identical; 7 matched, 1 missing, 0 extra")
    data = json.loads(json.dumps(result.to_dict()))
    assert data["missing"] == 1 and len(data["per_frame"]) == 4
    assert data["per_frame"][3]["missing"] == [0]


def test_comparison_of_empty_frames() -> None:
    result = compare_detections([Detections.empty()], [Detections.empty()])
    assert result.identical and result.matched == 0
    assert result.mean_iou is None and result.max_abs_score_difference is None


def test_comparison_rejects_different_frame_counts() -> None:
    with pytest.raises(ValueError, match="for 2 frames but candidate detections for 1"):
        compare_detections([Detections.empty(), Detections.empty()], [Detections.empty()])


# ---------------------------------------------------------------- precision, recall, AP

FAR = (500.0, 500.0, 510.0, 510.0)  # overlaps no ground-truth box: a false positive


def _voc_ap(hits: list[bool], ground_truths: int) -> float:
    """PASCAL VOC 2010's all-point AP, written as its devkit writes it (padded ends, envelope, recall steps)."""
    tp = np.cumsum(hits)
    fp = np.cumsum(np.logical_not(hits))
    mrec = np.concatenate([[0.0], tp / ground_truths, [1.0]])
    mpre = np.concatenate([[0.0], tp / (tp + fp), [0.0]])
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    steps = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


def test_average_precision_by_hand_and_as_the_voc_devkit() -> None:
    # Three people in two frames; by descending score: hit, miss, hit, miss, hit.
    frames = [
        dets((0.9, (0, 0, 10, 10)), (0.6, FAR)),
        dets((0.8, FAR), (0.7, (20, 0, 30, 10)), (0.5, (40, 0, 50, 10))),
    ]
    truth = [gt((0, 0, 10, 10)), gt((20, 0, 30, 10), (40, 0, 50, 10))]
    curve = precision_recall(frames, truth)
    assert curve.recall == pytest.approx([1 / 3, 1 / 3, 2 / 3, 2 / 3, 1.0])
    assert curve.precision == pytest.approx([1.0, 1 / 2, 2 / 3, 1 / 2, 3 / 5])
    # The envelope is 1, 2/3, 3/5 over the three recall steps of 1/3.
    assert curve.average_precision() == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    assert curve.average_precision() == pytest.approx(_voc_ap([True, False, True, False, True], 3))


def test_average_precision_takes_the_envelope_not_the_raw_precision() -> None:
    # Two people; hit, miss, miss, hit: precision falls to 1/3, then rises to 1/2 at full recall.
    frames = [dets((0.9, (0, 0, 10, 10)), (0.8, FAR), (0.7, (600, 0, 610, 10)), (0.6, (20, 0, 30, 10)))]
    curve = precision_recall(frames, [gt((0, 0, 10, 10), (20, 0, 30, 10))])
    assert curve.average_precision() == pytest.approx(0.5 * 1.0 + 0.5 * 0.5)
    assert curve.average_precision() == pytest.approx(_voc_ap([True, False, False, True], 2))


def test_average_precision_of_a_perfect_a_blind_and_a_partial_detector() -> None:
    truth = [gt((0, 0, 10, 10)), gt((20, 0, 30, 10))]
    perfect = precision_recall([dets((0.9, (0, 0, 10, 10))), dets((0.3, (20, 0, 30, 10)))], truth)
    assert perfect.average_precision() == pytest.approx(1.0)
    blind = precision_recall([Detections.empty(), Detections.empty()], truth)
    assert len(blind) == 0 and blind.average_precision() == 0.0
    # Recall that is never reached adds nothing: half the people found, all detections right.
    half = precision_recall([dets((0.9, (0, 0, 10, 10))), Detections.empty()], truth)
    assert half.average_precision() == pytest.approx(0.5)


def test_equal_scores_enter_the_precision_recall_curve_together() -> None:
    # A hit and a false positive at the same score: no threshold keeps one without the other.
    curve = precision_recall([dets((0.5, FAR), (0.5, (0, 0, 10, 10)))], [gt((0, 0, 10, 10))])
    assert len(curve) == 1
    assert curve.average_precision() == pytest.approx(0.5)


def test_precision_recall_operating_point_and_dict() -> None:
    frames = [dets((0.9, (0, 0, 10, 10)), (0.4, FAR))]
    curve = precision_recall(frames, [gt((0, 0, 10, 10), (20, 0, 30, 10))])
    assert curve.point_at_threshold(0.5) == {"threshold": pytest.approx(0.9), "precision": 1.0, "recall": 0.5}
    assert curve.point_at_threshold(0.1)["precision"] == pytest.approx(0.5)
    assert curve.point_at_threshold(0.95) == {"threshold": 0.95, "precision": 1.0, "recall": 0.0}
    data = json.loads(json.dumps(curve.to_dict()))
    assert data["average_precision"] == pytest.approx(0.5) and data["ground_truths"] == 2


def test_precision_recall_needs_ground_truth() -> None:
    with pytest.raises(ValueError, match="undefined"):
        precision_recall([dets((0.9, (0, 0, 10, 10)))], [gt()])
    with pytest.raises(ValueError, match="no frames"):
        precision_recall([], [])
