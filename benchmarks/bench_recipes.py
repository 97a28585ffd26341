"""Benchmark of training recipes on a feature file: test top-1 of heads and of the default choice, beside the probe.

python -m benchmarks.bench_recipes --features features/features.h5 [--heads lstm,mean] [--seeds 42,1,2]
    [--train-groups N] [--frames T] [--folds 3] [--choice [--small-sets N] [--classes A,B,C]]

Trains each head three ways: on the file's train clips with early stopping on its val clips, the
same then refitted on train + val (train.refit), and cross-validated by group on train + val
(train.choice_folds: --folds) then trained on all of them; then the default params' choice among
model.head's list (what the train stage runs, and which head it took). Prints test top-1 as mean and
range over the seeds, with the Wilson interval of the first seed, beside the linear probe
(actrec/model/probe.py) on the same clips.
--train-groups N keeps only N groups' clips for train + val (a small dataset: clip ids must name
UCF-style gNN groups), --frames T keeps T of the stored frames, evenly spaced (fewer frames).
Defaults come from params.yaml, as the train stage's.

--choice compares the head choice's rules instead, each on the same evidence (one weighing per seed of
model.head's list with the ensemble added): the old rule (best score, the first listed winning ties, a
trained head scored at the epoch its pooled cross-validated accuracy peaks); the one-standard-error rule
on that evidence; on the train stage's evidence (each fold scored at the epoch the other folds choose), a
margin of one or two standard errors of the paired per-clip difference (the train stage's rule, with
train.choice_margin) or one of the per-fold difference; one per clip with the ensemble a candidate too,
or the ensemble and the probe the only candidates; the ensemble unless the others' choice beats it by
more than one standard error; the best listed head where it beats the others by more than one standard
error, else the ensemble; and each candidate alone ("probe alone" is the linear probe on train + val).
--small-sets N replaces the file's split by small group-held-out sets, as a person with a few
recordings has: N random triples of groups (seeded) with 3 clips a class from each (of --classes, by
default every class with that many clips in 3 groups), each group of a triple held out in turn as the
test split and the other two labelled; then each rule's test top-1 pooled over every set and seed, and
on how many (set, seed) runs it fell below the probe or rose above it.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import logging
import re
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
from torch import nn

from actrec.errors import run_main
from actrec.evaluation.metrics import wilson_interval
from actrec.features.store import FeatureSet, load_features
from actrec.model.choice import Evidence, HeadChoice, decide, paired_difference
from actrec.model.proba import predict_proba
from actrec.model.probe import linear_probe
from actrec.model.selection import choose_and_train, train_choice, weigh
from actrec.params import ModelParams, Params, TrainParams, load_params
from benchmarks.machine import describe_machine
from benchmarks.results import parse_args


def _group_numbers(data: FeatureSet) -> np.ndarray:
    """Each clip's UCF-style group: the NN of _gNN_ in its id."""
    return np.array([re.search(r"_g(\d+)_", c).group(1) for c in data.clip_ids])


def _fewer_groups(data: FeatureSet, groups: int) -> FeatureSet:
    """The test clips, and the train + val clips of the first `groups` groups (sorted by name)."""
    group = _group_numbers(data)
    kept = sorted(set(group[data.split != "test"]))[:groups]
    return data.rows((data.split == "test") | np.isin(group, kept))


def _classes_with_clips(data: FeatureSet, clips: int) -> list[str]:
    """The classes with at least `clips` clips in each of 3 groups or more."""
    group = _group_numbers(data)
    return [
        name
        for c, name in enumerate(data.classes)
        if sum(((group == g) & (data.labels == c)).sum() >= clips for g in set(group)) >= 3
    ]


def _small_sets(data: FeatureSet, classes: list[str], triples: int, clips: int = 3) -> list[tuple[str, FeatureSet]]:
    """Sets of `classes` from 3 groups, `clips` clips a class from each, one group the test split and the
    others train: `triples` different random triples of groups, each group held out in turn."""
    names = np.array(data.classes)[data.labels]
    data = data.rows(np.isin(names, classes))
    data = dataclasses.replace(data, labels=np.array([classes.index(n) for n in names[np.isin(names, classes)]]))
    data.classes = classes
    group = _group_numbers(data)

    def members(g: str, c: int) -> np.ndarray:
        return np.flatnonzero((group == g) & (data.labels == c))

    eligible = sorted(g for g in set(group) if all(len(members(g, c)) >= clips for c in range(len(classes))))
    rng = np.random.default_rng(0)
    combos = list(itertools.combinations(eligible, 3))
    sets = []
    for pick in rng.choice(len(combos), min(triples, len(combos)), replace=False):
        chosen = combos[pick]
        rows = np.concatenate(
            [rng.choice(members(g, c), clips, replace=False) for g in chosen for c in range(len(classes))]
        )
        for held in chosen:
            split = np.where(group[rows] == held, "test", "train")
            name = f"groups g{', g'.join(chosen)}: g{held} held out"
            sets.append((name, dataclasses.replace(data.rows(rows), split=split)))
    return sets


