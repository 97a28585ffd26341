"""Extracting features from clips: read ahead in DataLoader workers, run the source's network in batches, cache.

Whatever the feature source (features/sources: frames through an image backbone, skeleton files, ...), its
ClipReader reads and prepares clips in worker processes, a batch of clips at a time, and its Embedder turns
each batch into features on the runtime's device. A clip that cannot be read comes back as an error string
and is reported by the caller, never raised, so one bad file cannot stop a run. `fill_cache` extracts the
clips of a table that the feature cache lacks, shard by shard, into the cache of the engine that really ran,
and times the network on the way, so that an engine trial the run finds untrue is timed again next time.
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
from actrec.features.engine_trial import EngineChoice, confirm
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


@dataclass
class ForwardTime:
    """Frames through the source's network and the seconds it took (the features back on the host), the first
    batch kept apart: it holds set-up (a compile, first-call allocations), which the engine trial times apart."""

    frames: int = 0  # the batches after the first
    seconds: float = 0.0
    batches: int = 0
    first: tuple[int, float] = (0, 0.0)  # the first batch's frames and seconds

    def add(self, frames: int, seconds: float) -> None:
        self.batches += 1
        if self.batches > 1:
            self.frames, self.seconds = self.frames + frames, self.seconds + seconds
        else:
            self.first = (frames, seconds)

    @property
    def fps(self) -> float:
        """Frames/s of the network after its first batch; of that batch, where it was the only one."""
        frames, seconds = (self.frames, self.seconds) if self.batches > 1 else self.first
        return frames / max(seconds, 1e-9)


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
    timing: ForwardTime | None = None,
) -> Iterator[tuple[int, np.ndarray | None, np.ndarray | None, str]]:
    """Yield (index, features (K, T, D) float16, frame indices (K, T), error) per clip, in order.

    The loader hands over whole clips, as many as fill one of the runtime's batches, read by `source` as
    `embedder` takes them, by `num_workers` processes (the runtime's unless given: one clip needs none).
    `timing`, where given, adds up the embedder's frames and seconds.
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
                begin = time.perf_counter()
                out = embedder(batch).cpu()
                if timing is not None:
                    timing.add(len(good) * views * frames, time.perf_counter() - begin)
                feats = out.numpy().astype(np.float16).reshape(len(good), views, frames, -1)
            readable = iter(range(len(good)))
            for i, indices, error in zip(batch.positions, batch.frame_indices, batch.errors, strict=True):
                if error:
                    yield i, None, None, error
                else:
                    yield i, feats[next(readable)], indices, ""


@dataclass
class FillResult:
    """What one fill_cache call did: the clips that failed (clip_id, reason), how fast it went, and the cache it
    wrote to (the given one, or its twin of the engine that ran where the chosen one could not)."""

    cache: FeatureCache
    failed: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["clip_id", "reason"]))
    extracted: int = 0
    frames: int = 0  # frames read (K·T a clip)
    seconds: float = 0.0  # model loading and engine set-up included
    startup_seconds: float = 0.0  # until the first clip's features: loading, engine set-up, first decode
    engine: str | None = None  # what ran the source's network: eager, compile, onnxruntime, none (None: no clip)
    forward: ForwardTime = field(default_factory=ForwardTime)  # the network alone, its first batch left out

    @property
    def steady_fps(self) -> float:
        """Frames/s after the first clip: the rate a long run goes at; of the whole run, start-up included, where
        it extracted one clip (no later clip to time)."""
        if self.extracted < 2:
            return self.frames / max(self.seconds, 1e-9)
        later = self.frames * (self.extracted - 1) / self.extracted
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

    def frames_for(engine: str, precision: str) -> int:
        settings = ExtractionSettings.from_params(cfg, engine, precision, seed, source.identity(), name)
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
    cache: FeatureCache  # keyed by its own engine and precision; eager's once its chosen engine could not run
    runtime: Runtime
    choice: EngineChoice


