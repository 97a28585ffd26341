"""Benchmark of feature extraction: the pipeline against the backbone alone and a naive loop.

python -m benchmarks.bench_extract --root ../shared/data/ucf101-mini [--backbone resnet50] [--limit 30]

--backbone takes every name extract.backbone does (resnet18, inception_v3, timm:vit_tiny_patch16_224,
open_clip:ViT-B-32, efficientnet_lite0, ...); --image-size auto is the model's own.

Prints, on the same clips: (1) backbone-only frames/s on random tensors with the pipeline's model,
batch, precision and engine (onnxruntime, torch.compile or eager torch): the bound; (2) pipeline
frames/s: decode + preprocess + forward + write, through the extract stage's own code (fill_cache),
at the rate it keeps after the first clip, with the one-off start-up (model loading, export or
compilation, first decode) shown apart; (3) a naive reference: each clip decoded, frames
transformed one by one with PIL, fp32 eager forward per clip, written one by one; (4) the ratios
and each phase's peak memory (RSS, DataLoader workers included). Beside them, the DataLoader alone
(decode, sample, resize; no model) shows how many frames/s its workers can feed: where that is
below the bound, more --workers would help. (5) Decoding by path and worker count: the DataLoader
alone for each decoding path (auto, PyAV straight through, decord seeking, torchcodec where usable)
with 1, 2, 4 … workers up to the cores, each worker's share of a core and frames per CPU-second, and the
main process's CPU time per 1,000 frames it receives; which path `auto` takes for the sampled clips.
--compare first times every engine × precision that can run here, marks the one `auto` takes for 3,000 and
for 200,000 frames and prints its rate against the best measured (kept as figures in --results' file).
--limit 0 takes every clip under the root (distinct files); --repeat R goes over the sample R times, each
copy counted as a new video, for runs long enough to time a GPU. With --rss-clips N the pipeline
also runs at 64 px on N/4 and on N clips (the sample repeated, each copy counted as a new video) to
show that its peak memory does not grow with the number of clips.
Each phase runs in a fresh process (a new interpreter where it reports its peak memory, so that one phase's
memory does not hide another's; otherwise a fork of a server that imported torch once), which can use CUDA;
its DataLoader workers fork as they do in the extract stage.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import tempfile
import time
from pathlib import Path
from queue import Empty

import h5py
import numpy as np
import pandas as pd
import torch
from PIL import Image
from torchvision import transforms

from actrec.data.clips import fingerprint
from actrec.data.datasets import scan
from actrec.data.decoding import DECODERS, decoding_path, read_clip
from actrec.data.seeking import torchcodec_usable
from actrec.devices import usable_cores
from actrec.features.backbones import Backbone, load_backbone
from actrec.features.engine_trial import Trial, candidates, choose, time_candidate
from actrec.features.engines import ENGINES, RUNTIMES, BackboneRunner
from actrec.features.extractor import clip_loader, fill_cache
from actrec.features.sources.image import ClipDataset, ImageSource
from actrec.features.store import ExtractionSettings, FeatureCache
from actrec.features.trial_cache import table
from actrec.params import DatasetParams, ExtractParams
from actrec.runtime import Runtime
from benchmarks.machine import describe_machine
from benchmarks.results import figure, parse_args


def _peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def _clip_table(root: Path, limit: int, total: int = 0) -> pd.DataFrame:
    """A seeded sample of `limit` clips, repeated up to `total` rows, each copy keyed as a new video."""
    name = "ucf101" if (root / "UCF-101").is_dir() else "folder"
    table = scan(DatasetParams(name=name, root=str(root)))
    table = table.sample(n=min(limit or len(table), len(table)), random_state=0).reset_index(drop=True)
    table["fingerprint"] = [fingerprint(p) for p in table["path"]]
    if total > len(table):
        table = table.iloc[np.arange(total) % len(table)].reset_index(drop=True)
        table["fingerprint"] += [f"-{i}" for i in range(total)]
    return table


def _table(args: argparse.Namespace) -> pd.DataFrame:
    return _clip_table(args.root, args.limit, getattr(args, "total", 0) or args.limit * args.repeat)


def _settings(args: argparse.Namespace) -> tuple[ExtractionSettings, Backbone, torch.device, int, str]:
    """The run's settings and backbone; engine and precision are explicit here (main resolves `auto` first, once)."""
    runtime = Runtime.resolve(args.device, batch_size=args.batch_size)
    backbone = load_backbone(args.backbone, args.weights, args.image_size)
    identity = ImageSource(backbone).identity()
    settings = ExtractionSettings.from_params(_params(args), args.engine, args.precision, 0, identity)
    torch.set_num_threads(args.threads or torch.get_num_threads())
    return settings, backbone, runtime.device, runtime.batch_size, args.engine


