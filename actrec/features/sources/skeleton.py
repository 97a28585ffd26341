"""NTU skeletons as a feature source beside the CNN: per-frame joint vectors instead of backbone features.

`extract.backbone: skeleton` reads each clip's .skeleton file (data/ntu.py) into 2 bodies × 25 joints
× xyz, centred per frame on the first body's middle-of-spine joint, zero where a body is absent, and
samples T frames exactly as a video's are sampled (data/sampling.sample_indices). The vectors go to the
same feature cache and file as CNN features, so every head, the probe, train, evaluate, crossval and
predict take them unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from actrec.data.clips import VideoError
from actrec.data.ntu_skeleton import BODIES, JOINTS, SKELETON, SPINE, read_skeleton
from actrec.data.sampling import sample_indices
from actrec.features.engine_trial import EngineChoice
from actrec.features.sources.base import Embedder, FeatureReader, FeatureSource, Precomputed
from actrec.runtime import Runtime

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


class SkeletonFiles(FeatureReader):
    """Reads one .skeleton file's sampled joint vectors per item: the features themselves."""

    def read(self, path: str, seed: int) -> tuple[torch.Tensor, np.ndarray]:
        try:
            feats, indices = skeleton_clip(path, self.frames, self.views, seed)
        except OSError as err:
            raise VideoError(f"cannot read: {err.strerror or err}") from err
        return torch.from_numpy(feats), indices


class SkeletonSource(FeatureSource):
    """NTU's skeleton joints as features: read, not computed, so no network and no engine."""

    name = SKELETON
    frames_refusal = "a model trained on NTU skeletons predicts whole .skeleton files, not frames of a video"

    @classmethod
    def build(
        cls, name: str, weights: str | None, image_size: int | str = "auto", clip_len: int | str = "auto"
    ) -> SkeletonSource:
        return cls()

    @property
    def feature_dim(self) -> int:
        return FEATURE_DIM

    def identity(self) -> dict[str, str]:
        return {"weights_id": "none", "preprocessing": "{}"}

    def clips(
        self,
        paths: Sequence[str],
        keys: Sequence[str],
        runtime: Runtime,
        embedder: Embedder,
        *,
        frames: int,
        views: int,
        seed: int,
        sampling: str = "uniform",
        stride: int = 1,
    ) -> SkeletonFiles:
        """Sampled as data/sampling.sample_indices samples T frames uniformly (extract.sampling applies to videos)."""
        return SkeletonFiles(paths, keys, frames, views, seed)

    def embedder(self, runtime: Runtime, frames: int, choice: EngineChoice | None = None) -> Precomputed:
        return Precomputed()
