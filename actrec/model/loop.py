"""The one training loop every model here learns by, as torchvision's video classification reference writes
it: `train_one_epoch`, `evaluate`, a warm-up + cosine learning-rate factor, and the early-stopping record.

The head training (`training.fit`, which the head choice's folds run too) and fine-tuning
(`finetune.finetune`) each build their batches, model and optimizer, and hand them here; what an
epoch does with them, how a model is scored, and which epoch counts as the best are decided once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from actrec.distributed import SINGLE, World, all_sum


def train_one_epoch(
    model: nn.Module,
    criterion: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    accum_steps: int = 1,
    grad_clip: float = 0.0,
    world: World = SINGLE,
) -> tuple[float, float]:
    """One pass over `batches` ((inputs, labels) on the model's device) in train mode: the loss and accuracy.

    The gradients of `accum_steps` batches add up before each update (the last update takes what is left);
    each update clips the gradients' norm to `grad_clip` (0: no clipping) and steps the schedule. Under
    torchrun (`world`) each rank trains on its share and the figures are summed over the ranks.
    """
    model.train()
    total, correct, seen, pending = 0.0, 0, 0, 0
    for x, y in batches:
        logits = model(x)
        loss = criterion(logits, y)
        (loss / accum_steps).backward()
        pending += 1
        if pending == accum_steps:
            _update(model, optimizer, scheduler, grad_clip)
            pending = 0
        total += loss.item() * len(y)
        correct += (logits.argmax(1) == y).sum().item()
        seen += len(y)
    if pending:
        _update(model, optimizer, scheduler, grad_clip)
    total, correct, seen = all_sum(world, [total, correct, seen])
    return total / seen, correct / seen


def _update(
    model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LRScheduler, clip: float
) -> None:
    if clip > 0:
        nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    scheduler.step()


@torch.no_grad()
def evaluate(
    predict: Callable[[Any], Any], batches: Iterable[tuple[Any, torch.Tensor]], world: World = SINGLE
) -> tuple[float, float, np.ndarray]:
    """Loss (the log loss of the predicted class probabilities) and accuracy over `batches` ((inputs, labels)),
    and the probabilities; `predict` maps a batch's inputs to class probabilities (N, C), the model in eval mode.

    Under torchrun each rank scores its share and the sums are combined, so every rank sees the same figures
    (and makes the same early-stopping decision); the probabilities are this rank's.
    """
    parts = [(torch.as_tensor(predict(x)).float().cpu(), y.cpu()) for x, y in batches]
    loss, correct, seen = 0.0, 0, 0
    probs = torch.zeros(0, 0)
    if parts:
        probs, labels = (torch.cat(p) for p in zip(*parts, strict=True))
        loss = nn.functional.nll_loss(probs.clamp_min(1e-8).log(), labels, reduction="sum").item()
        correct, seen = (probs.argmax(1) == labels).sum().item(), len(labels)
    loss, correct, seen = all_sum(world, [loss, correct, seen])
    return loss / seen, correct / seen, probs.numpy()


def warmup_cosine(total: int, warmup: int = 0, start: int = 0) -> Callable[[int], float]:
    """A learning-rate factor per step (LambdaLR's): 0 before step `start`, then a linear warm-up to 1 over
    `warmup` steps, then a cosine decay to 0 at step `total`."""

    def factor(step: int) -> float:
        step -= start
        if step < 0:
            return 0.0
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(total - start - warmup, 1)))

    return factor


def snapshot(model: nn.Module, skip: str | None = None) -> dict[str, torch.Tensor]:
    """A CPU copy of the weights (a checkpoint loads anywhere), without those under the prefix `skip`."""
    return {
        k: v.detach().to("cpu", copy=True)
        for k, v in model.state_dict().items()
        if skip is None or not k.startswith(skip)
    }


@dataclass
class EarlyStopping:
    """The best epoch so far by validation accuracy, and how many epochs have passed without a better one.

    A tie counts as better, so of equal scores the later epoch is kept: on a small validation set accuracy
    saturates early, and the later state has trained longer at a lower learning rate (its loss on a handful
    of clips says little).
    """

    patience: float  # epochs without a better score before stopping (math.inf: never)
    best_epoch: int = 0  # 0: no epoch yet
    best_score: float = 0.0
    stale: int = 0

    def update(self, epoch: int, score: float) -> bool:
        """Record `epoch`'s score; whether it is the best so far."""
        if self.best_epoch == 0 or score >= self.best_score:
            self.best_epoch, self.best_score, self.stale = epoch, score, 0
            return True
        self.stale += 1
        return False

    @property
    def exhausted(self) -> bool:
        """`patience` epochs have passed without a better score."""
        return self.stale >= self.patience


def peak(curve: Iterable[float]) -> int:
    """The epoch (from 1) that early stopping keeps of a curve of accuracies after each epoch: of equal peaks,
    the later."""
    record = EarlyStopping(math.inf)
    for epoch, score in enumerate(curve, 1):
        record.update(epoch, float(score))
    return record.best_epoch
