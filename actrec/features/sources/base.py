"""The feature-source interface: whatever turns a clip into a (K, T, D) sequence of features.

A feature source is one family of features (as video_features' `models/_base` is one base class for every
extractor): frames through an image backbone (`image.py`), NTU's skeleton joints (`skeleton.py`), and
beside them any other family (a video model's windows of frames, an optical-flow motion stream) as a
short subclass. Each says, in one place, everything that differs between families:

- `feature_dim`: D, the width of each of the T features;
- `identity()`: what, beside sampling and precision, changes its numbers (the weights' identity and the
  preprocessing); it keys the feature cache, is recorded in the feature file and the checkpoint, and is
  compared again when a model is loaded to predict;
- `choose()`: the engine and precision its network runs in, which key its feature cache with the rest (image
  backbones measure them: engine_trial, timing the network `image_backbone()` gives);
- `clips()`: a `ClipReader`, the torch Dataset that reads one clip per item inside a DataLoader worker
  (decodes frames, reads a skeleton file, computes flow on the CPU) and joins a batch of them into one
  `ClipBatch`;
- `embedder()`: the device side, an `Embedder` that turns one such batch into features (a backbone's
  engine for images, a 3D network for windows of frames, nothing for precomputed vectors);
- `window`: the frames each feature is made of around its sampled frame (data.sampling.Window: the frame
  alone for an image backbone, a clip around it for a video model, the frames after it for optical flow),
  and `context()`, their indices in a clip;
- `embed_frames()`: features of frames already decoded, one per sampled frame (each with its window's
  frames), for windows along a long video and live streams, and `export_network()`, the network a model
  is exported with (`frames_refusal` says why a source has none, where it has none);
- `parts()`: the sources whose features stand side by side in these (joined.py: appearance and motion),
  each with a feature cache of its own.

The extractor, the feature store, the predictor and the extract stage hold no branch on which source runs:
they call these methods, and `sources.build_source` is the one place a name becomes a source.
"""

from __future__ import annotations

import json
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset

from actrec.data.clips import VideoError
from actrec.data.sampling import FRAME, Window
from actrec.errors import ActrecError
from actrec.features.engine_trial import EngineChoice

if TYPE_CHECKING:
    from torch import nn

    from actrec.features.backbones import Backbone
    from actrec.runtime import Runtime

# What a ClipReader's item is: (position, the clip's data or None, frame indices (K, T) or None, error or "").
Item = tuple[int, Any, np.ndarray | None, str]


def clip_seed(key: str, seed: int) -> int:
    """A per-video seed for jittered views that does not depend on the order videos are visited."""
    return zlib.crc32(key.encode()) ^ seed


class ClipBatch(Protocol):
    """What a ClipReader's collate gives for a batch of clips: per clip its position in the reader, its frame
    indices (K, T) (None when it failed) and why it failed ("" when it did not); the readable clips' data in
    whatever form the source's Embedder takes. DataLoader pins it for a GPU through `pin_memory`."""

    positions: list[int]
    frame_indices: list[np.ndarray | None]
    errors: list[str]


class ClipReader(Dataset, ABC):
    """Reads one clip per item inside a DataLoader worker; a clip that cannot be read becomes its error string,
    never an exception, so one bad file cannot stop a run.

    Each clip is sampled at T `frames` in K `views` (`sampling` and `stride` as extract.sampling and
    extract.stride say), jittered views seeded per clip by `keys` (clip_seed).
    """

    def __init__(
        self,
        paths: Sequence[str],
        keys: Sequence[str],
        frames: int,
        views: int,
        seed: int,
        *,
        sampling: str = "uniform",
        stride: int = 1,
    ) -> None:
        self.paths, self.keys = [str(p) for p in paths], list(keys)
        self.frames, self.views, self.seed, self.sampling, self.stride = frames, views, seed, sampling, stride

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def images_per_clip(self) -> int:
        """Images one clip sends to the device (K·T; K·T windows of a video model's frames: more), by which the
        loader sizes its batches of clips."""
        return self.views * self.frames

    @abstractmethod
    def read(self, path: str, seed: int) -> tuple[Any, np.ndarray]:
        """One clip's data, as collate joins it, and its frame indices (K, T); VideoError when it cannot be read."""

    @abstractmethod
    def collate(self, items: list[Item]) -> ClipBatch:
        """A batch of items, joined in the worker into one ClipBatch (one message to the main process)."""

    def __getitem__(self, i: int) -> Item:
        try:
            data, indices = self.read(self.paths[i], clip_seed(self.keys[i], self.seed))
        except VideoError as err:
            return i, None, None, str(err)
        except Exception as err:  # a decoder bug on one odd file must not end the run
            return i, None, None, f"unexpected {type(err).__name__}: {err}"
        return i, data, indices, ""


class Embedder(Protocol):
    """The device side of a source, set up once: features of a ClipBatch's readable clips, in order, as a tensor
    of K·T features each ((clips·K·T, D) or (clips, K, T, D)). `engine` names what runs it (as reports say)."""

    engine: str

    def __call__(self, batch: Any) -> torch.Tensor: ...


