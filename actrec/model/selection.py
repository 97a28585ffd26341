"""Choosing the model: which head (a temporal head or the linear probe) and, under cross-validation, its epochs.

`model.head` may list several heads (the default: the BiLSTM and the linear probe). Where the
labelled clips are plenty, the validation split decides, as it decides early stopping. Where they
are few (`train.choice_folds`), a validation part of one or two groups says little and takes them away
from training, so group k-fold cross-validation over train + val decides instead: each labelled
clip is held out once, no group straddles a fold, a temporal head's epoch count is where the
folds' pooled accuracy peaks, and the chosen head then trains on every labelled clip. Either way
the run keeps the temporal head only where it validates at least as well as the probe.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import StratifiedGroupKFold
from torch import nn

from actrec.distributed import SINGLE, World
from actrec.errors import ActrecError
from actrec.features.store import FeatureSet
from actrec.model.probe import linear_probe, probe_head
from actrec.model.training import FitResult, fit, fresh_head, train_head
from actrec.params import ModelParams, TrainParams

logger = logging.getLogger(__name__)

CV_MAX_CLIPS = 1000  # choice_folds auto: cross-validate below this many labelled clips (each fold costs a training)
CV_FOLDS = 3  # then the chosen head trains once more, on all of them: 4 trainings where validation needs 1


@dataclass(frozen=True)
class Placement:
    """Where training runs: the torchrun ranks and this rank's device."""

    world: World
    device: torch.device | str


@dataclass
class HeadChoice:
    """What was chosen and on what evidence: each candidate's validation accuracy."""

    head: str
    # "cross-validation on train + val (k group folds, train.choice_folds)", "validation split",
    # "only candidate" or "no validation clips"
    by: str
    scores: dict[str, float] = field(default_factory=dict)
    epochs: int = 0  # under cross-validation: the temporal head's epochs on train + val

    def summary(self, result: FitResult | None) -> dict[str, Any]:
        """What reports/train/metrics.json records: the head kept, on what evidence, and how it trained."""
        # After cross-validation the head trains on every labelled clip: no clip is left to score it on.
        held_out = () if self.epochs else ("best_epoch", "best_val_accuracy", "best_val_loss")
        trained = ("epochs_run", "refit_epochs", *held_out)
        return {
            "head": self.head,
            "chosen_by": self.by,
            **{f"validation_accuracy_{head}": round(score, 4) for head, score in self.scores.items()},
            **({} if result is None else {k: getattr(result, k) for k in trained}),
        }


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


def _cross_validate(
    head: str, model_params: ModelParams, cfg: TrainParams, seed: int, data: FeatureSet, folds: list, place: Placement
) -> tuple[float, int, np.ndarray | None]:
    """Pooled held-out accuracy of `head` over the folds; for a trained head the epoch where it peaks, and the
    accuracy after each epoch."""
    if head == "probe":
        correct = 0
        for fit_rows, held in folds:
            part, out = data.rows(fit_rows), data.rows(held)
            probs = linear_probe(part.features, part.labels, out.features, len(data.classes))
            correct += int((probs.argmax(1) == out.labels).sum()) if probs is not None else 0
        return correct / len(data.labels), 0, None
    correct = np.zeros(cfg.epochs)
    for fit_rows, held in folds:
        model = fresh_head(model_params, head, data, seed, place.device)
        result = fit(model, data.rows(fit_rows), data.rows(held), cfg, seed, epochs=cfg.epochs, world=place.world)
        correct += np.asarray(result.val_curve) * len(held)
    curve = correct / len(data.labels)
    epoch = len(curve) - int(np.argmax(curve[::-1]))  # ties go to the later epoch, as in early stopping
    return float(curve[epoch - 1]), epoch, curve


def _validate(head: str, model_params: ModelParams, cfg: TrainParams, seed: int, train, val, live, place: Placement):
    """Validation accuracy on the split's val part (without one, the training accuracy, as early stopping
    watches), with the trained head and its training record. The probe is fitted for its score only: if
    kept, it is fitted again on every labelled clip."""
    if head == "probe":
        scored = val if len(val.labels) else train
        probs = linear_probe(train.features, train.labels, scored.features, len(train.classes))
        return (float((probs.argmax(1) == scored.labels).mean()) if probs is not None else 0.0), None, None
    named = dataclasses.replace(model_params, head=head)
    model, result = train_head(named, cfg, seed, train, val, live, place.world, place.device)
    return result.best_val_accuracy, model, result


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
    it rests on are summed over the ranks, so all ranks choose alike.
    """
    place = Placement(world, device)
    heads = model_params.candidates()
    labelled = train.join(val)
    folds = choice_folds(cfg.choice_folds, labelled)
    result: FitResult | None = None
    if folds:
        splits = group_folds(labelled, folds, seed)
        results = {h: _cross_validate(h, model_params, cfg, seed, labelled, splits, place) for h in heads}
        best = max(heads, key=lambda h: results[h][0])  # the first listed wins a tie
        choice = HeadChoice(
            best,
            f"cross-validation on train + val ({folds} group folds, train.choice_folds)",
            {h: r[0] for h, r in results.items()},
        )
        choice.epochs = results[best][1]
        logger.info("%s: %s; training on all %d labelled clips", choice.by, _said(choice), len(labelled.labels))
        if best == "probe":
            if live is not None:
                curves = {f"cv/{h}/accuracy": r[0] if r[2] is None else r[2] for h, r in results.items()}
                _log_evidence(live, curves, cfg.epochs)
        else:
            model = fresh_head(model_params, best, labelled, seed, device)
            result = fit(model, labelled, labelled.part(), cfg, seed, live, epochs=choice.epochs, world=world)
            result.refit_epochs = choice.epochs
            model.load_state_dict(result.state_dict)
    else:
        by = "validation split" if len(heads) > 1 else "only candidate"
        if len(heads) > 1 and not len(val.labels):
            logger.warning(
                "no validation clips and too few groups to cross-validate: training %s (listed first)", heads[0]
            )
            heads, by = heads[:1], "no validation clips"
        logged = next((h for h in heads if h != "probe"), None)  # the dvclive curves are a trained head's
        trained = {
            h: _validate(h, model_params, cfg, seed, train, val, live if h == logged else None, place) for h in heads
        }
        best = max(heads, key=lambda h: trained[h][0])
        choice = HeadChoice(best, by, {h: t[0] for h, t in trained.items()})
        if len(heads) > 1:
            logger.info("%s: %s", by, _said(choice))
        _, model, result = trained[best]
        if live is not None and logged is None:
            _log_evidence(live, {"val/accuracy": choice.scores[best]}, 1)
    if best == "probe":  # fitted, whichever way it was chosen, on every labelled clip
        model = probe_head(labelled.features, labelled.labels, len(labelled.classes))
    if model is None:
        raise ActrecError("the linear probe needs labelled clips of at least 2 classes; list a trained head too")
    return model, choice, result


def _log_evidence(live: Any, curves: dict[str, np.ndarray | float], epochs: int) -> None:
    """dvclive's curves where no trained head logged its own (the probe was kept): each candidate's accuracy
    after each epoch, the probe's (fitted once) a flat line. A run has its plots whatever it chose."""
    for epoch in range(epochs):
        for name, curve in curves.items():
            live.log_metric(name, float(np.broadcast_to(curve, (epochs,))[epoch]))
        live.next_step()


def _said(choice: HeadChoice) -> str:
    scores = ", ".join(f"{h} {s:.3f}" for h, s in choice.scores.items())
    return f"accuracy {scores} -> {choice.head}"
