"""Benchmark how far reduced-precision features stray from fp32: cosine per frame, per backbone family.

python -m benchmarks.bench_precision [--shared ../shared/data] [--clips 16] [--frames 16]
    [--backbones efficientnet_lite0:imagenet,resnet18,resnet50,timm:vit_tiny_patch16_224] [--precision bf16]
    [--results benchmarks/results/precision.json]

Takes `--clips` real UCF-101 clips of ucf101-mini (spread over its three classes and its groups), samples
`--frames` frames of each as extraction does, and runs each backbone at its own image size in eager torch,
once in fp32 and once in `--precision` (autocast), on the CPU. Per backbone: the cosine similarity of each
frame's features to its fp32 features, min, median and the share of frames below 0.998. Prints the figures;
with --results, writes them with the machine, the date and the command for the docs' pages. A reduced precision the CPU
does not run natively (bf16 without AVX512-BF16 or AMX) is emulated by torch: its figures hold, slowly.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from datetime import date
from pathlib import Path

import numpy as np
import torch

from actrec.data.clips import find_clips
from actrec.devices import native_precision
from actrec.errors import ActrecError, run_main
from actrec.features.backbones import load_backbone
from actrec.features.engines import BackboneRunner
from actrec.features.extractor import extract_features
from actrec.features.sources.image import BackboneEmbedder, ImageSource
from actrec.runtime import Runtime
from benchmarks.machine import describe_machine
from benchmarks.results import Results, command_line

BAR = 0.998  # the cosine a reduced precision was once said to keep on every frame
DEFAULT_BACKBONES = "efficientnet_lite0:imagenet,resnet18,resnet50,timm:vit_tiny_patch16_224"


def sample_clips(shared: Path, count: int) -> list[Path]:
    """`count` clips of ucf101-mini, taken evenly along its sorted list (every class, many groups)."""
    clips = find_clips(shared / "ucf101-mini" / "UCF-101")
    if not clips:
        raise ActrecError(f"no clips under {shared / 'ucf101-mini'}")
    return [clips[i] for i in np.linspace(0, len(clips) - 1, min(count, len(clips))).astype(int)]


def features(paths: list[str], backbone, precision: str, frames: int) -> np.ndarray:
    """(clips · frames, D) float32 features of eager torch in `precision` on the CPU."""
    embedder = BackboneEmbedder(BackboneRunner(backbone, torch.device("cpu"), precision, 16, "eager"))
    runtime = Runtime.resolve("cpu", precision=precision, engine="eager", batch_size=16, num_workers=0)
    out = extract_features(paths, paths, ImageSource(backbone), embedder, runtime, frames=frames, views=1, seed=0)
    return np.concatenate([np.asarray(f, np.float32).reshape(-1, backbone.feature_dim) for _, f, _, _ in out])


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path("../shared/data"), help="folder holding ucf101-mini")
    parser.add_argument("--clips", type=int, default=16, help="real clips")
    parser.add_argument("--frames", type=int, default=16, help="frames sampled per clip")
    parser.add_argument("--backbones", default=DEFAULT_BACKBONES, help="name[:weights], comma-separated")
    parser.add_argument("--precision", default="bf16", choices=("bf16", "fp16"), help="against fp32")
    parser.add_argument(
        "--results",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write the table with the machine, the date and the command line to FILE "
        "(benchmarks/results/precision.json: python -m tools.render_results puts it on the docs' pages)",
    )
    args = parser.parse_args(argv)
    paths = [str(p) for p in sample_clips(args.shared, args.clips)]
    machine = describe_machine()
    print(machine)
    native = native_precision(args.precision, torch.device("cpu"))
    rows = []
    for entry in args.backbones.split(","):
        name, _, weights = entry.partition(":") if not entry.startswith(("timm:", "open_clip:")) else (entry, "", "")
        torch.manual_seed(0)
        backbone = load_backbone(name, weights or None)
        similarity = cosine(
            features(paths, backbone, "fp32", args.frames), features(paths, backbone, args.precision, args.frames)
        )
        row = {
            "backbone": name,
            "weights": weights or "random init",
            "image_size": backbone.image_size,
            "frames": len(similarity),
            "cosine_min": round(float(similarity.min()), 4),
            "cosine_median": round(float(np.median(similarity)), 4),
            "below_0.998": f"{int((similarity < BAR).sum())} of {len(similarity)}",
        }
        rows.append(row)
        print(json.dumps(row))
    if args.results is None:
        return
    results = Results(
        machine=machine.removeprefix("machine: "),
        date=date.today().isoformat(),
        command=command_line(),
        columns=["backbone", "weights", "image size", "frames", "cosine min", "median", "below 0.998"],
        rows=[list(row.values()) for row in rows],
        note=f"{args.precision} against fp32 features, eager torch (autocast) on the CPU, {args.precision} "
        f"{'native' if native else 'emulated'} there; {len(paths)} real UCF-101 clips × {args.frames} frames.",
        figures={f"{row['backbone']}_cosine_min": row["cosine_min"] for row in rows},
    )
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(asdict(results), indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {args.results} (python -m tools.render_results puts it on the docs' pages)")


if __name__ == "__main__":
    run_main(main)
