"""Extracting features from videos: decode ahead in DataLoader workers, run the backbone in batches, cache.

Workers decode, sample and (on a CPU) resize clips, and hand each batch over as one uint8 buffer:
one message and, for a GPU, one pinned copy per batch rather than per clip. In GPU runs the workers
send the decoded frames as they are and the GPU resizes and crops them, which leaves the workers'
cores to decoding alone (`extract.resize_on`). A clip that fails to decode comes back as an error
string and is reported by the caller, never raised, so one bad video cannot stop a run.
`fill_cache` extracts the clips of a table that the feature cache lacks, shard by shard.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from actrec.data.clips import VideoError
from actrec.data.decoding import read_clip
from actrec.data.ntu_skeleton import SKELETON
from actrec.devices import resolve_batch_size, resolve_num_workers
from actrec.distributed import SINGLE, World, gather
from actrec.features.backbones import Backbone, load_backbone
from actrec.features.engine_trial import EngineChoice, choose
from actrec.features.engines import RUNTIMES, BackboneRunner, resolve_engine
from actrec.features.skeleton import skeleton_features
from actrec.features.store import ExtractionSettings, FeatureCache
from actrec.params import ExtractParams
from actrec.progress import progress

logger = logging.getLogger(__name__)


def clip_seed(key: str, seed: int) -> int:
    """A per-video seed for jittered views that does not depend on the order videos are visited."""
    return zlib.crc32(key.encode()) ^ seed


def resize_on_device(resize_on: str, device: torch.device) -> bool:
    """extract.resize_on: `auto` resizes on the GPU in GPU runs, in the decoding workers otherwise."""
    return resize_on == "device" or (resize_on == "auto" and device.type == "cuda")


@dataclass
class DecodedBatch:
    """The clips one worker decoded for one batch, their frames back to back in one flat uint8 buffer.

    Each readable clip's frames are (n, H, W, 3) decoded frames when `resized` is False, else images
    resized and cropped to (n, 3, S, S), stored channels-last (as torch's kernels take them) or
    channels-first (as the CPU runtimes take them) per `channels_last`.
    """

    positions: list[int]  # the clips' positions in the dataset, in order
    frames: torch.Tensor | None  # flat uint8 buffer of every readable clip's frames; None if none is
    shapes: list[tuple[int, int, int]]  # per readable clip: (n, H, W) of its frames in the buffer
    frame_indices: list[np.ndarray | None]  # per clip: (K, T) indices, None when it failed
    errors: list[str]  # per clip: "" or why it could not be read
    resized: bool
    channels_last: bool

    def pin_memory(self) -> DecodedBatch:
        """Called by the DataLoader's pinning thread (pin_memory=True, on CUDA): page-locked, the buffer copies
        to the GPU asynchronously. Without this method the loader would hand the dataclass over unpinned."""
        return self if self.frames is None else replace(self, frames=self.frames.pin_memory())

    def images(self, device: torch.device, backbone: Backbone) -> torch.Tensor:
        """uint8 (N, 3, S, S) on `device`, the readable clips' images in order: one copy of the buffer there,
        then views of it, resized and cropped there when the workers did not."""
        flat = self.frames.to(device, non_blocking=True)
        parts, offset = [], 0
        for n, height, width in self.shapes:
            size = n * height * width * 3
            chunk = flat[offset : offset + size]
            offset += size
            if not self.resized:
                parts.append(backbone.preprocess(chunk.view(n, height, width, 3)))
            elif self.channels_last:
                parts.append(chunk.view(n, height, width, 3).permute(0, 3, 1, 2))
            else:
                parts.append(chunk.view(n, 3, height, width))
        return parts[0] if len(parts) == 1 else torch.cat(parts)


class ClipDataset(Dataset):
    """Decodes and (with `resize`) preprocesses one video per item; errors become strings.

    An item is (position, frames or None, frame indices or None, error); `collate` joins a batch of
    them into one DecodedBatch in the worker.
    """

    def __init__(
        self,
        paths: Sequence[str],
        keys: Sequence[str],
        backbone: Backbone,
        frames: int,
        views: int,
        seed: int,
        *,
        resize: bool = True,
        channels_last: bool = False,
        decoder: str = "auto",
        sampling: str = "uniform",
        stride: int = 1,
    ) -> None:
        self.paths, self.keys, self.backbone = list(paths), list(keys), backbone
        self.frames, self.views, self.seed, self.sampling, self.stride = frames, views, seed, sampling, stride
        self.resize, self.channels_last, self.decoder = resize, channels_last, decoder

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor | None, np.ndarray | None, str]:
        seed = clip_seed(self.keys[i], self.seed)
        try:
            frames, indices = read_clip(
                self.paths[i], self.frames, self.views, seed, self.sampling, self.stride, decoder=self.decoder
            )
            images = torch.from_numpy(frames)
            if self.resize:
                images = self.backbone.preprocess(images)  # (n, 3, S, S), a view of channels-last memory
                images = images.permute(0, 2, 3, 1) if self.channels_last else images
        except VideoError as err:
            return i, None, None, str(err)
        except Exception as err:  # a decoder bug on one odd file must not end the run
            return i, None, None, f"unexpected {type(err).__name__}: {err}"
        return i, images.contiguous(), indices, ""

    def collate(self, items: list[tuple[int, torch.Tensor | None, np.ndarray | None, str]]) -> DecodedBatch:
        good = [images for _, images, _, _ in items if images is not None]
        shapes = [
            (len(x), x.shape[2], x.shape[3]) if self.resize and not self.channels_last else x.shape[:3] for x in good
        ]
        return DecodedBatch(
            [i for i, _, _, _ in items],
            torch.cat([x.reshape(-1) for x in good]) if good else None,
            [tuple(int(d) for d in shape) for shape in shapes],
            [indices for _, _, indices, _ in items],
            [error for _, _, _, error in items],
            self.resize,
            self.channels_last,
        )


def clip_loader(dataset: ClipDataset, batch_size: int, num_workers: int, device: torch.device) -> DataLoader:
    """Batches of whole clips, as many as fill `batch_size` images, decoded by `num_workers` processes
    (and pinned for asynchronous copies when they are bound for a GPU)."""
    per_clip = dataset.views * dataset.frames
    return DataLoader(
        dataset,
        batch_size=max(1, batch_size // per_clip),
        num_workers=num_workers,
        collate_fn=dataset.collate,
        pin_memory=device.type == "cuda",
        # each worker keeps a few batches ready; with many workers two each are plenty,
        # and more would hold GBs of frames in shared memory (512 images are 77 MB)
        prefetch_factor=(4 if num_workers <= 2 else 2) if num_workers else None,
    )


def extract_features(
    paths: Sequence[str],
    keys: Sequence[str],
    runner: BackboneRunner,
    *,
    frames: int,
    views: int,
    seed: int,
    num_workers: int,
    resize_on: str = "auto",
    sampling: str = "uniform",
    stride: int = 1,
) -> Iterator[tuple[int, np.ndarray | None, np.ndarray | None, str]]:
    """Yield (index, features (K, T, D) float16, frame indices (K, T), error) per video, in order.

    The loader hands over whole clips, as many as fill one of `runner`'s batches of images, laid out as
    `runner`'s engine takes them (channels-first for the CPU runtimes, channels-last for torch).
    """
    batch_size = runner.batch_size
    dataset = ClipDataset(
        paths,
        keys,
        runner.backbone,
        frames,
        views,
        seed,
        resize=not resize_on_device(resize_on, runner.device),
        channels_last=runner.engine not in RUNTIMES,
        sampling=sampling,
        stride=stride,
    )
    with torch.inference_mode():
        for batch in clip_loader(dataset, batch_size, num_workers, runner.device):
            feats = None
            if batch.frames is not None:
                images = batch.images(runner.device, runner.backbone)
                feats = torch.cat([runner(chunk) for chunk in images.split(batch_size)]).cpu().numpy()
                feats = feats.astype(np.float16).reshape(len(batch.shapes), views, frames, -1)
            good = iter(range(len(batch.shapes)))
            for i, indices, error in zip(batch.positions, batch.frame_indices, batch.errors, strict=True):
                if error:
                    yield i, None, None, error
                else:
                    yield i, feats[next(good)], indices, ""


@dataclass
class FillResult:
    """What one fill_cache call did: the clips that failed (clip_id, reason) and how fast it went."""

    failed: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["clip_id", "reason"]))
    extracted: int = 0
    frames: int = 0  # frames run through the backbone
    seconds: float = 0.0  # model loading and engine set-up included
    startup_seconds: float = 0.0  # until the first clip's features: loading, engine set-up, first decode
    engine: str | None = None  # what ran the backbone: eager, compile or onnxruntime (None: nothing to run)

    @property
    def steady_fps(self) -> float:
        """Frames/s after the first clip: the rate a long run goes at."""
        later = self.frames * (self.extracted - 1) / max(self.extracted, 1)
        return later / max(self.seconds - self.startup_seconds, 1e-9)


def extraction_backbone(cfg: ExtractParams) -> Backbone | None:
    """The backbone params.extract names, loaded; None for NTU skeletons, which run no network."""
    return None if cfg.backbone == SKELETON else load_backbone(cfg.backbone, cfg.weights, cfg.image_size)


def choose_engine(
    table: pd.DataFrame,
    cfg: ExtractParams,
    device: torch.device,
    seed: int,
    backbone: Backbone | None,
    world: World = SINGLE,
) -> EngineChoice:
    """The engine and precision that extract the clips of `table` the caches lack soonest (engine_trial).

    Under torchrun rank 0 decides, once, and every rank runs the same engine in the same precision,
    so all shards land in one cache. Skeleton features run no backbone: nothing to choose.
    """
    if cfg.backbone == SKELETON:
        return EngineChoice("none", "fp32", "given")

    def frames_for(precision: str) -> int:
        settings = ExtractionSettings.from_params(cfg, precision, seed, backbone)
        cached = FeatureCache.read_index(FeatureCache.folder(cfg.cache_dir, settings))
        return table.loc[~table["fingerprint"].isin(cached), "fingerprint"].nunique() * cfg.frames * cfg.views

    batch_size = resolve_batch_size(cfg.batch_size, device)
    choice = None
    if world.is_main:
        choice = choose(backbone, device, batch_size, cfg.engine, cfg.precision, frames_for)
    engine, precision, how = gather(world, (choice.engine, choice.precision, choice.how) if choice else None)[0]
    return choice if choice is not None else EngineChoice(engine, precision, how)


def fill_cache(
    cache: FeatureCache,
    table: pd.DataFrame,
    cfg: ExtractParams,
    device: torch.device,
    world: World = SINGLE,
    choice: EngineChoice | None = None,
    backbone: Backbone | None = None,
) -> FillResult:
    """Extract every clip of `table` not yet in the cache; report the clips that failed, with reasons.

    The backbone (loaded from the cache's settings unless given) runs as `choice` says (its runner, when
    the trial built it); without one, as engines.resolve_engine's rule says for the cache's precision.
    With several ranks, each takes the clips whose fingerprint falls to it, so the shares do not depend
    on what other ranks have already written.
    """
    done = cache.index()
    todo = table[~table["fingerprint"].isin(done)].drop_duplicates("fingerprint")
    mine = todo["fingerprint"].map(lambda fp: int(fp[:8], 16) % world.size == world.rank)
    todo = todo[mine].reset_index(drop=True)
    logger.info(
        "%d clips in the split, %d already in the cache (%s), %d to extract%s",
        len(table),
        len(table) - int(mine.size),
        cache.dir,
        len(todo),
        f" on rank {world.rank} of {world.size}" if world.size > 1 else "",
    )
    failed: list[dict] = []
    if todo.empty:
        return FillResult()
    s = cache.settings
    start = time.perf_counter()
    if choice is not None and choice.precision != s.precision:
        raise ValueError(f"the engine was chosen for {choice.precision}, the cache holds {s.precision}")
    if s.backbone == SKELETON:
        seeds = [clip_seed(k, s.seed) for k in todo["fingerprint"]]
        results = skeleton_features(todo["path"].tolist(), seeds, frames=s.frames, views=s.views)
        engine = "none"
    else:
        results, engine = _backbone_features(todo, cfg, device, s, choice, backbone)
    pending: tuple[list, list, list] = ([], [], [])

    def flush() -> None:
        if pending[0]:
            cache.write_shard(pending[0], np.stack(pending[1]), np.stack(pending[2]), tag=f"r{world.rank}-")
            for part in pending:
                part.clear()

    startup = 0.0
    for i, feats, indices, error in progress(
        results,
        total=len(todo),
        desc=f"extract (rank {world.rank})" if world.size > 1 else "extract",
        unit="clip",
        position=world.rank,
    ):
        if error:
            logger.warning("skipping %s: %s", todo.at[i, "clip_id"], error)
            failed.append({"clip_id": todo.at[i, "clip_id"], "reason": error})
            continue
        startup = startup or time.perf_counter() - start
        pending[0].append(todo.at[i, "fingerprint"])
        pending[1].append(feats)
        pending[2].append(indices)
        if len(pending[0]) >= cfg.shard_size:
            flush()
    flush()
    done_now = len(todo) - len(failed)
    result = FillResult(
        pd.DataFrame(failed, columns=["clip_id", "reason"]),
        done_now,
        done_now * s.frames * s.views,
        time.perf_counter() - start,
        startup,
        engine,
    )
    logger.info(
        "extracted %d clips in %.1f s (%.1f s to the first clip, then %.1f frames/s; backbone run by %s)",
        done_now,
        result.seconds,
        startup,
        result.steady_fps,
        engine,
    )
    return result


def _backbone_features(
    todo: pd.DataFrame,
    cfg: ExtractParams,
    device: torch.device,
    s: ExtractionSettings,
    choice: EngineChoice | None,
    backbone: Backbone | None,
) -> tuple[Iterator[tuple[int, np.ndarray | None, np.ndarray | None, str]], str]:
    """The backbone's features of the clips of `todo` (extract_features), and the engine running it; the
    backbone is loaded from the cache's settings unless given."""
    runner = choice.runner if choice is not None else None
    if runner is None:
        backbone = backbone or load_backbone(s.backbone, s.weights, s.image_size)
        frames = len(todo) * s.frames * s.views
        engine = choice.engine if choice is not None else resolve_engine(cfg.engine, device, s.precision, frames)
        runner = BackboneRunner(backbone, device, s.precision, resolve_batch_size(cfg.batch_size, device), engine)
    results = extract_features(
        todo["path"].tolist(),
        todo["fingerprint"].tolist(),
        runner,
        frames=s.frames,
        views=s.views,
        seed=s.seed,
        num_workers=resolve_num_workers(cfg.num_workers, device),
        resize_on=cfg.resize_on,
        sampling=s.sampling,
        stride=s.stride,
    )
    return results, runner.engine
