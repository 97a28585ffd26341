"""Fine-tuning the backbone's last blocks together with a temporal head, end to end on the train clips' frames.

Frozen ImageNet features cap what a head can learn; fine-tuning lets the last blocks adapt to the
actions. The recipe is progressive, as in the CNN-RNN systems this project grew from: the head alone
for `freeze_epochs`, then the chosen blocks learn too (`finetune.layers`), with AdamW at a rate for
the blocks and one for the head (cosine decay), gradient accumulation, bf16 autocast on a GPU (fp32
on a CPU), and early stopping on the validation clips. Every batch norm keeps its ImageNet
statistics (eval mode, TSN's partial batch norm): batches of a few clips say little about them.

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

import contextlib
import hashlib
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR
from torchvision.models import EfficientNet, ResNet

from actrec.devices import resolve_batch_size, resolve_num_workers, resolve_precision
from actrec.errors import ActrecError
from actrec.features.backbones import Backbone
from actrec.features.backbones.lite import LiteFeatures
from actrec.features.engines import BackboneRunner, resolve_engine
from actrec.features.extractor import ClipDataset, clip_loader
from actrec.files import output_dir, write_torch
from actrec.model.heads import build_head
from actrec.params import FinetuneParams, ModelParams, Params
from actrec.progress import progress

logger = logging.getLogger(__name__)

FORMAT = 1  # of the work folder's files: another format is not resumed from


class FinetuneError(ActrecError):
    """Fine-tuning that cannot run with these params or clips."""


class _ConvNormAct(nn.Module):
    """EfficientNet-Lite's stem or head: convolution, batch norm, swish."""

    def __init__(self, conv: nn.Module, norm: nn.Module, act: nn.Module) -> None:
        super().__init__()
        self.conv, self.norm, self.act = conv, norm, act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))


class _LiteBlock(nn.Module):
    """One MBConv block with the drop-connect rate EfficientNet.extract_features gives it."""

    def __init__(self, block: nn.Module, drop_connect_rate: float) -> None:
        super().__init__()
        self.block, self.rate = block, drop_connect_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x, drop_connect_rate=self.rate)


def blocks(backbone: Backbone) -> list[tuple[str, nn.Module]]:
    """The backbone as named blocks in order, sharing its modules; run one after the other and average-pooled,
    they give its features. ResNets: stem, layer1 .. layer4; torchvision's EfficientNets: features.0 ..
    features.8, as the builder names its stages; EfficientNet-Lite: stem, blocks.0 .. blocks.N, head."""
    model = backbone.model
    if isinstance(model, ResNet):
        stem = nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool)
        return [("stem", stem), *((f"layer{i}", getattr(model, f"layer{i}")) for i in range(1, 5))]
    if isinstance(model, EfficientNet):
        return [(f"features.{i}", stage) for i, stage in enumerate(model.features)]
    if isinstance(model, LiteFeatures):
        net = model.net
        rate = net._global_params.drop_connect_rate or 0.0
        mbconv = [(f"blocks.{i}", _LiteBlock(b, rate * i / len(net._blocks))) for i, b in enumerate(net._blocks)]
        stem, head = (
            _ConvNormAct(net._conv_stem, net._bn0, net._swish),
            _ConvNormAct(net._conv_head, net._bn1, net._swish),
        )
        return [("stem", stem), *mbconv, ("head", head)]
    raise FinetuneError(
        f"finetune: no blocks known for backbone {backbone.name}; fine-tune a ResNet, a torchvision EfficientNet "
        f"or EfficientNet-Lite"
    )


def network(backbone: Backbone) -> nn.Module:
    """The module whose state dict a weights file holds, named as its builder names it (what extract.weights
    loads): Lite's network sits inside its pooling wrapper; a torchvision model's classifier is already gone."""
    return backbone.model.net if isinstance(backbone.model, LiteFeatures) else backbone.model


def learning_blocks(named: list[tuple[str, nn.Module]], layers: int | list[str], backbone: str) -> list[str]:
    """The names of the blocks finetune.layers makes learn: the last N, or those named."""
    names = [n for n, _ in named]
    if isinstance(layers, int):
        if layers > len(names):
            raise FinetuneError(f"params: finetune.layers = {layers}, but {backbone} has {len(names)} blocks")
        return names[len(names) - layers :]
    unknown = [n for n in layers if n not in names]
    if unknown:
        raise FinetuneError(
            f"params: finetune.layers names {', '.join(map(repr, unknown))}, not a block of {backbone}; "
            f"its blocks: {', '.join(names)}"
        )
    return [n for n in names if n in layers]


