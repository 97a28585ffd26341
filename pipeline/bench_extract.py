"""Benchmark of feature extraction: the pipeline against the backbone alone and a naive loop.

python -m pipeline.bench_extract --clips ../shared/data/ucf101-mini [--backbone resnet50] [--limit 30]

Prints, on the same clips: (1) backbone-only frames/s on random tensors with the pipeline's model,
batch and precision: the bound; (2) pipeline frames/s: decode + preprocess + forward + write,
through the extract stage's own code; (3) a naive reference: each clip decoded, frames transformed
one by one with PIL, fp32 forward per clip, written one by one; (4) the ratios and each phase's
peak memory (RSS, DataLoader workers included). Each phase runs in a fresh process, so one phase's
memory does not hide another's.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import torch
from PIL import Image
from torchvision import transforms

from pipeline.backbones import load_backbone
from pipeline.datasets import scan
from pipeline.extract import fill_cache
from pipeline.extraction import resolve_batch_size, resolve_device, resolve_precision
from pipeline.features import ExtractionSettings, FeatureCache
from pipeline.params import DatasetParams, ExtractParams
from pipeline.video import fingerprint, read_clip


def _peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def _clip_table(root: Path, limit: int) -> pd.DataFrame:
    name = "ucf101" if (root / "UCF-101").is_dir() else "folder"
    table = scan(DatasetParams(name=name, root=str(root)))
    table = table.sample(n=min(limit, len(table)), random_state=0).reset_index(drop=True)
    table["fingerprint"] = [fingerprint(p) for p in table["path"]]
    return table


def _settings(args: argparse.Namespace) -> tuple[ExtractionSettings, torch.device, int]:
    device = resolve_device(args.device)
    settings = ExtractionSettings(backbone=args.backbone, weights=args.weights, frames=args.frames, clips=1,
                                  image_size=args.image_size, precision=resolve_precision(args.precision, device),
                                  seed=0)
    torch.set_num_threads(args.threads or torch.get_num_threads())
    return settings, device, resolve_batch_size(args.batch_size, device)


def bound(args: argparse.Namespace) -> dict:
    """Backbone-only frames/s: the same model, batch and precision on random tensors."""
    settings, device, batch = _settings(args)
    backbone = load_backbone(settings.backbone, settings.weights, settings.image_size)
    model = backbone.model.to(device).to(memory_format=torch.channels_last)
    x = torch.randn(batch, 3, settings.image_size, settings.image_size, device=device)
    x = x.contiguous(memory_format=torch.channels_last)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(settings.precision)
    frames = args.limit * args.frames
    with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
        model(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(max(1, frames // batch)):
            model(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
    return {"fps": max(1, frames // batch) * batch / elapsed, "rss_mb": _peak_rss_mb(),
            "precision": settings.precision, "batch": batch, "device": device.type}


def pipeline(args: argparse.Namespace) -> dict:
    """The extract stage's own path: DataLoader decode-ahead, batched forward, shard writes."""
    settings, device, batch = _settings(args)
    table = _clip_table(args.clips, args.limit)
    cfg = ExtractParams(backbone=settings.backbone, weights=settings.weights, frames=settings.frames,
                        image_size=settings.image_size, batch_size=batch, num_workers=args.workers)
    with tempfile.TemporaryDirectory() as tmp:
        cache = FeatureCache(tmp, settings)
        start = time.perf_counter()
        failed = fill_cache(cache, table, cfg, device)
        elapsed = time.perf_counter() - start
    done = len(table) - len(failed)
    return {"fps": done * settings.frames / elapsed, "rss_mb": _peak_rss_mb(), "clips": done}


def naive(args: argparse.Namespace) -> dict:
    """The notebook way: per clip, PIL transforms frame by frame, fp32 forward, one write per clip."""
    settings, device, _ = _settings(args)
    backbone = load_backbone(settings.backbone, settings.weights, settings.image_size)
    model = backbone.model.to(device)
    transform = transforms.Compose([transforms.Resize(backbone.resize_size), transforms.CenterCrop(backbone.image_size),
                                    transforms.ToTensor(), transforms.Normalize(backbone.mean, backbone.std)])
    table = _clip_table(args.clips, args.limit)
    with tempfile.TemporaryDirectory() as tmp, h5py.File(Path(tmp) / "naive.h5", "w") as out:
        start = time.perf_counter()
        for row in table.itertuples():
            frames, _ = read_clip(row.path, settings.frames)
            x = torch.stack([transform(Image.fromarray(f)) for f in frames]).to(device)
            with torch.no_grad():
                feats = model(x).cpu().numpy()
            out.create_dataset(row.fingerprint, data=feats.astype(np.float16))
            out.flush()
        elapsed = time.perf_counter() - start
    return {"fps": len(table) * settings.frames / elapsed, "rss_mb": _peak_rss_mb()}


def _child(fn, args, queue) -> None:
    queue.put(fn(args))


def run_isolated(fn, args: argparse.Namespace) -> dict:
    """Run one phase in a fresh process and return its result (its peak RSS is its own)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(fn, args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=Path, required=True, help="dataset root (UCF-101 layout or class folders)")
    parser.add_argument("--limit", type=int, default=30, help="number of clips (seeded sample)")
    parser.add_argument("--backbone", default="resnet50", choices=("resnet50", "efficientnet_lite0"))
    parser.add_argument("--weights", default=None, help="imagenet or none; speed does not depend on it")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", default="auto", help="images per forward pass (auto: 16 on CPU, 512 on GPU)")
    parser.add_argument("--workers", type=int, default=1, help="DataLoader decoding processes")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"))
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--skip-naive", action="store_true", help="leave out the naive reference")
    args = parser.parse_args()
    args.weights = None if str(args.weights).lower() in ("none", "null") else args.weights

    b = run_isolated(bound, args)
    print(f"backbone {args.backbone} @ {args.image_size}, {b['device']}, {b['precision']}, batch {b['batch']} images")
    print(f"1. backbone-only bound : {b['fps']:8.1f} frames/s   peak RSS {b['rss_mb']:7.0f} MB")
    p = run_isolated(pipeline, args)
    print(f"2. pipeline            : {p['fps']:8.1f} frames/s   peak RSS {p['rss_mb']:7.0f} MB"
          f"   ({p['clips']} clips x {args.frames} frames, {args.workers} workers)")
    if not args.skip_naive:
        n = run_isolated(naive, args)
        print(f"3. naive reference     : {n['fps']:8.1f} frames/s   peak RSS {n['rss_mb']:7.0f} MB")
    print(f"4. pipeline / bound    : {p['fps'] / b['fps']:8.2f}")
    if not args.skip_naive:
        print(f"   pipeline / naive    : {p['fps'] / n['fps']:8.2f}")


if __name__ == "__main__":
    main()
