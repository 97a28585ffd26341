"""Stage 4: train the temporal head on the cached features of the train split.

python -m pipeline.train  →  models/model.pt, reports/train/ (dvclive: metrics.json, per-epoch plots)

The checkpoint records the head, its options, the classes and how the features were made, so
evaluation and `actrec predict` rebuild exactly this model on exactly these features.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import torch
from dvclive import Live

from pipeline.errors import output_dir, output_file, run_main
from pipeline.extract import FEATURES
from pipeline.features import FeatureStoreError, differing_settings, load_features
from pipeline.params import load_params
from pipeline.training import head_options, keep_freed_memory, train_head

logger = logging.getLogger("pipeline.train")

MODEL = Path("models/model.pt")
LIVE_DIR = "reports/train"


def main() -> None:
    params = load_params()
    keep_freed_memory()
    for folder in (MODEL.parent, LIVE_DIR):
        output_dir(folder)
    data = load_features(FEATURES, parts=("train", "val"))
    stale = differing_settings(data.attrs, dataclasses.asdict(params.extract))
    if stale:
        raise FeatureStoreError(f"{FEATURES} was extracted otherwise than params.yaml says (extracted ≠ "
                                f"extract params: {stale}); run the extract stage first (dvc repro)")
    train, val = data.part("train"), data.part("val")
    if not len(train.labels):
        raise FeatureStoreError(f"{FEATURES} has no train clips")
    if not len(val.labels):
        logger.warning("no validation clips: early stopping watches the training accuracy")
    logger.info("training %s head on %d train / %d val clips, features %s",
                params.model.head, len(train.labels), len(val.labels), data.features.shape[1:])
    with Live(LIVE_DIR, dvcyaml=None, save_dvc_exp=False, report=None) as live:
        _, result = train_head(params.model, params.train, params.seed, train, val, live)
        live.summary = {"best_epoch": result.best_epoch, "epochs_run": result.epochs_run,
                        "best_val_accuracy": result.best_val_accuracy, "best_val_loss": result.best_val_loss}
    # Saved through a file object: torch.save would name the archive's inner folder after the
    # temporary file, and the same weights would then hash differently on every run.
    with output_file(MODEL) as tmp, open(tmp, "wb") as f:
        torch.save({
            "state_dict": result.state_dict,
            "head": params.model.head,
            "head_options": head_options(params.model),
            "input_dim": int(data.features.shape[-1]),
            "classes": data.classes,
            "features": {k: (v.item() if hasattr(v, "item") else v) for k, v in data.attrs.items()},
        }, f)
    logger.info("best epoch %d: val accuracy %.3f; saved %s", result.best_epoch, result.best_val_accuracy, MODEL)


if __name__ == "__main__":
    run_main(main)
