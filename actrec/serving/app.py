"""The web page of a trained run: `actrec serve` (Gradio).

A person uploads a video, or picks one of the run's test clips, and sees the top classes as
probability bars, the video played back with the answer drawn on it (the file `actrec predict --render`
writes), the T frames the model saw, for a video longer than one window its segments and the timeline of
`actrec predict --window`, and the time it took; beside it the model (classes, backbone, T, K)
and its test metrics and confusion heatmap from the run's reports. Every answer comes from the
same Predictor as `actrec predict`, and the HTTP API (`/predict`) returns `actrec predict --json`'s
object. Bad input gets a message on the page, never an exception out of the server. Files reach
the browser only as copies Gradio makes of what the page shows (thumbnails, the heatmap) in the
server's own temporary folder: no path the browser sends is opened, a test clip is named by its
label in a fixed list, and nothing is allowed beyond that folder (no `allowed_paths`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
import numpy as np
import pandas as pd
from PIL import Image
from starlette.middleware import Middleware

from actrec.data.clips import VideoError
from actrec.data.decoding import read_clip, video_info
from actrec.errors import ActrecError
from actrec.inference.inputs import Span
from actrec.inference.predictor import Predictor
from actrec.inference.render import render, segments
from actrec.serving.gate import Gate

logger = logging.getLogger(__name__)

THUMBNAIL_HEIGHT = 112  # pixels: T thumbnails side by side stay on one screen
# Requests run one at a time: the backbone already uses every core, so more at once only interleaves
# them; the queue answers each in turn and shows its position (QUEUE_SIZE waiting at most).
QUEUE_SIZE = 64
# Fonts the machine has: the default theme would fetch web fonts, which an offline machine cannot.
THEME = gr.themes.Default(
    font=["system-ui", "Helvetica", "Arial", "sans-serif"], font_mono=["ui-monospace", "monospace"]
)


@dataclass(frozen=True)
class ServeOptions:
    """What `actrec serve` is asked for: the run's files, where to listen, and the page's limits."""

    model: str = "models/model.pt"
    reports: str = "reports"
    split: str = "data/split.csv"
    host: str = "127.0.0.1"
    port: int = 7860
    max_size: int = 100 * 2**20  # bytes: the largest upload accepted
    top_k: int = 5
    window: Span = field(default_factory=lambda: Span(4.0, seconds=True))  # the timeline of a long video
    stride: Span = field(default_factory=lambda: Span(1.0, seconds=True))
    device: str = "auto"


def _human(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def split_test_clips(split: Path, reports: Path) -> dict[str, Path]:
    """The run's test clips present on disk, by a label naming the actual class and what the run predicted.

    The page offers exactly these: the browser sends a label, never a path.
    """
    if not split.is_file():
        return {}
    table = pd.read_csv(split)
    table = table[table["split"] == "test"]
    predictions = reports / "predictions.csv"
    if predictions.is_file():
        table = table.merge(pd.read_csv(predictions), on="clip_id", how="left")
    clips = {}
    for row in table.itertuples():
        run = getattr(row, "predicted", None)
        said = f", run predicted {run} ({row.confidence:.0%})" if isinstance(run, str) else ""
        if Path(row.path).is_file():
            clips[f"{row.clip_id} (actual {row.label}{said})"] = Path(row.path)
    return clips


def model_panel(predictor: Predictor, model: str, reports: Path) -> str:
    """Markdown: what the model is and how it did on the run's test clips."""
    record = predictor.record
    precision = predictor.precision
    if precision != record.get("precision", precision):
        precision += f" here (the run extracted in {record['precision']})"
    lines = [
        f"**Checkpoint** `{model}`",
        "",
        "| setting | value |",
        "| --- | --- |",
        f"| classes ({len(predictor.classes)}) | {', '.join(predictor.classes)} |",
        f"| temporal head | {predictor.head} |",
        f"| backbone | {record['backbone']}, weights {record['weights'] or 'random'}, "
        f"{record.get('input_size', record['image_size'])} px |",
        f"| frames per clip (T) | {predictor.frames} |",
        f"| views per video (K) | {predictor.views} |",
        f"| precision | {precision} |",
    ]
    metrics_file = reports / "metrics.json"
    if not metrics_file.is_file():
        return "\n".join([*lines, "", f"No test metrics: {metrics_file} not found."])
    metrics = json.loads(metrics_file.read_text())
    shown = {
        "top1": "top-1 accuracy",
        "top5": "top-5 accuracy",
        "macro_f1": "macro-F1",
        "mean_class_accuracy": "mean per-class accuracy",
        "ece": "expected calibration error",
        "linear_probe_top1": "linear probe top-1 (same features)",
        "test_clips": "test clips",
    }
    lines += ["", f"**Test metrics** (`{metrics_file}`)", "", "| metric | value |", "| --- | --- |"]
    for key, name in shown.items():
        if key in metrics:
            value = metrics[key]
            text = str(value) if isinstance(value, int) else f"{value:.3f}"
            if key == "top1" and "top1_ci95_low" in metrics:
                text += f" (95% CI {metrics['top1_ci95_low']:.3f}–{metrics['top1_ci95_high']:.3f})"
            lines.append(f"| {name} | {text} |")
    return "\n".join(lines)


