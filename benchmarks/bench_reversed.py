"""Benchmark where frame order decides the class: real clips against their time-reversed copies.

python -m benchmarks.bench_reversed --shared ../shared/data [--groups 3] [--seconds 2] [--frames 8] [--size 112]
    [--single] [--unseen-groups] [--epochs 60] [--batch-size 32] [--work DIR]

Builds a Something-Something v2 miniature (labels.json, train.json, validation.json, VP8 WebM) from
the real UCF-101 clips of ../shared/data/ucf101-mini, each played forwards and backwards (ffmpeg
`-vf reverse`) as two classes: the same frames, in two orders. Each clip is two real clips of two
actions cut together, `--seconds` of each, as Something-Something's clips go from one state to
another ("putting something into something" is "taking something out" reversed): trampoline then
uneven bars, trampoline then volleyball, uneven bars then volleyball; reversed, the later action
comes first. Uneven bars is first in one pair and second in another, and both classes hold the
same frames: only their order tells the class. With --single each clip is one real clip (the
arrow of time within an action). Clips c01–c03 of the first `--groups` groups of
each class are used; c01 and c02 train and c03 tests (a UCF-101 group is one source video: the same
people doing the action again, at other moments); with --unseen-groups the last group tests instead
(scenes never seen). Then runs the whole pipeline, each stage as DVC runs it (a fresh process), with the
shipped params.yaml but for the dataset, T frames at `--size` px with ImageNet EfficientNet-Lite0
and the given epochs and batch size, and prints test top-1 of the head the train stage chose
(model.head's default list, by cross-validation) beside the linear probe on mean + std over time,
which cannot see the order.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import date
from pathlib import Path

from actrec.errors import run_main
from benchmarks.machine import describe_machine
from benchmarks.results import parse_args
from tests.helpers import run_stage, sthv2_miniature, tiny_project

CLASSES = ("TrampolineJumping", "UnevenBars", "VolleyballSpiking")
CUTS = ((0, 1), (0, 2), (1, 2))  # forwards, the action earlier in CLASSES comes first


def _sources(ucf: Path, groups: int, single: bool, unseen: bool) -> tuple[list, set]:
    """Clips c01–c03 of the first `groups` groups of each class (alone, or cut together in the order of CUTS),
    and the ones to test on."""
    clips, tested = [], set()
    for g in range(1, groups + 1):
        for c in range(1, 4):
            real = [ucf / "UCF-101" / n / f"v_{n}_g{g:02d}_c{c:02d}.avi" for n in CLASSES]
            made = real if single else [(real[a], real[b]) for a, b in CUTS]
            clips += made
            if (g == groups) if unseen else (c == 3):
                tested.update(made)
    return clips, tested


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path("../shared/data"), help="folder holding ucf101-mini")
    parser.add_argument("--groups", type=int, default=3, help="groups per class, 3 clips each")
    parser.add_argument("--seconds", type=float, default=2.0, help="at most this much of each real clip")
    parser.add_argument("--frames", type=int, default=8, help="extract.frames")
    parser.add_argument("--size", type=int, default=112, help="extract.image_size (and the WebM's height)")
    parser.add_argument("--single", action="store_true", help="each clip one real clip, not two cut together")
    parser.add_argument("--unseen-groups", action="store_true", help="test on each class's last group")
    parser.add_argument("--epochs", type=int, default=60, help="train.epochs")
    parser.add_argument("--batch-size", type=int, default=32, help="train.batch_size")
    parser.add_argument("--work", type=Path, help="keep the project here (a miniature already there is reused)")
    args = parse_args(parser, argv)
    print(describe_machine())
    print(f"date: {date.today().isoformat()}")
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        start = time.perf_counter()
        if not (work / "ssv2" / "validation.json").is_file():
            clips, tested = _sources(args.shared / "ucf101-mini", args.groups, args.single, args.unseen_groups)
            sthv2_miniature(work / "ssv2", clips, args.seconds, args.size, tested)
        counts = {s: len(json.loads((work / "ssv2" / f"{s}.json").read_text())) for s in ("train", "validation")}
        made = "one real clip" if args.single else "two real clips cut together"
        print(f"miniature: {counts['train']} train and {counts['validation']} validation (test) clips, each {made} "
              f"(at most {args.seconds:g} s each), made in {time.perf_counter() - start:.0f} s")  # fmt: skip
        extract = {"frames": args.frames, "image_size": args.size, "shard_size": 32}
        train = {"epochs": args.epochs, "batch_size": args.batch_size}
        tiny_project(work, work / "ssv2", dataset={"name": "sthv2"}, extract=extract, train=train)
        for stage in ("subset", "split", "extract", "train", "evaluate"):
            start = time.perf_counter()
            run_stage(stage, work)
            print(f"{stage}: {time.perf_counter() - start:.0f} s")
        metrics = json.loads((work / "reports/metrics.json").read_text())
        chosen = json.loads((work / "reports/train/metrics.json").read_text())
    print(f"head chosen: {chosen['head']} (by {chosen['chosen_by']})")
    for name, key in (("chosen head", "top1"), ("linear probe", "linear_probe_top1")):
        low, high = metrics[f"{key}_ci95_low"], metrics[f"{key}_ci95_high"]
        print(f"test top-1, {name}: {metrics[key]:.3f} [{low:.3f}, {high:.3f}] on {metrics['test_clips']} clips")
    print("chance: 0.500")


if __name__ == "__main__":
    run_main(main)
