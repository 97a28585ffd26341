"""Training a temporal head on cached features: a plain loop, in the style of torchvision's references.

Features are loaded once into memory as float16 and cast to float32 per batch, so an epoch costs
seconds and no video is decoded. Early stopping watches the validation set; the best state (by
validation accuracy, then loss) is what gets saved.
"""

from __future__ import annotations

import copy
import logging
import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from pipeline.features import FeatureSet
from pipeline.params import TrainParams

logger = logging.getLogger(__name__)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; the same params and seed give the same model on CPU."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def _pick_clips(features: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """(B, K, T, D) → (B, T, D): a random one of the K clips per video (clip 0 when no generator)."""
    if features.shape[1] == 1 or generator is None:
        return features[:, 0]
    choice = torch.randint(features.shape[1], (features.shape[0],), generator=generator)
    return features[torch.arange(features.shape[0]), choice]


@torch.no_grad()
def predict_proba(model: nn.Module, features: np.ndarray | torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """Class probabilities (N, C) for features (N, K, T, D), averaged over the K clips of each video."""
    model.eval()
    features = torch.as_tensor(features)
    n, k = features.shape[:2]
    out = []
    for start in range(0, n, batch_size):
        chunk = features[start:start + batch_size].float()
        logits = model(chunk.flatten(0, 1))
        out.append(logits.softmax(-1).view(chunk.shape[0], k, -1).mean(1))
    return torch.cat(out).numpy() if out else np.zeros((0, 0), dtype=np.float32)


@dataclass
class FitResult:
    best_epoch: int
    best_val_accuracy: float
    best_val_loss: float
    epochs_run: int
    state_dict: dict[str, Any]


def _evaluate(model: nn.Module, data: FeatureSet) -> tuple[float, float]:
    probs = torch.from_numpy(predict_proba(model, data.features))
    labels = torch.from_numpy(data.labels)
    loss = nn.functional.nll_loss(probs.clamp_min(1e-8).log(), labels).item()
    return loss, (probs.argmax(1) == labels).float().mean().item()


def fit(model: nn.Module, train: FeatureSet, val: FeatureSet, cfg: TrainParams, seed: int,
        live: Any = None) -> FitResult:
    """Train with Adam and cross-entropy; stop early on validation; return the best state."""
    generator = seed_everything(seed)
    features = torch.from_numpy(train.features)  # float16, cast per batch
    labels = torch.from_numpy(train.labels)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    best: tuple[float, float] | None = None
    result = FitResult(0, 0.0, float("inf"), 0, copy.deepcopy(model.state_dict()))
    stale = 0
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        order = torch.randperm(len(labels), generator=generator)
        total, correct, seen = 0.0, 0, 0
        for start in range(0, len(order), cfg.batch_size):
            idx = order[start:start + cfg.batch_size]
            x = _pick_clips(features[idx], generator).float()
            logits = model(x)
            loss = loss_fn(logits, labels[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
            correct += (logits.argmax(1) == labels[idx]).sum().item()
            seen += len(idx)
        train_loss, train_acc = total / seen, correct / seen
        val_loss, val_acc = _evaluate(model, val) if len(val.labels) else (train_loss, train_acc)
        if live is not None:
            for name, value in (("train/loss", train_loss), ("train/accuracy", train_acc),
                                ("val/loss", val_loss), ("val/accuracy", val_acc)):
                live.log_metric(name, value)
            live.next_step()
        logger.info("epoch %3d  train loss %.4f acc %.3f  val loss %.4f acc %.3f",
                    epoch, train_loss, train_acc, val_loss, val_acc)
        score = (val_acc, -val_loss)
        result.epochs_run = epoch
        if best is None or score > best:
            best, stale = score, 0
            result.best_epoch, result.best_val_accuracy, result.best_val_loss = epoch, val_acc, val_loss
            result.state_dict = copy.deepcopy(model.state_dict())
        else:
            stale += 1
            if stale >= cfg.patience:
                logger.info("early stop: no better validation score for %d epochs", cfg.patience)
                break
    return result
