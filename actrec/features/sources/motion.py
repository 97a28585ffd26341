"""The motion stream as a feature source: HOF and MBH of dense optical flow at each sampled frame (features/motion).

`extract.motion: hofmbh` joins it to the appearance source (sources/joined.py: both features per time step,
side by side); `extract.backbone: hofmbh` makes it the only one. Each DataLoader worker decodes every sampled
frame with the frame after it (its `window`) and describes the flow between them on its CPU core: no network,
no weights, nothing on the device, so the features come out of the reader and the embedder only hands them on.
Windows along a long video and live streams give it the same pairs of frames (`embed_frames`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict

import numpy as np
import torch

from actrec.data.decoding import read_clip
from actrec.errors import ActrecError
from actrec.features.engine_trial import EngineChoice
from actrec.features.motion import FlowDescriptor, MotionSettings
from actrec.features.sources.base import Embedder, ExportNetwork, FeatureReader, FeatureSource, Precomputed
from actrec.runtime import Runtime

# The measured descriptor each name stands for (benchmarks/bench_motion.py; docs/features.md, Motion).
MOTION = {"hofmbh": MotionSettings()}  # Farnebäck, 160 px, grids 1×1 + 2×2 + 3×3, 8 bins, one pair: 353-d


class FlowClips(FeatureReader):
    """Reads each sampled frame and the ones after it, and describes their flow, in the worker."""

    def __init__(self, *args, settings: MotionSettings, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.settings = settings
        self._describe: FlowDescriptor | None = None  # made in the worker: OpenCV's flow objects do not pickle

    def read(self, path: str, seed: int) -> tuple[torch.Tensor, np.ndarray]:
        window = self.settings.window
        frames, indices = read_clip(path, self.frames, self.views, seed, self.sampling, self.stride, window=window)
        self._describe = self._describe or FlowDescriptor(self.settings)
        steps = frames.reshape(self.views, self.frames, window.length, *frames.shape[1:])
        return torch.from_numpy(np.stack([self._describe(view) for view in steps]).astype(np.float16)), indices


class MotionSource(FeatureSource):
    """Optical-flow histograms per sampled frame: computed where clips are decoded, from no weights."""

    def __init__(self, name: str) -> None:
        self.name, self.settings = name, MOTION[name]
        self.window = self.settings.window
        self._describe: FlowDescriptor | None = None

    @classmethod
    def build(
        cls, name: str, weights: str | None = None, image_size: int | str = "auto", clip_len: int | str = "auto"
    ) -> MotionSource:
        return cls(name)

    @property
    def feature_dim(self) -> int:
        return self.settings.feature_dim

    def identity(self) -> dict[str, str]:
        return {"weights_id": "none", "preprocessing": json.dumps({"motion": asdict(self.settings)}, sort_keys=True)}

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
    ) -> FlowClips:
        return FlowClips(paths, keys, frames, views, seed, sampling=sampling, stride=stride, settings=self.settings)

    def embedder(self, runtime: Runtime, frames: int, choice: EngineChoice | None = None) -> Precomputed:
        return Precomputed()

    def export_network(self) -> ExportNetwork:
        raise ActrecError(
            f"{self.name} features are OpenCV's optical flow, which no ONNX or TorchScript graph holds: export the "
            "head alone (without --with-backbone) and compute them as features/motion.py does"
        )

    def embed_frames(self, embedder: Embedder, frames: np.ndarray) -> np.ndarray:
        """The flow of each sampled frame to the frames after it, (n, pairs + 1, H, W, 3) → (n, D)."""
        self._describe = self._describe or FlowDescriptor(self.settings)
        return self._describe(frames).astype(np.float16)
