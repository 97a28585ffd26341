"""Benchmark: seconds per training epoch of each temporal head over UCF-101-sized features.

python -m benchmarks.bench_train [--heads lstm,gru,...] [--clips 9537] [--frames 16] [--dim 2048]
    [--bidirectional false]

Random float16 features of the given size (default: UCF-101 split-1 train, 9,537 clips × 16 frames
× 2048-d ResNet-50 features) are held in memory as the train stage holds them; each head trains
one epoch through the real training loop (recipe from params.yaml's train section, no validation set).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import torch

from actrec.errors import run_main
from actrec.features.store import FeatureSet
from actrec.heads import HEADS
from actrec.params import Params, load_params
from actrec.training import keep_freed_memory, train_head
from benchmarks.machine import describe_machine


def random_features(clips: int, frames: int, dim: int, classes: int, seed: int = 0) -> FeatureSet:
    """A train set of `clips` random (1, frames, dim) float16 clips, made in chunks to bound memory."""
    rng = np.random.default_rng(seed)
    features = np.empty((clips, 1, frames, dim), dtype=np.float16)
    for start in range(0, clips, 1024):
        chunk = features[start : start + 1024]
        chunk[:] = rng.standard_normal(chunk.shape, dtype=np.float32)
    labels = np.arange(clips) % classes
    ids = np.array([f"clip{i}" for i in range(clips)])
    return FeatureSet(features, labels, ids, np.full(clips, "train"), [f"c{i}" for i in range(classes)], {})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heads", default=",".join(HEADS), help="comma-separated heads (default: all)")
    parser.add_argument("--clips", type=int, default=9537, help="training clips (UCF-101 split 1: 9,537)")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--dim", type=int, default=2048, help="feature size (resnet50: 2048)")
    parser.add_argument("--classes", type=int, default=101)
    parser.add_argument("--hidden-size", type=int, default=512)
    parser.add_argument(
        "--bidirectional",
        choices=("true", "false"),
        help="lstm, gru, attention: read both ways (default: model.bidirectional of params.yaml)",
    )
    parser.add_argument("--batch-size", type=int, help="clips per step (default: train.batch_size of params.yaml)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads")
    args = parser.parse_args()
    params = load_params() if Path("params.yaml").is_file() else Params()
    torch.set_num_threads(args.threads)
    keep_freed_memory()  # as the train stage does
    data = random_features(args.clips, args.frames, args.dim, args.classes)
    empty = data.part("val")
    cfg = dataclasses.replace(params.train, epochs=1, batch_size=args.batch_size or params.train.batch_size)
    bidirectional = params.model.bidirectional if args.bidirectional is None else args.bidirectional == "true"
    print(describe_machine())
    print(
        f"one epoch over {args.clips} clips × {args.frames} frames × {args.dim} (float16 in memory), "
        f"batch {cfg.batch_size}, hidden {args.hidden_size}, bidirectional {bidirectional}, {args.threads} threads"
    )
    # A few steps first: oneDNN builds its kernels and the heap grows once per process, which a real
    # run pays once, not per epoch.
    warmup = random_features(8 * cfg.batch_size, args.frames, args.dim, args.classes)
    for head in args.heads.split(","):
        model = dataclasses.replace(params.model, head=head, hidden_size=args.hidden_size, bidirectional=bidirectional)
        start = time.perf_counter()
        train_head(model, cfg, 0, warmup, empty)
        startup = time.perf_counter() - start
        start = time.perf_counter()
        train_head(model, cfg, 0, data, empty)
        seconds = time.perf_counter() - start
        print(
            f"{head:12s} {seconds:7.1f} s/epoch  {args.clips / seconds:8.0f} clips/s   "
            f"(warm-up: 8 steps in {startup:.1f} s)",
            flush=True,
        )


if __name__ == "__main__":
    run_main(main)