def _thumbnail(frame: np.ndarray) -> Image.Image:
    image = Image.fromarray(frame)
    image.thumbnail((THUMBNAIL_HEIGHT * 4, THUMBNAIL_HEIGHT))
    return image


class Analyst:
    """What the page does with one video: checks, prediction, thumbnails, timeline, each bad case a message."""

    def __init__(self, predictor: Predictor, test_clips: dict[str, Path], options: ServeOptions) -> None:
        self.predictor, self.test_clips = predictor, test_clips
        self.max_size, self.top_k = options.max_size, options.top_k
        self.window, self.stride = options.window, options.stride

    def upload(self, video: str | None, progress: gr.Progress = gr.Progress()) -> tuple:  # noqa: B008 - Gradio's idiom
        if not video:
            return self._message("Upload a video (or pick one of the run's test clips).")
        return self._answer(Path(video), Path(video).name, progress)

    def test_clip(self, label: str | None, progress: gr.Progress = gr.Progress()) -> tuple:  # noqa: B008
        if not label:
            return self._message("Pick one of the run's test clips.")
        if label not in self.test_clips:
            return self._message("That is not one of this run's test clips.")
        actual = label.split("(actual ", 1)[1].split(",")[0].rstrip(")") if "(actual " in label else None
        return self._answer(self.test_clips[label], label.split(" (")[0], progress, actual)

    def _message(self, text: str, name: str = "") -> tuple:
        answer = {"video": name, "error": text} if name else {}
        hidden = gr.update(value=None, visible=False)
        return f"⚠️ {text}", None, None, None, hidden, hidden, answer

    def _answer(self, path: Path, name: str, progress: gr.Progress, actual: str | None = None) -> tuple:
        try:
            return self._predict(path, name, progress, actual)
        except ActrecError as err:  # VideoError included: a video that opened but fails further in
            return self._message(f"{name} could not be read as a video: {err}", name)
        except Exception as err:  # the server survives any request: report it, keep serving
            logger.exception("request for %s failed", name)
            return self._message(f"{name}: internal error ({type(err).__name__}: {err})", name)

    def _predict(self, path: Path, name: str, progress: gr.Progress, actual: str | None) -> tuple:
        start = time.perf_counter()
        size = path.stat().st_size
        if size > self.max_size:
            return self._message(f"{name} is {_human(size)}, over the {_human(self.max_size)} limit (--max-size)", name)
        try:
            info = video_info(path)
        except VideoError as err:
            return self._message(f"{name} is not a video this server can read: {err}", name)
        predictor = self.predictor
        progress(0.05, desc=f"sampling {predictor.frames} frames and running the model")
        result = next(predictor.predict([path]))
        if result.error:
            return self._message(f"{name} could not be read as a video: {result.error}", name)
        # view 0: the centre of each segment (or the centred strided clip), as the prediction saw it
        frames, indices = read_clip(
            path, predictor.frames, predictor.views, sampling=predictor.sampling, stride=predictor.stride
        )
        thumbs = [
            (_thumbnail(frame), f"{i / info.fps:.2f} s" if info.fps > 0 else f"frame {i}")
            for frame, i in zip(frames[: predictor.frames], indices[0], strict=True)
        ]
        timeline = parts = gr.update(value=None, visible=False)
        best, prob = predictor.top_k(result.probs, 1)[0]
        duration = info.frames / info.fps if info.fps > 0 else 0.0
        # a video no longer than a window is one window: the whole clip, the answer above
        table = pd.DataFrame({"start_s": [0.0], "end_s": [duration], "predicted": [best], "probability": [prob]})
        headline = f"**{best}** ({prob:.1%})"
        starts = []
        if info.fps > 0:
            window, step = self.window.frames(info.fps), self.stride.frames(info.fps)
            starts, _ = predictor.window_indices(info.frames, window, step)
        if len(starts) > 1:  # longer than a window: the timeline `actrec predict --window` draws
            table = predictor.windows(
                path, self.window, self.stride, progress=lambda f: progress(0.3 + 0.7 * f, desc="windows")
            )
            long = table[["start_s", "end_s", *predictor.classes]].melt(
                ["start_s", "end_s"], var_name="class", value_name="probability"
            )
            long["time_s"] = (long["start_s"] + long["end_s"]) / 2
            timeline = gr.update(value=long, visible=True)
            runs = segments(table)
            shown = pd.DataFrame(
                {
                    "from (s)": runs["start_s"].round(2),
                    "to (s)": runs["end_s"].round(2),
                    "class": runs["predicted"],
                    "confidence": runs["probability"].map("{:.1%}".format),
                    "windows": runs["windows"],
                }
            )
            parts = gr.update(value=shown, visible=True)
            headline = " → ".join(
                f"**{r.predicted}** {r.start_s:.1f}–{r.end_s:.1f} s ({r.probability:.0%})" for r in runs.itertuples()
            )
        drawn = None
        if info.fps > 0 and not path.is_dir():  # the video played back with each moment's answer on it
            progress(0.95, desc="drawing the answer on the video")
            drawn = Path(tempfile.mkdtemp(dir=os.environ.get("GRADIO_TEMP_DIR"))) / f"{path.stem}_answer.mp4"
            render(path, table, drawn)
        seconds = time.perf_counter() - start
        size = f"{duration:.1f} s, " if info.fps > 0 else ""
        truth = f" — true label **{actual}** ({'right' if actual == best else 'wrong'})" if actual else ""
        status = f"{headline}{truth} — {name} ({size}{info.width}×{info.height}), answered in {seconds:.2f} s" + (
            f", timeline of {len(table)} windows" if len(starts) > 1 else ""
        )
        if predictor.views > 1:
            status += f"; the model averages {predictor.views} views of {predictor.frames} frames, the first is shown"
        labels = dict(predictor.top_k(result.probs, self.top_k))
        answer = predictor.as_dict(result, self.top_k) | {"video": name, "seconds": round(seconds, 3)}
        return status, labels, str(drawn) if drawn else None, thumbs, timeline, parts, answer


