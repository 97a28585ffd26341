"""The head choice's evidence and its rule: which of `model.head`'s candidates is kept, on what each got right.

By cross-validation or on the validation split, the evidence is clip by clip (which judged clips each
candidate got right), and the rule weighs it: of the candidates whose accuracy is within `train.choice_margin`
standard errors of the best's, the simplest (fewest weights) is kept, the error being that of the two's paired
per-clip difference (with a margin of one, the one-standard-error rule of Breiman et al.'s CART; Hastie et
al., Elements of Statistical Learning §7.10; with two, the default, about McNemar's paired test at the 5%
level, which measured better on small real sets: docs). On 18 clips a BiLSTM ahead of the probe by a clip or
two is a near-tie and the probe is kept: small data cannot tell them apart, and the probe, with nothing tuned,
is the safer bet. Clip by clip rather than fold by fold: two or three folds give a standard error from two or
three numbers, zero whenever the folds happen to agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn

from actrec.model.training import FitResult


def rule(margin: float) -> str:
    """What the choice's rule is, as metrics.json records it (`train.choice_margin` standard errors)."""
    return f"fewest weights within {margin:g} standard errors of the best (paired per-clip difference)"


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

    def said(self) -> str:
        """The choice in one log line: each candidate's accuracy, the best's lead over each other, the head kept."""
        scores = ", ".join(f"{h} {e.score:.3f} ± {e.standard_error:.3f}" for h, e in self.evidence.items())
        best = _best(self.evidence)
        leads = ", ".join(
            "{} − {} {:.3f} ± {:.3f}".format(best, h, *paired_difference(self.evidence[best], self.evidence[h]))
            for h in self.evidence
            if h != best
        )
        return f"accuracy {scores}; {leads} -> {self.head} ({self.rule})"


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
