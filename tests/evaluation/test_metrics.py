"""Evaluation metrics: calibration error, the most confused class pairs, the interval of top-1."""

from __future__ import annotations

import numpy as np
import pytest

from actrec.evaluation.metrics import expected_calibration_error, most_confused, summary_metrics, wilson_interval


def _probs(confidence: list[float], predicted: list[int], classes: int = 3) -> np.ndarray:
    """Rows whose top class is `predicted` with probability `confidence`, the rest spread evenly."""
    probs = np.zeros((len(confidence), classes))
    for row, (c, p) in enumerate(zip(confidence, predicted, strict=True)):
        probs[row] = (1 - c) / (classes - 1)
        probs[row, p] = c
    return probs


@pytest.mark.parametrize("correct, expected", [(8, 0.0), (5, 0.3), (10, 0.2)])
def test_ece_of_one_confidence_level(correct: int, expected: float) -> None:
    labels = np.zeros(10, dtype=int)
    predicted = [0] * correct + [1] * (10 - correct)
    probs = _probs([0.8] * 10, predicted)
    assert expected_calibration_error(labels, probs) == pytest.approx(expected)


def test_ece_weights_bins_by_their_clips() -> None:
    # 4 clips at 0.95, all right (gap 0.05); 4 at 0.55, half right (gap 0.05): ECE 0.05.
    # Then 2 more at 0.55, both wrong: that bin has 6 clips, 2 right (gap 0.55 - 1/3).
    labels = np.zeros(10, dtype=int)
    probs = _probs([0.95] * 4 + [0.55] * 6, [0] * 4 + [0, 0, 1, 1, 1, 1])
    assert expected_calibration_error(labels[:8], probs[:8]) == pytest.approx(0.05)
    assert expected_calibration_error(labels, probs) == pytest.approx((4 * 0.05 + 6 * (0.55 - 2 / 6)) / 10)
    assert summary_metrics(labels, probs)["ece"] == pytest.approx(expected_calibration_error(labels, probs))


def test_most_confused_orders_by_clips_then_share() -> None:
    matrix = np.array(
        [
            [5, 3, 0, 0],
            [1, 8, 0, 0],
            [0, 3, 1, 0],  # 3 of 4 clips: the same count as row 0's, a larger share
            [0, 0, 1, 9],
        ]
    )
    table = most_confused(matrix, ["a", "b", "c", "d"], n=3)
    assert table[["actual", "predicted", "clips"]].values.tolist() == [["c", "b", 3], ["a", "b", 3], ["b", "a", 1]]
    assert table["share"].tolist() == pytest.approx([0.75, 3 / 8, 1 / 9])
    assert most_confused(np.diag([3, 4]), ["a", "b"]).empty, "a perfect matrix has no confused pairs"


@pytest.mark.parametrize(
    "correct, n, low, high",
    [(9, 9, 0.701, 1.0), (6, 9, 0.354, 0.879), (0, 1, 0.0, 0.793), (950, 1000, 0.935, 0.962)],
)
def test_wilson_interval_is_wide_on_few_clips_and_narrow_on_many(correct: int, n: int, low: float, high: float) -> None:
    assert wilson_interval(correct, n) == pytest.approx((low, high), abs=1e-3)
    labels = np.array([0] * n)
    metrics = summary_metrics(labels, np.eye(2)[np.array([0] * correct + [1] * (n - correct))])
    assert (metrics["top1_ci95_low"], metrics["top1_ci95_high"]) == pytest.approx((low, high), abs=1e-3)