def _at_peak(evidence: Evidence) -> Evidence:
    """A trained head's cross-validated evidence at the epoch its pooled accuracy peaks (the old evidence)."""
    if evidence.by_epoch is None:
        return evidence
    return dataclasses.replace(evidence, correct=evidence.by_epoch[evidence.epochs - 1], score=float("nan"))


def _unless_beaten(kept: str, by: str, evidence: dict[str, Evidence]) -> str:
    """`kept` unless the others' choice (the one-standard-error rule among them) beats it by more than one
    standard error of the paired difference."""
    other = decide(by, {h: e for h, e in evidence.items() if h != kept}, 1).head
    lead, error = paired_difference(evidence[other], evidence[kept])
    return other if lead > error else kept


def _hedged(listed: dict[str, Evidence]) -> str:
    """The best listed head where it beats every other by more than one standard error; else the ensemble."""
    best = max(listed, key=lambda h: listed[h].score)
    differences = (paired_difference(listed[best], e) for h, e in listed.items() if h != best)
    return best if all(lead > error for lead, error in differences) else "ensemble"


def _per_fold(evidence: dict[str, Evidence], fold_of: np.ndarray) -> str:
    """The one-standard-error rule with the error over folds: of each fold's accuracy difference."""
    order = sorted(evidence, key=lambda h: evidence[h].weights)
    best = max(order, key=lambda h: evidence[h].score)

    def by_fold(head: str) -> np.ndarray:
        return np.array([evidence[head].correct[fold_of == f].mean() for f in np.unique(fold_of)])

    for head in order:
        gap = by_fold(best) - by_fold(head)
        if gap.mean() <= gap.std(ddof=1) / np.sqrt(len(gap)) + 1e-12:
            return head
    return best


def _rules(params: Params, seed: int, train: FeatureSet, val: FeatureSet, test: FeatureSet) -> dict:
    """recipe → (the head it took, which test clips it got right), every rule on one weighing's evidence."""
    heads = params.model.candidates()
    weighed = [*heads, "ensemble"] if "ensemble" not in heads else heads
    model_params = dataclasses.replace(params.model, head=weighed)
    by, evidence = weigh(model_params, params.train, seed, train, val)
    labelled = train.join(val)
    probs: dict[str, np.ndarray] = {}
    for head in (h for h in weighed if h != "ensemble"):
        model, _ = train_choice(HeadChoice(head, by, evidence), model_params, params.train, seed, labelled)
        probs[head] = predict_proba(model, test.features)
    temporal = evidence["ensemble"].temporal
    probs["ensemble"] = (probs[temporal] + probs["probe"]) / 2  # what EnsembleHead computes (tested)
    listed = {h: evidence[h] for h in heads}
    at_peak = {h: _at_peak(e) for h, e in listed.items()}
    folds = evidence["probe"].folds
    default = params.train.choice_margin
    picks = {
        "old rule: best score, peak epoch": max(heads, key=lambda h: at_peak[h].score),
        "1 SE per clip, peak epoch": decide(by, at_peak, 1).head,
        **{
            f"{margin} SE per clip{' (default)' if margin == default else ''}": decide(by, listed, margin).head
            for margin in (1, 2)
        },
        "1 SE per fold": decide(by, listed, 1).head if folds is None else _per_fold(listed, folds),
        "1 SE per clip, + ensemble": decide(by, evidence, 1).head,
        "1 SE per clip, [ensemble, probe]": decide(by, {h: evidence[h] for h in ("ensemble", "probe")}, 1).head,
        "ensemble unless beaten by > 1 SE": _unless_beaten("ensemble", by, evidence),
        "near-tie of lstm and probe: ensemble": _hedged(listed),
        **{f"{head} alone": head for head in weighed},
    }
    best = max(sorted(evidence, key=lambda h: evidence[h].weights), key=lambda h: evidence[h].score)
    said = ", ".join(f"{h} {e.correct.sum()}/{len(e.correct)}" for h, e in evidence.items())
    leads = ", ".join(
        f"{best} - {h} {evidence[best].score - e.score:+.3f} (SE {paired_difference(evidence[best], e)[1]:.3f})"
        for h, e in evidence.items()
        if h != best
    )
    peaks = ", ".join(f"{h} {e.correct.sum()}" for h, e in at_peak.items())
    print(f"   seed {seed}, {by}: right {said}; {leads}; at the peak epoch {peaks}")
    old = picks["old rule: best score, peak epoch"]
    # The small-data case: the old rule took a trained head ahead of the probe by one clip or none.
    narrow = old != "probe" and at_peak[old].correct.sum() - at_peak["probe"].correct.sum() <= 1
    return {name: (head, probs[head].argmax(1) == test.labels) for name, head in picks.items()}, narrow