class Tuned(nn.Module):
    """Frozen trunk → the blocks from the first learning one on → average pool → the temporal head over T frames.

    Batch norms stay in eval mode whatever the mode (their ImageNet statistics are kept), and so does the
    trunk, whose output may be computed once and held (`trunk_is_held`).
    """

    def __init__(self, backbone: Backbone, learning: list[str], head: nn.Module) -> None:
        super().__init__()
        named = blocks(backbone)
        cut = next(i for i, (n, _) in enumerate(named) if n in learning)
        self.backbone, self.head = backbone, head
        self.trunk = nn.Sequential(*(m for _, m in named[:cut])).requires_grad_(False)
        self.tail = nn.Sequential(*(m for _, m in named[cut:]))
        for name, module in named[cut:]:
            module.requires_grad_(name in learning)

    def train(self, mode: bool = True) -> Tuned:
        super().train(mode)
        self.trunk.eval()
        for module in self.tail.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()
        return self

    def trunk_output(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images (n, 3, S, S) → the trunk's output (what the tail starts from)."""
        with torch.no_grad():
            return self.trunk(self.backbone.normalize(images))

    def forward(self, x: torch.Tensor, clips: int, frozen: bool) -> torch.Tensor:
        """Logits of `clips` clips from their frames' inputs x (clips·T, ...): uint8 images, or the trunk's output
        held for them (floating point). `frozen`: the blocks do not learn this step (the head alone)."""
        x = self.trunk_output(x) if x.dtype == torch.uint8 else x.float()
        with torch.no_grad() if frozen else contextlib.nullcontext():
            features = self.tail(x).mean(dim=(2, 3))
        return self.head(features.float().view(clips, -1, features.shape[-1]))

    def learning_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.tail.parameters() if p.requires_grad]


def trunk_is_held(tuned: Tuned, image_size: int) -> bool:
    """Whether the trunk's output (fp16) takes fewer bytes than the uint8 images it comes from."""
    with torch.no_grad():
        out = tuned.trunk_output(torch.zeros(1, 3, image_size, image_size, dtype=torch.uint8))
    return out.numel() * 2 < 3 * image_size * image_size


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
    device: torch.device,
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
    loader = clip_loader(dataset, 4 * samplings * cfg.frames, resolve_num_workers("auto", device), device)
    if held:  # the trunk runs as extract runs a backbone: by its engines, in the precision the device runs natively
        precision, batch_size = resolve_precision("auto", device), resolve_batch_size("auto", device)
        engine = resolve_engine("auto", device, precision, len(table) * samplings * cfg.frames)
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


def _autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on a GPU; fp32 on a CPU, where bf16 training kernels are slow or emulated."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()


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

    def report(self, device: torch.device) -> dict[str, Any]:
        """What reports/finetune.json records."""
        kept = {k: v for k, v in asdict(self).items() if k not in ("history", "failed", "held")}
        return {
            "enabled": True,
            **kept,
            "best_val_accuracy": round(self.best_val_accuracy, 4),
            "inputs_held": "trunk output" if self.held else "images",
            "epochs_run": len(self.history),
            "failed": len(self.failed),
            "device": device.type,
            "training_precision": "bf16" if device.type == "cuda" else "fp32",
            # the held trunk output was computed by extract's engines, in the precision the device runs natively
            "trunk_precision": resolve_precision("auto", device) if self.held else "as training",
            "prepare_seconds": round(self.prepare_seconds, 1),
            "train_seconds": round(self.train_seconds, 1),
        }


def _load(path: Path, key: str) -> dict | None:
    """A work-folder file written for `key` (the same params and clips), else None."""
    if not path.is_file():
        return None
    try:
        content = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # not a file this module wrote whole (they appear only complete)
        logger.warning("ignoring %s: torch.load cannot read it (%s)", path, type(err).__name__)
        return None
    return content if isinstance(content, dict) and content.get("key") == key else None