def build_page(predictor: Predictor, options: ServeOptions) -> gr.Blocks:
    reports = Path(options.reports)
    clips = split_test_clips(Path(options.split), reports)
    analyst = Analyst(predictor, clips, options)
    with gr.Blocks(
        title=f"actrec: {Path(options.model).name}", analytics_enabled=False, delete_cache=(3600, 3600)
    ) as page:
        gr.Markdown(
            f"# actrec — what is happening in this video?\nModel `{options.model}`: {', '.join(predictor.classes)}"
        )
        with gr.Row():
            with gr.Column(scale=1):
                upload = gr.File(
                    label=f"Upload a video (at most {_human(options.max_size)})", elem_id="upload", file_count="single"
                )
                clip = gr.Dropdown(
                    choices=list(clips),
                    value=None,
                    label=f"…or pick one of the run's {len(clips)} test clips",
                    elem_id="test-clip",
                    visible=bool(clips),
                )
            with gr.Column(scale=2):
                status = gr.Markdown("Upload a video or pick a test clip.", elem_id="status")
                with gr.Row():
                    top = gr.Label(num_top_classes=options.top_k, label="Top classes", elem_id="top-k")
                    played = gr.Video(
                        label="The video with the answer drawn on it", elem_id="played", interactive=False
                    )
                segments_table = gr.Dataframe(
                    label="What happens when: runs of windows with the same class", elem_id="segments", visible=False
                )
                timeline = gr.LinePlot(
                    x="time_s",
                    y="probability",
                    color="class",
                    x_title="time (s), window centres",
                    y_lim=[0, 1],
                    label=f"Class probabilities per window ({options.window.value:g}"
                    f"{'s' if options.window.seconds else ' frames'}, every {options.stride.value:g}"
                    f"{'s' if options.stride.seconds else ' frames'})",
                    elem_id="timeline",
                    visible=False,
                    tooltip="all",
                )
                with gr.Accordion("The answer as JSON (what the HTTP API returns)", open=False):
                    answer = gr.JSON(elem_id="answer")
        # The whole width: T thumbnails, 8 a row, each whole.
        frames = gr.Gallery(
            label=f"The {predictor.frames} frames the model saw",
            elem_id="frames",
            columns=min(predictor.frames, 8),
            height="auto",
            object_fit="contain",
        )
        with gr.Accordion("Model", open=True, elem_id="model"), gr.Row():
            with gr.Column(scale=1):
                gr.Markdown(model_panel(predictor, options.model, reports))
            with gr.Column(scale=1):
                confusion = reports / "confusion.png"
                if confusion.is_file():  # its own column, the whole picture: title and class names unclipped
                    gr.Image(
                        str(confusion),
                        label="Confusion on the test clips",
                        interactive=False,
                        elem_id="confusion",
                        height="auto",
                    )
                else:
                    gr.Markdown(f"No confusion heatmap: {confusion} not found.")
        outputs = [status, top, played, frames, timeline, segments_table, answer]
        # Each input clears the other, so what the page shows the answer for is never in doubt.
        upload.upload(analyst.upload, upload, outputs, api_name="predict").then(
            lambda: None, None, clip, queue=False, api_visibility="private"
        )
        clip.input(analyst.test_clip, clip, outputs, api_name="predict_test_clip").then(
            lambda: None, None, upload, queue=False, api_visibility="private"
        )
    return page.queue(default_concurrency_limit=1, max_size=QUEUE_SIZE)


