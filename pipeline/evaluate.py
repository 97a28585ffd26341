"""Stage 5: evaluate the trained head on the test split.

python -m pipeline.evaluate  →  reports/metrics.json (DVC metrics), reports/predictions.csv
(DVC confusion plot), reports/per_class.csv (DVC bar plot of per-class accuracy),
reports/confusion.png (row-normalised heatmap) and reports/summary.md (the page to read after a run)
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from pipeline.errors import output_file, run_main
from pipeline.extract import FEATURES
from pipeline.features import MATCHED_SETTINGS, FeatureStoreError, differing_settings, load_features
from pipeline.inference import load_model
from pipeline.metrics import confusion, most_confused, per_class_table, summary_metrics
from pipeline.plots import confusion_heatmap, save_figure
from pipeline.reports import summary_markdown, write_json
from pipeline.train import MODEL
from pipeline.training import predict_proba

logger = logging.getLogger("pipeline.evaluate")

REPORTS = Path("reports")


def main() -> None:
    model, checkpoint = load_model(MODEL)
    test = load_features(FEATURES, parts=("test",))
    if not len(test.labels):
        raise FeatureStoreError(f"{FEATURES} has no test clips")
    if test.classes != checkpoint["classes"]:
        raise FeatureStoreError(f"{MODEL} was trained on other classes than {FEATURES} holds; run train again")
    stale = differing_settings({**checkpoint["features"], "feature_dim": checkpoint["input_dim"]}, test.attrs,
                               (*MATCHED_SETTINGS, "feature_dim"))
    if stale:
        raise FeatureStoreError(f"{MODEL} was trained on other features than {FEATURES} holds (model ≠ feature "
                                f"file: {stale}); run train again (dvc repro)")
    probs = predict_proba(model, test.features)
    metrics = summary_metrics(test.labels, probs)
    # the failed clips' list, not extract.json, whose timings change with every extraction run
    skipped = len(pd.read_csv(REPORTS / "extract_failed.csv")) + \
        json.loads((REPORTS / "subset.json").read_text()).get("unreadable", 0)
    metrics["skipped_clips"] = skipped
    write_json(REPORTS / "metrics.json", metrics)
    names = test.classes
    pd.DataFrame({"clip_id": test.clip_ids, "actual": [names[i] for i in test.labels],
                  "predicted": [names[i] for i in probs.argmax(1)],
                  "confidence": probs.max(1).round(4)}).to_csv(REPORTS / "predictions.csv", index=False)
    per_class = per_class_table(test.labels, probs, names).round(4)
    per_class.to_csv(REPORTS / "per_class.csv", index=False)
    matrix = confusion(test.labels, probs, len(names))
    title = f"Confusion matrix, {len(test.labels)} test clips, top-1 {metrics['top1']:.1%}"
    save_figure(confusion_heatmap(matrix, names, title), REPORTS / "confusion.png")
    run = {**checkpoint["features"], "head": checkpoint["head"]}
    with output_file(REPORTS / "summary.md") as tmp:
        tmp.write_text(summary_markdown(metrics, per_class, most_confused(matrix, names), run))
    logger.info("test: top-1 %.3f, top-5 %.3f, macro-F1 %.3f on %d clips",
                metrics["top1"], metrics["top5"], metrics["macro_f1"], metrics["test_clips"])


if __name__ == "__main__":
    run_main(main)
