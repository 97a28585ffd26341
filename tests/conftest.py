"""Shared fixtures: real videos written with PyAV, the real UCF-101 clips in ../shared, a repo copy."""

from __future__ import annotations

import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
UCF_MINI = ROOT.parent / "shared" / "data" / "ucf101-mini"


def write_video(path: Path, frames: int = 30, width: int = 64, height: int = 48, fps: int = 25,
                codec: str = "mpeg4", pix_fmt: str = "yuv420p", seed: int = 0) -> Path:
    """Encode `frames` frames whose brightness encodes the frame number (so decoded order is checkable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 60, (height, width, 3), dtype=np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        for i in range(frames):
            level = int(40 + 180 * i / max(frames - 1, 1))
            image = np.clip(texture.astype(np.int16) + level, 0, 255).astype(np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path


def write_timed_video(path: Path, pts: list[int], time_base: Fraction = Fraction(1, 1000), width: int = 64,
                      height: int = 48, codec: str = "libx264", codec_tag: str | None = None) -> Path:
    """Encode one frame at each time in `pts` (× time_base), brightness rising per frame.

    Irregular gaps give a variable-frame-rate video; `codec_tag` sets the FourCC the container
    records (e.g. "XVID" for mpeg4 in AVI, as UCF-101's clips are).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)  # the nominal rate; the frames keep their own times
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = time_base
        if codec_tag:
            stream.codec_context.codec_tag = codec_tag
        for i, t in enumerate(pts):
            image = np.full((height, width, 3), int(30 + 200 * i / max(len(pts) - 1, 1)), np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = t, time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def write_audio_only(path: Path, seconds: float = 1.0, rate: int = 16000) -> Path:
    """A container with one AAC audio stream and no video stream (a soundtrack saved as .mp4)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=rate)
        for i in range(int(seconds * rate) // 1024):
            tone = np.sin(np.arange(i * 1024, (i + 1) * 1024) * 2 * np.pi * 440 / rate).astype(np.float32)
            frame = av.AudioFrame.from_ndarray(tone[None], format="fltp", layout="mono")
            frame.sample_rate, frame.pts = rate, i * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


@pytest.fixture
def ucf_mini() -> Path:
    if not (UCF_MINI / "UCF-101").is_dir():
        pytest.skip(f"real UCF-101 clips not found at {UCF_MINI} (../shared is absent)")
    return UCF_MINI


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """A fresh git + DVC checkout of the project's tracked files, as a user's clone would be."""
    dest = tmp_path / "repo"
    listing = ["git", "ls-files", "--cached", "--others", "--exclude-standard"]
    files = subprocess.run(listing, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for name in files.splitlines():
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "clone"]):
        subprocess.run(cmd, cwd=dest, check=True)
    return dest
