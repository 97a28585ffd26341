"""Benchmark of the motion stream: appearance alone, appearance + motion and motion alone, on real clips.

python -m benchmarks.bench_motion --work /tmp/motion-bench [--sets nine,reversed,single,speed] [--variants dis-12,...]
    [--trained dis-123] [--seeds 42] [--threads 1] [--shared ../shared/data] [--out benchmarks/results/motion.json]

Four sets of real UCF-101 clips (../shared/data), each run through the subset, split and extract stages as
DVC runs them (the shipped params.yaml but for the dataset: ImageNet EfficientNet-Lite0 features), then the
motion features of every variant at the very frames the appearance features were taken from:

- nine: the nine real classes of ucf101-mini and ucf101-six, official split 1 (test groups g01-g07);
- reversed: benchmarks/bench_reversed's time-reversed clips with --unseen-groups (8 frames at 112 px): two
  classes holding the same frames in two orders (each clip two actions cut together: the order of the actions);
- single: the same with one real clip each (bench_reversed --single): the arrow of time within one action;
- speed: each ucf101-mini clip's first 4 s (at most) played at its speed and at double speed (every other
  frame, the same frame rate), two classes whose uniformly sampled frames show the same moments; test on
  groups g01-g04, never seen in training.

Each combination of features is scored on the test clips by the linear probe (actrec/model/probe.py, fitted on
train + val, as the evaluate stage does) and, for the appearance and the `--trained` variants, by model.head's
default choice (what the train stage runs) and by the BiLSTM alone. Motion features and scores are kept in
--work, so a second run only adds what is missing. The variants (benchmarks/motion_candidates.py): HOF/MBH
histograms named method-grids[-pairs] (`farneback-123` is what `extract.motion: hofmbh` computes), `flow-lite0`
(flow images through ImageNet EfficientNet-Lite0) and `patch-fisher` (patch HOF/MBH Fisher-encoded per clip).
Extraction cost per stream: the extract stage's steady frames/s (appearance) and the decoding and the
descriptors of each motion variant (their flow, network or encoding included), per sampled frame, in one process.
With --out, the scores go to that results file and the costs to <name>-cost.json beside it (record(): every
figure also under `figures`); python -m tools.render_results puts them on the docs' pages.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shlex
import sys
import time
from dataclasses import asdict
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from actrec.data.decoding import read_frames, video_info
from actrec.errors import run_main
from actrec.evaluation.metrics import wilson_interval
from actrec.features.store import FeatureSet, load_features
from actrec.model.proba import predict_proba
from actrec.model.probe import linear_probe
from actrec.model.selection import choose_and_train
from actrec.params import Params, load_params
from benchmarks.bench_reversed import _sources as reversed_sources
from benchmarks.machine import describe_machine
from benchmarks.motion_candidates import VARIANTS
from benchmarks.results import Results
from tests.helpers import ROOT, ffmpeg, run_stage, sthv2_miniature

NINE_SOURCES = ("ucf101-mini", "ucf101-six")
SPEED_TEST_GROUPS = range(1, 5)


def _project(folder: Path, dataset: dict, extract: dict | None = None) -> Path:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["dataset"].update(dataset)
    params["extract"].update(extract or {})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return folder


def prepare_nine(work: Path, shared: Path) -> Path:
    """A UCF-101 root linking the class folders of both real sets, the official split lists beside them."""
    root = work / "root"
    if not root.is_dir():
        (root / "UCF-101").mkdir(parents=True)
        for source in NINE_SOURCES:
            for cls in sorted((shared / source / "UCF-101").iterdir()):
                (root / "UCF-101" / cls.name).symlink_to(cls.resolve())
        (root / "ucfTrainTestlist").symlink_to((shared / NINE_SOURCES[0] / "ucfTrainTestlist").resolve())
    return _project(work, {"name": "ucf101", "root": str(root)})


def prepare_reversed(work: Path, shared: Path, single: bool = False) -> Path:
    """bench_reversed's miniature with --unseen-groups (and --single), at its default size (8 frames at 112 px)."""
    if not (work / "ssv2" / "validation.json").is_file():
        clips, tested = reversed_sources(shared / "ucf101-mini", 3, single, True)
        sthv2_miniature(work / "ssv2", clips, 2.0, 112, tested)
    return _project(work, {"name": "sthv2", "root": str(work / "ssv2")}, {"frames": 8, "image_size": 112})


