"""The runtime: every `auto` resolved once into one object, a GPU being the rank's own, threads set at a stage's
start, and the precision a model's features were recorded in kept where this machine runs it natively."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from actrec import devices, runtime
from actrec.distributed import World
from actrec.params import ExtractParams
from actrec.runtime import Runtime


def test_resolve_leaves_no_auto_but_the_engine() -> None:
    resolved = Runtime.resolve("cpu")
    assert resolved.device == torch.device("cpu") and resolved.world.size == 1
    assert resolved.precision in ("fp32", "bf16") and resolved.resize_on == "workers"
    assert resolved.batch_size == devices.resolve_batch_size("auto", resolved.device)
    assert resolved.num_workers == devices.resolve_num_workers("auto", resolved.device)
    assert resolved.threads == torch.get_num_threads() and resolved.engine == "auto"
    given = Runtime.resolve("cpu", precision="fp32", engine="eager", batch_size=3, num_workers=0, resize_on="device")
    assert (given.precision, given.engine, given.batch_size, given.num_workers, given.resize_on) == (
        "fp32",
        "eager",
        3,
        0,
        "device",
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        given.batch_size = 4  # passed down whole, changed by nobody below


def test_each_rank_takes_its_own_gpu_and_resizes_there(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    resolved = Runtime.resolve("auto", world=World(rank=5, size=8, local_rank=1))
    assert resolved.device == torch.device("cuda", 1)
    assert resolved.resize_on == "device" and resolved.precision == "bf16"
    assert resolved.batch_size > Runtime.resolve("cpu").batch_size


def test_start_sets_the_threads_and_runs_alone_without_torchrun(monkeypatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    before = torch.get_num_threads()
    cfg = ExtractParams(device="cpu", threads=1, precision="fp32", engine="eager", batch_size=3, num_workers=0)
    try:
        started = runtime.start_extraction(cfg)
        assert torch.get_num_threads() == 1 and started.threads == 1 and started.world.size == 1
    finally:
        torch.set_num_threads(before)
    runtime.stop(started)
    assert (started.device.type, started.precision, started.engine, started.batch_size, started.num_workers) == (
        "cpu",
        "fp32",
        "eager",
        3,
        0,
    )


@pytest.mark.parametrize("native", [True, False])
def test_predict_reproduces_the_recorded_precision_where_it_is_native(monkeypatch, native: bool) -> None:
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: native)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    cpu = Runtime.resolve("cpu")
    assert cpu.reproducing("fp32").precision == "fp32"
    assert cpu.reproducing("bf16").precision == ("bf16" if native else "fp32"), "emulated bf16 is slower than fp32"
    assert cpu.reproducing("fp16").precision == "fp32"


def test_a_gpu_without_bf16_reproduces_bf16_features_in_fp16(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    gpu = Runtime.resolve("cuda")
    assert gpu.reproducing("bf16").precision == "fp16" and gpu.reproducing("fp32").precision == "fp32"


def test_running_keeps_everything_but_the_engine_and_precision() -> None:
    resolved = Runtime.resolve("cpu", batch_size=5)
    chosen = resolved.running("onnxruntime", "fp32")
    assert (chosen.engine, chosen.precision) == ("onnxruntime", "fp32")
    assert dataclasses.replace(chosen, engine=resolved.engine, precision=resolved.precision) == resolved
    assert "onnxruntime" in chosen.describe() and "5 images" in chosen.describe()