class FeatureSource(ABC):
    """One family of features, named as extract.backbone names it; see the module's docstring."""

    name: str
    weights_file: str | None = None  # the local weights file it loaded, as the feature file records it
    frames_refusal: str = ""  # why it cannot embed decoded frames (windows, live streams); "" where it can
    window: Window = FRAME  # the frames each feature is made of around its sampled frame

    @property
    def random_init(self) -> bool:
        """Whether its network's weights are random (extract.weights: null, tests only): its features mean nothing."""
        return False

    @property
    @abstractmethod
    def feature_dim(self) -> int:
        """D: the width of each feature."""

    @abstractmethod
    def identity(self) -> dict[str, str]:
        """What beside sampling and precision changes its features; the feature cache's key, the feature file
        and a checkpoint hold it (keys `weights_id`: the weights' identity; `preprocessing`: a JSON record
        whose `crop_size` is the frame size the network takes, absent for sources that take no frames)."""

    def parts(self) -> list[FeatureSource]:
        """The sources whose features these are, side by side, each with a feature cache of its own: itself, but
        for a joined source (joined.py: appearance and motion)."""
        return [self]

    def context(self, indices: np.ndarray, total: int | None, fps: float) -> np.ndarray:
        """(…, L) indices of the frames the features at sampled `indices` are made of, in a clip of `total` frames
        (None: a live stream) at `fps`: what `embed_frames` takes with each sampled frame."""
        return self.window.positions(indices, total, fps)

    def choose(
        self, runtime: Runtime, engine: str, precision: str, frames_for: Callable[[str, str], int]
    ) -> EngineChoice:
        """The engine and precision its network runs in, given extract.engine and extract.precision and
        `frames_for(engine, precision)`, the frames still to extract with them (features are cached per engine and
        precision). Without a network (this default), features are what the clips' files hold: nothing runs
        (engine `none`), in fp32."""
        return EngineChoice("none", "fp32", "given")

    @abstractmethod
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
    ) -> ClipReader:
        """The reader of these clips for DataLoader workers, its batches laid out as `embedder` takes them."""

    @abstractmethod
    def embedder(self, runtime: Runtime, frames: int, choice: EngineChoice | None = None) -> Embedder:
        """The device side, on `runtime`'s device in its precision, by the engine `choice` settled on (its runner
        where the trial built one), else by `runtime.engine`, `auto` taking what `frames` frames repay."""

    def embed_frames(self, embedder: Embedder, frames: np.ndarray) -> np.ndarray:
        """Features (n, D) float16 of n sampled frames, each with the frames of its window (`context`), decoded:
        uint8 (n, L, H, W, 3), as extraction stores them: what windows along a video and live streams are made of."""
        raise ActrecError(self.frames_refusal or f"{self.name} features are not made from decoded frames")

    def export_network(self) -> ExportNetwork:
        """The network a model is exported with (export.py), from one prepared input to its feature."""
        raise ActrecError(self.frames_refusal or f"{self.name} features come from no network a graph can hold")

    def image_backbone(self) -> Backbone:
        """The image network whose engines a trial times (engine_trial, `actrec trial`): image backbones alone
        measure their engine and precision."""
        raise ActrecError(f"{self.name} features come from no image backbone")

    def preparation(self) -> dict[str, Any]:
        """How its input is prepared, for a runtime without this project (an exported model's JSON): its identity's
        preprocessing record, unless a source words it otherwise."""
        return json.loads(self.identity()["preprocessing"])


@dataclass
class ExportNetwork:
    """What export.py runs of a source's network: a module from prepared uint8 inputs (n, *shape) (images
    (3, S, S), windows of L images (L, 3, S, S)) to their features (n, D), normalising them inside."""

    module: nn.Module
    shape: tuple[int, ...]


@dataclass
class FeatureBatch:
    """A batch of clips whose reader computed their features in the worker (skeleton vectors, motion
    descriptors): per clip its position, frame indices and error; the readable clips' features (clips, K, T, D)."""

    positions: list[int]
    frame_indices: list[np.ndarray | None]
    errors: list[str]
    features: torch.Tensor | None


class FeatureReader(ClipReader):
    """A ClipReader whose `read` gives each clip's features (K, T, D) themselves, for the Precomputed embedder."""

    def collate(self, items: list[Item]) -> FeatureBatch:
        good = [feats for _, feats, _, _ in items if feats is not None]
        return FeatureBatch(
            [i for i, _, _, _ in items],
            [indices for _, _, indices, _ in items],
            [error for _, _, _, error in items],
            torch.stack(good) if good else None,
        )


class Precomputed:
    """The Embedder of sources whose readers already give the features (FeatureReader): nothing runs."""

    engine = "none"

    def __call__(self, batch: FeatureBatch) -> torch.Tensor:
        return batch.features