def prepare_parts(
    source: FeatureSource, table: pd.DataFrame, cfg: ExtractParams, runtime: Runtime, seed: int
) -> list[Part]:
    """Each part of `source` (FeatureSource.parts) with its engine chosen and its own cache, keyed by its name, engine
    and precision (the motion stream's: none, fp32), so a part already cached (appearance features, when motion is
    added) is not extracted again."""
    parts = []
    for i, part in enumerate(source.parts()):
        name = cfg.backbone if i == 0 else part.name
        choice = choose_engine(table, cfg, runtime, seed, part, name)  # engine and precision: given, or measured
        run = runtime.running(choice.engine, choice.precision)
        run.log()
        settings = ExtractionSettings.from_params(cfg, choice.engine, choice.precision, seed, part.identity(), name)
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
    precision must be the cache's. Features go to the cache of the engine that ran them: where the chosen
    engine fails on its first batch and eager PyTorch runs instead, to eager's (`FillResult.cache`). The
    network's rate is held against `choice`'s trial (engine_trial.confirm). With several ranks (the runtime's
    world), each takes the clips whose fingerprint falls to it, so the shares do not depend on what other ranks
    have already written.
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
        return FillResult(cache)
    s = cache.settings
    start = time.perf_counter()
    if runtime.precision != s.precision:
        raise ValueError(f"the runtime runs in {runtime.precision}, the cache holds {s.precision}")
    embedder = source.embedder(runtime, len(todo) * s.frames * s.views, choice)
    timing = ForwardTime()
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
        timing=timing,
    )
    pending: tuple[list, list, list] = ([], [], [])

    def flush() -> None:
        nonlocal cache
        if pending[0]:
            cache = cache.computed_by(embedder.engine)  # by now the engine has run its first batch, or failed
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
        cache,
        pd.DataFrame(failed, columns=["clip_id", "reason"]),
        done_now,
        done_now * s.frames * s.views,
        time.perf_counter() - start,
        startup,
        embedder.engine,
        timing,
    )
    logger.info(
        "extracted %d clips in %.1f s (%.1f s to the first clip, then %.1f frames/s; run by %s, %.1f frames/s alone)",
        done_now,
        result.seconds,
        startup,
        result.steady_fps,
        embedder.engine,
        timing.frames / max(timing.seconds, 1e-9),
    )
    if choice is not None:
        confirm(choice, embedder.engine, timing.frames, timing.seconds)
    return result


def fill_parts(parts: list[Part], table: pd.DataFrame, shard_size: int) -> tuple[list[FillResult], pd.DataFrame, int]:
    """Every part's cache filled for the clips of `table` (fill_cache, each part by its own engine choice): what
    each run did, the clips any part failed on (from every rank), and how many clips every cache held already.
    Each part's cache is then the one its features went to: eager's, where its chosen engine could not run."""
    indexes = [p.cache.index() for p in parts]
    reused = int(table["fingerprint"].map(lambda fp: all(fp in index for index in indexes)).sum())
    done = []
    for p in parts:
        done.append(fill_cache(p.cache, table, p.source, p.runtime, shard_size=shard_size, choice=p.choice))
        p.cache = done[-1].cache
    failed = [f for d in done for f in gather(parts[0].runtime.world, d.failed)]
    return done, pd.concat(failed, ignore_index=True).drop_duplicates("clip_id"), reused


def assembled_settings(parts: list[Part], source: FeatureSource, cfg: ExtractParams, seed: int) -> ExtractionSettings:
    """How the feature file's features were made, as it records them: params.extract with `source`'s identity (every
    part's, for a joined source), and the engine and precision that computed the first part's features."""
    s = parts[0].cache.settings
    return ExtractionSettings.from_params(cfg, s.engine, s.precision, seed, source.identity())


def report(parts: list[Part], done: list[FillResult], trial_seconds: float) -> dict:
    """The extract report's entries on how the features were computed: the engine and precision of the first
    part's (its cache's: this run's, or the run's that cached them), its rates (engine_frames_per_second: the
    network alone), the engine choice, and each other part's entry by name (the motion stream: D, its engine and
    precision, frames/s)."""
    main, first = parts[0].cache.settings, done[0]
    return {
        "engine": main.engine,
        "precision": main.precision,
        "seconds": round(trial_seconds + sum(d.seconds for d in done), 1),
        "frames_per_second": round(first.steady_fps, 1),
        "engine_frames_per_second": round(first.forward.fps, 1),
        "engine_choice": {**parts[0].choice.record(), "seconds": round(trial_seconds, 1)},
        **{
            p.name: {
                "feature_dim": p.source.feature_dim,
                "engine": p.cache.settings.engine,
                "precision": p.cache.settings.precision,
                "frames_per_second": round(d.steady_fps, 1),
            }
            for p, d in zip(parts[1:], done[1:], strict=True)
        },
    }
