"""Fine-tuning the backbone's last blocks together with a temporal head, end to end on the train clips' frames.

Frozen ImageNet features cap what a head can learn; fine-tuning lets the last blocks adapt to the
actions. The recipe is progressive, as in the CNN-RNN systems this project grew from: the head alone
for `freeze_epochs`, then the chosen blocks learn too (`finetune.layers`), with AdamW at a rate for
the blocks and one for the head (cosine decay), gradient accumulation, bf16 autocast on a GPU (fp32
on a CPU), and early stopping on the validation clips, on the training loop every model here learns by
(model.loop). Every batch norm keeps its ImageNet statistics (eval mode, TSN's partial batch norm):
batches of a few clips say little about them.

What makes it affordable on a CPU: each clip is decoded once, `samplings` samplings of T frames
(the centred one and jittered ones, sampled as extract samples views), held for every epoch, one
drawn per clip per epoch. And since the blocks before the first learning one never change, their
output is computed once per frame, by extract's engines in the precision the device runs natively
(OpenVINO bf16 on an AVX512-BF16 CPU), and held in fp16 in place of the images wherever it is
smaller (Lite0's last two blocks start from 192×7×7 numbers per frame, an eighth of the bytes of a
3×224×224 image); elsewhere (ResNet50's layer3 starts from 512×28×28) the images are held and the
frozen blocks run at each step.

Interrupted, a run resumes: the prepared inputs, and after every epoch the learning weights, the
optimizer, the schedule, the random state and the early-stopping record, are written to a work
folder, and a run of the same params on the same clips goes on after the last epoch written.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from actrec.errors import ActrecError
from actrec.features.backbones import Backbone
from actrec.features.engines import BackboneRunner, resolve_engine
from actrec.features.extractor import clip_loader
from actrec.features.sources.image import ClipDataset
from actrec.files import output_dir, read_torch, write_torch
from actrec.model.heads import build_head
from actrec.model.loop import EarlyStopping, evaluate, snapshot, train_one_epoch, warmup_cosine
from actrec.model.tuned import FinetuneError, Tuned, blocks, learning_blocks, trunk_is_held
from actrec.params import FinetuneParams, ModelParams, Params
from actrec.progress import progress
from actrec.runtime import Runtime

logger = logging.getLogger(__name__)

FORMAT = 1  # of the work folder's files: another format is not resumed from


@dataclass
class Inputs:
    """One part's clips, prepared: inputs (N, samplings, T, ...) uint8 images or the trunk's fp16 output."""

    inputs: torch.Tensor
    labels: torch.Tensor
    clip_ids: list[str]
    failed: list[dict] = field(default_factory=list)


def _key(record: dict) -> str:
    return hashlib.sha1(json.dumps({**record, "format": FORMAT}, sort_keys=True, default=str).encode()).hexdigest()[:12]


def prepare(
    table: pd.DataFrame,
    tuned: Tuned,
    classes: list[str],
    samplings: int,
    held: bool,
    params: Params,
    runtime: Runtime,
) -> Inputs:
    """Decode each clip's samplings once (DataLoader workers, as extract decodes), and where the trunk's output is
    held, run the trunk on them now. A clip that cannot be decoded is reported and left out."""
    if table.empty:  # a split without val clips
        return Inputs(torch.empty(0), torch.empty(0, dtype=torch.long), [])
    cfg = params.extract
    dataset = ClipDataset(
        table["path"],
        table["fingerprint"],
        tuned.backbone,
        cfg.frames,
        samplings,
        params.seed,
        sampling=cfg.sampling,
        stride=cfg.stride,
    )
    device, precision, batch_size = runtime.device, runtime.precision, runtime.batch_size
    loader = clip_loader(dataset, 4 * samplings * cfg.frames, runtime.num_workers, device)
    if held:  # the trunk runs as extract runs a backbone: by its engines, in the precision extract's runtime runs
        engine = resolve_engine(runtime.engine, device, precision, len(table) * samplings * cfg.frames)
        trunk = BackboneRunner(replace(tuned.backbone, model=tuned.trunk), device, precision, batch_size, engine)
    kept, parts, failed = [], [], []
    for batch in progress(loader, total=len(loader), desc="decode", unit="batch"):
        for i, error in zip(batch.positions, batch.errors, strict=True):
            if error:
                logger.warning("skipping %s: %s", table["clip_id"].iat[i], error)
                failed.append({"clip_id": table["clip_id"].iat[i], "reason": error})
            else:
                kept.append(i)
        if batch.frames is None:
            continue
        images = batch.images(torch.device("cpu"), tuned.backbone)  # (clips·samplings·T, 3, S, S) uint8
        if held:
            with torch.inference_mode():
                outputs = [trunk(part.to(device)).to("cpu", torch.float16) for part in images.split(batch_size)]
            images = torch.cat(outputs)
        parts.extend(images.view(-1, samplings, cfg.frames, *images.shape[1:]).unbind(0))
    if not parts:
        raise FinetuneError(f"finetune: none of the {len(table)} clips could be decoded (reasons in the log)")
    label_ids = {c: i for i, c in enumerate(classes)}
    return Inputs(
        torch.stack(parts),
        torch.tensor([label_ids[table["label"].iat[i]] for i in kept]),
        [table["clip_id"].iat[i] for i in kept],
        failed,
    )


@dataclass
class FinetuneResult:
    """What the run did: each epoch's figures (the dvclive curves), the best epoch, and where the time went."""

    learning: list[str]
    head: str
    held: bool
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_val_accuracy: float = 0.0
    fine_tuned: bool = False  # False: an epoch of the head alone validated best, and the pretrained blocks are kept
    resumed_after_epoch: int = 0
    train_clips: int = 0
    val_clips: int = 0
    failed: list[dict] = field(default_factory=list)
    prepare_seconds: float = 0.0
    train_seconds: float = 0.0

    def report(self, runtime: Runtime) -> dict[str, Any]:
        """What reports/finetune.json records."""
        kept = {k: v for k, v in asdict(self).items() if k not in ("history", "failed", "held")}
        return {
            "enabled": True,
            **kept,
            "best_val_accuracy": round(self.best_val_accuracy, 4),
            "inputs_held": "trunk output" if self.held else "images",
            "epochs_run": len(self.history),
            "failed": len(self.failed),
            "device": runtime.device.type,
            "training_precision": "bf16" if runtime.device.type == "cuda" else "fp32",
            # the held trunk output was computed by extract's engines, in the precision of extract's runtime
            "trunk_precision": runtime.precision if self.held else "as training",
            "prepare_seconds": round(self.prepare_seconds, 1),
            "train_seconds": round(self.train_seconds, 1),
        }


