"""The summary page: headline figures, the most confused pairs, the best and worst classes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from actrec.evaluation.metrics import most_confused, per_class_table, summary_metrics
from actrec.evaluation.summary import summary_markdown


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
    run = {
        "head": "lstm",
        "backbone": "efficientnet_lite0",
        "frames": 16,
        "clips": 1,
        "image_size": 224,
        "dataset": "ucf101",
    }
    page = summary_markdown(metrics, per_class, most_confused(matrix, ["Archery", "Bowling", "Diving"]), run)
    assert f"| top-1 accuracy | {(10 + 7 + 5) / 30:.1%} |" in page
    assert "| clips skipped as unreadable | 2 |" in page and "| test clips | 30 |" in page
    assert "expected calibration error" in page
    pairs = page.split("## Most confused class pairs")[1].split("## Best classes")[0]
    assert pairs.index("| Diving | Bowling | 5 | 50.0% |") < pairs.index("| Bowling | Diving | 3 | 30.0% |")
    best = page.split("## Best classes")[1].split("## Worst classes")[0]
    worst = page.split("## Worst classes")[1]
    assert "| Archery | 100.0% |" in best and "Diving" not in best
    assert "| Diving | 50.0% |" in worst and "Archery" not in worst
    assert "![Row-normalised confusion matrix](confusion.png)" in page
