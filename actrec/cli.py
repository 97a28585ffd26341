"""The `actrec` command: predictions on new videos and model export, from a trained run.

actrec predict VIDEO [--top-k 5] [--json]           one video: the top-k classes
actrec predict DIR_OR_GLOB ... [--out preds.csv]     many videos, batched, with a progress bar
actrec predict VIDEO --window 16 --stride 8          per window along a long video (CSV + PNG timeline)
actrec export --format onnx|torchscript [--with-backbone]
actrec serve [--port 7860] [--max-size 100MB]         a web page: upload a video or pick a test clip
actrec watch SOURCE [--window 4s --stride 1s]        live predictions on a webcam, stream URL or file

The model and the backbone it was trained on come from what the run recorded in the checkpoint,
not from today's params.yaml. Bad input gives one `error: ...` line and exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from actrec.data.clips import VideoError
from actrec.data.decoding import DEFAULT_FRAME_RATE, video_info
from actrec.data.ntu_skeleton import SKELETON_SUFFIX, skeleton_info
from actrec.data.seeking import decoder_logs
from actrec.errors import ActrecError, run_main
from actrec.files import output_file
from actrec.inference.inputs import Span, find_videos

# torch, pandas and matplotlib load inside the commands: --help or a missing input answers at once.
if TYPE_CHECKING:
    from actrec.inference.predictor import Predictor, VideoPrediction

logger = logging.getLogger("actrec")

DEFAULT_MODEL = "models/model.pt"
FORMATS = ("onnx", "torchscript")


def _span(text: str) -> Span:
    try:
        return Span.parse(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return int(text)


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

    from actrec.devices import resolve_num_workers
    from actrec.progress import progress

    single = len(videos) == 1  # one clip: decoding in this process saves starting a worker
    results = predictor.predict(videos, num_workers=0 if single else resolve_num_workers("auto", predictor.device))
    rows, failed = [], 0
    for result in progress(results, total=len(videos), desc="predict", unit="video", disable=single or None):
        if result.error:
            if single:
                raise VideoError(f"{result.path}: {result.error}")
            failed += 1
            logger.warning("skipping %s: %s", result.path, result.error)
        if args.json:
            print(json.dumps(predictor.as_dict(result, args.top_k)), flush=True)
        elif args.out:
            rows.append(_row(result, predictor, args.top_k))
        elif single:
            _print_top_k(result, predictor, args.top_k)
        elif not result.error:
            best, prob = predictor.top_k(result.probs, 1)[0]
            tqdm.write(f"{result.path}: {best} ({prob:.1%})")
    if args.out:
        with output_file(args.out) as tmp:
            pd.DataFrame(rows).to_csv(tmp, index=False)
        print(f"wrote {args.out}: {len(videos) - failed} videos predicted, {failed} could not be read")
    if failed == len(videos):
        raise ActrecError(f"none of the {len(videos)} videos could be read")


def _predict_windows(predictor: Predictor, path: Path, args: argparse.Namespace) -> None:
    from actrec.evaluation.plots import probability_timeline, save_figure

    try:
        windows = predictor.windows(path, args.window, args.stride or args.window, frame_rate=args.frame_rate)
    except VideoError as err:  # opened fine, but frames further in fail to decode
        raise VideoError(f"{path}: {err}") from err
    out = Path(args.out or f"{path.stem}_windows.csv")
    with output_file(out) as tmp:
        windows.to_csv(tmp, index=False)
    figure = out.with_suffix(".png")
    save_figure(
        probability_timeline(windows, predictor.classes, f"{path.name}: class probabilities per window"), figure
    )
    if args.json:
        print(windows.to_json(orient="records"))
        return
    # Consecutive windows with the same top class read as one segment.
    segment = (windows["predicted"] != windows["predicted"].shift()).cumsum()
    for _, part in windows.groupby(segment):
        print(
            f"{part['start_s'].iloc[0]:8.2f} – {part['end_s'].iloc[-1]:8.2f} s  {part['predicted'].iloc[0]} "
            f"(mean {part['probability'].mean():.1%} over {len(part)} window(s))"
        )
    print(f"wrote {out} ({len(windows)} windows) and {figure}")


def predict_command(args: argparse.Namespace) -> None:
    videos = find_videos(args.inputs)
    if args.stride and not args.window:
        raise ActrecError("--stride needs --window")
    if args.window and len(videos) > 1:
        raise ActrecError(f"--window takes one video; {len(videos)} were given")
    if len(videos) == 1:  # a lone unreadable video fails before the model loads (seconds)
        try:
            (skeleton_info if videos[0].name.endswith(SKELETON_SUFFIX) else video_info)(videos[0])
        except VideoError as err:
            raise VideoError(f"{videos[0]}: {err}") from err
    from actrec.inference.predictor import Predictor

    predictor = Predictor(args.model, args.device)
    if args.window:
        _predict_windows(predictor, videos[0], args)
    else:
        _predict_many(predictor, videos, args)


def _shape(spec: dict) -> str:
    return f"{spec['dtype']} ({', '.join(map(str, spec['shape']))})"


def export_command(args: argparse.Namespace) -> None:
    from actrec.export import export

    out = export(args.model, args.format, args.out, with_backbone=args.with_backbone)
    meta = json.loads(Path(f"{out}.json").read_text())
    print(f"wrote {out}: {meta['input']['name']} {_shape(meta['input'])} → probabilities {_shape(meta['output'])}")
    print(f"classes, sampling and preprocessing: {out}.json")


def _size(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]?)B?\s*", text.upper())
    if not match or float(match[1]) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size such as 100MB, 1.5GB or 500KB")
    return int(float(match[1]) * 1024 ** " KMG".index(match[2] or " "))


def report_command(args: argparse.Namespace) -> None:
    from actrec.evaluation.summary import run_report

    reports = Path(args.reports)
    try:
        metrics = json.loads((reports / "metrics.json").read_text())
        training = json.loads((reports / "train" / "metrics.json").read_text())
    except (OSError, ValueError) as err:
        raise ActrecError(f"no finished run's reports in {reports}/ ({err}); run dvc repro first") from err
    print("\n".join(run_report(metrics, training, args.reports)))


def serve_command(args: argparse.Namespace) -> None:
    from actrec.serving.app import ServeOptions, serve

    serve(ServeOptions(**{f.name: getattr(args, f.name) for f in dataclasses.fields(ServeOptions)}))


def watch_command(args: argparse.Namespace) -> None:
    from actrec.serving.watch import open_source, watch

    source = open_source(args.source, args.timeout)  # one that cannot be opened fails before the model loads
    from actrec.inference.predictor import Predictor

    predictor = Predictor(args.model, args.device)
    for event in watch(predictor, source, args.window, args.stride, args.realtime, args.top_k):
        print(json.dumps(event.as_dict()) if args.json else event.text(), flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="actrec", description="Action recognition with a trained actrec model.")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log progress (INFO) and the decoders' own messages as well"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    predict = commands.add_parser(
        "predict",
        help="classify videos the model never saw",
        description="Classify videos with the trained model and the backbone it was trained on.",
    )
    predict.add_argument(
        "inputs",
        nargs="+",
        metavar="VIDEO|DIR|GLOB",
        help="video files, folders of frames (JPEG/PNG: one clip), other folders (every clip under them) or glob "
        "patterns",
    )
    predict.add_argument(
        "--model", default=DEFAULT_MODEL, help="checkpoint or folder holding model.pt (default: %(default)s)"
    )
    predict.add_argument("--top-k", type=_positive, default=5, help="classes to show (default: %(default)s)")
    predict.add_argument("--json", action="store_true", help="print JSON (one object per video) instead of text")
    predict.add_argument("--out", help="CSV to write: one row per video, or per window with --window")
    predict.add_argument(
        "--window", type=_span, help="predict per window of this many frames ('16') or seconds ('4s') along the video"
    )
    predict.add_argument(
        "--stride", type=_span, help="step between windows, frames or seconds (default: the window, no overlap)"
    )
    predict.add_argument(
        "--frame-rate",
        type=float,
        default=DEFAULT_FRAME_RATE,
        help="frames per second of a folder of frames, for --window in seconds (default: %(default)s)",
    )
    predict.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    predict.set_defaults(func=predict_command)

    exporter = commands.add_parser(
        "export",
        help="export the model to ONNX or TorchScript",
        description="Export the temporal head (features → probabilities) or, with "
        "--with-backbone, backbone + head (frames → probabilities).",
    )
    exporter.add_argument("--format", required=True, choices=FORMATS)
    exporter.add_argument("--with-backbone", action="store_true", help="include the frame backbone")
    exporter.add_argument(
        "--model", default=DEFAULT_MODEL, help="checkpoint or folder holding model.pt (default: %(default)s)"
    )
    exporter.add_argument("--out", help="file to write (default: beside the checkpoint)")
    exporter.set_defaults(func=export_command)

    report = commands.add_parser(
        "report",
        help="what the last run kept and scored, in a few lines",
        description="The head the train stage kept and its evidence, test top-1 with its 95%% interval beside "
        "the linear probe's, and where to read more; from the reports dvc repro wrote.",
    )
    report.add_argument("--reports", default="reports", help="the run's reports folder (default: %(default)s)")
    report.set_defaults(func=report_command)

    server = commands.add_parser(
        "serve",
        help="a web page to try the model on uploaded videos and the run's test clips",
        description="A local web page (Gradio) for a trained run: upload a video or pick one of the run's test "
        "clips and see the top classes, the frames the model saw, the window timeline of a long video; the "
        "model's classes, backbone and test metrics beside. Its HTTP API answers as `actrec predict --json`.",
    )
    server.add_argument(
        "--model", default=DEFAULT_MODEL, help="checkpoint or folder holding model.pt (default: %(default)s)"
    )
    server.add_argument(
        "--reports", default="reports", help="the run's reports: metrics.json, confusion.png (default: %(default)s)"
    )
    server.add_argument(
        "--split", default="data/split.csv", help="the run's split: its test clips are offered (default: %(default)s)"
    )
    server.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on; 0.0.0.0 opens it to the network (default: %(default)s)",
    )
    server.add_argument("--port", type=_positive, default=7860, help="(default: %(default)s)")
    server.add_argument(
        "--max-size", type=_size, default="100MB", help="largest upload accepted, e.g. 500MB (default: 100MB)"
    )
    server.add_argument("--top-k", type=_positive, default=5, help="classes to show (default: %(default)s)")
    server.add_argument(
        "--window", type=_span, default=Span(4.0, seconds=True), help="timeline window for long videos (default: 4s)"
    )
    server.add_argument("--stride", type=_span, default=Span(1.0, seconds=True), help="timeline step (default: 1s)")
    server.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    server.set_defaults(func=serve_command)

    watcher = commands.add_parser(
        "watch",
        help="predict live on a webcam, a stream URL or a file played in real time",
        description="Keep the last window of frames of a live source and predict every stride, one line per "
        "update: time, top class, probability and how far behind real time the answer is. Windows the model "
        "cannot keep up with are dropped, and said so.",
    )
    watcher.add_argument(
        "source", help="webcam index (0) or /dev/videoN, a URL FFmpeg reads (rtsp://, http://, udp://) or a file"
    )
    watcher.add_argument(
        "--model", default=DEFAULT_MODEL, help="checkpoint or folder holding model.pt (default: %(default)s)"
    )
    watcher.add_argument(
        "--window", type=_span, default=Span(4.0, seconds=True), help="frames ('100') or seconds ('4s') (default: 4s)"
    )
    watcher.add_argument(
        "--stride", type=_span, default=Span(1.0, seconds=True), help="predict every this often (default: 1s)"
    )
    watcher.add_argument(
        "--realtime", action="store_true", help="play a file at its own frame rate, as a live source would come"
    )
    watcher.add_argument("--json", action="store_true", help="print JSON lines instead of text")
    watcher.add_argument("--top-k", type=_positive, default=5, help="classes in each JSON line (default: %(default)s)")
    watcher.add_argument(
        "--timeout", type=float, default=10.0, help="seconds without data before a source counts as lost (default: 10)"
    )
    watcher.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    watcher.set_defaults(func=watch_command)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)

    def command() -> None:
        # Stages log INFO; a command's stdout is its answer, so only warnings go to stderr unless -v.
        logging.getLogger().setLevel(logging.INFO if args.verbose else logging.WARNING)
        decoder_logs(args.verbose)  # FFmpeg's and decord's own words, only when asked for
        try:
            args.func(args)
        except BrokenPipeError:  # the reader went away (`actrec predict DIR | head`): what it read stands
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at Python's exit
            sys.exit(1)

    run_main(command)


if __name__ == "__main__":
    main(sys.argv[1:])
