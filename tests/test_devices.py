"""What the hardware gives a run: the rules `auto` follows, held as properties over a grid of machines (cores,
torchrun ranks per node, CPU or GPU) rather than as the figures they give today."""

from __future__ import annotations

import itertools

import pytest
import torch

from actrec import devices

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
CORES = (1, 2, 3, 6, 8, 16, 32, 64, 128, 256)


def _workers(monkeypatch, device: torch.device, cores: int, ranks: int = 1) -> int:
    monkeypatch.setattr(devices, "usable_cores", lambda: cores)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(ranks))
    return devices.resolve_num_workers("auto", device)


@pytest.mark.parametrize("device", [CPU, CUDA])
def test_auto_workers_grow_with_the_cores_and_never_outnumber_them(monkeypatch, device: torch.device) -> None:
    counts = [_workers(monkeypatch, device, cores) for cores in CORES]
    assert counts == sorted(counts), "more cores never give fewer workers"
    assert all(n >= 1 for n in counts), "a run always has a decoding worker"
    for cores, n in zip(CORES, counts, strict=True):
        assert n <= max(1, cores - 1), "one core is left to the process that runs the model"


def test_a_cpu_leaves_most_cores_to_the_model_and_a_gpu_takes_the_spare_ones_up_to_a_cap(monkeypatch) -> None:
    """On a CPU the model needs the cores; a GPU consumes frames as fast as many cores decode them, up to a
    point past which more workers only hold memory."""
    for cores in CORES:
        assert _workers(monkeypatch, CPU, cores) <= max(1, cores // 2)
    assert _workers(monkeypatch, CUDA, 16) > _workers(monkeypatch, CPU, 16)
    assert _workers(monkeypatch, CUDA, CORES[-1]) == _workers(monkeypatch, CUDA, CORES[-2]), "capped"


@pytest.mark.parametrize("device, cores, ranks", itertools.product([CPU, CUDA], (16, 64), (1, 2, 4, 8)))
def test_torchrun_ranks_share_the_nodes_cores(monkeypatch, device: torch.device, cores: int, ranks: int) -> None:
    per_rank = _workers(monkeypatch, device, cores, ranks)
    assert per_rank * ranks <= cores, "the ranks' workers together fit the node"
    assert per_rank <= _workers(monkeypatch, device, cores, 1)


def test_auto_workers_follow_the_cores_this_process_may_use(monkeypatch) -> None:
    """A container's or taskset's share of the cores, not the machine's count."""
    monkeypatch.setattr(devices.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert devices.usable_cores() == 2


@pytest.mark.parametrize("device", [CPU, CUDA])
def test_given_values_are_obeyed(device: torch.device) -> None:
    assert devices.resolve_num_workers(3, device) == 3 and devices.resolve_num_workers(0, device) == 0
    assert devices.resolve_batch_size(7, device) == 7
    assert devices.resolve_precision("fp16", device) == "fp16"


def test_a_gpu_takes_larger_batches_than_a_cpu() -> None:
    assert devices.resolve_batch_size("auto", CUDA) > devices.resolve_batch_size("auto", CPU) >= 1


@pytest.mark.parametrize(
    "amx, avx512_bf16, expected", [(False, False, "fp32"), (True, False, "bf16"), (False, True, "bf16")]
)
def test_auto_precision_on_a_cpu_is_bf16_only_where_it_runs_natively(monkeypatch, amx, avx512_bf16, expected) -> None:
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    assert devices.resolve_precision("auto", CPU) == expected


@pytest.mark.parametrize("bf16, expected", [(True, "bf16"), (False, "fp16")])
def test_auto_precision_on_a_gpu_is_reduced(monkeypatch, bf16: bool, expected: str) -> None:
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: bf16)
    assert devices.resolve_precision("auto", CUDA) == expected


def test_cuda_asked_for_without_a_gpu_is_one_clear_error(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(devices.ActrecError, match="no CUDA GPU is available"):
        devices.resolve_device("cuda")
    assert devices.resolve_device("auto") == CPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert devices.resolve_device("auto") == CUDA and devices.resolve_device("cpu") == CPU
