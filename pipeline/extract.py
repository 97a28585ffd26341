"""Stage 3: sample T frames per clip, turn them into features (the feature source), and write the feature file.

python -m pipeline.extract --split data/split.csv --backbone-file models/backbone.pt \
    --out features/features.h5 --failed reports/extract_failed.csv --report reports/extract.json

The feature source is what extract.backbone names (features/sources). Only clips missing from the feature
cache (keyed by the extraction settings and each video's content) are read and run. Under `torchrun
--nproc-per-node N` each rank extracts its share of the clips on its own GPU into the shared cache, and
rank 0 assembles the feature file. The finetune stage's --backbone-file gives fine-tuned weights where it
holds any. A clip that cannot be read is listed in the failed report and left out. Every `auto` is
resolved once, at the start (runtime.start_extraction); engine and precision `auto`: a short trial (kept per
machine) picks. The engine and precision that computed each part's features (a joined motion stream: none, in
fp32) key that part's cache; the first part's are recorded in the feature file and the report, each other part's
in its report entry (engine_frames_per_second: the network alone, held against the trial's figure).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from actrec import distributed, runtime
from actrec.data.datasets import read_table
from actrec.errors import run_main
from actrec.features import extractor
from actrec.features.backbone_file import extract_params
from actrec.features.sources import build_source
from actrec.features.store import assemble, optional_settings
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
    source = build_source(cfg.backbone, cfg.weights, cfg.image_size, cfg.motion, cfg.clip_len)  # keys the caches
    parts = extractor.prepare_parts(source, table, cfg, run, params.seed)  # each part's engine, precision and cache
    trial_seconds = time.perf_counter() - start
    distributed.barrier(world)  # every rank has cleared dead runs' leftovers before any rank writes a shard
    done, failed, reused = extractor.fill_parts(parts, table, cfg.shard_size)
    distributed.barrier(world)
    if world.is_main:
        with output_file(args.failed) as tmp:  # sorted: the same failures give the same file, however ranked
            failed.sort_values("clip_id").to_csv(tmp, index=False)
        classes = sorted(table["label"].unique(), key=str.lower)
        attrs = {"dataset": params.dataset.name, "weights_file": source.weights_file or "", **made_by}
        settings = extractor.assembled_settings(parts, source, cfg, params.seed)
        written = assemble(
            [p.cache for p in parts], table, classes, args.out, {**attrs, **optional_settings(cfg)}, settings
        )
        write_json(
            args.report,
            {
                "videos": written,
                "reused_from_cache": reused,
                "extracted": written - reused,
                "failed": len(failed),
                "backbone": cfg.backbone,
                "feature_dim": source.feature_dim,
                "image_size": settings.input_size,
                "frames": cfg.frames,
                "views_per_video": cfg.views,
                "device": run.device.type,
                **extractor.report(parts, done, trial_seconds),
            },
        )
        logger.info("wrote %s: %d clips (%d reused, %d failed)", args.out, written, reused, len(failed))
    runtime.stop(run)


if __name__ == "__main__":
    run_main(main)
