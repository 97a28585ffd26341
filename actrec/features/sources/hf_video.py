"""Hugging Face video encoders through `transformers` as a feature source: one feature per window of frames
around each sampled frame, on video.py's window machinery (WindowPreprocessing, WindowClips, VideoRunner,
VideoSource).

`extract.backbone: hf:<repo id>` (`hf:MCG-NJU/videomae-base`, `hf:facebook/vjepa2-vitl-fpc64-256`) or
`hf:<folder>` holding a `config.json`; `extract.weights: huggingface` loads the repo's weights from the Hugging
Face cache (HF_HOME) or the folder's own, never from the network; a local weights file loads into the
config's model; null is random init from the config (tests). The window is the config's `num_frames` (V-JEPA
2: `frames_per_clip`) frames, a multiple of its `tubelet_size`, at FRAME_RATE; frames are resized, centre
cropped and normalised as the repo's `preprocessor_config.json` (or `video_preprocessor_config.json`) says.
The feature is the encoder's pooler output where it has one, else the mean of its last hidden state over
the tokens: D is the config's `hidden_size`.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from pathlib import Path
from typing import Any

import torch

from actrec.errors import ActrecError, first_line
from actrec.features.backbones.base import (
    BackboneError,
    file_identity,
    hf_cache_dir,
    hf_cached,
    is_file,
    local_file,
    read_state_dict,
)
from actrec.features.sources.video import VideoNetwork, VideoSource, WindowPreprocessing
from actrec.names import is_hf_repo

# Frames per second within a window: VideoMAE's Kinetics recipe takes every 4th frame of 30 frames/s video,
# and the configs do not say.
FRAME_RATE = 7.5
CONFIG = "config.json"
WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
PROCESSORS = ("preprocessor_config.json", "video_preprocessor_config.json")


def _fetch_hint(repo: str) -> str:
    return (
        f"On a machine with network access run `hf download {repo}` (or `huggingface-cli download {repo}`), then "
        f"copy {hf_cache_dir() / ('models--' + repo.replace('/', '--'))} to the same place here"
    )


class HFLocation:
    """Where a `hf:` name's files are: a local folder, or a repo's snapshot in the Hugging Face cache."""

    def __init__(self, name: str) -> None:
        self.name, self.repo = name, name if is_hf_repo(name) else None

    def find(self, files: tuple[str, ...]) -> str | None:
        """The first of `files` there, without the network."""
        if self.repo is not None:
            return hf_cached(self.repo, list(files))
        return next((str(Path(self.name) / f) for f in files if (Path(self.name) / f).is_file()), None)

    def require(self, files: tuple[str, ...], what: str) -> str:
        found = self.find(files)
        if found is not None:
            return found
        if self.repo is None:
            raise BackboneError(f"extract.backbone hf:{self.name}: the folder holds no {' or '.join(files)} ({what})")
        raise BackboneError(
            f"hf:{self.repo} is not on this machine ({what}): looked for {' or '.join(files)} of {self.repo} in "
            f"{hf_cache_dir()} (nothing is downloaded). {_fetch_hint(self.repo)}, or name a local folder hf:<path>"
        )

    def weights_id(self, path: str) -> str:
        """The identity of the weights at `path`: the cache snapshot's commit, or the file's content hash."""
        if self.repo is not None:
            return f"hf:{self.repo}@{Path(path).parent.name}"
        return file_identity(path)


def _preprocessing(
    location: HFLocation, config: Any, image_size: int | str, clip_len: int | str
) -> WindowPreprocessing:
    """The windows as the repo's processor config prepares them, at extract.image_size and extract.clip_len."""
    path = location.require(PROCESSORS, "preprocessing config")
    proc = json.loads(Path(path).read_text())
    size, crop = proc.get("size") or {}, proc.get("crop_size") or {}
    resize = (size["shortest_edge"],) if "shortest_edge" in size else (size.get("height"), size.get("width"))
    if proc.get("do_center_crop", True) and crop:
        side = (crop.get("height"), crop.get("width"))
    else:
        side = resize if len(resize) == 2 else (resize[0], resize[0])
    if None in resize or side[0] != side[1]:
        raise BackboneError(f"hf:{location.name} prepares frames as {size} cropped to {crop}; actrec crops squares")
    scale = 1.0 if image_size == "auto" else int(image_size) / side[0]
    tubelet = int(getattr(config, "tubelet_size", 1))
    native = getattr(config, "num_frames", None) or getattr(config, "frames_per_clip", None) or 16
    length = int(native if clip_len == "auto" else clip_len)
    if length % tubelet:
        raise BackboneError(
            f"extract.clip_len = {length}: hf:{location.name} takes windows in tubelets of {tubelet} frames "
            f"(auto: {native})"
        )
    return WindowPreprocessing(
        tuple(round(s * scale) for s in resize),
        round(side[0] * scale),
        tuple(proc.get("image_mean", (0.5, 0.5, 0.5))),
        tuple(proc.get("image_std", (0.5, 0.5, 0.5))),
        length,
        FRAME_RATE,
    )


