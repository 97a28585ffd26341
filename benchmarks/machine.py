"""What a benchmark ran on, printed first: CPU figures only mean something beside the CPU that made them."""

from __future__ import annotations

import platform
from pathlib import Path

import torch

from actrec.devices import usable_cores

# The instruction sets that decide which engine and precision are fastest on a CPU.
FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def describe_machine() -> str:
    """One line: CPU model and the flags that matter, cores usable, GPU if any, torch version."""
    cpuinfo = Path("/proc/cpuinfo")
    text = cpuinfo.read_text() if cpuinfo.is_file() else ""
    model = next(
        (line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")),
        platform.processor() or platform.machine(),
    )
    flags = set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))
    shown = [f for f in FLAGS if f in flags]
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return (
        f"machine: {model} ({', '.join(shown) or 'none of ' + '/'.join(FLAGS)}), {usable_cores()} cores{gpu}, "
        f"torch {torch.__version__}"
    )
