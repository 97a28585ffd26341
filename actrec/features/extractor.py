"""Extracting features from videos: decode ahead in DataLoader workers, run the backbone in batches, cache.

Workers decode, sample and resize clips (uint8, so little crosses the process boundary) while
the main process runs the backbone; a clip that fails to decode comes back as an error string
and is reported by the caller, never raised, so one bad video cannot stop a run. `fill_cache`
extracts the clips of a table that the feature cache lacks, shard by shard.
"""

from __future__ import annotations

import functools
import logging
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from actrec.data.ntu_skeleton import SKELETON
from actrec.data.video import VideoError, read_clip
from actrec.devices import resolve_batch_size, resolve_num_workers
from actrec.distributed import SINGLE, World, gather
from actrec.features.backbones import Backbone, load_backbone
from actrec.features.engine_trial import EngineChoice, choose
from actrec.features.engines import BackboneRunner, resolve_engine
from actrec.features.skeleton import skeleton_features
from actrec.features.store import ExtractionSettings, FeatureCache
from actrec.params import ExtractParams
from actrec.progress import progress

logger = logging.getLogger(__name__)


def clip_seed(key: str, seed: int) -> int:
    """A per-video seed for jittered views that does not depend on the order videos are visited."""
    return zlib.crc32(key.encode()) ^ seed


@dataclass
class DecodedClip:
    index: int
    images: torch.Tensor | None  # uint8 (K·T, 3, S, S)
    frame_indices: np.ndarray | None  # (K, T)
    error: str = ""

    def pin_memory(self) -> DecodedClip:
        """Called by the DataLoader's pinning thread (pin_memory=True, on CUDA): page-locked images copy to
        the GPU asynchronously. Without this method the loader would hand the dataclass over unpinned."""
        return self if self.images is None else replace(self, images=self.images.pin_memory())


class ClipDataset(Dataset):
    """Decodes and preprocesses one video per item; errors become DecodedClip.error."""

    def __init__(
        self, paths: Sequence[str], keys: Sequence[str], backbone: Backbone, frames: int, views: int, seed: int
    ) -> None:
        self.paths, self.keys, self.backbone = list(paths), list(keys), backbone
        self.frames, self.views, self.seed = frames, views, seed

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> DecodedClip:
        try:
            frames, indices = read_clip(self.paths[i], self.frames, self.views, clip_seed(self.keys[i], self.seed))
            images = self.backbone.preprocess(torch.from_numpy(frames))
        except VideoError as err:
            return DecodedClip(i, None, None, str(err))
        except Exception as err:  # a decoder bug on one odd file must not end the run
            return DecodedClip(i, None, None, f"unexpected {type(err).__name__}: {err}")
        return DecodedClip(i, images.contiguous(), indices)


def _collate(items: list[DecodedClip]) -> list[DecodedClip]:
    return items