class HFVideoNetwork(VideoNetwork):
    """A transformers video encoder on normalised windows (n, L, 3, S, S), as the models take them."""

    def __init__(self, model: torch.nn.Module, p: WindowPreprocessing) -> None:
        super().__init__(model, p)
        parameters = inspect.signature(model.forward).parameters
        self.input_name = "pixel_values_videos" if "pixel_values_videos" in parameters else "pixel_values"
        self.options = {"skip_predictor": True} if "skip_predictor" in parameters else {}  # V-JEPA 2's

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(**{self.input_name: x}, **self.options)
        pooled = getattr(out, "pooler_output", None)
        return pooled if pooled is not None else out.last_hidden_state.mean(1)


class HFVideoModel:
    """The encoder, its preprocessing and the identity of its weights (video.WindowModel)."""

    def __init__(self, name: str, weights: str | None, image_size: int | str, clip_len: int | str) -> None:
        from transformers import AutoConfig, AutoModel
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a bar per model load in extraction's and predict's logs

        location = HFLocation(name)
        config_path = location.require((CONFIG,), "model config")
        try:
            config = AutoConfig.from_pretrained(str(Path(config_path).parent), local_files_only=True)
        except (OSError, ValueError, KeyError) as err:
            raise BackboneError(f"hf:{name}: transformers cannot read {config_path} ({first_line(err)})") from err
        self.name, self.preprocessing = f"hf:{name}", _preprocessing(location, config, image_size, clip_len)
        self.feature_dim = int(config.hidden_size)
        self.weights_file = local_file(weights)
        if weights is None:
            model = AutoModel.from_config(config)
            digest = hashlib.sha256(config.to_json_string().encode()).hexdigest()[:16]
            self.weights_id = f"random init of config sha256:{digest}"
        elif is_file(weights):
            model = AutoModel.from_config(config)
            try:
                model.load_state_dict(read_state_dict(weights))
            except RuntimeError as err:
                raise BackboneError(f"extract.weights: {weights} does not fit hf:{name} ({first_line(err)})") from err
            self.weights_id = file_identity(weights)
        elif weights == "huggingface":
            found = location.require(WEIGHTS, "weights")
            model = AutoModel.from_pretrained(str(Path(found).parent), local_files_only=True)
            self.weights_id = location.weights_id(found)
        else:
            raise BackboneError(f"extract.weights = {weights!r}: hf:{name} takes huggingface, a file or null")
        self.network = HFVideoNetwork(model, self.preprocessing).eval().requires_grad_(False)


class HFVideoSource(VideoSource):
    """A Hugging Face video encoder's feature of the window of frames around each sampled frame."""

    @classmethod
    def build(
        cls, name: str, weights: str | None, image_size: int | str = "auto", clip_len: int | str = "auto"
    ) -> HFVideoSource:
        with torch.random.fork_rng():  # random init is seeded, as video.py's is
            torch.manual_seed(0)
            return cls(HFVideoModel(name.removeprefix("hf:"), weights, image_size, clip_len))

    def export_network(self):
        raise ActrecError(
            f"{self.name}: a Hugging Face encoder has no exported graph here; export the head alone (without "
            "--with-backbone) and compute its features with transformers"
        )
