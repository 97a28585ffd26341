"""What a long video's windows say, shown: its segments (runs of windows with the same top class), as
`actrec predict --window` prints them and the page lists them, and the video with its answer drawn on it, each
frame carrying the class of the window it is in and that window's probability, as MMAction2's long-video demo
shows its running prediction on the frames it is about.

The windows are `Predictor.windows`' table (start_s, end_s, predicted, probability); the frames come from the
project's one loader, read straight through where it can; PyAV encodes the result and Pillow draws on it.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from actrec.data import decoding
from actrec.errors import ActrecError
from actrec.files import output_file

# The containers a rendered video may be written as, by suffix, and what encodes it there.
CONTAINERS = {".mp4": "mp4", ".mkv": "matroska", ".mov": "mov", ".avi": "avi"}
CHUNK = 64  # frames decoded at once: a long video is never all in memory


def _codec() -> str:
    """H.264 where this FFmpeg has an encoder for it (every browser plays it), else MPEG-4 Part 2."""
    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def segments(windows: pd.DataFrame) -> pd.DataFrame:
    """Consecutive windows with the same top class as one segment: start_s, end_s, predicted, the mean
    probability over its windows, and how many windows it spans."""
    run = (windows["predicted"] != windows["predicted"].shift()).cumsum()
    return (
        windows.groupby(run, sort=False)
        .agg(
            start_s=("start_s", "first"),
            end_s=("end_s", "last"),
            predicted=("predicted", "first"),
            probability=("probability", "mean"),
            windows=("predicted", "size"),
        )
        .reset_index(drop=True)
    )


def segment_lines(windows: pd.DataFrame) -> list[str]:
    """The segments as the command line prints them, one line each."""
    return [
        f"{s.start_s:8.2f} – {s.end_s:8.2f} s  {s.predicted} (mean {s.probability:.1%} over {s.windows} window(s))"
        for s in segments(windows).itertuples()
    ]


def nearest_windows(windows: pd.DataFrame, times: np.ndarray) -> np.ndarray:
    """For each time, the row of the window whose centre is nearest: what the video shows then."""
    centres = ((windows["start_s"] + windows["end_s"]) / 2).to_numpy()
    return np.abs(times[:, None] - centres[None, :]).argmin(axis=1)


def caption(frame: np.ndarray, text: str) -> np.ndarray:
    """The frame with `text` on a dark band across its top, sized to the frame."""
    image = Image.fromarray(frame)
    band = max(14, image.height // 10)
    draw = ImageDraw.Draw(image, "RGBA")
    draw.rectangle((0, 0, image.width, band), fill=(0, 0, 0, 160))
    font = ImageFont.load_default(size=max(10, int(band * 0.7)))
    draw.text((band // 4, band // 2), text, fill=(255, 255, 255, 255), font=font, anchor="lm")
    return np.asarray(image)


def render(path: Path, windows: pd.DataFrame, out: Path) -> int:
    """Write `out`: the video at `path` with each frame's window's class and probability drawn on it.
    Returns the frames written. A frame folder or an unknown container is one error line."""
    suffix = out.suffix.lower()
    if suffix not in CONTAINERS:
        raise ActrecError(f"--render {out}: write a video ending in {', '.join(CONTAINERS)}")
    info = decoding.video_info(path)
    if path.is_dir() or not info.fps > 0:
        raise ActrecError(f"--render needs a video file with a frame rate; {path} is not one")
    rows = nearest_windows(windows, np.arange(info.frames) / info.fps)
    labels = [f"{w.predicted} {w.probability:.0%}" for w in windows.itertuples()]
    chunks = np.array_split(np.arange(info.frames), math.ceil(info.frames / CHUNK))
    # yuv420p, what players expect, halves the chroma planes: an odd width or height loses its last pixel
    width, height = info.width - info.width % 2, info.height - info.height % 2
    written = 0
    with output_file(out) as tmp, av.open(str(tmp), "w", format=CONTAINERS[suffix]) as target:
        stream = target.add_stream(_codec(), rate=Fraction(info.fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for frames in decoding.frame_chunks(path, chunks):
            for frame in frames:
                drawn = caption(np.ascontiguousarray(frame[:height, :width]), labels[rows[written]])
                target.mux(stream.encode(av.VideoFrame.from_ndarray(drawn, format="rgb24")))
                written += 1
        target.mux(stream.encode())
    return written
