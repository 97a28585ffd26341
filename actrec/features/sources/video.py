"""torchvision's video classifiers as a feature source: one feature per window of frames around each sampled frame.

`extract.backbone` names the builder (`r3d_18`, `mc3_18`, `r2plus1d_18`, `s3d`, `mvit_v2_s`, `swin3d_t` …);
`extract.weights` its Kinetics-400 weights (`kinetics400`: the builder's default; or an enum member such as
`KINETICS400_V1`), a local weights file, or null (random init, tests only). Each of the K·T sampled frames
becomes a window of `clip_len` frames centred on it (data.sampling.Window), taken at the frame rate the weights
were evaluated at (torchvision's docs: 15 frames/s for most, 7.5 for MViT), so the sequence the heads read is T
windows' features and the feature file stays (N, K, T, D), D read from the model (512 for the ResNet-18
family, 1024 for S3D, 768 for MViT-v2-S and Swin3D-T). Frames are prepared as the weights' own transforms
prepare them (VideoClassification: resize, centre crop, mean/std), resized in the decoding workers; the
network runs on the device, eager torch, in the precision of the runtime.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from actrec.data.decoding import read_clip
from actrec.data.sampling import Window
from actrec.devices import resolve_precision
from actrec.features.backbones.base import BackboneError, file_identity, is_file, local_file, read_state_dict
from actrec.features.backbones.torchvision import load_trunk, published_weights
from actrec.features.engine_trial import EngineChoice
from actrec.features.sources.base import ClipReader, ExportNetwork, FeatureSource, Item
from actrec.features.sources.image import DecodedBatch
from actrec.runtime import Runtime

# Windows longer than this are cut to it under clip_len `auto` (S3D's weights were evaluated on 128-frame clips).
MAX_AUTO_CLIP = 32
HEADS = {"s3d": "classifier.1"}  # a 1×1×1 convolution; every other model's classifier is its last linear layer
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class WindowPreprocessing:
    """How a video model's windows are prepared, as its weights' VideoClassification transform does it."""

    resize: tuple[int, ...]  # (short side) or (height, width), as torchvision's resize takes it
    crop: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    clip_len: int  # frames per window
    frame_rate: float  # frames per second within a window (the video's own rate where it is lower)

    @property
    def window(self) -> Window:
        return Window(self.clip_len, self.frame_rate)

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "crop_size": self.crop}, sort_keys=True)

    def prepare(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 (n, H, W, 3) frames → uint8 (n, 3, S, S), resized and centre cropped."""
        images = TF.resize(frames.permute(0, 3, 1, 2), list(self.resize), InterpolationMode.BILINEAR, antialias=True)
        return TF.center_crop(images, [self.crop, self.crop])


class VideoNetwork(nn.Module):
    """The classifier without its classifier layer, on uint8 windows (n, L, 3, S, S) normalised inside: what
    extraction, predictions and an exported model all run."""

    def __init__(self, model: nn.Module, p: WindowPreprocessing) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(p.mean).view(1, 1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(p.std).view(1, 1, 3, 1, 1), persistent=False)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return self.encode((windows.float() / 255 - self.mean) / self.std)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Features (n, D) of normalised windows (n, L, 3, S, S), as the model takes them."""
        return self.model(x.permute(0, 2, 1, 3, 4))  # torchvision's models take (n, 3, L, S, S)


def _documented(doc: str, key: str, default: float) -> float:
    """A figure torchvision's weights docs state ("…, `clip_len=16`."), else `default`."""
    found = re.search(rf"{key}=([\d.]+)", doc)
    return float(found.group(1)) if found else default


def _weights_enum(name: str, weights: str | None) -> Any:
    """The weights enum member extract.weights names (a local file is read as the builder's default is)."""
    import torchvision.models as tvm

    enum = tvm.get_model_weights(name)
    if weights not in (None, "kinetics400") and not is_file(weights) and weights not in enum.__members__:
        raise BackboneError(f"extract.weights = {weights!r}: {name} has no such weights (params check them first)")
    return enum.DEFAULT if weights in (None, "kinetics400") or is_file(weights) else enum[weights]


class VideoModel:
    """The network without its classifier, its preprocessing and the identity of its weights."""

    def __init__(self, name: str, weights: str | None, image_size: int | str, clip_len: int | str) -> None:
        import torchvision.models as tvm

        chosen = _weights_enum(name, weights)
        t = chosen.transforms()
        scale = 1.0 if image_size == "auto" else int(image_size) / t.crop_size[0]
        doc = chosen.meta.get("_docs", "")
        length = int(clip_len) if clip_len != "auto" else min(int(_documented(doc, "clip_len", 16)), MAX_AUTO_CLIP)
        self.preprocessing = WindowPreprocessing(
            tuple(round(s * scale) for s in t.resize_size),
            round(t.crop_size[0] * scale),
            tuple(t.mean),
            tuple(t.std),
            length,
            _documented(doc, "frame_rate", 15.0),
        )
        self.name = name
        model = tvm.get_model(name, weights=None)
        head = HEADS.get(name) or [n for n, m in model.named_modules() if isinstance(m, nn.Linear)][-1]
        dropped = model.get_submodule(head)
        self.feature_dim = int(getattr(dropped, "in_features", 0) or dropped.in_channels)
        parent, _, child = head.rpartition(".")
        setattr(model.get_submodule(parent), child, nn.Identity())
        self.weights_id, self.weights_file = "random init", local_file(weights)
        if weights is not None:
            if is_file(weights):
                state, source, self.weights_id = read_state_dict(weights), weights, file_identity(weights)
            else:
                state, source, self.weights_id = published_weights(name, chosen), str(chosen), str(chosen)
            load_trunk(model, state, head, name, source)
        self.network = VideoNetwork(model, self.preprocessing).eval().requires_grad_(False)


