"""Training a temporal head on cached features: the head's recipe, run by the one training loop (model.loop).

Features come as float16, from memory or streamed from the feature file (features.stream), and are
cast to float32 per batch, so an epoch costs seconds and no video is decoded. Under torchrun one
model trains with DistributedDataParallel, each rank on its share of every batch. The recipe
(every knob in params.yaml's train section): AdamW, label smoothing, linear warm-up then cosine
decay per step, gradient clipping, whole-frame dropout, optional class-balanced sampling, one of
the K views of each video drawn per epoch, and early stopping on validation accuracy. All
randomness comes from the seed, so a run on CPU repeats exactly.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from actrec.distributed import SINGLE, World, gather
from actrec.features.store import FeatureSet
from actrec.features.stream import batches, per_rank_batch, share
from actrec.model.heads import build_head
from actrec.model.loop import EarlyStopping, evaluate, snapshot, train_one_epoch, warmup_cosine
from actrec.model.proba import predict_proba
from actrec.params import ModelParams, TrainParams
from actrec.progress import progress

logger = logging.getLogger(__name__)


def keep_freed_memory() -> None:
    """Have glibc keep freed memory in the process instead of handing it back to the OS.

    Each training step allocates and frees the same few MB tensors; with glibc's defaults the
    freed top of the heap is returned and the next step page-faults it back in, which slows an
    epoch and makes it vary from run to run (figures: docs/benchmarks.md, Training speed). The usual cure is
    jemalloc or tcmalloc through LD_PRELOAD; setting glibc's trim and mmap thresholds (mallopt)
    does the same with nothing to install. No-op where libc is not glibc.
    """
    libc = ctypes.util.find_library("c")
    if libc is None:
        return
    mallopt = getattr(ctypes.CDLL(libc), "mallopt", None)
    if mallopt is not None:
        m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's malloc.h
        mallopt(m_trim_threshold, 1 << 30)
        mallopt(m_mmap_threshold, 32 << 20)  # glibc's largest; bigger blocks are still mmap'ed


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; the same params and seed give the same model on CPU."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def _pick_view(features: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """(B, K, T, D) → (B, T, D): a random one of the K views per video (view 0 when no generator)."""
    if features.shape[1] == 1 or generator is None:
        return features[:, 0]
    choice = torch.randint(features.shape[1], (features.shape[0],), generator=generator)
    return features[torch.arange(features.shape[0]), choice]


@dataclass
class FitResult:
    best_epoch: int
    best_val_accuracy: float
    best_val_loss: float
    epochs_run: int
    state_dict: dict[str, Any]
    refit_epochs: int = 0  # epochs of the refit on train + val (0: none)


def _whole(world: World, share: np.ndarray, clips: int, classes: int) -> np.ndarray:
    """Every clip's probabilities from each rank's share of them (rank r scored clips r, r + size, ...)."""
    whole = np.empty((clips, classes), dtype=np.float32)
    for rank, part in enumerate(gather(world, share)):
        if len(part):
            whole[rank :: world.size] = part
    return whole


def _distribute(model: nn.Module, world: World) -> nn.Module:
    """The model DistributedDataParallel wraps under torchrun (gradients averaged over ranks), else itself."""
    if world.size == 1:
        return model
    device = next(model.parameters()).device
    return nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def _epoch_order(labels: torch.Tensor, balanced: bool, generator: torch.Generator) -> torch.Tensor:
    """The videos of one epoch: a permutation, or (balanced) N draws with each class equally likely."""
    if not balanced:
        return torch.randperm(len(labels), generator=generator)
    weights = 1.0 / torch.bincount(labels)[labels].double()
    return torch.multinomial(weights, len(labels), replacement=True, generator=generator)


def _drop_frames(x: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """Zero whole frames (B, T, D) with probability p: the head must not hang on any single frame."""
    if p <= 0:
        return x
    keep = torch.rand(x.shape[:2], generator=generator) >= p
    return x * keep.unsqueeze(-1)


def fit(
    model: nn.Module,
    train: FeatureSet,
    val: FeatureSet,
    cfg: TrainParams,
    seed: int,
    live: Any = None,
    epochs: int | None = None,
    world: World = SINGLE,
    watch: Callable[[np.ndarray], None] | None = None,
    title: str = "train",
) -> FitResult:
    """Train with AdamW, label smoothing, warm-up + cosine; stop early on validation; return the best state.

    With `epochs`, train exactly that many epochs of the same schedule and return the last state (a refit,
    whose epoch count validation chose before). Trains on the model's device. Under torchrun (`world`)
    each rank takes batch_size / world size clips of every batch, so the recipe is the single process's.
    `watch` is handed every validation clip's class probabilities after each epoch (the head choice weighs
    clip by clip). `title` names the fit (head, fold) in its progress bar and on each epoch's log line.
    """
    per_rank = per_rank_batch(cfg.batch_size, world)
    generator = seed_everything(seed + world.rank)  # clip draws, frame and model dropout: each rank its own
    order_generator = torch.Generator().manual_seed(seed)  # the epochs' orders: the same on every rank
    device = next(model.parameters()).device
    net = _distribute(model, world)
    labels = torch.from_numpy(train.labels).long()
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    steps = math.ceil(math.ceil(len(labels) / world.size) / per_rank)  # per epoch
    scheduler = LambdaLR(optimizer, warmup_cosine(cfg.epochs * steps, cfg.warmup_epochs * steps))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    val_share = slice(world.rank, None, world.size)
    val_labels = torch.from_numpy(val.labels[val_share]).long()
    stopping = EarlyStopping(cfg.patience if epochs is None else math.inf)
    result = FitResult(0, 0.0, float("inf"), 0, snapshot(model))
    planned = range(1, (epochs or cfg.epochs) + 1)
    bar = progress(planned, desc=title, unit="epoch", disable=not world.is_main)
    for epoch in bar:
        order = _epoch_order(labels, cfg.balanced, order_generator)
        lr = scheduler.get_last_lr()[0]
        train_batches = (
            (
                _drop_frames(_pick_view(features, generator).float(), cfg.feature_dropout, generator).to(device),
                labels[idx].to(device),
            )
            for idx, features in batches(train.features, share(order, world), per_rank)
        )
        train_loss, train_acc = train_one_epoch(
            net, loss_fn, optimizer, scheduler, train_batches, grad_clip=cfg.grad_clip, world=world
        )
        if len(val.labels):
            val_batches = [(val.features[val_share], val_labels)] if len(val_labels) else []
            val_loss, val_acc, probs = evaluate(functools.partial(predict_proba, model), val_batches, world)
            if watch is not None:
                watch(_whole(world, probs, len(val.labels), len(val.classes)))
        else:
            val_loss, val_acc = train_loss, train_acc
        if live is not None:
            for name, value in (
                ("train/loss", train_loss),
                ("train/accuracy", train_acc),
                ("val/loss", val_loss),
                ("val/accuracy", val_acc),
                ("train/lr", lr),
            ):
                live.log_metric(name, value)
            live.next_step()
        logger.info(
            "%s epoch %3d  lr %.2e  train loss %.4f acc %.3f  val loss %.4f acc %.3f",
            title,
            epoch,
            lr,
            train_loss,
            train_acc,
            val_loss,
            val_acc,
        )
        result.epochs_run = epoch
        if stopping.update(epoch, val_acc) or epochs is not None:  # a refit keeps its last epoch
            result.best_epoch, result.best_val_accuracy, result.best_val_loss = epoch, val_acc, val_loss
            result.state_dict = snapshot(model)
        elif stopping.exhausted:
            logger.info("%s: early stop, no better validation score for %d epochs", title, cfg.patience)
            break
    bar.close()
    return result


def fresh_head(
    model_params: ModelParams, head: str, data: FeatureSet, seed: int, device: torch.device | str = "cpu"
) -> nn.Module:
    """The untrained `head` for `data`'s features and classes, seeded so its initial weights repeat too."""
    seed_everything(seed)
    return build_head(head, data.features.shape[-1], len(data.classes), model_params).to(device)


