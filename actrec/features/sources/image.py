"""Frames through an image backbone: the feature source of every frame network (features/backbones).

DataLoader workers decode, sample and (on a CPU) resize clips, and hand each batch over as one uint8 buffer:
one message and, for a GPU, one pinned copy per batch rather than per clip. In GPU runs the workers send
the decoded frames as they are and the GPU resizes and crops them, which leaves the workers' cores to
decoding alone (`extract.resize_on`, Runtime.resize_on). The backbone runs by the engine and in the
precision the engine trial measured (engine_trial), or, without a trial, by the rule of
engines.resolve_engine; each of the K·T frames gives one feature.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from actrec.data.decoding import read_clip
from actrec.features.backbones import Backbone, load_backbone
from actrec.features.engine_trial import EngineChoice, choose
from actrec.features.engines import RUNTIMES, BackboneRunner, resolve_engine
from actrec.features.sources.base import ClipReader, ExportNetwork, FeatureSource, Item
from actrec.runtime import Runtime


@dataclass
class DecodedBatch:
    """The clips one worker decoded for one batch, their frames back to back in one flat uint8 buffer.

    Each readable clip's frames are (n, H, W, 3) decoded frames when `resized` is False, else images
    resized and cropped to (n, 3, S, S), stored channels-last (as torch's kernels take them) or
    channels-first (as the CPU runtimes take them) per `channels_last`.
    """

    positions: list[int]  # the clips' positions in the dataset, in order
    frames: torch.Tensor | None  # flat uint8 buffer of every readable clip's frames; None if none is
    shapes: list[tuple[int, int, int]]  # per readable clip: (n, H, W) of its frames in the buffer
    frame_indices: list[np.ndarray | None]  # per clip: (K, T) indices, None when it failed
    errors: list[str]  # per clip: "" or why it could not be read
    resized: bool
    channels_last: bool

    def pin_memory(self) -> DecodedBatch:
        """Called by the DataLoader's pinning thread (pin_memory=True, on CUDA): page-locked, the buffer copies
        to the GPU asynchronously. Without this method the loader would hand the dataclass over unpinned."""
        return self if self.frames is None else replace(self, frames=self.frames.pin_memory())

    def images(self, device: torch.device, backbone: Backbone) -> torch.Tensor:
        """uint8 (N, 3, S, S) on `device`, the readable clips' images in order: one copy of the buffer there,
        then views of it, resized and cropped there when the workers did not."""
        flat = self.frames.to(device, non_blocking=True)
        parts, offset = [], 0
        for n, height, width in self.shapes:
            size = n * height * width * 3
            chunk = flat[offset : offset + size]
            offset += size
            if not self.resized:
                parts.append(backbone.preprocess(chunk.view(n, height, width, 3)))
            elif self.channels_last:
                parts.append(chunk.view(n, height, width, 3).permute(0, 3, 1, 2))
            else:
                parts.append(chunk.view(n, 3, height, width))
        return parts[0] if len(parts) == 1 else torch.cat(parts)


class ClipDataset(ClipReader):
    """Decodes and (with `resize`) preprocesses one video's K·T frames per item."""

    def __init__(
        self,
        paths: Sequence[str],
        keys: Sequence[str],
        backbone: Backbone,
        frames: int,
        views: int,
        seed: int,
        *,
        resize: bool = True,
        channels_last: bool = False,
        decoder: str = "auto",
        sampling: str = "uniform",
        stride: int = 1,
    ) -> None:
        super().__init__(paths, keys, frames, views, seed, sampling=sampling, stride=stride)
        self.backbone, self.resize, self.channels_last, self.decoder = backbone, resize, channels_last, decoder

    def read(self, path: str, seed: int) -> tuple[torch.Tensor, np.ndarray]:
        frames, indices = read_clip(
            path, self.frames, self.views, seed, self.sampling, self.stride, decoder=self.decoder
        )
        images = torch.from_numpy(frames)
        if self.resize:
            images = self.backbone.preprocess(images)  # (n, 3, S, S), a view of channels-last memory
            images = images.permute(0, 2, 3, 1) if self.channels_last else images
        return images.contiguous(), indices

    def collate(self, items: list[Item]) -> DecodedBatch:
        good = [images for _, images, _, _ in items if images is not None]
        shapes = [
            (len(x), x.shape[2], x.shape[3]) if self.resize and not self.channels_last else x.shape[:3] for x in good
        ]
        return DecodedBatch(
            [i for i, _, _, _ in items],
            torch.cat([x.reshape(-1) for x in good]) if good else None,
            [tuple(int(d) for d in shape) for shape in shapes],
            [indices for _, _, indices, _ in items],
            [error for _, _, _, error in items],
            self.resize,
            self.channels_last,
        )


class BackboneEmbedder:
    """A batch's decoded frames through the backbone's runner, `runner.batch_size` images a forward."""

    def __init__(self, runner: BackboneRunner) -> None:
        self.runner = runner

    @property
    def engine(self) -> str:
        return self.runner.engine  # eager once the chosen engine failed

    def __call__(self, batch: DecodedBatch) -> torch.Tensor:
        images = batch.images(self.runner.device, self.runner.backbone)
        return torch.cat([self.runner(chunk) for chunk in images.split(self.runner.batch_size)]).cpu()


class Normalised(nn.Module):
    """The backbone's network on uint8 images (n, 3, S, S) normalised inside: what a model exports with."""

    def __init__(self, backbone: Backbone) -> None:
        super().__init__()
        self.backbone, self.net = backbone, backbone.model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(self.backbone.normalize(images))


class ImageSource(FeatureSource):
    """An image backbone's feature of each sampled frame."""

    def __init__(self, backbone: Backbone) -> None:
        self.backbone, self.name, self.weights_file = backbone, backbone.name, backbone.weights_file

    @classmethod
    def build(
        cls, name: str, weights: str | None, image_size: int | str = "auto", clip_len: int | str = "auto"
    ) -> ImageSource:
        return cls(load_backbone(name, weights, image_size))

    @property
    def feature_dim(self) -> int:
        return self.backbone.feature_dim

    @property
    def random_init(self) -> bool:
        return self.backbone.weights_id == "random init"

    def identity(self) -> dict[str, str]:
        return {"weights_id": self.backbone.weights_id, "preprocessing": self.backbone.preprocessing.to_json()}

    def choose(
        self, runtime: Runtime, engine: str, precision: str, frames_for: Callable[[str, str], int]
    ) -> EngineChoice:
        """Given, from the cache, by the static rule for a short run, or measured (engine_trial.choose)."""
        return choose(self.backbone, runtime.device, runtime.batch_size, engine, precision, frames_for)

    def clips(
        self,
        paths: Sequence[str],
        keys: Sequence[str],
        runtime: Runtime,
        embedder: BackboneEmbedder,
        *,
        frames: int,
        views: int,
        seed: int,
        sampling: str = "uniform",
        stride: int = 1,
    ) -> ClipDataset:
        """Frames laid out as the engine takes them: channels-first for the CPU runtimes, channels-last for torch."""
        return ClipDataset(
            paths,
            keys,
            self.backbone,
            frames,
            views,
            seed,
            resize=runtime.resize_on == "workers",
            channels_last=embedder.engine not in RUNTIMES,
            sampling=sampling,
            stride=stride,
        )

    def embedder(self, runtime: Runtime, frames: int, choice: EngineChoice | None = None) -> BackboneEmbedder:
        if choice is not None and choice.runner is not None:
            return BackboneEmbedder(choice.runner)
        device, precision = runtime.device, runtime.precision
        engine = choice.engine if choice is not None else resolve_engine(runtime.engine, device, precision, frames)
        return BackboneEmbedder(BackboneRunner(self.backbone, device, precision, runtime.batch_size, engine))

    def image_backbone(self) -> Backbone:
        return self.backbone

    def export_network(self) -> ExportNetwork:
        return ExportNetwork(Normalised(self.backbone), (3, self.backbone.image_size, self.backbone.image_size))

    def preparation(self) -> dict[str, Any]:
        """How frames are resized, cropped and normalised for the backbone, as its library does it."""
        p = self.backbone.preprocessing
        return {
            ("resize" if p.squash else "resize_short_side"): p.resize_size,
            "interpolation": p.interpolation,
            "center_crop": p.crop_size,
            "mean": p.mean,
            "std": p.std,
        }

    @torch.inference_mode()
    def embed_frames(self, embedder: BackboneEmbedder, frames: np.ndarray) -> np.ndarray:
        images = self.backbone.preprocess(torch.from_numpy(frames[:, 0]))  # each window is its sampled frame
        run = embedder.runner
        out = [run(chunk.to(run.device)).cpu() for chunk in images.split(run.batch_size)]
        return torch.cat(out).numpy().astype(np.float16)
