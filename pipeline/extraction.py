"""Running a backbone over videos: decode ahead in DataLoader workers, forward in batches.

Workers decode, sample and resize clips (uint8, so little crosses the process boundary) while
the main process runs the backbone; a clip that fails to decode comes back as an error string
and is reported by the caller, never raised, so one bad video cannot stop a run.
"""

from __future__ import annotations

import importlib.util
import io
import logging
import os
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from pipeline.backbones import Backbone
from pipeline.errors import ActrecError
from pipeline.export import to_onnx
from pipeline.video import VideoError, read_clip

logger = logging.getLogger(__name__)


# torch.compile costs ~10 s once and then runs ResNet50 ~1.25x and EfficientNet-Lite0 ~1.7x faster
# than eager on CPU: worth it from about this many frames (~125 clips of 16).
AUTO_COMPILE_FRAMES = 2_000
# onnxruntime's set-up (export + session) costs 1-3 s and saves ~0.03 s a frame against eager torch
# on 2 CPU cores: worth it from about this many frames (6 clips of 16).
AUTO_ONNXRUNTIME_FRAMES = 100


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


def resolve_engine(engine: str, device: torch.device, precision: str, frames: int) -> str:
    """What runs the backbone. 'auto': onnxruntime for fp32 on a CPU (ResNet50 1.3x, EfficientNet-Lite0
    2x the compiled torch model on 2 cores, and ready in 1-3 s, not 10); otherwise torch, compiled;
    either only when the run is long enough to repay its set-up."""
    if engine == "onnxruntime" and (device.type != "cpu" or precision != "fp32"):
        raise ActrecError(f"params: extract.engine = 'onnxruntime' runs the backbone in fp32 on the CPU, but this "
                          f"run resolved to device {device.type} and precision {precision}; use engine auto, "
                          f"compile or eager there")
    if engine != "auto":
        return engine
    if device.type == "cpu" and precision == "fp32" and importlib.util.find_spec("onnxruntime"):
        return "onnxruntime" if frames >= AUTO_ONNXRUNTIME_FRAMES else "eager"
    return "compile" if frames >= AUTO_COMPILE_FRAMES else "eager"


class OnnxRuntimeForward:
    """The backbone exported to ONNX (batch size left free) and run by onnxruntime's CPU kernels."""

    def __init__(self, model: torch.nn.Module, image_size: int) -> None:
        import onnxruntime as ort  # here, not at the top: importing it takes 0.2 s that eager runs need not pay

        graph = io.BytesIO()
        to_onnx(model, torch.zeros(1, 3, image_size, image_size), graph, "images", "features")
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        self.session = ort.InferenceSession(graph.getvalue(), options, providers=["CPUExecutionProvider"])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.session.run(None, {"images": x.contiguous().numpy()})[0])


class BackboneRunner:
    """The backbone's forward on normalised batches, under autocast, run by `engine`: eager, compile or onnxruntime.

    Compiled, every batch is padded to `batch_size` so that one static shape is compiled once (a
    short last batch would otherwise compile again). Where the chosen engine cannot run the model
    (no C++ compiler for torch.compile, an operator onnxruntime lacks, an unsupported platform) the
    runner warns once and goes on with the eager model.
    """

    def __init__(self, backbone: Backbone, device: torch.device, precision: str, batch_size: int,
                 engine: str = "eager") -> None:
        self.backbone, self.device, self.batch_size, self.engine = backbone, device, batch_size, engine
        self.model = backbone.model.to(device).to(memory_format=torch.channels_last).eval()
        self.fast: Callable[[torch.Tensor], torch.Tensor] | None = None
        try:
            if engine == "compile":
                self.fast = torch.compile(self.model, dynamic=False)
            elif engine == "onnxruntime":
                self.fast = OnnxRuntimeForward(self.model, backbone.image_size)
        except Exception as err:
            self._fall_back(err)
        self.proven = False  # the fast forward has run once
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        self.autocast = (lambda: torch.autocast(device.type, dtype=dtype)) if dtype else nullcontext

    def _fall_back(self, err: Exception) -> None:
        logger.warning("the %s engine failed (%s: %s); running the backbone in eager PyTorch", self.engine,
                       type(err).__name__, str(err).splitlines()[0] if str(err) else "")
        self.fast, self.engine = None, "eager"

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """float32 features (n, D) of uint8 images (n, 3, S, S) already on the device, n <= batch_size."""
        n = len(images)
        x = self.backbone.normalize(images)
        if self.engine == "compile" and n < self.batch_size:
            x = torch.cat([x, x.new_zeros((self.batch_size - n, *x.shape[1:]))])
        if self.engine != "onnxruntime":  # torch's kernels run fastest channels-last; the ONNX graph takes NCHW
            x = x.contiguous(memory_format=torch.channels_last)
        with self.autocast():
            if self.fast is not None:
                try:
                    out = self.fast(x)
                    self.proven = True
                    return out.float()[:n]
                except Exception as err:
                    if self.proven:
                        raise
                    self._fall_back(err)
            return self.model(x).float()[:n]


