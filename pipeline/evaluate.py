"""Stage 5: evaluate the trained head on the test split.

python -m pipeline.evaluate --model models/model.pt --features features/features.h5 \
    --subset-report reports/subset.json --failed reports/extract_failed.csv --out reports

Writes into the --out folder: metrics.json (every figure of the test split), predictions.csv (DVC confusion
plot), per_class.csv (DVC bar plot of per-class accuracy), confusion.png (row-normalised heatmap) and
summary.md (the page to read after a run); and to --scores the few figures DVC's tables compare across runs
(DVC metrics). Features are read from the file a chunk at a time.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import pandas as pd

from actrec.errors import run_main
from actrec.evaluation.metrics import compared, confusion, most_confused, per_class_table, summary_metrics
from actrec.evaluation.plots import confusion_heatmap, save_figure
from actrec.evaluation.summary import summary_markdown
from actrec.features.store import FeatureStoreError
from actrec.features.stream import open_features
from actrec.files import output_dir, output_file, write_json
from actrec.model.checkpoint import load_model
from actrec.model.proba import predict_proba
from actrec.model.probe import linear_probe

logger = logging.getLogger("pipeline.evaluate")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="checkpoint the train stage wrote")
    parser.add_argument("--features", type=Path, required=True, help="feature file the extract stage wrote")
    parser.add_argument("--subset-report", type=Path, required=True, help="the subset stage's counts (JSON)")
    parser.add_argument("--failed", type=Path, required=True, help="the extract stage's failed clips (CSV)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the reports")
    parser.add_argument("--scores", type=Path, required=True, help="the figures DVC compares (JSON, DVC metrics)")
    args = parser.parse_args(argv)
    model, checkpoint = load_model(args.model)
    # Streamed: each clip is read once, a chunk at a time, however large the file.
    test, fit = open_features(args.features, ("test",)), open_features(args.features, ("train", "val"))
    if not len(test.labels):
        raise FeatureStoreError(f"{args.features} has no test clips")
    checkpoint.check_features(test, args.model, args.features)
    output_dir(args.out)

    probs = predict_proba(model, test.features)
    metrics = summary_metrics(test.labels, probs)
    baseline = linear_probe(fit.features, fit.labels, test.features, len(test.classes))
    if baseline is not None:  # the same features, pooled over time: what the temporal head must beat
        probe = summary_metrics(test.labels, baseline)
        metrics.update({f"linear_probe_{k}": probe[k] for k in ("top1", "top1_ci95_low", "top1_ci95_high")})
    # the failed clips' list, not the extraction report, whose timings change with every extraction run
    metrics["skipped_clips"] = len(pd.read_csv(args.failed)) + json.loads(args.subset_report.read_text()).get(
        "unreadable", 0
    )
    write_json(args.out / "metrics.json", metrics)
    output_dir(args.scores.parent)
    write_json(args.scores, compared(metrics))
    names = test.classes
    predictions = pd.DataFrame(
        {
            "clip_id": test.clip_ids,
            "actual": [names[i] for i in test.labels],
            "predicted": [names[i] for i in probs.argmax(1)],
            "confidence": probs.max(1).round(4),
        }
    )
    per_class = per_class_table(test.labels, probs, names).round(4)
    for name, table in (("predictions.csv", predictions), ("per_class.csv", per_class)):
        with output_file(args.out / name) as tmp:
            table.to_csv(tmp, index=False)
    matrix = confusion(test.labels, probs, len(names))
    title = f"Confusion matrix, {len(test.labels)} test clips, top-1 {metrics['top1']:.1%}"
    save_figure(confusion_heatmap(matrix, names, title), args.out / "confusion.png")
    trained = {**checkpoint.features, "head": checkpoint.head}
    with output_file(args.out / "summary.md") as tmp:
        tmp.write_text(summary_markdown(metrics, per_class, most_confused(matrix, names), trained))
    logger.info(
        "test: top-1 %.3f, top-5 %.3f, macro-F1 %.3f on %d clips",
        metrics["top1"],
        metrics["top5"],
        metrics["macro_f1"],
        metrics["test_clips"],
    )


if __name__ == "__main__":
    run_main(main)
