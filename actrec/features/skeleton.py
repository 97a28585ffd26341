"""NTU skeletons as a feature source beside the CNN: per-frame joint vectors instead of backbone features.

`extract.backbone: skeleton` reads each clip's .skeleton file (data/ntu.py) into 2 bodies × 25 joints
× xyz, centred per frame on the first body's middle-of-spine joint, zero where a body is absent, and
samples T frames exactly as a video's are sampled (data/sampling.sample_indices). The vectors go to the
same feature cache and file as CNN features, so every head, the probe, train, evaluate, crossval and
predict take them unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from actrec.data.clips import VideoError
from actrec.data.ntu_skeleton import BODIES, JOINTS, SPINE, read_skeleton
from actrec.data.sampling import sample_indices

FEATURE_DIM = BODIES * JOINTS * 3


def skeleton_vectors(joints: np.ndarray) -> np.ndarray:
    """(frames, 2, 25, 3) joints → (frames, 150) vectors, centred on the first body's spine joint.

    A frame without the first body is centred on its spine in the nearest frame that has it; a body
    absent from a frame stays zero there (no centre is subtracted from nothing).
    """
    present = joints.any(axis=(2, 3))  # (frames, bodies)
    if not present[:, 0].any():
        raise VideoError("no body in any frame (a sample with missing skeletons)")
    seen = np.flatnonzero(present[:, 0])
    nearest = seen[np.abs(np.arange(len(joints))[:, None] - seen[None, :]).argmin(axis=1)]
    centre = joints[nearest, 0, SPINE]  # (frames, 3)
    centred = (joints - centre[:, None, None, :]) * present[:, :, None, None]
    return centred.reshape(len(joints), FEATURE_DIM)


def skeleton_clip(path: str | Path, frames: int, views: int, seed: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Features float16 (views, frames, 150) and frame indices (views, frames) of one .skeleton file."""
    vectors = skeleton_vectors(read_skeleton(path))
    indices = sample_indices(len(vectors), frames, views, seed)
    return vectors[indices].astype(np.float16), indices


def skeleton_features(
    paths: Sequence[str], seeds: Sequence[int], *, frames: int, views: int
) -> Iterator[tuple[int, np.ndarray | None, np.ndarray | None, str]]:
    """(index, features, frame indices, error) per file, as features.extractor.extract_features yields them
    for videos: a file that cannot be read carries its reason instead of raising."""
    for i, (path, seed) in enumerate(zip(paths, seeds, strict=True)):
        try:
            feats, indices = skeleton_clip(path, frames, views, seed)
        except (VideoError, OSError) as err:
            yield i, None, None, str(err) if isinstance(err, VideoError) else f"cannot read: {err.strerror or err}"
        else:
            yield i, feats, indices, ""
