"""Predictions on videos the dataset never held: one video, many, or windows along a long one.

A Predictor is the trained head plus the backbone its features came from, sampling as the run
recorded it (T frames, K views, seed, precision), so a new video is seen exactly as a test clip
was. Many videos go through features.extractor.extract_features: decoded ahead by a worker, run through
the backbone in batches, a video that cannot be read reported instead of raised. A model trained on NTU
skeletons (extract.backbone: skeleton) predicts .skeleton files, read as the extract stage reads them.
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
from actrec.data.ntu_skeleton import SKELETON
from actrec.data.sampling import sample_indices
from actrec.devices import resolve_batch_size, resolve_device, resolve_precision
from actrec.errors import ActrecError
from actrec.features.backbones import Backbone, load_backbone
from actrec.features.backbones.base import is_file
from actrec.features.engines import BackboneRunner, resolve_engine
from actrec.features.extractor import clip_seed, extract_features
from actrec.features.skeleton import skeleton_features
from actrec.features.store import RESOLVED_SETTINGS, differing_settings
from actrec.inference.inputs import Span
from actrec.model.checkpoint import Checkpoint, load_model
from actrec.model.proba import predict_proba

logger = logging.getLogger(__name__)

# Frames decoded at once for windows: bounds memory on long or large videos (64 HD frames ≈ 400 MB).
DECODE_CHUNK = 64


@dataclass
class VideoPrediction:
    path: Path
    probs: np.ndarray | None  # (C,) class probabilities; None when the video could not be read
    error: str = ""


def _runtime_precision(recorded: str, device: torch.device) -> str:
    """The precision the features were extracted in, unless this machine cannot run it natively.

    There fp32 (on CPU) or fp16 (on a GPU without bf16) computes the same features at least as
    exactly, instead of an emulated bf16 several times slower.
    """
    if device.type == "cuda":
        return "fp16" if recorded == "bf16" and not torch.cuda.is_bf16_supported() else recorded
    return recorded if recorded in ("fp32", resolve_precision("auto", device)) else "fp32"


def recorded_backbone(checkpoint: Checkpoint, path: str | Path) -> Backbone:
    """The backbone the model's features were extracted with, as the run recorded it (not today's params).

    Refuses a checkpoint whose record and head disagree on the feature size: its head would
    be fed features from a backbone it never saw.
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
    if record["backbone"] == SKELETON:
        raise ActrecError(f"model {path} was trained on NTU skeletons, not on video frames; it takes .skeleton files")
    weights = record["weights"] or None  # the feature file stores null as ""
    if is_file(record.get("weights_file") or None) and not is_file(weights):
        weights = record["weights_file"]  # a local file named relative to the project, found from elsewhere
    backbone = load_backbone(record["backbone"], weights, record["image_size"])
    if backbone.feature_dim != checkpoint.input_dim:
        raise ActrecError(
            f"model {path} takes {checkpoint.input_dim}-d features but its recorded backbone "
            f"{record['backbone']} gives {backbone.feature_dim}-d features"
        )
    now = {"weights_id": backbone.weights_id, "preprocessing": backbone.preprocessing.to_json()}
    changed = differing_settings(record, now, tuple(k for k in RESOLVED_SETTINGS if k in record))
    if changed:
        raise ActrecError(
            f"model {path} was trained on features of other weights or preprocessing than {record['backbone']} "
            f"with extract.weights {weights} gives here (trained ≠ now: {changed}); extract and train again"
        )
    if weights is None:
        logger.warning(
            "model %s was trained on features of a randomly initialised %s (extract.weights: null); "
            "its predictions on new videos are meaningless",
            path,
            record["backbone"],
        )
    return backbone


class Predictor:
    """The trained head and the backbone it was trained on, loaded from the run's checkpoint."""

    def __init__(self, model_path: str | Path, device: str = "auto") -> None:
        self.model, checkpoint = load_model(model_path)
        record = checkpoint.features
        self.skeletons = record.get("backbone") == SKELETON  # features read from .skeleton files: no backbone
        self.backbone = None if self.skeletons else recorded_backbone(checkpoint, model_path)
        self.record, self.head = dict(record), checkpoint.head  # what the run recorded (the page's model panel)
        self.classes: list[str] = list(checkpoint.classes)
        self.frames, self.views = int(record["frames"]), int(record["views"])
        # models recorded before strided sampling sampled uniformly
        self.sampling, self.stride = str(record.get("sampling") or "uniform"), int(record.get("stride") or 1)
        self.seed = int(record.get("seed") or 0)
        self.device = resolve_device(device)
        self.precision = _runtime_precision(str(record.get("precision") or "fp32"), self.device)
        self.batch_size = resolve_batch_size("auto", self.device)
        self._runner: BackboneRunner | None = None

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
        if self.skeletons:
            seeds = [clip_seed(k, self.seed) for k in keys]
            results = skeleton_features([str(p) for p in paths], seeds, frames=self.frames, views=self.views)
        else:
            results = extract_features(
                [str(p) for p in paths],
                keys,
                self.runner(len(paths) * self.frames * self.views),
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

    def runner(self, frames: int) -> BackboneRunner:
        """The backbone on this device, set up once per Predictor for every later video and window, by
        the engine (engines.resolve_engine) that the first job's `frames` repay: a single clip
        runs eager, a folder of videos or a long video's windows through onnxruntime on a CPU."""
        if self._runner is None:
            engine = resolve_engine("auto", self.device, self.precision, frames)
            self._runner = BackboneRunner(self.backbone, self.device, self.precision, self.batch_size, engine)
        return self._runner

    @torch.inference_mode()
    def embed(self, frames: np.ndarray) -> np.ndarray:
        """Backbone features (n, D) float16 of uint8 frames (n, H, W, 3), as the extract stage stores them."""
        images = self.backbone.preprocess(torch.from_numpy(frames))
        run = self.runner(len(images))
        out = [run(chunk.to(self.device)).cpu() for chunk in images.split(self.batch_size)]
        return torch.cat(out).numpy().astype(np.float16)

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
        if self.skeletons:
            raise ActrecError("a model trained on NTU skeletons predicts whole .skeleton files, not windows of a video")
        info = video_info(path, frame_rate)
        if not info.fps > 0:
            raise VideoError("the video does not say its frame rate; cannot place windows in time")
        length, step = min(window.frames(info.fps), info.frames), stride.frames(info.fps)
        starts, indices = self.window_indices(info.frames, length, step)
        unique, inverse = np.unique(indices, return_inverse=True)
        chunks = np.array_split(unique, math.ceil(len(unique) / DECODE_CHUNK))
        self.runner(len(unique))  # the engine suits the whole video, not its first chunk
        feats = []
        for n, frames in enumerate(decoding.frame_chunks(path, chunks), start=1):
            feats.append(self.embed(frames))
            if progress:
                progress(n / len(chunks))
        return self.window_table(starts, length, info.fps, np.concatenate(feats)[inverse.reshape(indices.shape)])
