"""The evaluate stage's reports for a run trained by the stages: metrics, the summary page, the heatmap."""

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
    assert f"| top-1 accuracy | {metrics['top1']:.1%} |" in page
    assert f"| test clips | {metrics['test_clips']} |" in page
    with Image.open(trained_run / "reports/confusion.png") as image:
        assert image.format == "PNG" and min(image.size) >= 400
