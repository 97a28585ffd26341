"""`actrec predict`: one video's top classes, many videos batched, or windows along one long video."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from actrec.data.clips import VideoError
from actrec.data.decoding import video_info
from actrec.data.ntu_skeleton import SKELETON_SUFFIX, skeleton_info
from actrec.errors import ActrecError
from actrec.files import output_file
from actrec.inference.inputs import find_videos

if TYPE_CHECKING:
    from actrec.inference.predictor import Predictor, VideoPrediction

logger = logging.getLogger("actrec")


def shown(path: str | Path) -> str:
    """A path as one line of output: a newline or other control character in a file name is written escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(path))


def _row(result: VideoPrediction, predictor: Predictor, k: int) -> dict:
    row: dict = {"video": str(result.path)}
    if result.probs is not None:
        for rank, (name, prob) in enumerate(predictor.top_k(result.probs, k), start=1):
            row[f"top{rank}"], row[f"top{rank}_probability"] = name, round(prob, 4)
    return {**row, "error": result.error}


def _print_top_k(result: VideoPrediction, predictor: Predictor, k: int) -> None:
    (best, prob), *rest = predictor.top_k(result.probs, k)
    print(f"Prediction: {best} ({prob:.1%})")
    for rank, (name, p) in enumerate(rest, start=2):
        print(f"  {rank}. {name} ({p:.1%})")


def _predict_many(predictor: Predictor, videos: list[Path], args: argparse.Namespace) -> None:
    import pandas as pd
    from tqdm import tqdm

    from actrec.progress import progress

    single = len(videos) == 1  # one clip: decoding in this process saves starting a worker
    results = predictor.predict(videos, num_workers=0 if single else predictor.runtime.num_workers)
    rows, failed = [], 0
    for result in progress(results, total=len(videos), desc="predict", unit="video", disable=single or None):
        if result.error:
            if single:
                raise VideoError(f"{shown(result.path)}: {result.error}")
            failed += 1
            logger.warning("skipping %s: %s", shown(result.path), result.error)
        if args.json:
            print(json.dumps(predictor.as_dict(result, args.top_k)), flush=True)
        elif args.out:
            rows.append(_row(result, predictor, args.top_k))
        elif single:
            _print_top_k(result, predictor, args.top_k)
        elif not result.error:
            best, prob = predictor.top_k(result.probs, 1)[0]
            tqdm.write(f"{shown(result.path)}: {best} ({prob:.1%})")
    if args.out:
        with output_file(args.out) as tmp:
            pd.DataFrame(rows).to_csv(tmp, index=False)
        print(f"wrote {shown(args.out)}: {len(videos) - failed} videos predicted, {failed} could not be read")
    if failed == len(videos):
        raise ActrecError(f"none of the {len(videos)} videos could be read")


def _predict_windows(predictor: Predictor, path: Path, args: argparse.Namespace) -> None:
    from actrec.evaluation.plots import probability_timeline, save_figure
    from actrec.inference.render import render, segment_lines

    try:
        windows = predictor.windows(path, args.window, args.stride or args.window, frame_rate=args.frame_rate)
    except VideoError as err:  # opened fine, but frames further in fail to decode
        raise VideoError(f"{shown(path)}: {err}") from err
    out = Path(args.out) if args.out else path.with_name(f"{path.stem}_windows.csv")  # beside the video
    with output_file(out) as tmp:
        windows.to_csv(tmp, index=False)
    figure = out.with_suffix(".png")
    title = f"{shown(path.name)}: class probabilities per window"
    save_figure(probability_timeline(windows, predictor.classes, title), figure)
    shown_figure = shown(figure)
    if args.render:
        shown_figure = f"{shown_figure} and {shown(args.render)} ({render(path, windows, args.render)} frames drawn on)"
    if args.json:
        print(windows.to_json(orient="records"))
        return
    print("\n".join(segment_lines(windows)))
    print(f"wrote {shown(out)} ({len(windows)} windows), {shown_figure}")


def predict_command(args: argparse.Namespace) -> None:
    videos = find_videos(args.inputs)
    if args.stride and not args.window:
        raise ActrecError("--stride needs --window")
    if args.render and not args.window:
        raise ActrecError("--render needs --window: the class drawn on each frame is its window's")
    if args.window and len(videos) > 1:
        raise ActrecError(f"--window takes one video; {len(videos)} were given")
    if len(videos) == 1:  # a lone unreadable video fails before the model loads (seconds)
        try:
            (skeleton_info if videos[0].name.endswith(SKELETON_SUFFIX) else video_info)(videos[0])
        except VideoError as err:
            raise VideoError(f"{shown(videos[0])}: {err}") from err
    from actrec.inference.predictor import Predictor

    predictor = Predictor(args.model, args.device)
    if args.window:
        _predict_windows(predictor, videos[0], args)
    else:
        _predict_many(predictor, videos, args)
