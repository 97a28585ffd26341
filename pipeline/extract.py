"""Stage 3: sample T frames per clip, run the backbone, and write the feature file.

python -m pipeline.extract  →  features/features.h5, reports/extract.json, reports/extract_failed.csv

Only clips missing from the feature cache (features/cache, keyed by the extraction settings and
each video's content) are decoded and run; everything else is reused. So an interrupted run,
run again, computes only what is missing, and growing the subset extracts only the new clips.
Under `torchrun --nproc-per-node N -m pipeline.extract` each rank extracts its share of the clips
on its own GPU into the shared cache, and rank 0 assembles the feature file (see distributed.py).
A clip that cannot be decoded is listed in reports/extract_failed.csv with its reason and left out.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from pipeline.backbones import load_backbone
from pipeline.datasets import read_table
from pipeline.distributed import SINGLE, World, barrier, gather, shutdown
from pipeline.distributed import init as init_distributed
from pipeline.errors import output_dir, output_file, remove_leftovers, run_main
from pipeline.extraction import (
    BackboneRunner,
    extract_features,
    resolve_batch_size,
    resolve_device,
    resolve_engine,
    resolve_num_workers,
    resolve_precision,
)
from pipeline.features import ExtractionSettings, FeatureCache, assemble
from pipeline.params import ExtractParams, load_params
from pipeline.reports import write_json
from pipeline.split import SPLIT

logger = logging.getLogger("pipeline.extract")

FEATURES = Path("features/features.h5")
REPORTS = Path("reports")


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


def fill_cache(cache: FeatureCache, table: pd.DataFrame, cfg: ExtractParams, device: torch.device,
               world: World = SINGLE) -> FillResult:
    """Extract every clip of `table` not yet in the cache; report the clips that failed, with reasons.

    With several ranks, each takes the clips whose fingerprint falls to it, so the shares do not
    depend on what other ranks have already written.
    """
    done = cache.index()
    todo = table[~table["fingerprint"].isin(done)].drop_duplicates("fingerprint")
    mine = todo["fingerprint"].map(lambda fp: int(fp[:8], 16) % world.size == world.rank)
    todo = todo[mine].reset_index(drop=True)
    logger.info("%d clips in the split, %d already in the cache (%s), %d to extract%s",
                len(table), len(table) - int(mine.size), cache.dir, len(todo),
                f" on rank {world.rank} of {world.size}" if world.size > 1 else "")
    failed: list[dict] = []
    if todo.empty:
        return FillResult()
    s = cache.settings
    start = time.perf_counter()
    backbone = load_backbone(s.backbone, s.weights, s.image_size)
    engine = resolve_engine(cfg.engine, device, s.precision, len(todo) * s.frames * s.clips)
    run = BackboneRunner(backbone, device, s.precision, resolve_batch_size(cfg.batch_size, device), engine)
    pending: tuple[list, list, list] = ([], [], [])

    def flush() -> None:
        if pending[0]:
            cache.write_shard(pending[0], np.stack(pending[1]), np.stack(pending[2]), tag=f"r{world.rank}-")
            for part in pending:
                part.clear()

    results = extract_features(todo["path"].tolist(), todo["fingerprint"].tolist(), run, frames=s.frames,
                               clips=s.clips, seed=s.seed,
                               num_workers=resolve_num_workers(cfg.num_workers, device))
    startup = 0.0
    for i, feats, indices, error in tqdm(results, total=len(todo), desc=f"extract (rank {world.rank})"
                                         if world.size > 1 else "extract", unit="clip", position=world.rank):
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
    result = FillResult(pd.DataFrame(failed, columns=["clip_id", "reason"]), done_now, done_now * s.frames * s.clips,
                        time.perf_counter() - start, startup, run.engine)
    logger.info("extracted %d clips in %.1f s (%.1f s to the first clip, then %.1f frames/s; backbone run by %s)",
                done_now, result.seconds, startup, result.steady_fps, run.engine)
    return result


def main() -> None:
    params = load_params()
    cfg = params.extract
    if cfg.threads != "auto":
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    world = init_distributed(device.type)
    if device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
    # The seed only moves jittered clips (K > 1); with K = 1 sampling is fixed and the cache ignores it.
    settings = ExtractionSettings(backbone=cfg.backbone, weights=cfg.weights, frames=cfg.frames, clips=cfg.clips,
                                  image_size=cfg.image_size, precision=resolve_precision(cfg.precision, device),
                                  seed=params.seed if cfg.clips > 1 else 0)
    table = read_table(SPLIT, "split")
    output_dir(REPORTS)
    remove_leftovers(output_dir(FEATURES.parent))
    cache = FeatureCache(cfg.cache_dir, settings)
    barrier(world)  # every rank has cleared dead runs' leftovers before any rank writes a shard
    reused = int(table["fingerprint"].isin(cache.index()).sum())
    run = fill_cache(cache, table, cfg, device, world)
    failed = pd.concat(gather(world, run.failed), ignore_index=True)
    barrier(world)
    if world.is_main:
        write_outputs(cache, table, failed, reused, params.dataset.name, cfg, device, run)
    shutdown(world)


def write_outputs(cache: FeatureCache, table: pd.DataFrame, failed: pd.DataFrame, reused: int, dataset: str,
                  cfg: ExtractParams, device: torch.device, run: FillResult) -> None:
    """The feature file for the split, assembled from the cache, and the extraction reports."""
    with output_file(REPORTS / "extract_failed.csv") as tmp:
        failed.sort_values("clip_id").to_csv(tmp, index=False)  # the same failures, the same file, however ranked
    classes = sorted(table["label"].unique(), key=str.lower)
    written = assemble(cache, table, classes, FEATURES, attrs={"dataset": dataset})
    with output_file(REPORTS / "extract.json") as tmp:
        write_json(tmp, {"clips": written, "reused_from_cache": reused, "extracted": written - reused,
                         "failed": len(failed), "backbone": cfg.backbone, "frames": cfg.frames,
                         "clips_per_video": cfg.clips, "precision": cache.settings.precision,
                         "device": device.type, "engine": run.engine,
                         "seconds": round(run.seconds, 1), "frames_per_second": round(run.steady_fps, 1)})
    logger.info("wrote %s: %d clips (%d reused, %d failed)", FEATURES, written, reused, len(failed))


if __name__ == "__main__":
    run_main(main)
