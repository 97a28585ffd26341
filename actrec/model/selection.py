"""Choosing the model: which head (a temporal head, the linear probe, or the two's mean) and its epochs.

`model.head` may list several heads (the default: the BiLSTM and the linear probe). Where the
labelled clips are plenty, the validation split decides, as it decides early stopping. Where they
are few (`train.choice_folds`), a validation part of one or two groups says little and takes them away
from training, so group k-fold cross-validation over train + val decides instead: each labelled
clip is held out once, no group straddles a fold, a temporal head's epoch count is where the
folds' pooled accuracy peaks, and the chosen head then trains on every labelled clip. A temporal head's
evidence scores each fold at the epoch the other folds choose, not at that peak (the best of every epoch
on the very clips that judge it would flatter it against the probe, which chooses nothing).

Either way the evidence is clip by clip (which judged clips each candidate got right), and the rule weighs
it: of the candidates whose accuracy is within `train.choice_margin` standard errors of the best's, the
simplest (fewest weights) is kept, the error being that of the two's paired per-clip difference (with a
margin of one, the one-standard-error rule of Breiman et al.'s CART; Hastie et al., Elements of
Statistical Learning §7.10; with two, the default, about McNemar's paired test at the 5% level, which
measured better on small real sets: docs). On 18 clips a BiLSTM ahead of the probe by a clip or two is a
near-tie and the probe is kept: small data cannot tell them apart, and the probe, with nothing tuned, is
the safer bet. Clip by clip rather than fold by fold: two or three folds give a standard error from two
or three numbers, zero whenever the folds happen to agree.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import StratifiedGroupKFold
from torch import nn

from actrec.distributed import SINGLE, World
from actrec.errors import ActrecError
from actrec.features.store import FeatureSet
from actrec.model.heads import TRAINED, build_head
from actrec.model.probe import linear_probe, probe_head
from actrec.model.training import FitResult, fit, fresh_head, train_head
from actrec.params import ModelParams, TrainParams

logger = logging.getLogger(__name__)

CV_MAX_CLIPS = 1000  # choice_folds auto: cross-validate below this many labelled clips (each fold costs a training)
CV_FOLDS = 3  # then the chosen head trains once more, on all of them: 4 trainings where validation needs 1


def rule(margin: float) -> str:
    """What the choice's rule is, as metrics.json records it (`train.choice_margin` standard errors)."""
    return f"fewest weights within {margin:g} standard errors of the best (paired per-clip difference)"


@dataclass(frozen=True)
class Placement:
    """Where training runs: the torchrun ranks and this rank's device."""

    world: World
    device: torch.device | str


@dataclass
class Evidence:
    """One candidate on the clips that judge it (held out under cross-validation, else the val part)."""

    correct: np.ndarray  # bool per judged clip: did the candidate get it right
    weights: int  # parameter count: of two candidates the simpler has fewer
    score: float = float("nan")  # accuracy on the judged clips (a lone head without val clips: on its train clips)
    epochs: int = 0  # cross-validation: a trained head's epochs on train + val, where its pooled accuracy peaks
    by_epoch: np.ndarray | None = None  # cross-validation: which clips a trained head got right after each epoch
    folds: np.ndarray | None = None  # cross-validation: each judged clip's fold
    temporal: str | None = None  # the ensemble's temporal head
    model: nn.Module | None = None  # validation split: the temporal head as trained
    result: FitResult | None = None

    def __post_init__(self) -> None:
        self.correct = np.asarray(self.correct, dtype=bool)
        if np.isnan(self.score):
            self.score = float(self.correct.mean()) if len(self.correct) else 0.0

    @property
    def curve(self) -> np.ndarray | None:
        """Cross-validation: a trained head's pooled accuracy after each epoch."""
        return None if self.by_epoch is None else self.by_epoch.mean(1)

    @property
    def standard_error(self) -> float:
        return _standard_error(self.correct.astype(float))


