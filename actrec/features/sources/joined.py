"""Several feature sources side by side: an appearance source and the motion stream, one feature per time step.

`extract.motion` names a source joined to the one `extract.backbone` names: at each of the K·T sampled frames
the two features are concatenated, so every head and the probe read them as one (N, K, T, D₁ + D₂) sequence,
unchanged. Each part keeps its own feature cache (the extract stage fills them one by one, `parts()`), so
adding motion to features already extracted runs only the motion stream. For `actrec predict` the joined
source reads each clip through every part's reader and concatenates what their embedders give; for windows
along a video and live streams, each sampled frame comes with every part's window of frames, one after the
other (`context`), and each part embeds its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from actrec.errors import ActrecError
from actrec.features.engine_trial import EngineChoice
from actrec.features.sources.base import ClipBatch, ClipReader, Embedder, ExportNetwork, FeatureSource, Item
from actrec.runtime import Runtime

if TYPE_CHECKING:
    from actrec.features.backbones import Backbone


@dataclass
class JoinedBatch:
    """Every part's batch of the same clips (a clip that one part cannot read fails for all)."""

    positions: list[int]
    frame_indices: list[np.ndarray | None]
    errors: list[str]
    parts: list[ClipBatch]

    def pin_memory(self) -> JoinedBatch:
        return replace(self, parts=[p.pin_memory() if hasattr(p, "pin_memory") else p for p in self.parts])


class JoinedReader(ClipReader):
    """Each part's reader on the same clip, in the worker; they sample the same frames (one rule, one seed)."""

    def __init__(self, readers: list[ClipReader]) -> None:
        first = readers[0]
        super().__init__(
            first.paths, first.keys, first.frames, first.views, first.seed, sampling=first.sampling, stride=first.stride
        )
        self.readers = readers

    def read(self, path: str, seed: int) -> tuple[tuple, np.ndarray]:
        parts = [reader.read(path, seed) for reader in self.readers]
        return tuple(data for data, _ in parts), parts[0][1]

    def collate(self, items: list[Item]) -> JoinedBatch:
        parts = [
            reader.collate([(i, None if data is None else data[p], idx, err) for i, data, idx, err in items])
            for p, reader in enumerate(self.readers)
        ]
        return JoinedBatch(
            [i for i, _, _, _ in items],
            [indices for _, _, indices, _ in items],
            [error for _, _, _, error in items],
            parts,
        )


class JoinedEmbedder:
    """Each part's embedder on its batch, the features of each frame concatenated in the parts' order."""

    def __init__(self, embedders: list[Embedder]) -> None:
        self.embedders = embedders

    @property
    def engine(self) -> str:
        return self.embedders[0].engine

    def __call__(self, batch: JoinedBatch) -> torch.Tensor:
        outs = [embed(part).flatten(0, -2).float() for embed, part in zip(self.embedders, batch.parts, strict=True)]
        return torch.cat(outs, dim=-1)


class JoinedSource(FeatureSource):
    """Its parts' features side by side; it is named, and runs its network, as its first part."""

    def __init__(self, parts: list[FeatureSource]) -> None:
        self._parts = parts
        self.name, self.weights_file = parts[0].name, parts[0].weights_file
        self.frames_refusal = next((p.frames_refusal for p in parts if p.frames_refusal), "")

    def parts(self) -> list[FeatureSource]:
        return list(self._parts)

    @property
    def random_init(self) -> bool:
        return any(p.random_init for p in self._parts)

    @property
    def feature_dim(self) -> int:
        return sum(p.feature_dim for p in self._parts)

    def identity(self) -> dict[str, str]:
        """The first part's weights and preprocessing record, the others' records added to it."""
        ids = [p.identity() for p in self._parts]
        record = {}
        for i in ids:
            record.update(json.loads(i["preprocessing"]))
        weights = " + ".join(dict.fromkeys(i["weights_id"] for i in ids if i["weights_id"] != "none")) or "none"
        return {"weights_id": weights, "preprocessing": json.dumps(record, sort_keys=True)}

    def choose(
        self, runtime: Runtime, engine: str, precision: str, frames_for: Callable[[str, str], int]
    ) -> EngineChoice:
        return self._parts[0].choose(runtime, engine, precision, frames_for)

    def clips(
        self,
        paths: Sequence[str],
        keys: Sequence[str],
        runtime: Runtime,
        embedder: JoinedEmbedder,
        *,
        frames: int,
        views: int,
        seed: int,
        sampling: str = "uniform",
        stride: int = 1,
    ) -> JoinedReader:
        how = {"frames": frames, "views": views, "seed": seed, "sampling": sampling, "stride": stride}
        return JoinedReader(
            [p.clips(paths, keys, runtime, e, **how) for p, e in zip(self._parts, embedder.embedders, strict=True)]
        )

    def embedder(self, runtime: Runtime, frames: int, choice: EngineChoice | None = None) -> JoinedEmbedder:
        parts = enumerate(self._parts)
        return JoinedEmbedder([p.embedder(runtime, frames, choice if i == 0 else None) for i, p in parts])

    def image_backbone(self) -> Backbone:
        """The first part's: the network whose engine is chosen (choose), the others running none."""
        return self._parts[0].image_backbone()

    def context(self, indices: np.ndarray, total: int | None, fps: float) -> np.ndarray:
        """Every part's window of frames at each sampled frame, one after the other."""
        return np.concatenate([p.context(indices, total, fps) for p in self._parts], axis=-1)

    def embed_frames(self, embedder: JoinedEmbedder, frames: np.ndarray) -> np.ndarray:
        ends = np.cumsum([p.window.length for p in self._parts])[:-1]
        parts = zip(self._parts, embedder.embedders, np.split(frames, ends, axis=1), strict=True)
        return np.concatenate([p.embed_frames(e, part) for p, e, part in parts], axis=-1)

    def export_network(self) -> ExportNetwork:
        for part in self._parts:
            part.export_network()  # a part without a network says why
        raise ActrecError("features of sources side by side export as the head alone (without --with-backbone)")

    def preparation(self) -> dict[str, Any]:
        """The first part's preparation, and each other part's under its name."""
        first, *others = self._parts
        return {**first.preparation(), **{p.name: p.preparation() for p in others}}
