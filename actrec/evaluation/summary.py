"""The page people read after a run (reports/summary.md): headline figures, confusions, best and worst classes."""

from __future__ import annotations

from typing import Any

import pandas as pd


def _table(frame: pd.DataFrame) -> str:
    """A DataFrame as a Markdown table (no tabulate dependency)."""
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def _interval(metrics: dict[str, Any], name: str) -> str:
    return f"(95% interval {metrics[f'{name}_ci95_low']:.1%} to {metrics[f'{name}_ci95_high']:.1%})"


def verdict(metrics: dict[str, Any], head: str = "lstm") -> str:
    """One sentence: did the temporal head earn its keep against the linear probe on these test clips?"""
    if head == "probe":
        return (
            "The linear probe is this run's model: no head listed beside it validated better by more than "
            "`train.choice_margin` standard errors of their paired per-clip difference (reports/train/metrics.json "
            "has each one's validation accuracy, the errors and the rule), so temporal modelling did not earn its "
            "keep on this dataset."
        )
    if "linear_probe_top1" not in metrics:
        return "No linear probe could be fitted to compare the temporal head with."
    model = "Ensemble (the mean of the linear probe and a temporal head)" if head == "ensemble" else "Temporal head"
    head, probe = metrics["top1"], metrics["linear_probe_top1"]
    line = (
        f"{model} {head:.1%} vs linear probe {probe:.1%} (a logistic regression on the mean and standard "
        f"deviation of the frame features over time, fitted on the train and val clips): "
    )
    if probe > metrics["top1_ci95_high"]:
        return line + "the head does worse than the order-blind baseline; try `model.head: mean` or more data."
    if head > metrics["linear_probe_top1_ci95_high"]:
        return line + "temporal modelling earned its keep."
    return line + f"no difference these {metrics['test_clips']} test clips can tell apart."


def summary_markdown(
    metrics: dict[str, Any],
    per_class: pd.DataFrame,
    confused: pd.DataFrame,
    trained: dict[str, Any],
    heatmap: str = "confusion.png",
    best: int = 5,
) -> str:
    """The page a person reads after a run: headline figures, what gets confused, best and worst classes.

    `metrics` as written to metrics.json, `per_class` as per_class.csv, `confused` from
    metrics.most_confused, `trained` says what was trained (head, backbone, frames, dataset).
    """
    pct = "{:.1%}".format
    figures = pd.DataFrame(
        [
            ("top-1 accuracy", f"{pct(metrics['top1'])} {_interval(metrics, 'top1')}"),
            (
                "linear probe top-1 (the baseline)",
                f"{pct(metrics['linear_probe_top1'])} {_interval(metrics, 'linear_probe_top1')}"
                if "linear_probe_top1" in metrics
                else "not fitted: the train and val clips hold fewer than 2 classes",
            ),
            (
                "top-5 accuracy",
                pct(metrics["top5"])
                + (f" (only {len(per_class)} classes: every class is in the top 5)" if len(per_class) <= 5 else ""),
            ),
            ("macro-F1", f"{metrics['macro_f1']:.3f}"),
            ("mean per-class accuracy", pct(metrics["mean_class_accuracy"])),
            ("expected calibration error", f"{metrics['ece']:.3f} (0 = confidence matches accuracy)"),
            ("test clips", metrics["test_clips"]),
            ("clips skipped as unreadable", metrics["skipped_clips"]),
        ],
        columns=["figure", "value"],
    )
    present = per_class[per_class["support"] > 0].sort_values(
        ["accuracy", "f1", "class"], ascending=[False, False, True]
    )
    n_best = min(best, (len(present) + 1) // 2)
    shown = present.assign(
        accuracy=present["accuracy"].map(pct),
        precision=present["precision"].map(pct),
        f1=present["f1"].map("{:.3f}".format),
    )[["class", "accuracy", "precision", "f1", "support"]]
    if confused.empty:
        confusions = "No test clip was misclassified."
    else:
        confusions = _table(
            confused.assign(share=confused["share"].map(pct)).rename(
                columns={"predicted": "predicted as", "share": "share of actual class"}
            )
        )
    return (
        "\n\n".join(
            [
                "# Evaluation summary",
                f"{trained['head']} head on {trained['backbone']} features ({trained['frames']} frames, "
                f"{trained['views']} view(s) per video, {trained.get('input_size', trained['image_size'])} px); "
                f"dataset {trained.get('dataset', '?')}, test split. Accuracy of a class is its recall: the share "
                "of its test clips predicted as it.",
                _table(figures),
                verdict(metrics, trained["head"]),
                "## Most confused class pairs\n\nTest clips of the actual class predicted as another class.",
                confusions,
                f"## Best classes\n\n{_table(shown.head(n_best))}",
                f"## Worst classes\n\n{_table(shown.tail(min(best, len(present) - n_best)).iloc[::-1])}",
                f"## Confusion matrix\n\n![Row-normalised confusion matrix]({heatmap})",
                "Every class: per_class.csv; every test clip: predictions.csv. Compare runs with `dvc metrics diff` "
                "and `dvc plots diff`.",
            ]
        )
        + "\n"
    )


def run_report(metrics: dict[str, Any], training: dict[str, Any], reports: str = "reports") -> list[str]:
    """The few lines a run ends with (`actrec report`): the head kept and its evidence, test top-1 with
    its interval beside the linear probe's, and where to read and see more."""
    candidates = [name.removeprefix("weights_") for name in training if name.startswith("weights_")]
    score = "validation_accuracy_{}"
    scores = ", ".join(
        f"{head} {training[score.format(head)]:.3f} ± {training[score.format(head) + '_standard_error']:.3f}"
        for head in candidates
    )
    lines = [f"head kept: {training['head']}, by {training['chosen_by']}: {scores or 'no scores'}"]
    top1 = f"test top-1 {metrics['top1']:.3f} [{metrics['top1_ci95_low']:.3f}, {metrics['top1_ci95_high']:.3f}]"
    if "linear_probe_top1" in metrics:
        top1 += (
            f"; linear probe {metrics['linear_probe_top1']:.3f} [{metrics['linear_probe_top1_ci95_low']:.3f}, "
            f"{metrics['linear_probe_top1_ci95_high']:.3f}]"
        )
    lines.append(f"{top1} (95% intervals, {metrics['test_clips']} test clips)")
    lines.append(f"the whole story: {reports}/summary.md (per class, confusions, the heatmap)")
    lines.append("try it on a video: actrec serve (a page at http://127.0.0.1:7860) or actrec predict VIDEO")
    return lines