def _params(args: argparse.Namespace, **given: object) -> ExtractParams:
    """params.extract as the arguments give it, validated by the params schema as it is built."""
    return ExtractParams(
        backbone=args.backbone, weights=args.weights, frames=args.frames, image_size=args.image_size, **given
    )


def decide(args: argparse.Namespace) -> dict:
    """What extract.engine/precision `auto` (or the given values) take for this many frames: the engine trial."""
    runtime = Runtime.resolve(args.device, batch_size=args.batch_size)
    torch.set_num_threads(args.threads or torch.get_num_threads())
    frames = getattr(args, "trial_frames", 0) or args.limit * args.repeat * args.frames
    choice = choose(
        load_backbone(args.backbone, args.weights, args.image_size),
        runtime.device,
        runtime.batch_size,
        args.engine,
        args.precision,
        lambda engine, precision: frames,
    )
    return choice.record()


def compare(args: argparse.Namespace) -> dict:
    """One candidate's set-up and steady frames/s, as the engine trial times it (for --compare)."""
    settings, backbone, device, batch, engine = _settings(args)
    trial, _ = time_candidate(backbone, device, engine, settings.precision, batch, seconds=args.seconds)
    return {"setup_s": trial.setup_s, "fps": trial.fps, "error": trial.error}


def bound(args: argparse.Namespace) -> dict:
    """Backbone-only frames/s: the same model, batch and precision on random tensors."""
    settings, backbone, device, batch, engine = _settings(args)
    run = BackboneRunner(backbone, device, settings.precision, batch, engine)
    size = backbone.image_size
    x = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, device=device)
    frames = args.limit * args.repeat * args.frames
    with torch.inference_mode():
        run(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(max(1, frames // batch)):
            run(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
    return {
        "fps": max(1, frames // batch) * batch / elapsed,
        "rss_mb": _peak_rss_mb(),
        "precision": settings.precision,
        "batch": batch,
        "device": device.type,
        "dim": backbone.feature_dim,
        "image_size": backbone.image_size,
        "engine": run.engine,
        "threads": torch.get_num_threads(),
    }


def pipeline(args: argparse.Namespace) -> dict:
    """The extract stage's own path: DataLoader decode-ahead, batched forward, shard writes."""
    settings, backbone, device, batch, engine = _settings(args)
    cfg = _params(args, batch_size=batch, num_workers=args.workers, engine=engine, resize_on=args.resize_on)
    runtime = Runtime.resolve(
        device,
        precision=settings.precision,
        engine=engine,
        batch_size=batch,
        num_workers=cfg.num_workers,
        resize_on=cfg.resize_on,
    )
    table = _table(args)
    with tempfile.TemporaryDirectory() as tmp:
        run = fill_cache(FeatureCache(tmp, settings), table, ImageSource(backbone), runtime, shard_size=cfg.shard_size)
    return {
        "fps": run.steady_fps,
        "fps_all": run.frames / run.seconds,
        "startup_s": run.startup_seconds,
        "rss_mb": _peak_rss_mb(),
        "clips": run.extracted,
        "engine": run.engine,
        "forward_fps": run.forward.fps,
    }


class _TimedClips(ClipDataset):
    """The pipeline's dataset, each item's wall time and its worker's CPU time (decoder threads included) measured and
    handed over beside the batch."""

    def __getitem__(self, i: int) -> tuple:
        wall, cpu = time.perf_counter(), time.process_time()
        item = super().__getitem__(i)
        return item, time.perf_counter() - wall, time.process_time() - cpu

    def collate(self, items: list[tuple]) -> tuple:
        return super().collate([item for item, _, _ in items]), sum(w for _, w, _ in items), sum(c for _, _, c in items)


def decoding(args: argparse.Namespace) -> dict:
    """The DataLoader alone (decode, sample, resize as the pipeline would), no model: frames/s delivered (timed
    from the start, workers' start-up included), what a worker decodes per second of its own wall time while
    the others run, the share of that time it had a core, and the main process's CPU time per 1,000 frames."""
    settings, backbone, device, batch, engine = _settings(args)
    table = _table(args)
    runtime = Runtime.resolve(device, num_workers=args.workers, resize_on=args.resize_on)
    workers = runtime.num_workers
    dataset = _TimedClips(
        table["path"].tolist(),
        table["fingerprint"].tolist(),
        backbone,
        settings.frames,
        1,
        0,
        resize=runtime.resize_on == "workers",
        channels_last=engine not in RUNTIMES,
        decoder=getattr(args, "decoder", "auto"),
    )
    # Timed from the start, workers' start-up included: with several workers the first batches arrive
    # together, so a rate counted after the first one would credit them with work done before it.
    frames, wall, cpu = 0, 0.0, 0.0
    start, main = time.perf_counter(), _cpu_seconds()
    for decoded, batch_wall, batch_cpu in clip_loader(dataset, batch, workers, device):
        frames += sum(n for n, _, _ in decoded.shapes)
        wall, cpu = wall + batch_wall, cpu + batch_cpu
    elapsed, main = time.perf_counter() - start, _cpu_seconds() - main
    return {
        "fps": frames / elapsed,
        "workers": workers,
        "worker_fps": frames / max(wall, 1e-9),
        "on_core": cpu / max(wall, 1e-9),
        "main_ms": 1e6 * main / max(frames, 1),
    }


def _cpu_seconds() -> float:
    """CPU time of this process (user + system), all its threads: the DataLoader's pinning thread included."""
    times = resource.getrusage(resource.RUSAGE_SELF)
    return times.ru_utime + times.ru_stime


def paths_taken(args: argparse.Namespace) -> dict:
    """How many of the sampled clips each decoding path `auto` takes."""
    table = _clip_table(args.root, args.limit)
    return pd.Series([decoding_path(p, args.frames) for p in table["path"]]).value_counts().to_dict()


def _worker_counts(text: str) -> list[int]:
    """1, 2, 4 … up to the cores (the cores themselves last), or the given comma-separated counts."""
    if text != "auto":
        return [int(n) for n in text.split(",")]
    cores = usable_cores()
    return sorted({*(2**i for i in range(cores.bit_length()) if 2**i <= cores), cores})


def decoding_table(args: argparse.Namespace) -> None:
    """(5): the DataLoader alone per decoding path and worker count, each in its own process."""
    taken = run_isolated(paths_taken, args)
    print(f"5. decoding paths      : auto takes {', '.join(f'{k} for {v}' for k, v in taken.items())} of the clips")
    decoders = [d for d in args.decoders.split(",") if d != "torchcodec" or torchcodec_usable()]
    print(
        "   frames/s by workers (decoding, sampling, resizing as the pipeline does), and per worker: frames per "
        "second of its own time, that rate against one worker alone, the share of its time it had a core, frames "
        "per CPU-second (what decides on a CPU, where the model takes every core decoding leaves); main: the main "
        "process's CPU ms per 1,000 frames received"
    )
    for decoder in decoders:
        alone = None
        cells = []
        for n in _worker_counts(args.worker_counts):
            d = run_isolated(decoding, argparse.Namespace(**{**vars(args), "decoder": decoder, "workers": n}))
            if not d["fps"]:  # a seeking decoder cannot place an AVI's frames: every clip refused
                cells.append("no clip decoded (it cannot tell where these clips' frames are shown)")
                break
            alone = alone or d["worker_fps"]
            cells.append(
                f"{n:2d} workers {d['fps']:7.0f} frames/s; a worker {d['worker_fps']:5.0f} frames/s "
                f"({d['worker_fps'] / alone:4.2f} of one alone, on a core {d['on_core']:4.0%}, "
                f"{d['worker_fps'] / max(d['on_core'], 1e-9):5.0f} per CPU-second); main {d['main_ms']:4.0f} ms"
            )
        print(f"   {decoder:10s} " + "\n              ".join(cells))


def naive(args: argparse.Namespace) -> dict:
    """The notebook way: per clip, PIL transforms frame by frame, fp32 forward, one write per clip."""
    settings, backbone, device, _, _ = _settings(args)
    model = backbone.model.to(device)
    transform = transforms.Compose(
        [
            transforms.Resize(backbone.resize_size, transforms.InterpolationMode(backbone.preprocessing.interpolation)),
            transforms.CenterCrop(backbone.image_size),
            transforms.ToTensor(),
            transforms.Normalize(backbone.mean, backbone.std),
        ]
    )
    table = _clip_table(args.root, args.limit)
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


# What the fork server imports before the phases that report no memory: the modules that take seconds
PRELOAD = ["torch", "torchvision", "pandas", "h5py", "av", "actrec.features.extractor", "actrec.features.engine_trial"]


def _child(fn, args, queue) -> None:
    mp.set_start_method(None, force=True)  # the platform's default again, for the phase's DataLoader workers
    queue.put(fn(args))


def run_isolated(fn, args: argparse.Namespace, memory: bool = False) -> dict:
    """Run one phase in a fresh process and return its result.

    A phase that reports its peak RSS (`memory`) starts a new interpreter, so that the figure counts every module
    it imports, as the extract stage's does. The others fork from a server that imported the heavy modules once
    (torch, torchvision, the decoders): they start in a fraction of a second, not in seconds. Neither is forked
    from this process, which has asked CUDA for the machine line (a forked child could not use CUDA again); each
    phase's DataLoader workers still fork, as in the extract stage. A phase that dies ends the benchmark
    instead of leaving it waiting.
    """
    ctx = mp.get_context("spawn" if memory else "forkserver")
    if not memory:  # importing initialises no CUDA and starts no thread: the server's forks stay clean
        ctx.set_forkserver_preload(PRELOAD)
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(fn, args, queue))
    proc.start()
    while True:
        try:
            result = queue.get(timeout=1.0)
            break
        except Empty:
            if not proc.is_alive():
                raise SystemExit(f"{fn.__name__} failed (exit code {proc.exitcode}): see the traceback above") from None
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, required=True, help="dataset root (UCF-101 layout or class folders)")
    parser.add_argument("--limit", type=int, default=30, help="number of clips (seeded sample; 0: every clip)")
    parser.add_argument("--backbone", default="resnet50", help="any extract.backbone name (default: resnet50)")
    parser.add_argument("--weights", default=None, help="as extract.weights, or none; speed does not depend on it")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument(
        "--image-size", type=lambda v: v if v == "auto" else int(v), default="auto", help="auto: the model's own"
    )
    parser.add_argument("--batch-size", default="auto", help="images per forward pass (auto: 16 on CPU, 512 on GPU)")
    parser.add_argument(
        "--workers",
        type=lambda v: v if v == "auto" else int(v),
        default="auto",
        help="DataLoader decoding processes (auto: as extract.num_workers: auto)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="go over the sample this many times, each copy counted as a new video (long GPU runs)",
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"))
    parser.add_argument(
        "--engine",
        default="auto",
        choices=("auto", *ENGINES),
        help="what runs the backbone (auto: what extract.engine: auto picks for this many frames)",
    )
    parser.add_argument(
        "--compare",
        action="store_true",
        help="also time every engine and precision that can run here (set-up, steady frames/s), mark the one "
        "`auto` takes for 3,000 and for 200,000 frames and give its rate against the best measured",
    )
    parser.add_argument("--compare-only", action="store_true", help="only --compare's table: no pipeline")
    parser.add_argument("--seconds", type=float, default=3.0, help="--compare: timed seconds per candidate")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument(
        "--resize-on", default="auto", choices=("auto", "workers", "device"), help="as extract.resize_on"
    )
    parser.add_argument(
        "--decoders",
        default=",".join(DECODERS),
        help="decoding paths timed in (5), comma-separated (default: %(default)s; torchcodec where usable)",
    )
    parser.add_argument(
        "--worker-counts", default="auto", help="worker counts timed in (5): 1,2,4,... (default: 1, 2, 4 … the cores)"
    )
    parser.add_argument("--skip-naive", action="store_true", help="leave out the naive reference")
    parser.add_argument("--skip-decoding-table", action="store_true", help="leave out (5)")
    parser.add_argument("--decoding-table-only", action="store_true", help="only (5): no model, no pipeline")
    parser.add_argument(
        "--rss-clips",
        type=int,
        default=0,
        help="also run the pipeline at 64 px on N/4 and N clips and compare peak memory",
    )
    args = parse_args(parser)
    args.weights = None if str(args.weights).lower() in ("none", "null") else args.weights
    _params(args)  # a name no family knows is one line, before any work

    print(describe_machine())
    if args.decoding_table_only:
        args.engine = args.engine if args.engine != "auto" else "eager"  # no model runs: the layout it takes
        decoding_table(args)
        return
    if args.compare or args.compare_only:
        _compare_all(args)
        if args.compare_only:
            return
    choice = run_isolated(decide, args)
    args.engine, args.precision = choice["engine"], choice["precision"]
    print(f"engine {args.engine}, precision {args.precision} ({choice['chosen_by']})")
    b = run_isolated(bound, args, memory=True)
    print(
        f"backbone {args.backbone} @ {b['image_size']} px (D {b['dim']}), {b['device']}, {b['precision']}, "
        f"batch {b['batch']} images, engine {b['engine']}"
    )
    print(f"1. backbone-only bound : {b['fps']:8.1f} frames/s   peak RSS {b['rss_mb']:7.0f} MB")
    d = run_isolated(decoding, args)
    workers = f"{d['workers']} decoding worker{'s' if d['workers'] != 1 else ''}"
    p = run_isolated(pipeline, args, memory=True)
    print(
        f"2. pipeline            : {p['fps']:8.1f} frames/s   peak RSS {p['rss_mb']:7.0f} MB"
        f"   ({p['clips']} clips x {args.frames} frames, {workers}, engine {p['engine']})"
    )
    print(
        f"   start-up            : {p['startup_s']:8.1f} s to the first clip (loading, {p['engine']} set-up, first "
        f"decode); {p['fps_all']:.1f} frames/s with it"
    )
    print(
        f"   backbone in the run : {p['forward_fps']:8.1f} frames/s   ({p['forward_fps'] / b['fps']:.2f} of the bound: "
        "its forward passes beside the decoding workers, as engine_trial.confirm holds them to the trial)"
    )
    if args.rss_clips:
        small = {"image_size": 64}
        few, many = (
            run_isolated(pipeline, argparse.Namespace(**{**vars(args), **small, "total": n}), memory=True)
            for n in (args.rss_clips // 4, args.rss_clips)
        )
        held = (many["clips"] - few["clips"]) * args.frames * b["dim"] * 2 / 2**20
        print(
            f"   peak RSS by clips   : {few['clips']} clips {few['rss_mb']:.0f} MB, {many['clips']} clips "
            f"{many['rss_mb']:.0f} MB at 64 px ({many['rss_mb'] - few['rss_mb']:+.0f} MB; holding the "
            f"features of the extra clips would take {held:.0f} MB)"
        )
    verdict = "keeps up with the bound" if d["fps"] >= b["fps"] else "below the bound: more workers would help"
    per_worker = f" ({d['fps'] / d['workers']:.0f} frames/s a worker)" if d["workers"] else " (in this process)"
    print(
        f"   decoding alone      : {d['fps']:8.1f} frames/s   {workers}{per_worker}; the DataLoader without the "
        f"model {verdict}"
    )
    # Model and decoding share the cores. Decoding's cost is measured with every core decoding (one worker per
    # core): one worker's rate times the cores would assume it scales perfectly, and it does not (the main
    # process receives every frame, the workers share memory bandwidth). A frame then costs 1/bound seconds
    # of all cores for the model and 1/(all-cores decoding rate) for decoding.
    cores = b["threads"]
    full = (
        d if d["workers"] == cores else run_isolated(decoding, argparse.Namespace(**{**vars(args), "workers": cores}))
    )
    # On a GPU the model does not take the cores' time: the slower of the two bounds the pipeline.
    on_gpu = b["device"] == "cuda"
    combined = min(b["fps"], full["fps"]) if on_gpu else 1 / (1 / b["fps"] + 1 / full["fps"])
    print(f"   decoding, {cores} workers : {full['fps']:8.1f} frames/s   (every core decoding)")
    shared = "the slower of the GPU's model and the cores' decoding" if on_gpu else f"both on the same {cores} cores"
    print(f"   combined bound      : {combined:8.1f} frames/s   ({shared})")
    if not args.skip_naive:
        n = run_isolated(naive, args, memory=True)
        print(f"3. naive reference     : {n['fps']:8.1f} frames/s   peak RSS {n['rss_mb']:7.0f} MB")
    print(f"4. pipeline / bound    : {p['fps'] / b['fps']:8.2f}")
    print(f"   pipeline / combined : {p['fps'] / combined:8.2f}")
    if not args.skip_naive:
        print(f"   pipeline / naive    : {p['fps'] / n['fps']:8.2f}")
    if not args.skip_decoding_table:
        decoding_table(args)


def _compare_all(args: argparse.Namespace) -> None:
    """Every engine x precision that can run here, each timed in its own process; the ones `auto` takes for 3,000
    and for 200,000 frames marked, with their rate against the best measured (also kept as figures)."""
    device = Runtime.resolve(args.device).device
    print(
        f"engine x precision ({args.backbone} @ {args.image_size}, batch {args.batch_size}): set-up and steady "
        f"frames/s, each timed for {args.seconds:g} s in its own process"
    )
    trials = []
    for engine, precision in candidates(args.engine, args.precision, device):
        r = run_isolated(compare, argparse.Namespace(**{**vars(args), "engine": engine, "precision": precision}))
        trials.append(Trial(engine, precision, r["setup_s"], r["fps"], r["error"]))
    picks, how = {}, {}
    for n in (3_000, 200_000):
        picked = run_isolated(decide, argparse.Namespace(**{**vars(args), "trial_frames": n}))
        picks[n], how[n] = (picked["engine"], picked["precision"]), picked["chosen_by"]
    print("\n".join(table(trials, picks)))
    ran = {(t.engine, t.precision): t for t in trials if not t.error and t.fps > 0}
    for n, pair in picks.items():
        soonest = min(ran, key=lambda p: ran[p].seconds_for(n))
        mine = ran[pair].seconds_for(n) if pair in ran else float("nan")
        print(
            f"  {n:,} frames ({how[n]}): auto's pick done in {mine:.0f} s; the soonest measured here, "
            f"{soonest[0]}/{soonest[1]}, in {ran[soonest].seconds_for(n):.0f} s (set-up counted)"
        )
        if pair in ran:
            figure(f"auto_rate_to_best_{n}", round(ran[pair].fps / max(t.fps for t in ran.values()), 3))


if __name__ == "__main__":
    main()
