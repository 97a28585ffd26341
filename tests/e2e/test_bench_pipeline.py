"""The pipeline benchmark runs the stages per variant and seed on real clips and prints every figure it promises;
a variant is its overrides on the shipped params."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from actrec.params import load_params
from benchmarks.bench_pipeline import overrides, variant, write_params
from tests.helpers import ROOT


@pytest.mark.slow
def test_bench_pipeline_prints_each_variant_and_its_difference(ucf_mini: Path, tmp_path: Path) -> None:
    small = ["dataset.max_clips_per_class=6", "train.epochs=2", "finetune.epochs=2", "finetune.freeze_epochs=1"]
    small += ["extract.frames=4", "extract.image_size=64"]
    command = [sys.executable, "-m", "benchmarks.bench_pipeline", "--root", str(ucf_mini), "--work", str(tmp_path)]
    command += ["--seeds", "42", *(a for s in small for a in ("--set", s))]
    run = subprocess.run(command, capture_output=True, text=True, timeout=1200, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout
    assert out.startswith("machine: ") and "\ndate: " in out, "it says what it ran on"
    for name in ("frozen", "finetuned"):
        assert re.search(rf"seed  42 {name} +test top-1 [\d.]+ \(head \w+\)  seconds: subset \d+", out), out
    assert re.search(r"fine-tuning: best val [\d.]+ at epoch \d of 2, \d+ train clips", out), out
    assert re.search(r"finetuned +: test top-1 mean [\d.]+ .*; [+-][\d.]+ points on frozen", out), out
    again = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert again.stdout.splitlines()[2:] == out.splitlines()[2:], "a finished run is read back, not run again"


def test_a_variant_is_its_overrides_on_the_shipped_params(tmp_path: Path) -> None:
    name, changes = variant("strided:extract.sampling=strided,extract.stride=2")
    assert (name, changes) == ("strided", {"extract.sampling": "strided", "extract.stride": 2})
    write_params(tmp_path, {**overrides(["seed=7", "model.head=[gru, probe]"]), **changes})
    params = load_params(tmp_path / "params.yaml")  # the schema accepts what the benchmark writes
    shipped = load_params(ROOT / "params.yaml")
    assert (params.extract.sampling, params.extract.stride, params.seed) == ("strided", 2, 7)
    assert params.model.head == ["gru", "probe"]
    assert params.extract.backbone == shipped.extract.backbone and params.train == shipped.train