def prepare_single(work: Path, shared: Path) -> Path:
    """The same with one real clip each (bench_reversed --single): the arrow of time within one action."""
    return prepare_reversed(work, shared, single=True)


def prepare_speed(work: Path, shared: Path) -> Path:
    """Every ucf101-mini clip's first 4 s at its speed and at double speed, both re-encoded alike (MPEG-4 Part 2
    at 25 frames/s, 320x240), listed with their group and split in a CSV."""
    listed = work / "clips.csv"
    if not listed.is_file():
        rows = []
        for clip in sorted((shared / "ucf101-mini" / "UCF-101").glob("*/*.avi")):
            group = int(clip.stem.split("_g")[1][:2])
            for label, speed in (("normal", "1"), ("double", "0.5")):
                out = work / "videos" / label / clip.name
                out.parent.mkdir(parents=True, exist_ok=True)
                ffmpeg("-t", "4", "-i", clip, "-an", "-vf", f"setpts={speed}*PTS,fps=25", "-c:v", "mpeg4",
                       "-q:v", "3", out)  # fmt: skip
                split = "test" if group in SPEED_TEST_GROUPS else "train"
                rows.append({"path": str(out), "label": label, "group": f"{clip.stem}", "split": split})
        # a group is a source clip: both of its speeds fall on one side of every split
        pd.DataFrame(rows).to_csv(listed, index=False)
    return _project(work, {"name": "list", "root": str(work), "lists": str(listed)}, {})


PREPARE = {"nine": prepare_nine, "reversed": prepare_reversed, "single": prepare_single, "speed": prepare_speed}


def extract_appearance(project: Path) -> dict:
    """The subset, split and extract stages (each skipped when its output is there); the extract report."""
    for stage, output in (
        ("subset", "data/clips.csv"),
        ("split", "data/split.csv"),
        ("extract", "reports/extract.json"),
    ):
        if not (project / output).is_file():
            start = time.perf_counter()
            run_stage(stage, project)
            logging.info("%s: %s in %.0f s", project.name, stage, time.perf_counter() - start)
    return json.loads((project / "reports/extract.json").read_text())


def extract_motion(project: Path, variants: list[str]) -> dict[str, dict]:
    """Each variant's features (N, K, T, D) at the feature file's frames, cached as motion-<variant>.npy, and
    the seconds spent decoding and describing (per variant, its encoding included) in this run."""
    missing = [v for v in variants if not (project / f"motion-{v}.npy").is_file()]
    timing: dict[str, dict] = {}
    if missing:
        with_paths = pd.read_csv(project / "data/split.csv").set_index("clip_id")["path"]
        appearance = load_features(project / "features/features.h5")
        import h5py

        with h5py.File(project / "features/features.h5", "r") as f:
            indices = f["frame_indices"][:]
        describe = {v: VARIANTS[v]() for v in missing}
        out = {v: [] for v in missing}
        decode_s, flow_s = 0.0, dict.fromkeys(missing, 0.0)
        for clip_id, idx in zip(appearance.clip_ids, indices, strict=True):
            path = with_paths[clip_id]
            start = time.perf_counter()
            info = video_info(path)
            positions = {v: describe[v].window.positions(idx, info.frames, info.fps) for v in missing}
            wanted = np.unique(np.concatenate([p.ravel() for p in positions.values()]))
            frames = read_frames(path, wanted)
            decode_s += time.perf_counter() - start
            for v in missing:
                start = time.perf_counter()
                chosen = frames[np.searchsorted(wanted, positions[v])]  # (K, T, window, H, W, 3)
                out[v].append(np.stack([describe[v](view) for view in chosen]))
                flow_s[v] += time.perf_counter() - start
        trains = appearance.split != "test"  # what the probe fits on
        sampled = indices.size
        for v in missing:
            start = time.perf_counter()
            np.save(project / f"motion-{v}.npy", describe[v].encode(out[v], trains).astype(np.float16))
            flow_s[v] += time.perf_counter() - start
            timing[v] = {
                "sampled_frames": int(sampled),
                "decode_fps": round(sampled / decode_s, 1),
                "describe_fps": round(sampled / flow_s[v], 1),
            }
        record = project / "motion-timing.json"
        old = json.loads(record.read_text()) if record.is_file() else {}
        record.write_text(json.dumps({**old, **timing}, indent=1))
    return json.loads((project / "motion-timing.json").read_text())


