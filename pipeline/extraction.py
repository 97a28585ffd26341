"""Running a backbone over videos: decode ahead in DataLoader workers, forward in batches.

Workers decode, sample and resize clips (uint8, so little crosses the process boundary) while
the main process runs the backbone; a clip that fails to decode comes back as an error string
and is reported by the caller, never raised, so one bad video cannot stop a run.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from pipeline.backbones import Backbone
from pipeline.errors import ActrecError
from pipeline.video import VideoError, read_clip

logger = logging.getLogger(__name__)


def resolve_device(device: str) -> torch.device:
    """'auto' takes the GPU when there is one."""
    if device == "cuda" and not torch.cuda.is_available():
        raise ActrecError("device 'cuda' was asked for but no CUDA GPU is available; use 'auto' or 'cpu'")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto': bf16 where the hardware runs it natively (recent GPUs, AMX/AVX512-BF16 CPUs), else fp16 on
    older GPUs and fp32 on other CPUs, where emulated bf16 is several times slower than fp32."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    native = torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported()
    return "bf16" if native else "fp32"


def clip_seed(key: str, seed: int) -> int:
    """A per-video seed for jittered clips that does not depend on the order videos are visited."""
    return zlib.crc32(key.encode()) ^ seed


@dataclass
class DecodedClip:
    index: int
    images: torch.Tensor | None  # uint8 (K·T, 3, S, S)
    frame_indices: np.ndarray | None  # (K, T)
    error: str = ""


class ClipDataset(Dataset):
    """Decodes and preprocesses one video per item; errors become DecodedClip.error."""

    def __init__(self, paths: Sequence[str], keys: Sequence[str], backbone: Backbone, frames: int,
                 clips: int, seed: int) -> None:
        self.paths, self.keys, self.backbone = list(paths), list(keys), backbone
        self.frames, self.clips, self.seed = frames, clips, seed

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> DecodedClip:
        try:
            frames, indices = read_clip(self.paths[i], self.frames, self.clips,
                                        clip_seed(self.keys[i], self.seed))
            images = self.backbone.preprocess(torch.from_numpy(frames))
        except VideoError as err:
            return DecodedClip(i, None, None, str(err))
        except Exception as err:  # a decoder bug on one odd file must not end the run
            return DecodedClip(i, None, None, f"unexpected {type(err).__name__}: {err}")
        return DecodedClip(i, images.contiguous(), indices)


def _collate(items: list[DecodedClip]) -> list[DecodedClip]:
    return items


def resolve_batch_size(batch_size: int | str, device: torch.device) -> int:
    """'auto': small batches on CPU, where they stay in cache (Lite0: 35 frames/s at 4, 16 at 128), large on GPU."""
    if batch_size != "auto":
        return int(batch_size)
    return 512 if device.type == "cuda" else 16


def extract_features(paths: Sequence[str], keys: Sequence[str], backbone: Backbone, *, frames: int,
                     clips: int, seed: int, batch_size: int, num_workers: int, device: torch.device,
                     precision: str) -> Iterator[tuple[int, np.ndarray | None, np.ndarray | None, str]]:
    """Yield (index, features (K, T, D) float16, frame indices (K, T), error) per video, in order.

    `batch_size` counts images per forward pass; the loader hands over whole clips.
    """
    per_clip = clips * frames
    dataset = ClipDataset(paths, keys, backbone, frames, clips, seed)
    loader = DataLoader(dataset, batch_size=max(1, batch_size // per_clip), num_workers=num_workers,
                        collate_fn=_collate, pin_memory=device.type == "cuda",
                        prefetch_factor=4 if num_workers else None)
    model = backbone.model.to(device).to(memory_format=torch.channels_last)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    autocast = torch.autocast(device.type, dtype=dtype) if dtype else nullcontext()
    with torch.inference_mode():
        for batch in loader:
            good = [c for c in batch if c.images is not None]
            by_index = {}
            if good:
                images = torch.cat([c.images for c in good]).to(device, non_blocking=True)
                outputs = []
                for chunk in images.split(batch_size):
                    chunk = backbone.normalize(chunk).contiguous(memory_format=torch.channels_last)
                    with autocast:
                        outputs.append(model(chunk).float())
                feats = torch.cat(outputs).cpu().numpy().astype(np.float16).reshape(len(good), clips, frames, -1)
                by_index = {c.index: (f, c.frame_indices) for c, f in zip(good, feats, strict=True)}
            for c in batch:
                if c.images is None:
                    yield c.index, None, None, c.error
                else:
                    yield c.index, *by_index[c.index], ""
