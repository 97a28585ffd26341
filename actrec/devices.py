"""What the hardware gives a run: device, precision, decoding workers and batch size, each resolved from 'auto'.

Extraction and `actrec predict` both ask here, so a video is embedded the same way by either.
The reasons behind each rule, with their figures, are in docs/speed.md and docs/benchmarks.md.
"""

from __future__ import annotations

import os

import torch

from actrec.errors import ActrecError

# On a CPU the model, not decoding, is the bottleneck, and each decoding worker takes a core from it;
# one worker keeps up with several cores of the model. A GPU consumes frames as fast as many cores can
# decode them, so every spare core decodes, up to a cap past which more workers only hold memory.
CPU_CORES_PER_WORKER = 6
MAX_WORKERS_PER_GPU = 16


def resolve_device(device: str) -> torch.device:
    """'auto' takes the GPU when there is one."""
    if device == "cuda" and not torch.cuda.is_available():
        raise ActrecError("device 'cuda' was asked for but no CUDA GPU is available; use 'auto' or 'cpu'")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def native_precision(precision: str, device: torch.device) -> bool:
    """Whether `device` computes in `precision` natively: fp32 anywhere; fp16 on GPUs; bf16 on GPUs that support
    it and on CPUs with AMX or AVX512-BF16. Elsewhere bf16 is emulated, several times slower than fp32, or (in
    OpenVINO) silently fp32."""
    if precision == "fp32" or device.type not in ("cpu", "cuda"):
        return True
    if device.type == "cuda":
        return precision == "fp16" or torch.cuda.is_bf16_supported()
    return precision == "bf16" and (torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto': bf16 where the hardware runs it natively (recent GPUs, AMX/AVX512-BF16 CPUs), else fp16 on
    older GPUs and fp32 on other CPUs, where emulated bf16 is several times slower than fp32."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if native_precision("bf16", device) else "fp32"


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
    """'auto': small batches on a CPU, where they stay in cache and run fastest; large ones on a GPU."""
    if batch_size != "auto":
        return int(batch_size)
    return 512 if device.type == "cuda" else 16
