"""Predictions on videos the dataset never held: one video, many, or windows along a long one.

A Predictor is the trained head plus the feature source its features came from (features/sources: an image
backbone, NTU skeletons, ...), sampling as the run recorded it (T frames, K views, seed, precision), so a new
clip is seen exactly as a test clip was. Many clips go through features.extractor.extract_features: read ahead
by a worker, run through the source's network in batches, a clip that cannot be read reported instead of
raised. Its runtime (device, precision, batch size, workers) is resolved once, when it is loaded.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from actrec.data import decoding
from actrec.data.clips import VideoError, fingerprint
from actrec.data.decoding import video_info
from actrec.data.sampling import sample_indices
from actrec.errors import ActrecError
from actrec.features.backbones.base import is_file
from actrec.features.extractor import extract_features
from actrec.features.sources import Embedder, FeatureSource, build_source
from actrec.features.store import RESOLVED_SETTINGS, differing_settings
from actrec.inference.inputs import Span
from actrec.model.checkpoint import Checkpoint, load_model
from actrec.model.proba import predict_proba
from actrec.runtime import Runtime

logger = logging.getLogger(__name__)

# Frames decoded at once for windows: bounds memory on long or large videos (64 HD frames ≈ 400 MB).
DECODE_CHUNK = 64


@dataclass
class VideoPrediction:
    path: Path
    probs: np.ndarray | None  # (C,) class probabilities; None when the video could not be read
    error: str = ""


def recorded_source(checkpoint: Checkpoint, path: str | Path) -> FeatureSource:
    """The feature source the model's features were extracted with, as the run recorded it (not today's params).

    Refuses a checkpoint whose record and head disagree on the feature size, or whose source now resolves to
    other weights or preprocessing: its head would be fed features from a source it never saw.
    """
    record = checkpoint.features
    missing = [k for k in ("backbone", "weights", "image_size", "frames", "views", "feature_dim") if k not in record]
    if missing:
        raise ActrecError(
            f"model {path} does not record how its features were made ({', '.join(missing)} "
            f"missing); train it again with this version"
        )
    if record["feature_dim"] != checkpoint.input_dim:
        raise ActrecError(
            f"model {path} is inconsistent: its head takes {checkpoint.input_dim}-d features but "
            f"it records {record['feature_dim']}-d {record['backbone']} features"
        )
    weights = record["weights"] or None  # the feature file stores null as ""
    if is_file(record.get("weights_file") or None) and not is_file(weights):
        weights = record["weights_file"]  # a local file named relative to the project, found from elsewhere
    motion, clip_len = record.get("motion") or None, record.get("clip_len", "auto")  # recorded where set
    source = build_source(record["backbone"], weights, record["image_size"], motion, clip_len)
    if source.feature_dim != checkpoint.input_dim:
        raise ActrecError(
            f"model {path} takes {checkpoint.input_dim}-d features but its recorded backbone "
            f"{record['backbone']} gives {source.feature_dim}-d features"
        )
    changed = differing_settings(record, source.identity(), tuple(k for k in RESOLVED_SETTINGS if k in record))
    if changed:
        raise ActrecError(
            f"model {path} was trained on features of other weights or preprocessing than {record['backbone']} "
            f"with extract.weights {weights} gives here (trained ≠ now: {changed}); extract and train again"
        )
    if source.random_init:
        logger.warning(
            "model %s was trained on features of a randomly initialised %s (extract.weights: null); "
            "its predictions on new videos are meaningless",
            path,
            record["backbone"],
        )
    return source


class Predictor:
    """The trained head and the feature source it was trained on, loaded from the run's checkpoint, on a runtime
    resolved once for `device` in the precision the features were recorded in (Runtime.reproducing)."""

    def __init__(self, model_path: str | Path, device: str = "auto") -> None:
        self.model, checkpoint = load_model(model_path)
        record = checkpoint.features
        self.source = recorded_source(checkpoint, model_path)
        self.record, self.head = dict(record), checkpoint.head  # what the run recorded (the page's model panel)
        self.classes: list[str] = list(checkpoint.classes)
        self.frames, self.views = int(record["frames"]), int(record["views"])
        # models recorded before strided sampling sampled uniformly
        self.sampling, self.stride = str(record.get("sampling") or "uniform"), int(record.get("stride") or 1)
        self.seed = int(record.get("seed") or 0)
        self.runtime = Runtime.resolve(device).reproducing(str(record.get("precision") or "fp32"))
        self.runtime.log()
        self._runner: Embedder | None = None

    @property
    def device(self) -> torch.device:
        return self.runtime.device

    @property
    def precision(self) -> str:
        return self.runtime.precision

    def top_k(self, probs: np.ndarray, k: int) -> list[tuple[str, float]]:
        """The k most probable classes with their probabilities, most probable first."""
        order = np.argsort(-probs, kind="stable")[:k]
        return [(self.classes[i], float(probs[i])) for i in order]

    def as_dict(self, result: VideoPrediction, k: int) -> dict:
        """One video's answer as `actrec predict --json` prints it and the page's HTTP API returns it."""
        if result.probs is None:
            return {"video": str(result.path), "error": result.error}
        top = self.top_k(result.probs, k)
        return {
            "video": str(result.path),
            "prediction": top[0][0],
            "probability": round(top[0][1], 4),
            "top_k": [{"class": c, "probability": round(p, 4)} for c, p in top],
        }

    def predict(self, paths: Sequence[Path], num_workers: int = 0) -> Iterator[VideoPrediction]:
        """Class probabilities per video, in order; a video that cannot be read carries its error."""
        keys = []
        for path in paths:  # the extract stage seeds jittered clips (K > 1) by content fingerprint
            try:
                keys.append(fingerprint(path))
            except OSError:
                keys.append(str(path))
        results = extract_features(
            [str(p) for p in paths],
            keys,
            self.source,
            self.runner(len(paths) * self.frames * self.views),
            self.runtime,
            frames=self.frames,
            views=self.views,
            seed=self.seed,
            num_workers=num_workers,
            sampling=self.sampling,
            stride=self.stride,
        )
        for i, feats, _, error in results:
            if error:
                yield VideoPrediction(paths[i], None, error)
            else:
                yield VideoPrediction(paths[i], predict_proba(self.model, feats[None])[0])

    def runner(self, frames: int) -> Embedder:
        """The source's device side, set up once per Predictor for every later video and window, by the engine
        that the first job's `frames` repay (engines.resolve_engine for an image backbone): a single clip
        runs eager, a folder of videos or a long video's windows through a CPU runtime where one is installed."""
        if self._runner is None:
            self._runner = self.source.embedder(self.runtime, frames)
        return self._runner

    def embed(self, frames: np.ndarray) -> np.ndarray:
        """Features (n, D) float16 of n sampled frames, each with its window's frames (context): uint8
        (n, L, H, W, 3), as the extract stage stores them."""
        self._refuse_frames()
        return self.source.embed_frames(self.runner(len(frames)), frames)

    def context(self, indices: np.ndarray, total: int | None, fps: float) -> np.ndarray:
        """(…, L) the frames the features at sampled `indices` are made of (FeatureSource.context): the frame
        itself for an image backbone, a window around it for a video model, the frames after it for motion."""
        return self.source.context(indices, total, fps)

    def _refuse_frames(self) -> None:
        if self.source.frames_refusal:
            raise ActrecError(self.source.frames_refusal)

    def window_offsets(self, length: int) -> np.ndarray:
        """Where in a window of `length` frames its T frames are taken: as a whole clip is sampled (the
        centres of T equal segments, or T frames a stride apart, centred). `windows` and live streams
        (serving.watch) both place frames by it."""
        return sample_indices(length, self.frames, sampling=self.sampling, stride=self.stride)[0]

    def window_indices(self, total: int, length: int, step: int) -> tuple[np.ndarray, np.ndarray]:
        """Starts of the windows of `length` frames every `step` that lie wholly in `total` frames, and the
        frames each samples, (windows, T)."""
        starts = np.arange(0, total - length + 1, step)
        return starts, starts[:, None] + self.window_offsets(length)[None, :]

    def window_table(self, starts: np.ndarray, length: int, fps: float, feats: np.ndarray) -> pd.DataFrame:
        """The head on each window's T features (windows, T, D): start_s, end_s, predicted, probability, one
        column per class, rounded as `actrec predict --window` writes them."""
        probs = predict_proba(self.model, feats[:, None])
        table = pd.DataFrame(
            {
                "start_s": (starts / fps).round(3),
                "end_s": ((starts + length) / fps).round(3),
                "predicted": [self.classes[i] for i in probs.argmax(1)],
                "probability": probs.max(1).round(4),
            }
        )
        return pd.concat([table, pd.DataFrame(probs.round(4), columns=self.classes)], axis=1)

    def windows(
        self,
        path: Path,
        window: Span,
        stride: Span,
        progress: Callable[[float], None] | None = None,
        frame_rate: float = decoding.DEFAULT_FRAME_RATE,
    ) -> pd.DataFrame:
        """Probabilities per window along the video: start_s, end_s, predicted, probability, one column per class.

        Each window is sampled as a whole clip was (window_offsets),
        so a window close to the length of the training clips suits the model best. Windows lie
        wholly inside the video; a video shorter than one window is one window. `progress` hears
        the share of frames embedded so far (the page's progress bar). A folder of frames plays at `frame_rate`.
        """
        self._refuse_frames()
        info = video_info(path, frame_rate)
        if not info.fps > 0:
            raise VideoError("the video does not say its frame rate; cannot place windows in time")
        length, step = min(window.frames(info.fps), info.frames), stride.frames(info.fps)
        starts, indices = self.window_indices(info.frames, length, step)
        unique, inverse = np.unique(indices, return_inverse=True)
        contexts = self.context(unique, info.frames, info.fps)  # (n, L): what each sampled frame's feature reads
        self.runner(len(unique))  # the engine suits the whole video, not its first chunk
        feats = []
        for done, frames in context_frames(path, contexts, DECODE_CHUNK):
            feats.append(self.embed(frames))
            if progress:
                progress(done / len(contexts))
        return self.window_table(starts, length, info.fps, np.concatenate(feats)[inverse.reshape(indices.shape)])


