"""Live predictions on a stream of frames: `actrec watch SOURCE`.

A thread decodes the source continuously (PyAV: a webcam through v4l2, any URL FFmpeg reads, or
a file, at its own frame rate with `realtime`) and hands on, as RGB, only the frames some window
reads: its sampled frames, and where the features are made of several frames (a video model's clip
around each, the frame after each for optical flow: Predictor.context), those too. The caller's thread
keeps the last window, runs the source's network on each sampled frame once (overlapping windows share
them) as soon as the frames it reads have come, and the head every stride. Windows are placed and sampled as
`actrec predict --window` places them (Predictor.window_offsets, Predictor.window_table), so a
file watched gives the windows that command writes. When the model falls more than one stride
behind a live source, the window is dropped, and said so, instead of queueing ever more lag.
"""

from __future__ import annotations

import logging
import queue
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import av
import numpy as np

from actrec.data.decoding import video_info
from actrec.data.timeline import clock_of, shown
from actrec.errors import ActrecError
from actrec.inference.inputs import Span

if TYPE_CHECKING:  # torch loads with the model, after the source has opened
    from actrec.inference.predictor import Predictor

logger = logging.getLogger(__name__)

# Decoded frames a file read without --realtime may run ahead of the model (it waits, nothing is dropped).
AHEAD = 256


@dataclass
class Event:
    """One line of output: a window predicted ('update'), a window dropped ('dropped'), or the end ('end')."""

    kind: str
    start_s: float = 0.0
    end_s: float = 0.0
    lag_s: float = 0.0  # seconds between the window's last frame arriving and its answer (or its drop)
    top_k: list[tuple[str, float]] = field(default_factory=list)
    message: str = ""

    def as_dict(self) -> dict:
        out: dict = {"event": self.kind}
        if self.kind == "end":
            return {**out, "message": self.message}
        out.update(start_s=self.start_s, end_s=self.end_s, lag_s=round(self.lag_s, 3))
        if self.top_k:
            out.update(
                prediction=self.top_k[0][0],
                probability=self.top_k[0][1],
                top_k=[{"class": c, "probability": p} for c, p in self.top_k],
            )
        return out

    def text(self) -> str:
        if self.kind == "end":
            return self.message
        window = f"window {self.start_s:.2f}–{self.end_s:.2f} s"
        if self.kind == "dropped":
            return (
                f"{self.end_s:8.2f} s  dropped {window}: {self.lag_s:.2f} s behind, the model is slower than the stride"
            )
        best, prob = self.top_k[0]
        return f"{self.end_s:8.2f} s  {best}  {prob:.1%}  ({window}, {self.lag_s:.2f} s behind)"


def open_source(source: str, timeout: float) -> av.container.InputContainer:
    """A webcam (index or /dev/videoN), a URL FFmpeg reads, or a file; ActrecError saying why it cannot be opened."""
    device = f"/dev/video{source}" if source.isdigit() else source
    try:
        if device.startswith("/dev/video"):
            return av.open(device, format="v4l2", timeout=timeout)
        if not re.match(r"^[a-z][a-z0-9+.-]*://", source) and not Path(source).is_file():
            raise ActrecError(f"no such file, webcam or stream URL: {source}")
        return av.open(source, timeout=timeout)
    except (av.FFmpegError, OSError) as err:
        raise ActrecError(f"cannot open {source}: {getattr(err, 'strerror', None) or err}") from err


class FrameReader(threading.Thread):
    """Decodes every frame of the source in order and queues (index, RGB frame or None, arrival time): index i is
    the picture shown at time i / fps, as `actrec predict` numbers a file's frames (data.timeline.shown).

    Only frames `wanted(index)` are converted to RGB (a picture shown at several, once); the others are
    counted. A live source, or a file with `realtime`, is never held up by the consumer; a plain file waits
    for it (AHEAD frames).
    """

    def __init__(self, container: av.container.InputContainer, wanted: Callable[[int], bool], realtime: bool) -> None:
        super().__init__(daemon=True, name="actrec-watch-decode")
        self.container, self.wanted, self.realtime = container, wanted, realtime
        self.paced = realtime or not Path(container.name).is_file()
        self.frames: queue.Queue = queue.Queue(maxsize=0 if self.paced else AHEAD)
        self.stopping = threading.Event()
        self.end = ""  # why decoding stopped

    def run(self) -> None:
        stream = self.container.streams.video[0]
        stream.thread_type = "AUTO"
        start, first = time.monotonic(), None
        index, rgb = -1, (None, None)
        try:
            for index, frame in shown(self.container, stream):
                arrival = time.monotonic()
                if self.realtime and frame.time is not None:  # play at the file's own rate
                    first = frame.time if first is None else first
                    arrival = start + frame.time - first
                    time.sleep(max(0.0, arrival - time.monotonic()))
                if self.wanted(index) and rgb[0] is not frame:
                    rgb = (frame, frame.to_ndarray(format="rgb24"))
                self.frames.put((index, rgb[1] if self.wanted(index) else None, arrival))
                if self.stopping.is_set():
                    self.end = "stopped"
                    break
            else:
                self.end = f"end of stream after {index + 1} frames"
        except (av.FFmpegError, OSError) as err:
            reason = "no data within the timeout" if isinstance(err, av.ExitError) else str(err)
            self.end = f"lost the source after {index + 1} frames: {reason}"
        finally:
            self.frames.put(None)

    def __iter__(self) -> Iterator[tuple[int, np.ndarray | None, float]]:
        while (item := self.frames.get()) is not None:
            yield item


