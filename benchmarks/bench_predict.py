"""Benchmark of `actrec predict` on CPU: latency for one 10-second 320×240 clip, throughput in batch mode.

python -m benchmarks.bench_predict [--model models/model.pt] [--runs 5] [--batch 16] [--threads N]

On a generated 10 s, 25 fps, 320×240 MPEG-4 clip (UCF-101's size and codec family) prints:
(1) the one-off cost of a command: process start + imports + loading model and backbone;
(2) in-process latency of one prediction, end to end and split into decode, backbone and head;
(3) clips/s predicting a folder of such clips (decoding ahead in a worker, as `actrec predict DIR`).
Without a trained model, a head of the default params with random weights stands in: the cost
does not depend on the weights, only on the backbone, T and the head's size.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch

from actrec.data.decoding import read_clip
from actrec.inference.predictor import Predictor
from actrec.model.checkpoint import Checkpoint
from actrec.model.heads import build_head
from actrec.model.proba import predict_proba
from actrec.params import ExtractParams, ModelParams
from benchmarks.machine import describe_machine
from benchmarks.results import parse_args

SECONDS, FPS, WIDTH, HEIGHT = 10, 25, 320, 240


def write_clip(path: Path, seed: int = 0, seconds: int = SECONDS) -> Path:
    """A 10 s (or `seconds`) 320×240 MPEG-4 AVI: a textured square crossing a noisy background (not trivially
    compressible)."""
    rng = np.random.default_rng(seed)
    background = rng.integers(0, 200, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    with av.open(str(path), "w", format="avi") as container:
        stream = container.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for i in range(seconds * FPS):
            frame = np.roll(background, i * 2, axis=1)
            x = int((WIDTH - 60) * i / (seconds * FPS))
            frame[90:150, x : x + 60] = (255, 64, 32)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def stand_in_model(path: Path, classes: int = 101) -> Path:
    """A checkpoint as the train stage writes it: default params, the first listed head, random weights."""
    extract, model = ExtractParams(), ModelParams()
    name = model.candidates()[0]
    head = build_head(name, 1280, classes, model)
    Checkpoint(
        head=name,
        head_options=model.head_options(),
        input_dim=1280,
        classes=[f"class{i:03d}" for i in range(classes)],
        features={
            "backbone": "efficientnet_lite0",
            "weights": "imagenet",
            "frames": extract.frames,
            "views": 1,
            "image_size": extract.image_size,
            "precision": "fp32",
            "seed": 0,
            "feature_dim": 1280,
        },
        state_dict=head.state_dict(),
    ).save(path)
    return path


def model_or_stand_in(model: Path, folder: Path) -> Path:
    """`model` if it exists, else a stand-in checkpoint written into `folder` (and said so)."""
    if model.is_file():
        return model
    print(f"{model} not found: timing a stand-in head of the default params (random weights)")
    return stand_in_model(folder / "model.pt")


def _median_time(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/model.pt", help="checkpoint (a stand-in is used if absent)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per figure (median reported)")
    parser.add_argument("--batch", type=int, default=16, help="clips in the batch-mode folder")
    parser.add_argument(
        "--threads",
        type=int,
        help="torch CPU threads (default: torch's, one per core); on a "
        "busy machine fewer threads than cores can be faster",
    )
    args = parse_args(parser)
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = model_or_stand_in(Path(args.model), tmp)
        clip = write_clip(tmp / "clip.avi")
        folder = tmp / "batch"
        folder.mkdir()
        for i in range(args.batch):  # distinct files: nothing is shared between them but the codec
            write_clip(folder / f"clip{i:02d}.avi", seed=i)

        start = time.perf_counter()
        command = [sys.executable, "-m", "actrec", "predict", str(clip), "--model", str(model), "--device", "cpu"]
        threads = {"OMP_NUM_THREADS": str(args.threads)} if args.threads else {}
        subprocess.run(command, check=True, capture_output=True, env={**os.environ, **threads})
        command_s = time.perf_counter() - start

        start = time.perf_counter()
        predictor = Predictor(model, device="cpu")
        load_s = time.perf_counter() - start
        predictor.predict([clip]).__next__()  # warm-up: first-call allocations and kernel choices

        end_to_end = _median_time(lambda: list(predictor.predict([clip])), args.runs)
        frames, _ = read_clip(clip, predictor.frames, predictor.views)
        frames = frames[:, None]  # each sampled frame, the one frame of its window (an image backbone's)
        decode = _median_time(lambda: read_clip(clip, predictor.frames, predictor.views), args.runs)
        backbone = _median_time(lambda: predictor.embed(frames), args.runs)
        feats = predictor.embed(frames).reshape(1, predictor.views, predictor.frames, -1)
        head_s = _median_time(lambda: predict_proba(predictor.model, feats), args.runs)

        paths = sorted(folder.glob("*.avi"))
        batch = Predictor(model, device="cpu")  # as `actrec predict <folder>`: the engine suits the whole folder
        batch_s = _median_time(lambda: list(batch.predict(paths, num_workers=1)), max(1, args.runs // 2))

    print(describe_machine())
    print(
        f"actrec predict on a {SECONDS} s {WIDTH}×{HEIGHT} clip, CPU (torch threads: {torch.get_num_threads()}), "
        f"{predictor.source.name} {predictor.record['input_size']} px, T={predictor.frames}, "
        f"precision {predictor.precision}"
    )
    print(f"  whole command (start, imports, load, predict): {command_s:6.2f} s")
    print(f"  loading model + backbone:                      {load_s:6.2f} s")
    print(f"  one prediction, end to end:                    {end_to_end * 1000:6.0f} ms")
    print(f"    decode + sample {predictor.frames} frames:                  {decode * 1000:6.0f} ms")
    print(f"    backbone (resize, crop, forward):            {backbone * 1000:6.0f} ms")
    print(f"    head:                                        {head_s * 1000:6.1f} ms")
    print(
        f"  batch mode, {len(paths)} clips:                        {len(paths) / batch_s:6.2f} clips/s "
        f"(backbone run by {batch.runner(0).engine}; one clip: {predictor.runner(0).engine})"
    )


if __name__ == "__main__":
    main()