def context_frames(path: Path, contexts: np.ndarray, chunk: int) -> Iterator[tuple[int, np.ndarray]]:
    """(rows so far, uint8 frames (rows, L, H, W, 3)) of successive rows of `contexts` (n, L), rows in ascending
    order: read in one pass (decoding.frame_chunks), about `chunk` new frames a step, each frame decoded once and
    kept only while a later row reads it (windows of neighbouring sampled frames overlap)."""
    groups = np.array_split(np.arange(len(contexts)), math.ceil(len(contexts) * contexts.shape[1] / chunk))
    needed = np.unique(contexts)  # every frame some row reads, ascending
    new, seen = [], -1
    for rows in groups:  # each group reads on to its last frame every frame any row needs there: windows of frames
        top = max(seen, int(contexts[rows].max()))  # taken at a lower rate interleave, and the pass never goes back
        new.append(needed[(needed > seen) & (needed <= top)])
        seen = top
    decoded = decoding.frame_chunks(path, [n for n in new if len(n)])
    kept: dict[int, np.ndarray] = {}
    for rows, fresh in zip(groups, new, strict=True):
        if len(fresh):
            kept.update(zip(fresh.tolist(), next(decoded), strict=True))
        yield int(rows[-1]) + 1, np.stack([[kept[int(i)] for i in row] for row in contexts[rows]])
        after = rows[-1] + 1  # the windows' frames rise with their sampled frame: later rows read from here on
        first = int(contexts[after].min()) if after < len(contexts) else math.inf
        for i in [i for i in kept if i < first]:
            del kept[i]