def frame_rate(container: av.container.InputContainer) -> float:
    if not container.streams.video:
        raise ActrecError(f"{container.name} has no video stream")
    clock = clock_of(container, container.streams.video[0])
    fps = float(clock.rate) if clock is not None else 0.0
    if not fps > 0:
        raise ActrecError(f"{container.name} does not say its frame rate; cannot place windows in time")
    return fps


def watch(
    predictor: Predictor,
    container: av.container.InputContainer,
    window: Span,
    stride: Span,
    realtime: bool = False,
    top_k: int = 5,
) -> Iterator[Event]:
    """Events as the source (open_source) plays: an update every stride once a window has filled, drops,
    then the end; the source is closed at the end."""
    reader = None
    try:
        fps = frame_rate(container)
        length, step = window.frames(fps), stride.frames(fps)
        offsets = predictor.window_offsets(length)
        # A file's frames are counted as `predict --window` counts them, so windows at its end read the same frames
        total = video_info(container.name).frames if Path(container.name).is_file() else None

        def contexts(start: int) -> np.ndarray:  # (T, L): the frames the window from `start` reads
            return predictor.context(start + offsets, total, fps)

        # The engine is set up before the first frame, chosen as for `predict --window` on the frames to embed:
        # a file's, or for a live stream (no end known) the longest of jobs.
        predictor.runner(len(np.unique(predictor.window_indices(total, length, step)[1])) if total else sys.maxsize)
        size = container.streams.video[0].codec_context
        if size.width and size.height:  # the first inference's one-off costs, paid before the first window
            predictor.embed(np.zeros((1, contexts(0).shape[1], size.height, size.width, 3), np.uint8))
        fitting = len(predictor.window_indices(total, length, step)[0]) if total else None  # windows in a file
        reader = FrameReader(container, _wanted(lambda k: contexts(k * step), fitting), realtime)
        reader.start()
        counts = Counter()
        for event in _windows(predictor, reader, fps, length, step, offsets, contexts, top_k):
            counts[event.kind] += 1
            yield event
        yield Event("end", message=f"{reader.end}; {counts['update']} updates, {counts['dropped']} windows dropped")
    finally:
        if reader is not None:  # a daemon: one blocked in a read does not hold up the exit
            reader.stopping.set()
            reader.join(timeout=1.0)
        container.close()


def _wanted(contexts: Callable[[int], np.ndarray], windows: int | None) -> Callable[[int], bool]:
    """Whether frame `index` is read by some window (window k reads `contexts(k)`; a file has `windows`, a live
    stream no end), asked for rising indices (the reader's order): the windows are laid out as far as the stream
    has come, and the frames behind it forgotten."""
    frames: set[int] = set()
    k, ahead = 0, contexts(0)

    def wanted(index: int) -> bool:
        nonlocal k, ahead, frames
        while (windows is None or k < windows) and ahead.min() <= index:  # later windows read from further on
            frames.update(ahead.ravel().tolist())
            k += 1
            ahead = contexts(k)
        if frames and min(frames) < index:
            frames = {i for i in frames if i >= index}
        return index in frames

    return wanted


def _windows(
    predictor: Predictor,
    reader: FrameReader,
    fps: float,
    length: int,
    step: int,
    offsets: np.ndarray,
    contexts: Callable[[int], np.ndarray],
    top_k: int,
) -> Iterator[Event]:
    images: dict[int, np.ndarray] = {}  # frames a window to come reads
    features: dict[int, np.ndarray] = {}  # sampled frames' features, kept while a window to come needs them
    start, reads = 0, contexts(0)
    for index, image, arrival in reader:
        if image is not None:
            images[index] = image
        if index < max(start + length - 1, int(reads.max())):  # the window's frames, and those they read
            continue
        indices = start + offsets
        lag = time.monotonic() - arrival
        if reader.paced and lag > step / fps:  # it would fall further behind: skip to the newest window
            yield Event("dropped", round(start / fps, 3), round((start + length) / fps, 3), lag)
        else:
            todo = {int(i): row for i, row in zip(indices, reads, strict=True) if i not in features}
            if todo:
                frames = np.stack([[images[int(j)] for j in row] for row in todo.values()])
                features.update(zip(todo, predictor.embed(frames), strict=True))
            row = predictor.window_table(np.array([start]), length, fps, np.stack([features[i] for i in indices])[None])
            best = [(c, round(p, 4)) for c, p in predictor.top_k(row.loc[0, predictor.classes].to_numpy(float), top_k)]
            yield Event("update", float(row.start_s[0]), float(row.end_s[0]), time.monotonic() - arrival, best)
        start += step
        reads = contexts(start)
        for kept, first in ((images, int(reads.min())), (features, start)):
            for i in [i for i in kept if i < first]:
                del kept[i]
