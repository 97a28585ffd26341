"""Choosing the model: which head (a temporal head, the linear probe, or the two's mean) and its epochs.

`model.head` may list several heads (the default: the BiLSTM and the linear probe). Where the
labelled clips are plenty, the validation split decides, as it decides early stopping. Where they
are few (`train.choice_folds`), a validation part of one or two groups says little and takes them away
from training, so group k-fold cross-validation over train + val decides instead: each labelled
clip is held out once, no group straddles a fold, a temporal head's epoch count is where the
folds' pooled accuracy peaks, and the chosen head then trains on every labelled clip. A temporal head's
evidence scores each fold at the epoch the other folds choose, not at that peak (the best of every epoch
on the very clips that judge it would flatter it against the probe, which chooses nothing).

Either way the evidence is clip by clip, and the rule that weighs it is `choice.decide`'s.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold
from torch import nn

from actrec.errors import ActrecError
from actrec.features.store import FeatureSet
from actrec.model.choice import Evidence, HeadChoice, decide
from actrec.model.heads import TRAINED, build_head
from actrec.model.loop import peak
from actrec.model.probe import linear_probe, probe_head
from actrec.model.training import FitResult, fit, fresh_head, train_head
from actrec.params import ModelParams, TrainParams
from actrec.runtime import CPU, Runtime

logger = logging.getLogger(__name__)

CV_MAX_CLIPS = 1000  # choice_folds auto: cross-validate below this many labelled clips (each fold costs a training)
CV_FOLDS = 3  # then the chosen head trains once more, on all of them: 4 trainings where validation needs 1


def most_folds(data: FeatureSet) -> int:
    """The most folds `data` can be cut into: no more than its groups, nor than its largest class's clips."""
    return min(len(np.unique(data.group_names())), int(np.bincount(data.labels).max(initial=0)))


def choice_folds(requested: int | str, data: FeatureSet) -> int:
    """Folds of group cross-validation for train + val `data`: 0 where the validation split decides."""
    folds = (CV_FOLDS if len(data.labels) < CV_MAX_CLIPS else 0) if requested == "auto" else int(requested)
    folds = min(folds, most_folds(data))
    return folds if folds >= 2 else 0


def group_folds(data: FeatureSet, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train rows, held-out rows) per fold: whole groups, classes spread as evenly as the groups allow."""
    splitter = StratifiedGroupKFold(folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "the least populated class has fewer members than folds"
        return list(splitter.split(np.zeros(len(data.labels)), data.labels, data.group_names()))


def _weights(head: str, model_params: ModelParams, data: FeatureSet, temporal: str | None = None) -> int:
    """How many weights `head` has on `data`'s features and classes (the ensemble: both of its members)."""
    model = build_head(head, data.features.shape[-1], len(data.classes), model_params, temporal)
    return sum(p.numel() for p in model.parameters())


class _Watch:
    """A trained head's predictions after each epoch on the judged clips, and those of its mean with the
    probe's probabilities there (the ensemble's)."""

    def __init__(self, probe: np.ndarray) -> None:
        self.probe, self.alone, self.blended = probe, [], []

    def __call__(self, probs: np.ndarray) -> None:
        self.alone.append(probs.argmax(1))
        self.blended.append((probs + self.probe).argmax(1))


def _temporal(heads: list[str]) -> str | None:
    """The ensemble's temporal head: the first trained head listed."""
    return next((h for h in heads if h in TRAINED), None)


def _trained_to_weigh(heads: list[str]) -> list[str]:
    """The trained heads the candidates need: those listed, and the ensemble's temporal head."""
    temporal = _temporal(heads)
    return [h for h in TRAINED if h in heads or ("ensemble" in heads and h == temporal)]


