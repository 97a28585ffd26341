"""`actrec trial`: the engine trial's figures for params.extract on this machine, timed again with --refresh.

The extract stage times the engines once and keeps the figures (features/trial_cache.py) until they are a month
old or an extraction finds them untrue. A machine can change in ways neither sees at once (other jobs now share
the cores, a runtime was upgraded in place): `--refresh` times every candidate again now, as the stage would,
on the backbone, image size, batch size, device and threads params.extract resolves to.
"""

from __future__ import annotations

import argparse
import time


def trial_command(args: argparse.Namespace) -> None:
    from actrec import runtime
    from actrec.errors import ActrecError
    from actrec.features import engine_trial, trial_cache
    from actrec.features.sources import build_source
    from actrec.params import load_params

    cfg = load_params(args.params).extract
    run = runtime.start_extraction(cfg)  # threads, device and batch size as the extract stage resolves them
    try:
        source = build_source(cfg.backbone, cfg.weights, cfg.image_size, cfg.motion, cfg.clip_len)
        backbone = source.image_backbone()  # a joined source's: its first part's, the one part a trial chooses for
    except ActrecError as err:  # skeletons, the motion stream alone, video models: no engine trial
        raise ActrecError(f"extract.backbone {cfg.backbone} runs no image backbone: nothing to time ({err})") from err
    if args.refresh:
        trials, _ = engine_trial.retime(backbone, run.device, run.batch_size, cfg.engine, cfg.precision, args.compile)
    else:
        trials, _ = engine_trial.kept(backbone, run.device, run.batch_size)
    print(
        f"engine trial: {backbone.name} @ {backbone.image_size} px, batch {run.batch_size}, {run.device.type}, "
        f"{trial_cache.machine()}"
    )
    if not trials:
        print("  nothing kept (none measured here yet, or over a month old): actrec trial --refresh times them")
        return
    picked = engine_trial.auto_pick(trials, cfg.engine, cfg.precision, run.device, args.frames)
    print("\n".join(trial_cache.table(trials, {args.frames: picked} if picked else {}, now=time.time())))
    print(f"kept in {trial_cache.cache_file()}")