def _load(path: Path, key: str) -> dict | None:
    """A work-folder file written for `key` (the same params and clips), else None."""
    if not path.is_file():
        return None
    try:
        content = read_torch(path, "a fine-tuning work file", mmap=True)
    except ActrecError as err:  # not a file this module wrote whole (they appear only complete)
        logger.warning("ignoring it: %s", err)
        return None
    return content if isinstance(content, dict) and content.get("key") == key else None


class _Run:
    """One fine-tuning run's changing state, written to the work folder after every epoch and resumed from it."""

    def __init__(self, tuned: Tuned, cfg: FinetuneParams, train_clips: int, seed: int, result: FinetuneResult) -> None:
        self.tuned, self.cfg, self.result = tuned, cfg, result
        self.generator = torch.Generator().manual_seed(seed)  # the epochs' orders and samplings
        self.optimizer = torch.optim.AdamW(
            [
                {"params": list(tuned.head.parameters()), "lr": cfg.head_lr},
                {"params": tuned.learning_parameters(), "lr": cfg.backbone_lr},
            ],
            weight_decay=cfg.weight_decay,
        )
        updates = math.ceil(math.ceil(train_clips / cfg.batch_size) / cfg.accum_steps)  # per epoch
        total = cfg.epochs * updates
        # the head's rate decays over every epoch, the blocks' over the epochs after they start to learn
        self.scheduler = LambdaLR(
            self.optimizer, [warmup_cosine(total), warmup_cosine(total, start=cfg.freeze_epochs * updates)]
        )
        self.stopping = EarlyStopping(cfg.patience)
        self.best = snapshot(tuned, skip="trunk.")  # what can change: the head and the tail (the trunk never does)
        self.epoch = 0

    def stopped(self) -> bool:
        return self.epoch >= self.cfg.epochs or (self.stopping.exhausted and self.epoch > self.cfg.freeze_epochs)

    def save(self, path: Path, key: str) -> None:
        write_torch(
            path,
            {
                "key": key,
                "epoch": self.epoch,
                "stale": self.stopping.stale,
                "history": self.result.history,
                "best_epoch": self.stopping.best_epoch,
                "best_val_accuracy": self.stopping.best_score,
                "best": self.best,
                "model": snapshot(self.tuned, skip="trunk."),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "generator": self.generator.get_state(),
                "rng": torch.get_rng_state(),  # dropout's, and the GPU's below
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
            },
        )

    def resume(self, saved: dict) -> None:
        self.tuned.load_state_dict({**self.tuned.state_dict(), **saved["model"]})
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        self.generator.set_state(saved["generator"])
        torch.set_rng_state(saved["rng"])
        if saved["cuda_rng"]:
            torch.cuda.set_rng_state_all(saved["cuda_rng"])
        self.epoch, self.best = saved["epoch"], saved["best"]
        self.stopping.stale, self.stopping.best_epoch = saved["stale"], saved["best_epoch"]
        self.stopping.best_score = saved["best_val_accuracy"]
        self.result.history, self.result.resumed_after_epoch = list(saved["history"]), self.epoch

    def epoch_figures(self, train: Inputs, val: Inputs, device: torch.device) -> dict[str, float]:
        """One epoch: the train clips, each on one of its samplings drawn at random (the head alone while the
        blocks are frozen), then the val clips on their centred sampling (extract's view 0); the epoch's
        figures, with the learning rates it started at."""
        cfg, tuned = self.cfg, self.tuned
        head_lr, backbone_lr = self.scheduler.get_last_lr()  # 0 for the blocks while frozen
        tuned.frozen = self.epoch < cfg.freeze_epochs
        n = len(train.labels)
        order = torch.randperm(n, generator=self.generator)
        sampling = torch.randint(train.inputs.shape[1], (n,), generator=self.generator)
        batches = (
            (train.inputs[idx, sampling[idx]].to(device, non_blocking=True), train.labels[idx].to(device))
            for idx in order.split(cfg.batch_size)
        )
        criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        train_loss, train_acc = train_one_epoch(
            tuned, criterion, self.optimizer, self.scheduler, batches, cfg.accum_steps
        )
        val_loss, val_acc = train_loss, train_acc  # without val clips, early stopping watches the training accuracy
        if len(val.labels):
            tuned.eval()
            held_out = (
                (val.inputs[idx, 0].to(device), val.labels[idx])
                for idx in torch.arange(len(val.labels)).split(cfg.batch_size)
            )
            val_loss, val_acc, _ = evaluate(lambda x: tuned(x).softmax(-1), held_out)
        figures = {"train/loss": train_loss, "train/accuracy": train_acc, "val/loss": val_loss, "val/accuracy": val_acc}
        return {**figures, "lr/head": head_lr, "lr/backbone": backbone_lr}

    def end_epoch(self, figures: dict[str, float]) -> None:
        """Record the epoch; keep its state where early stopping counts it the best so far."""
        self.epoch += 1
        self.result.history.append(figures)
        if self.stopping.update(self.epoch, figures["val/accuracy"]):
            self.best = snapshot(self.tuned, skip="trunk.")


