"""Figures: the confusion heatmap stays legible at 101 classes and is written whole."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from actrec.evaluation.plots import confusion_heatmap, save_figure


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