def _learning_state(tuned: Tuned) -> dict[str, torch.Tensor]:
    """A CPU copy of what can change: the head and the tail (the trunk never does)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in tuned.state_dict().items() if not k.startswith("trunk.")}


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

        def cosine(start: int) -> Callable[[int], float]:
            return lambda step: 0.5 * (1 + math.cos(math.pi * max(step - start, 0) / max(total - start, 1)))

        # the head's rate decays over every epoch, the blocks' over the epochs after they start to learn
        self.scheduler = LambdaLR(self.optimizer, [cosine(0), cosine(cfg.freeze_epochs * updates)])
        self.best = _learning_state(tuned)
        self.epoch = self.stale = 0

    def stopped(self) -> bool:
        return self.epoch >= self.cfg.epochs or (
            self.stale >= self.cfg.patience and self.epoch > self.cfg.freeze_epochs
        )

    def save(self, path: Path, key: str) -> None:
        r = self.result
        write_torch(
            path,
            {
                "key": key,
                "epoch": self.epoch,
                "stale": self.stale,
                "history": r.history,
                "best_epoch": r.best_epoch,
                "best_val_accuracy": r.best_val_accuracy,
                "best": self.best,
                "model": _learning_state(self.tuned),
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
        self.epoch, self.stale, self.best = saved["epoch"], saved["stale"], saved["best"]
        r = self.result
        r.history, r.best_epoch, r.best_val_accuracy = (
            list(saved["history"]),
            saved["best_epoch"],
            saved["best_val_accuracy"],
        )
        r.resumed_after_epoch = self.epoch

    def train_epoch(self, data: Inputs, device: torch.device) -> tuple[float, float, bool]:
        """One epoch over the train clips, each on one of its samplings drawn at random: loss, accuracy, and
        whether the blocks were frozen (the head alone)."""
        cfg, tuned = self.cfg, self.tuned
        frozen = self.epoch < cfg.freeze_epochs
        tuned.train()
        if frozen:
            tuned.tail.eval()  # the head alone learns on what the blocks give at inference
        n = len(data.labels)
        order = torch.randperm(n, generator=self.generator)
        sampling = torch.randint(data.inputs.shape[1], (n,), generator=self.generator)
        loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        total, correct = 0.0, 0
        batches = order.split(cfg.batch_size)
        for i, idx in enumerate(batches):
            x = data.inputs[idx, sampling[idx]].flatten(0, 1).to(device, non_blocking=True)
            y = data.labels[idx].to(device)
            with _autocast(device):
                logits = tuned(x, len(idx), frozen).float()
            loss = loss_fn(logits, y)
            (loss / cfg.accum_steps).backward()
            if (i + 1) % cfg.accum_steps == 0 or i + 1 == len(batches):
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
                self.scheduler.step()
            total += loss.item() * len(idx)
            correct += (logits.argmax(1) == y).sum().item()
        return total / n, correct / n, frozen

    def end_epoch(self, figures: dict[str, float]) -> None:
        """Record the epoch; keep its state only if it validates better than every earlier one. A tie keeps the
        earlier state, whose blocks moved less from their pretrained weights: on small data the later states
        mostly fit the training clips better (docs/benchmarks.md, Fine-tuning)."""
        self.epoch += 1
        r = self.result
        r.history.append(figures)
        if r.best_epoch == 0 or figures["val/accuracy"] > r.best_val_accuracy:
            r.best_epoch, r.best_val_accuracy, self.stale = self.epoch, figures["val/accuracy"], 0
            self.best = _learning_state(self.tuned)
        else:
            self.stale += 1


def _evaluate(tuned: Tuned, data: Inputs, batch_size: int, device: torch.device) -> tuple[float, float]:
    """Loss and accuracy on the centred sampling of each clip (extract's view 0)."""
    tuned.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for idx in torch.arange(len(data.labels)).split(batch_size):
            x = data.inputs[idx, 0].flatten(0, 1).to(device)
            y = data.labels[idx].to(device)
            with _autocast(device):
                logits = tuned(x, len(idx), frozen=True).float()
            loss += nn.functional.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
    return loss / len(data.labels), correct / len(data.labels)


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
    backbone: Backbone, table: pd.DataFrame, params: Params, device: torch.device, work: str | Path
) -> tuple[dict[str, torch.Tensor] | None, FinetuneResult]:
    """Fine-tune on the train clips of the split table, validating on its val clips; return the network's state
    dict with the best epoch's blocks (a weights file's content), or None where an epoch of the head alone
    validated best (the blocks keep their pretrained weights), and the record."""
    cfg, work = params.finetune, output_dir(work)
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
    how = {"classes": classes, "held": held, "params": params, "device": device}
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
        head_lr, backbone_lr = run.scheduler.get_last_lr()  # the epoch's first rates
        train_loss, train_acc, frozen = run.train_epoch(train_data, device)
        val_loss, val_acc = (
            _evaluate(tuned, val_data, cfg.batch_size, device) if len(val_data.labels) else (train_loss, train_acc)
        )
        run.end_epoch(
            {
                "train/loss": train_loss,
                "train/accuracy": train_acc,
                "val/loss": val_loss,
                "val/accuracy": val_acc,
                "lr/head": head_lr,
                "lr/backbone": 0.0 if frozen else backbone_lr,
            }
        )
        logger.info(
            "epoch %3d%s  train loss %.4f acc %.3f  val loss %.4f acc %.3f",
            run.epoch,
            " (head alone)" if frozen else "",
            train_loss,
            train_acc,
            val_loss,
            val_acc,
        )
        run.save(state, run_key)
    if run.stale >= cfg.patience and run.epoch < cfg.epochs:
        logger.info("early stop: no better validation accuracy for %d epochs", cfg.patience)
    result.train_seconds = time.perf_counter() - start
    result.fine_tuned = result.best_epoch > cfg.freeze_epochs
    if not result.fine_tuned:
        logger.info("the head alone validated best (epoch %d): the pretrained weights are kept", result.best_epoch)
        return None, result
    tuned.load_state_dict({**tuned.state_dict(), **run.best})
    state_dict = network(backbone).state_dict()
    # one memory layout, whatever ran the trunk (extract's engines make it channels-last): same weights, same bytes
    return {k: v.detach().cpu().clone(memory_format=torch.contiguous_format) for k, v in state_dict.items()}, result