def clip_seed(key: str, seed: int) -> int:
    """A per-video seed for jittered clips that does not depend on the order videos are visited."""
    return zlib.crc32(key.encode()) ^ seed


@dataclass
class DecodedClip:
    index: int
    images: torch.Tensor | None  # uint8 (K·T, 3, S, S)
    frame_indices: np.ndarray | None  # (K, T)
    error: str = ""

    def pin_memory(self) -> DecodedClip:
        """Called by the DataLoader's pinning thread (pin_memory=True, on CUDA): page-locked images copy to
        the GPU asynchronously. Without this method the loader would hand the dataclass over unpinned."""
        return self if self.images is None else replace(self, images=self.images.pin_memory())


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


# One DataLoader worker decodes, samples and resizes 15-20 UCF-101 clips a second (240-330 frames/s) on
# one core here. On a CPU the model is the bottleneck and each worker takes a core from it: one worker
# feeds 5-6 cores of EfficientNet-Lite0 (45-55 frames/s a core) and far more of ResNet50 (8). A GPU runs
# ResNet50 at thousands of frames/s, so every spare core decodes, up to 16 (4,000-5,000 frames/s).
CPU_CORES_PER_WORKER = 6
MAX_WORKERS_PER_GPU = 16


def usable_cores() -> int:
    """Cores this process may run on (a container's or taskset's share, not the whole machine)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def resolve_num_workers(num_workers: int | str, device: torch.device) -> int:
    """'auto': decoding processes in proportion to what the device consumes (see CPU_CORES_PER_WORKER).

    Under torchrun the node's cores are shared among its ranks (LOCAL_WORLD_SIZE); on a GPU one core
    per rank is left to the process that feeds the GPU.
    """
    if num_workers != "auto":
        return int(num_workers)
    cores = max(1, usable_cores() // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    if device.type == "cuda":
        return max(1, min(cores - 1, MAX_WORKERS_PER_GPU))
    return max(1, cores // CPU_CORES_PER_WORKER)


def resolve_batch_size(batch_size: int | str, device: torch.device) -> int:
    """'auto': small batches on CPU, where they stay in cache (Lite0: 35 frames/s at 4, 16 at 128), large on GPU."""
    if batch_size != "auto":
        return int(batch_size)
    return 512 if device.type == "cuda" else 16


def clip_loader(dataset: ClipDataset, batch_size: int, num_workers: int, device: torch.device) -> DataLoader:
    """Batches of whole clips, as many as fill `batch_size` images, decoded by `num_workers` processes
    (and pinned for asynchronous copies when they are bound for a GPU)."""
    per_clip = dataset.clips * dataset.frames
    return DataLoader(dataset, batch_size=max(1, batch_size // per_clip), num_workers=num_workers,
                      collate_fn=_collate, pin_memory=device.type == "cuda",
                      # each worker keeps a few batches ready; with many workers two each are plenty,
                      # and more would hold GBs of frames in shared memory (512 images are 77 MB)
                      prefetch_factor=(4 if num_workers <= 2 else 2) if num_workers else None)


def extract_features(paths: Sequence[str], keys: Sequence[str], run: BackboneRunner, *, frames: int,
                     clips: int, seed: int, num_workers: int
                     ) -> Iterator[tuple[int, np.ndarray | None, np.ndarray | None, str]]:
    """Yield (index, features (K, T, D) float16, frame indices (K, T), error) per video, in order.

    The loader hands over whole clips, as many as fill one of `run`'s batches of images.
    """
    batch_size = run.batch_size
    loader = clip_loader(ClipDataset(paths, keys, run.backbone, frames, clips, seed), batch_size, num_workers,
                         run.device)
    with torch.inference_mode():
        for batch in loader:
            good = [c for c in batch if c.images is not None]
            by_index = {}
            if good:
                # clip by clip, so that pinned images go to the GPU asynchronously (a cat would unpin them)
                images = torch.cat([c.images.to(run.device, non_blocking=True) for c in good])
                feats = torch.cat([run(chunk) for chunk in images.split(batch_size)]).cpu().numpy()
                feats = feats.astype(np.float16).reshape(len(good), clips, frames, -1)
                by_index = {c.index: (f, c.frame_indices) for c, f in zip(good, feats, strict=True)}
            for c in batch:
                if c.images is None:
                    yield c.index, None, None, c.error
                else:
                    yield c.index, *by_index[c.index], ""
