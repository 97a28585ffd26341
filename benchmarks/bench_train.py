"""Benchmark: seconds per training epoch of each temporal head, and features in memory against streamed.

python -m benchmarks.bench_train [--heads lstm,gru,...] [--clips 9537] [--frames 16] [--dim 2048]
    [--bidirectional false]
python -m benchmarks.bench_train --sizes 1,4,16 [--scratch /tmp/bench-train] [--batches 60]

Heads: random float16 features of the given size (default: UCF-101 split-1 train, 9,537 clips × 16
frames × 2048-d ResNet-50 features) are held in memory as the train stage holds them; each head trains
one epoch through the real training loop (recipe from params.yaml's train section, no validation set).

Sizes: for feature files of 1×, 4×, 16× UCF-101 (13,320 clips × 16 × 2048 float16, written by the
extract stage's own cache and assemble, in chunks, into --scratch, and deleted after), the train
stage's loading and loop run in a fresh process per file and path: in memory (where it fits),
streamed from the page cache, and streamed from the disk (the file's pages evicted first). For each:
peak RSS (VmHWM) of that process, seconds to load, and seconds per epoch, extrapolated from --batches
batches over clips drawn from the whole file (the fastest of --repeat runs: the CPU may be shared).
Where both paths run, they also train on the same clips in alternating blocks in one process, so that
their ratio holds even when other work shares the CPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from actrec.errors import run_main
from actrec.features.backbones.base import IMAGENET_MEAN, IMAGENET_STD, Preprocessing
from actrec.features.store import ExtractionSettings, FeatureCache, FeatureSet, assemble
from actrec.features.stream import available_memory, choose_in_memory, load_for_training
from actrec.model.heads import HEADS
from actrec.model.training import keep_freed_memory, train_head
from actrec.params import Params, load_params
from benchmarks.machine import describe_machine
from benchmarks.results import parse_args

UCF101_CLIPS = 13320
LABELS = {"memory": "in memory", "stream": "streamed", "cold": "streamed from disk"}
PARTS = {"train": 0.57, "val": 0.15, "test": 0.28}  # UCF-101 split 1: 9,537 train + val, 3,783 test


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


def write_feature_file(
    path: Path,
    clips: int,
    frames: int,
    dim: int,
    classes: int,
    views: int = 1,
    seed: int = 0,
    chunk: int = 1024,
    backbone: str = "resnet50",
) -> Path:
    """A feature file as the extract stage writes it (shards into a feature cache, then assemble) for `clips`
    random clips split as PARTS (rounded, shuffled), `chunk` clips at a time so that memory stays flat however
    large the file.
    Its attributes say `backbone` (ImageNet weights, 224 px) made it, so the train stage takes it under those
    extract params. Class c's clips have mean c / classes on every channel: training has something to learn.
    """
    settings = ExtractionSettings(
        backbone=backbone,
        weights="imagenet",
        weights_id="synthetic features",
        preprocessing=Preprocessing(256, 224, "bilinear", IMAGENET_MEAN, IMAGENET_STD).to_json(),
        frames=frames,
        views=views,
        sampling="uniform",
        stride=2,
        image_size=224,
        engine="eager",
        precision="fp32",
        seed=seed,
    )
    cache_dir = path.parent / f"{path.stem}-cache"
    cache = FeatureCache(cache_dir, settings)
    rng = np.random.default_rng(seed)
    labels = np.arange(clips) % classes
    fingerprints = [f"clip{i}" for i in range(clips)]
    for start in range(0, clips, chunk):
        n = min(chunk, clips - start)
        features = rng.standard_normal((n, views, frames, dim), dtype=np.float32)
        features += (labels[start : start + n] / classes)[:, None, None, None]
        cache.write_shard(fingerprints[start : start + n], features, np.zeros((n, views, frames), np.int32))
    names = [f"c{i:03d}" for i in range(classes)]
    counts = [round(PARTS["train"] * clips), round(PARTS["val"] * clips)]
    counts.append(clips - sum(counts))
    table = pd.DataFrame(
        {
            "clip_id": fingerprints,
            "label": [names[c] for c in labels],
            "split": np.random.default_rng(seed + 1).permutation(np.repeat(list(PARTS), counts)),
            "group": fingerprints,  # every clip its own group
            "fingerprint": fingerprints,
        }
    )
    assemble(cache, table, names, path, attrs={"dataset": "random"})
    shutil.rmtree(cache_dir)
    return path


def peak_rss() -> int:
    """This process's peak resident memory (VmHWM), in bytes."""
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def evict(path: Path) -> None:
    """Drop the file's pages from the page cache (its reads then come from the disk); no other file's."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def subset(data: FeatureSet, rows: np.ndarray) -> FeatureSet:
    """The clips at `rows` (streamed features stay on disk)."""
    return FeatureSet(*(a[rows] for a in (data.features, data.labels, data.clip_ids, data.split)), data.classes, {})


def run_one(path: Path, mode: str, batches: int, head: str) -> dict:
    """In this process: load as the train stage does, then train `batches` batches of one epoch over clips drawn
    from the whole file (no validation); the figures as a dict. Mode "cold": streamed, the file evicted first."""
    params = load_params() if Path("params.yaml").is_file() else Params()
    keep_freed_memory()
    in_memory = mode == "memory"
    if mode == "cold":
        evict(path)
    start = time.perf_counter()
    train, _val = load_for_training(path, ("train", "val"), in_memory=in_memory)  # held, as the train stage does
    loaded = time.perf_counter() - start
    cfg = dataclasses.replace(params.train, epochs=1)
    rng = np.random.default_rng(0)
    n = min(batches * cfg.batch_size, len(train.labels))

    def sample(data: FeatureSet, count: int) -> FeatureSet:
        return subset(data, np.sort(rng.choice(len(data.labels), count, replace=False)))

    warmup = sample(train, 4 * cfg.batch_size)
    model = dataclasses.replace(params.model, head=head)
    train_head(model, cfg, 0, warmup, warmup.part())  # oneDNN kernels and the heap: paid once per process
    start, cpu = time.perf_counter(), time.process_time()
    train_head(model, cfg, 0, sample(train, n), warmup.part())
    scale = len(train.labels) / n
    epoch, cpu = (time.perf_counter() - start) * scale, (time.process_time() - cpu) * scale
    return {
        "load_s": loaded,
        "epoch_s": epoch,
        "cpu_s": cpu,
        "timed": n,
        "train_clips": len(train.labels),
        "rss": peak_rss(),
    }


def run_paired(path: Path, batches: int, head: str, block: int = 6) -> dict:
    """The same clips in memory and streamed, trained in alternating blocks of `block` batches in this one process,
    so that both see the same load on a shared CPU: seconds for `batches` batches each."""
    params = load_params() if Path("params.yaml").is_file() else Params()
    keep_freed_memory()
    cfg = dataclasses.replace(params.train, epochs=1)
    model = dataclasses.replace(params.model, head=head)
    (memory,), (streamed,) = (load_for_training(path, ("train",), in_memory=m) for m in (True, False))
    rows = np.random.default_rng(0).permutation(len(memory.labels))[: batches * cfg.batch_size]
    seconds = {"memory": 0.0, "stream": 0.0}
    for i, start in enumerate(range(0, len(rows), block * cfg.batch_size)):
        chunk = np.sort(rows[start : start + block * cfg.batch_size])
        for name in ("memory", "stream") if i % 2 else ("stream", "memory"):
            data = memory if name == "memory" else streamed
            part = subset(data, chunk)
            began = time.perf_counter()
            train_head(model, cfg, 0, part, part.part())
            if i:  # the first block builds oneDNN's kernels
                seconds[name] += time.perf_counter() - began
    return seconds


def child(path: Path, mode: str, batches: int, head: str) -> dict:
    """One measured run in a fresh process (its peak RSS is its own); its figures."""
    command = [sys.executable, "-m", "benchmarks.bench_train", "--run", str(path), "--mode", mode]
    done = subprocess.run([*command, "--batches", str(batches), "--heads", head], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.splitlines()[-1])


def compare_sizes(args: argparse.Namespace) -> None:
    """Feature files of each size, in memory (where it fits) and streamed, each measured in a fresh process."""
    scratch = Path(args.scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    head = args.heads.split(",")[0]
    print(
        f"feature files of N × UCF-101 ({UCF101_CLIPS} clips × {args.frames} × {args.dim} float16); train stage: "
        f"{head} head, {args.batches} batches timed per run over clips drawn from the whole file (epoch time "
        f"extrapolated to all train clips, no validation), each run in a fresh process, the fastest of "
        f"{args.repeat} shown with the highest peak RSS",
        flush=True,
    )
    for size in (int(s) for s in args.sizes.split(",")):
        path = scratch / f"features-{size}x.h5"
        start = time.perf_counter()
        write_feature_file(path, size * UCF101_CLIPS, args.frames, args.dim, args.classes)
        written = time.perf_counter() - start
        print(f"{size:2d}×: {path.stat().st_size / 1e9:.1f} GB on disk (written in {written:.0f} s)", flush=True)
        try:
            for mode in ("memory", "stream", "cold"):
                train_bytes = (PARTS["train"] + PARTS["val"]) * path.stat().st_size
                fits = choose_in_memory(int(train_bytes), available_memory())
                if mode == "memory" and not (fits and train_bytes <= args.memory_limit * 1e9):
                    why = "over --memory-limit" if fits else "does not fit: the train stage would stream"
                    print(f"    in memory: skipped, {train_bytes / 1e9:.1f} GB of train + val features ({why})")
                    continue
                runs = [child(path, mode, args.batches, head) for _ in range(args.repeat)]
                r = {**min(runs, key=lambda x: x["epoch_s"]), "rss": max(x["rss"] for x in runs)}
                r["cpu_s"] = min(x["cpu_s"] for x in runs)
                print(
                    f"    {LABELS[mode]:18s}: peak RSS {r['rss'] / 1e9:5.2f} GB, "
                    f"load {r['load_s']:6.1f} s, {r['epoch_s']:7.1f} s/epoch, CPU {r['cpu_s']:7.1f} s/epoch "
                    f"({r['train_clips']} train clips, {r['timed']} timed)",
                    flush=True,
                )
            if fits and train_bytes <= args.memory_limit * 1e9:
                r = child(path, "paired", args.batches, head)
                print(
                    f"    streamed / in memory, alternating in one process: {r['stream'] / r['memory']:.2f} "
                    f"({r['memory']:.1f} s against {r['stream']:.1f} s for the same batches)",
                    flush=True,
                )
        finally:
            path.unlink()


def compare_heads(args: argparse.Namespace, params: Params) -> None:
    data = random_features(args.clips, args.frames, args.dim, args.classes)
    empty = data.part("val")
    cfg = dataclasses.replace(params.train, epochs=1, batch_size=args.batch_size or params.train.batch_size)
    bidirectional = params.model.bidirectional if args.bidirectional is None else args.bidirectional == "true"
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    every = ",".join(h for h in HEADS if h != "ensemble")  # the ensemble trains as its temporal head does
    parser.add_argument("--heads", default=every, help="comma-separated heads (default: all)")
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
    parser.add_argument("--sizes", help="e.g. 1,4,16: feature files of these multiples of UCF-101, memory vs streamed")
    parser.add_argument("--scratch", default="/tmp/bench-train", help="--sizes: folder for the generated files")
    parser.add_argument("--batches", type=int, default=60, help="--sizes: batches timed per run")
    parser.add_argument("--repeat", type=int, default=2, help="--sizes: runs per file and path (the fastest shown)")
    parser.add_argument(
        "--memory-limit", type=float, default=float("inf"), help="--sizes: GB of features at most held in memory"
    )
    parser.add_argument("--run", type=Path, help=argparse.SUPPRESS)  # one measured run, in its own process
    parser.add_argument("--mode", choices=[*LABELS, "paired"], help=argparse.SUPPRESS)
    args = parse_args(parser)
    torch.set_num_threads(args.threads)
    if args.run:
        run = run_paired if args.mode == "paired" else functools.partial(run_one, mode=args.mode)
        print(json.dumps(run(args.run, batches=args.batches, head=args.heads.split(",")[0])))
        return
    params = load_params() if Path("params.yaml").is_file() else Params()
    keep_freed_memory()  # as the train stage does
    print(describe_machine())
    if args.sizes:
        compare_sizes(args)
    else:
        compare_heads(args, params)


if __name__ == "__main__":
    run_main(main)
