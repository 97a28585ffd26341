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

from pipeline.errors import run_main
from pipeline.extract import FEATURES
from pipeline.features import FeatureStoreError, load_features
from pipeline.models import build_head
from pipeline.params import load_params
from pipeline.training import fit

logger = logging.getLogger("pipeline.train")

MODEL = Path("models/model.pt")
LIVE_DIR = "reports/train"


def main() -> None:
    params = load_params()
    data = load_features(FEATURES, parts=("train", "val"))
    train, val = data.part("train"), data.part("val")
    if not len(train.labels):
        raise FeatureStoreError(f"{FEATURES} has no train clips")
    if not len(val.labels):
        logger.warning("no validation clips: early stopping watches the training loss")
    options = {k: v for k, v in dataclasses.asdict(params.model).items() if k != "head"}
    model = build_head(params.model.head, data.features.shape[-1], len(data.classes), **options)
    logger.info("training %s head on %d train / %d val clips, features %s",
                params.model.head, len(train.labels), len(val.labels), data.features.shape[1:])
    with Live(LIVE_DIR, dvcyaml=None, save_dvc_exp=False, report=None) as live:
        result = fit(model, train, val, params.train, params.seed, live)
        live.summary = {"best_epoch": result.best_epoch, "epochs_run": result.epochs_run,
                        "best_val_accuracy": result.best_val_accuracy, "best_val_loss": result.best_val_loss}
    MODEL.parent.mkdir(parents=True, exist_ok=True)
    torch.save({
        "state_dict": result.state_dict,
        "head": params.model.head,
        "head_options": options,
        "input_dim": int(data.features.shape[-1]),
        "classes": data.classes,
        "features": {k: (v.item() if hasattr(v, "item") else v) for k, v in data.attrs.items()},
    }, MODEL)
    logger.info("best epoch %d: val accuracy %.3f; saved %s", result.best_epoch, result.best_val_accuracy, MODEL)


if __name__ == "__main__":
    run_main(main)