def _prepared(path: Path, key: str, table: pd.DataFrame, samplings: int, tuned: Tuned, how: dict) -> Inputs:
    """One part's inputs: from the work folder, where a run of the same params prepared them, else prepared now."""
    content = _load(path, key)
    if content is not None:
        logger.info("inputs of %d clips from %s", len(content["labels"]), path)
        return Inputs(content["inputs"], content["labels"], content["clip_ids"], content["failed"])
    data = prepare(table, tuned, samplings=samplings, **how)
    write_torch(path, {"key": key, **asdict(data)})
    return data


def finetune(
    backbone: Backbone, table: pd.DataFrame, params: Params, runtime: Runtime, work: str | Path
) -> tuple[dict[str, torch.Tensor] | None, FinetuneResult]:
    """Fine-tune on the train clips of the split table, validating on its val clips; return the network's state
    dict with the best epoch's blocks (a weights file's content), or None where an epoch of the head alone
    validated best (the blocks keep their pretrained weights), and the record. `runtime` is extract's (the
    held trunk runs as extract runs the backbone)."""
    cfg, work, device = params.finetune, output_dir(work), runtime.device
    if cfg.freeze_epochs >= cfg.epochs:  # a short run (finetune.epochs: 1) still lets the blocks learn
        logger.warning(
            "finetune.freeze_epochs (%d) leaves no epoch of %d for the blocks: they learn from epoch %d",
            cfg.freeze_epochs,
            cfg.epochs,
            cfg.epochs,
        )
        cfg = replace(cfg, freeze_epochs=cfg.epochs - 1)
    learning = learning_blocks(blocks(backbone), cfg.layers, backbone.name)
    classes = sorted(table["label"].unique(), key=str.lower)
    train, val = (table[table["split"] == p].reset_index(drop=True) for p in ("train", "val"))
    if train.empty:
        raise FinetuneError("finetune: the split has no train clips")
    if val.empty:
        logger.warning("no validation clips: early stopping watches the training accuracy")
    torch.manual_seed(params.seed)  # the head's initial weights, then dropout: torch's is the only RNG used here
    head = build_head(cfg.head, backbone.feature_dim, len(classes), ModelParams())
    tuned = Tuned(backbone, learning, head).to(device)
    held = trunk_is_held(tuned, backbone.image_size)
    result = FinetuneResult(learning, cfg.head, held)
    logger.info(
        "fine-tuning %s (%s learning) with a %s head on %d train / %d val clips on %s, holding the %s",
        backbone.name,
        ", ".join(learning),
        cfg.head,
        len(train),
        len(val),
        device,
        "trunk's output" if held else "decoded images",
    )
    extract = params.extract
    made = {
        "extract": [extract.backbone, extract.frames, extract.sampling, extract.stride],
        "weights_id": backbone.weights_id,
        "preprocessing": backbone.preprocessing.to_json(),
        "seed": params.seed,
        "learning": learning,
        "held": held,
    }
    start = time.perf_counter()
    how = {"classes": classes, "held": held, "params": params, "runtime": runtime}
    parts = {}
    for part, rows, samplings in (("train", train, cfg.samplings), ("val", val, 1)):
        key = _key({**made, "clips": rows[["fingerprint", "label"]].values.tolist(), "samplings": samplings})
        parts[part] = _prepared(work / f"{part}-inputs.pt", key, rows, samplings, tuned, how)
    train_data, val_data = parts["train"], parts["val"]
    result.failed = train_data.failed + val_data.failed
    result.train_clips, result.val_clips = len(train_data.labels), len(val_data.labels)
    result.prepare_seconds = time.perf_counter() - start

    run = _Run(tuned, cfg, len(train_data.labels), params.seed, result)
    run_key = _key(
        {
            **made,
            "train": train_data.clip_ids,
            "val": val_data.clip_ids,
            "finetune": asdict(cfg),
        }
    )
    state = work / "state.pt"
    if (saved := _load(state, run_key)) is not None:
        run.resume(saved)
        logger.info("resuming after epoch %d of %d (%s)", run.epoch, cfg.epochs, state)
    start = time.perf_counter()
    while not run.stopped():
        figures = run.epoch_figures(train_data, val_data, device)
        run.end_epoch(figures)
        logger.info(
            "epoch %3d%s  train loss %.4f acc %.3f  val loss %.4f acc %.3f",
            run.epoch,
            " (head alone)" if run.epoch <= cfg.freeze_epochs else "",
            *(figures[k] for k in ("train/loss", "train/accuracy", "val/loss", "val/accuracy")),
        )
        run.save(state, run_key)
    if run.stopping.exhausted and run.epoch < cfg.epochs:
        logger.info("early stop: no better validation accuracy for %d epochs", cfg.patience)
    result.train_seconds = time.perf_counter() - start
    result.best_epoch, result.best_val_accuracy = run.stopping.best_epoch, run.stopping.best_score
    result.fine_tuned = result.best_epoch > cfg.freeze_epochs
    if not result.fine_tuned:
        logger.info("the head alone validated best (epoch %d): the pretrained weights are kept", result.best_epoch)
        return None, result
    tuned.load_state_dict({**tuned.state_dict(), **run.best})
    state_dict = backbone.network().state_dict()
    # one memory layout, whatever ran the trunk (extract's engines make it channels-last): same weights, same bytes
    return {k: v.detach().cpu().clone(memory_format=torch.contiguous_format) for k, v in state_dict.items()}, result
