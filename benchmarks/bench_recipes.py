"""Benchmark of training recipes on a feature file: test top-1 of heads and of the default choice, beside the probe.

python -m benchmarks.bench_recipes --features features/features.h5 [--heads lstm,mean] [--seeds 42,1,2]
    [--train-groups N] [--frames T] [--folds 3]

Trains each head three ways: on the file's train clips with early stopping on its val clips, the
same then refitted on train + val (train.refit), and cross-validated by group on train + val
(train.choice_folds: --folds) then trained on all of them; then the default params' choice among
model.head's list (what the train stage runs, and which head it took). Prints test top-1 as mean and
range over the seeds, with the Wilson interval of the first seed, beside the linear probe
(actrec/model/probe.py) on the same clips.
--train-groups N keeps only N groups' clips for train + val (a small dataset: clip ids must name
UCF-style gNN groups), --frames T keeps T of the stored frames, evenly spaced (fewer frames).
Defaults come from params.yaml, as the train stage's.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
from torch import nn

from actrec.errors import run_main
from actrec.evaluation.metrics import wilson_interval
from actrec.features.store import FeatureSet, load_features
from actrec.model.proba import predict_proba
from actrec.model.probe import linear_probe
from actrec.model.selection import choose_and_train
from actrec.params import ModelParams, Params, TrainParams, load_params
from benchmarks.machine import describe_machine


def _fewer_groups(data: FeatureSet, groups: int) -> FeatureSet:
    """The test clips, and the train + val clips of the first `groups` groups (sorted by name)."""
    group = np.array([re.search(r"_g(\d+)_", c).group(1) for c in data.clip_ids])
    kept = sorted(set(group[data.split != "test"]))[:groups]
    return data.rows((data.split == "test") | np.isin(group, kept))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=Path, required=True, help="a feature file the extract stage wrote")
    parser.add_argument("--heads", default="lstm,mean", help="comma-separated heads")
    parser.add_argument("--seeds", default="42,1,2", help="comma-separated seeds")
    parser.add_argument("--train-groups", type=int, default=0, help="keep this many groups for train + val")
    parser.add_argument("--frames", type=int, default=0, help="keep this many of the stored frames")
    parser.add_argument("--folds", type=int, default=3, help="folds of the cross-validated recipe")
    args = parser.parse_args()
    params = load_params() if Path("params.yaml").is_file() else Params()
    data = load_features(args.features)
    if args.frames:
        keep = np.linspace(0, data.features.shape[2] - 1, args.frames).round().astype(int)
        data = dataclasses.replace(data, features=np.ascontiguousarray(data.features[:, :, keep]))
    if args.train_groups:
        data = _fewer_groups(data, args.train_groups)
    train, val, test = data.part("train"), data.part("val"), data.part("test")
    print(describe_machine())
    print(
        f"{args.features}: {len(train.labels)} train, {len(val.labels)} val, {len(test.labels)} test clips, "
        f"{len(data.classes)} classes, features {data.features.shape[1:]}"
    )

    def top1(probs: np.ndarray) -> float:
        return float((probs.argmax(1) == test.labels).mean())

    probe = linear_probe(
        data.part("train", "val").features, data.part("train", "val").labels, test.features, len(data.classes)
    )
    if probe is not None:
        low, high = wilson_interval(int((probe.argmax(1) == test.labels).sum()), len(test.labels))
        print(f"   linear probe (train + val)       {top1(probe):.3f}   interval {low:.3f}-{high:.3f}")
    seeds = [int(s) for s in args.seeds.split(",")]

    def report(name: str, recipe: Callable[[int], tuple[nn.Module, str]]) -> None:
        scores, chosen = [], []
        for seed in seeds:
            model, head = recipe(seed)
            scores.append(top1(predict_proba(model, test.features)))
            chosen.append(head)
        low, high = wilson_interval(round(scores[0] * len(test.labels)), len(test.labels))
        print(
            f"   {name:32s} {np.mean(scores):.3f}   seeds {min(scores):.3f}-{max(scores):.3f}   "
            f"interval (first seed) {low:.3f}-{high:.3f}"
            + (f"   chose {', '.join(chosen)}" if name == "default" else "")
        )

    def trained(model_params: ModelParams, cfg: TrainParams) -> Callable[[int], tuple[nn.Module, str]]:
        def recipe(seed: int) -> tuple[nn.Module, str]:
            model, choice, _ = choose_and_train(model_params, cfg, seed, train, val)
            return model, choice.head

        return recipe

    for head in args.heads.split(","):
        model_params = dataclasses.replace(params.model, head=head)
        for name, cfg in (
            ("refit off", dataclasses.replace(params.train, choice_folds=0, refit=False)),
            ("refit on", dataclasses.replace(params.train, choice_folds=0, refit=True)),
            (f"{args.folds}-fold group CV", dataclasses.replace(params.train, choice_folds=args.folds)),
        ):
            report(f"{head} {name}", trained(model_params, cfg))
    report("default", trained(params.model, params.train))


if __name__ == "__main__":
    run_main(main)