def clip_loader(dataset: ClipDataset, batch_size: int, num_workers: int, device: torch.device) -> DataLoader:
    """Batches of whole clips, as many as fill `batch_size` images, decoded by `num_workers` processes
    (and pinned for asynchronous copies when they are bound for a GPU)."""
    per_clip = dataset.views * dataset.frames
    return DataLoader(
        dataset,
        batch_size=max(1, batch_size // per_clip),
        num_workers=num_workers,
        collate_fn=_collate,
        pin_memory=device.type == "cuda",
        # each worker keeps a few batches ready; with many workers two each are plenty,
        # and more would hold GBs of frames in shared memory (512 images are 77 MB)
        prefetch_factor=(4 if num_workers <= 2 else 2) if num_workers else None,
    )


def extract_features(
    paths: Sequence[str],
    keys: Sequence[str],
    run: BackboneRunner,
    *,
    frames: int,
    views: int,
    seed: int,
    num_workers: int,
) -> Iterator[tuple[int, np.ndarray | None, np.ndarray | None, str]]:
    """Yield (index, features (K, T, D) float16, frame indices (K, T), error) per video, in order.

    The loader hands over whole clips, as many as fill one of `run`'s batches of images.
    """
    batch_size = run.batch_size
    loader = clip_loader(
        ClipDataset(paths, keys, run.backbone, frames, views, seed), batch_size, num_workers, run.device
    )
    with torch.inference_mode():
        for batch in loader:
            good = [c for c in batch if c.images is not None]
            by_index = {}
            if good:
                # clip by clip, so that pinned images go to the GPU asynchronously (a cat would unpin them)
                parts = [c.images.to(run.device, non_blocking=True) for c in good]
                images = parts[0] if len(parts) == 1 else torch.cat(parts)  # one clip fills a CPU batch: no copy
                feats = torch.cat([run(chunk) for chunk in images.split(batch_size)]).cpu().numpy()
                feats = feats.astype(np.float16).reshape(len(good), views, frames, -1)
                by_index = {c.index: (f, c.frame_indices) for c, f in zip(good, feats, strict=True)}
            for c in batch:
                if c.images is None:
                    yield c.index, None, None, c.error
                else:
                    yield c.index, *by_index[c.index], ""


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


def choose_engine(
    table: pd.DataFrame, cfg: ExtractParams, device: torch.device, seed: int, world: World = SINGLE
) -> EngineChoice:
    """The engine and precision that extract the clips of `table` the caches lack soonest (engine_trial).

    Under torchrun rank 0 decides, once, and every rank runs the same engine in the same precision,
    so all shards land in one cache. Skeleton features run no backbone: nothing to choose.
    """
    if cfg.backbone == SKELETON:
        return EngineChoice("none", "fp32", "given")
    load = functools.cache(lambda: load_backbone(cfg.backbone, cfg.weights, cfg.image_size))  # once, if timed

    def frames_for(precision: str) -> int:
        settings = ExtractionSettings.from_params(cfg, precision, seed)
        cached = FeatureCache.read_index(FeatureCache.folder(cfg.cache_dir, settings))
        return table.loc[~table["fingerprint"].isin(cached), "fingerprint"].nunique() * cfg.frames * cfg.views

    batch_size = resolve_batch_size(cfg.batch_size, device)
    choice = None
    if world.is_main:
        choice = choose(load, cfg.backbone, cfg.image_size, device, batch_size, cfg.engine, cfg.precision, frames_for)
    engine, precision, how = gather(world, (choice.engine, choice.precision, choice.how) if choice else None)[0]
    return choice if choice is not None else EngineChoice(engine, precision, how)


def fill_cache(
    cache: FeatureCache,
    table: pd.DataFrame,
    cfg: ExtractParams,
    device: torch.device,
    world: World = SINGLE,
    choice: EngineChoice | None = None,
) -> FillResult:
    """Extract every clip of `table` not yet in the cache; report the clips that failed, with reasons.

    The backbone runs as `choice` says (its runner, when the trial built it); without one, as
    engines.resolve_engine's rule says for the cache's precision. With several ranks, each takes the
    clips whose fingerprint falls to it, so the shares do not depend on what other ranks have
    already written.
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
        results, engine = _backbone_features(todo, cfg, device, s, choice)
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
    todo: pd.DataFrame, cfg: ExtractParams, device: torch.device, s: ExtractionSettings, choice: EngineChoice | None
) -> tuple[Iterator[tuple[int, np.ndarray | None, np.ndarray | None, str]], str]:
    """The backbone's features of the clips of `todo` (extract_features), and the engine running it."""
    run = choice.runner if choice is not None else None
    if run is None:
        backbone = load_backbone(s.backbone, s.weights, s.image_size)
        frames = len(todo) * s.frames * s.views
        engine = choice.engine if choice is not None else resolve_engine(cfg.engine, device, s.precision, frames)
        run = BackboneRunner(backbone, device, s.precision, resolve_batch_size(cfg.batch_size, device), engine)
    results = extract_features(
        todo["path"].tolist(),
        todo["fingerprint"].tolist(),
        run,
        frames=s.frames,
        views=s.views,
        seed=s.seed,
        num_workers=resolve_num_workers(cfg.num_workers, device),
    )
    return results, run.engine
