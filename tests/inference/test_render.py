"""A long video's windows shown: its segments as the command line prints them, and each frame drawn with the
answer of the window it is in."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest

from actrec.data.decoding import read_frames, video_info
from actrec.errors import ActrecError
from actrec.inference.render import caption, nearest_windows, render, segment_lines, segments

WINDOWS = pd.DataFrame(
    {
        "start_s": [0.0, 1.0, 2.0, 3.0],
        "end_s": [2.0, 3.0, 4.0, 5.0],
        "predicted": ["Grow", "Grow", "Shrink", "Grow"],
        "probability": [0.9, 0.7, 0.6, 0.8],
    }
)


def test_runs_of_one_class_are_one_segment() -> None:
    table = segments(WINDOWS)
    assert table["predicted"].tolist() == ["Grow", "Shrink", "Grow"]
    assert table[["start_s", "end_s"]].to_numpy().tolist() == [[0, 3], [2, 4], [3, 5]]
    assert table["probability"].tolist() == pytest.approx([0.8, 0.6, 0.8]) and table["windows"].tolist() == [2, 1, 1]
    assert segment_lines(WINDOWS)[0] == "    0.00 –     3.00 s  Grow (mean 80.0% over 2 window(s))"


def test_each_moment_takes_the_window_centred_nearest() -> None:
    # centres 1, 2, 3, 4 s
    assert nearest_windows(WINDOWS, np.array([0.0, 1.4, 1.6, 3.2, 9.0])).tolist() == [0, 0, 1, 2, 3]


def _grey_video(path: Path, frames: int, width: int = 65, height: int = 49, fps: int = 10) -> Path:
    """A still grey picture: any difference between two of its rendered frames is what was drawn."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width - 1, height - 1, "yuv420p"
        picture = np.full((height - 1, width - 1, 3), 128, np.uint8)
        for _ in range(frames):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
        out.mux(stream.encode())
    return path


def test_the_rendered_video_carries_each_windows_answer(tmp_path: Path) -> None:
    video = _grey_video(tmp_path / "still.avi", frames=50)
    out = tmp_path / "drawn.mp4"
    assert render(video, WINDOWS, out) == 50
    info = video_info(out)
    assert (info.frames, info.width, info.height, info.fps) == (50, 64, 48, 10)
    drawn = read_frames(out, np.arange(50)).astype(int)
    band = max(14, 48 // 10)
    assert np.abs(drawn[:, band + 2 :] - 128).max() <= 6, "below the band, the picture as it was"
    # window centres 1, 2, 3, 4 s: frames 0 and 12 (0.0 and 1.2 s) show "Grow 90%", frame 30 (3.0 s) "Shrink 60%"
    same = np.abs(drawn[0, :band] - drawn[12, :band]).mean()
    other = np.abs(drawn[0, :band] - drawn[30, :band]).mean()
    assert same < 2 < other, (same, other)
    grey = np.full((48, 64, 3), 128, np.uint8)

    def off(frame: int, text: str) -> float:
        return np.abs(drawn[frame, :band] - caption(grey, text)[:band].astype(int)).mean()

    assert off(30, "Shrink 60%") < off(30, "Grow 90%") and off(0, "Grow 90%") < off(0, "Shrink 60%")


def test_an_unknown_container_is_one_error(tmp_path: Path) -> None:
    video = _grey_video(tmp_path / "still.avi", frames=5)
    with pytest.raises(ActrecError, match=r"--render .*drawn.gif: write a video ending in \.mp4"):
        render(video, WINDOWS, tmp_path / "drawn.gif")
