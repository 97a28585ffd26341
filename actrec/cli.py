"""The `actrec` command: predictions on new videos and model export, from a trained run.

actrec predict VIDEO [--top-k 5] [--json]           one video: the top-k classes
actrec predict DIR_OR_GLOB ... [--out preds.csv]     many videos, batched, with a progress bar
actrec predict VIDEO --window 16 --stride 8          per window along a long video (CSV + PNG timeline)
actrec export [--format onnx|torchscript] [--with-backbone]
actrec serve [--port 7860] [--max-size 100MB]         a web page: upload a video or pick a test clip
actrec watch SOURCE [--window 4s --stride 1s]        live predictions on a webcam, stream URL or file
actrec report                                        what the last run kept and scored
actrec trial [--refresh]                             the engine trial's figures for params.extract, or time them anew

The model and the backbone it was trained on come from what the run recorded in the checkpoint,
not from today's params.yaml (`trial` alone reads params.yaml: it times what the extract stage would run).
Every subcommand takes -v/-q (before or after its name). Bad input gives one `error: ...` line and exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import typing
from pathlib import Path

from actrec import __version__
from actrec.commands.arguments import port, positive, seconds, size, span
from actrec.commands.predict import predict_command
from actrec.commands.run import export_command, report_command, serve_command, watch_command
from actrec.commands.trial import trial_command
from actrec.data.decoding import DEFAULT_FRAME_RATE
from actrec.data.seeking import decoder_logs
from actrec.errors import run_main
from actrec.inference.inputs import Span

DEFAULT_MODEL = "models/model.pt"
FORMATS = ("onnx", "torchscript")
MODEL_HELP = "checkpoint or folder holding model.pt (default: %(default)s)"
DEVICE_HELP = "where the model runs: auto (a GPU if there is one), cpu or cuda (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """A mistake on the command line is one line, as every other error is: the usage is in --help."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _shared(defaults: bool) -> argparse.ArgumentParser:
    """-v/-q, taken before the subcommand and after it; after it, only a flag given overrides one before."""
    parser = _Parser(add_help=False)
    default = False if defaults else argparse.SUPPRESS
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument(
        "-v", "--verbose", action="store_true", default=default, help="log progress (INFO) and the decoders' words"
    )
    loudness.add_argument("-q", "--quiet", action="store_true", default=default, help="log errors only")
    return parser


def _command(commands: argparse._SubParsersAction, name: str, help: str, description: str) -> argparse.ArgumentParser:
    return commands.add_parser(name, help=help, description=description, parents=[_shared(defaults=False)])


def _add_predict(commands: argparse._SubParsersAction) -> None:
    predict = _command(
        commands,
        "predict",
        "classify videos the model never saw",
        "Classify videos with the trained model and the backbone it was trained on.",
    )
    predict.add_argument(
        "inputs",
        nargs="+",
        metavar="VIDEO|DIR|GLOB",
        help="video files, folders of frames (JPEG/PNG: one clip), other folders (every clip under them) or glob "
        "patterns",
    )
    predict.add_argument("--model", default=DEFAULT_MODEL, help=MODEL_HELP)
    predict.add_argument("--top-k", type=positive, default=5, help="classes to show (default: %(default)s)")
    predict.add_argument("--json", action="store_true", help="print JSON (one object per video) instead of text")
    predict.add_argument(
        "--out",
        help="CSV to write: one row per video, or per window with --window (default there: VIDEO_windows.csv beside "
        "the video, and its .png timeline)",
    )
    predict.add_argument(
        "--window", type=span, help="predict per window of this many frames ('16') or seconds ('4s') along the video"
    )
    predict.add_argument(
        "--stride", type=span, help="step between windows, frames or seconds (default: the window, no overlap)"
    )
    predict.add_argument(
        "--render",
        type=Path,
        metavar="OUT.mp4",
        help="with --window: also write the video with each frame's class and probability drawn on it",
    )
    predict.add_argument(
        "--frame-rate",
        type=seconds,
        default=DEFAULT_FRAME_RATE,
        help="frames per second of a folder of frames, for --window in seconds (default: %(default)s)",
    )
    predict.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help=DEVICE_HELP)
    predict.set_defaults(func=predict_command)


def _add_export_and_report(commands: argparse._SubParsersAction) -> None:
    exporter = _command(
        commands,
        "export",
        "export the model to ONNX or TorchScript",
        "Export the temporal head (features → probabilities) or, with "
        "--with-backbone, backbone + head (frames → probabilities).",
    )
    exporter.add_argument(
        "--format", default="onnx", choices=FORMATS, help="ONNX (any runtime) or TorchScript (default: %(default)s)"
    )
    exporter.add_argument("--with-backbone", action="store_true", help="include the frame backbone")
    exporter.add_argument("--model", default=DEFAULT_MODEL, help=MODEL_HELP)
    exporter.add_argument("--out", help="file to write (default: beside the checkpoint)")
    exporter.set_defaults(func=export_command)

    report = _command(
        commands,
        "report",
        "what the last run kept and scored, in a few lines",
        "The head the train stage kept and its evidence, test top-1 with its 95% interval beside "
        "the linear probe's, and where to read more; from the reports dvc repro wrote.",
    )
    report.add_argument("--reports", default="reports", help="the run's reports folder (default: %(default)s)")
    report.set_defaults(func=report_command)


