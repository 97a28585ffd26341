"""Which frames of a clip to take: the frame indices of T uniform segments' centres (jittered for further
views) or of a strided run, as MMAction2's SampleFrames chooses them, and the window of frames a feature
at each of them is made of (a video model's clip around it, the frames optical flow runs over), apart from
any decoder (which actrec.data.decoding reads). Indices count frames as a player shows them, from 0 to the
clip's frame count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from actrec.data.clips import VideoError


def sample_indices(
    num_frames: int, frames: int, views: int = 1, seed: int | None = None, sampling: str = "uniform", stride: int = 1
) -> np.ndarray:
    """Frame indices of shape (views, frames): spread uniformly over the video, or `strided`.

    Uniform: the video is cut into `frames` equal segments. View 0 takes the centre of each segment (the
    deterministic view evaluation and the K=1 cache use); further views take a random position in
    each segment (TSN-style jitter) from `seed`. A video shorter than `frames` repeats frames.
    Strided: `frames` frames `stride` apart, as a clip of consecutive frames is taken: view 0 centred in the
    video, further views starting anywhere it fits (from `seed`); a video shorter than the span is padded
    with its first and last frames.
    """
    if num_frames < 1:
        raise VideoError("video has no frames")
    out = np.empty((views, frames), dtype=np.int64)
    if sampling == "strided":
        span = (frames - 1) * stride + 1
        starts = np.full(views, (num_frames - span) // 2)
        if views > 1 and num_frames > span:
            starts[1:] = np.random.default_rng(seed).integers(0, num_frames - span + 1, views - 1)
        out[:] = starts[:, None] + np.arange(frames) * stride
        return np.clip(out, 0, num_frames - 1)
    edges = np.arange(frames + 1) * num_frames / frames
    out[0] = np.floor((edges[:-1] + edges[1:]) / 2)
    if views > 1:
        rng = np.random.default_rng(seed)
        out[1:] = np.floor(edges[:-1] + rng.random((views - 1, frames)) * (edges[1:] - edges[:-1]))
    return np.clip(out, 0, num_frames - 1)


def spacing(indices: np.ndarray) -> float:
    """Mean distance between the distinct wanted frames: what reading straight through decodes per frame."""
    unique = np.unique(indices)
    return float(unique[-1] - unique[0] + 1) / len(unique)


@dataclass(frozen=True)
class Window:
    """The frames one feature is made of around its sampled frame: `length` frames, `rate` frames a second apart
    (a video model's own rate: every other frame of a 30 frames/s clip for 15; None: consecutive frames), centred
    on the sampled frame or starting at it (`centred` False: optical flow to the frames after it). The default
    is the sampled frame alone, what an image backbone reads."""

    length: int = 1
    rate: float | None = None
    centred: bool = True

    def step(self, fps: float) -> int:
        """Frames between two of the window's in a clip at `fps` (1 where the clip is no faster than `rate`)."""
        return max(1, round(fps / self.rate)) if self.rate and fps > 0 else 1

    def positions(self, indices: np.ndarray, total: int | None, fps: float) -> np.ndarray:
        """(…, length) frame indices of the window at each of `indices`, in a clip of `total` frames at `fps`: a
        window reaching past either end is moved as a whole to lie inside (the clip's last frame repeated where
        the clip is shorter than the window), so every feature sees as many distinct frames as the clip allows.
        `total` None: a live stream, whose end is not known yet (only its start bounds the window)."""
        span = (self.length - 1) * self.step(fps)
        start = np.asarray(indices) - (span // 2 if self.centred else 0)
        start = np.maximum(start, 0) if total is None else np.clip(start, 0, max(total - 1 - span, 0))
        out = start[..., None] + np.arange(self.length) * self.step(fps)
        return out if total is None else np.minimum(out, total - 1)


FRAME = Window()  # the sampled frame alone
