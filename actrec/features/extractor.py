"""Extracting features from clips: read ahead in DataLoader workers, run the source's network in batches, cache.

Whatever the feature source (features/sources: frames through an image backbone, skeleton files, ...), its
ClipReader reads and prepares clips in worker processes, a batch of clips at a time, and its Embedder turns
each batch into features on the runtime's device. A clip that cannot be read comes back as an error string
and is reported by the caller, never raised, so one bad file cannot stop a run. `fill_cache` extracts the
clips of a table that the feature cache lacks, shard by shard.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from actrec.distributed import gather
from actrec.features.engine_trial import EngineChoice
from actrec.features.sources import ClipReader, Embedder, FeatureSource
from actrec.features.store import ExtractionSettings, FeatureCache
from actrec.params import ExtractParams
from actrec.progress import progress
from actrec.runtime import Runtime

logger = logging.getLogger(__name__)


def clip_loader(dataset: ClipReader, batch_size: int, num_workers: int, device: torch.device) -> DataLoader:
    """Batches of whole clips, as many as fill `batch_size` images, decoded by `num_workers` processes
    (and pinned for asynchronous copies when they are bound for a GPU)."""
    per_clip = dataset.images_per_clip
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
    source: FeatureSource,
    embedder: Embedder,
    runtime: Runtime,
    *,
    frames: int,
    views: int,
    seed: int,
    num_workers: int | None = None,
    sampling: str = "uniform",
    stride: int = 1,
) -> Iterator[tuple[int, np.ndarray | None, np.ndarray | None, str]]:
    """Yield (index, features (K, T, D) float16, frame indices (K, T), error) per clip, in order.

    The loader hands over whole clips, as many as fill one of the runtime's batches, read by `source` as
    `embedder` takes them, by `num_workers` processes (the runtime's unless given: one clip needs none).
    """
    dataset = source.clips(
        paths, keys, runtime, embedder, frames=frames, views=views, seed=seed, sampling=sampling, stride=stride
    )
    workers = runtime.num_workers if num_workers is None else num_workers
    with torch.inference_mode():
        for batch in clip_loader(dataset, runtime.batch_size, workers, runtime.device):
            good = [i for i, error in enumerate(batch.errors) if not error]
            feats = None
            if good:
                feats = embedder(batch).cpu().numpy().astype(np.float16).reshape(len(good), views, frames, -1)
            readable = iter(range(len(good)))
            for i, indices, error in zip(batch.positions, batch.frame_indices, batch.errors, strict=True):
                if error:
                    yield i, None, None, error
                else:
                    yield i, feats[next(readable)], indices, ""


@dataclass
class FillResult:
    """What one fill_cache call did: the clips that failed (clip_id, reason) and how fast it went."""

    failed: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["clip_id", "reason"]))
    extracted: int = 0
    frames: int = 0  # frames read (K·T a clip)
    seconds: float = 0.0  # model loading and engine set-up included
    startup_seconds: float = 0.0  # until the first clip's features: loading, engine set-up, first decode
    engine: str | None = None  # what ran the source's network: eager, compile, onnxruntime, none (None: no clip)

    @property
    def steady_fps(self) -> float:
        """Frames/s after the first clip: the rate a long run goes at."""
        later = self.frames * (self.extracted - 1) / max(self.extracted, 1)
        return later / max(self.seconds - self.startup_seconds, 1e-9)


def choose_engine(
    table: pd.DataFrame, cfg: ExtractParams, runtime: Runtime, seed: int, source: FeatureSource, name: str | None = None
) -> EngineChoice:
    """The engine and precision that extract the clips of `table` the caches lack soonest (the source's choice:
    an image backbone's engine trial), for extract.engine and extract.precision as `cfg` asks them; `name` is
    the source's where it is not extract.backbone (ExtractionSettings.from_params).

    Under torchrun rank 0 decides, once, and every rank runs the same engine in the same precision,
    so all shards land in one cache.
    """

    def frames_for(precision: str) -> int:
        settings = ExtractionSettings.from_params(cfg, precision, seed, source.identity(), name)
        cached = FeatureCache.read_index(FeatureCache.folder(cfg.cache_dir, settings))
        return table.loc[~table["fingerprint"].isin(cached), "fingerprint"].nunique() * cfg.frames * cfg.views

    world = runtime.world
    choice = source.choose(runtime, cfg.engine, cfg.precision, frames_for) if world.is_main else None
    engine, precision, how = gather(world, (choice.engine, choice.precision, choice.how) if choice else None)[0]
    return choice if choice is not None else EngineChoice(engine, precision, how)


@dataclass
class Part:
    """One feature source of the features (the backbone's, or the motion stream joined to it), its cache, and the
    runtime and engine choice it runs by."""

    source: FeatureSource
    name: str  # its name in params.extract (extract.backbone's, extract.motion's)
    cache: FeatureCache
    runtime: Runtime
    choice: EngineChoice


def prepare_parts(
    source: FeatureSource, table: pd.DataFrame, cfg: ExtractParams, runtime: Runtime, seed: int
) -> list[Part]:
    """Each part of `source` (FeatureSource.parts) with its engine chosen and its own cache, so a part already
    cached (appearance features, when motion is added) is not extracted again."""
    parts = []
    for i, part in enumerate(source.parts()):
        name = cfg.backbone if i == 0 else part.name
        choice = choose_engine(table, cfg, runtime, seed, part, name)  # engine and precision: given, or measured
        run = runtime.running(choice.engine, choice.precision)
        run.log()
        settings = ExtractionSettings.from_params(cfg, choice.precision, seed, part.identity(), name)
        parts.append(Part(part, name, FeatureCache(cfg.cache_dir, settings), run, choice))
    return parts


def fill_cache(
    cache: FeatureCache,
    table: pd.DataFrame,
    source: FeatureSource,
    runtime: Runtime,
    *,
    shard_size: int = 32,
    choice: EngineChoice | None = None,
) -> FillResult:
    """Extract every clip of `table` not yet in the cache with `source`; report the clips that failed, with reasons.

    The source's network runs as `choice` says (its runner, when the trial built it); without one, as the
    runtime's engine says (`auto`: engines.resolve_engine's rule for the clips to extract). The runtime's
    precision must be the cache's. With several ranks (the runtime's world), each takes the clips whose
    fingerprint falls to it, so the shares do not depend on what other ranks have already written.
    """
    world = runtime.world
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
    if runtime.precision != s.precision:
        raise ValueError(f"the runtime runs in {runtime.precision}, the cache holds {s.precision}")
    embedder = source.embedder(runtime, len(todo) * s.frames * s.views, choice)
    results = extract_features(
        todo["path"].tolist(),
        todo["fingerprint"].tolist(),
        source,
        embedder,
        runtime,
        frames=s.frames,
        views=s.views,
        seed=s.seed,
        sampling=s.sampling,
        stride=s.stride,
    )
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
        if len(pending[0]) >= shard_size:
            flush()
    flush()
    done_now = len(todo) - len(failed)
    result = FillResult(
        pd.DataFrame(failed, columns=["clip_id", "reason"]),
        done_now,
        done_now * s.frames * s.views,
        time.perf_counter() - start,
        startup,
        embedder.engine,
    )
    logger.info(
        "extracted %d clips in %.1f s (%.1f s to the first clip, then %.1f frames/s; run by %s)",
        done_now,
        result.seconds,
        startup,
        result.steady_fps,
        embedder.engine,
    )
    return result


def fill_parts(parts: list[Part], table: pd.DataFrame, shard_size: int) -> tuple[list[FillResult], pd.DataFrame, int]:
    """Every part's cache filled for the clips of `table` (fill_cache): what each run did, the clips any part failed
    on (from every rank), and how many clips every cache held already."""
    indexes = [p.cache.index() for p in parts]
    reused = int(table["fingerprint"].map(lambda fp: all(fp in index for index in indexes)).sum())
    done = [fill_cache(p.cache, table, p.source, p.runtime, shard_size=shard_size, choice=p.choice) for p in parts]
    failed = [f for d in done for f in gather(parts[0].runtime.world, d.failed)]
    return done, pd.concat(failed, ignore_index=True).drop_duplicates("clip_id"), reused


def joined_report(parts: list[Part], done: list[FillResult]) -> dict:
    """The extract report's entry of each part after the first (the motion stream), by name: D and frames/s."""
    return {
        p.name: {"feature_dim": p.source.feature_dim, "frames_per_second": round(d.steady_fps, 1)}
        for p, d in zip(parts[1:], done[1:], strict=True)
    }