def train_head(
    model_params: ModelParams,
    cfg: TrainParams,
    seed: int,
    train: FeatureSet,
    val: FeatureSet,
    live: Any = None,
    world: World = SINGLE,
    device: torch.device | str = "cpu",
    watch: Callable[[np.ndarray], None] | None = None,
    title: str = "",
) -> tuple[nn.Module, FitResult]:
    """Build the head params describe, fit it, load its best state (`watch`: as fit's, on the validation clips).

    With train.refit, validation only chooses the epoch count: a fresh head is then trained on train
    and val together for that many epochs of the same schedule, so no labelled clip is left unused. `title`
    names the fit in the log (the head's name where empty).
    """
    title = title or model_params.head
    model = fresh_head(model_params, model_params.head, train, seed, device)
    result = fit(model, train, val, cfg, seed, live, world=world, watch=watch, title=title)
    if cfg.refit and len(val.labels):
        logger.info(
            "refit on %d train + val clips for %d epochs", len(train.labels) + len(val.labels), result.best_epoch
        )
        model = fresh_head(model_params, model_params.head, train, seed, device)
        both = train.join(val)
        refit = fit(model, both, both.part(), cfg, seed, epochs=result.best_epoch, world=world, title=f"{title} refit")
        result.state_dict = refit.state_dict
        result.refit_epochs = result.best_epoch
    model.load_state_dict(result.state_dict)
    return model, result