def _with(data: FeatureSet, features: np.ndarray) -> FeatureSet:
    return dataclasses.replace(data, features=features)


def _score(correct: np.ndarray) -> dict:
    low, high = wilson_interval(int(correct.sum()), len(correct))
    return {"top1": round(float(correct.mean()), 3), "low": round(low, 3), "high": round(high, 3)}


def score(data: FeatureSet, params: Params, seeds: list[int], trained: bool) -> dict:
    """Test top-1 of the probe (fitted on train + val) and, with `trained`, of the default head choice and of
    the BiLSTM alone (mean over seeds, the Wilson interval of the first)."""
    train, val, test = data.part("train"), data.part("val"), data.part("test")
    fit = train.join(val)
    probs = linear_probe(fit.features, fit.labels, test.features, len(data.classes))
    result = {"probe": _score(probs.argmax(1) == test.labels)}
    if not trained:
        return result
    for name, model_params in (("default", params.model), ("lstm", dataclasses.replace(params.model, head="lstm"))):
        runs, heads = [], []
        for seed in seeds:
            model, choice, _ = choose_and_train(model_params, params.train, seed, train, val)
            runs.append(predict_proba(model, test.features).argmax(1) == test.labels)
            heads.append(choice.head)
        result[name] = {**_score(runs[0]), "top1": round(float(np.mean([r.mean() for r in runs])), 3)}
        if name == "default":
            result[name]["heads"] = heads
    return result


def _combination(features: str, appearance: np.ndarray, project: Path) -> np.ndarray:
    """The named features: appearance, a motion variant's, or both (`appearance + <variant>`) side by side."""
    if features == "appearance":
        return appearance
    motion = np.load(project / f"motion-{features.split(' + ')[-1]}.npy")
    return np.concatenate([appearance, motion], -1) if " + " in features else motion


def run_set(name: str, work: Path, shared: Path, variants: list[str], trained: list[str], seeds: list[int]) -> dict:
    project = PREPARE[name](work / name, shared)
    report = extract_appearance(project)
    timing = extract_motion(project, variants)
    data = load_features(project / "features/features.h5")
    params = load_params(project / "params.yaml")
    logging.getLogger("actrec.model").setLevel(logging.WARNING)
    appearance = data.features
    kept = project / "scores.json"  # scores already measured, by features, trained heads and seeds
    done = json.loads(kept.read_text()) if kept.is_file() else {}
    rows = {}
    for features, trained_too in (
        ("appearance", True),
        *((f, v in trained) for v in variants for f in (f"appearance + {v}", v)),
    ):
        key = f"{features} | {'trained' if trained_too else 'probe'} | {','.join(map(str, seeds))}"
        if key not in done:
            done[key] = score(_with(data, _combination(features, appearance, project)), params, seeds, trained_too)
            kept.write_text(json.dumps(done, indent=1))
            logging.info("%s: %s scored", name, features)
        rows[features] = done[key]
    counts = {part: int((data.split == part).sum()) for part in ("train", "val", "test")}
    cost = {
        "appearance_fps": report["frames_per_second"],
        "appearance_engine": report["engine"],
        "appearance_image_size": report["image_size"],
        "motion": timing,
    }
    return {"clips": counts, "classes": len(data.classes), "frames": int(appearance.shape[2]), "scores": rows,
            "cost": cost}  # fmt: skip


