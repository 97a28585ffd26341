"""Stage 4: choose and train the head on the cached features of the train and val splits.

python -m pipeline.train --features features/features.h5 --out models/model.pt --live reports/train

The checkpoint records the head, its options, the classes and how the features were made, so
evaluation and `actrec predict` rebuild exactly this model on exactly these features. The live
folder holds dvclive's training curves and the best epoch's validation scores.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path

from dvclive import Live

from actrec.errors import run_main
from actrec.features.store import FeatureStoreError, differing_settings, load_features
from actrec.files import output_dir
from actrec.inference.checkpoint import Checkpoint
from actrec.params import load_params
from actrec.selection import choose_and_train
from actrec.training import keep_freed_memory

logger = logging.getLogger("pipeline.train")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=Path, required=True, help="feature file the extract stage wrote")
    parser.add_argument("--out", type=Path, required=True, help="checkpoint to write")
    parser.add_argument("--live", type=Path, required=True, help="dvclive folder: metrics.json and plots")
    args = parser.parse_args(argv)
    params = load_params()
    keep_freed_memory()
    for folder in (args.out.parent, args.live):
        output_dir(folder)
    data = load_features(args.features, parts=("train", "val"))
    stale = differing_settings(data.attrs, dataclasses.asdict(params.extract))
    if stale:
        raise FeatureStoreError(
            f"{args.features} was extracted otherwise than params.yaml says (extracted ≠ "
            f"extract params: {stale}); run the extract stage first (dvc repro)"
        )
    train, val = data.part("train"), data.part("val")
    if not len(train.labels):
        raise FeatureStoreError(f"{args.features} has no train clips")
    if not len(val.labels):
        logger.warning("no validation clips: early stopping watches the training accuracy")
    logger.info(
        "training %s on %d train / %d val clips, features %s",
        " or ".join(params.model.candidates()),
        len(train.labels),
        len(val.labels),
        data.features.shape[1:],
    )

    with Live(str(args.live), dvcyaml=None, save_dvc_exp=False, report=None) as live:
        model, choice, result = choose_and_train(params.model, params.train, params.seed, train, val, live)
        live.summary = {
            "head": choice.head,
            "chosen_by": choice.by,
            **{f"validation_accuracy_{head}": round(score, 4) for head, score in choice.scores.items()},
        }
        if result is not None:
            live.summary.update(
                {
                    "best_epoch": result.best_epoch,
                    "epochs_run": result.epochs_run,
                    "best_val_accuracy": result.best_val_accuracy,
                    "best_val_loss": result.best_val_loss,
                    "refit_epochs": result.refit_epochs,
                }
            )
    Checkpoint(
        head=choice.head,
        head_options=params.model.head_options(),
        input_dim=int(data.features.shape[-1]),
        classes=data.classes,
        features=data.attrs,
        state_dict=model.state_dict(),
    ).save(args.out)
    logger.info("%s chosen by %s; saved %s", choice.head, choice.by, args.out)


if __name__ == "__main__":
    run_main(main)