class WindowModel(Protocol):
    """What VideoSource reads of a video model (torchvision's VideoModel here, hf_video's HFVideoModel)."""

    name: str
    preprocessing: WindowPreprocessing
    feature_dim: int
    weights_id: str  # "random init…" for random weights
    weights_file: str | None
    network: VideoNetwork


@dataclass
class VideoRunner:
    """The network on a device in a precision, `windows` windows of `length` frames a forward."""

    name: str
    network: VideoNetwork
    device: torch.device
    precision: str
    length: int
    windows: int
    engine: str = "eager"

    def __post_init__(self) -> None:
        self.network.to(self.device)

    def run(self, windows: torch.Tensor) -> torch.Tensor:
        """Features (n, D) float32, on the CPU, of uint8 windows (n, L, 3, S, S); BackboneError, one line, for
        windows the model cannot take (MViT takes 16 frames of 224 px and nothing else, S3D 14 frames at least)."""
        out = []
        with torch.autocast(self.device.type, _DTYPES[self.precision], enabled=self.precision != "fp32"):
            for chunk in windows.to(self.device).split(self.windows):
                try:
                    out.append(self.network(chunk).float())
                except (RuntimeError, ValueError) as err:  # a shape the network's layers refuse
                    length, size, why = chunk.shape[1], chunk.shape[-1], str(err).splitlines()[0]
                    raise BackboneError(
                        f"{self.name} cannot take windows of {length} frames of {size} px ({why}); "
                        "set extract.clip_len and extract.image_size to auto (the sizes its weights were made for)"
                    ) from err
        return torch.cat(out).cpu()

    def __call__(self, batch: DecodedBatch) -> torch.Tensor:
        images = batch.images(self.device, None)  # (n·L, 3, S, S) uint8, prepared in the workers
        return self.run(images.view(-1, self.length, *images.shape[1:]))


class WindowClips(ClipReader):
    """Decodes the window around each sampled frame and prepares its frames, in the worker."""

    def __init__(self, *args, preprocessing: WindowPreprocessing, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.preprocessing = preprocessing

    @property
    def images_per_clip(self) -> int:
        return self.views * self.frames * self.preprocessing.clip_len

    def read(self, path: str, seed: int) -> tuple[torch.Tensor, np.ndarray]:
        p = self.preprocessing
        frames, indices = read_clip(path, self.frames, self.views, seed, self.sampling, self.stride, window=p.window)
        return p.prepare(torch.from_numpy(frames)).contiguous(), indices

    def collate(self, items: list[Item]) -> DecodedBatch:
        good = [images for _, images, _, _ in items if images is not None]
        return DecodedBatch(
            [i for i, _, _, _ in items],
            torch.cat([x.reshape(-1) for x in good]) if good else None,
            [(len(x), x.shape[2], x.shape[3]) for x in good],
            [indices for _, _, indices, _ in items],
            [error for _, _, _, error in items],
            resized=True,
            channels_last=False,
        )


class VideoSource(FeatureSource):
    """A video classifier's feature of the window of frames around each sampled frame."""

    def __init__(self, video: WindowModel) -> None:
        self.video, self.name, self.weights_file = video, video.name, video.weights_file
        self.window = video.preprocessing.window

    @classmethod
    def build(
        cls, name: str, weights: str | None, image_size: int | str = "auto", clip_len: int | str = "auto"
    ) -> VideoSource:
        # Random init is seeded, so extraction, a resumed extraction and predict all get the same network.
        with torch.random.fork_rng():
            torch.manual_seed(0)
            return cls(VideoModel(name, weights, image_size, clip_len))

    @property
    def feature_dim(self) -> int:
        return self.video.feature_dim

    @property
    def random_init(self) -> bool:
        return self.video.weights_id.startswith("random init")

    def identity(self) -> dict[str, str]:
        return {"weights_id": self.video.weights_id, "preprocessing": self.video.preprocessing.to_json()}

    def choose(
        self, runtime: Runtime, engine: str, precision: str, frames_for: Callable[[str, str], int]
    ) -> EngineChoice:
        """Eager torch, in fp32 on a CPU and in the GPU's native reduced precision (extract.precision `auto`)."""
        chosen = "fp32" if runtime.device.type == "cpu" and precision == "auto" else precision
        return EngineChoice("eager", resolve_precision(chosen, runtime.device), "given")

    def clips(
        self,
        paths: Sequence[str],
        keys: Sequence[str],
        runtime: Runtime,
        embedder: VideoRunner,
        *,
        frames: int,
        views: int,
        seed: int,
        sampling: str = "uniform",
        stride: int = 1,
    ) -> WindowClips:
        p = self.video.preprocessing
        return WindowClips(paths, keys, frames, views, seed, sampling=sampling, stride=stride, preprocessing=p)

    def embedder(self, runtime: Runtime, frames: int, choice: EngineChoice | None = None) -> VideoRunner:
        length = self.window.length
        return VideoRunner(
            self.name,
            self.video.network,
            runtime.device,
            runtime.precision,
            length,
            max(1, runtime.batch_size // length),
        )

    @torch.inference_mode()
    def embed_frames(self, embedder: VideoRunner, frames: np.ndarray) -> np.ndarray:
        """Each sampled frame's window (n, L, H, W, 3), prepared here as the workers prepare it, → (n, D)."""
        images = self.video.preprocessing.prepare(torch.from_numpy(frames.reshape(-1, *frames.shape[2:])))
        return embedder.run(images.view(len(frames), -1, *images.shape[1:])).numpy().astype(np.float16)

    def export_network(self) -> ExportNetwork:
        crop = self.video.preprocessing.crop
        return ExportNetwork(self.video.network, (self.window.length, 3, crop, crop))
