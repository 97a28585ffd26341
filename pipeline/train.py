"""Stage 4: choose and train the head on the cached features of the train and val splits.

python -m pipeline.train --features features/features.h5 --out models/model.pt --live reports/train

The checkpoint records the head, its options, the classes and how the features were made, so
evaluation and `actrec predict` rebuild exactly this model on exactly these features. The live
folder holds dvclive's training curves and the best epoch's validation scores. Features are held in
memory where they fit, else streamed from the file (the log says which). Under `torchrun
--nproc-per-node N -m pipeline.train ...` the ranks train one model with DistributedDataParallel
(nccl on GPUs, gloo on CPU), each on its share of every batch; rank 0 writes the checkpoint and logs.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from contextlib import nullcontext
from pathlib import Path

from dvclive import Live

from actrec import runtime
from actrec.errors import run_main
from actrec.features.store import FeatureStoreError, asked_settings, differing_settings
from actrec.features.stream import load_for_training, per_rank_batch
from actrec.files import output_dir, write_json
from actrec.model.checkpoint import Checkpoint
from actrec.model.selection import choose_and_train
from actrec.model.training import keep_freed_memory
from actrec.params import load_params

logger = logging.getLogger("pipeline.train")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=Path, required=True, help="feature file the extract stage wrote")
    parser.add_argument("--out", type=Path, required=True, help="checkpoint to write")
    parser.add_argument("--live", type=Path, required=True, help="dvclive folder: metrics.json and plots")
    parser.add_argument("--scores", type=Path, required=True, help="each candidate's validation accuracy (JSON)")
    args = parser.parse_args(argv)
    params = load_params()
    keep_freed_memory()
    run = runtime.start()
    world = run.world
    per_rank_batch(params.train.batch_size, world)  # a batch that cannot be shared out fails before any work
    if not world.is_main:
        logging.getLogger("actrec").setLevel(logging.WARNING)  # rank 0 speaks for all: the figures are shared
    train, val = load_for_training(args.features, ("train", "val"))
    stale = differing_settings(asked_settings(train.attrs), dataclasses.asdict(params.extract))
    if stale:
        raise FeatureStoreError(
            f"{args.features} was extracted otherwise than params.yaml says (extracted ≠ "
            f"extract params: {stale}); run the extract stage first (dvc repro)"
        )
    if not len(train.labels):
        raise FeatureStoreError(f"{args.features} has no train clips")
    if not len(val.labels):
        logger.warning("no validation clips: early stopping watches the training accuracy")
    run.log()
    logger.info(
        "training %s on %d train / %d val clips, features %s",
        " or ".join(params.model.candidates()),
        len(train.labels),
        len(val.labels),
        train.features.shape[1:],
    )
    for folder in (args.out.parent, args.live) if world.is_main else ():
        output_dir(folder)
    with (
        Live(str(args.live), dvcyaml=None, save_dvc_exp=False, report=None) if world.is_main else nullcontext() as live
    ):
        model, choice, result = choose_and_train(params.model, params.train, params.seed, train, val, live, run)
        if live is not None:
            live.summary = choice.summary(result)
    if world.is_main:
        Checkpoint(
            head=choice.head,
            head_options={**params.model.head_options(), **choice.options},
            input_dim=int(train.features.shape[-1]),
            classes=train.classes,
            features=train.attrs,
            state_dict={k: v.cpu() for k, v in model.state_dict().items()},
        ).save(args.out)
        output_dir(args.scores.parent)
        write_json(args.scores, {f"val_{head}": round(score, 4) for head, score in choice.scores.items()})
        logger.info("%s chosen by %s; saved %s", choice.head, choice.by, args.out)
    runtime.stop(run)


if __name__ == "__main__":
    run_main(main)