def check_address(host: str, port: int) -> None:
    """One line, before any work, where the server could not listen: a port out of range, taken, or not allowed."""
    if not 1 <= port <= 65535:
        raise ActrecError(f"--port {port} is not a TCP port (1 to 65535)")
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds: TIME_WAIT is free
            probe.bind((host, port))
    except OSError as err:
        raise ActrecError(f"cannot listen on {host}:{port}: {err.strerror or err}") from err


def serve(options: ServeOptions) -> None:
    """Load the model, build the page and serve it until interrupted; uploads live in a folder removed at exit."""
    check_address(options.host, options.port)  # a taken port fails before the model loads (seconds)
    predictor = Predictor(options.model, options.device)
    predictor.runner(sys.maxsize)  # a server's requests add up: the engine that repays its set-up, set up now
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill` stops it as Ctrl-C does: folder removed
    cache = tempfile.mkdtemp(prefix="actrec-serve-")
    os.environ["GRADIO_TEMP_DIR"] = cache  # read when components save files: uploads and what the page shows
    try:
        page = build_page(predictor, options)
        print(f"actrec serve: http://{options.host}:{options.port} (Ctrl-C to stop)", flush=True)
        page.launch(
            server_name=options.host,
            server_port=options.port,
            max_file_size=options.max_size,
            ssr_mode=False,
            mcp_server=False,
            quiet=True,
            show_error=True,
            footer_links=["api"],
            theme=THEME,
            app_kwargs={"middleware": [Middleware(Gate, page=page)]},  # malformed calls: 4xx, one line
        )
    except OSError as err:  # Gradio's words for a port taken meanwhile run to three sentences
        raise ActrecError(
            f"cannot listen on {options.host}:{options.port} ({' '.join(str(err).split()[:12])} …)"
        ) from err
    finally:
        shutil.rmtree(cache, ignore_errors=True)
