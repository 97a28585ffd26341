"""Evaluation metrics over predicted class probabilities, from scikit-learn."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    top_k_accuracy_score,
)


def summary_metrics(labels: np.ndarray, probs: np.ndarray, top_k: int = 5) -> dict[str, float | int]:
    """top-1, top-k, macro-F1 and mean per-class accuracy of probabilities (N, C) against labels (N,)."""
    classes = np.arange(probs.shape[1])
    preds = probs.argmax(1)
    # With fewer than k classes every label is in the top k (sklearn rejects k >= C for 2 classes).
    k = min(top_k, probs.shape[1])
    top_k_acc = top_k_accuracy_score(labels, probs, k=k, labels=classes) if k < len(classes) else 1.0
    per_class = per_class_table(labels, probs, [str(c) for c in classes])
    return {
        "top1": float(accuracy_score(labels, preds)),
        f"top{top_k}": float(top_k_acc),
        "macro_f1": float(f1_score(labels, preds, labels=classes, average="macro", zero_division=0)),
        "mean_class_accuracy": float(per_class.loc[per_class["support"] > 0, "accuracy"].mean()),
        "ece": expected_calibration_error(labels, probs),
        "test_clips": len(labels),
        **dict(
            zip(
                ("top1_ci95_low", "top1_ci95_high"),
                wilson_interval(int((preds == labels).sum()), len(labels)),
                strict=True,
            )
        ),
    }


# The figures people compare across runs (`dvc metrics show`, `dvc exp show`), under the names they go by there;
# every other figure of a run is in its full record (reports/metrics.json), a plain output.
COMPARED = {"top1": "top1", "top5": "top5", "macro_f1": "macro_f1", "linear_probe_top1": "probe_top1", "ece": "ece"}


def compared(metrics: dict[str, float | int], places: int = 4) -> dict[str, float]:
    """The few test figures DVC's tables show, rounded so that those tables stay narrow."""
    return {short: round(float(metrics[key]), places) for key, short in COMPARED.items() if key in metrics}


def wilson_interval(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of an accuracy of correct/n: honest on a handful of test clips, where
    the normal approximation would reach past 0 or 1 (9 clips all right: 0.70 to 1.00)."""
    if n == 0:
        return 0.0, 1.0
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, bins: int = 15) -> float:
    """How far the top-1 probability is from the accuracy it claims (0 = calibrated).

    Clips are binned by confidence into `bins` equal-width bins over (0, 1]; ECE is the
    clip-weighted mean of |accuracy - mean confidence| over the bins (Guo et al., 2017).
    """
    if not len(labels):
        return 0.0
    confidence = probs.max(1)
    correct = probs.argmax(1) == labels
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    gap = 0.0
    for b in np.unique(which):
        in_bin = which == b
        gap += in_bin.sum() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(gap / len(labels))


def per_class_table(labels: np.ndarray, probs: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """Accuracy (recall), precision, F1 and support for each class."""
    ids = np.arange(len(classes))
    preds = probs.argmax(1)
    precision, recall, f1, support = precision_recall_fscore_support(labels, preds, labels=ids, zero_division=0)
    return pd.DataFrame(
        {"class": classes, "accuracy": recall, "precision": precision, "recall": recall, "f1": f1, "support": support}
    )


def confusion(labels: np.ndarray, probs: np.ndarray, num_classes: int) -> np.ndarray:
    """Confusion counts (true class rows, predicted class columns)."""
    return confusion_matrix(labels, probs.argmax(1), labels=np.arange(num_classes))


def most_confused(matrix: np.ndarray, classes: list[str], n: int = 5) -> pd.DataFrame:
    """The n largest off-diagonal cells of a confusion matrix: actual, predicted, clips, share of actual."""
    off = matrix.copy()
    np.fill_diagonal(off, 0)
    rows, cols = np.nonzero(off)
    support = matrix.sum(1)
    table = pd.DataFrame(
        {
            "actual": [classes[i] for i in rows],
            "predicted": [classes[j] for j in cols],
            "clips": off[rows, cols],
            "share": off[rows, cols] / support[rows],
        }
    )
    return (
        table.sort_values(["clips", "share", "actual", "predicted"], ascending=[False, False, True, True])
        .head(n)
        .reset_index(drop=True)
    )
