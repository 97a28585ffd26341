"""Shared fixtures: real videos written with PyAV, the real UCF-101 clips in ../shared, a repo copy."""

from __future__ import annotations

import shutil
import subprocess
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
