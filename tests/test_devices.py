"""What the hardware gives a run: `auto` decoding workers and batch size follow the device and its cores."""

from __future__ import annotations

import pytest
import torch

from actrec import devices

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize(
    "device, cores, local_ranks, expected",
    [
        (CPU, 2, 1, 1),  # the model needs the cores: one worker outruns it (this project's machine)
        (CPU, 6, 1, 1),
        (CPU, 32, 1, 5),  # one per 6 cores keeps up with EfficientNet-Lite0
        (CPU, 16, 2, 1),  # torchrun: the node's cores shared among its ranks
        (CUDA, 16, 1, 15),  # a GPU: every core but the one feeding it decodes
        (CUDA, 128, 1, 16),  # ... up to 16, more than any one GPU consumes
        (CUDA, 16, 4, 3),
        (CUDA, 1, 1, 1),
    ],
)
def test_auto_num_workers(monkeypatch, device: torch.device, cores: int, local_ranks: int, expected: int) -> None:
    monkeypatch.setattr(devices, "usable_cores", lambda: cores)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(local_ranks))
    assert devices.resolve_num_workers("auto", device) == expected
    assert devices.resolve_num_workers(3, device) == 3


@pytest.mark.parametrize("device, expected", [(CPU, 16), (CUDA, 512)])
def test_auto_batch_size(device: torch.device, expected: int) -> None:
    assert devices.resolve_batch_size("auto", device) == expected
    assert devices.resolve_batch_size(7, device) == 7


def test_cuda_asked_for_without_a_gpu_is_one_clear_error(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(devices.ActrecError, match="no CUDA GPU is available"):
        devices.resolve_device("cuda")
    assert devices.resolve_device("auto") == CPU
