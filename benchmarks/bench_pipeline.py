"""Benchmark of whole pipeline runs: test top-1 of the default head per variant of the params, over seeds.

python -m benchmarks.bench_pipeline --root ROOT [--root ROOT2 ...] --work DIR [--seeds 42,1,2]
    [--variant NAME:KEY=VALUE,KEY=VALUE ...] [--set KEY=VALUE ...]

Runs the stages as dvc repro does (subset, split, finetune, extract, train, evaluate: each a fresh
process) in one project per variant and seed under --work, on a ucf101 dataset made of the class
folders of every --root (links in --work/data; the split lists come from the first root), official
split 1, the shipped params otherwise. `--set` overrides a param (dotted key = YAML value) in every
project; each `--variant NAME:KEY=VALUE,...` is one set of overrides on top (YAML values without
commas). The default variants are `frozen` (finetune.enabled=false) and `finetuned` (true). Every
project shares one feature cache, so features of the same settings are extracted once.

Prints, per run, test top-1, the head the train stage chose, the seconds each stage took, and what
fine-tuning did where it ran; then per variant the mean and range over seeds, and its difference
from the first variant. Stopped and run again with the same arguments, it reuses the finished runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from benchmarks.machine import describe_machine
from benchmarks.results import parse_args

REPO = Path(__file__).resolve().parents[1]
STAGES = ("subset", "split", "finetune", "extract", "train", "evaluate")
DEFAULT_VARIANTS = ["frozen:finetune.enabled=false", "finetuned:finetune.enabled=true"]


def dataset_root(roots: list[Path], folder: Path) -> Path:
    """A ucf101 root linking the class folders of every root, with the first root's split lists."""
    (folder / "UCF-101").mkdir(parents=True, exist_ok=True)
    for root in roots:
        for cls in sorted((root / "UCF-101").iterdir()):
            link = folder / "UCF-101" / cls.name
            if not link.exists():
                link.symlink_to(cls.resolve())
    lists = folder / "ucfTrainTestlist"
    if not lists.exists():
        lists.symlink_to((roots[0] / "ucfTrainTestlist").resolve())
    return folder


def overrides(pairs: list[str]) -> dict:
    """["extract.frames=8", ...] → {"extract.frames": 8, ...}, each value read as YAML."""
    return {k: yaml.safe_load(v) for k, v in (p.split("=", 1) for p in pairs)}


def variant(spec: str) -> tuple[str, dict]:
    """`NAME:KEY=VALUE,KEY=VALUE` → (NAME, its overrides)."""
    name, _, pairs = spec.partition(":")
    return name, overrides([p for p in pairs.split(",") if p])


def write_params(project: Path, changes: dict) -> None:
    """The shipped params.yaml with `changes` ({"extract.frames": 8, ...}) on top."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for key, value in changes.items():
        section, name = key.split(".", 1) if "." in key else (None, key)
        (params[section] if section else params)[name] = value
    project.mkdir(parents=True, exist_ok=True)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def run_stages(project: Path) -> dict[str, float]:
    """Run every stage in `project` as DVC does; the seconds each took. A project whose run finished with these
    params is not run again (the benchmark resumes where it was stopped): its seconds are read back."""
    done = project / "bench.json"
    if done.is_file() and json.loads(done.read_text())["params"] == (project / "params.yaml").read_text():
        return json.loads(done.read_text())["seconds"]
    commands = {n: s["cmd"] for n, s in yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"].items()}
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    seconds = {}
    for stage in STAGES:
        words = shlex.split(commands[stage])
        start = time.perf_counter()
        ran = subprocess.run([sys.executable, *words[1:]], cwd=project, env=env, capture_output=True, text=True)
        seconds[stage] = time.perf_counter() - start
        if ran.returncode != 0:
            raise SystemExit(f"{stage} failed in {project}:\n{ran.stderr[-3000:]}")
    record = {"params": (project / "params.yaml").read_text(), "seconds": seconds}
    (project / "bench.json").write_text(json.dumps(record))
    return seconds


def describe_run(project: Path, seconds: dict[str, float]) -> tuple[float, str]:
    """A finished run's test top-1, and its line: the head chosen, each stage's seconds, what fine-tuning did."""
    top1 = json.loads((project / "reports/metrics.json").read_text())["top1"]
    head = json.loads((project / "reports/train/metrics.json").read_text())["head"]
    line = f"test top-1 {top1:.3f} (head {head})  seconds: " + ", ".join(f"{s} {t:.0f}" for s, t in seconds.items())
    tuned = json.loads((project / "reports/finetune.json").read_text())
    if tuned["enabled"]:
        kept = "the fine-tuned blocks kept" if tuned["fine_tuned"] else "the head alone validated best: pretrained kept"
        line += (
            f"  | fine-tuning: best val {tuned['best_val_accuracy']:.3f} at epoch {tuned['best_epoch']} of "
            f"{tuned['epochs_run']}, {tuned['train_clips']} train clips, prepare {tuned['prepare_seconds']} s, "
            f"train {tuned['train_seconds']} s; {kept}"
        )
    return top1, line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, action="append", required=True, help="a UCF-101-layout dataset root")
    parser.add_argument("--work", type=Path, required=True, help="folder for the projects and their shared cache")
    parser.add_argument("--seeds", default="42,1,2", help="comma-separated seeds")
    parser.add_argument("--set", action="append", default=[], help="KEY=VALUE, a param for every project")
    parser.add_argument("--variant", action="append", help="NAME:KEY=VALUE,KEY=VALUE (default: frozen and finetuned)")
    args = parse_args(parser)
    print(describe_machine())
    print(f"date: {time.strftime('%Y-%m-%d')}; command: {shlex.join(sys.argv)}", flush=True)
    work = args.work.resolve()
    root = dataset_root(args.root, work / "data")
    common = {
        "dataset.name": "ucf101",
        "dataset.root": str(root),
        "extract.cache_dir": str(work / "cache"),
        **overrides(args.set),
    }
    variants = dict(variant(v) for v in args.variant or DEFAULT_VARIANTS)
    scores: dict[str, list[float]] = {name: [] for name in variants}
    totals: dict[str, list[float]] = {name: [] for name in variants}
    for seed in (int(s) for s in args.seeds.split(",")):
        for name, changes in variants.items():
            project = work / f"{name}-{seed}"
            write_params(project, {**common, **changes, "seed": seed})
            seconds = run_stages(project)
            top1, line = describe_run(project, seconds)
            scores[name].append(top1)
            totals[name].append(sum(seconds.values()))
            print(f"seed {seed:>3} {name:<10} {line}", flush=True)
    first = next(iter(variants))
    for name, top1 in scores.items():
        versus = "" if name == first else f"; {100 * (np.mean(top1) - np.mean(scores[first])):+.1f} points on {first}"
        print(
            f"{name:<10}: test top-1 mean {np.mean(top1):.3f} (range {min(top1):.3f}-{max(top1):.3f}) over "
            f"{len(top1)} seeds{versus}; mean seconds per run, all stages: {np.mean(totals[name]):.0f}"
        )


if __name__ == "__main__":
    main()
