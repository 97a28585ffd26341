"""Stage 3: sample T frames per clip, run the backbone, and write the feature file.

python -m pipeline.extract --split data/split.csv --backbone-file models/backbone.pt \
    --out features/features.h5 --failed reports/extract_failed.csv --report reports/extract.json

Only clips missing from the feature cache (keyed by the extraction settings and each video's content)
are decoded and run. Under `torchrun --nproc-per-node N` each rank extracts its share of the clips on
its own GPU into the shared cache, and rank 0 assembles the feature file. The finetune stage's
--backbone-file gives fine-tuned weights where it holds any. A clip that cannot be decoded is listed
in the failed report and left out. Engine and precision `auto`: a short trial (kept per machine) picks.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import pandas as pd
import torch

from actrec import distributed
from actrec.data.datasets import read_table
from actrec.devices import resolve_device
from actrec.errors import run_main
from actrec.features.backbone_file import extract_params
from actrec.features.extractor import choose_engine, extraction_backbone, fill_cache
from actrec.features.skeleton import FEATURE_DIM as SKELETON_DIM
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
    if cfg.threads != "auto":
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    world = distributed.init(device.type)
    if device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
    table = read_table(args.split, "split")
    for path in (args.failed, args.report):
        output_dir(path.parent)
    remove_leftovers(output_dir(args.out.parent))
    start = time.perf_counter()
    backbone = extraction_backbone(cfg)  # its weights and preprocessing key the cache
    choice = choose_engine(table, cfg, device, params.seed, backbone, world)  # engine and precision: given, or measured
    trial_seconds = time.perf_counter() - start
    settings = ExtractionSettings.from_params(cfg, choice.precision, params.seed, backbone)
    cache = FeatureCache(cfg.cache_dir, settings)
    distributed.barrier(world)  # every rank has cleared dead runs' leftovers before any rank writes a shard

    reused = int(table["fingerprint"].isin(cache.index()).sum())
    run = fill_cache(cache, table, cfg, device, world, choice, backbone)
    failed = pd.concat(distributed.gather(world, run.failed), ignore_index=True)
    distributed.barrier(world)
    if world.is_main:
        with output_file(args.failed) as tmp:  # sorted: the same failures give the same file, however ranked
            failed.sort_values("clip_id").to_csv(tmp, index=False)
        classes = sorted(table["label"].unique(), key=str.lower)
        attrs = {"dataset": params.dataset.name, "weights_file": getattr(backbone, "weights_file", "") or "", **made_by}
        written = assemble(cache, table, classes, args.out, attrs=attrs)
        write_json(
            args.report,
            {
                "videos": written,
                "reused_from_cache": reused,
                "extracted": written - reused,
                "failed": len(failed),
                "backbone": cfg.backbone,
                "feature_dim": backbone.feature_dim if backbone is not None else SKELETON_DIM,
                "image_size": backbone.image_size if backbone is not None else 0,
                "frames": cfg.frames,
                "views_per_video": cfg.views,
                "precision": settings.precision,
                "device": device.type,
                "engine": run.engine,
                "seconds": round(trial_seconds + run.seconds, 1),
                "frames_per_second": round(run.steady_fps, 1),
                "engine_choice": {**choice.record(), "seconds": round(trial_seconds, 1)},
            },
        )
        logger.info("wrote %s: %d clips (%d reused, %d failed)", args.out, written, reused, len(failed))
    distributed.shutdown(world)


if __name__ == "__main__":
    run_main(main)
