"""The motion descriptors bench_motion compares: the shipped HOF/MBH histograms and two candidates it measured.

Each candidate takes a clip's decoded frames, `window` frames from each sampled frame on (uint8 (T, window, H, W, 3)
per view), and gives that view's descriptors; `encode` then turns every clip's descriptors into (N, K, T, D)
features, knowing which clips train (a candidate whose encoding is learned fits it on those alone):

- HofMbh: actrec.features.motion's histograms on a spatial pyramid of grids, per time step (`extract.motion`);
- FlowImages: the flow from each sampled frame to the next as an image (x and y components around mid-grey,
  magnitude), through the frozen ImageNet EfficientNet-Lite0, as two-stream networks start their flow stream
  from ImageNet weights;
- LocalFisher: HOF and MBH of small patches (2x2 cells of a fine grid) rather than of whole grid cells, encoded
  as improved dense trajectories encode theirs: PCA, a Gaussian mixture fitted on the training clips'
  patches, and one Fisher vector per clip (power- and L2-normalised), the same at each of its time steps.
"""

from __future__ import annotations

import numpy as np
import torch

from actrec.data.sampling import Window
from actrec.features.motion import FlowDescriptor, MotionSettings, grey


class Candidate:
    """What the candidates share: a window of the sampled frame and the next, each view's descriptors stacked as
    they are (a candidate that learns an encoding overrides `encode`), and the flow of a frame pair."""

    window = Window(2, centred=False)

    def encode(self, clips: list[np.ndarray], train: np.ndarray) -> np.ndarray:
        return np.stack(clips)

    @staticmethod
    def pair_flow(flow: FlowDescriptor, pair: np.ndarray) -> np.ndarray:
        """(H, W, 2) flow from the first RGB frame of `pair` to the second, at `flow`'s width and method."""
        a, b = (grey(f, flow.settings.width) for f in pair)
        return flow.flow(a, b)


class HofMbh(Candidate):
    """The motion stream's own descriptor (actrec/features/motion.py)."""

    def __init__(self, settings: MotionSettings) -> None:
        self.describe = FlowDescriptor(settings)
        self.window = settings.window

    def __call__(self, view: np.ndarray) -> np.ndarray:
        return self.describe(view)


class FlowImages(Candidate):
    """Flow images through the ImageNet backbone: (T, 2, H, W, 3) frames → (T, 1280)."""

    bound = 8.0  # px per frame at 160 px wide mapped to the ends of the 8-bit range

    def __init__(self) -> None:
        from actrec.features.backbones import load_backbone

        self.flow = FlowDescriptor(MotionSettings())
        self.backbone = load_backbone("efficientnet_lite0", "imagenet")

    def __call__(self, view: np.ndarray) -> np.ndarray:
        images = []
        for pair in view:
            flow = self.pair_flow(self.flow, pair)
            channels = np.dstack([flow, np.hypot(flow[..., 0], flow[..., 1])]) * (127.5 / self.bound)
            images.append(np.clip(channels + np.array([127.5, 127.5, 0.0]), 0, 255).astype(np.uint8))
        batch = self.backbone.preprocess(torch.from_numpy(np.stack(images)))
        with torch.inference_mode():
            return self.backbone.model(self.backbone.normalize(batch)).numpy()


class LocalFisher(Candidate):
    """Patch HOF/MBH, Fisher-encoded per clip: (T, 2, H, W, 3) frames → (T, patches, 100) descriptors."""

    def __init__(self, grid: int = 8, components: int = 32, dims: int = 32) -> None:
        self.grid, self.components, self.dims = grid, components, dims
        self.histograms = FlowDescriptor(MotionSettings(grids=(grid,)))

    def __call__(self, view: np.ndarray) -> np.ndarray:
        s, g = self.histograms.settings, self.grid
        out = []
        for pair in view:
            raw = self.histograms.raw(self.pair_flow(self.histograms, pair))[: g * g * (3 * s.bins + 1)]
            hof = raw[: g * g * (s.bins + 1)].reshape(g, g, s.bins + 1)
            mbh = raw[g * g * (s.bins + 1) :].reshape(2, g, g, s.bins)
            patches = []
            for part in (hof, mbh[0], mbh[1]):  # each part of a patch: its 2x2 cells' histograms, RootSIFT
                block = np.concatenate([part[:-1, :-1], part[:-1, 1:], part[1:, :-1], part[1:, 1:]], -1)
                block = block.reshape((g - 1) ** 2, -1)
                patches.append(np.sqrt(block / np.maximum(block.sum(1, keepdims=True), 1e-12)))
            out.append(np.concatenate(patches, 1))
        return np.stack(out).astype(np.float32)

    def encode(self, clips: list[np.ndarray], train: np.ndarray) -> np.ndarray:
        from sklearn.decomposition import PCA
        from sklearn.mixture import GaussianMixture

        views = np.stack(clips)  # (N, K, T, patches, 100)
        n, k = views.shape[:2]
        fitted = views[train].reshape(-1, views.shape[-1])
        sample = fitted[np.random.default_rng(0).choice(len(fitted), min(60_000, len(fitted)), replace=False)]
        pca = PCA(self.dims, random_state=0).fit(sample)
        gmm = GaussianMixture(self.components, covariance_type="diag", random_state=0).fit(pca.transform(sample))
        mean, sd, weight = gmm.means_, np.sqrt(gmm.covariances_), gmm.weights_
        vectors = np.empty((n, k, 2 * self.components * self.dims), dtype=np.float32)
        for i in range(n):
            for j in range(k):
                x = pca.transform(views[i, j].reshape(-1, views.shape[-1]))
                posterior = gmm.predict_proba(x)[..., None]  # (patches, components, 1)
                z = (x[:, None] - mean) / sd
                first = (posterior * z).sum(0) / (len(x) * np.sqrt(weight)[:, None])
                second = (posterior * (z**2 - 1)).sum(0) / (len(x) * np.sqrt(2 * weight)[:, None])
                v = np.concatenate([first.ravel(), second.ravel()])
                v = np.sign(v) * np.sqrt(np.abs(v))
                vectors[i, j] = v / max(np.linalg.norm(v), 1e-12)
        return np.repeat(vectors[:, :, None], views.shape[2], axis=2)


VARIANTS = {
    "dis-12": lambda: HofMbh(MotionSettings("dis", grids=(1, 2))),
    "dis-123": lambda: HofMbh(MotionSettings("dis", grids=(1, 2, 3))),
    "farneback-123": lambda: HofMbh(MotionSettings("farneback", grids=(1, 2, 3))),
    "dis-123-p3": lambda: HofMbh(MotionSettings("dis", grids=(1, 2, 3), pairs=3)),
    "flow-lite0": FlowImages,
    "patch-fisher": LocalFisher,
}