@dataclass
class HeadChoice:
    """What was chosen, on what evidence and by which rule."""

    head: str
    # "cross-validation on train + val (k group folds, train.choice_folds)", "validation split",
    # "only candidate" or "no validation clips"
    by: str
    evidence: dict[str, Evidence]
    rule: str = "named by the caller"  # rule(margin) or "only candidate" when decide chose

    @property
    def scores(self) -> dict[str, float]:
        return {head: e.score for head, e in self.evidence.items()}

    @property
    def epochs(self) -> int:
        """Under cross-validation: the chosen (or the ensemble's) temporal head's epochs on train + val."""
        return self.evidence[self.head].epochs

    @property
    def options(self) -> dict[str, Any]:
        """What the checkpoint's head options add to the model params': the ensemble's temporal head."""
        temporal = self.evidence[self.head].temporal
        return {} if temporal is None else {"temporal": temporal}

    def summary(self, result: FitResult | None) -> dict[str, Any]:
        """What reports/train/metrics.json records: the head kept, on what evidence and by which rule, each
        candidate's accuracy with its standard error and its weights, its lead over each simpler one with the
        standard error of that paired per-clip difference, and how the kept head trained."""
        # After cross-validation the head trains on every labelled clip: no clip is left to score it on.
        held_out = () if self.epochs else ("best_epoch", "best_val_accuracy", "best_val_loss")
        trained = ("epochs_run", "refit_epochs", *held_out)
        record: dict[str, Any] = {"head": self.head, "chosen_by": self.by, "choice_rule": self.rule}
        for head, e in self.evidence.items():
            record[f"validation_accuracy_{head}"] = round(e.score, 4)
            record[f"validation_accuracy_{head}_standard_error"] = round(e.standard_error, 4)
            record[f"weights_{head}"] = e.weights
        order = _simplest_first(self.evidence)
        for number, head in enumerate(order):  # each candidate against each simpler one: the same keys every run
            for simpler in order[:number]:
                lead, error = paired_difference(self.evidence[head], self.evidence[simpler])
                record[f"validation_accuracy_{head}_minus_{simpler}"] = round(lead, 4)
                record[f"validation_accuracy_{head}_minus_{simpler}_standard_error"] = round(error, 4)
        return {**record, **({} if result is None else {k: getattr(result, k) for k in trained})}


def _standard_error(values: np.ndarray) -> float:
    """The standard error of the mean of `values` (0 with fewer than 2)."""
    return float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0


def paired_difference(a: Evidence, b: Evidence) -> tuple[float, float]:
    """a's accuracy minus b's on the same clips, and the standard error of that paired per-clip difference."""
    gap = a.correct.astype(float) - b.correct.astype(float)
    return a.score - b.score, _standard_error(gap)


def _within(best: Evidence, other: Evidence, margin: float) -> bool:
    """Is `other`'s accuracy within `margin` standard errors of the paired per-clip difference of `best`'s?

    With w clips only `best` gets right and l only `other` does, the difference is (w - l) / n and its
    standard error's square (w + l - (w - l)² / n) / (n (n - 1)): within m errors exactly where
    (w - l)² <= m² (w + l), McNemar's statistic at most m² (m = 2: his test at about the 5% level), which
    the counts decide without rounding.
    """
    if len(best.correct) < 2:
        return best.score <= other.score
    wins, losses = int((best.correct & ~other.correct).sum()), int((~best.correct & other.correct).sum())
    return (wins - losses) ** 2 <= margin**2 * (wins + losses)


def _simplest_first(evidence: dict[str, Evidence]) -> list[str]:
    return sorted(evidence, key=lambda head: evidence[head].weights)  # stable: as listed where counts are equal


def _best(evidence: dict[str, Evidence]) -> str:
    """The highest accuracy; of equals, the simplest."""
    return max(_simplest_first(evidence), key=lambda head: evidence[head].score)


def decide(by: str, evidence: dict[str, Evidence], margin: float) -> HeadChoice:
    """The simplest candidate within `margin` standard errors of the best (`train.choice_margin`)."""
    if len(evidence) == 1:
        return HeadChoice(next(iter(evidence)), by, evidence, "only candidate")
    best = evidence[_best(evidence)]
    head = next(h for h in _simplest_first(evidence) if _within(best, evidence[h], margin))
    return HeadChoice(head, by, evidence, rule(margin))


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


def _peak(curve: np.ndarray) -> int:
    """The epoch (from 1) where `curve` peaks; ties go to the later epoch, as in early stopping."""
    return len(curve) - int(np.argmax(curve[::-1]))