def _cell(scores: dict, key: str) -> str:
    """Top-1 [95% interval of the first seed] (and the heads the default choice kept), or — where not scored."""
    if key not in scores:
        return "—"
    s = scores[key]
    kept = f" ({', '.join(sorted(set(s['heads'])))})" if "heads" in s else ""
    return f"{s['top1']:.3f} [{s['low']:.3f}, {s['high']:.3f}]{kept}"


def record(results: dict, commands: list[str], machine: str, day: str) -> tuple[Results, Results]:
    """The scores and the costs as results files hold them (benchmarks/results.py): a table each, every figure
    also under `figures`."""
    ran = "; ".join(f"`{c}`" for c in commands)
    machine = f"{machine.removeprefix('machine: ')}, shared with other jobs (busy: costs are upper bounds)"
    sets = "; ".join(
        f"{name}: {r['classes']} classes, {r['clips']['train']} train / {r['clips']['val']} val / "
        f"{r['clips']['test']} test clips, {r['frames']} frames"
        for name, r in results.items()
    )
    rows, figures = [], {}
    for name, r in results.items():
        for features, s in r["scores"].items():
            rows.append([name, features, *(_cell(s, key) for key in ("probe", "default", "lstm"))])
            figures.update({f"{name}/{features}/{key}": s[key]["top1"] for key in s})
    scores = Results(
        machine, day, ran, ["set", "features", "linear probe", "default head choice (kept)", "BiLSTM alone"], rows,
        f"Test top-1 [95% interval of the first seed]. {sets}.", figures,
    )  # fmt: skip
    rows, figures = [], {}
    for name, r in results.items():
        cost, motion = r["cost"], r["cost"]["motion"]
        per = ", ".join(f"{v} {motion[v]['describe_fps']:.0f}" for v in VARIANTS if v in motion)
        appearance = f"{cost['appearance_fps']:.0f} ({cost['appearance_engine']}, {cost['appearance_image_size']} px)"
        rows.append([name, appearance, f"{min(t['decode_fps'] for t in motion.values()):.0f}", per])
        figures.update({f"{name}/appearance": cost["appearance_fps"]})
        figures.update({f"{name}/{v}/{k}": t[k] for v, t in motion.items() for k in ("decode_fps", "describe_fps")})
    columns = ["set", "appearance (Lite0, extract stage)", "motion: decoding its frame pairs",
               "motion: flow + descriptors per variant"]  # fmt: skip
    note = (
        "Sampled frames per second of wall-clock time (appearance: the extract stage with its decoding workers; "
        "motion: one process)."
    )
    return scores, Results(machine, day, ran, columns, rows, note, figures)


def write_records(out: Path, scores: Results, cost: Results) -> None:
    """`out` (the scores) and <stem>-cost.json beside it (the costs)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    for path, results in ((out, scores), (out.with_name(f"{out.stem}-cost.json"), cost)):
        path.write_text(json.dumps(asdict(results), indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {path} (python -m tools.render_results puts it on the docs' pages)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="projects, features and motion arrays, kept")
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--sets", default="nine,reversed,single,speed", help="of nine, reversed, single, speed")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"of {', '.join(VARIANTS)}")
    parser.add_argument("--trained", default="dis-123", help="variants also scored by trained heads")
    parser.add_argument("--seeds", default="42")
    parser.add_argument("--threads", type=int, default=1, help="torch threads training the heads (small models)")
    parser.add_argument("--out", type=Path, help="the results file of the scores (the costs: <stem>-cost.json)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    machine = describe_machine()
    print(machine)
    variants, trained = args.variants.split(","), args.trained.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    results = {}
    for name in args.sets.split(","):
        results[name] = run_set(name, args.work.resolve(), args.shared.resolve(), variants, trained, seeds)
        print(json.dumps({name: results[name]}, indent=1))
    command = "python -m benchmarks.bench_motion " + shlex.join(a for a in (argv or sys.argv[1:]))
    scores, cost = record(results, [command], machine, date.today().isoformat())
    print(scores.markdown("motion"), cost.markdown("motion-cost"), sep="\n")
    if args.out:
        write_records(args.out, scores, cost)


if __name__ == "__main__":
    run_main(main)
