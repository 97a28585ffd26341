"""The summary page: headline figures, the most confused pairs, the best and worst classes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from actrec.evaluation.metrics import most_confused, per_class_table, summary_metrics, wilson_interval
from actrec.evaluation.summary import summary_markdown, verdict


def _per_class() -> pd.DataFrame:
    labels = np.array([0] * 10 + [1] * 10 + [2] * 10)
    preds = np.array([0] * 10 + [1] * 7 + [2] * 3 + [2] * 5 + [1] * 5)
    return per_class_table(labels, np.eye(3)[preds], ["Archery", "Bowling", "Diving"]), labels, preds


def test_summary_page_has_the_figures_pairs_and_classes() -> None:
    per_class, labels, preds = _per_class()
    probs = np.eye(3)[preds]
    metrics = {**summary_metrics(labels, probs), "skipped_clips": 2}
    matrix = np.zeros((3, 3), dtype=int)
    np.add.at(matrix, (labels, preds), 1)
    trained = {
        "head": "lstm",
        "backbone": "efficientnet_lite0",
        "frames": 16,
        "views": 1,
        "image_size": 224,
        "dataset": "ucf101",
    }
    page = summary_markdown(metrics, per_class, most_confused(matrix, ["Archery", "Bowling", "Diving"]), trained)
    assert f"| top-1 accuracy | {(10 + 7 + 5) / 30:.1%} (95% interval 55.6% to 85.8%) |" in page
    assert "| linear probe top-1 (the baseline) | not fitted" in page
    assert "| clips skipped as unreadable | 2 |" in page and "| test clips | 30 |" in page
    assert "expected calibration error" in page
    pairs = page.split("## Most confused class pairs")[1].split("## Best classes")[0]
    assert pairs.index("| Diving | Bowling | 5 | 50.0% |") < pairs.index("| Bowling | Diving | 3 | 30.0% |")
    best = page.split("## Best classes")[1].split("## Worst classes")[0]
    worst = page.split("## Worst classes")[1]
    assert "| Archery | 100.0% |" in best and "Diving" not in best
    assert "| Diving | 50.0% |" in worst and "Archery" not in worst
    assert "![Row-normalised confusion matrix](confusion.png)" in page


@pytest.mark.parametrize(
    "head, probe, said",
    [
        (0.95, 0.60, "temporal modelling earned its keep"),
        (0.60, 0.95, "the head does worse than the order-blind baseline"),
        (0.80, 0.83, "no difference these 30 test clips can tell apart"),
    ],
)
def test_the_page_says_whether_the_head_beat_the_linear_probe(head: float, probe: float, said: str) -> None:
    metrics = {"top1": head, "test_clips": 30, "linear_probe_top1": probe}
    for name, value in (("top1", head), ("linear_probe_top1", probe)):
        low, high = wilson_interval(round(value * 30), 30)
        metrics |= {f"{name}_ci95_low": low, f"{name}_ci95_high": high}
    line = verdict(metrics)
    assert line.startswith(f"Temporal head {head:.1%} vs linear probe {probe:.1%}") and said in line
