"""Figures people read after a run: the confusion heatmap and the class-probability timeline of a video.

matplotlib Figures without pyplot: no display or GUI backend involved, nothing global to close.
Figure and font sizes grow with the number of classes so that 101 class names stay legible.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.colors import PowerNorm
from matplotlib.figure import Figure

from actrec.files import output_file

# Above this many classes the cells are too small to print a number in.
ANNOTATE_UP_TO = 20
# Lines in a timeline: more than this many classes in one legend cannot be told apart.
TIMELINE_CLASSES = 8


def save_figure(fig: Figure, path: str | Path) -> None:
    """Write a figure as PNG, complete or not at all (errors.output_file)."""
    with output_file(path) as tmp:
        fig.savefig(tmp, format="png")


def confusion_heatmap(matrix: np.ndarray, classes: list[str], title: str = "") -> Figure:
    """Row-normalised confusion matrix (each actual class sums to 1) with class names on both axes."""
    support = matrix.sum(1, keepdims=True)
    share = np.divide(matrix, support, out=np.zeros(matrix.shape, dtype=float), where=support > 0)
    n = len(classes)
    cell = 0.22 if n > ANNOTATE_UP_TO else 0.6  # inches per class
    side = max(6.0, n * cell + 3.0)
    font = 6 if n > 60 else 8 if n > ANNOTATE_UP_TO else 10
    fig = Figure(figsize=(side + 1.0, side), dpi=110 if n > ANNOTATE_UP_TO else 100)
    ax = fig.subplots()
    # A square-root colour scale: a 5% confusion stays visible next to a 90% diagonal.
    image = ax.imshow(share, cmap="Blues", norm=PowerNorm(0.5, vmin=0, vmax=1), interpolation="nearest")
    ax.set_xticks(range(n), classes, rotation=90, fontsize=font)
    ax.set_yticks(range(n), classes, fontsize=font)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("actual class")
    if n > ANNOTATE_UP_TO:  # faint grid lines to follow a row or column across the matrix
        ax.set_xticks(np.arange(-0.5, n), minor=True)
        ax.set_yticks(np.arange(-0.5, n), minor=True)
        ax.grid(which="minor", color="0.92", linewidth=0.3)
        ax.tick_params(which="minor", length=0)
    else:
        for i, j in zip(*np.nonzero(matrix), strict=True):
            ax.text(
                j,
                i,
                f"{share[i, j]:.0%}\n({matrix[i, j]})",
                ha="center",
                va="center",
                fontsize=font - 1,
                color="white" if share[i, j] > 0.3 else "black",
            )
    ax.set_title(title or "Confusion matrix (rows: share of each actual class)")
    fig.colorbar(image, ax=ax, fraction=0.03, pad=0.02, label="share of the actual class")
    fig.tight_layout()
    return fig


def probability_timeline(windows: pd.DataFrame, classes: list[str], title: str = "") -> Figure:
    """Class probabilities per window along the video, for the classes that win a window or score highest.

    `windows` has start_s, end_s and one probability column per class (named as the class).
    """
    probs = windows[classes].to_numpy()
    winners = list(dict.fromkeys(int(c) for c in probs.argmax(1)))
    by_mean = [int(c) for c in np.argsort(-probs.mean(0)) if c not in winners]
    shown = (winners + by_mean)[: max(TIMELINE_CLASSES, len(winners))]
    centre = (windows["start_s"] + windows["end_s"]).to_numpy() / 2
    fig = Figure(figsize=(max(8.0, min(24.0, len(windows) * 0.15)), 4.5), dpi=100)
    ax = fig.subplots()
    for c in shown:
        ax.plot(
            centre,
            probs[:, c],
            marker="o" if len(windows) <= 40 else None,
            markersize=3,
            linewidth=1.5,
            label=classes[c],
        )
    ax.set_ylim(0, 1.02)
    ax.set_xlim(windows["start_s"].min(), windows["end_s"].max())
    ax.set_xlabel("time (s), window centres")
    ax.set_ylabel("probability")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.set_title(title or "Class probabilities along the video")
    fig.tight_layout()
    return fig
