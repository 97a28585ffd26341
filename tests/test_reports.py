"""Evaluation outputs people read: calibration error, confused pairs, the heatmap and the summary page."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from pipeline.metrics import expected_calibration_error, most_confused, per_class_table, summary_metrics
from pipeline.plots import confusion_heatmap, save_figure
from pipeline.reports import summary_markdown

ROOT = Path(__file__).resolve().parents[1]


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
    matrix = np.array([[5, 3, 0, 0],
                       [1, 8, 0, 0],
                       [0, 3, 1, 0],   # 3 of 4 clips: the same count as row 0's, a larger share
                       [0, 0, 1, 9]])
    table = most_confused(matrix, ["a", "b", "c", "d"], n=3)
    assert table[["actual", "predicted", "clips"]].values.tolist() == [["c", "b", 3], ["a", "b", 3], ["b", "a", 1]]
    assert table["share"].tolist() == pytest.approx([0.75, 3 / 8, 1 / 9])
    assert most_confused(np.diag([3, 4]), ["a", "b"]).empty, "a perfect matrix has no confused pairs"


def test_heatmap_of_101_classes_is_large_enough_to_read(tmp_path: Path) -> None:
    names = [f"ClassName{i:03d}" for i in range(101)]
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(101), 5)
    preds = np.where(rng.random(len(labels)) < 0.7, labels, rng.integers(0, 101, len(labels)))
    matrix = np.zeros((101, 101), dtype=int)
    np.add.at(matrix, (labels, preds), 1)
    save_figure(confusion_heatmap(matrix, names), tmp_path / "confusion.png")
    small = tmp_path / "small.png"
    save_figure(confusion_heatmap(matrix[:5, :5], names[:5]), small)
    with Image.open(tmp_path / "confusion.png") as big, Image.open(small) as little:
        # 101 rows of class names need about 20 px each; a 5-class matrix stays small.
        assert min(big.size) >= 101 * 20 and max(little.size) < 1200
        pixels = np.asarray(big.convert("L"))
    assert pixels.min() < 80 and pixels.max() > 240, "dark diagonal cells on a light background"
    assert not list(tmp_path.glob(".*tmp")), "written under a temporary name, then renamed"


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
    run = {"head": "lstm", "backbone": "efficientnet_lite0", "frames": 16, "clips": 1, "image_size": 224,
           "dataset": "ucf101"}
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


def test_dvc_declares_the_new_outputs() -> None:
    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["evaluate"]
    outs = {next(iter(o)) if isinstance(o, dict) else o for o in stage["outs"]}
    plots = {next(iter(o)) if isinstance(o, dict) else o for o in stage["plots"]}
    assert "reports/summary.md" in outs and "reports/confusion.png" in plots
    assert {"pipeline/plots.py", "pipeline/reports.py"} <= set(stage["deps"])
