"""The evaluate stage's reports for a run trained by the stages: metrics with intervals and the linear probe,
the summary page, the heatmap."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from PIL import Image


def test_evaluate_writes_the_summary_page_and_heatmap(trained_run: Path) -> None:
    metrics = json.loads((trained_run / "reports/metrics.json").read_text())
    assert 0 <= metrics["ece"] <= 1
    assert metrics["test_clips"] == len(pd.read_csv(trained_run / "reports/predictions.csv")) > 0
    page = (trained_run / "reports/summary.md").read_text()
    assert f"| top-1 accuracy | {metrics['top1']:.1%} (95% interval {metrics['top1_ci95_low']:.1%}" in page
    assert metrics["top1_ci95_low"] <= metrics["top1"] <= metrics["top1_ci95_high"]
    # the baseline, fitted on the same features of the train and val clips
    assert 0 <= metrics["linear_probe_top1"] <= 1 and "linear_probe_top1_ci95_high" in metrics
    assert f"Temporal head {metrics['top1']:.1%} vs linear probe {metrics['linear_probe_top1']:.1%}" in page
    assert f"| test clips | {metrics['test_clips']} |" in page
    with Image.open(trained_run / "reports/confusion.png") as image:
        assert image.format == "PNG" and min(image.size) >= 400