def _at_unseen_epochs(by_epoch: np.ndarray, chooser: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Which clips were right (`by_epoch`) at the epoch where the other folds' pooled accuracy (`chooser`) peaks.

    The epoch count is chosen where the folds' pooled accuracy peaks, the best of every epoch on those very
    clips: scored there, a trained head is flattered against the probe, which chooses nothing. Scored for each
    fold at the epoch the other folds choose, the evidence is the held-out accuracy of choosing so.
    """
    epochs = np.empty(len(folds), dtype=int)
    for fold in np.unique(folds):
        epochs[folds == fold] = _peak(chooser[:, folds != fold].mean(1))
    return by_epoch[epochs - 1, np.arange(len(folds))]


def _cross_validate(
    heads: list[str],
    model_params: ModelParams,
    cfg: TrainParams,
    seed: int,
    data: FeatureSet,
    folds: list,
    place: Placement,
) -> dict[str, Evidence]:
    """Each candidate's evidence on every labelled clip, held out once; a trained head's epochs are where the
    folds' pooled accuracy peaks (the ensemble's are its temporal head's)."""
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
        for fit_rows, held in folds:
            model = fresh_head(model_params, head, data, seed, place.device)
            watch = _Watch(probe[held])
            fit(
                model,
                data.rows(fit_rows),
                data.rows(held),
                cfg,
                seed,
                epochs=cfg.epochs,
                world=place.world,
                watch=watch,
            )
            alone[:, held] = np.stack(watch.alone) == data.labels[held]
            blended[:, held] = np.stack(watch.blended) == data.labels[held]
        kept = {"epochs": _peak(alone.mean(1)), "folds": fold_of}
        correct = _at_unseen_epochs(alone, alone, fold_of)
        evidence[head] = Evidence(correct, _weights(head, model_params, data), by_epoch=alone, **kept)
        if head == _temporal(heads) and "ensemble" in heads:
            weights = _weights("ensemble", model_params, data, head)
            correct = _at_unseen_epochs(blended, alone, fold_of)
            evidence["ensemble"] = Evidence(correct, weights, by_epoch=blended, temporal=head, **kept)
    return {h: evidence[h] for h in heads}


def _validate(
    heads: list[str], model_params: ModelParams, cfg: TrainParams, seed: int, train, val, live, place: Placement
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
        model, result = train_head(named, cfg, seed, train, val, logged, place.world, place.device, watch)
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
    place: Placement = Placement(SINGLE, "cpu"),
) -> tuple[str, dict[str, Evidence]]:
    """Where the evidence comes from (HeadChoice.by) and each candidate's, by cross-validation or validation."""
    heads = model_params.candidates()
    labelled = train.join(val)
    folds = choice_folds(cfg.choice_folds, labelled)
    if folds:
        by = f"cross-validation on train + val ({folds} group folds, train.choice_folds)"
        return by, _cross_validate(heads, model_params, cfg, seed, labelled, group_folds(labelled, folds, seed), place)
    by = "validation split" if len(heads) > 1 else "only candidate"
    if len(heads) > 1 and not len(val.labels):
        logger.warning("no validation clips and too few groups to cross-validate: training %s (listed first)", heads[0])
        heads, by = heads[:1], "no validation clips"
    return by, _validate(heads, model_params, cfg, seed, train, val, live, place)


def train_choice(
    choice: HeadChoice,
    model_params: ModelParams,
    cfg: TrainParams,
    seed: int,
    labelled: FeatureSet,
    live: Any = None,
    place: Placement = Placement(SINGLE, "cpu"),
) -> tuple[nn.Module, FitResult | None]:
    """The chosen head, ready to use, and its temporal head's training record (None for the probe).

    A temporal head (alone or in the ensemble) is the one validation trained, or under cross-validation a
    fresh one trained on every labelled clip for its epochs; the probe is fitted on every labelled clip.
    """
    picked = choice.evidence[choice.head]
    model, result = picked.model, picked.result
    temporal = picked.temporal or (choice.head if choice.head in TRAINED else None)
    if temporal is not None and model is None:
        model = fresh_head(model_params, temporal, labelled, seed, place.device)
        result = fit(model, labelled, labelled.part(), cfg, seed, live, epochs=picked.epochs, world=place.world)
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
    world: World = SINGLE,
    device: torch.device | str = "cpu",
) -> tuple[nn.Module, HeadChoice, FitResult | None]:
    """The chosen head, trained; the choice with its evidence; the trained head's record (None for the probe).

    Under torchrun (`world`) every rank runs the same choice on its share of each batch; the figures
    it rests on are summed (the per-clip evidence gathered) over the ranks, so all ranks choose alike.
    """
    place = Placement(world, device)
    labelled = train.join(val)
    by, evidence = weigh(model_params, cfg, seed, train, val, live, place)
    choice = decide(by, evidence, cfg.choice_margin)
    cross_validated = any(e.folds is not None for e in evidence.values())
    if len(evidence) > 1:
        logger.info("%s: %s", by, _said(choice))
    if cross_validated:
        logger.info("training %s on all %d labelled clips", choice.head, len(labelled.labels))
    model, result = train_choice(choice, model_params, cfg, seed, labelled, live if cross_validated else None, place)
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


def _said(choice: HeadChoice) -> str:
    scores = ", ".join(f"{h} {e.score:.3f} ± {e.standard_error:.3f}" for h, e in choice.evidence.items())
    best = _best(choice.evidence)
    leads = ", ".join(
        "{} − {} {:.3f} ± {:.3f}".format(best, h, *paired_difference(choice.evidence[best], choice.evidence[h]))
        for h in choice.evidence
        if h != best
    )
    return f"accuracy {scores}; {leads} -> {choice.head} ({choice.rule})"
