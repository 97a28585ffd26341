"""The pipeline benchmark runs the stages per variant and seed on real clips and prints every figure it promises."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

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

    strided = [*command, "--variant", "strided:extract.sampling=strided,extract.stride=2"]
    other = subprocess.run(strided, capture_output=True, text=True, timeout=1200, cwd=ROOT)
    assert other.returncode == 0, other.stderr[-3000:]
    assert re.search(r"seed  42 strided +test top-1", other.stdout) and "points on" not in other.stdout
    params = (tmp_path / "strided-42" / "params.yaml").read_text()
    assert "sampling: strided" in params and "stride: 2" in params