def _at_unseen_epochs(by_epoch: np.ndarray, chooser: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Which clips were right (`by_epoch`) at the epoch where the other folds' pooled accuracy (`chooser`) peaks.

    The epoch count is chosen where the folds' pooled accuracy peaks, the best of every epoch on those very
    clips: scored there, a trained head is flattered against the probe, which chooses nothing. Scored for each
    fold at the epoch the other folds choose, the evidence is the held-out accuracy of choosing so.
    """
    epochs = np.empty(len(folds), dtype=int)
    for fold in np.unique(folds):
        epochs[folds == fold] = peak(chooser[:, folds != fold].mean(1))
    return by_epoch[epochs - 1, np.arange(len(folds))]


def _cross_validate(
    heads: list[str],
    model_params: ModelParams,
    cfg: TrainParams,
    seed: int,
    data: FeatureSet,
    folds: list,
    runtime: Runtime,
    title: str = "",
) -> dict[str, Evidence]:
    """Each candidate's evidence on every labelled clip, held out once; a trained head's epochs are where the
    folds' pooled accuracy peaks (the ensemble's are its temporal head's). `title` prefixes each fit's name."""
    probe = np.zeros((len(data.labels), len(data.classes)))
    fold_of = np.empty(len(data.labels), dtype=int)
    needed = bool({"probe", "ensemble"} & set(heads))
    for number, (fit_rows, held) in enumerate(folds):
        part, out = data.rows(fit_rows), data.rows(held)
        probs = linear_probe(part.features, part.labels, out.features, len(data.classes)) if needed else None
        probe[held], fold_of[held] = 0.0 if probs is None else probs, number
    weights = _weights("probe", model_params, data)
    evidence = {"probe": Evidence(probe.argmax(1) == data.labels, weights, folds=fold_of)}
    for head in _trained_to_weigh(heads):
        alone = np.zeros((cfg.epochs, len(data.labels)), dtype=bool)
        blended = alone.copy()
        for number, (fit_rows, held) in enumerate(folds, start=1):
            model = fresh_head(model_params, head, data, seed, runtime.device)
            watch = _Watch(probe[held])
            fit(
                model,
                data.rows(fit_rows),
                data.rows(held),
                cfg,
                seed,
                epochs=cfg.epochs,
                world=runtime.world,
                watch=watch,
                title=f"{title}{head} fold {number}/{len(folds)}",
            )
            alone[:, held] = np.stack(watch.alone) == data.labels[held]
            blended[:, held] = np.stack(watch.blended) == data.labels[held]
        kept = {"epochs": peak(alone.mean(1)), "folds": fold_of}
        correct = _at_unseen_epochs(alone, alone, fold_of)
        evidence[head] = Evidence(correct, _weights(head, model_params, data), by_epoch=alone, **kept)
        if head == _temporal(heads) and "ensemble" in heads:
            weights = _weights("ensemble", model_params, data, head)
            correct = _at_unseen_epochs(blended, alone, fold_of)
            evidence["ensemble"] = Evidence(correct, weights, by_epoch=blended, temporal=head, **kept)
    return {h: evidence[h] for h in heads}


def _validate(
    heads: list[str],
    model_params: ModelParams,
    cfg: TrainParams,
    seed: int,
    train,
    val,
    live,
    runtime: Runtime,
    title: str = "",
) -> dict[str, Evidence]:
    """Each candidate's evidence on the val clips (without any, a lone candidate's training accuracy, as early
    stopping watches), with a trained head's model as trained and its record. The probe is fitted here for its
    evidence only: if kept, it is fitted again on every labelled clip."""
    scored = val if len(val.labels) else train
    probe = np.zeros((len(scored.labels), len(train.classes)))
    evidence = {}
    if {"probe", "ensemble"} & set(heads):  # a large train split makes even the probe's fit cost minutes
        fitted = linear_probe(train.features, train.labels, scored.features, len(train.classes))
        probe = probe if fitted is None else fitted
        evidence["probe"] = Evidence(probe.argmax(1) == scored.labels, _weights("probe", model_params, train))
    trained = _trained_to_weigh(heads)
    for head in trained:
        watch = _Watch(probe)
        named = dataclasses.replace(model_params, head=head)
        logged = live if head == trained[0] else None  # the dvclive curves are the first trained head's
        model, result = train_head(
            named, cfg, seed, train, val, logged, runtime.world, runtime.device, watch, title=f"{title}{head}"
        )
        judged = {"correct": np.zeros(0, dtype=bool), "score": result.best_val_accuracy}  # no val clips
        if len(val.labels):
            judged = {"correct": watch.alone[result.best_epoch - 1] == val.labels}
        kept = {"model": model, "result": result}
        evidence[head] = Evidence(**judged, weights=_weights(head, model_params, train), **kept)
        if head == _temporal(heads) and "ensemble" in heads:
            if len(val.labels):
                judged = {"correct": watch.blended[result.best_epoch - 1] == val.labels}
            weights = _weights("ensemble", model_params, train, head)
            evidence["ensemble"] = Evidence(**judged, weights=weights, temporal=head, **kept)
    return {h: evidence[h] for h in heads}


def weigh(
    model_params: ModelParams,
    cfg: TrainParams,
    seed: int,
    train: FeatureSet,
    val: FeatureSet,
    live: Any = None,
    runtime: Runtime = CPU,
    title: str = "",
) -> tuple[str, dict[str, Evidence]]:
    """Where the evidence comes from (HeadChoice.by) and each candidate's, by cross-validation or validation;
    the fits it plans are logged first (each then has its own progress bar and names itself on each line)."""
    heads = model_params.candidates()
    labelled = train.join(val)
    folds = choice_folds(cfg.choice_folds, labelled)
    trained = _trained_to_weigh(heads)
    if folds:
        by = f"cross-validation on train + val ({folds} group folds, train.choice_folds)"
        if trained:
            logger.info(
                "%s%s: %d fits of %d epochs (%s × %d folds), then the chosen head on all %d labelled clips",
                title,
                by,
                len(trained) * folds,
                cfg.epochs,
                " and ".join(trained),
                folds,
                len(labelled.labels),
            )
        folded = group_folds(labelled, folds, seed)
        return by, _cross_validate(heads, model_params, cfg, seed, labelled, folded, runtime, title)
    by = "validation split" if len(heads) > 1 else "only candidate"
    if len(heads) > 1 and not len(val.labels):
        logger.warning("no validation clips and too few groups to cross-validate: training %s (listed first)", heads[0])
        heads, by = heads[:1], "no validation clips"
    return by, _validate(heads, model_params, cfg, seed, train, val, live, runtime, title)


def train_choice(
    choice: HeadChoice,
    model_params: ModelParams,
    cfg: TrainParams,
    seed: int,
    labelled: FeatureSet,
    live: Any = None,
    runtime: Runtime = CPU,
    title: str = "",
) -> tuple[nn.Module, FitResult | None]:
    """The chosen head, ready to use, and its temporal head's training record (None for the probe).

    A temporal head (alone or in the ensemble) is the one validation trained, or under cross-validation a
    fresh one trained on every labelled clip for its epochs; the probe is fitted on every labelled clip.
    """
    picked = choice.evidence[choice.head]
    model, result = picked.model, picked.result
    temporal = picked.temporal or (choice.head if choice.head in TRAINED else None)
    if temporal is not None and model is None:
        model = fresh_head(model_params, temporal, labelled, seed, runtime.device)
        result = fit(
            model,
            labelled,
            labelled.part(),
            cfg,
            seed,
            live,
            epochs=picked.epochs,
            world=runtime.world,
            title=f"{title}{temporal} on all labelled clips",
        )
        result.refit_epochs = picked.epochs
        model.load_state_dict(result.state_dict)
    if choice.head in ("probe", "ensemble"):
        probe = probe_head(labelled.features, labelled.labels, len(labelled.classes))
        if probe is None:
            raise ActrecError("the linear probe needs labelled clips of at least 2 classes; list a trained head too")
        model = probe if choice.head == "probe" else _ensemble(probe, model, temporal, model_params, labelled)
    return model, result


def _ensemble(probe: nn.Module, trained: nn.Module, temporal: str, model_params: ModelParams, data) -> nn.Module:
    """The probe and the trained head as one EnsembleHead (on the CPU, as the fitted probe is)."""
    ensemble = build_head("ensemble", data.features.shape[-1], len(data.classes), model_params, temporal)
    ensemble.probe.load_state_dict(probe.state_dict())
    ensemble.temporal.load_state_dict(trained.state_dict())
    return ensemble.eval()


def choose_and_train(
    model_params: ModelParams,
    cfg: TrainParams,
    seed: int,
    train: FeatureSet,
    val: FeatureSet,
    live: Any = None,
    runtime: Runtime = CPU,
    title: str = "",
) -> tuple[nn.Module, HeadChoice, FitResult | None]:
    """The chosen head, trained; the choice with its evidence; the trained head's record (None for the probe).

    Under torchrun (the runtime's world) every rank runs the same choice on its share of each batch; the figures
    it rests on are summed (the per-clip evidence gathered) over the ranks, so all ranks choose alike. `title`
    prefixes the name of every fit in the log (the crossval stage's test fold).
    """
    labelled = train.join(val)
    by, evidence = weigh(model_params, cfg, seed, train, val, live, runtime, title)
    choice = decide(by, evidence, cfg.choice_margin)
    cross_validated = any(e.folds is not None for e in evidence.values())
    if len(evidence) > 1:
        logger.info("%s: %s", by, choice.said())
    if cross_validated:
        logger.info("training %s on all %d labelled clips", choice.head, len(labelled.labels))
    logged = live if cross_validated else None
    model, result = train_choice(choice, model_params, cfg, seed, labelled, logged, runtime, title)
    if live is not None and choice.head == "probe":  # no head trained here logged its curves
        if cross_validated:
            _log_evidence(
                live,
                {f"cv/{h}/accuracy": e.score if e.curve is None else e.curve for h, e in evidence.items()},
                cfg.epochs,
            )
        elif not _trained_to_weigh(list(evidence)):
            _log_evidence(live, {"val/accuracy": choice.scores["probe"]}, 1)
    return model, choice, result


def _log_evidence(live: Any, curves: dict[str, np.ndarray | float], epochs: int) -> None:
    """dvclive's curves where no trained head logged its own (the probe was kept): each candidate's accuracy
    after each epoch, the probe's (fitted once) a flat line. A run has its plots whatever it chose."""
    for epoch in range(epochs):
        for name, curve in curves.items():
            live.log_metric(name, float(np.broadcast_to(curve, (epochs,))[epoch]))
        live.next_step()
