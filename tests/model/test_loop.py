"""The one training loop: gradient accumulation, the learning-rate factor, scoring, and which epoch is kept."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from actrec.model.loop import EarlyStopping, evaluate, peak, train_one_epoch, warmup_cosine


def _linear() -> nn.Linear:
    torch.manual_seed(0)
    return nn.Linear(4, 3)


def _train(model: nn.Module, batches: list, accum_steps: int) -> tuple[tuple[float, float], int]:
    """One epoch with plain SGD; the figures and how many updates the schedule saw."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    scheduler = LambdaLR(optimizer, lambda step: 1.0)
    figures = train_one_epoch(model, nn.CrossEntropyLoss(), optimizer, scheduler, batches, accum_steps)
    return figures, scheduler.last_epoch


def test_accumulated_steps_update_as_one_batch_of_them_all() -> None:
    x, y = torch.randn(8, 4), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    whole, halves = _linear(), _linear()
    (loss, accuracy), updates = _train(whole, [(x, y)], accum_steps=1)
    assert updates == 1
    (half_loss, half_accuracy), updates = _train(halves, [(x[:4], y[:4]), (x[4:], y[4:])], accum_steps=2)
    assert updates == 1, "two batches, one update"
    for a, b in zip(whole.parameters(), halves.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    assert half_loss == pytest.approx(loss) and half_accuracy == accuracy
    _, updates = _train(_linear(), [(x[:3], y[:3]), (x[3:6], y[3:6]), (x[6:], y[6:])], accum_steps=2)
    assert updates == 2, "the last batch left over still updates"


def test_evaluate_scores_the_predicted_probabilities() -> None:
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.5, 0.25, 0.25], [0.2, 0.2, 0.6]])
    labels = torch.tensor([0, 1, 1, 0])
    loss, accuracy, scored = evaluate(lambda x: x, [(probs[:2], labels[:2]), (probs[2:], labels[2:])])
    assert accuracy == 0.5  # the first two right; the third's 0.25 and the fourth's 0.2 are not the most likely
    assert loss == pytest.approx(-(math.log(0.7) + math.log(0.8) + math.log(0.25) + math.log(0.2)) / 4)
    np.testing.assert_array_equal(scored, probs.numpy())


def test_the_learning_rate_waits_warms_up_then_decays_to_zero() -> None:
    factor = warmup_cosine(total=14, warmup=4, start=2)
    assert [factor(step) for step in range(7)] == [0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    assert factor(10) == pytest.approx(0.5), "halfway down the cosine, from step 6 to 14"
    assert factor(14) == pytest.approx(0.0)
    assert warmup_cosine(total=10)(0) == 1.0, "without a warm-up it starts at its peak"


def test_a_tie_counts_as_better_and_patience_counts_the_epochs_without_one() -> None:
    record = EarlyStopping(patience=2)
    kept = [record.update(epoch, score) for epoch, score in enumerate([0.5, 0.7, 0.7, 0.6], 1)]
    assert kept == [True, True, True, False] and record.best_epoch == 3 and record.best_score == 0.7
    assert not record.exhausted
    assert not record.update(5, 0.69) and record.exhausted and record.best_epoch == 3
    assert record.update(6, 0.7) and record.stale == 0, "a tie resets the count"


def test_the_peak_of_a_curve_is_the_later_of_equal_epochs() -> None:
    assert peak([0.2, 0.6, 0.4, 0.6, 0.5]) == 4
    assert peak(np.array([0.9, 0.1])) == 1
    assert peak([0.3, 0.3, 0.3]) == 3