def _compare_rules(sets: list[tuple[str, FeatureSet]], params: Params, seeds: list[int]) -> None:
    """Each rule's test top-1 per set over the seeds, and pooled over every set and seed."""
    pooled: dict[str, list[np.ndarray]] = defaultdict(list)
    narrow: list[bool] = []
    for name, data in sets:
        train, val, test = data.part("train"), data.part("val"), data.part("test")
        print(f"{name}: {len(train.labels)} train, {len(val.labels)} val, {len(test.labels)} test clips")
        runs, close = zip(*(_rules(params, seed, train, val, test) for seed in seeds), strict=True)
        narrow += close
        for recipe in runs[0]:
            scores = [run[recipe][1].mean() for run in runs]
            print(
                f"   {recipe:36s} {np.mean(scores):.3f}   seeds {min(scores):.3f}-{max(scores):.3f}   "
                f"chose {', '.join(run[recipe][0] for run in runs)}"
            )
            pooled[recipe] += [run[recipe][1] for run in runs]
    if len(sets) > 1:
        probe = pooled["probe alone"]
        print(f"pooled over {len(sets)} sets x {len(seeds)} seeds ({sum(map(len, probe))} test clip runs):")
        for recipe, runs in pooled.items():
            below = sum(r.sum() < p.sum() for r, p in zip(runs, probe, strict=True))
            above = sum(r.sum() > p.sum() for r, p in zip(runs, probe, strict=True))
            print(f"   {recipe:36s} {np.concatenate(runs).mean():.3f}   below the probe {below}, above {above}")
        print(f"the {sum(narrow)} runs where the old rule took a trained head ahead of the probe by one clip or none:")
        for recipe, runs in pooled.items():
            kept = [r for r, close in zip(runs, narrow, strict=True) if close]
            print(f"   {recipe:36s} {np.concatenate(kept).mean() if kept else float('nan'):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=Path, required=True, help="a feature file the extract stage wrote")
    parser.add_argument("--heads", default="lstm,mean", help="comma-separated heads")
    parser.add_argument("--seeds", default="42,1,2", help="comma-separated seeds")
    parser.add_argument("--train-groups", type=int, default=0, help="keep this many groups for train + val")
    parser.add_argument("--frames", type=int, default=0, help="keep this many of the stored frames")
    parser.add_argument("--folds", type=int, default=3, help="folds of the cross-validated recipe")
    parser.add_argument("--choice", action="store_true", help="compare the head choice's rules")
    parser.add_argument("--small-sets", type=int, default=0, help="--choice on this many triples of groups")
    parser.add_argument("--classes", default="", help="comma-separated classes of the small sets")
    args = parse_args(parser)
    logging.getLogger("actrec.model.training").setLevel(logging.WARNING)  # not every epoch of every fold
    params = load_params() if Path("params.yaml").is_file() else Params()
    data = load_features(args.features)
    if args.frames:
        keep = np.linspace(0, data.features.shape[2] - 1, args.frames).round().astype(int)
        data = dataclasses.replace(data, features=np.ascontiguousarray(data.features[:, :, keep]))
    if args.train_groups:
        data = _fewer_groups(data, args.train_groups)
    train, val, test = data.part("train"), data.part("val"), data.part("test")
    print(describe_machine())
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.choice:
        classes = args.classes.split(",") if args.classes else _classes_with_clips(data, 3)
        sets = _small_sets(data, classes, args.small_sets) if args.small_sets else [(str(args.features), data)]
        _compare_rules(sets, params, seeds)
        return
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
