"""Which frames of a clip to take: the frame indices of T uniform segments' centres (jittered for further
views) or of a strided run, as MMAction2's SampleFrames chooses them, apart from any decoder (which
actrec.data.decoding reads). Indices count frames as a player shows them, from 0 to the clip's frame count.
"""

from __future__ import annotations

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
