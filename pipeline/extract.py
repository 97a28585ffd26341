"""Stage 3: sample T frames per clip, run the backbone, and write the feature file.

python -m pipeline.extract  →  features/features.h5, reports/extract.json, reports/extract_failed.csv

Only clips missing from the feature cache (features/cache, keyed by the extraction settings and
each video's content) are decoded and run; everything else is reused. So an interrupted run,
run again, computes only what is missing, and growing the subset extracts only the new clips.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from pipeline.backbones import load_backbone
from pipeline.errors import run_main
from pipeline.extraction import extract_features, resolve_batch_size, resolve_device, resolve_precision
from pipeline.features import ExtractionSettings, FeatureCache, assemble
from pipeline.params import ExtractParams, load_params
from pipeline.reports import write_json
from pipeline.split import SPLIT

logger = logging.getLogger("pipeline.extract")

FEATURES = Path("features/features.h5")


def fill_cache(cache: FeatureCache, table: pd.DataFrame, cfg: ExtractParams, device) -> pd.DataFrame:
    """Extract every clip of `table` not yet in the cache; return the clips that failed, with reasons."""
    done = cache.index()
    todo = table[~table["fingerprint"].isin(done)].drop_duplicates("fingerprint").reset_index(drop=True)
    logger.info("%d clips in the split, %d already in the cache (%s), %d to extract",
                len(table), len(table) - len(todo), cache.dir, len(todo))
    failed: list[dict] = []
    if todo.empty:
        return pd.DataFrame(failed, columns=["clip_id", "reason"])
    s = cache.settings
    backbone = load_backbone(s.backbone, s.weights, s.image_size)
    pending: tuple[list, list, list] = ([], [], [])

    def flush() -> None:
        if pending[0]:
            cache.write_shard(pending[0], np.stack(pending[1]), np.stack(pending[2]))
            for part in pending:
                part.clear()

    start = time.perf_counter()
    results = extract_features(todo["path"].tolist(), todo["fingerprint"].tolist(), backbone,
                               frames=s.frames, clips=s.clips, seed=s.seed,
                               batch_size=resolve_batch_size(cfg.batch_size, device),
                               num_workers=cfg.num_workers, device=device, precision=s.precision)
    for i, feats, indices, error in tqdm(results, total=len(todo), desc="extract", unit="clip"):
        if error:
            logger.warning("skipping %s: %s", todo.at[i, "clip_id"], error)
            failed.append({"clip_id": todo.at[i, "clip_id"], "reason": error})
            continue
        pending[0].append(todo.at[i, "fingerprint"])
        pending[1].append(feats)
        pending[2].append(indices)
        if len(pending[0]) >= cfg.shard_size:
            flush()
    flush()
    elapsed = time.perf_counter() - start
    done_now = len(todo) - len(failed)
    logger.info("extracted %d clips in %.1f s (%.1f frames/s)", done_now, elapsed,
                done_now * s.frames * s.clips / max(elapsed, 1e-9))
    return pd.DataFrame(failed, columns=["clip_id", "reason"])


def main() -> None:
    params = load_params()
    cfg = params.extract
    device = resolve_device(cfg.device)
    # The seed only moves jittered clips (K > 1); with K = 1 sampling is fixed and the cache ignores it.
    settings = ExtractionSettings(backbone=cfg.backbone, weights=cfg.weights, frames=cfg.frames, clips=cfg.clips,
                                  image_size=cfg.image_size, precision=resolve_precision(cfg.precision, device),
                                  seed=params.seed if cfg.clips > 1 else 0)
    table = pd.read_csv(SPLIT, keep_default_na=False)
    cache = FeatureCache(cfg.cache_dir, settings)
    reused = int(table["fingerprint"].isin(cache.index()).sum())
    failed = fill_cache(cache, table, cfg, device)
    classes = sorted(table["label"].unique(), key=str.lower)
    written = assemble(cache, table, classes, FEATURES, attrs={"dataset": params.dataset.name})
    failed.to_csv("reports/extract_failed.csv", index=False)
    write_json("reports/extract.json", {"clips": written, "reused_from_cache": reused,
                                        "extracted": written - reused, "failed": len(failed),
                                        "backbone": cfg.backbone, "frames": cfg.frames, "clips_per_video": cfg.clips,
                                        "precision": settings.precision, "device": device.type})
    logger.info("wrote %s: %d clips (%d reused, %d failed)", FEATURES, written, reused, len(failed))


if __name__ == "__main__":
    run_main(main)
