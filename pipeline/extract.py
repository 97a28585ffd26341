"""Stage 3: sample T frames per clip, turn them into features (the feature source), and write the feature file.

python -m pipeline.extract --split data/split.csv --backbone-file models/backbone.pt \
    --out features/features.h5 --failed reports/extract_failed.csv --report reports/extract.json

The feature source is what extract.backbone names (features/sources). Only clips missing from the feature
cache (keyed by the extraction settings and each video's content) are read and run. Under `torchrun
--nproc-per-node N` each rank extracts its share of the clips on its own GPU into the shared cache, and
rank 0 assembles the feature file. The finetune stage's --backbone-file gives fine-tuned weights where it
holds any. A clip that cannot be read is listed in the failed report and left out. Every `auto` is
resolved once, at the start (runtime.start_extraction); engine and precision `auto`: a short trial (kept per
machine) picks. The engine and precision that computed the features key the cache and are recorded in the
feature file and the report (engine_frames_per_second: the network alone, held against the trial's figure).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import pandas as pd

from actrec import distributed, runtime
from actrec.data.datasets import read_table
from actrec.errors import run_main
from actrec.features.backbone_file import extract_params
from actrec.features.extractor import choose_engine, fill_cache
from actrec.features.sources import build_source
from actrec.features.store import ExtractionSettings, FeatureCache, assemble
from actrec.files import output_dir, output_file, remove_leftovers, write_json
from actrec.params import load_params

logger = logging.getLogger("pipeline.extract")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", type=Path, required=True, help="clip table the split stage wrote")
    parser.add_argument("--backbone-file", type=Path, help="the backbone file the finetune stage wrote")
    parser.add_argument("--out", type=Path, required=True, help="feature file to write (HDF5)")
    parser.add_argument("--failed", type=Path, required=True, help="CSV of the clips that failed to decode")
    parser.add_argument("--report", type=Path, required=True, help="JSON counts and speed (DVC metrics)")
    args = parser.parse_args(argv)
    params = load_params()
    cfg, made_by = extract_params(args.backbone_file, params.extract, params.finetune.enabled)
    run = runtime.start_extraction(cfg)
    world = run.world
    table = read_table(args.split, "split")
    for path in (args.failed, args.report):
        output_dir(path.parent)
    remove_leftovers(output_dir(args.out.parent))
    start = time.perf_counter()
    source = build_source(cfg.backbone, cfg.weights, cfg.image_size)  # its identity keys the cache
    choice = choose_engine(table, cfg, run, params.seed, source)  # engine and precision: given, or measured
    run = run.running(choice.engine, choice.precision)
    run.log()
    trial_seconds = time.perf_counter() - start
    settings = ExtractionSettings.from_params(cfg, choice.engine, choice.precision, params.seed, source.identity())
    cache = FeatureCache(cfg.cache_dir, settings)
    distributed.barrier(world)  # every rank has cleared dead runs' leftovers before any rank writes a shard
    reused = int(table["fingerprint"].isin(cache.index()).sum())
    done = fill_cache(cache, table, source, run, shard_size=cfg.shard_size, choice=choice)
    cache = done.cache  # eager's, where the chosen engine could not run
    failed = pd.concat(distributed.gather(world, done.failed), ignore_index=True)
    distributed.barrier(world)
    if world.is_main:
        with output_file(args.failed) as tmp:  # sorted: the same failures give the same file, however ranked
            failed.sort_values("clip_id").to_csv(tmp, index=False)
        classes = sorted(table["label"].unique(), key=str.lower)
        attrs = {"dataset": params.dataset.name, "weights_file": source.weights_file or "", **made_by}
        written = assemble(cache, table, classes, args.out, attrs=attrs)
        write_json(
            args.report,
            {
                "videos": written,
                "reused_from_cache": reused,
                "extracted": written - reused,
                "failed": len(failed),
                "backbone": cfg.backbone,
                "feature_dim": source.feature_dim,
                "image_size": cache.settings.input_size,
                "frames": cfg.frames,
                "views_per_video": cfg.views,
                "engine": cache.settings.engine,  # what computed the features, in this run or the one that cached them
                "precision": cache.settings.precision,
                "device": run.device.type,
                "seconds": round(trial_seconds + done.seconds, 1),
                "frames_per_second": round(done.steady_fps, 1),
                "engine_frames_per_second": round(done.forward.frames / max(done.forward.seconds, 1e-9), 1),
                "engine_choice": {**choice.record(), "seconds": round(trial_seconds, 1)},
            },
        )
        logger.info("wrote %s: %d clips (%d reused, %d failed)", args.out, written, reused, len(failed))
    runtime.stop(run)


if __name__ == "__main__":
    run_main(main)