def _add_trial(commands: argparse._SubParsersAction) -> None:
    trial = _command(
        commands,
        "trial",
        "the engine trial's figures for params.extract on this machine; --refresh times them again",
        "The set-up and frames/s of each engine and precision the extract stage may run the backbone with, as "
        "kept for this machine, and which one extract.engine: auto takes. The stage times them again by itself "
        "once a month, or when an extraction runs clearly slower than they say; --refresh does it now.",
    )
    trial.add_argument("--refresh", action="store_true", help="time every engine and precision again now")
    trial.add_argument(
        "--compile",
        action="store_true",
        help="with --refresh, time torch.compile too (its cold build can take minutes; runs time it when it may pay)",
    )
    trial.add_argument(
        "--frames",
        type=positive,
        default=100_000,
        help="frames to extract that auto's pick is shown for (default: %(default)s)",
    )
    trial.add_argument("--params", default="params.yaml", help="the params file to read (default: %(default)s)")
    trial.set_defaults(func=trial_command)


def _add_serve_and_watch(commands: argparse._SubParsersAction) -> None:
    server = _command(
        commands,
        "serve",
        "a web page to try the model on uploaded videos and the run's test clips",
        "A local web page (Gradio) for a trained run: upload a video or pick one of the run's test "
        "clips and see the top classes, the frames the model saw, the window timeline of a long video; the "
        "model's classes, backbone and test metrics beside. Its HTTP API answers as `actrec predict --json`.",
    )
    server.add_argument("--model", default=DEFAULT_MODEL, help=MODEL_HELP)
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
    server.add_argument("--port", type=port, default=7860, help="TCP port to listen on (default: %(default)s)")
    server.add_argument(
        "--max-size", type=size, default="100MB", help="largest upload accepted, e.g. 500MB (default: 100MB)"
    )
    server.add_argument("--top-k", type=positive, default=5, help="classes to show (default: %(default)s)")
    server.add_argument(
        "--window", type=span, default=Span(4.0, seconds=True), help="timeline window for long videos (default: 4s)"
    )
    server.add_argument("--stride", type=span, default=Span(1.0, seconds=True), help="timeline step (default: 1s)")
    server.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help=DEVICE_HELP)
    server.set_defaults(func=serve_command)

    watcher = _command(
        commands,
        "watch",
        "predict live on a webcam, a stream URL or a file played in real time",
        "Keep the last window of frames of a live source and predict every stride, one line per "
        "update: time, top class, probability and how far behind real time the answer is. Windows the model "
        "cannot keep up with are dropped, and said so.",
    )
    watcher.add_argument(
        "source", help="webcam index (0) or /dev/videoN, a URL FFmpeg reads (rtsp://, http://, udp://) or a file"
    )
    watcher.add_argument("--model", default=DEFAULT_MODEL, help=MODEL_HELP)
    watcher.add_argument(
        "--window", type=span, default=Span(4.0, seconds=True), help="frames ('100') or seconds ('4s') (default: 4s)"
    )
    watcher.add_argument(
        "--stride", type=span, default=Span(1.0, seconds=True), help="predict every this often (default: 1s)"
    )
    watcher.add_argument(
        "--realtime", action="store_true", help="play a file at its own frame rate, as a live source would come"
    )
    watcher.add_argument("--json", action="store_true", help="print JSON lines instead of text")
    watcher.add_argument("--top-k", type=positive, default=5, help="classes in each JSON line (default: %(default)s)")
    watcher.add_argument(
        "--timeout",
        type=seconds,
        default=10.0,
        help="seconds without data before a source counts as lost (default: 10)",
    )
    watcher.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help=DEVICE_HELP)
    watcher.set_defaults(func=watch_command)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="actrec", description="Action recognition with a trained actrec model.", parents=[_shared(defaults=True)]
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}", help="print the version")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_predict(commands)
    _add_export_and_report(commands)
    _add_serve_and_watch(commands)
    _add_trial(commands)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)

    def command() -> None:
        # Stages log INFO; a command's stdout is its answer, so only warnings go to stderr unless -v (-q: errors).
        level = logging.INFO if args.verbose else logging.ERROR if args.quiet else logging.WARNING
        logging.getLogger().setLevel(level)
        decoder_logs(args.verbose)  # FFmpeg's and decord's own words, only when asked for
        try:
            args.func(args)
        except BrokenPipeError:  # the reader went away (`actrec predict DIR | head`): what it read stands
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at Python's exit
            sys.exit(1)

    run_main(command)


if __name__ == "__main__":
    main(sys.argv[1:])
